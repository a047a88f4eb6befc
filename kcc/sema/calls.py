"""Every function call: which export it is, where it may run, what its arguments are.

A call resolves like Kamailio's ``find_export_record``: by name and exact argument
count among the core and the loaded modules (the first loaded module wins). The
result goes to :attr:`SemaContext.resolved`. Reports:

- E0401 unknown function (did-you-mean over every function kcc knows);
- E0403 a function of a module that is not loaded (help: the ``loadmodule`` line);
- E0404 no overload with that many arguments (the accepted counts listed);
- E0402 a function not allowed in the block it is written in. Kamailio checks a call
  against the *enclosing block's* kind, a ``route[X]`` body as a request route, and in
  an ``event_route`` accepts an export with the REQUEST or ONEVENT bit;
- W0402 the same where Kamailio accepts it: a ``route[X]`` that the call graph shows
  running in a kind the function does not allow (the stock config's
  ``check_route_param`` in ``route[NATMANAGE]``, reached from a branch route), except
  where an enclosing ``if (is_request())`` / ``if (is_reply())`` rules that kind out
  (:func:`ruled_out_kinds`);
- E0405 an argument of the wrong kind: a non-constant where Kamailio demands a
  constant ("parameter N is not constant"), a route name that is not a constant
  string, something else than a pseudo-variable where the function stores a result,
  a bare word given to a module function.

Route names (E0301) are checked by :mod:`kcc.sema.reach`.
"""

from __future__ import annotations

import dataclasses

from kcc_runtime.exports import ArgKind, Route

from kcc import ast
from kcc.build_ast import MAX_ARGS
from kcc.diagnostics import Diagnostic, Label
from kcc.registry import FunctionInfo
from kcc.sema.context import SemaContext, base_kind, iter_nodes, module_name, route_key
from kcc.sema.reach import Graph
from kcc.sema.resolve import describe_route, did_you_mean, loadmodule_line
from kcc.source import Span

__all__ = ["allowed_in", "check", "describe_routes"]

#: the single route kinds, in the order they are listed to the user
_SINGLE_KINDS: tuple[tuple[Route, str], ...] = (
    (Route.REQUEST, "request_route"),
    (Route.FAILURE, "failure_route"),
    (Route.TM_ONREPLY, "onreply_route[...]"),
    (Route.CORE_ONREPLY, "reply_route"),
    (Route.BRANCH, "branch_route"),
    (Route.ONSEND, "onsend_route"),
    (Route.ERROR, "error_route"),
    (Route.LOCAL, "local_route"),
    (Route.BRANCH_FAILURE, "event_route[tm:branch-failure]"),
    (Route.ONEVENT, "event_route"),
)

#: the kinds a block runs in, as written in prose
_KIND_PROSE: dict[Route, str] = {
    Route.REQUEST: "a request_route",
    Route.FAILURE: "a failure_route",
    Route.TM_ONREPLY: "a reply route",
    Route.CORE_ONREPLY: "the core reply route",
    Route.BRANCH: "a branch_route",
    Route.ONSEND: "an onsend_route",
    Route.EVENT: "an event_route",
}

#: stateless reply functions (request routes only) and their transaction twins
STATEFUL_TWINS = {
    "sl_send_reply": "t_reply",
    "sl_reply": "t_reply",
    "sl_reply_error": "t_reply_error",
}

#: statements written like a bare action (``exit;``): what a bare unknown word may mean
STATEMENT_WORDS = ("exit", "drop", "return", "break")

#: argument nodes that are constants as written
_LITERALS = (ast.String, ast.Number)
#: ... and those the core grammar also takes as written (``setflag(FLAG)``, ``forward(1.2.3.4)``)
_CORE_LITERALS = (
    ast.String,
    ast.Number,
    ast.Name,
    ast.Host,
    ast.IPAddr,
    ast.Subnet,
    ast.SocketAddr,
    ast.Wildcard,
)


