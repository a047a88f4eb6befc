"""Kamailio value semantics (``kcc_runtime.values``) and the reference evaluator.

``MEASURED`` is what Kamailio 5.6.3 logged for each expression (``$var(a)``,
``$var(b)`` set as given, the result assigned to an AVP and printed with ``xlog``;
``NO_VALUE`` where Kamailio logged "rval expression evaluation failed" and left the
AVP unset). ``test_kamailio_values.py`` replays the same table against the installed
Kamailio; here it pins both ``kcc_runtime.values`` and ``tests/kamailio_eval.py``.
"""

from __future__ import annotations

import re
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kcc_runtime import values as v

from kcc import ast
from kcc.diagnostics import DiagnosticSink
from kcc.parser import parse_text
from tests.kamailio_eval import NoValueError, RefValue, evaluate

NO_VALUE: Final = "<no value>"

Env = dict[str, RefValue]

#: (setup for $var, expression, value Kamailio 5.6.3 gave); the type of the value counts
MEASURED: Final[list[tuple[Env, str, RefValue]]] = [
    ({"a": 1, "b": 0}, "$var(a) / $var(b)", NO_VALUE),
    ({"a": 7, "b": 0}, "$var(a) mod $var(b)", NO_VALUE),
    ({"a": 1, "b": 0}, "!($var(a) / $var(b))", NO_VALUE),
    ({"a": 1, "b": 0}, "($var(a) / $var(b)) + 1", NO_VALUE),
    ({"a": 1, "b": 0}, "selval(0, $var(a) / $var(b), 2)", 2),
    ({"a": 1, "b": 0}, "selval(1, $var(a) / $var(b), 2)", NO_VALUE),
    ({"a": 2147483647}, "$var(a) + 1", -2147483648),
    ({"a": -2147483647}, "$var(a) - 2", 2147483647),
    ({"a": 65536}, "$var(a) * $var(a)", 0),
    ({"a": -2147483648}, "-$var(a)", -2147483648),
    ({}, "4294967297 + $var(z)", 1),
    ({"a": 1}, "$var(a) << 31", -2147483648),
    ({"a": 1}, "$var(a) << 32", 1),
    ({"a": 1}, "$var(a) << 33", 2),
    ({"a": 1, "b": -1}, "$var(a) << $var(b)", -2147483648),
    ({"a": 1, "b": -1}, "$var(a) >> $var(b)", 0),
    ({"a": -8}, "$var(a) >> 1", -4),
    ({"a": -1}, "$var(a) >> 32", -1),
    ({"a": -7}, "$var(a) / 2", -3),
    ({"a": -7}, "$var(a) mod 3", -1),
    ({"a": 7}, "$var(a) mod -3", 1),
    ({"a": "12abc"}, "$var(a) + 0", "12abc0"),
    ({"a": "12abc"}, "0 + $var(a)", 0),
    ({"a": " 12"}, "0 + $var(a)", 0),
    ({"a": "12 "}, "0 + $var(a)", 0),
    ({"a": "+12"}, "0 + $var(a)", 12),
    ({"a": "-12"}, "0 + $var(a)", -12),
    ({"a": "010"}, "0 + $var(a)", 10),
    ({"a": "0x1F"}, "0 + $var(a)", 31),
    ({"a": "0XfF"}, "0 + $var(a)", 255),
    ({"a": "-0x10"}, "0 + $var(a)", 0),
    ({"a": "0x"}, "0 + $var(a)", 0),
    ({"a": "0xFFFFFFFF"}, "0 + $var(a)", -1),
    ({"a": "0x100000000"}, "0 + $var(a)", 0),
    ({"a": "0x1FFFFFFFF"}, "0 + $var(a)", -1),
    ({"a": "2147483648"}, "0 + $var(a)", 0),
    ({"a": "-2147483648"}, "0 + $var(a)", -2147483648),
    ({"a": "4294967295"}, "0 + $var(a)", 0),
    ({"a": "1e3"}, "0 + $var(a)", 0),
    ({"a": ""}, "0 + $var(a)", 0),
    ({"a": "abc"}, "$var(a) + 1", "abc1"),
    ({"a": "2"}, "1 + $var(a)", 3),
    ({}, "$null + 1", "1"),
    ({}, "1 + $null", 1),
    ({}, '"a" + $null', "a"),
    ({}, "$null + $null", ""),
    ({"a": 5}, "(str)$var(a) + 3", "53"),
    ({"a": "12abc"}, "(int)$var(a)", 0),
    ({"a": "5"}, "-$var(a)", -5),
    ({"a": "5"}, "~$var(a)", -6),
    ({"a": "abc"}, "!$var(a)", 1),
    ({"a": "5"}, "!$var(a)", 0),
    ({"a": 123}, "strlen($var(a))", 3),
    ({"a": -12}, "strlen($var(a))", 3),
    ({}, "strlen($null)", 0),
    ({"a": 0}, "strempty($var(a))", 0),
    ({}, "strempty($null)", 1),
    ({"a": "x"}, 'selval($var(a), "a", "b")', "b"),
    ({"a": -1}, 'selval($var(a), "a", "b")', "b"),
    ({"a": "10"}, "$var(a) == 10", 1),
    ({"a": "abc"}, "10 == $var(a)", 0),
    ({"a": "abc"}, "0 == $var(a)", 1),
    ({"a": "010"}, "$var(a) == 10", 0),
    ({"a": "010"}, "10 == $var(a)", 1),
    ({"a": "abc"}, "$var(a) < 1", 1),
    ({"a": "10", "b": "9"}, "$var(a) < $var(b)", 0),
    ({"a": "abc"}, "$var(a) ieq 0", 1),
    ({"a": "abc"}, '$var(a) ne "ABC"', 1),
    ({"a": 12}, '$var(a) =~ "1"', 1),
    ({}, '$null =~ "^$"', 1),
    ({}, "$null == $null", 1),
    ({}, "$null == 0", 1),
    ({}, '$null == ""', 1),
    ({"a": 0}, "$var(a) == $null", 0),
    ({"a": 0}, "$var(a) == $var(nope)", 1),
    ({}, "$null && 1", 0),
    ({}, "-$null", 0),
    ({}, "~$null", -1),
    ({}, "(str)$null", ""),
    ({"a": "x", "b": "("}, "$var(a) =~ $var(b)", NO_VALUE),
    ({"a": 5, "b": 3}, "$var(a) && $var(b)", 1),
    ({"a": -2}, "$var(a) && 1", -2),
    ({"a": -2}, "1 && $var(a)", -2),
    ({"a": -2}, "$var(a) || 0", -2),
    ({"a": -2}, "$var(a) && 3", 1),
    ({"a": -2}, "2 - 1 && $var(a)", -2),
    ({"a": "5"}, "$var(a) && 1", 5),
    ({"a": -2, "b": 0}, "$var(a) || $var(b)", 1),
    ({"a": 1, "b": 0}, "($var(a) / $var(b)) || 1", 1),
    ({"a": 1, "b": 0}, "($var(a) / $var(b)) && 0", 0),
    ({"a": 1, "b": 0, "one": 1}, "($var(a) / $var(b)) || $var(one)", NO_VALUE),
    ({"a": "a"}, "$var(a) + 5 + 6", "a56"),
    ({"a": 1}, '$var(a) + 5 + "6"', 12),
    ({"a": "1"}, "$var(a) + (5 + 6)", "111"),
    ({"a": 6}, "$var(a) ^ 3 & 5", 5),
    ({"a": 1}, "$var(a) << 2 == 4", 1),
    ({"a": 1}, "2 == $var(a) << 1", 0),
    ({"a": "ABC"}, '$var(a) =~ "^a[[:lower:]]C$"', 1),
    ({"a": "a]b"}, '$var(a) =~ "[]x]"', 1),
    ({"a": "axb"}, '$var(a) =~ "a\\\\.b"', 0),
    ({"a": "aaa"}, '$var(a) =~ "^a{2,}$"', 1),
]


