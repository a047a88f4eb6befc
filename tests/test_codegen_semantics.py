"""Generated code computes what Kamailio computes: hypothesis against a reference.

Issue 4's acceptance test. Hypothesis writes random well-formed cfg expressions
(every operator, random nesting and parentheses, ``!``, ``-``, ``~``, ``defined``,
``strlen``, ``strempty``, the casts, ``selval``, ``=~``, division by zero, 32-bit edge
values, numeric-looking strings, ``$null``) and compiles them with the whole of kcc
(``kcc.pipeline`` up to ``build``: generation, black, ``compile()``), imports the
module and runs ``request_route`` on a real :class:`~kcc_runtime.RequestContext` with
``$var(a)`` .. ``$var(e)`` preset. Every expression is used twice::

    $var(rN) = <expr>;
    if (<cond>) { $var(tN) = 1; } else { $var(tN) = 2; }

and the results are compared with ``tests/kamailio_eval.py`` (a deliberately plain
evaluator of the semantics measured on Kamailio 5.6), fed with the AST kcc's own parser
made of the same cfg text. Kamailio's rules checked on the way:

- an expression without a value (division or ``mod`` by zero, a bad run-time regex)
  skips the assignment (``$var(rN)`` stays unset) and makes a condition false;
- a condition is true when its value converted to an int is > 0;
- ``$var(x) = $null`` (an expression whose value is ``$null``) stores the int 0.

Statements get a second test: a ``while`` with a counter (Kamailio stops a loop after
``max_while_loops`` = 100 iterations, measured: ``runaway while ... more then 100
loops`` and the counter at 100), a ``switch`` with fall-through and ``default``, and a
sub-route's return value through ``$rc`` and as a condition (``return 0`` ends the
script).

Twenty expressions share one cfg (black and the import cost more than the run): the
default 30 examples check 600 expressions and 600 conditions in about 10 s.
``KCC_FUZZ_EXAMPLES=2000 pytest tests/test_codegen_semantics.py`` runs a longer
session, as for ``tests/test_fuzz_configs.py`` (150 examples, 3,000 expressions, passed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kcc_runtime import values as v

from kcc import ast
from tests.codegen_harness import Built, assignments, build_cfg, run_route
from tests.kamailio_eval import NoValueError, RefValue, as_int, evaluate

#: hypothesis examples (each 20 expressions); ``KCC_FUZZ_EXAMPLES=2000`` for a long run
EXAMPLES: Final = int(os.environ.get("KCC_FUZZ_EXAMPLES", "30"))
#: expressions compiled together into one cfg
BATCH: Final = 20

NO_VALUE: Final = "<no value>"
VARS: Final = ("a", "b", "c", "d", "e")

_INTS: Final = [
    0, 1, -1, 2, 3, 5, 7, 31, 32, 33, -2, 255, 65536,
    2147483647, -2147483648, 2147483648, 4294967295, 4294967297,
]  # fmt: skip
_STRINGS: Final = [
    "", "0", "5", "-3", "+7", "010", "0x1F", "0XfF", "-0x10", "12abc", " 12", "abc",
    "ABC", "a.c", "2147483648", "-2147483648", "4294967295", "\u00e9", "x y",
]  # fmt: skip
#: patterns that compile (as constants they must: Kamailio refuses the cfg otherwise)
_PATTERNS: Final = ["^a", "b$", "a.c", "[[:digit:]]+", "^$", "^-?[0-9]+$", "[ab]{2,}", "x|y"]
_BINARY: Final = [
    "+", "-", "*", "/", "mod", "&", "|", "^", "<<", ">>", "==", "!=",
    "eq", "ne", "ieq", "ine", "<", ">", "<=", ">=", "&&", "||",
]  # fmt: skip
_VAR_VALUES: Final = [*_INTS, *_STRINGS, "(", "[a", "a{2,1}"]  # the last three: bad regexes


@pytest.fixture(autouse=True)
def _no_format_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of throw-away modules: keep them out of the user's black cache."""
    monkeypatch.setenv("KCC_NO_CACHE", "1")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _int_text(number: int) -> str:
    return str(number) if number >= 0 else f"({number})"