def allowed_in(routes: Route, kind: Route) -> bool:
    """May a function exported with ``routes`` be used in a block of ``kind``?"""
    if kind == Route.EVENT:
        return bool(routes & Route.EVENT)
    return (routes & kind) == kind


def describe_routes(routes: Route) -> str:
    """``Route.REQUEST | Route.FAILURE`` -> ``"request_route, failure_route"``."""
    if (routes & Route.ANY) == Route.ANY:
        return "any route"
    names = [name for bit, name in _SINGLE_KINDS if routes & bit]
    return ", ".join(names) if names else "no route at all"


def check(ctx: SemaContext) -> None:
    graph = ctx.graph
    assert graph is not None, "the reach pass builds the call graph before calls runs"
    unknown_modules = [
        module_name(item.path.value)
        for item in ctx.config.items
        if isinstance(item, ast.LoadModule)
        and not (item.expand and "$" in item.path.value)
        and not ctx.registry.is_module(module_name(item.path.value))
    ]
    loaded = list(ctx.loaded)
    for route in ctx.route_blocks():
        kind = base_kind(route_key(route))
        ruled_out = ruled_out_kinds(route.body)
        for node in iter_nodes(route.body):
            if isinstance(node, ast.Call):
                _check_call(
                    ctx,
                    graph,
                    route,
                    kind,
                    node,
                    loaded=loaded,
                    unknown_modules=unknown_modules,
                    ruled_out=ruled_out.get(id(node), Route(0)),
                )


def _check_call(
    ctx: SemaContext,
    graph: Graph,
    route: ast.Route,
    kind: Route,
    call: ast.Call,
    *,
    loaded: list[str],
    unknown_modules: list[str],
    ruled_out: Route,
) -> None:
    arity = len(call.args)
    resolution = ctx.registry.resolve(call.name, arity, loaded)
    found_core = resolution.found is not None and resolution.found.module == "core"
    known = resolution.found or resolution.wrong_arity or resolution.not_loaded
    if resolution.found is not None:
        ctx.resolved[id(call)] = resolution.found
    if (call.bare and not found_core and known) or arity > MAX_ARGS:
        return  # a syntax error already: `xlog;`, more arguments than Kamailio reads
    if resolution.found is not None:
        info = resolution.found
        if _check_kind(ctx, route, kind, call, info):
            _check_graph_kinds(ctx, graph, route, call, info, ruled_out=ruled_out)
        _check_args(ctx, call, info)
    elif resolution.wrong_arity:
        _wrong_arity(ctx, call, resolution.wrong_arity)
    elif resolution.not_loaded:
        _not_loaded(ctx, call, resolution.not_loaded)
    else:
        _unknown(ctx, call, loaded, unknown_modules)


# -- names and arities -----------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _counts(arities: list[int]) -> str:
    ordered = [str(a) for a in sorted(set(arities))]
    if len(ordered) == 1:
        return _plural(int(ordered[0]), "argument")
    return ", ".join(ordered[:-1]) + " or " + ordered[-1] + " arguments"


def _wrong_arity(ctx: SemaContext, call: ast.Call, infos: tuple[FunctionInfo, ...]) -> None:
    arity = len(call.args)
    accepted = _counts([info.cmd.arity for info in infos])
    help_text: str | None = None
    elsewhere = ctx.registry.resolve(call.name, arity, ctx.registry.module_names()).found
    if elsewhere is not None and elsewhere.module not in ctx.loaded:
        help_text = (
            f"`{call.name}` with {_plural(arity, 'argument')} is a function of module "
            f"`{elsewhere.module}`: add `{loadmodule_line(elsewhere.module)}`"
        )
    ctx.sink.emit(
        Diagnostic.error(
            "E0404",
            f"`{call.name}` takes {accepted}, not {arity}",
            call.span,
            f"{_plural(arity, 'argument')} given",
            help=help_text,
        )
    )


