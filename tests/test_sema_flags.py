"""Flags: numbers, names, kinds, set/tested bookkeeping and the `--flags` table."""

from __future__ import annotations

from pathlib import Path

import pytest
from kcc_runtime.exports import FlagKind

from kcc.pipeline import run_pipeline
from kcc.sema.flags import FlagOp, build_flag_table, render_flag_table

from .kamailio import kamailio_check, needs_kamailio

FLAG_CODES = {"E0501", "W0502", "W0503", "W0504", "W0505"}


def check(tmp_path: Path, text: str) -> list[tuple[str, int, str]]:
    path = tmp_path / "flags.cfg"
    path.write_text(text, encoding="utf-8")
    ctx = run_pipeline(path)
    return [
        (d.code, d.span.use_site().line if d.span else 0, d.message)
        for d in ctx.sink.sorted()
        if d.code in FLAG_CODES
    ]


def test_define_out_of_range(tmp_path: Path) -> None:
    text = "#!define FLT_X 32\nrequest_route {\n\tsetflag(FLT_X);\n\texit;\n}\n"
    assert check(tmp_path, text) == [
        ("E0501", 3, "message flag `FLT_X` (32) is outside 0..31"),
    ]


def test_literal_negative_branch_flag(tmp_path: Path) -> None:
    text = 'loadmodule "kex.so"\nrequest_route {\n\tif (isbflagset(-1)) exit;\n\texit;\n}\n'
    assert check(tmp_path, text) == [("E0501", 3, "branch flag -1 is outside 0..31")]


def test_flags_declaration_out_of_range(tmp_path: Path) -> None:
    # kamailio -c: "invalid flag A position(40)", "register flag failed"
    text = "flags A:40;\nrequest_route {\n\texit;\n}\n"
    assert check(tmp_path, text) == [("E0501", 1, "message flag 40 is outside 0..31")]


def test_undeclared_flag_name(tmp_path: Path) -> None:
    # kamailio -c: "flag not declared"
    text = "request_route {\n\tsetflag(FOO);\n\texit;\n}\n"
    assert check(tmp_path, text) == [("E0501", 2, "flag `FOO` is not declared")]


def test_modparam_flag_out_of_range(tmp_path: Path) -> None:
    text = (
        'loadmodule "tm.so"\nloadmodule "acc.so"\n'
        'modparam("acc", "log_flag", 33)\nrequest_route {\n\texit;\n}\n'
    )
    assert check(tmp_path, text) == [("E0501", 3, "message flag 33 is outside 0..31")]


def test_tested_never_set(tmp_path: Path) -> None:
    text = "#!define FLT_NATS 5\nrequest_route {\n\tif (isflagset(FLT_NATS)) exit;\n\texit;\n}\n"
    assert check(tmp_path, text) == [
        ("W0502", 3, "message flag `FLT_NATS` (5) is tested but never set"),
    ]


def test_usrloc_nat_bflag_counts_as_set(tmp_path: Path) -> None:
    text = (
        '#!define FLB_NATB 6\nloadmodule "kex.so"\nloadmodule "usrloc.so"\n'
        'modparam("usrloc", "nat_bflag", FLB_NATB)\n'
        "request_route {\n\tif (isbflagset(FLB_NATB)) exit;\n\texit;\n}\n"
    )
    assert check(tmp_path, text) == []


def test_flag_set_in_disabled_ifdef_counts(tmp_path: Path) -> None:
    text = (
        "#!define FLT_NATS 5\nrequest_route {\n#!ifdef WITH_NAT\n\tsetflag(FLT_NATS);\n"
        "#!endif\n\tif (isflagset(FLT_NATS)) exit;\n\texit;\n}\n"
    )
    assert check(tmp_path, text) == []


def test_dynamic_set_silences_w0502(tmp_path: Path) -> None:
    text = (
        'loadmodule "pv.so"\nrequest_route {\n\tsetflag($var(f));\n'
        "\tif (isflagset(4)) exit;\n\texit;\n}\n"
    )
    assert check(tmp_path, text) == []