def parse_expr(text: str) -> ast.Expr:
    """The AST of one expression, parsed by kcc with Kamailio's precedence."""
    sink = DiagnosticSink()
    config = parse_text(f"request_route {{ $var(result) = {text}; }}\n", "expr.cfg", sink)
    assert not sink.has_errors, [d.message for d in sink.sorted()]
    route = config.items[-1]
    assert isinstance(route, ast.Route)
    stmt = route.body.stmts[0]
    assert isinstance(stmt, ast.AssignStmt)
    return stmt.value


# -- the values.py-based evaluator: what generated code computes --------------------

_BINARY: Final = {
    "+": v.add,
    "-": v.sub,
    "*": v.mul,
    "/": v.div,
    "mod": v.mod,
    "&": v.bit_and,
    "|": v.bit_or,
    "^": v.bit_xor,
    "<<": v.shl,
    ">>": v.shr,
    "==": v.eq,
    "!=": v.ne,
    "eq": v.str_eq,
    "ne": v.str_ne,
    "ieq": v.int_eq,
    "ine": v.int_ne,
    "<": v.lt,
    ">": v.gt,
    "<=": v.le,
    ">=": v.ge,
    "=~": v.match,
}


def _has_pv(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.PVar):
        return True
    if isinstance(expr, ast.BinOp):
        return _has_pv(expr.left) or _has_pv(expr.right)
    if isinstance(expr, ast.SelVal):
        return _has_pv(expr.cond) or _has_pv(expr.if_true) or _has_pv(expr.if_false)
    if isinstance(expr, (ast.UnaryOp, ast.Cast, ast.StrLen, ast.StrEmpty, ast.Defined)):
        return _has_pv(expr.operand)
    return False


