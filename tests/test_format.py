"""kcc.format: black with the pinned mode, compile() as a sanity check, deterministic text."""

from __future__ import annotations

import tomllib

import black
import pytest

from kcc.format import BLACK_MODE, GeneratedCodeError, format_module

from .conftest import REPO


def test_formats_with_the_repository_style() -> None:
    source = "x=[1,\n]\ny = {'a':1}\ndef f(a,b):\n  return a+b\n"
    assert format_module(source) == (
        'x = [\n    1,\n]\ny = {"a": 1}\n\n\ndef f(a, b):\n    return a + b\n'
    )


def test_line_length_is_ruffs() -> None:
    ruff = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["ruff"]
    assert BLACK_MODE.line_length == ruff["line-length"] == 100
    fits = "f(" + "a" * 48 + ", " + "b" * 47 + ")\n"
    assert len(fits) == 101  # 100 columns and the newline
    assert format_module(fits) == fits
    too_long = "f(" + "a" * 49 + ", " + "b" * 47 + ")\n"
    assert format_module(too_long) == "f(\n    " + "a" * 49 + ",\n    " + "b" * 47 + ",\n)\n"


def test_line_endings_and_trailing_newline_are_normalised() -> None:
    assert format_module("x = 1\r\ny = 2\r\n\r\n\r\n") == "x = 1\ny = 2\n"
    assert format_module("x = 1\ry = 2") == "x = 1\ny = 2\n"
    assert format_module("") == ""
    assert format_module("\n\n") == ""


def test_markers_stay_on_their_statements() -> None:
    source = (
        "def request_route(ctx: object) -> None:  # a.cfg:3\n"
        "    sl.sl_send_reply(ctx, 200, 'a very long reason phrase that goes on and on and on"
        " and on', x, y, z)  # a.cfg:4\n"
    )
    assert format_module(source) == (
        "def request_route(ctx: object) -> None:  # a.cfg:3\n"
        "    sl.sl_send_reply(\n"
        '        ctx, 200, "a very long reason phrase that goes on and on and on and on", x, y, z\n'
        "    )  # a.cfg:4\n"
    )


def test_is_idempotent_and_deterministic() -> None:
    source = "def f( a ):\n  if a:  # x.cfg:1\n    return {'k' : [1,2,3]}  # x.cfg:2\n"
    once = format_module(source)
    assert format_module(once) == once
    assert format_module(source) == once


def test_black_rejection_is_an_internal_error_with_its_location() -> None:
    with pytest.raises(GeneratedCodeError) as info:
        format_module("x = 1\ny = (1,\nz = 3\n")
    err = info.value
    assert err.stage == "black"
    assert err.line == 3
    assert err.source_line == "z = 3"
    assert "black rejected the generated code at line 3" in str(err)


def test_compile_rejection_is_an_internal_error_with_its_location() -> None:
    with pytest.raises(GeneratedCodeError) as info:
        format_module("def f():\n    pass\n\n\nreturn 1\n")
    err = info.value
    assert (err.stage, err.line, err.column, err.source_line) == ("compile()", 5, 1, "return 1")
    assert err.message == "'return' outside function"
    with pytest.raises(GeneratedCodeError) as info:
        format_module("def f(a, a):\n    pass\n")
    assert (info.value.stage, info.value.line) == ("compile()", 1)


def test_nul_byte_is_an_internal_error() -> None:
    with pytest.raises(GeneratedCodeError) as info:
        format_module("x = 1\ny = 2\0\n")
    assert info.value.line == 2


def test_black_is_pinned_to_one_stable_style_year() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("black"))
    installed_year = int(black.__version__.split(".")[0])
    assert pin == f"black>={installed_year}.1,<{installed_year + 1}"
