"""What the semantic passes share: the :class:`SemaContext` and small AST helpers.

The passes run in the order of :data:`kcc.sema.PASSES`. Each reads the config and
what earlier passes recorded here, reports to ``ctx.sink``, and keeps going. Nodes are
keyed by ``id()``: the AST is immutable and lives as long as the context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from kcc_runtime.exports import Route

from kcc import ast
from kcc.diagnostics import DiagnosticSink
from kcc.preprocess import Define
from kcc.source import Span

if TYPE_CHECKING:
    from kcc.registry import FunctionInfo, Registry
    from kcc.sema.flags import FlagTable
    from kcc.sema.reach import Graph

__all__ = [
    "RouteKey",
    "SemaContext",
    "base_kind",
    "iter_nodes",
    "module_name",
    "route_key",
]

#: a route block's identity: (keyword kind, name); unnamed blocks have name None.
#: ``route {}``/``request_route {}``/``route[0]`` are all ``(RouteKind.REQUEST, None)``;
#: ``onreply_route {}``/``reply_route {}``/``onreply_route[0]`` are ``(RouteKind.REPLY, None)``.
RouteKey = tuple[ast.RouteKind, str | None]


def route_key(route: ast.Route) -> RouteKey:
    kind, name = route.kind, route.name
    if kind is ast.RouteKind.ROUTE and name in (None, "0"):
        return (ast.RouteKind.REQUEST, None)
    if kind is ast.RouteKind.REQUEST:
        return (ast.RouteKind.REQUEST, None)
    if kind in (ast.RouteKind.ONREPLY, ast.RouteKind.REPLY) and name in (None, "0"):
        return (ast.RouteKind.REPLY, None)
    return (kind, name)


def base_kind(key: RouteKey) -> Route:
    """The route kind Kamailio checks a block's own statements against."""
    kind, name = key
    match kind:
        case ast.RouteKind.REQUEST | ast.RouteKind.ROUTE:
            return Route.REQUEST
        case ast.RouteKind.FAILURE:
            return Route.FAILURE
        case ast.RouteKind.BRANCH:
            return Route.BRANCH
        case ast.RouteKind.ONREPLY:
            return Route.TM_ONREPLY if name is not None else Route.CORE_ONREPLY
        case ast.RouteKind.REPLY:
            return Route.CORE_ONREPLY
        case ast.RouteKind.ONSEND:
            return Route.ONSEND
        case ast.RouteKind.EVENT:
            return Route.EVENT
    raise AssertionError(f"unknown route kind {kind}")


def module_name(path: str) -> str:
    """``"/usr/lib/kamailio/modules/tm.so"`` -> ``"tm"``, as Kamailio names modules."""
    base = PurePosixPath(path).name
    return base[:-3] if base.endswith(".so") else base


def _default_registry() -> Registry:
    from kcc.registry import registry

    return registry()


@dataclass
class SemaContext:
    config: ast.Config
    sink: DiagnosticSink
    #: the define table at the end of preprocessing (flags named by defines ...)
    defines: dict[str, Define] = field(default_factory=dict)
    registry: Registry = field(default_factory=_default_registry)
    #: the parser dropped top-level text it could not parse: a name used but not
    #: defined may be defined in that text, a block never called may be called there
    partial: bool = False
    #: route blocks written in the source but missing from the tree (an unparsable item,
    #: or a header inside a comment): ``(keyword, name)``; never report them as unknown
    lost_routes: set[tuple[str, str | None]] = field(default_factory=set)
    #: the compatibility mode of the ``#!KAMAILIO``/``#!SER``/``#!MAXCOMPAT`` marker:
    #: ``max`` (default) and ``ser`` read an unknown ``$name`` as an AVP, ``kamailio`` not
    compat: str = "max"

    # -- filled by `resolve` ---------------------------------------------------------
    #: loaded modules in load order: name -> its ``loadmodule`` item
    loaded: dict[str, ast.LoadModule] = field(default_factory=dict)
    #: every route block by identity (the first one when a name is duplicated)
    routes: dict[RouteKey, ast.Route] = field(default_factory=dict)

    # -- filled by `reach` -------------------------------------------------------------
    #: id(route) -> every route kind the block can run in (through the call graph)
    reach: dict[int, Route] = field(default_factory=dict)
    #: id(route) -> the route blocks it calls with ``route(NAME)``
    callees: dict[int, list[ast.Route]] = field(default_factory=dict)
    #: the call graph itself (edges with their call sites, route kinds per block)
    graph: Graph | None = None

    # -- filled by `calls` -------------------------------------------------------------
    #: id(call) -> the function it resolved to (module functions and core actions)
    resolved: dict[int, FunctionInfo] = field(default_factory=dict)

    # -- filled by `flags` -------------------------------------------------------------
    #: every flag use and declaration (``kcc check --flags``, the code generator)
    flag_table: FlagTable | None = None

    def loaded_or_core(self) -> list[str]:
        return ["core", *self.loaded]

    def route_blocks(self) -> Iterator[ast.Route]:
        for item in self.config.items:
            if isinstance(item, ast.Route):
                yield item

    def span_of_name(self, route: ast.Route) -> Span:
        return route.name_span or route.span


def iter_nodes(node: Any) -> Iterator[Any]:
    """Every AST node below ``node`` (itself included), parents before children, in
    source order. Spans and plain values are not visited."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        children: list[Any] = []
        for name in _node_fields(type(current)):
            value = getattr(current, name)
            if type(value) is tuple:
                children.extend(v for v in value if type(v) in _NODE_TYPES)
            elif type(value) in _NODE_TYPES:
                children.append(value)
        stack.extend(reversed(children))


#: every AST node class (the dataclasses of :mod:`kcc.ast`)
_NODE_TYPES: frozenset[type] = frozenset(
    cls
    for cls in vars(ast).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == ast.__name__
)


def _node_fields(cls: type) -> tuple[str, ...]:
    """The fields of a node class that can hold nodes (all but its spans)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name != "span" and not f.name.endswith("_span")
        )
    return found


_FIELDS: dict[type, tuple[str, ...]] = {}
