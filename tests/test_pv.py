"""Pseudo-variable structure (kcc.pv): every form, transformations, format strings."""

from __future__ import annotations

import pytest

from kcc.ast import PVar
from kcc.lexer import decode_dq_string
from kcc.pv import PvSyntaxError, parse_pvar, parse_select, pvar_error, split_format
from kcc.source import SourceFile, Span


def pv(text: str) -> PVar:
    file = SourceFile("<test>", text)
    return parse_pvar(text, file.span(0, len(text)))


def shape(value: object) -> object:
    """A PVar (and its nested parts) as plain tuples, spans left out."""
    if isinstance(value, PVar):
        return (
            value.name,
            None if value.inner is None else tuple(shape(p) for p in value.inner),
            shape(value.index),
            tuple(
                (t.name, tuple(tuple(shape(p) for p in param) for param in t.params))
                for t in value.transformations
            ),
        )
    return value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$ru", ("ru", None, None, ())),
        ("$rU", ("rU", None, None, ())),
        ("$T_reply_code", ("T_reply_code", None, None, ())),
        ("$ruri.user", ("ruri.user", None, None, ())),
        ("$?", ("?", None, None, ())),
        ("$rc", ("rc", None, None, ())),
        ("$null", ("null", None, None, ())),
        ("$var(x)", ("var", ("x",), None, ())),
        # Kamailio reads these names as plain text: no pseudo-variable inside
        ("$var($si)", ("var", ("$si",), None, ())),
        ("$shv(seen_$si)", ("shv", ("seen_$si",), None, ())),
        ("$(vz($ru){s.len})", ("vz", ("$ru",), None, (("s.len", ()),))),
        ("$avp(i:1)", ("avp", ("i:1",), None, ())),
        ("$avp(s:x)", ("avp", ("s:x",), None, ())),
        ("$xavp(a=>b)", ("xavp", ("a=>b",), None, ())),
        ("$xavp(a[0]=>b[1])", ("xavp", ("a[0]=>b[1]",), None, ())),
        ("$sel(cfg_get.a.b)", ("sel", ("cfg_get.a.b",), None, ())),
        ("$hdr(Via)[1]", ("hdr", ("Via",), 1, ())),
        ("$(hdr(Via)[1])", ("hdr", ("Via",), 1, ())),
        ("$(hdr(Via)[-1])", ("hdr", ("Via",), -1, ())),
        ("$(avp(x)[*])", ("avp", ("x",), "*", ())),
        ("$(ru{s.len})", ("ru", None, None, (("s.len", ()),))),
        (
            "$(ru{s.substr,1,2}{uri.user})",
            ("ru", None, None, (("s.substr", (("1",), ("2",))), ("uri.user", ()))),
        ),
        (
            "$sht(t=>$si)",
            ("sht", ("t=>", ("si", None, None, ())), None, ()),
        ),
        (
            "$(avp(x)[$var(i)])",
            ("avp", ("x",), ("var", ("i",), None, ()), ()),
        ),
        (
            "$(hdr(X){s.select,$var(n),;})",
            ("hdr", ("X",), None, (("s.select", ((("var", ("n",), None, ()),), (";",))),)),
        ),
        ("$(ru{s.replace,a,})", ("ru", None, None, (("s.replace", (("a",), ())),))),
    ],
)
def test_pvar_forms(text: str, expected: object) -> None:
    assert shape(pv(text)) == expected


def test_inner_text() -> None:
    assert pv("$var(x)").inner_text == "x"
    assert pv("$ru").inner_text is None
    assert pv("$sht(t=>$si)").inner_text is None


def test_pvar_spans() -> None:
    text = "$sht(t=>$si)"
    node = pv(text)
    assert (node.span.start, node.span.end) == (0, len(text))
    assert node.inner is not None
    inner = node.inner[1]
    assert isinstance(inner, PVar)
    assert inner.span.text == "$si"
    tr = pv("$(ru{s.substr,1,2})").transformations[0]
    assert tr.span.text == "{s.substr,1,2}"


@pytest.mark.parametrize(
    ("text", "column", "label"),
    [
        ("$(ru{s.len)", 4, "this `{` is never closed"),
        ("$(hdr(Via)[x])", 11, "expected an index (a number, `*` or a pseudo-variable), found `x`"),
        ("$()", 2, "expected a pseudo-variable name, found `)`"),
        ("$(ru x)", 4, "expected `(`, `[`, `{` or `)`, found ` `"),
        ("$(ru{})", 5, "expected a transformation name, found `}`"),
        ("$var(x", 4, "this `(` is never closed"),
        ("$(hdr(Via)[1)", 10, "this `[` is never closed"),
    ],
)
def test_malformed_pvar(text: str, column: int, label: str) -> None:
    with pytest.raises(PvSyntaxError) as info:
        pv(text)
    assert info.value.start == column
    assert info.value.label == label


def test_malformed_pvar_diagnostic_points_inside_token() -> None:
    source = "x = $(ru{s.len)"
    file = SourceFile("t.cfg", source)
    span = file.span(4, len(source))
    with pytest.raises(PvSyntaxError) as info:
        parse_pvar(span.text, span)
    diag = pvar_error(span.text, span, info.value)
    assert diag.code == "E0206"
    assert diag.span is not None
    assert (diag.span.start, diag.span.end) == (8, 9)
    assert diag.message == "malformed pseudo-variable `$(ru{s.len)`"


def format_parts(source: str) -> tuple[object, ...]:
    """split_format over a double-quoted literal written in ``source``."""
    file = SourceFile("<test>", source)
    body = source[1:-1]
    value, offsets = decode_dq_string(body)
    return split_format(value, offsets, Span(file, 1, 1 + len(body)))


def test_split_format_parts_and_spans() -> None:
    parts = format_parts('"from $fu to $(tu{uri.user})\\n"')
    assert parts[0] == "from "
    assert isinstance(parts[1], PVar) and parts[1].name == "fu"
    assert parts[1].span.text == "$fu"
    assert parts[2] == " to "
    assert isinstance(parts[3], PVar) and parts[3].span.text == "$(tu{uri.user})"
    assert parts[4] == "\n"


def test_split_format_maps_spans_through_escapes() -> None:
    source = '"\\t\\x41\\"$ru"'
    parts = format_parts(source)
    assert parts[0] == '\tA"'
    node = parts[1]
    assert isinstance(node, PVar)
    assert node.span.text == "$ru"
    assert node.span.start == source.index("$ru")


def test_split_format_keeps_bad_dollar_as_text() -> None:
    assert format_parts('"cost: 5$ and $"') == ("cost: 5$ and $",)
    parts = format_parts('"$(broken $ru"')
    assert parts[0] == "$(broken "
    assert isinstance(parts[1], PVar) and parts[1].name == "ru"


def test_split_format_plain() -> None:
    assert format_parts('"plain"') == ("plain",)
    assert format_parts('""') == ()


def test_select_parts() -> None:
    text = "@via[1].host"
    file = SourceFile("<test>", text)
    sel = parse_select(text, file.span(0, len(text)))
    assert [(p.name, p.index) for p in sel.parts] == [("via", "1"), ("host", None)]
    text = "@cfg_get.pstn.gw_ip"
    file = SourceFile("<test>", text)
    sel = parse_select(text, file.span(0, len(text)))
    assert [p.name for p in sel.parts] == ["cfg_get", "pstn", "gw_ip"]
    assert sel.parts[2].span.text == "gw_ip"