def test_set_never_tested_and_modparam(tmp_path: Path) -> None:
    text = (
        "#!define FLT_ACC 1\n#!define FLT_X 2\n"
        'loadmodule "tm.so"\nloadmodule "acc.so"\nmodparam("acc", "log_flag", FLT_ACC)\n'
        "request_route {\n\tsetflag(FLT_ACC);\n\tsetflag(FLT_X);\n\texit;\n}\n"
    )
    assert check(tmp_path, text) == [
        ("W0503", 8, "message flag `FLT_X` (2) is set but never tested"),
    ]


def test_two_names_one_number(tmp_path: Path) -> None:
    text = (
        "#!define FLT_A 3\n#!define FLT_B 3\nrequest_route {\n\tsetflag(FLT_A);\n"
        "\tif (isflagset(FLT_B)) exit;\n\texit;\n}\n"
    )
    assert check(tmp_path, text) == [
        ("W0504", 5, "message flag 3 has two names, `FLT_A` and `FLT_B`"),
    ]


def test_branch_define_with_message_function(tmp_path: Path) -> None:
    text = (
        '#!define FLB_NATB 6\nloadmodule "kex.so"\nrequest_route {\n\tsetbflag(FLB_NATB);\n'
        "\tif (isbflagset(FLB_NATB)) exit;\n\tif (isflagset(FLB_NATB)) exit;\n\texit;\n}\n"
    )
    # one cause, one warning: no W0502 for the message flag 6 on top
    assert check(tmp_path, text) == [
        ("W0505", 6, "`FLB_NATB` is used as a branch flag and as a message flag"),
    ]


def test_flag_table(tmp_path: Path) -> None:
    text = (
        "#!define FLT_ACC 1\n#!define FLB_NATB 6\nflags DBG, FLAG_B:5;\n"
        'loadmodule "tm.so"\nloadmodule "acc.so"\nloadmodule "kex.so"\n'
        'modparam("acc", "log_flag", FLT_ACC)\n'
        "request_route {\n"
        "\tsetflag(FLT_ACC);\n"
        "\tsetbflag(FLB_NATB);\n"
        "\tif (isbflagset(FLB_NATB)) resetbflag(FLB_NATB);\n"
        "\tsetflag(FLAG_B);\n"
        "\tif (isflagset(DBG) && isflagset(FLAG_B)) exit;\n"
        "\texit;\n}\n"
    )
    path = tmp_path / "table.cfg"
    path.write_text(text, encoding="utf-8")
    ctx = run_pipeline(path)
    assert ctx.sema is not None
    table = build_flag_table(ctx.sema)
    assert render_flag_table(table, str(path)) == (
        "kind     flag  names     set  reset  tested  parameters\n"
        "message  0     DBG       -    -      13      -\n"
        "message  1     FLT_ACC   9    -      -       acc.log_flag@7\n"
        "message  5     FLAG_B    12   -      13      -\n"
        "branch   6     FLB_NATB  10   11     11      -\n"
    )
    entry = table.entries[(FlagKind.BRANCH, 6)]
    assert [u.op for u in entry.uses] == [FlagOp.SET, FlagOp.TEST, FlagOp.RESET]
    assert [c for c, *_ in check(tmp_path, text)] == ["W0502"]  # DBG: never set


def test_empty_flag_table() -> None:
    from kcc.sema.flags import FlagTable

    assert render_flag_table(FlagTable()) == "no flags\n"


@needs_kamailio
@pytest.mark.parametrize(
    ("text", "kamailio_says"),
    [
        ("#!define F 32\nrequest_route {\n\tsetflag(F);\n\texit;\n}\n", "bad flag value"),
        ("request_route {\n\tsetflag(FOO);\n\texit;\n}\n", "flag not declared"),
        ("flags A:40;\nrequest_route {\n\texit;\n}\n", "register flag failed"),
    ],
)
def test_kamailio_rejects_what_e0501_reports(tmp_path: Path, text: str, kamailio_says: str) -> None:
    path = tmp_path / "k.cfg"
    path.write_text(text, encoding="utf-8")
    result = kamailio_check(path)
    assert kamailio_says in result.stderr
    assert [c for c, *_ in check(tmp_path, text)] == ["E0501"]
