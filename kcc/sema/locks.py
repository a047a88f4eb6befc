"""Locks of cfgutils (W0701, W0702).

``lock("name")`` waits for a lock shared by every Kamailio process and
``unlock("name")`` releases it; ``trylock("name")`` takes it only if it is free and
says whether it did. A lock that is never released blocks every process that asks for
it, for good: the proxy hangs. Kamailio checks none of this.

- W0701: ``unlock`` of a name that no ``lock``/``trylock`` anywhere in the config takes.
- W0702: a ``lock`` still held when processing ends on some path: at ``exit``/``drop``,
  or at the end (or ``return``) of a top-level route block.

The analysis is path-sensitive over each top-level block (``request_route``,
``failure_route``, ``onreply_route``, ``event_route`` ...): the state is the set of
locks held, and every path is followed through ``if``/``else``, ``switch`` (with its
fall-through), ``while`` (to a fixed point) and into ``route(X)`` sub-routes, which may
release a lock their caller took (a sub-route's ``return`` goes back to the caller;
its ``exit`` ends processing). A lock taken in the condition of an ``if``, and
``if (trylock("x"))``, are held in the branches where they succeeded. Lock names are
compared as written: ``lock("$ci")`` pairs with ``unlock("$ci")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcc_runtime.exports import ArgKind

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.context import RouteKey, SemaContext, iter_nodes
from kcc.source import Span

__all__ = ["check"]

#: one held lock: its name and the index of the ``lock()`` call that took it
Held = tuple[str, int]
State = frozenset[Held]

#: bound on the fixed-point iterations of a loop and on sub-route call depth
_MAX_ROUNDS = 16
_MAX_DEPTH = 32


@dataclass
class _Flow:
    """The states that leave a statement: normally, by ``break``, by ``return``."""

    normal: set[State] = field(default_factory=set)
    breaks: set[State] = field(default_factory=set)
    returns: set[State] = field(default_factory=set)


class _Analyzer:
    def __init__(self, ctx: SemaContext) -> None:
        self.ctx = ctx
        self.lock_sites: list[ast.Call] = []
        self.site_index: dict[int, int] = {}
        #: index of a lock call -> (end span, what ends there), first found
        self.leaks: dict[int, tuple[Span, str]] = {}
        self.summaries: dict[tuple[int, State], set[State]] = {}
        self.active: set[int] = set()

    # -- calls ---------------------------------------------------------------------------

    def lock_op(self, call: ast.Call) -> tuple[str, str] | None:
        """``(operation, name)`` for a lock/unlock/trylock call with a constant name."""
        if call.name not in ("lock", "unlock", "trylock") or len(call.args) != 1:
            return None
        info = self.ctx.resolved.get(id(call))
        if info is None or not info.cmd.args or info.cmd.args[0].kind is not ArgKind.LOCK:
            return None
        arg = call.args[0]
        if isinstance(arg, ast.String):
            return call.name, arg.value
        return None

    def site(self, call: ast.Call) -> int:
        index = self.site_index.get(id(call))
        if index is None:
            index = len(self.lock_sites)
            self.lock_sites.append(call)
            self.site_index[id(call)] = index
        return index

    def callee(self, call: ast.Call) -> ast.Route | None:
        if call.name != "route" or len(call.args) != 1:
            return None
        arg = call.args[0]
        if isinstance(arg, ast.Name):
            name = arg.name
        elif isinstance(arg, ast.String):
            name = arg.value
        elif isinstance(arg, ast.Number):
            name = arg.text
        else:
            return None
        key: RouteKey = (ast.RouteKind.ROUTE, name)
        return self.ctx.routes.get(key)

    def apply_call(self, call: ast.Call, states: set[State], depth: int) -> set[State]:
        """The states after ``call`` runs (its arguments first)."""
        for arg in call.args:
            states = self.apply_expr(arg, states, depth)
        op = self.lock_op(call)
        if op is not None:
            kind, name = op
            if kind == "lock":
                index = self.site(call)
                return {s | {(name, index)} for s in states}
            if kind == "unlock":
                return {frozenset(h for h in s if h[0] != name) for s in states}
            return states  # trylock outside a condition: held or not, unknown
        route = self.callee(call)
        if route is not None:
            out: set[State] = set()
            for state in states:
                out |= self.run_route(route, state, depth + 1)
            return out
        return states

    def apply_expr(self, expr: object, states: set[State], depth: int) -> set[State]:
        """The states after the calls inside an expression run, in source order."""
        if isinstance(expr, ast.Call):
            return self.apply_call(expr, states, depth)
        if not dataclasses.is_dataclass(expr) or isinstance(expr, (type, Span)):
            return states
        for f in dataclasses.fields(expr):
            value = getattr(expr, f.name)
            for child in value if isinstance(value, tuple) else (value,):
                states = self.apply_expr(child, states, depth)
        return states

    # -- routes --------------------------------------------------------------------------

    def run_route(self, route: ast.Route, state: State, depth: int) -> set[State]:
        """The states in which a sub-route returns to its caller, entered in ``state``."""
        key = (id(route), state)
        cached = self.summaries.get(key)
        if cached is not None:
            return cached
        if id(route) in self.active or depth > _MAX_DEPTH:
            return {state}  # recursion (W0306 reports it): assume no effect
        self.active.add(id(route))
        try:
            flow = self.stmts(route.body.stmts, {state}, depth)
        finally:
            self.active.discard(id(route))
        result = flow.normal | flow.returns
        self.summaries[key] = result
        return result

    def end_processing(self, states: Iterable[State], span: Span, what: str) -> None:
        for state in states:
            for _name, index in state:
                self.leaks.setdefault(index, (span, what))

    # -- statements ----------------------------------------------------------------------

    def stmts(self, stmts: Iterable[ast.Stmt], states: set[State], depth: int) -> _Flow:
        flow = _Flow()
        current = states
        for stmt in stmts:
            if not current:
                break
            step = self.stmt(stmt, current, depth)
            flow.breaks |= step.breaks
            flow.returns |= step.returns
            current = step.normal
        flow.normal = current
        return flow

    def stmt(self, stmt: ast.Stmt, states: set[State], depth: int) -> _Flow:
        match stmt:
            case ast.Block(stmts=stmts):
                return self.stmts(stmts, states, depth)
            case ast.ExprStmt(call=call):
                return _Flow(normal=self.apply_call(call, states, depth))
            case ast.AssignStmt(value=value):
                return _Flow(normal=self.apply_expr(value, states, depth))
            case ast.IfStmt():
                return self.if_stmt(stmt, states, depth)
            case ast.SwitchStmt():
                return self.switch(stmt, states, depth)
            case ast.WhileStmt():
                return self.while_stmt(stmt, states, depth)
            case ast.ReturnStmt(value=value):
                after = self.apply_expr(value, states, depth) if value is not None else states
                return _Flow(returns=after)
            case ast.ExitStmt(value=value) | ast.DropStmt(value=value):
                after = self.apply_expr(value, states, depth) if value is not None else states
                word = "exit" if isinstance(stmt, ast.ExitStmt) else "drop"
                self.end_processing(after, stmt.span, f"this `{word}` ends processing")
                return _Flow()
            case ast.BreakStmt():
                return _Flow(breaks=set(states))
        return _Flow(normal=set(states))

    def condition(
        self, cond: ast.Expr, states: set[State], depth: int
    ) -> tuple[set[State], set[State]]:
        """The states entering the ``then`` and the ``else`` branch."""
        negated = False
        inner = cond
        while isinstance(inner, ast.UnaryOp) and inner.op == "!":
            negated = not negated
            inner = inner.operand
        if isinstance(inner, ast.Call):
            op = self.lock_op(inner)
            if op is not None and op[0] == "trylock":
                index = self.site(inner)
                taken = {s | {(op[1], index)} for s in states}
                return (states, taken) if negated else (taken, states)
        after = self.apply_expr(cond, states, depth)
        return after, after

    def if_stmt(self, stmt: ast.IfStmt, states: set[State], depth: int) -> _Flow:
        then_in, else_in = self.condition(stmt.cond, states, depth)
        then = self.stmt(stmt.then, then_in, depth)
        other = (
            self.stmt(stmt.else_, else_in, depth)
            if stmt.else_ is not None
            else _Flow(normal=else_in)
        )
        return _Flow(
            normal=then.normal | other.normal,
            breaks=then.breaks | other.breaks,
            returns=then.returns | other.returns,
        )

    def switch(self, stmt: ast.SwitchStmt, states: set[State], depth: int) -> _Flow:
        entry = self.apply_expr(stmt.subject, states, depth)
        flow = _Flow()
        fallthrough: set[State] = set()
        for case in stmt.cases:
            body = self.stmts(case.body, entry | fallthrough, depth)
            flow.normal |= body.breaks
            flow.returns |= body.returns
            fallthrough = body.normal
        flow.normal |= fallthrough
        if not any(case.value is None for case in stmt.cases):
            flow.normal |= entry
        return flow

    def while_stmt(self, stmt: ast.WhileStmt, states: set[State], depth: int) -> _Flow:
        seen = set(states)
        flow = _Flow()
        frontier = set(states)
        for _ in range(_MAX_ROUNDS):
            then_in, exit_in = self.condition(stmt.cond, frontier, depth)
            flow.normal |= exit_in
            body = self.stmt(stmt.body, then_in, depth)
            flow.normal |= body.breaks
            flow.returns |= body.returns
            frontier = body.normal - seen
            if not frontier:
                break
            seen |= frontier
        return flow

    # -- the whole config ----------------------------------------------------------------

    def run(self) -> None:
        for route in self.ctx.route_blocks():
            if route.kind is ast.RouteKind.ROUTE and route.name not in (None, "0"):
                continue
            flow = self.stmts(route.body.stmts, {frozenset()}, 0)
            end = route.body.span
            what = "the route block ends here"
            self.end_processing(flow.normal | flow.returns, _closing_brace(end), what)


def _closing_brace(span: Span) -> Span:
    return Span(span.file, max(span.start, span.end - 1), span.end, span.origin)


def check(ctx: SemaContext) -> None:
    analyzer = _Analyzer(ctx)
    locked: set[str] = set()
    unlocks: list[tuple[ast.Call, str]] = []
    for route in ctx.route_blocks():
        for node in iter_nodes(route.body):
            if isinstance(node, ast.Call):
                op = analyzer.lock_op(node)
                if op is None:
                    continue
                if op[0] == "unlock":
                    unlocks.append((node, op[1]))
                else:
                    locked.add(op[1])
    for call, name in unlocks:
        if name not in locked:
            ctx.sink.emit(
                Diagnostic.warning(
                    "W0701",
                    f"unlock of `{name}`, which is never locked",
                    call.span,
                    "no `lock` or `trylock` takes this name",
                    help=f'take it first with `lock("{name}")`, or fix the name',
                )
            )
    if not locked:
        return
    analyzer.run()
    for index, (end, what) in sorted(analyzer.leaks.items()):
        call = analyzer.lock_sites[index]
        arg = call.args[0]
        name = arg.value if isinstance(arg, ast.String) else call.name
        ctx.sink.emit(
            Diagnostic.warning(
                "W0702",
                f"lock `{name}` is not released on every path",
                call.span,
                "the lock is taken here",
                labels=[Label(end, f"{what} with `{name}` still locked")],
                notes=["a lock that is never released blocks every process that asks for it"],
                help=f'call `unlock("{name}")` before the route ends on this path',
            )
        )
