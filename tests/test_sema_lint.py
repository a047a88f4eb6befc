"""Constant arguments (E0406-E0408), locks (W0701, W0702) and dead code (W0801, W0802)."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from pathlib import Path

import pytest

from kcc.pipeline import run_pipeline
from kcc.sema.constants import hostport_error, posix_ere_error

LINT_CODES = {"E0406", "E0407", "E0408", "W0701", "W0702", "W0801", "W0802"}
MODULES = (
    'loadmodule "tm.so"\nloadmodule "sl.so"\nloadmodule "pv.so"\n'
    'loadmodule "cfgutils.so"\nloadmodule "textops.so"\n'
)


def check(tmp_path: Path, body: str, extra: str = "") -> list[tuple[str, int, str]]:
    """Diagnostics of the lint passes for a request_route with ``body`` (line 7 on)."""
    path = tmp_path / "lint.cfg"
    path.write_text(f"{MODULES}request_route {{\n{body}}}\n{extra}", encoding="utf-8")
    ctx = run_pipeline(path)
    return [
        (d.code, d.span.use_site().line if d.span else 0, d.message)
        for d in ctx.sink.sorted()
        if d.code in LINT_CODES
    ]


# -- reply codes ----------------------------------------------------------------------------


def test_reply_codes(tmp_path: Path) -> None:
    body = (
        '\tsl_send_reply("4040", "x");\n'
        '\tsl_send_reply("99", "x");\n'
        '\tsl_send_reply("abc", "x");\n'
        '\tsl_send_reply("699", "x");\n'
        '\tsl_send_reply("$var(code)", "x");\n'
        "\texit;\n"
    )
    assert check(tmp_path, body) == [
        ("E0406", 7, "reply code `4040` is outside 100..699"),
        ("E0406", 8, "reply code `99` is outside 100..699"),
        ("E0406", 9, "reply code `abc` is not a number"),
    ]


def test_reply_code_from_define(tmp_path: Path) -> None:
    path = tmp_path / "d.cfg"
    path.write_text(
        '#!define CODE "700"\nloadmodule "sl.so"\n'
        'request_route {\n\tsl_send_reply(CODE, "x");\n\texit;\n}\n'
    )
    ctx = run_pipeline(path)
    assert [(d.code, d.span.use_site().line if d.span else 0) for d in ctx.sink.diagnostics] == [
        ("E0406", 4)
    ]


# -- regular expressions --------------------------------------------------------------------


def test_regex_positions(tmp_path: Path) -> None:
    body = (
        '\tif ($rU =~ "^(00|\\+[1-9]") exit;\n'
        '\tif (t_check_status("5[0-9")) exit;\n'
        "\tswitch ($rU) {\n"
        '\tcase /"a{2,1}":\n'
        "\t\texit;\n"
        "\t}\n"
        '\t$var(re) = "(";\n'
        '\tif ($rU =~ "^[[:digit:]]{3,}$") exit;\n'
        "\texit;\n"
    )
    assert check(tmp_path, body) == [
        ("E0407", 7, "regular expression `^(00|\\+[1-9]` does not compile"),
        ("E0407", 8, "regular expression `5[0-9` does not compile"),
        ("E0407", 10, "regular expression `a{2,1}` does not compile"),
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("a(", "this `(` is never closed"),
        ("*a", "`*` has nothing before it to repeat"),
        ("a|+b", "`+` has nothing before it to repeat"),
        ("[[:digits:]]", "`[:digits:]` is not a character class"),
        ("[z-a]", "the range `z-a` is backwards"),
        ("a{1,2,3}", "`{1,2,3}` is not a repetition count (`{n}`, `{n,}` or `{n,m}`)"),
        ("a{40000}", "`{40000}`: a count above 32767"),
        ("(?:a)", "`?` has nothing before it to repeat"),
        ("\\1(a)", "back-reference `\\1` names no group closed before it"),
        ("^*", "`*` cannot repeat the anchor `^`"),
        ("a\\", "trailing backslash"),
    ],
)
def test_posix_ere_errors(pattern: str, reason: str) -> None:
    error = posix_ere_error(pattern)
    assert error is not None
    assert error.message == reason


@pytest.mark.parametrize(
    "pattern",
    ["a)", "\\d+", "a{,3}", "[]a]", "[a-]", "()", "|a", "[[:alpha:][:digit:]]", "[a-Z]", "a**"],
)
def test_posix_ere_accepts_what_glibc_accepts(pattern: str) -> None:
    assert posix_ere_error(pattern) is None


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "regcomp") else None


def test_posix_ere_agrees_with_glibc() -> None:
    """Random short patterns over the special characters: kcc and glibc's regcomp
    (REG_EXTENDED|REG_ICASE|REG_NOSUB, as Kamailio calls it) agree on every one."""
    libc = _libc()
    if libc is None:
        pytest.skip("no C library regcomp")
    regcomp, regfree = libc.regcomp, libc.regfree
    buffer = ctypes.create_string_buffer(1024)  # larger than glibc's regex_t
    rng = random.Random(20240611)
    alphabet = "ab()[]{}*+?|^$\\-:.,12Z=`"
    disagreements = []
    for _ in range(20000):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        status = regcomp(buffer, pattern.encode(), 1 | 2 | 8)
        if status == 0:
            regfree(buffer)
        if (status == 0) != (posix_ere_error(pattern) is None):
            disagreements.append(pattern)
    assert disagreements == []


# -- host:port ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1:5060", None),
        ("udp:gw.example.com:5060", None),
        ("tls:[::1]:5061", None),
        ("[::1]", None),
        ("gw.example.com", None),
        ("::1:5060", "an IPv6 address must be written in brackets (`[::1]:5060`)"),
        ("udp:127.0.0.1:70000", "port 70000 is outside 1..65535"),
        ("127.0.0.1:0", "port 0 is outside 1..65535"),
        ("127.0.0.1:50x", "`50x` is not a port number"),
        ("gw..example.com", "`gw..example.com` has an empty label"),
        ("gw example", "` ` cannot appear in a host name"),
        ("[::1", "`[` of an IPv6 address is never closed"),
        ("udp:", "no host"),
    ],
)
def test_hostport(text: str, reason: str | None) -> None:
    assert hostport_error(text) == reason


def test_hostport_argument(tmp_path: Path) -> None:
    body = '\tforward("::1:5060");\n\tforward("127.0.0.1:5060");\n\texit;\n'
    assert check(tmp_path, body) == [("E0408", 7, "malformed next hop `::1:5060`")]


# -- locks -----------------------------------------------------------------------------------


def test_unlock_never_locked(tmp_path: Path) -> None:
    body = '\tunlock("a");\n\texit;\n'
    assert check(tmp_path, body) == [("W0701", 7, "unlock of `a`, which is never locked")]


def test_lock_released_on_every_path(tmp_path: Path) -> None:
    body = (
        '\tlock("a");\n'
        '\tif ($var(x) == 1) {\n\t\tunlock("a");\n\t\texit;\n\t}\n'
        '\tswitch ($rU) {\n\tcase "1":\n\t\tbreak;\n\tdefault:\n\t\t$var(y) = 2;\n\t}\n'
        '\tunlock("a");\n'
        "\texit;\n"
    )
    assert check(tmp_path, body) == []


def test_lock_leaked_at_exit_in_a_branch(tmp_path: Path) -> None:
    body = '\tlock("a");\n\tif ($var(x) == 1) {\n\t\texit;\n\t}\n\tunlock("a");\n\texit;\n'
    assert check(tmp_path, body) == [("W0702", 7, "lock `a` is not released on every path")]


def test_lock_leaked_at_end_of_route(tmp_path: Path) -> None:
    body = '\tlock("a");\n\tif ($var(x) == 1) {\n\t\tunlock("a");\n\t}\n'
    assert check(tmp_path, body) == [("W0702", 7, "lock `a` is not released on every path")]


def test_sub_route_releases_the_lock(tmp_path: Path) -> None:
    body = '\tlock("a");\n\troute(DONE);\n\texit;\n'
    extra = (
        'route[DONE] {\n\tif ($var(x) == 1) {\n\t\tunlock("a");\n\t\treturn;\n\t}\n'
        '\tunlock("a");\n}\n'
    )
    assert check(tmp_path, body, extra) == []


def test_sub_route_exits_with_the_lock(tmp_path: Path) -> None:
    body = '\tlock("a");\n\troute(CHECK);\n\tunlock("a");\n\texit;\n'
    extra = "route[CHECK] {\n\tif ($var(x) == 1) {\n\t\tdrop;\n\t}\n}\n"
    assert check(tmp_path, body, extra) == [
        ("W0702", 7, "lock `a` is not released on every path"),
    ]


def test_trylock_holds_only_where_it_succeeded(tmp_path: Path) -> None:
    body = (
        '\tif (!trylock("a")) {\n\t\texit;\n\t}\n'
        '\tunlock("a");\n'
        '\tif (trylock("b")) {\n\t\tunlock("b");\n\t}\n'
        "\texit;\n"
    )
    assert check(tmp_path, body) == []


def test_lock_in_loop(tmp_path: Path) -> None:
    body = (
        "\t$var(i) = 0;\n"
        '\twhile ($var(i) < 3) {\n\t\tlock("a");\n\t\t$var(i) = $var(i) + 1;\n'
        '\t\tunlock("a");\n\t}\n'
        "\texit;\n"
    )
    assert check(tmp_path, body) == []


# -- dead code and constant conditions ---------------------------------------------------------


def test_unreachable_after_exit_and_if_else(tmp_path: Path) -> None:
    body = (
        "\tif ($var(x) == 1) {\n\t\texit;\n\t\t$var(y) = 1;\n\t}\n"
        "\tif ($var(x) == 2) {\n\t\treturn;\n\t} else {\n\t\tdrop;\n\t}\n"
        "\t$var(z) = 1;\n"
    )
    assert check(tmp_path, body) == [
        ("W0801", 9, "unreachable statement"),
        ("W0801", 16, "unreachable statement"),
    ]


def test_code_after_an_ifdef_is_another_variant(tmp_path: Path) -> None:
    body = "#!ifdef WITH_X\n\texit;\n#!endif\n\t$var(z) = 1;\n\texit;\n"
    path = tmp_path / "v.cfg"
    path.write_text(f"{MODULES}request_route {{\n{body}}}\n")
    ctx = run_pipeline(path, defines={"WITH_X": None})
    assert [d.code for d in ctx.sink.diagnostics] == []


def test_break_in_switch(tmp_path: Path) -> None:
    body = '\tswitch ($rU) {\n\tcase "1":\n\t\tbreak;\n\t\t$var(y) = 1;\n\t}\n\texit;\n'
    assert check(tmp_path, body) == [("W0801", 10, "unreachable statement")]


def test_constant_conditions(tmp_path: Path) -> None:
    body = (
        "\tif (1) $var(a) = 1;\n"
        '\tif ("a" == "b") $var(a) = 2;\n'
        "\tif (!0 && 2 > 1) $var(a) = 3;\n"
        "\tif ($var(a) == 1) $var(a) = 4;\n"
        "\twhile (1) {\n\t\tif ($var(a) == 5) break;\n\t}\n"
        "\twhile (0) {\n\t\t$var(a) = 6;\n\t}\n"
        "\texit;\n"
    )
    assert check(tmp_path, body) == [
        ("W0802", 7, "constant condition"),
        ("W0802", 8, "constant condition"),
        ("W0802", 9, "constant condition"),
        ("W0802", 14, "constant condition"),
    ]


def test_define_switch_is_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "dbg.cfg"
    path.write_text(
        '#!define DEBUG 0\nloadmodule "xlog.so"\n'
        'request_route {\n\tif (DEBUG) xlog("L_INFO", "x\\n");\n\texit;\n}\n'
    )
    assert run_pipeline(path).sink.diagnostics == []


def test_infinite_loop(tmp_path: Path) -> None:
    body = "\twhile (1) {\n\t\t$var(a) = 1;\n\t}\n\texit;\n"
    path = tmp_path / "loop.cfg"
    path.write_text(f"{MODULES}request_route {{\n{body}}}\n")
    [diag] = run_pipeline(path).sink.diagnostics
    assert diag.code == "W0802"
    assert diag.label == "this condition is always true and nothing in the loop leaves it"
