"""kcc.codegen.literals: a cfg value can never leave its Python literal.

Each test builds ``X = <literal>`` with LibCST, formats it with kcc.format (black and
compile()), executes it in a fresh namespace and compares the value.
"""

from __future__ import annotations

import ast
import io
import tokenize

import libcst as cst
from hypothesis import given
from hypothesis import strategies as st

from kcc.codegen.literals import (
    bytes_literal,
    escape_text,
    marker_comment,
    python_string_source,
    string_literal,
)
from kcc.format import format_module

HOSTILE = [
    "",
    '"',
    "'",
    '"""',
    "'''",
    '""" + __import__("os").system("id") + """',
    '"); import os; os.system("id"); ("',
    "\\",
    "\\\\",
    "trailing backslash \\",
    "\\n is not a newline",
    "line\nbreak",
    "cr\rlf\r\n",
    "nul\0byte",
    "tab\tand\x0bvt\x0cff",
    "{} {0} {x!r} %s %(x)s $ru",
    "\x1b[31mred\x1b[0m",
    "\x7f\x80\x85\x9f",
    "line\u2028separator\u2029paragraph",
    "trojan \u202eevil\u202c source \u2066x\u2069",
    "zero\u200bwidth\ufeffbom",
    "no\u00a0break space",
    "\udcff\udcfe non-UTF-8 bytes via surrogateescape",
    "\ud83d\ude00",
    "emoji 😀 and Grüße",
    "\U000e0001 tag",
    "# not a comment",
    "x" * 500,
    "\n".join(f"a=line {i}" for i in range(40)),
]


def _exec_literal(node: cst.BaseExpression) -> object:
    module = cst.Module(
        body=[cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name("X"))], node)])]
    )
    text = format_module(module.code)
    namespace: dict[str, object] = {}
    exec(compile(text, "<literal>", "exec"), namespace)
    return namespace["X"]


def _statements(text: str) -> int:
    return len(ast.parse(text).body)


def test_hostile_strings_round_trip() -> None:
    for value in HOSTILE:
        node = string_literal(value)
        assert _exec_literal(node) == value, value
        module = cst.Module(
            body=[cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name("X"))], node)])]
        )
        assert _statements(format_module(module.code)) == 1


def test_escapes_are_exact() -> None:
    assert python_string_source("") == '""'
    assert python_string_source('say "hi"') == "'say \"hi\"'"
    assert python_string_source("it's") == '"it\'s"'
    assert python_string_source("a\\b\nc\rd\te") == '"a\\\\b\\nc\\rd\\te"'
    assert python_string_source("\0\x1b\x7f\x85") == '"\\x00\\x1b\\x7f\\x85"'
    assert python_string_source("\u202e\u2028\ufeff") == '"\\u202e\\u2028\\ufeff"'
    assert python_string_source("\udcff") == '"\\udcff"'
    assert python_string_source("\U000e0001") == '"\\U000e0001"'
    assert python_string_source("Grüße 😀 {}") == '"Grüße 😀 {}"'
    assert escape_text('a"b', quote="") == 'a"b'


def test_output_is_what_black_writes() -> None:
    """black would not change the literals (lower-case hex, its quote choice)."""
    for value in HOSTILE:
        source = f"X = {python_string_source(value)}\n"
        if len(source) <= 100:
            assert format_module(source) == source, value


def test_non_utf8_bytes_round_trip_through_surrogateescape() -> None:
    raw = b"caf\xe9 \xff\xfe \x00 ok"
    value = raw.decode("utf-8", "surrogateescape")
    evaluated = _exec_literal(string_literal(value))
    assert isinstance(evaluated, str)
    assert evaluated.encode("utf-8", "surrogateescape") == raw
    generated = format_module(f"X = {python_string_source(value)}\n")
    generated.encode("utf-8")  # the generated file itself is valid UTF-8
    assert generated == 'X = "caf\\udce9 \\udcff\\udcfe \\x00 ok"\n'


def test_long_values_become_concatenated_pieces() -> None:
    value = "v=0\r\n" + "a=rtpmap:0 PCMU/8000\r\n" * 10
    node = string_literal(value)
    assert isinstance(node, cst.ConcatenatedString)
    assert _exec_literal(node) == value
    call = cst.Call(cst.Name("append_body"), [cst.Arg(cst.Name("ctx")), cst.Arg(node)])
    text = format_module(cst.Module(body=[cst.SimpleStatementLine([cst.Expr(call)])]).code)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text.splitlines()[:3] == [
        "append_body(",
        "    ctx,",
        '    "v=0\\r\\n' + "a=rtpmap:0 PCMU/8000\\r\\n" * 3 + '"',  # cut after a line
    ]
    short = string_literal("x" * 72)
    assert isinstance(short, cst.SimpleString)
    assert isinstance(string_literal("x" * 200, chunk=None), cst.SimpleString)


def test_bytes_literals() -> None:
    every_byte = bytes(range(256))
    assert _exec_literal(bytes_literal(every_byte)) == every_byte
    assert bytes_literal(b'Via\r\n"\\').value == 'b"Via\\r\\n\\"\\\\"'


def test_marker_comment_cannot_escape_the_comment() -> None:
    comment = marker_comment("inc/evil\nimport os\r.cfg", 12)
    assert comment.value == "# inc/evil\\nimport os\\r.cfg:12"
    module = cst.Module(
        body=[
            cst.SimpleStatementLine(
                [cst.Pass()], trailing_whitespace=cst.TrailingWhitespace(comment=comment)
            )
        ]
    )
    text = format_module(module.code)
    assert text == "pass  # inc/evil\\nimport os\\r.cfg:12\n"
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    assert [t.string for t in tokens if t.type == tokenize.COMMENT] == [comment.value]


@given(st.text(st.characters(codec=None, exclude_categories=[])))
def test_any_string_round_trips(value: str) -> None:
    assert _exec_literal(string_literal(value)) == value


@given(st.binary())
def test_any_bytes_round_trip(value: bytes) -> None:
    assert _exec_literal(bytes_literal(value)) == value