def _not_loaded(ctx: SemaContext, call: ast.Call, infos: tuple[FunctionInfo, ...]) -> None:
    arity = len(call.args)
    fitting = [info for info in infos if info.cmd.arity == arity] or list(infos)
    modules = sorted({info.module for info in fitting})
    if len(modules) == 1:
        message = f"`{call.name}` is a function of module `{modules[0]}`, which is not loaded"
        label = f"`{modules[0]}` is not loaded"
        help_text = f"add `{loadmodule_line(modules[0])}`"
    else:
        listed = ", ".join(f"`{m}`" for m in modules[:-1]) + f" and `{modules[-1]}`"
        message = f"`{call.name}` is exported by modules {listed}, none of which is loaded"
        label = "no module exporting it is loaded"
        lines = " or ".join(f"`{loadmodule_line(m)}`" for m in modules)
        help_text = f"load one of them: {lines}"
    ctx.sink.emit(
        Diagnostic.error(
            "E0403",
            message,
            call.name_span,
            label,
            notes=['Kamailio stops with "unknown command, missing loadmodule?"'],
            help=help_text,
        )
    )


def _unknown(
    ctx: SemaContext, call: ast.Call, loaded: list[str], unknown_modules: list[str]
) -> None:
    near: list[str] = []
    for module in ["core", *loaded]:
        exports = ctx.registry.module(module)
        if exports is not None:
            near.extend(cmd.name for cmd in exports.cmds)
    if call.bare:
        near.extend(STATEMENT_WORDS)
    close = did_you_mean(call.name, near, cutoff=0.7)
    help_text: str | None = None
    if close in STATEMENT_WORDS:
        help_text = f"a statement with a similar name exists: `{close};`"
    elif close is not None:
        help_text = f"a function with a similar name exists: `{close}`"
    else:
        close = did_you_mean(call.name, ctx.registry.function_names(), cutoff=0.8)
        if close is not None:
            owners = sorted(
                {info.module for info in ctx.registry.resolve(close, -1, []).not_loaded}
            )
            where = f" (module `{owners[0]}`)" if len(owners) == 1 else ""
            help_text = f"a function with a similar name exists: `{close}`{where}"
    notes = [
        f"module `{m}` is unknown to kcc: its functions cannot be checked" for m in unknown_modules
    ]
    ctx.sink.emit(
        Diagnostic.error(
            "E0401",
            f"unknown function `{call.name}`",
            call.name_span,
            "not a core action nor a function of any Kamailio module",
            notes=notes,
            help=help_text,
        )
    )


# -- route kinds ------------------------------------------------------------------------


def _check_kind(
    ctx: SemaContext, route: ast.Route, kind: Route, call: ast.Call, info: FunctionInfo
) -> bool:
    """E0402 where Kamailio rejects the call; True when it accepts it."""
    if allowed_in(info.cmd.routes, kind):
        return True
    notes = [f"`{call.name}` may be used in: {describe_routes(info.cmd.routes)}"]
    if route.kind is ast.RouteKind.ROUTE and route_key(route)[0] is ast.RouteKind.ROUTE:
        notes.append(
            "Kamailio checks the body of a `route[...]` block as a request_route, "
            "wherever it is called from"
        )
    help_text: str | None = None
    alternative = STATEFUL_TWINS.get(call.name)
    if alternative is not None:
        twin = ctx.registry.resolve(alternative, len(call.args), ["tm"]).found
        if twin is not None and allowed_in(twin.cmd.routes, kind):
            help_text = f"reply through the transaction instead: `{alternative}` (module `tm`)"
    ctx.sink.emit(
        Diagnostic.error(
            "E0402",
            f"`{call.name}` cannot be used in `{describe_route(route)}`",
            call.name_span,
            f"not allowed in {_KIND_PROSE.get(kind, 'this route')}",
            notes=notes,
            help=help_text,
        )
    )
    return False


