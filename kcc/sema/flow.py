"""Dead code and constant conditions (W0801, W0802).

Kamailio runs whatever the parser accepts, so neither is an error for it; both are
almost always a slip (a debugging ``exit;`` left in, a condition typed as a constant).

W0801: a statement that follows, in the same block, a statement that never completes
normally: ``exit``, ``drop``, ``return``, ``break`` (a ``switch`` case or a ``while``
body), a block ending in one of those, or an ``if``/``else`` whose both branches end
in one. Only the first unreachable statement of a block is reported; empty statements
(a stray ``;``) are not. Code separated from the ``exit`` by a preprocessor directive
is not reported: ``#!ifdef WITH_X ... exit; #!endif`` followed by a fallback is how
the stock config writes "this part runs only without WITH_X".

W0802: an ``if`` or ``while`` condition made only of literals and operators (``if (1)``,
``if ("a" == "a")``, ``while (0)``). ``while`` with a true constant is accepted when its
body can leave the loop (``break``, ``exit``, ``drop``, ``return``), as that is the way
to write a loop with its test in the middle. A condition whose constant comes from a
``#!define`` is the debug-switch idiom (``#!define DEBUG 0`` ... ``if (DEBUG)``) and is
not reported: the define is the switch, and changing it changes the code.
"""

from __future__ import annotations

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.context import SemaContext, iter_nodes
from kcc.source import Span

__all__ = ["check", "constant_value", "ends_abruptly"]


def check(ctx: SemaContext) -> None:
    for route in ctx.route_blocks():
        for node in iter_nodes(route.body):
            if isinstance(node, ast.Block):
                _check_stmts(ctx, node.stmts)
            elif isinstance(node, ast.CaseClause):
                _check_stmts(ctx, node.body)
            elif isinstance(node, ast.IfStmt):
                _check_if(ctx, node)
            elif isinstance(node, ast.WhileStmt):
                _check_while(ctx, node)


def _stop_words(stmt: ast.Stmt) -> frozenset[str]:
    """The keywords that make ``stmt`` never complete normally; empty when it may."""
    match stmt:
        case ast.ExitStmt():
            return frozenset({"exit"})
        case ast.DropStmt():
            return frozenset({"drop"})
        case ast.ReturnStmt():
            return frozenset({"return"})
        case ast.BreakStmt():
            return frozenset({"break"})
        case ast.Block(stmts=stmts):
            for inner in stmts:
                words = _stop_words(inner)
                if words:
                    return words
            return frozenset()
        case ast.IfStmt(then=then, else_=else_) if else_ is not None:
            a, b = _stop_words(then), _stop_words(else_)
            return a | b if a and b else frozenset()
    return frozenset()


def ends_abruptly(stmt: ast.Stmt) -> bool:
    """True when ``stmt`` never completes normally (it exits, drops, returns or breaks)."""
    return bool(_stop_words(stmt))


def _check_stmts(ctx: SemaContext, stmts: tuple[ast.Stmt, ...]) -> None:
    for i, stmt in enumerate(stmts):
        words = _stop_words(stmt)
        if not words:
            continue
        rest = [s for s in stmts[i + 1 :] if not isinstance(s, ast.EmptyStmt)]
        if rest and not _directive_between(stmt.span, rest[0].span):
            if isinstance(stmt, (ast.ExitStmt, ast.DropStmt, ast.ReturnStmt, ast.BreakStmt)):
                label = f"any code following this `{next(iter(words))}` is unreachable"
            else:
                ordered = [f"`{w}`" for w in ("exit", "drop", "return", "break") if w in words]
                ends = (
                    ordered[0]
                    if len(ordered) == 1
                    else ", ".join(ordered[:-1]) + " or " + ordered[-1]
                )
                label = f"every path through this statement ends in {ends}"
            ctx.sink.emit(
                Diagnostic.warning(
                    "W0801",
                    "unreachable statement",
                    rest[0].span,
                    "unreachable statement",
                    labels=[Label(stmt.span, label)],
                )
            )
        return


def _directive_between(before: Span, after: Span) -> bool:
    """True when a preprocessor directive line separates the two statements."""
    a, b = before.use_site(), after.use_site()
    if a.file is not b.file:
        return True
    between = a.file.text[a.end : b.start]
    return any(line.lstrip().startswith("#!") for line in between.splitlines())