def run(expr: ast.Expr, env: Env) -> v.Value:
    """Evaluate with ``kcc_runtime.values`` the way the code generator emits it:
    short-circuit ``&&``/``||``, the literal ``$null`` comparison, Kamailio's
    constant-operand rule for ``&&``/``||`` (``LOGICAL_IDENTITY``/``ABSORBING``)."""
    if isinstance(expr, ast.Number):
        return v.wrap32(expr.value)
    if isinstance(expr, ast.String):
        return expr.value
    if isinstance(expr, ast.PVar):
        return None if expr.name == "null" else env.get(expr.inner_text or "")
    if isinstance(expr, ast.BinOp):
        op = expr.op
        if op in ("&&", "||"):
            for const, other in ((expr.left, expr.right), (expr.right, expr.left)):
                if not _has_pv(const) and _has_pv(other):
                    value = run(const, env)
                    if value == v.LOGICAL_IDENTITY[op] and type(value) is int:
                        return v.to_int(run(other, env))
                    if value == v.LOGICAL_ABSORBING[op] and type(value) is int:
                        return value
            left = v.to_int(run(expr.left, env))
            if op == "&&":
                return v.log_and(left, run(expr.right, env)) if left else 0
            return 1 if left else v.log_or(left, run(expr.right, env))
        if op in ("==", "!=") and isinstance(expr.right, ast.PVar) and expr.right.name == "null":
            is_defined = v.defined(run(expr.left, env))
            return 1 - is_defined if op == "==" else is_defined
        return _BINARY[op](run(expr.left, env), run(expr.right, env))
    if isinstance(expr, ast.UnaryOp):
        unary = {"!": v.log_not, "-": v.neg, "~": v.bit_not}[expr.op]
        return unary(run(expr.operand, env))
    if isinstance(expr, ast.Cast):
        cast = v.cast_int if expr.to == "int" else v.cast_str
        return cast(run(expr.operand, env))
    if isinstance(expr, ast.Defined):
        return v.defined(run(expr.operand, env))
    if isinstance(expr, ast.StrLen):
        return v.strlen(run(expr.operand, env))
    if isinstance(expr, ast.StrEmpty):
        return v.strempty(run(expr.operand, env))
    if isinstance(expr, ast.SelVal):
        chosen = expr.if_true if v.selval_cond(run(expr.cond, env)) else expr.if_false
        return run(chosen, env)
    raise AssertionError(f"unexpected node {expr!r}")


