"""The preprocessor: every directive, its diagnostics, spans and origin chains.

Behaviours marked "Kamailio:" were checked against ``kamailio -c`` / ``--cfg-print``
5.6.3; the last tests compare with the real binary when it is installed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kcc.preprocess as pp_module
from kcc.diagnostics import Diagnostic, DiagnosticSink, Severity, render_plain
from kcc.preprocess import (
    Define,
    Preprocessed,
    dump_tokens,
    parse_subst,
    posix_to_python,
    preprocess,
    preprocess_text,
)
from kcc.source import Span

STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
STOCK_DEFINES = [
    "WITH_MYSQL",
    "WITH_AUTH",
    "WITH_NAT",
    "WITH_USRLOCDB",
    "WITH_IPAUTH",
    "WITH_PRESENCE",
    "WITH_TLS",
    "WITH_DEBUG",
    "WITH_ANTIFLOOD",
    "WITH_JSONRPC",
    "WITH_VOICEMAIL",
    "WITH_PSTN",
    "WITH_ALIASDB",
    "WITH_SPEEDDIAL",
    "WITH_MULTIDOMAIN",
    "WITH_ACCDB",
    "WITH_RTPENGINE",
    "WITH_NATSIPPING",
    "WITH_XHTTP",
]


def run(
    tmp_path: Path,
    text: str,
    *,
    defines: dict[str, str | None] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Preprocessed, DiagnosticSink]:
    main = tmp_path / "main.cfg"
    main.write_text(text)
    sink = DiagnosticSink()
    pre = preprocess(main, sink, defines=defines, env=env if env is not None else {})
    # `#!ifexp`/`#!defexp` are tested for what they compute; that Kamailio 5.6 does
    # not have them (E0209) is tested on its own below
    sink.diagnostics = [d for d in sink.diagnostics if d.code != "E0209"]
    return pre, sink


def texts(pre: Preprocessed) -> list[str]:
    return [t.text for t in pre.tokens]


def clean(tmp_path: Path, text: str, **kw: object) -> list[str]:
    pre, sink = run(tmp_path, text, **kw)  # type: ignore[arg-type]
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    return texts(pre)


def where(span: Span) -> tuple[str, int, int]:
    return (Path(span.file.path).name, span.line, span.column)


def diags(sink: DiagnosticSink) -> list[tuple[str, str, int, int]]:
    """(code, severity, line, column) of each diagnostic, at its use site."""
    out = []
    for d in sink.sorted():
        assert d.span is not None
        site = d.span.use_site()
        out.append((d.code, d.severity.value, site.line, site.column))
    return out


def only(sink: DiagnosticSink) -> Diagnostic:
    assert len(sink.diagnostics) == 1, [render_plain(d) for d in sink.diagnostics]
    return sink.diagnostics[0]


# ---------------------------------------------------------------------------
# define / trydef / redef / undef
# ---------------------------------------------------------------------------


def test_define_expands_to_several_tokens(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, '#!define DBURL "mysql://k@h/db" 1\nx = DBURL;\n')
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", '"mysql://k@h/db"', "1", ";"]
    assert [t.kind for t in pre.tokens] == ["ID", "EQUAL", "STRING", "NUMBER", "SEMICOLON"]
    assert pre.tokens[2].value == "mysql://k@h/db"


def test_define_record(tmp_path: Path) -> None:
    pre, _ = run(tmp_path, "#!define  FLT_ACC   1   \n")
    define = pre.defines["FLT_ACC"]
    assert isinstance(define, Define)
    assert define.kind == "define"
    assert define.text == "1"
    assert define.span is not None and where(define.span) == ("main.cfg", 1, 11)
    assert [t.text for t in define.tokens] == ["1"]
    assert define.tokens[0].span.origin is None
    assert where(define.tokens[0].span) == ("main.cfg", 1, 21)


def test_expanded_token_spans_and_origin(tmp_path: Path) -> None:
    pre, _ = run(tmp_path, "#!define GW 1 + 2\n\nx = GW;\n")
    one = pre.tokens[2]
    assert one.text == "1"
    # the token's own span is in the define body ...
    assert where(one.span) == ("main.cfg", 1, 13)
    origin = one.span.origin
    assert origin is not None and origin.kind == "define" and origin.name == "GW"
    assert origin.definition is not None and where(origin.definition) == ("main.cfg", 1, 10)
    # ... and its use site is where `GW` is written
    assert where(one.span.use_site()) == ("main.cfg", 3, 5)
    assert one.span.use_site().text == "GW"
    assert where(pre.tokens[4].span) == ("main.cfg", 1, 17)


def test_nested_defines_chain_origins(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define INNER 42\n#!define OUTER (INNER)\ndebug = OUTER;\n")
    assert not sink.diagnostics
    assert texts(pre) == ["debug", "=", "(", "42", ")", ";"]
    answer = pre.tokens[3]
    chain = answer.span.origin_chain()
    assert [(o.kind, o.name) for o in chain] == [("define", "INNER"), ("define", "OUTER")]
    assert where(answer.span) == ("main.cfg", 1, 16)
    assert where(chain[0].site) == ("main.cfg", 2, 17)  # `INNER` inside OUTER's body
    assert where(answer.span.use_site()) == ("main.cfg", 3, 9)


def test_body_is_looked_up_at_use(tmp_path: Path) -> None:
    text = "#!define A B\n#!define B 1\nx = A;\n#!redefine B 2\ny = A;\n"
    assert clean(tmp_path, text) == ["x", "=", "1", ";", "y", "=", "2", ";"]


def test_empty_define_expands_to_nothing(tmp_path: Path) -> None:
    assert clean(tmp_path, "#!define E\ndebug = 3 E;\n") == ["debug", "=", "3", ";"]


def test_continuation_lines(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define LONG 1 + \\\n    2 + \\\n    3\nx = LONG;\n")
    assert not sink.diagnostics
    assert pre.defines["LONG"].text == "1 +     2 +     3"
    assert texts(pre) == ["x", "=", "1", "+", "2", "+", "3", ";"]
    assert pre.tokens[6].span.line == 3


def test_names_in_strings_comments_and_pvs_are_not_expanded(tmp_path: Path) -> None:
    text = '#!define X 9\na = "X" $var(X) $avp(s:X) X; # X\n// X\n/* X */ b = X_Y;\n'
    assert clean(tmp_path, text) == [
        "a", "=", '"X"', "$var(X)", "$avp(s:X)", "9", ";", "b", "=", "X_Y", ";",
    ]  # fmt: skip


def test_core_keywords_are_never_expanded(tmp_path: Path) -> None:
    # Kamailio: `debug` is a keyword token, so `#!define debug ...` never applies
    text = "#!define debug 5\n#!define udp tcp\ndebug = debug;\nlisten = udp:1.2.3.4;\n"
    assert clean(tmp_path, text)[:4] == ["debug", "=", "debug", ";"]
    assert clean(tmp_path, text)[6] == "udp"


def test_define_in_route_names(tmp_path: Path) -> None:
    # Kamailio: `route[RN]` with `#!define RN foo` declares route `foo`
    text = "#!define RN relay\nroute[RN] { route(RN); }\n"
    assert clean(tmp_path, text) == [
        "route", "[", "relay", "]", "{", "route", "(", "relay", ")", ";", "}",
    ]  # fmt: skip


def test_define_twice_is_an_error(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define A 1\n\n#!define A 2\nx = A;\n")
    d = only(sink)
    assert (d.code, d.severity) == ("E0113", Severity.ERROR)
    assert d.message == "`A` is already defined"
    assert d.span is not None and where(d.span) == ("main.cfg", 3, 10)
    assert [(where(lab.span), lab.text) for lab in d.labels] == [
        (("main.cfg", 1, 10), "first defined here")
    ]
    assert d.help is not None and "#!redefine" in d.help and "#!trydef" in d.help
    assert texts(pre)[2] == "1"  # the first value stays


def test_define_of_a_command_line_name_is_an_error(tmp_path: Path) -> None:
    # Kamailio: `-A X` then `#!define X` fails with "already defined"
    _, sink = run(tmp_path, "#!define X 1\n", defines={"X": None})
    d = only(sink)
    assert d.code == "E0113"
    assert d.notes == ("`X` is defined on the command line (`-D X`)",)


def test_trydef_redef(tmp_path: Path) -> None:
    text = "#!define A 1\n#!trydef A 2\n#!trydef B 3\n#!redef A 4\n#!redefine C 5\nx = A B C;\n"
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "4", "3", "5", ";"]


def test_def_alias(tmp_path: Path) -> None:
    assert clean(tmp_path, "#!def A 1\n!!define B 2\nx = A B;\n") == ["x", "=", "1", "2", ";"]


def test_undef(tmp_path: Path) -> None:
    text = "#!define A 1\n#!undef A\n#!define B 1\n#!undefine B\n#!tryundef C\nx = A B;\n"
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "A", "B", ";"]
    assert "A" not in pre.defines and "B" not in pre.defines


def test_undef_of_unknown_name_warns(tmp_path: Path) -> None:
    # Kamailio ignores the line: a warning, not an error
    _, sink = run(tmp_path, "#!undef NOPE\n#!tryundefine NOPE\n")
    d = only(sink)
    assert (d.code, d.severity, d.message) == ("W0114", Severity.WARNING, "`NOPE` is not defined")
    assert d.span is not None and where(d.span) == ("main.cfg", 1, 9)
    assert d.help == "use `#!tryundef NOPE` when the name may be undefined"


def test_dash_in_define_name(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define MY-NAME 1\n")
    d = only(sink)
    assert (d.code, d.message) == ("E0115", "`-` in the name `MY-NAME`")
    assert d.span is not None and where(d.span) == ("main.cfg", 1, 12)
    assert d.help == "use `_` instead: `MY_NAME`"
    assert "MY" not in pre.defines


def test_define_without_name(tmp_path: Path) -> None:
    _, sink = run(tmp_path, "#!define\n#!trydef   \n")
    assert diags(sink) == [("E0115", "error", 1, 1), ("E0115", "error", 2, 1)]
    assert sink.diagnostics[0].message == "`#!define` needs a name"


def test_recursive_define_is_reported_not_looped(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define A B x\n#!define B A y\nz = A;\n")
    d = only(sink)
    assert (d.code, d.message) == ("E0122", "recursive expansion of `A`")
    assert d.notes == ("expansion chain: `A` -> `B` -> `A`",)
    assert d.span is not None and where(d.span.use_site()) == ("main.cfg", 3, 5)
    assert where(d.span) == ("main.cfg", 2, 12)  # the `A` inside B's body
    assert texts(pre) == ["z", "=", "y", "x", ";"]


def test_self_recursive_define(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!define A A\nx = A;\n")
    assert [d.code for d in sink.diagnostics] == ["E0122"]
    assert texts(pre) == ["x", "=", ";"]


def test_expansion_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pp_module, "MAX_EXPANSION_TOKENS", 1000)
    names = [f"D{i}" for i in range(30)]
    lines = [f"#!define {a} {b} {b}" for a, b in itertools.pairwise(names)]
    text = "\n".join(lines) + f"\n#!define {names[-1]} x\ny = D0;\n"
    pre, sink = run(tmp_path, text)  # 2**29 tokens without the cap
    d = only(sink)
    assert (d.code, d.message) == ("E0122", "`D0` expands to too many tokens")
    assert d.span is not None and where(d.span) == ("main.cfg", 31, 5)
    assert len(pre.tokens) == 2 + 1000 + 1  # `y =`, the first 1000, `;`


def test_body_lexed_once_unless_broken(tmp_path: Path) -> None:
    # an unused broken define is not an error (Kamailio never reads it) ...
    _, sink = run(tmp_path, '#!define S "abc\n')
    assert not sink.diagnostics
    # ... but each use of it reports the lexer error at the use
    _, sink = run(tmp_path, '#!define S "abc\nx = S;\ny = S;\n')
    assert diags(sink) == [("E0101", "error", 2, 5), ("E0101", "error", 3, 5)]
    notes = list(sink.diagnostics[0].all_notes())
    assert notes[0].startswith("expanded from `S`, defined at ")


# ---------------------------------------------------------------------------
# conditionals
# ---------------------------------------------------------------------------


def test_ifdef_ifndef_else(tmp_path: Path) -> None:
    text = (
        "#!define A\n#!ifdef A\na;\n#!else\nnot_a;\n#!endif\n"
        "#!ifndef B\nnot_b;\n#!else\nb;\n#!endif\n"
        "#!ifdef B\nb2;\n#!endif\n"
    )
    assert clean(tmp_path, text) == ["a", ";", "not_b", ";"]


def test_nested_conditionals(tmp_path: Path) -> None:
    text = (
        "#!ifdef OUTER\n#!ifdef INNER\nboth;\n#!else\nouter;\n#!endif\n"
        "#!else\n#!ifdef INNER\ninner;\n#!else\nnone;\n#!endif\n#!endif\n"
    )
    assert clean(tmp_path, text) == ["none", ";"]
    assert clean(tmp_path, text, defines={"INNER": None}) == ["inner", ";"]
    assert clean(tmp_path, text, defines={"OUTER": None}) == ["outer", ";"]
    assert clean(tmp_path, text, defines={"OUTER": None, "INNER": None}) == ["both", ";"]


def test_false_region_may_hold_anything(tmp_path: Path) -> None:
    text = (
        '#!ifdef WITH_SQL\nCREATE TABLE t (id INT, "unterminated\n'
        "  #!define INSIDE 1\n/* never closed\n$( ` \u201c\n#!else\nok;\n#!endif\n"
    )
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["ok", ";"]
    assert "INSIDE" not in pre.defines


def test_directives_are_ignored_in_false_regions(tmp_path: Path) -> None:
    text = '#!ifdef NO\n#!undef NOPE\n#!bogus\ninclude_file "missing.cfg"\n#!endif\n'
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert pre.tokens == []


def test_unclosed_ifdef(tmp_path: Path) -> None:
    _, sink = run(tmp_path, "#!ifdef A\nx;\n#!ifndef  B   \ny;\n")
    assert diags(sink) == [("E0110", "error", 1, 1), ("E0110", "error", 3, 1)]
    first, second = sink.sorted()
    assert first.message == "unclosed `#!ifdef A`"
    assert second.message == "unclosed `#!ifndef B`"
    assert second.span is not None and second.span.text == "#!ifndef  B"
    assert first.label == "this block is never closed"
    assert first.notes == ("2 conditional blocks are open at the end of the input",)
    assert first.help == "add `#!endif` after the last line the condition covers"


def test_single_unclosed_has_no_count_note(tmp_path: Path) -> None:
    _, sink = run(tmp_path, "#!ifexp 1\n")
    d = only(sink)
    assert d.code == "E0110" and d.notes == ()
    assert d.message == "unclosed `#!ifexp 1`"


def test_endif_without_if_is_an_error(tmp_path: Path) -> None:
    # Kamailio: "different number of preprocessor directives"
    _, sink = run(tmp_path, "x;\n#!endif\n")
    d = only(sink)
    assert (d.code, d.severity) == ("E0111", Severity.ERROR)
    assert d.message == "`#!endif` without a matching `#!ifdef`"
    assert d.span is not None and where(d.span) == ("main.cfg", 2, 1)


def test_else_without_if_warns(tmp_path: Path) -> None:
    # Kamailio only warns ("invalid position for preprocessor directive 'else'")
    pre, sink = run(tmp_path, "#!else\nx;\n")
    d = only(sink)
    assert (d.code, d.severity) == ("W0111", Severity.WARNING)
    assert texts(pre) == ["x", ";"]


def test_second_else_warns_and_flips_again(tmp_path: Path) -> None:
    # Kamailio flips the branch at each #!else
    pre, sink = run(tmp_path, "#!ifdef X\na;\n#!else\nb;\n#!else\nc;\n#!endif\n")
    d = only(sink)
    assert (d.code, d.severity) == ("W0121", Severity.WARNING)
    assert d.message == "second `#!else` for `#!ifdef X`"
    assert d.span is not None and where(d.span) == ("main.cfg", 5, 1)
    assert [(lab.span.line, lab.text) for lab in d.labels] == [
        (3, "first `#!else`"),
        (1, "the block"),
    ]
    assert texts(pre) == ["b", ";"]


def test_text_after_ifdef_name_warns(tmp_path: Path) -> None:
    # Kamailio ignores the rest of the line
    pre, sink = run(tmp_path, "#!define X\n#!ifdef X Y\nx;\n#!endif\n")
    d = only(sink)
    assert (d.code, d.severity) == ("W0115", Severity.WARNING)
    assert d.message == "unexpected text after `#!ifdef X`"
    assert d.span is not None and where(d.span) == ("main.cfg", 2, 11) and d.span.text == "Y"
    assert texts(pre) == ["x", ";"]


def test_ifdef_without_name(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!ifdef\nx;\n#!endif\ny;\n")
    d = only(sink)  # the block is still opened: no cascade on #!endif
    assert (d.code, d.message) == ("E0115", "`#!ifdef` needs a name")
    assert texts(pre) == ["y", ";"]


def test_dash_in_ifdef_name(tmp_path: Path) -> None:
    _, sink = run(tmp_path, "#!ifdef WITH-NAT\n#!endif\n")
    assert diags(sink) == [("E0115", "error", 1, 13)]


def test_unknown_directive(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!ifdf X\n!!defin Y 1\n#!zzzzzz\n#!/usr/sbin/kamailio\nx;\n")
    assert diags(sink) == [
        ("W0116", "warning", 1, 1),
        ("W0116", "warning", 2, 1),
        ("W0116", "warning", 3, 1),
    ]
    first, second, third = sink.sorted()
    assert first.message == "unknown directive `#!ifdf`"
    assert first.help == "did you mean `#!ifdef`?"
    assert first.span is not None and first.span.text == "#!ifdf"
    assert second.help == "did you mean `!!define`?"
    assert third.help is None
    assert texts(pre) == ["x", ";"]


def test_conditionals_span_include_boundaries(tmp_path: Path) -> None:
    # Kamailio keeps one #!ifdef stack: a block opened in an included file may be
    # closed by the includer
    (tmp_path / "open.cfg").write_text("#!ifdef NOPE\n")
    pre, sink = run(tmp_path, 'include_file "open.cfg"\nskipped;\n#!endif\nkept;\n')
    assert not sink.diagnostics
    assert texts(pre) == ["kept", ";"]


# ---------------------------------------------------------------------------
# ifexp / defexp
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "taken"),
    [
        ("1", True),
        ("0", False),
        ("2 > 1", True),
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("2 ** 3 ** 2 == 512", True),
        ("1 << 3 == 8", True),
        ("-7 / 2 == -3", True),
        ("-7 % 3 == -1", True),
        ("~0 == -1", True),
        ("!0 && !!5", True),
        ("0 || 0", False),
        ("6 & 3 | 8 ^ 1", True),
        ('N == 5 && S == "abc"', True),
        ("FLAG", True),
        ("UNDEFINED", False),
        ("UNDEFINED == 0", True),
        ('"a" + "b" == "ab"', True),
        ('"a" + N == "a5"', True),
        ("N >= 5 && N <= 5 && N != 4 && N < 6", True),
        ("0x10 == 16", True),
    ],
)
def test_ifexp(tmp_path: Path, expr: str, taken: bool) -> None:
    text = f'#!define N 5\n#!define S "abc"\n#!define FLAG\n#!ifexp {expr}\nyes;\n#!endif\n'
    assert clean(tmp_path, text) == (["yes", ";"] if taken else [])


def test_defexp(tmp_path: Path) -> None:
    text = '#!define N 4\n#!defexp A N * 2 + 1\n#!defexps B "v" + A\n#!defexps C A\nx = A B C;\n'
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "9", '"v9"', '"9"', ";"]
    assert pre.defines["A"].kind == "exp" and pre.defines["A"].text == "9"
    assert pre.defines["B"].text == '"v9"'
    assert pre.defines["A"].span is not None and where(pre.defines["A"].span) == ("main.cfg", 2, 10)


@pytest.mark.parametrize(
    ("line", "column", "label"),
    [
        ("#!ifexp (1 + 2", 14, "missing `)`"),
        ("#!ifexp 1 +", 11, "the expression ends too early"),
        ("#!ifexp 4 / 0", 11, "division by zero"),
        ("#!ifexp 1 2", 11, "unexpected `2` after the expression"),
        ("#!ifexp 1 @ 2", 11, "unexpected character `@`"),
        ("#!ifexp", 7, "the expression is empty"),
        ("#!ifexp 2 ** 99999", 11, "`**` operand too large (limit 4096)"),
    ],
)
def test_ifexp_errors(tmp_path: Path, line: str, column: int, label: str) -> None:
    pre, sink = run(tmp_path, f"{line}\nx;\n#!endif\n")
    d = only(sink)
    assert d.code == "E0119"
    assert d.message == "invalid expression in `#!ifexp`"
    assert d.span is not None and where(d.span) == ("main.cfg", 1, column)
    assert d.label == label
    assert pre.tokens == []  # a bad condition is false


def test_ifexp_and_defexp_are_not_in_kamailio_5_6(tmp_path: Path) -> None:
    main = tmp_path / "main.cfg"
    main.write_text("#!defexp A 1 + 1\n#!ifexp A == 2\nx;\n#!endif\n")
    sink = DiagnosticSink()
    pre = preprocess(main, sink, env={})
    assert [(d.code, d.span.line if d.span else 0) for d in sink.diagnostics] == [
        ("E0209", 1),
        ("E0209", 2),
    ]
    assert sink.diagnostics[1].message == "`#!ifexp` is not supported by Kamailio 5.6"
    assert texts(pre) == ["x", ";"]  # still evaluated, so the rest is checked sensibly


def test_defexp_error_defines_nothing(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!defexp A 1 +\n")
    assert diags(sink) == [("E0119", "error", 1, 14)]
    assert "A" not in pre.defines


# ---------------------------------------------------------------------------
# defenv
# ---------------------------------------------------------------------------


def test_defenv_forms(tmp_path: Path) -> None:
    env = {"HOST": "example.org", "PORT": "5060", "QUOTE": 'a"b'}
    text = "#!defenv HOST\n#!defenv P=PORT\n#!defenvs H=HOST\n#!defenvs Q=QUOTE\nx = HOST P H Q;\n"
    pre, sink = run(tmp_path, text, env=env)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "example", ".", "org", "5060", '"example.org"', '"a\\"b"', ";"]
    assert pre.tokens[7].value == 'a"b'
    assert pre.defines["P"].kind == "env"
    assert pre.defines["P"].span is not None and where(pre.defines["P"].span) == ("main.cfg", 2, 10)


def test_defenv_unset(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, "#!defenv A=NOT_SET\n#!trydefenv B=NOT_SET\n#!trydefenvs C\n")
    d = only(sink)
    assert (d.code, d.message) == ("E0120", "environment variable `NOT_SET` is not set")
    assert d.span is not None and where(d.span) == ("main.cfg", 1, 12)
    assert d.help is not None and "#!trydefenv" in d.help
    assert not {"A", "B", "C"} & set(pre.defines)


def test_env_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCC_TEST_VALUE", "77")
    main = tmp_path / "main.cfg"
    main.write_text("#!defenv KCC_TEST_VALUE\nx = KCC_TEST_VALUE;\n")
    sink = DiagnosticSink()
    pre = preprocess(main, sink)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "77", ";"]


# ---------------------------------------------------------------------------
# subst / substdef
# ---------------------------------------------------------------------------


def test_subst_applies_to_later_strings_only(tmp_path: Path) -> None:
    text = 'a = "XX";\n#!subst "/XX/yy/"\nb = "XX XX";\nc = XX;\n'
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["a", "=", '"XX"', ";", "b", "=", '"yy XX"', ";", "c", "=", "XX", ";"]
    assert pre.tokens[6].value == "yy XX"
    assert where(pre.tokens[6].span) == ("main.cfg", 3, 5)  # still the written string


def test_subst_flags_separator_and_backrefs(tmp_path: Path) -> None:
    text = '#!subst "!a(b+)c!<\\\\1>!g"\n#!subst "/HELLO/hi/i"\nx = "abbc-abc" "hello Hello";\n'
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert [t.value for t in pre.tokens][2:4] == ["<bb>-<b>", "hi Hello"]


def test_subst_rules_chain_in_order(tmp_path: Path) -> None:
    text = '#!subst "/x/Q/"\n#!subst "/Q/R/"\ny = "xaxbx";\n'
    pre, _ = run(tmp_path, text)
    # Kamailio: module name `Raxbx` for this input
    assert pre.tokens[2].value == "Raxbx"


def test_subst_works_on_decoded_value_without_redecoding(tmp_path: Path) -> None:
    # Kamailio: subst sees the decoded string, and its result is not decoded again
    text = '#!subst "/X\\tY/T/"\n#!subst "/Z/W/"\na = "X\\tY";\nb = "Z\\\\t";\n'
    pre, _ = run(tmp_path, text)
    assert pre.tokens[2].value == "T"
    assert pre.tokens[6].value == "W\\t"
    assert pre.tokens[6].text == '"W\\\\t"'


def test_subst_replacement_escapes(tmp_path: Path) -> None:
    # Kamailio: `\t` in the replacement is a tab, `\q` is `q`, `\/` is `/`, `\0` the match
    text = '#!subst "/X/a\\\\tb/"\n#!subst "/Y.*/[\\\\q\\\\/\\\\0]/"\nv = "X" "Yz";\n'
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert [pre.tokens[2].value, pre.tokens[3].value] == ["a\tb", "[q/Yz]"]


def test_subst_on_pseudo_variables(tmp_path: Path) -> None:
    # Kamailio 5.6: `$name(...)` and `$(...)` always; bare `$name` only in #!KAMAILIO mode
    text = '#!subst "/QQ/ru/"\n$QQ $var(QQ) $(QQ);\n'
    pre, _ = run(tmp_path, text)
    assert texts(pre)[:3] == ["$QQ", "$var(ru)", "$(ru)"]
    pre, _ = run(tmp_path, "#!KAMAILIO\n" + text)
    assert texts(pre)[:3] == ["$ru", "$var(ru)", "$(ru)"]
    assert pre.tokens[0].value == "$ru"


def test_subst_from_define_expansion(tmp_path: Path) -> None:
    pre, _ = run(tmp_path, '#!define URL "db://HOST/x"\n#!subst "/HOST/h1/"\nu = URL;\n')
    assert pre.tokens[2].value == "db://h1/x"


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ('"/a(/b/"', "invalid regular expression `a(`: missing ), unterminated subpattern"),
        ('"/a/b/q"', "unknown flag `q` (flags are `g`, `i` and `s`)"),
        ('"/a/b"', "missing `/` separator: the form is `/regex/replacement/flags`"),
        ('"//b/"', "the regular expression is empty"),
        ('"/a/\\\\2/"', "the replacement uses `\\2` but the regular expression has 0 groups"),
        ('""', "the rule is empty"),
        ('"aXbXc"', "`a` cannot be the separator (use a punctuation character such as `/`)"),
    ],
)
def test_invalid_subst(tmp_path: Path, rule: str, label: str) -> None:
    _, sink = run(tmp_path, f"#!subst {rule}\n")
    d = only(sink)
    assert (d.code, d.message, d.label) == ("E0118", "invalid subst rule", label)
    assert d.span is not None and where(d.span) == ("main.cfg", 1, 9)
    assert d.span.text == rule


def test_subst_needs_quotes(tmp_path: Path) -> None:
    # Kamailio: "invalid subst preprocess statement"
    _, sink = run(tmp_path, "#!subst /a/b/\n#!substdef\n")
    assert diags(sink) == [("E0115", "error", 1, 9), ("E0115", "error", 2, 1)]
    assert sink.sorted()[0].message == "`#!subst` needs a quoted rule"


def test_substdef(tmp_path: Path) -> None:
    text = (
        '#!substdef "!MY_IP!10.0.0.1!g"\n#!substdefs "/NAME/kam/"\nx = MY_IP NAME "MY_IP NAME";\n'
    )
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "10.0.0.1", '"kam"', '"10.0.0.1 kam"', ";"]
    assert pre.defines["MY_IP"].kind == "substdef"
    assert pre.defines["MY_IP"].text == "10.0.0.1"
    assert pre.defines["NAME"].text == '"kam"'


def test_substdef_of_defined_name(tmp_path: Path) -> None:
    _, sink = run(tmp_path, '#!define IP 1\n#!substdef "/IP/2/"\n')
    assert [d.code for d in sink.diagnostics] == ["E0113"]


def test_posix_translation() -> None:
    assert posix_to_python("[[:digit:]]+") == "[0-9]+"
    assert posix_to_python("[^[:space:]]") == "[^ \\t\\n\\r\\f\\v]"
    assert posix_to_python("\\<w\\>") == "\\bw\\b"
    assert posix_to_python("[]a]") == "[\\]a]"
    rule = parse_subst("/^([[:alpha:]]+)-x$/\\1/")
    assert not isinstance(rule, str)
    assert rule.apply("abc-x") == "abc"


# ---------------------------------------------------------------------------
# includes
# ---------------------------------------------------------------------------


def test_include_inlines_tokens_with_origin(tmp_path: Path) -> None:
    (tmp_path / "inc.cfg").write_text("#!define FROM_INC 7\n\ndebug = FROM_INC;\n")
    pre, sink = run(tmp_path, 'a;\ninclude_file "inc.cfg"\nb = FROM_INC;\n')
    assert not sink.diagnostics
    assert texts(pre) == ["a", ";", "debug", "=", "7", ";", "b", "=", "7", ";"]
    assert [Path(f.path).name for f in pre.files] == ["main.cfg", "inc.cfg"]
    debug = pre.tokens[2]
    assert where(debug.span) == ("inc.cfg", 3, 1)
    origin = debug.span.file.origin
    assert origin is not None and origin.kind == "include" and origin.name == "inc.cfg"
    assert where(origin.site) == ("main.cfg", 2, 1)
    assert origin.site.text == 'include_file "inc.cfg"'
    seven = pre.tokens[8]  # a define from the included file, used in the main file
    assert where(seven.span) == ("inc.cfg", 1, 19)
    assert where(seven.span.use_site()) == ("main.cfg", 3, 5)


def test_include_forms(tmp_path: Path) -> None:
    (tmp_path / "a.cfg").write_text("a;\n")
    text = (
        'include_file "a.cfg"\n#!include_file "a.cfg"\n!!include_file "a.cfg"\n'
        'import_file "a.cfg"\n#!import_file "a.cfg"\n'
    )
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre) == ["a", ";"] * 5
    assert len(pre.files) == 6


def test_include_relative_to_including_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.cfg").write_text('include_file "b.cfg"\n')
    (sub / "b.cfg").write_text("b;\n")
    assert clean(tmp_path, 'include_file "sub/a.cfg"\n') == ["b", ";"]


def test_include_as_given_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "x.cfg").write_text("from_cwd;\n")
    (tmp_path / "x.cfg").write_text("from_dir;\n")
    monkeypatch.chdir(cwd)
    assert clean(tmp_path, 'include_file "x.cfg"\n') == ["from_cwd", ";"]


def test_include_absolute(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.cfg"
    other.write_text("abs;\n")
    assert clean(tmp_path, f'include_file "{other}"\n') == ["abs", ";"]


def test_missing_include(tmp_path: Path) -> None:
    pre, sink = run(tmp_path, 'import_file "optional.cfg"\ninclude_file "missing.cfg"\nx;\n')
    d = only(sink)
    assert (d.code, d.message) == ("E0112", "included file `missing.cfg` not found")
    assert d.span is not None and where(d.span) == ("main.cfg", 2, 14)
    assert d.notes == (f"tried `missing.cfg`, `{tmp_path / 'missing.cfg'}`",)
    assert d.help is not None and "import_file" in d.help
    assert texts(pre) == ["x", ";"]


def test_include_needs_quotes(tmp_path: Path) -> None:
    (tmp_path / "inc.cfg").write_text("inc;\n")
    pre, sink = run(tmp_path, "include_file inc.cfg\nx;\n#!include_file\n")
    assert diags(sink) == [("E0115", "error", 1, 14), ("E0115", "error", 3, 1)]
    assert sink.sorted()[0].message == "`include_file` needs a quoted file name"
    assert texts(pre) == ["x", ";"]  # the rest of the bad line is dropped


def test_include_name_is_not_define_expanded_but_substituted(tmp_path: Path) -> None:
    # Kamailio: `include_file INC` is an error even when INC is defined; subst applies
    (tmp_path / "real.cfg").write_text("real;\n")
    text = '#!define INC "real.cfg"\n#!subst "/FAKE/real/"\ninclude_file "FAKE.cfg"\n'
    assert clean(tmp_path, text) == ["real", ";"]
    _, sink = run(tmp_path, '#!define INC "real.cfg"\ninclude_file INC\n')
    assert [d.code for d in sink.diagnostics] == ["E0115"]


def test_recursive_include(tmp_path: Path) -> None:
    (tmp_path / "a.cfg").write_text('a;\ninclude_file "b.cfg"\n')
    (tmp_path / "b.cfg").write_text('include_file "a.cfg"\n')
    pre, sink = run(tmp_path, 'include_file "a.cfg"\n')
    d = only(sink)
    assert (d.code, d.message) == ("E0117", "recursive include of `a.cfg`")
    assert d.span is not None and where(d.span) == ("b.cfg", 1, 14)
    assert d.notes == ("include chain: `a.cfg` -> `b.cfg` -> `a.cfg`",)
    assert list(d.all_notes())[1:] == [
        f"in file included from {tmp_path / 'a.cfg'}:2:1",
        f"in file included from {tmp_path / 'main.cfg'}:1:1",
    ]
    assert texts(pre) == ["a", ";"]


def test_include_depth_limit(tmp_path: Path) -> None:
    # Kamailio: main + 10 nested includes work, the 11th is "too many includes"
    for i in range(1, 12):
        (tmp_path / f"d{i}.cfg").write_text(f'd{i};\ninclude_file "d{i + 1}.cfg"\n')
    (tmp_path / "d11.cfg").write_text("d11;\n")
    pre, sink = run(tmp_path, 'include_file "d1.cfg"\n')
    d = only(sink)
    assert (d.code, d.message) == ("E0117", "includes nested too deeply")
    assert d.span is not None and where(d.span) == ("d10.cfg", 2, 14)
    assert texts(pre)[-2:] == ["d10", ";"]
    (tmp_path / "d10.cfg").write_text("d10;\n")
    assert clean(tmp_path, 'include_file "d1.cfg"\n')[-2:] == ["d10", ";"]


def test_unreadable_main_file(tmp_path: Path) -> None:
    sink = DiagnosticSink()
    pre = preprocess(tmp_path / "nope.cfg", sink)
    d = only(sink)
    assert d.code == "E0112" and d.span is None
    assert d.message.startswith(f"cannot read `{tmp_path / 'nope.cfg'}`")
    assert pre.tokens == [] and len(pre.files) == 1


def test_preprocess_text_reads_includes_from_disk(tmp_path: Path) -> None:
    (tmp_path / "inc.cfg").write_text("inc;\n")
    sink = DiagnosticSink()
    pre = preprocess_text('include_file "inc.cfg"\n', str(tmp_path / "virtual.cfg"), sink, env={})
    assert not sink.diagnostics
    assert texts(pre) == ["inc", ";"]
    assert pre.files[0].path == str(tmp_path / "virtual.cfg")


# ---------------------------------------------------------------------------
# predefined names, -D, MOD_, compat
# ---------------------------------------------------------------------------


def test_predefined_names(tmp_path: Path) -> None:
    # Kamailio 5.6.3 defines KAMAILIO_5, KAMAILIO_5_6, KAMAILIO_5_6_3 (empty), not KAMAILIO
    pre, _ = run(tmp_path, "")
    predefined = {n for n, d in pre.defines.items() if d.kind == "predefined"}
    assert predefined == {"KAMAILIO_5", "KAMAILIO_5_6", "KAMAILIO_5_6_3"}
    assert pre.defines["KAMAILIO_5_6"].text == "" and pre.defines["KAMAILIO_5_6"].span is None
    text = "#!ifdef KAMAILIO_5_6\nyes;\n#!endif\n#!ifdef KAMAILIO\nno;\n#!endif\n"
    assert clean(tmp_path, text) == ["yes", ";"]


def test_command_line_defines(tmp_path: Path) -> None:
    pre, sink = run(
        tmp_path, "x = LEVEL FLAG S;\n", defines={"LEVEL": "3", "FLAG": None, "S": '"s"'}
    )
    assert not sink.diagnostics
    assert texts(pre) == ["x", "=", "3", '"s"', ";"]
    level = pre.defines["LEVEL"]
    assert (level.kind, level.text, level.span) == ("cmdline", "3", None)
    three = pre.tokens[2]
    assert three.span.origin is not None and three.span.origin.definition is None
    assert where(three.span.use_site()) == ("main.cfg", 1, 5)
    assert list(Diagnostic.error("E0000", "m", three.span).all_notes()) == [
        "expanded from `LEVEL`, defined at the command line (`-D`)"
    ]


def test_mod_names_follow_loadmodule(tmp_path: Path) -> None:
    # Kamailio: MOD_sl is visible right after `loadmodule "sl.so"`, not before
    text = (
        "#!ifdef MOD_sl\nearly;\n#!endif\n"
        'loadmodule "sl.so"\nloadmodule "/usr/lib/x/tm.so"\nloadmodule("rr")\n'
        'loadmodulex "$var(x).so"\n#!define MODNAME "pv.so"\nloadmodule MODNAME\n'
        "#!ifdef MOD_sl\nsl;\n#!endif\n#!ifdef MOD_tm\ntm;\n#!endif\n"
    )
    pre, sink = run(tmp_path, text)
    assert not sink.diagnostics
    assert texts(pre)[-4:] == ["sl", ";", "tm", ";"]
    mods = sorted(n for n in pre.defines if n.startswith("MOD_"))
    assert mods == ["MOD_pv", "MOD_rr", "MOD_sl", "MOD_tm"]
    assert pre.defines["MOD_sl"].kind == "predefined"


def test_mod_name_after_subst(tmp_path: Path) -> None:
    pre, _ = run(tmp_path, '#!subst "/XX/sl/"\nloadmodule "XX.so"\n')
    assert "MOD_sl" in pre.defines and pre.tokens[1].value == "sl.so"


@pytest.mark.parametrize(
    ("marker", "compat"),
    [
        ("", "max"),
        ("#!KAMAILIO", "kamailio"),
        ("#!OPENSER", "kamailio"),
        ("#!SER", "ser"),
        ("#!ALL", "max"),
        ("#!MAXCOMPAT", "max"),
        ("!!KAMAILIO", "kamailio"),
    ],
)
def test_compat_markers(tmp_path: Path, marker: str, compat: str) -> None:
    pre, sink = run(tmp_path, f"{marker}\nx;\n")
    assert not sink.diagnostics
    assert pre.compat == compat
    assert texts(pre) == ["x", ";"]


# ---------------------------------------------------------------------------
# dump_tokens
# ---------------------------------------------------------------------------


def test_dump_tokens(tmp_path: Path) -> None:
    (tmp_path / "inc.cfg").write_text("inc_line = 1;\n")
    text = '#!define GW 10 +\\\n 1\nx = GW;\ninclude_file "inc.cfg"\n  y;   z;\n'
    pre, _ = run(tmp_path, text)
    main, inc = pre.files[0].display, pre.files[1].display
    assert dump_tokens(pre) == (
        f"x = 10 + 1 ;  # {main}:3\ninc_line = 1 ;  # {inc}:1\ny ; z ;  # {main}:5\n"
    )


def test_dump_tokens_empty(tmp_path: Path) -> None:
    pre, _ = run(tmp_path, "# nothing\n")
    assert dump_tokens(pre) == ""


# ---------------------------------------------------------------------------
# robustness
# ---------------------------------------------------------------------------

_FRAGMENTS = [
    "#!define A B\n", "#!define B A\n", "#!ifdef A\n", "#!ifndef B\n", "#!else\n",
    "#!endif\n", "#!ifexp A +\n", "#!defexp C (1\n", '#!subst "/a(/"\n', '#!subst "/x/y/g"\n',
    "#!undef A\n", "#!define\n", 'include_file "main.cfg"\n', "import_file x\n", "A B C;\n",
    '"x" $var(x) "unterminated\n', "/* open\n", "\\\n", "#!defenv NOPE\n", "#!substdef \"/A/C/\"\n",
    "loadmodule \"m.so\"\n", "#!ifdef MOD_m\n", "\u201cq\u201d\n", "route[A] { }\n",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=25))
def test_never_raises(tmp_path_factory: pytest.TempPathFactory, parts: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    main = tmp / "main.cfg"
    main.write_text("".join(parts))
    sink = DiagnosticSink()
    pre = preprocess(main, sink, env={})
    assert all(t.kind not in ("DIRECTIVE", "INCLUDE") for t in pre.tokens)
    for d in sink.diagnostics:
        render_plain(d)


# ---------------------------------------------------------------------------
# the stock config
# ---------------------------------------------------------------------------

needs_stock = pytest.mark.skipif(not STOCK_CFG.exists(), reason="no /etc/kamailio/kamailio.cfg")


@needs_stock
def test_stock_config_plain() -> None:
    sink = DiagnosticSink()
    pre = preprocess(STOCK_CFG, sink, env={})
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    assert pre.compat == "kamailio"
    assert all(t.kind not in ("DIRECTIVE", "INCLUDE") for t in pre.tokens)
    assert "MOD_tm" in pre.defines and "MOD_db_mysql" not in pre.defines
    assert "DBURL" not in pre.defines  # its #!trydef is inside #!ifdef WITH_MYSQL
    assert pre.defines["FLT_ACC"].text == "1"
    # `debug=DBGLEVEL` with DBGLEVEL 2 (no WITH_DEBUG)
    i = texts(pre).index("debug")
    assert texts(pre)[i : i + 3] == ["debug", "=", "2"]
    origin = pre.tokens[i + 2].span.origin
    assert origin is not None and origin.name == "DBGLEVEL"
    assert "auth_db" not in [t.value for t in pre.tokens if t.kind == "STRING"]


@needs_stock
def test_stock_config_with_features() -> None:
    sink = DiagnosticSink()
    pre = preprocess(STOCK_CFG, sink, defines=dict.fromkeys(STOCK_DEFINES), env={})
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    mods = {n[4:] for n in pre.defines if n.startswith("MOD_")}
    assert {"db_mysql", "auth", "auth_db", "nathelper", "rtpengine", "tls", "presence"} <= mods
    assert pre.defines["DBURL"].text == '"mysql://kamailio:kamailiorw@localhost/kamailio"'
    strings = [t.value for t in pre.tokens if t.kind == "STRING"]
    assert "mysql://kamailio:kamailiorw@localhost/kamailio" in strings
    i = texts(pre).index("debug")
    assert texts(pre)[i : i + 3] == ["debug", "=", "3"]


@pytest.mark.kamailio
@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
@needs_stock
@pytest.mark.parametrize("count", [0, 3, 8, len(STOCK_DEFINES)])
def test_stock_config_matches_kamailio_cfg_print(count: int) -> None:
    """``kamailio --cfg-print`` resolves ifdefs and includes (not defines): preprocessing
    its output must give the same tokens as preprocessing the original."""
    names = STOCK_DEFINES[:count]
    args = [arg for name in names for arg in ("-A", name)]
    printed = subprocess.run(
        ["kamailio", "--cfg-print", "-f", str(STOCK_CFG), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    assert printed.strip()
    ours = preprocess(STOCK_CFG, DiagnosticSink(), defines=dict.fromkeys(names), env={})
    theirs = preprocess_text(
        printed, str(STOCK_CFG), DiagnosticSink(), defines=dict.fromkeys(names), env={}
    )
    assert texts(ours) == texts(theirs)


def test_text_after_endif_hides_the_directive(tmp_path: Path) -> None:
    # Kamailio: `#!endif // X` and `#!else X` are not directives (the block stays open)
    pre, sink = run(tmp_path, "#!ifdef X\na;\n#!else X\nb;\n#!endif // X\nc;\n#!endif\nd;\n")
    assert diags(sink) == [("W0115", "warning", 3, 8), ("W0115", "warning", 5, 9)]
    first = sink.sorted()[0]
    assert first.message == "text after `#!else`: this line is not an `#!else`"
    assert first.span is not None and first.span.text == "X"
    assert texts(pre) == ["d", ";"]
    _, sink = run(tmp_path, "#!ifdef X\n#!endif   # X\n")
    assert [d.code for d in sink.sorted()] == ["E0110", "W0115"]


@pytest.mark.parametrize("name", ["x" * 5000, "a\\x00b", "dir/" * 2000 + "f.cfg"])
def test_impossible_include_names_are_not_found(tmp_path: Path, name: str) -> None:
    """Found by fuzzing: a name the OS refuses (too long, NUL) is a missing file, not a crash."""
    _, sink = run(tmp_path, f'include_file "{name}"\nimport_file "{name}"\n')
    assert [(d.code, d.span.line if d.span else 0) for d in sink.diagnostics] == [("E0112", 1)]