def _from_define(expr: ast.Expr) -> bool:
    return any(
        node.span.origin is not None and node.span.origin.kind == "define"
        for node in iter_nodes(expr)
        if isinstance(node, (ast.Number, ast.String))
    )


def constant_value(expr: ast.Expr) -> int | str | None:
    """The value of an expression made only of literals, or None when it is not one.

    Follows Kamailio's rules where they matter for truth: a string is true when it is
    not empty, ``==`` compares strings as strings and numbers as numbers.
    """
    match expr:
        case ast.Number(value=value):
            return value
        case ast.String(value=value, parts=parts):
            if any(not isinstance(part, str) for part in parts):
                return None
            return value
        case ast.UnaryOp(op=op, operand=operand):
            inner = constant_value(operand)
            if inner is None:
                return None
            if op == "!":
                return int(not _truth(inner))
            if op == "-" and isinstance(inner, int):
                return -inner
            if op == "~" and isinstance(inner, int):
                return ~inner
            return None
        case ast.BinOp(op=op, left=left, right=right):
            a = constant_value(left)
            if a is None:
                return None
            if op == "&&" and not _truth(a):
                return 0
            if op == "||" and _truth(a):
                return 1
            b = constant_value(right)
            if b is None:
                return None
            return _binop(op, a, b)
    return None


def _truth(value: int | str) -> bool:
    return value != 0 if isinstance(value, int) else value != ""


def _binop(op: str, a: int | str, b: int | str) -> int | str | None:
    if op in ("&&", "||"):
        return int(_truth(b))
    if op in ("==", "!=") and type(a) is type(b):
        return int((a == b) == (op == "=="))
    if op in ("eq", "ne"):
        return int((str(a) == str(b)) == (op == "eq"))
    if op in ("ieq", "ine") and isinstance(a, int) and isinstance(b, int):
        return int((a == b) == (op == "ieq"))
    if isinstance(a, int) and isinstance(b, int):
        match op:
            case "<":
                return int(a < b)
            case ">":
                return int(a > b)
            case "<=":
                return int(a <= b)
            case ">=":
                return int(a >= b)
            case "+":
                return a + b
            case "-":
                return a - b
            case "*":
                return a * b
            case "&":
                return a & b
            case "|":
                return a | b
    if isinstance(a, str) and isinstance(b, str) and op == "+":
        return a + b
    return None


def _check_if(ctx: SemaContext, stmt: ast.IfStmt) -> None:
    value = constant_value(stmt.cond)
    if value is None or _from_define(stmt.cond):
        return
    if _truth(value):
        label = "this condition is always true"
        note = "the `else` branch never runs" if stmt.else_ is not None else None
    else:
        label = "this condition is always false"
        note = "the `if` branch never runs"
    ctx.sink.emit(
        Diagnostic.warning(
            "W0802",
            "constant condition",
            stmt.cond.span,
            label,
            notes=[note] if note else [],
            help="to switch code on and off, test a `#!define` with `#!ifdef`",
        )
    )


def _leaves_loop(body: ast.Stmt) -> bool:
    """True when something in a loop body can end the loop (not a nested loop's break)."""
    stack: list[object] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.BreakStmt, ast.ExitStmt, ast.DropStmt, ast.ReturnStmt)):
            return True
        if isinstance(node, ast.WhileStmt):
            continue
        if isinstance(node, ast.SwitchStmt):
            # a `break` in a switch ends the switch, not the loop
            for case in node.cases:
                stack.extend(s for s in case.body if not isinstance(s, ast.BreakStmt))
            continue
        if isinstance(node, ast.Block):
            stack.extend(node.stmts)
        elif isinstance(node, ast.IfStmt):
            stack.append(node.then)
            if node.else_ is not None:
                stack.append(node.else_)
    return False


def _check_while(ctx: SemaContext, stmt: ast.WhileStmt) -> None:
    value = constant_value(stmt.cond)
    if value is None or _from_define(stmt.cond):
        return
    if _truth(value):
        if _leaves_loop(stmt.body):
            return
        label = "this condition is always true and nothing in the loop leaves it"
        help_ = "add a `break` (or `exit`) for when the loop is done"
    else:
        label = "this condition is always false: the loop body never runs"
        help_ = None
    ctx.sink.emit(
        Diagnostic.warning("W0802", "constant condition", stmt.cond.span, label, help=help_)
    )
