"""The lexer: token kinds, decoded values, exact spans, and recovery from bad input."""

from __future__ import annotations

import pytest

from kcc.diagnostics import DiagnosticSink, render_plain
from kcc.lexer import Lexer, Token, decode_dq_string, tokenize
from kcc.source import SourceFile


def lex(text: str) -> tuple[list[Token], DiagnosticSink]:
    sink = DiagnosticSink()
    return tokenize(SourceFile("t.cfg", text), sink), sink


def kinds(text: str) -> list[str]:
    tokens, sink = lex(text)
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    return [t.kind for t in tokens]


def values(text: str) -> list[object]:
    tokens, sink = lex(text)
    assert not sink.diagnostics
    return [t.value for t in tokens]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("0x1F", 31),
        ("0X10", 16),
        ("017", 15),
        ("101b", 5),
        ("yes", 1),
        ("on", 1),
        ("true", 1),
        ("enable", 1),
        ("no", 0),
        ("off", 0),
        ("false", 0),
        ("disable", 0),
    ],
)
def test_numbers(text: str, value: int) -> None:
    tokens, sink = lex(text)
    assert not sink.diagnostics
    assert [(t.kind, t.value, t.text) for t in tokens] == [("NUMBER", value, text)]


def test_leading_zero_with_8_is_an_error() -> None:
    tokens, sink = lex("x = 09000;")
    assert [d.code for d in sink.diagnostics] == ["E0105"]
    assert tokens[2].kind == "NUMBER"


def test_strings_and_escapes() -> None:
    assert values(r'"a\tb\n\"q\"\\ \x41\101 \+\d"') == ['a\tb\n"q"\\ AA \\+\\d']
    assert values("'raw \\n $ru'") == ["raw \\n $ru"]
    # backslash-newline inside a string is removed, plain newlines are kept
    assert values('"one\\\ntwo\nthree"') == ["onetwo\nthree"]


def test_decode_offsets_point_into_the_body() -> None:
    value, offsets = decode_dq_string(r"a\nb$ru")
    assert value == "a\nb$ru"
    assert offsets == [0, 1, 3, 4, 5, 6]


def test_keywords_ids_and_operators() -> None:
    assert kinds("if (a == b && !c || d =~ e) { x = $y + 1; } else exit;") == [
        "IF", "LPAR", "ID", "EQEQ", "ID", "OP_AND", "OP_NOT", "ID", "OP_OR", "ID", "MATCH",
        "ID", "RPAR", "LBRACE", "ID", "EQUAL", "PVAR", "PLUS", "NUMBER", "SEMICOLON",
        "RBRACE", "ELSE", "EXIT", "SEMICOLON",
    ]  # fmt: skip
    assert kinds("a and b or not c mod d") == [
        "ID", "OP_AND", "ID", "OP_OR", "OP_NOT", "ID", "OP_MOD", "ID",
    ]  # fmt: skip
    assert kinds("<< >> <= >= < > != += (int) (str) ~ ^ & |") == [
        "LSHIFT", "RSHIFT", "LTE", "GTE", "LT", "GT", "NOTEQ", "PLUSEQ", "INTCAST",
        "STRCAST", "TILDE", "CARET", "AMP", "VBAR",
    ]  # fmt: skip


def test_colon_keywords() -> None:
    tokens, _ = lex("msg:len > 10; forward(uri:host, uri:port);")
    assert [t.text for t in tokens if t.kind == "ID"] == [
        "msg:len",
        "forward",
        "uri:host",
        "uri:port",
    ]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("10.0.0.1", "IPV4", "10.0.0.1"),
        ("::1", "IPV6", "::1"),
        ("fe80::1", "IPV6", "fe80::1"),
        ("2001:db8::a:b", "IPV6", "2001:db8::a:b"),
        ("::ffff:1.2.3.4", "IPV6", "::ffff:1.2.3.4"),
    ],
)
def test_addresses(text: str, kind: str, value: str) -> None:
    tokens, sink = lex(text)
    assert not sink.diagnostics
    assert [(t.kind, t.value) for t in tokens] == [(kind, value)]


def test_listen_spec_tokens() -> None:
    assert kinds("listen=udp:127.0.0.1:5060") == [
        "ID", "EQUAL", "ID", "COLON", "IPV4", "COLON", "NUMBER",
    ]  # fmt: skip
    assert kinds("listen=tcp:[::1]:5061") == [
        "ID", "EQUAL", "ID", "COLON", "LSQB", "IPV6", "RSQB", "COLON", "NUMBER",
    ]  # fmt: skip
    # `case 1:` is not an address
    assert kinds("case 1: break;") == ["CASE", "NUMBER", "COLON", "BREAK", "SEMICOLON"]


def test_bad_ipv4_octet() -> None:
    tokens, sink = lex("src_ip == 10.0.0.256")
    assert [d.code for d in sink.diagnostics] == ["E0106"]
    assert tokens[-1].kind == "IPV4"


