"""A reference evaluator of Kamailio expressions over the ``kcc.ast`` tree.

Written to be obviously right rather than fast, and independently of
``kcc_runtime.values`` (the two are compared by the hypothesis tests in
``tests/runtime/test_values.py``; both follow the behaviour measured on Kamailio 5.6
that ``kcc_runtime.values`` documents and ``tests/runtime/test_kamailio_values.py``
checks against the real Kamailio).

Values are ``int`` (32-bit signed), ``str`` and ``None`` (undefined). ``$var(name)``
is read from the ``env`` dict (a missing name is undefined) and ``$null`` is None.
An expression without a value in Kamailio (division by zero, a bad regex) raises
:class:`NoValueError`. Kamailio's start-up optimizer for ``&&``/``||`` with a constant
int operand is applied, as Kamailio applies it.
"""

from __future__ import annotations

from kcc_runtime.values import compile_posix_ere

from kcc import ast

__all__ = ["NoValueError", "RefValue", "evaluate"]

RefValue = int | str | None


class NoValueError(Exception):
    """The expression has no value (Kamailio logs an evaluation error)."""


def _c_int(number: int) -> int:
    """Reduce to a C 32-bit int by repeated adjustment (plain, not clever)."""
    number = number % 4294967296
    if number >= 2147483648:
        number = number - 4294967296
    return number


def _string_to_int(text: str) -> int:
    digits = "0123456789"
    hexdigits = "0123456789abcdefABCDEF"
    if len(text) > 2 and text[0] == "0" and text[1] in "xX":
        rest = text[2:]
        for char in rest:
            if char not in hexdigits:
                return 0
        return _c_int(int(rest, 16))
    sign = 1
    body = text
    if body[:1] == "-":
        sign = -1
        body = body[1:]
    elif body[:1] == "+":
        body = body[1:]
    if body == "":
        return 0
    for char in body:
        if char not in digits:
            return 0
    value = sign * int(body)
    if value < -2147483648 or value > 2147483647:
        return 0
    return value


def as_int(value: RefValue) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return _string_to_int(value)


def as_str(value: RefValue) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value


def _bool(flag: bool) -> int:
    return 1 if flag else 0


def _c_divide(a: int, b: int) -> int:
    if b == 0 or (a == -2147483648 and b == -1):
        raise NoValueError("division")
    quotient = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        quotient = -quotient
    return quotient


def _c_remainder(a: int, b: int) -> int:
    if b == 0 or (a == -2147483648 and b == -1):
        raise NoValueError("mod")
    return a - _c_divide(a, b) * b


def is_constant(expr: ast.Expr) -> bool:
    """No pseudo-variable anywhere below: Kamailio folds it at start-up."""
    if isinstance(expr, (ast.Number, ast.String)):
        return True
    if isinstance(expr, ast.BinOp):
        return is_constant(expr.left) and is_constant(expr.right)
    if isinstance(expr, (ast.UnaryOp, ast.Cast, ast.StrLen, ast.StrEmpty)):
        return is_constant(expr.operand)
    if isinstance(expr, ast.SelVal):
        return is_constant(expr.cond) and is_constant(expr.if_true) and is_constant(expr.if_false)
    return False


def _logical(op: str, left: ast.Expr, right: ast.Expr, env: dict[str, RefValue]) -> int:
    neutral = 1 if op == "&&" else 0
    for const, other in ((left, right), (right, left)):
        if is_constant(const) and not is_constant(other):
            value = evaluate(const, env)
            if isinstance(value, int):
                if value == neutral:
                    return as_int(evaluate(other, env))
                if value == 1 - neutral:
                    return value
    first = as_int(evaluate(left, env))
    if op == "&&":
        if first == 0:
            return 0
        return _bool(as_int(evaluate(right, env)) != 0)
    if first != 0:
        return 1
    return _bool(as_int(evaluate(right, env)) != 0)