def _check_graph_kinds(
    ctx: SemaContext,
    graph: Graph,
    route: ast.Route,
    call: ast.Call,
    info: FunctionInfo,
    *,
    ruled_out: Route,
) -> None:
    """W0402: a ``route[X]`` the call graph shows running where the function is not
    allowed (Kamailio checked the body as a request route and accepted it).

    Kinds in ``ruled_out`` are skipped: the call sits under an ``is_request()`` /
    ``is_reply()`` test that cannot hold there (see :func:`ruled_out_kinds`)."""
    if route.kind is not ast.RouteKind.ROUTE or route_key(route)[0] is not ast.RouteKind.ROUTE:
        return
    bad: list[tuple[Route, list[tuple[ast.Route, ast.Call]]]] = []
    for kind in graph.proven.get(id(route), {}):
        if kind & ruled_out:
            continue
        if not allowed_in(info.cmd.routes, kind):
            bad.append((kind, graph.path_to(route, kind)))
    if not bad:
        return
    labels: list[Label] = []
    origins: list[str] = []
    notes: list[str] = []
    for kind, chain in bad:
        if not chain:
            continue
        origin, first_call = chain[0]
        origins.append(f"`{describe_route(origin)}`")
        prose = _KIND_PROSE.get(kind, "a route")
        text = f"{prose} calls it here" if len(chain) == 1 else f"{prose} reaches it through here"
        labels.append(Label(first_call.span, text))
        steps = [describe_route(origin), *(describe_route(_callee(graph, c)) for c in chain)]
        notes.append("call path: " + " -> ".join(f"`{s}`" for s in steps))
    if not origins:
        return
    notes.append(f"`{call.name}` may be used in: {describe_routes(info.cmd.routes)}")
    notes.append("Kamailio accepts it, as it checks a `route[...]` body as a request_route only")
    kinds = [_KIND_PROSE.get(k, "a route") for k, chain in bad if chain]
    ctx.sink.emit(
        Diagnostic.warning(
            "W0402",
            f"`{call.name}` runs in {_join(origins)} through `{describe_route(route)}`, "
            "where it is not allowed",
            call.name_span,
            f"not allowed in {_join(kinds, 'or')}",
            labels=labels,
            notes=notes,
        )
    )


#: route kinds whose message is a request: a failure route and a branch route work on
#: the transaction's copy of the request (RFC 3261 §17.2 keeps it for the server side)
REQUEST_KINDS = Route.REQUEST | Route.FAILURE | Route.BRANCH
#: route kinds whose message is a reply
REPLY_KINDS = Route.TM_ONREPLY | Route.CORE_ONREPLY

#: message-type tests (siputils): a SIP message is a request or a response, never both
#: (RFC 3261 §7); for each, the kinds where it can be true and where it can be false
_MESSAGE_TESTS: dict[str, tuple[Route, Route]] = {
    "is_request": (REPLY_KINDS, REQUEST_KINDS),
    "is_reply": (REQUEST_KINDS, REPLY_KINDS),
}


def _impossible_when(cond: ast.Expr, truth: bool) -> Route:
    """Route kinds where ``cond`` cannot evaluate to ``truth``.

    Only the message-type tests, ``!`` and ``&&``/``||`` are understood; anything else
    may be true or false anywhere (no kind is ruled out).
    """
    match cond:
        case ast.Call(name=name, args=()) if name in _MESSAGE_TESTS:
            never_true, never_false = _MESSAGE_TESTS[name]
            return never_true if truth else never_false
        case ast.UnaryOp(op="!", operand=operand):
            return _impossible_when(operand, not truth)
        case ast.BinOp(op="&&", left=left, right=right) if truth:
            return _impossible_when(left, True) | _impossible_when(right, True)
        case ast.BinOp(op="||", left=left, right=right) if not truth:
            return _impossible_when(left, False) | _impossible_when(right, False)
    return Route(0)


