"""The route call graph: which route kinds reach each block, route references, recursion.

Kamailio checks a ``route[X]`` body as a request route whatever calls it. kcc follows
the calls: ``route(NAME)`` with a constant name is an edge, and the route kinds of the
caller flow to the callee until nothing changes (request_route -> REQUEST,
failure_route -> FAILURE, branch_route -> BRANCH, onreply_route[X] -> TM_ONREPLY,
reply_route -> CORE_ONREPLY, onsend_route -> ONSEND, event_route -> EVENT). The result
goes to :attr:`SemaContext.reach` (a ``route[X]`` nothing calls gets REQUEST, the kind
Kamailio itself assumes) and :attr:`SemaContext.callees`.

Reports:

- E0301: ``route(X)``, ``t_on_failure("X")``, ``t_on_branch``, ``t_on_reply`` or
  ``t_on_branch_failure`` (-> ``event_route[tm:branch-failure:X]``) naming a block
  that does not exist, with a did-you-mean among the blocks of that kind;
- W0305: a ``route[X]`` never called, a named failure/branch/onreply route never
  armed. A dynamic reference (``route($var(x))``) may reach any block of its kind, and
  a block whose name appears as a string elsewhere (``async_route("X", 1)``, a module
  parameter such as tm's ``on_sl_reply``) may be run by a module: no warning then;
- W0306: a cycle of ``route()`` calls (Kamailio allows recursion up to
  ``max_recursive_level`` nested calls).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from kcc_runtime.exports import ArgKind, Route

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.context import RouteKey, SemaContext, base_kind, iter_nodes, route_key
from kcc.sema.resolve import describe_route, did_you_mean

__all__ = [
    "ARMING",
    "Graph",
    "RouteRef",
    "check",
    "code_may_be_lost",
    "constant_name",
    "kind_name",
    "route_refs",
]

#: tm functions that arm a block for later, and the kind of block they name
ARMING: dict[str, Route] = {
    "t_on_failure": Route.FAILURE,
    "t_on_branch": Route.BRANCH,
    "t_on_reply": Route.TM_ONREPLY,
    "t_on_branch_failure": Route.BRANCH_FAILURE,
}

#: how each kind of block is written, and how to say it in prose
_TABLES: dict[Route, tuple[ast.RouteKind, str]] = {
    Route.REQUEST: (ast.RouteKind.ROUTE, "route"),
    Route.FAILURE: (ast.RouteKind.FAILURE, "failure route"),
    Route.BRANCH: (ast.RouteKind.BRANCH, "branch route"),
    Route.TM_ONREPLY: (ast.RouteKind.ONREPLY, "reply route"),
    Route.BRANCH_FAILURE: (ast.RouteKind.EVENT, "branch-failure event route"),
}

_BRANCH_FAILURE_PREFIX = "tm:branch-failure:"

_KIND_NAMES: dict[Route, str] = {
    Route.REQUEST: "request_route",
    Route.FAILURE: "failure_route",
    Route.TM_ONREPLY: "onreply_route",
    Route.BRANCH: "branch_route",
    Route.ONSEND: "onsend_route",
    Route.ERROR: "error_route",
    Route.LOCAL: "local_route",
    Route.CORE_ONREPLY: "reply_route",
    Route.BRANCH_FAILURE: "event_route[tm:branch-failure]",
    Route.ONEVENT: "event_route",
    Route.EVENT: "event_route",
}


def kind_name(kind: Route) -> str:
    """``Route.FAILURE`` -> ``"failure_route"`` (the block keyword of that kind)."""
    return _KIND_NAMES.get(kind, str(kind.name).lower())


def constant_name(expr: ast.Expr) -> str | None:
    """The route name a constant argument spells (``RELAY``, ``"RELAY"``, ``1``,
    ``"A" + "B"`` folded as Kamailio folds it); None for a value known only at run time."""
    match expr:
        case ast.Name(name=name) | ast.String(value=name):
            return name
        case ast.Number(value=value):
            return str(value)
        case ast.BinOp(op="+", left=left, right=right):
            if isinstance(left, ast.Number) and isinstance(right, ast.Number):
                return str(left.value + right.value)
            a, b = constant_name(left), constant_name(right)
            strings = isinstance(left, ast.String | ast.BinOp) and isinstance(
                right, ast.String | ast.BinOp
            )
            if strings and a is not None and b is not None:
                return a + b
            return None
        case _:
            return None


@dataclass(frozen=True, slots=True)
class RouteRef:
    """A call that names a block: ``route(X)`` or ``t_on_failure("X")``."""

    call: ast.Call
    #: the block holding the call
    caller: ast.Route
    #: what kind of block it names (``Route.REQUEST`` for ``route()``)
    kind: Route
    #: the constant name, None when computed at run time
    name: str | None
    #: the block it names, None when unknown or dynamic
    target: ast.Route | None


def _target_key(kind: Route, name: str) -> RouteKey:
    if kind is Route.REQUEST and name == "0":
        return (ast.RouteKind.REQUEST, None)
    if kind is Route.BRANCH_FAILURE:
        return (ast.RouteKind.EVENT, _BRANCH_FAILURE_PREFIX + name)
    return (_TABLES[kind][0], name)


def _ref_kind(ctx: SemaContext, call: ast.Call) -> Route | None:
    if len(call.args) != 1:
        return None
    if call.name == "route":
        return Route.REQUEST
    armed = ARMING.get(call.name)
    if armed is not None:
        return armed
    found = ctx.registry.resolve(call.name, 1, list(ctx.loaded)).found
    if found is not None and found.cmd.args[0].kind is ArgKind.ROUTE:
        route = found.cmd.args[0].route
        if route is not None and route in _TABLES:
            return route
    return None


def route_refs(ctx: SemaContext) -> list[RouteRef]:
    """Every reference to a block, in source order."""
    refs: list[RouteRef] = []
    for route in ctx.route_blocks():
        for node in iter_nodes(route.body):
            if not isinstance(node, ast.Call):
                continue
            kind = _ref_kind(ctx, node)
            if kind is None:
                continue
            name = constant_name(node.args[0])
            target = None if name is None else ctx.routes.get(_target_key(kind, name))
            refs.append(RouteRef(node, route, kind, name, target))
    return refs


#: how a block came to run in one kind: the seed itself (None) or the call that passed it
Via = tuple[ast.Route, ast.Call] | None


@dataclass
class Graph:
    """The ``route()`` call graph and the route kinds flowing through it."""

    refs: list[RouteRef]
    #: id(block) -> (call, callee) for each constant ``route(NAME)`` it makes
    edges: dict[int, list[tuple[ast.Call, ast.Route]]] = field(default_factory=dict)
    #: id(block) -> the kinds it runs in *because of constant calls*, with the call
    #: that first brought each kind (the key is a block's own kind: ``Route.EVENT`` is
    #: one key, not two bits)
    proven: dict[int, dict[Route, Via]] = field(default_factory=dict)
    #: id(block) -> every kind it may run in, dynamic ``route($x)`` calls included
    possible: dict[int, Route] = field(default_factory=dict)
    #: the kinds of block named somewhere by a value computed at run time
    #: (``route($var(x))`` -> ``Route.REQUEST``)
    dynamic: set[Route] = field(default_factory=set)

    def path_to(self, block: ast.Route, kind: Route) -> list[tuple[ast.Route, ast.Call]]:
        """The chain of calls that brings ``kind`` to ``block``, outermost first."""
        chain: list[tuple[ast.Route, ast.Call]] = []
        current = block
        seen: set[int] = set()
        while id(current) not in seen:
            seen.add(id(current))
            via = self.proven.get(id(current), {}).get(kind)
            if via is None:
                break
            chain.append(via)
            current = via[0]
        chain.reverse()
        return chain


def _is_subroute(route: ast.Route) -> bool:
    return route.kind is ast.RouteKind.ROUTE and route.name not in (None, "0")


def build_graph(ctx: SemaContext) -> Graph:
    blocks = list(ctx.route_blocks())
    graph = Graph(route_refs(ctx))
    for block in blocks:
        graph.edges[id(block)] = []
        graph.proven[id(block)] = {} if _is_subroute(block) else {base_kind(route_key(block)): None}
    dynamic_callers: set[int] = set()
    for ref in graph.refs:
        if ref.name is None:
            graph.dynamic.add(ref.kind)
            if ref.kind is Route.REQUEST:
                dynamic_callers.add(id(ref.caller))
        elif ref.kind is Route.REQUEST and ref.target is not None:
            graph.edges[id(ref.caller)].append((ref.call, ref.target))
    _propagate(blocks, graph)
    # every kind, dynamic calls included (no paths: a dynamic call may reach any block)
    possible: dict[int, set[Route]] = {id(b): set(graph.proven[id(b)]) for b in blocks}
    subroutes = [b for b in blocks if _is_subroute(b)]
    work = deque(blocks)
    while work:
        block = work.popleft()
        targets = [callee for _, callee in graph.edges[id(block)]]
        if id(block) in dynamic_callers:
            targets.extend(subroutes)
        for callee in targets:
            missing = possible[id(block)] - possible[id(callee)]
            if missing:
                possible[id(callee)] |= missing
                work.append(callee)
    for block in blocks:
        flags = Route(0)
        for kind in possible[id(block)]:
            flags |= kind
        graph.possible[id(block)] = flags
    return graph


def _propagate(blocks: list[ast.Route], graph: Graph) -> None:
    work = deque(blocks)
    while work:
        block = work.popleft()
        for call, callee in graph.edges[id(block)]:
            grown = False
            for kind in graph.proven[id(block)]:
                if kind not in graph.proven[id(callee)]:
                    graph.proven[id(callee)][kind] = (block, call)
                    grown = True
            if grown:
                work.append(callee)


def check(ctx: SemaContext) -> None:
    graph = ctx.graph = build_graph(ctx)
    for block in ctx.route_blocks():
        flags = graph.possible[id(block)]
        ctx.reach[id(block)] = flags if flags else Route.REQUEST
        callees: list[ast.Route] = []
        for _, callee in graph.edges[id(block)]:
            if not any(c is callee for c in callees):
                callees.append(callee)
        ctx.callees[id(block)] = callees
    unknown_kinds = _report_unknown(ctx, graph)
    _report_unused(ctx, graph, unknown_kinds)
    _report_recursion(ctx, graph)


# -- E0301 ------------------------------------------------------------------------------


def _table(ctx: SemaContext, kind: Route) -> list[ast.Route]:
    keyword = _TABLES[kind][0]
    found: list[ast.Route] = []
    for route in ctx.route_blocks():
        if route.kind is not keyword or route.name in (None, "0"):
            continue
        if kind is Route.BRANCH_FAILURE and not route.name.startswith(_BRANCH_FAILURE_PREFIX):
            continue
        found.append(route)
    return found


def _table_name(kind: Route, route: ast.Route) -> str:
    name = route.name or ""
    return name.removeprefix(_BRANCH_FAILURE_PREFIX) if kind is Route.BRANCH_FAILURE else name


def _written(kind: Route, name: str) -> str:
    if kind is Route.BRANCH_FAILURE:
        return f"event_route[{_BRANCH_FAILURE_PREFIX}{name}]"
    return f"{_TABLES[kind][0].value}[{name}]"


def _report_unknown(ctx: SemaContext, graph: Graph) -> set[Route]:
    kinds: set[Route] = set()
    for ref in graph.refs:
        if ref.name is None or ref.target is not None:
            continue
        if ref.name == "0":
            continue  # the main route / the unnamed block of the kind (or none: disarm)
        kinds.add(ref.kind)
        if (_TABLES[ref.kind][0].value, _lost_name(ref.kind, ref.name)) in ctx.lost_routes:
            continue  # the parser could not read the block: reported already
        lost = _written_elsewhere(ctx, ref.kind, ref.name)
        if lost is not None and code_may_be_lost(ctx):
            continue  # the block was swallowed by an error reported already
        _, prose = _TABLES[ref.kind]
        existing = _table(ctx, ref.kind)
        names = [_table_name(ref.kind, r) for r in existing]
        close = did_you_mean(ref.name, names)
        if close is not None:
            help_text = f"a {prose} with a similar name exists: `{close}`"
        elif len(names) == 1:
            help_text = f"the only {prose} is `{names[0]}`: use its name"
            close = names[0]
        elif names:
            listed = ", ".join(f"`{n}`" for n in names)
            help_text = f"use the name of an existing {prose}: {listed}"
        else:
            help_text = f"define the block: `{_written(ref.kind, ref.name)} {{ ... }}`"
        labels: list[Label] = []
        candidate = next((r for r in existing if _table_name(ref.kind, r) == close), None)
        if candidate is not None and not _armed(graph, ref.kind, candidate):
            unused = "never called" if ref.kind is Route.REQUEST else "never armed"
            labels.append(
                Label(ctx.span_of_name(candidate), f"`{describe_route(candidate)}` is {unused}")
            )
        ctx.sink.emit(
            Diagnostic.error(
                "E0301",
                f"unknown {prose} `{ref.name}`",
                ref.call.args[0].span,
                f"no `{_written(ref.kind, ref.name)}` block exists",
                labels=labels,
                notes=[
                    f"`{_written(ref.kind, ref.name)}` is written at {lost}, but not as a "
                    "block Kamailio reads (in a comment, or in a disabled `#!ifdef` section)"
                ]
                if lost is not None
                else [],
                help=help_text,
            )
        )
    return kinds


def _written_elsewhere(ctx: SemaContext, kind: Route, name: str) -> str | None:
    """Where the header of the missing block appears in the source text anyway (a
    comment that swallowed it, a disabled ``#!ifdef`` section), as ``file:line``."""
    if kind is Route.BRANCH_FAILURE:
        head = r"\bevent_route\s*\[\s*" + re.escape(_BRANCH_FAILURE_PREFIX + name)
    else:
        head = rf"\b{_TABLES[kind][0].value}\s*\[\s*\"?" + re.escape(name) + r'"?'
    pattern = re.compile(head + r"\s*\]")
    files = {id(ctx.config.span.file): ctx.config.span.file}
    for route in ctx.route_blocks():
        files.setdefault(id(route.span.file), route.span.file)
    for source in files.values():
        found = pattern.search(source.text)
        if found is not None:
            line, _ = source.line_col(found.start())
            return f"{source.display}:{line}"
    return None


def _armed(graph: Graph, kind: Route, route: ast.Route) -> bool:
    return any(
        ref.target is route and ref.caller is not route and ref.kind is kind for ref in graph.refs
    )


# -- W0305 ------------------------------------------------------------------------------


def _named_elsewhere(ctx: SemaContext) -> set[str]:
    """Strings that may name a block for a module: string arguments of calls that are
    not route references, and the words of module parameter values."""
    names: set[str] = set()
    for item in ctx.config.items:
        if isinstance(item, ast.ModParam) and isinstance(item.value, ast.String):
            names.update(re.findall(r"[A-Za-z0-9_:.-]+", item.value.value))
        elif isinstance(item, ast.Route):
            for node in iter_nodes(item.body):
                if isinstance(node, ast.Call) and node.name != "route" and node.name not in ARMING:
                    for arg in node.args:
                        if isinstance(arg, ast.String):
                            names.add(arg.value)
    return names


def code_may_be_lost(ctx: SemaContext) -> bool:
    """The parser dropped text it could not read, or a syntax error was repaired: a
    block may be called, or a header written, in code that is not in the tree."""
    return ctx.partial or any(d.is_error and d.code[1:3] == "02" for d in ctx.sink.diagnostics)


def _lost_name(kind: Route, name: str) -> str:
    return _BRANCH_FAILURE_PREFIX + name if kind is Route.BRANCH_FAILURE else name


def _report_unused(ctx: SemaContext, graph: Graph, unknown_kinds: set[Route]) -> None:
    if code_may_be_lost(ctx):
        return  # the call that uses the block may be in the code that was lost
    elsewhere = _named_elsewhere(ctx)
    for kind in (Route.REQUEST, Route.FAILURE, Route.BRANCH, Route.TM_ONREPLY):
        if kind in graph.dynamic or kind in unknown_kinds:
            continue
        for route in _table(ctx, kind):
            if _armed(graph, kind, route) or route.name in elsewhere:
                continue
            if ctx.routes.get(route_key(route)) is not route:
                continue  # a duplicate block: E0304 already
            name = route.name or ""
            if kind is Route.REQUEST:
                message = f"`{describe_route(route)}` is never called"
                label = f"no `route({name})` calls this block"
            else:
                armer = next(f for f, k in ARMING.items() if k is kind)
                message = f"`{describe_route(route)}` is never armed"
                label = f'no `{armer}("{name}")` names this block'
            ctx.sink.emit(
                Diagnostic.warning(
                    "W0305",
                    message,
                    ctx.span_of_name(route),
                    label,
                    notes=["Kamailio never runs it"],
                )
            )


# -- W0306 ------------------------------------------------------------------------------


def _report_recursion(ctx: SemaContext, graph: Graph) -> None:
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    for start in ctx.route_blocks():
        if id(start) in state:
            continue
        # iterative DFS: (block, index of the next edge to follow)
        stack: list[tuple[ast.Route, int]] = [(start, 0)]
        path: list[ast.Route] = [start]
        state[id(start)] = 1
        while stack:
            block, index = stack[-1]
            edges = graph.edges[id(block)]
            if index >= len(edges):
                stack.pop()
                path.pop()
                state[id(block)] = 2
                continue
            stack[-1] = (block, index + 1)
            call, callee = edges[index]
            status = state.get(id(callee))
            if status is None:
                state[id(callee)] = 1
                stack.append((callee, 0))
                path.append(callee)
            elif status == 1:
                cycle = path[next(i for i, b in enumerate(path) if b is callee) :]
                _emit_recursion(ctx, call, [*cycle, callee])


def _emit_recursion(ctx: SemaContext, call: ast.Call, cycle: list[ast.Route]) -> None:
    if len(cycle) == 2:
        message = f"`{describe_route(cycle[0])}` calls itself"
    else:
        chain = " -> ".join(f"`{describe_route(r)}`" for r in cycle)
        message = f"recursive route calls: {chain}"
    ctx.sink.emit(
        Diagnostic.warning(
            "W0306",
            message,
            call.span,
            f"calls `{describe_route(cycle[-1])}` again while it is still running",
            notes=["Kamailio allows it up to `max_recursive_level` nested calls (256 by default)"],
            help="make sure a condition ends the recursion, or use a `while` loop",
        )
    )