_atoms = st.one_of(
    st.sampled_from(_INTS).map(_int_text),
    st.sampled_from(_STRINGS).map(_quoted),
    st.sampled_from([f"$var({name})" for name in VARS]),
    st.just("$null"),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pattern = st.one_of(
        st.sampled_from(_PATTERNS).map(_quoted), st.sampled_from([f"$var({n})" for n in VARS])
    )
    return st.one_of(
        st.tuples(children, st.sampled_from(_BINARY), children).map(" ".join),
        children.map(lambda e: f"({e})"),
        st.tuples(st.sampled_from(["!", "-", "~", "(int)", "(str)"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        children.map(lambda e: f"strlen({e})"),
        children.map(lambda e: f"strempty({e})"),
        st.tuples(children, children, children).map(lambda t: f"selval({t[0]}, {t[1]}, {t[2]})"),
        st.sampled_from([*VARS, "null"]).map(
            lambda n: "defined $null" if n == "null" else f"defined $var({n})"
        ),
        # parenthesised so the pattern is exactly the right operand
        st.tuples(children, pattern).map(lambda t: f"({t[0]} =~ {t[1]})"),
    )


_expressions = st.recursive(_atoms, _extend, max_leaves=8)
_var_values = st.sampled_from(_VAR_VALUES)


def _reference(expr: ast.Expr, env: dict[str, RefValue]) -> RefValue:
    try:
        return evaluate(expr, env)
    except NoValueError:
        return NO_VALUE


def _typed(value: object) -> tuple[str, object]:
    return (type(value).__name__, value)


def _expected_var(value: RefValue) -> object:
    """What ``$var(rN) = expr`` leaves: unset (no value), 0 for $null, else the value."""
    if value == NO_VALUE:
        return NO_VALUE
    return 0 if value is None else value


def _expected_branch(value: RefValue) -> int:
    if value == NO_VALUE:
        return 2
    return 1 if as_int(value) > 0 else 2


def _expression_cfg(pairs: list[tuple[str, str]]) -> str:
    lines = ['loadmodule "pv.so"', "request_route {"]
    for n, (expr, cond) in enumerate(pairs):
        lines.append(f"\t$var(r{n}) = {expr};")
        lines.append(f"\t$var(c{n}) = {cond};")
        lines.append(f"\tif ({cond}) {{ $var(t{n}) = 1; }} else {{ $var(t{n}) = 2; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _check_expressions(built: Built, count: int, env: dict[str, RefValue]) -> None:
    exprs = assignments(built)
    run = run_route(built, variables={k: val for k, val in env.items() if val is not None})
    assert run.outcome == "returned", run
    for n in range(count):
        for name, want in (
            (f"r{n}", _expected_var(_reference(exprs[f"r{n}"], env))),
            (f"c{n}", _expected_var(_reference(exprs[f"c{n}"], env))),
            (f"t{n}", _expected_branch(_reference(exprs[f"c{n}"], env))),
        ):
            got = run.vars.get(name, NO_VALUE)
            assert _typed(got) == _typed(want), (
                f"$var({name}) with {env}\n"
                f"cfg: {built.compiled.path.read_text().splitlines()[2 + 3 * n]}\n"
                f"cfg: {built.compiled.path.read_text().splitlines()[4 + 3 * n]}"
            )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pairs=st.lists(st.tuples(_expressions, _expressions), min_size=BATCH, max_size=BATCH),
    values=st.tuples(*[_var_values for _ in VARS]),
)
def test_expressions_agree_with_reference(
    pairs: list[tuple[str, str]], values: tuple[RefValue, ...], tmp_path: Path
) -> None:
    built = build_cfg(_expression_cfg(pairs), tmp_path)
    _check_expressions(built, len(pairs), dict(zip(VARS, values, strict=True)))


def test_known_expressions(tmp_path: Path) -> None:
    """Fixed cases the random ones may miss, with the values Kamailio 5.6 gives
    (``tests/runtime/test_values.py`` MEASURED); case N reads ``$var(aN)``, ``$var(bN)``."""
    # (expression, env, $var(r) afterwards, branch taken)
    cases: list[tuple[str, dict[str, RefValue], object, int]] = [
        ("$var(a) / $var(b)", {"a": 1, "b": 0}, NO_VALUE, 2),
        ("$var(a) mod 0", {"a": 7}, NO_VALUE, 2),
        ("!($var(a) / $var(b))", {"a": 1, "b": 0}, NO_VALUE, 2),
        ("selval(0, $var(a) / 0, 2)", {"a": 1}, 2, 1),
        ("($var(a) / $var(b)) || 1", {"a": 1, "b": 0}, 1, 1),
        ("$var(a) + 1", {"a": 2147483647}, -2147483648, 2),
        ("$var(a) + 0", {"a": "12abc"}, "12abc0", 2),
        ("1 + $var(a)", {"a": "2"}, 3, 1),
        ("$null", {}, 0, 2),
        ("$var(a) && 1", {"a": -2}, -2, 2),
        ("$var(a) || $var(b)", {"a": -2, "b": 0}, 1, 1),
        ("$var(a) ^ 3 & 5", {"a": 6}, 5, 1),
        ("$var(a) << 2 == 4", {"a": 1}, 1, 1),
        ('$var(a) =~ "^a[[:lower:]]C$"', {"a": "ABC"}, 1, 1),
        ("$var(a) =~ $var(b)", {"a": "x", "b": "("}, NO_VALUE, 2),
        ("$var(a) == 10", {"a": "010"}, 0, 2),
        ("10 == $var(a)", {"a": "010"}, 1, 1),
        ('"5"', {}, "5", 1),
        ('"abc"', {}, "abc", 2),
        ("-1", {}, -1, 2),
        ("strlen($var(a))", {"a": "\u00e9"}, 2, 1),
        ("defined $var(a)", {"a": 0}, 1, 1),
    ]
    body = ""
    env: dict[str, RefValue] = {}
    for n, (expr, values, _, _) in enumerate(cases):
        own = expr.replace("$var(a)", f"$var(a{n})").replace("$var(b)", f"$var(b{n})")
        body += f"\t$var(r{n}) = {own};\n"
        body += f"\tif ({own}) {{ $var(t{n}) = 1; }} else {{ $var(t{n}) = 2; }}\n"
        env.update({f"{name}{n}": value for name, value in values.items()})
    built = build_cfg(f'loadmodule "pv.so"\nrequest_route {{\n{body}}}\n', tmp_path)
    run = run_route(built, variables={k: val for k, val in env.items() if val is not None})
    exprs = assignments(built)
    for n, (expr, _, want_r, want_t) in enumerate(cases):
        got = (_typed(run.vars.get(f"r{n}", NO_VALUE)), run.vars[f"t{n}"])
        assert got == (_typed(want_r), want_t), expr
        # the reference evaluator gives the measured value too
        assert _typed(_expected_var(_reference(exprs[f"r{n}"], env))) == _typed(want_r), expr


# -- statements: while, switch with fall-through, sub-route return values ---------------

MAX_WHILE_LOOPS: Final = 100  # Kamailio's default, and the runtime's


def _expected_while(limit: int, step: int) -> tuple[int, int]:
    """``$var(n)`` and ``$var(k)`` after the loop of :func:`_statement_cfg`."""
    n = k = 0
    while n < limit and k < MAX_WHILE_LOOPS:
        n = v.wrap32(n + step)
        k += 1
    return n, k


def _expected_switch(subject: int, labels: list[int | None], breaks: list[bool]) -> int:
    """``$var(sw)``: case ``i`` adds ``2**i``; runs from the matching case (or
    ``default``) down, until a ``break``."""
    start = next((i for i, label in enumerate(labels) if label == subject), None)
    if start is None:
        start = next((i for i, label in enumerate(labels) if label is None), None)
    total = 0
    if start is not None:
        for i in range(start, len(labels)):
            total += 2**i
            if breaks[i]:
                break
    return total


def _statement_cfg(
    limit: int, step: int, labels: list[int | None], breaks: list[bool], sub_value: int
) -> str:
    cases = "".join(
        ("\t\tdefault:" if label is None else f"\t\tcase {label}:")
        + f" $var(sw) = $var(sw) + {2**i};"
        + (" break;" if stop else "")
        + "\n"
        for i, (label, stop) in enumerate(zip(labels, breaks, strict=True))
    )
    return (
        'loadmodule "pv.so"\n'
        "request_route {\n"
        "\t$var(n) = 0; $var(k) = 0;\n"
        f"\twhile ($var(n) < {limit}) {{ $var(n) = $var(n) + {step}; $var(k) = $var(k) + 1; }}\n"
        "\t$var(sw) = 0;\n"
        f"\tswitch ($var(x)) {{\n{cases}\t}}\n"
        "\troute(SUB);\n"
        "\t$var(rc1) = $rc;\n"
        "\tif (route(SUB)) { $var(c) = 1; } else { $var(c) = 2; }\n"
        "\t$var(after) = 1;\n"
        "}\n"
        f"route[SUB] {{\n\t$var(calls) = $var(calls) + 1;\n\treturn {sub_value};\n}}\n"
    )


@st.composite
def _switch_cases(draw: st.DrawFn) -> tuple[list[int | None], list[bool]]:
    ints = draw(st.lists(st.integers(-3, 6), min_size=1, max_size=5, unique=True))
    labels: list[int | None] = list(ints)
    if draw(st.booleans()):
        labels.insert(draw(st.integers(0, len(labels))), None)
    breaks = draw(st.lists(st.booleans(), min_size=len(labels), max_size=len(labels)))
    return labels, breaks


@settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    limit=st.sampled_from([-1, 0, 1, 5, 99, 100, 150, 2147483647]),
    step=st.sampled_from([-1, 0, 1, 2, 7, 1073741824]),
    switch=_switch_cases(),
    subject=st.one_of(st.integers(-4, 7), st.sampled_from(["2", "abc", "0x3", ""])),
    sub_value=st.sampled_from([-2, -1, 0, 1, 5]),
)
def test_statements_agree_with_kamailio(
    limit: int,
    step: int,
    switch: tuple[list[int | None], list[bool]],
    subject: int | str,
    sub_value: int,
    tmp_path: Path,
) -> None:
    labels, breaks = switch
    built = build_cfg(_statement_cfg(limit, step, labels, breaks, sub_value), tmp_path)
    run = run_route(built, variables={"x": subject})
    want_n, want_k = _expected_while(limit, step)
    assert (run.vars["n"], run.vars["k"]) == (want_n, want_k)
    assert run.vars["sw"] == _expected_switch(as_int(subject), labels, breaks)
    assert run.vars["calls"] == (1 if sub_value == 0 else 2)
    if sub_value == 0:  # `return 0` in a sub-route is `exit`
        assert run.outcome == "exited"
        assert "rc1" not in run.vars and "after" not in run.vars
        return
    assert run.outcome == "returned"
    assert run.vars["rc1"] == sub_value
    assert run.vars["c"] == (1 if sub_value > 0 else 2)
    assert run.vars["after"] == 1