def ruled_out_kinds(body: ast.Block) -> dict[int, Route]:
    """For every call in ``body`` (by ``id``), the route kinds in which it never runs
    because an enclosing ``if`` tests the message type: ``if (is_request()) {...}`` is
    never entered in a reply route, its ``else`` never in a request route (the stock
    config's ``route[NATMANAGE]``, reached from both). Calls missing from the result
    may run in every kind."""
    result: dict[int, Route] = {}
    stack: list[tuple[object, Route]] = [(body, Route(0))]
    while stack:
        node, ruled_out = stack.pop()
        if isinstance(node, ast.Call) and ruled_out:
            result[id(node)] = ruled_out
        if isinstance(node, ast.IfStmt):
            stack.append((node.cond, ruled_out))
            stack.append((node.then, ruled_out | _impossible_when(node.cond, True)))
            if node.else_ is not None:
                stack.append((node.else_, ruled_out | _impossible_when(node.cond, False)))
            continue
        stack.extend((child, ruled_out) for child in _children(node))
    return result


def _children(node: object) -> list[object]:
    """The AST nodes directly below ``node`` (spans and plain values left out)."""
    children: list[object] = []
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if dataclasses.is_dataclass(item) and not isinstance(item, type | Span):
                children.append(item)
    return children


def _join(items: list[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _callee(graph: Graph, step: tuple[ast.Route, ast.Call]) -> ast.Route:
    caller, call = step
    for edge_call, callee in graph.edges[id(caller)]:
        if edge_call is call:
            return callee
    return caller


# -- arguments --------------------------------------------------------------------------


def _is_constant(expr: ast.Expr, core: bool) -> bool:
    """A constant expression as Kamailio's grammar folds it: literals and operators
    over literals (``"a" + "b"``, ``1 + 1``)."""
    match expr:
        case ast.BinOp(left=left, right=right):
            return _is_constant(left, core) and _is_constant(right, core)
        case ast.UnaryOp(operand=operand) | ast.Cast(operand=operand):
            return _is_constant(operand, core)
        case _:
            return isinstance(expr, _CORE_LITERALS if core else _LITERALS)


def _is_pv_target(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.PVar):
        return True
    return (
        isinstance(expr, ast.String)
        and len(expr.parts) == 1
        and isinstance(expr.parts[0], ast.PVar)
    )


def _check_args(ctx: SemaContext, call: ast.Call, info: FunctionInfo) -> None:
    core = info.module == "core"
    for index, (arg, spec) in enumerate(zip(call.args, info.cmd.args, strict=False), start=1):
        if not core and isinstance(arg, ast.Name):
            ctx.sink.emit(
                Diagnostic.error(
                    "E0405",
                    f"argument {index} of `{call.name}` is a bare word",
                    arg.span,
                    "not a value",
                    notes=["module functions take strings, numbers and pseudo-variables"],
                    help=f'quote it: `"{arg.name}"`',
                )
            )
            continue
        if info.cmd.const_args and not _is_constant(arg, core):
            ctx.sink.emit(
                Diagnostic.error(
                    "E0405",
                    f"argument {index} of `{call.name}` must be a constant",
                    arg.span,
                    "not a constant",
                    notes=[
                        f'Kamailio stops with "parameter {index} is not constant": '
                        "the value is read once, at start-up"
                    ],
                    help="write the value as a literal string or number",
                )
            )
            continue
        if spec.kind is ArgKind.ROUTE and not core and not _is_constant(arg, core):
            ctx.sink.emit(
                Diagnostic.error(
                    "E0405",
                    f"the route name given to `{call.name}` must be a constant string",
                    arg.span,
                    "not a constant",
                    help='name the block: `"NAME"`',
                )
            )
        elif spec.kind is ArgKind.PV_WRITE and not _is_pv_target(arg):
            ctx.sink.emit(
                Diagnostic.error(
                    "E0405",
                    f"argument {index} of `{call.name}` must be a pseudo-variable to store into",
                    arg.span,
                    "not a pseudo-variable",
                    help="for example `$var(result)`",
                )
            )