def run_or_no_value(expr: ast.Expr, env: Env) -> RefValue:
    try:
        return run(expr, env)
    except v.EvalError:
        return NO_VALUE


def reference_or_no_value(expr: ast.Expr, env: Env) -> RefValue:
    try:
        return evaluate(expr, env)
    except NoValueError:
        return NO_VALUE


def _typed(value: RefValue) -> tuple[str, RefValue]:
    return (type(value).__name__, value)


@pytest.mark.parametrize(("env", "text", "expected"), MEASURED, ids=[t for _, t, _ in MEASURED])
def test_measured_values(env: Env, text: str, expected: RefValue) -> None:
    expr = parse_expr(text)
    assert _typed(run_or_no_value(expr, env)) == _typed(expected)
    assert _typed(reference_or_no_value(expr, env)) == _typed(expected)


# -- conversions and operators --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("-0", 0),
        ("+7", 7),
        ("00012", 12),
        ("2147483647", 2147483647),
        ("-2147483649", 0),
        ("0x7FFFFFFF", 2147483647),
        ("0x80000000", -2147483648),
        ("0x0000000000000001", 1),
        ("+0x10", 0),
        ("0b11", 0),
        ("--1", 0),
        ("+-1", 0),
        ("-", 0),
        ("\t1", 0),
        ("1\n", 0),
        ("\u0661\u0662", 0),
        ("0xg", 0),
    ],
)
def test_str_to_int(text: str, number: int) -> None:
    assert v.str_to_int(text) == number


def test_conditions_and_return_codes() -> None:
    assert [v.cond(x) for x in (1, "5", -1, 0, None, "", "abc", -2147483648)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert [v.rc_value(rc) for rc in (5, 1, 0, -1, -255)] == [1, 1, 0, 0, 0]
    assert [v.rc_ends_script(rc) for rc in (1, 0, -1)] == [False, True, False]


def test_division_errors() -> None:
    with pytest.raises(v.EvalError, match="div by 0"):
        v.div(1, 0)
    with pytest.raises(v.EvalError, match="mod by 0"):
        v.mod("7", None)
    with pytest.raises(v.EvalError, match="overflow"):
        v.div(v.INT_MIN, -1)
    assert v.div(v.INT_MIN, 1) == v.INT_MIN
    assert v.mod(-7, -3) == -1


def test_wrap32() -> None:
    assert v.wrap32(2**31) == -(2**31)
    assert v.wrap32(-(2**31) - 1) == 2**31 - 1
    assert v.wrap32(2**40 + 5) == 5
    assert v.wrap32(-1) == -1


def test_strlen_counts_bytes() -> None:
    assert v.strlen("\u00c9") == 2
    assert v.strlen("abc") == 3


# -- regular expressions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("^a[[:lower:]]C$", "ABC", True),
        ("[]x]", "a]b", True),
        ("[^]x]", "]]x", False),
        ("[\\]", "a\\b", True),
        ("[\\]", "ab", False),
        ("a\\.b", "axb", False),
        ("\\d", "d", True),
        ("\\d", "1", False),
        ("\\n", "n", True),
        ("a{,2}b", "b", True),
        ("^a{2,}$", "a", False),
        ("\\<x", "word x", True),
        ("\\<x", "wordx", False),
        ("x\\>", "x y", True),
        ("^$", "\n", False),
        ("a$", "a\n", False),
        ("a.b", "a\nb", True),
        ("^b", "a\nb", False),
        ("a**", "", True),
        ("(ab)+?c", "ababc", True),
        ("(a)\\1", "aa", True),
        ("x|", "q", True),
        ("a)", "a)", True),
        ("a}", "a}", True),
        ("[a-c-]", "-", True),
        ("[[:digit:][:space:]]", " ", True),
        ("[[.a.]-c]", "B", True),
        ("[&&x]", "&", True),
        ("[~~]", "~", True),
        ("\u00e9", "\u00c9", False),
    ],
)
def test_posix_ere(pattern: str, subject: str, matches: bool) -> None:
    assert (v.compile_posix_ere(pattern).search(subject) is not None) is matches
    assert v.match(subject, pattern) == int(matches)