def _equal(left: RefValue, right: RefValue) -> bool:
    if left is None and right is None:
        return True
    kind = right if left is None else left
    if isinstance(kind, int):
        return as_int(left) == as_int(right)
    return as_str(left) == as_str(right)


def _binary(op: str, a: RefValue, b: RefValue) -> RefValue:
    if op == "+":
        if isinstance(a, int):
            return _c_int(a + as_int(b))
        return as_str(a) + as_str(b)
    if op in ("==", "!="):
        same = _equal(a, b)
        return _bool(same if op == "==" else not same)
    if op == "eq":
        return _bool(as_str(a) == as_str(b))
    if op == "ne":
        return _bool(as_str(a) != as_str(b))
    if op == "=~":
        try:
            pattern = compile_posix_ere(as_str(b))
        except Exception as failure:
            raise NoValueError("regex") from failure
        return _bool(pattern.search(as_str(a)) is not None)
    x, y = as_int(a), as_int(b)
    if op == "-":
        return _c_int(x - y)
    if op == "*":
        return _c_int(x * y)
    if op == "/":
        return _c_divide(x, y)
    if op == "mod":
        return _c_remainder(x, y)
    if op == "&":
        return x & y
    if op == "|":
        return x | y
    if op == "^":
        return x ^ y
    if op == "<<":
        return _c_int(x * 2 ** (y % 32))
    if op == ">>":
        return x >> (y % 32)
    if op in ("ieq", "=="):
        return _bool(x == y)
    if op == "ine":
        return _bool(x != y)
    if op == "<":
        return _bool(x < y)
    if op == ">":
        return _bool(x > y)
    if op == "<=":
        return _bool(x <= y)
    if op == ">=":
        return _bool(x >= y)
    raise ValueError(f"unknown operator {op!r}")


def _is_null(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.PVar) and expr.name == "null"


def evaluate(expr: ast.Expr, env: dict[str, RefValue]) -> RefValue:
    """The Kamailio value of ``expr``; raises :class:`NoValueError` when it has none."""
    if isinstance(expr, ast.Number):
        return _c_int(expr.value)
    if isinstance(expr, ast.String):
        return expr.value
    if isinstance(expr, ast.PVar):
        if expr.name == "null":
            return None
        if expr.name == "var" and expr.inner_text is not None:
            return env.get(expr.inner_text)
        raise ValueError(f"unsupported pseudo-variable ${expr.name}")
    if isinstance(expr, ast.BinOp):
        if expr.op in ("&&", "||"):
            return _logical(expr.op, expr.left, expr.right, env)
        if expr.op in ("==", "!=") and _is_null(expr.right):
            undefined = evaluate(expr.left, env) is None
            return _bool(undefined if expr.op == "==" else not undefined)
        return _binary(expr.op, evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, ast.UnaryOp):
        value = as_int(evaluate(expr.operand, env))
        if expr.op == "!":
            return _bool(value == 0)
        if expr.op == "-":
            return _c_int(-value)
        if expr.op == "~":
            return -value - 1
        raise ValueError(f"unknown unary operator {expr.op!r}")
    if isinstance(expr, ast.Cast):
        operand = evaluate(expr.operand, env)
        return as_int(operand) if expr.to == "int" else as_str(operand)
    if isinstance(expr, ast.Defined):
        return _bool(evaluate(expr.operand, env) is not None)
    if isinstance(expr, ast.StrLen):
        return len(as_str(evaluate(expr.operand, env)).encode("utf-8"))
    if isinstance(expr, ast.StrEmpty):
        return _bool(as_str(evaluate(expr.operand, env)) == "")
    if isinstance(expr, ast.SelVal):
        if as_int(evaluate(expr.cond, env)) > 0:
            return evaluate(expr.if_true, env)
        return evaluate(expr.if_false, env)
    raise ValueError(f"not an expression the reference evaluator knows: {expr!r}")