@pytest.mark.parametrize(
    "pv",
    [
        "$ru",
        "$rU",
        "$var(x)",
        "$avp(i:1)",
        "$(ru{s.len})",
        "$(hdr(Via)[1])",
        "$hdr(Via)[1]",
        "$xavp(a=>b)",
        "$sht(ipban=>$si)",
        "$sel(cfg_get.pstn.gw_ip)",
        "$ruri.user",
        "$T_reply_code",
        "$?",
        "$(avp(x)[*]{s.substr,1,2}{uri.user})",
        "$null",
    ],
)
def test_pseudo_variables_are_single_tokens(pv: str) -> None:
    tokens, sink = lex(f"{pv};")
    assert not sink.diagnostics
    assert [(t.kind, t.text) for t in tokens] == [("PVAR", pv), ("SEMICOLON", ";")]


def test_selects() -> None:
    tokens, _ = lex('@cfg_get.pstn.gw_ip @hf_value["Via"][1].branch;')
    assert [(t.kind, t.text) for t in tokens] == [
        ("SELECT", "@cfg_get.pstn.gw_ip"),
        ("SELECT", '@hf_value["Via"][1].branch'),
        ("SEMICOLON", ";"),
    ]


def test_route_names_and_event_names() -> None:
    tokens, _ = lex("route[1a] failure_route[RETRY] route[3] event_route[tm:branch-failure:X]")
    assert [(t.kind, t.text) for t in tokens if t.kind not in {"LSQB", "RSQB"}] == [
        ("ROUTE", "route"),
        ("ID", "1a"),
        ("FAILURE_ROUTE", "failure_route"),
        ("ID", "RETRY"),
        ("ROUTE", "route"),
        ("NUMBER", "3"),
        ("EVENT_ROUTE", "event_route"),
        ("EVENT_NAME", "tm:branch-failure:X"),
    ]


def test_comments() -> None:
    text = "a # comment\nb // comment\nc /* x /* nested */ y */ d"
    assert [t.text for t in lex(text)[0]] == ["a", "b", "c", "d"]


def test_directives_are_line_tokens() -> None:
    text = "#!define X 1\n  !!ifdef X\nx; #!define not_a_directive\nif (!!y) exit;\n"
    tokens, sink = lex(text)
    assert not sink.diagnostics
    directives = [t for t in tokens if t.kind == "DIRECTIVE"]
    assert [(t.text, t.value[0]) for t in directives] == [
        ("#!define X 1", "define"),
        ("!!ifdef X", "ifdef"),
    ]
    # `!!` in an expression is a double negation, not a directive
    assert [t.kind for t in tokens][-8:] == [
        "IF", "LPAR", "OP_NOT", "OP_NOT", "ID", "RPAR", "EXIT", "SEMICOLON",
    ]  # fmt: skip


def test_directive_continuation_lines() -> None:
    tokens, _ = lex("#!define LONG a \\\n  b\nnext")
    assert tokens[0].kind == "DIRECTIVE"
    assert tokens[0].text == "#!define LONG a \\\n  b"
    assert tokens[1].text == "next"
    assert tokens[1].span.line == 3


def test_skip_to_directive_ignores_anything() -> None:
    file = SourceFile("t.cfg", 'x "unterminated\n/* open\n#!endif\ny')
    lexer = Lexer(file, DiagnosticSink())
    directive = lexer.skip_to_directive()
    assert directive is not None
    assert directive.value[0] == "endif"
    assert lexer.next() is not None


def test_spans_are_exact() -> None:
    tokens, _ = lex('request_route {\n\txlog("L_INFO", "hi $ru");\n}')
    xlog = tokens[2]
    assert (xlog.text, xlog.span.line, xlog.span.column) == ("xlog", 2, 2)
    string = tokens[6]
    assert (string.span.line, string.span.column, string.span.end_column) == (2, 17, 25)


def test_typographic_quotes_are_reported_and_recovered() -> None:
    tokens, sink = lex("loadmodule “pv.so”\nsl_send_reply(“404”, “Not Found”);")
    assert [d.code for d in sink.diagnostics] == ["E0103", "E0103", "E0103"]
    assert [t.value for t in tokens if t.kind == "STRING"] == ["pv.so", "404", "Not Found"]
    first = render_plain(sink.diagnostics[0])
    assert first == (
        'error[E0103]: typographic quote in place of `"`\n'
        " --> t.cfg:1:12\n"
        "  |\n"
        "1 | loadmodule “pv.so”\n"
        "  |            ^^^^^^^ typographic quotes around this string\n"
        "  |\n"
        '  = help: replace `“` and `”` with straight double quotes `"` '
        "(word processors change them as you type)\n"
    )


def test_unterminated_things() -> None:
    _, sink = lex('x = "abc;\ny = 1;')
    assert [d.code for d in sink.diagnostics] == ["E0101"]
    _, sink = lex("/* never closed")
    assert [d.code for d in sink.diagnostics] == ["E0102"]
    _, sink = lex("$var(x = 1;")
    assert [d.code for d in sink.diagnostics] == ["E0107"]
    _, sink = lex("x = “abc;")
    assert [d.code for d in sink.diagnostics] == ["E0101"]


def test_unexpected_characters_are_merged() -> None:
    tokens, sink = lex("a §§§ b \x00 c")
    assert [d.code for d in sink.diagnostics] == ["E0104", "E0104"]
    assert [t.text for t in tokens] == ["a", "b", "c"]


def test_binary_garbage_never_raises() -> None:
    garbage = bytes(range(256)).decode("latin-1") * 4
    tokens, sink = lex(garbage)
    assert sink.has_errors
    assert all(t.span.end <= len(garbage) for t in tokens)