@pytest.mark.parametrize(
    "pattern",
    [
        "(",
        "*a",
        "a(*b)",
        "[a",
        "[[:nope:]]",
        "a{2,1}",
        "a{x}",
        "^*",
        "\\",
        "\\1",
        "[z-a]",
        "a{99999}",
    ],
)
def test_posix_ere_errors(pattern: str) -> None:
    with pytest.raises(v.EvalError):
        v.compile_posix_ere(pattern)
    with pytest.raises(v.EvalError):
        v.match("a", pattern)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(v.EvalError):
        v.compile_posix_ere("(" * 5000 + "a" + ")" * 5000)


@given(st.text(alphabet="ab()[]{}|*+?^$.\\-:,0123456789x", max_size=12))
@settings(max_examples=400, deadline=None)
def test_any_pattern_compiles_or_is_an_eval_error(pattern: str) -> None:
    try:
        compiled = v.compile_posix_ere(pattern)
    except v.EvalError:
        return
    assert isinstance(compiled, re.Pattern)


# -- random expressions: values.py against the reference evaluator -----------------------

_OPS: Final = [
    "+", "-", "*", "/", "mod", "&", "|", "^", "<<", ">>", "==", "!=", "=~",
    "eq", "ne", "ieq", "ine", "<", ">", "<=", ">=", "&&", "||",
]  # fmt: skip
_STRINGS: Final = ["", "5", "-3", "abc", "12abc", "0x10", "A", "a.c", "[[:digit:]]", "^$"]
_INTS: Final = [0, 1, -1, 2, 3, 7, 31, 32, -2, 2147483647, -2147483648, 4294967297]


def _string_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_atoms = st.one_of(
    st.sampled_from(_INTS).map(lambda n: str(n) if n >= 0 else f"({n})"),
    st.sampled_from(_STRINGS).map(_string_literal),
    st.sampled_from(["$var(a)", "$var(b)", "$var(c)", "$null"]),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(_OPS), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda e: f"({e})"),
        st.tuples(st.sampled_from(["!", "-", "~", "(int)", "(str)"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        children.map(lambda e: f"strlen({e})"),
        children.map(lambda e: f"strempty({e})"),
        st.tuples(children, children, children).map(lambda t: f"selval({t[0]}, {t[1]}, {t[2]})"),
        st.sampled_from(["$var(a)", "$var(b)", "$var(c)"]).map(lambda pv: f"defined {pv}"),
    )


_expressions = st.recursive(_atoms, _extend, max_leaves=10)
_values = st.one_of(st.sampled_from(_INTS), st.sampled_from(_STRINGS), st.none())


@given(_expressions, _values, _values, _values)
@settings(max_examples=600, deadline=None)
def test_values_agree_with_reference(text: str, a: RefValue, b: RefValue, c: RefValue) -> None:
    expr = parse_expr(text)
    env: Env = {"a": a, "b": b, "c": c}
    assert _typed(run_or_no_value(expr, env)) == _typed(reference_or_no_value(expr, env))
