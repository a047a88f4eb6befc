"""Pseudo-variables: classes, inner names, writability, transformations, transactions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kcc.pipeline import run_pipeline

from .kamailio import needs_kamailio

PV_CODES = {"E0601", "E0602", "E0603", "E0604", "W0605", "E0606"}
MODULES = 'loadmodule "tm.so"\nloadmodule "tmx.so"\nloadmodule "pv.so"\nloadmodule "xlog.so"\n'


def check(
    tmp_path: Path, body: str, modules: str = MODULES, extra: str = ""
) -> list[tuple[str, int, str]]:
    """Diagnostics of the PV passes for a request_route with ``body`` (line 6 on)."""
    text = f"{modules}request_route {{\n{body}\texit;\n}}\n{extra}"
    path = tmp_path / "pvs.cfg"
    path.write_text(text, encoding="utf-8")
    ctx = run_pipeline(path)
    return [
        (d.code, d.span.use_site().line if d.span else 0, d.message)
        for d in ctx.sink.sorted()
        if d.code in PV_CODES
    ]


def test_clean_uses(tmp_path: Path) -> None:
    body = (
        "\t$var(x) = $(ru{uri.user}{s.len});\n"
        "\t$avp(s:a) = $hdr(Via)[0];\n"
        '\txlog("L_INFO", "$rm $var(x) $(avp(s:a)[*])\\n");\n'
        "\t$foo = 1;\n"
    )
    assert check(tmp_path, body) == []


def test_unknown_class_with_inner_name(tmp_path: Path) -> None:
    assert check(tmp_path, "\t$var(u) = $ruri_usr(x);\n") == [
        ("E0601", 6, "unknown pseudo-variable `$ruri_usr`"),
    ]


def test_unknown_bare_class_in_code_is_an_avp_but_not_in_a_format(tmp_path: Path) -> None:
    # max compatibility mode: `$fuu` in code is the AVP `fuu`; xlog at start-up: "wrong format"
    body = '\t$var(x) = $fuu;\n\txlog("L_INFO", "x $foo\\n");\n'
    assert check(tmp_path, body) == [("E0601", 7, "unknown pseudo-variable `$foo`")]


def test_unknown_bare_class_in_kamailio_mode(tmp_path: Path) -> None:
    # `#!KAMAILIO`: kamailio -c says "Can't get from cache: $fuu"
    assert check(tmp_path, "\t$var(x) = $fuu;\n", modules="#!KAMAILIO\n" + MODULES) == [
        ("E0601", 7, "unknown pseudo-variable `$fuu`"),
    ]


def test_class_of_module_not_loaded(tmp_path: Path) -> None:
    body = "\t$sht(t=>$ci) = 1;\n"
    assert check(tmp_path, body) == [
        ("E0601", 6, "pseudo-variable `$sht` needs module `htable`, which is not loaded"),
    ]


def test_assignment_to_pv_of_unloaded_module_is_reported(tmp_path: Path) -> None:
    # Kamailio would silently make an AVP called `ru`
    assert check(tmp_path, '\t$ru = "sip:a@b";\n', modules="") == [
        ("E0601", 2, "pseudo-variable `$ru` needs module `pv`, which is not loaded"),
    ]


def test_plain_string_is_not_a_format(tmp_path: Path) -> None:
    assert check(tmp_path, '\t$var(x) = "$nosuch(y) $var()";\n') == []


def test_inner_names(tmp_path: Path) -> None:
    body = (
        "\t$avp(i:abc) = 1;\n"
        "\t$var() = 1;\n"
        "\t$var = 1;\n"
        "\t$var(y) = $ru(x);\n"
        "\t$var(z) = $xavp(a=>);\n"
    )
    assert check(tmp_path, body) == [
        ("E0602", 6, "malformed inner name in `$avp(...)`"),
        ("E0602", 7, "malformed inner name in `$var(...)`"),
        ("E0606", 8, "`$var` needs an inner name"),
        ("E0606", 9, "`$ru` takes no inner name"),
        ("E0602", 10, "malformed inner name in `$xavp(...)`"),
    ]


def test_read_only(tmp_path: Path) -> None:
    assert check(tmp_path, '\t$si = "127.0.0.1";\n\t$ru = "sip:a@b";\n') == [
        ("E0603", 6, "`$si` is read-only"),
    ]


def test_unknown_transformation_with_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "tr.cfg"
    path.write_text(MODULES + "request_route {\n\t$var(n) = $(ru{s.lenght});\n\texit;\n}\n")
    ctx = run_pipeline(path)
    [diag] = [d for d in ctx.sink.diagnostics if d.code == "E0604"]
    assert diag.message == "unknown transformation `{s.lenght}`"
    assert diag.help == "a transformation with a similar name exists: `{s.len}`"


def test_transformation_of_unloaded_module(tmp_path: Path) -> None:
    assert check(tmp_path, '\txlog("L_INFO", "$(ru{re.subst,/a/b/})\\n");\n') == [
        ("E0604", 6, "transformation `{re.subst}` needs module `textops`, which is not loaded"),
    ]


def test_pvs_inside_transformation_params_and_inner_names(tmp_path: Path) -> None:
    body = "\t$var(a) = $(ru{s.substr,$nosuch(x),1});\n\t$var(b) = $hdr($nope(y));\n"
    assert check(tmp_path, body) == [
        ("E0601", 6, "unknown pseudo-variable `$nosuch`"),
        ("E0601", 7, "unknown pseudo-variable `$nope`"),
    ]


def test_transaction_pv_without_transaction(tmp_path: Path) -> None:
    body = '\txlog("L_INFO", "$T_reply_code\\n");\n'
    assert check(tmp_path, body) == [
        ("W0605", 6, "`$T_reply_code` is only meaningful in a transaction, and none exists here"),
    ]


def test_transaction_pv_after_t_relay_is_fine(tmp_path: Path) -> None:
    body = '\tt_relay();\n\txlog("L_INFO", "$T_reply_code\\n");\n'
    assert check(tmp_path, body) == []


def test_transaction_pv_in_failure_and_branch_routes(tmp_path: Path) -> None:
    extra = (
        'failure_route[F] {\n\txlog("L_INFO", "$T_reply_code\\n");\n}\n'
        "branch_route[B] {\n\troute(LOG);\n}\n"
        'route[LOG] {\n\txlog("L_INFO", "$T_branch_idx\\n");\n}\n'
    )
    body = '\tt_on_failure("F");\n\tt_on_branch("B");\n\tt_relay();\n'
    assert check(tmp_path, body, extra=extra) == []


def test_transaction_pv_in_sub_route_reached_only_from_request(tmp_path: Path) -> None:
    extra = 'route[LOG] {\n\txlog("L_INFO", "$T_reply_reason\\n");\n}\n'
    body = "\troute(LOG);\n"
    assert check(tmp_path, body, extra=extra) == [
        (
            "W0605",
            10,
            "`$T_reply_reason` is only meaningful in a transaction, and none exists here",
        ),
    ]


@needs_kamailio
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('\t$si = "1";\n', "E0603"),
        ("\t$var() = 1;\n", "E0602"),
        ("\t$avp(i:abc) = 1;\n", "E0602"),
        ("\t$ru(x) = 1;\n", "E0606"),
        ("\t$var(x) = $(ru{s.foo});\n", "E0604"),
        ('\t$uac_req(method) = "x";\n', "E0601"),
    ],
)
def test_kamailio_rejects_the_same(tmp_path: Path, body: str, code: str) -> None:
    assert [c for c, *_ in check(tmp_path, body)] == [code]
    result = subprocess.run(
        ["kamailio", "-c", "-f", str(tmp_path / "pvs.cfg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, result.stderr
    assert "line 6" in result.stderr


@needs_kamailio
def test_kamailio_takes_unknown_assignment_target_as_avp(tmp_path: Path) -> None:
    assert check(tmp_path, "\t$foo = 1;\n") == []
    result = subprocess.run(
        ["kamailio", "-c", "-f", str(tmp_path / "pvs.cfg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
