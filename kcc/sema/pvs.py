"""Pseudo-variables: classes, inner names, writability, transformations (E0601-E0606).

Kamailio parses every pseudo-variable of the routing code when it reads the config
(``pv_parse_spec``: "Can't get from cache: $x" is a parse error), and those of format
strings when the function's fixup runs at start-up. kcc checks both kinds the same
way. Checked: pseudo-variables in code (operands, assignment targets, function
arguments), inside other pseudo-variables (inner names, indexes, transformation
parameters), and in the strings a function takes as a format: arguments of
``ArgKind.STR`` (``xlog``, ``sl_send_reply``'s reason ...) and ``ArgKind.LOCK``
parameters. Any other string is not interpolated by Kamailio (``$var(x) = "$ru"``
stores the three characters), so its ``$`` is not checked.

- E0601: unknown class, or a class exported by a module that is not loaded (help: the
  ``loadmodule`` line). Kamailio: "Can't get from cache" (a parse error) in code,
  "wrong format" at start-up in a format string. One exception: in code (not in a
  format), Kamailio 5.6's default compatibility mode reads an unknown ``$name`` (no
  parentheses) as the AVP ``$avp(name)``: ``$x = $fuu;`` passes ``kamailio -c``
  unless the file starts with ``#!KAMAILIO`` (``SemaContext.compat``), so kcc accepts
  it there too. A known class of a module that is not loaded is reported even then:
  Kamailio would silently use an AVP called ``ru`` for ``$ru``.
- E0602: a malformed inner name (``$var()``, ``$avp(i:abc)``, ``$xavp(a=>)``).
- E0603: assignment to a read-only class (``$si = ...``), also through a function that
  stores into a pseudo-variable (``ArgKind.PV_WRITE``).
- E0604: an unknown transformation, or one whose module is not loaded.
- W0605: a transaction-only class (:attr:`PvExport.transaction`: ``$T_reply_code``,
  ``$T_req(...)`` ...) in a block where no transaction can exist (see
  :func:`transaction_free_blocks`).
- E0606: an inner name missing where the class needs one (``$var``), or given where it
  takes none (``$ru(x)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator

from kcc_runtime.exports import ArgKind, PvExport

from kcc import ast
from kcc.diagnostics import Diagnostic
from kcc.pv import LITERAL_INNER
from kcc.sema.context import SemaContext, route_key
from kcc.source import Span

__all__ = ["FORMAT_KINDS", "check", "transaction_free_blocks"]

#: argument kinds whose string values are formats (pseudo-variables interpolated)
FORMAT_KINDS = frozenset({ArgKind.STR, ArgKind.LOCK})

#: modules whose functions never create nor look up a transaction; a request or reply
#: block that only calls these (and core actions) runs without one
NO_TRANSACTION_MODULES = frozenset(
    {
        "core",
        "alias_db",
        "auth",
        "auth_db",
        "cfgutils",
        "corex",
        "counters",
        "debugger",
        "dispatcher",
        "domain",
        "htable",
        "ipops",
        "kex",
        "maxfwd",
        "nathelper",
        "permissions",
        "pike",
        "pv",
        "registrar",
        "rr",
        "sanity",
        "sdpops",
        "siputils",
        "sl",
        "speeddial",
        "textops",
        "textopsx",
        "usrloc",
        "xlog",
    }
)

_AVP_INNER = re.compile(r"(?:(?:[is]):)?(.*)", re.DOTALL)
_HEADER_NAME = re.compile(r"[A-Za-z0-9!%*_.+`'~-]+")
_XAVP_PART = r"[A-Za-z0-9_.-]+(?:\[(?:-?[0-9]+|\*|\+|\$.*)\])?"
_XAVP_INNER = re.compile(rf"{_XAVP_PART}(?:=>{_XAVP_PART})?", re.DOTALL)


def _loadmodule_help(module: str) -> str:
    return f'load it: `loadmodule "{module}.so"`'


class _Checker:
    def __init__(self, ctx: SemaContext) -> None:
        self.ctx = ctx
        self.registry = ctx.registry
        self.loaded = set(ctx.loaded)
        self.tx_free: set[int] = transaction_free_blocks(ctx)
        self._transformations: list[str] | None = None

    # -- lookup ----------------------------------------------------------------------------

    def lookup(self, name: str) -> tuple[str, PvExport] | None:
        """The class as exported by a loaded module (or the core), else by any module."""
        for module in ("core", *self.ctx.loaded):
            exports = self.registry.module(module)
            if exports is None:
                continue
            for pv in exports.pvs:
                if pv.name == name:
                    return module, pv
        return self.registry.pv_class(name)

    def all_transformations(self) -> list[str]:
        if self._transformations is None:
            names: set[str] = set()
            for module in self.registry.module_names():
                exports = self.registry.module(module)
                if exports is not None:
                    names.update(exports.transformations)
            self._transformations = sorted(names)
        return self._transformations

    # -- one pseudo-variable ---------------------------------------------------------------

    def pvar(
        self, pv: ast.PVar, route: ast.Route, *, write: bool = False, fmt: bool = False
    ) -> None:
        """Check one pseudo-variable; ``fmt`` when it is part of a format string."""
        if pv.name == "?":
            return
        found = self.lookup(pv.name)
        if found is None:
            if fmt or pv.inner is not None or self.ctx.compat == "kamailio":
                # in code, Kamailio 5.6's default mode takes `$name` for `$avp(name)`
                self.unknown(pv)
        else:
            module, export = found
            if module != "core" and module not in self.loaded:
                self.emit_error(
                    "E0601",
                    f"pseudo-variable `${pv.name}` needs module `{module}`, which is not loaded",
                    pv.span,
                    f"`${pv.name}` is exported by `{module}`",
                    help_=_loadmodule_help(module),
                )
            else:
                self.shape(pv, export)
                self.literal_name(pv)
                if write and not export.writable:
                    self.emit_error(
                        "E0603",
                        f"`${pv.name}` is read-only",
                        pv.span,
                        "cannot be assigned",
                        notes=['Kamailio: "read only pvar in assignment left side"'],
                    )
                if export.transaction and id(route) in self.tx_free:
                    self.ctx.sink.emit(
                        Diagnostic.warning(
                            "W0605",
                            f"`${pv.name}` is only meaningful in a transaction, "
                            "and none exists here",
                            pv.span,
                            "no transaction on any path that reaches this block",
                            notes=[
                                "this block runs only from request or reply blocks that call "
                                "no transaction function (`t_newtran`, `t_relay`, "
                                "`t_check_trans` ...)",
                                "failure_route, branch_route and onreply_route[NAME] always "
                                "have a transaction",
                            ],
                        )
                    )
        for tr in pv.transformations:
            self.transformation(tr, route, fmt)
        for part in pv.inner or ():
            if isinstance(part, ast.PVar):
                self.pvar(part, route, fmt=fmt)
        if isinstance(pv.index, ast.PVar):
            self.pvar(pv.index, route, fmt=fmt)

    def unknown(self, pv: ast.PVar) -> None:
        close = difflib.get_close_matches(pv.name, self.registry.pv_classes(), n=1, cutoff=0.75)
        self.emit_error(
            "E0601",
            f"unknown pseudo-variable `${pv.name}`",
            pv.span,
            "no module exports this class",
            notes=['Kamailio: "Can\'t get from cache", a parse error'],
            help_=f"a pseudo-variable with a similar name exists: `${close[0]}`" if close else None,
        )

    def shape(self, pv: ast.PVar, export: PvExport) -> None:
        """E0606 and E0602: the inner name against what the class takes."""
        if export.inner and pv.inner is None:
            self.emit_error(
                "E0606",
                f"`${pv.name}` needs an inner name",
                pv.span,
                f"expected `${pv.name}(name)`",
                notes=['Kamailio: "pvar expects an inner name"'],
            )
            return
        if not export.inner and pv.inner is not None:
            self.emit_error(
                "E0606",
                f"`${pv.name}` takes no inner name",
                pv.span,
                "remove the parentheses",
                notes=['Kamailio: "pvar does not get name param"'],
                help_=f"write `${pv.name}`",
            )
            return
        if pv.inner is None:
            return
        reason = _inner_error(pv.name, pv.inner)
        if reason is not None:
            self.emit_error(
                "E0602",
                f"malformed inner name in `${pv.name}(...)`",
                pv.span,
                reason,
            )

    def transformation(self, tr: ast.Transformation, route: ast.Route, fmt: bool) -> None:
        module = self.registry.transformation(tr.name)
        if module is None:
            cls = tr.name.split(".", 1)[0]
            names = self.all_transformations()
            same_class = [n for n in names if n.split(".", 1)[0] == cls]
            close = difflib.get_close_matches(tr.name, same_class or names, n=1, cutoff=0.6)
            self.emit_error(
                "E0604",
                f"unknown transformation `{{{tr.name}}}`",
                tr.span,
                "no module exports this transformation",
                help_=f"a transformation with a similar name exists: `{{{close[0]}}}`"
                if close
                else None,
            )
        elif module != "core" and module not in self.loaded:
            self.emit_error(
                "E0604",
                f"transformation `{{{tr.name}}}` needs module `{module}`, which is not loaded",
                tr.span,
                f"exported by `{module}`",
                help_=_loadmodule_help(module),
            )
        for param in tr.params:
            for part in param:
                if isinstance(part, ast.PVar):
                    self.pvar(part, route, fmt=fmt)

    def emit_error(
        self,
        code: str,
        message: str,
        span: Span,
        label: str,
        *,
        notes: list[str] | None = None,
        help_: str | None = None,
    ) -> None:
        self.ctx.sink.emit(
            Diagnostic.error(code, message, span, label, notes=notes or (), help=help_)
        )

    # -- walking the code ------------------------------------------------------------------

    def walk(self, node: object, route: ast.Route) -> None:
        """Check every pseudo-variable below ``node`` that Kamailio parses."""
        if isinstance(node, ast.PVar):
            self.pvar(node, route)
            return
        if isinstance(node, ast.String):
            return  # not a format here; see `call`
        if isinstance(node, ast.AssignStmt | ast.AssignExpr):
            self.pvar(node.target, route, write=True)
            self.walk(node.value, route)
            return
        if isinstance(node, ast.Call):
            self.call(node, route)
            return
        if not dataclasses.is_dataclass(node) or isinstance(node, type | Span):
            return
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for child in value if isinstance(value, tuple) else (value,):
                self.walk(child, route)

    def literal_name(self, pv: ast.PVar) -> None:
        """W0607 for a ``$`` in a name Kamailio reads as plain text (``$var($si)``):
        whoever wrote it most likely expected the pseudo-variable's value."""
        text = pv.inner_text
        if pv.name not in LITERAL_INNER or text is None or "$" not in text:
            return
        self.ctx.sink.emit(
            Diagnostic.warning(
                "W0607",
                f"`${pv.name}(...)` takes its name literally",
                pv.span,
                f"the variable named `{text}`: no pseudo-variable is expanded in it",
                notes=[
                    f"Kamailio expands no pseudo-variable in the name of `${pv.name}`",
                ],
                help="to key values by a pseudo-variable, use `$sht(table=>...)` (htable)",
            )
        )

    def call(self, call: ast.Call, route: ast.Route) -> None:
        info = self.ctx.resolved.get(id(call))
        specs = info.cmd.args if info is not None else ()
        for i, arg in enumerate(call.args):
            kind = specs[i].kind if i < len(specs) else None
            if isinstance(arg, ast.String) and kind in FORMAT_KINDS:
                for part in arg.parts:
                    if isinstance(part, ast.PVar):
                        self.pvar(part, route, fmt=True)
            elif isinstance(arg, ast.PVar) and kind is ArgKind.PV_WRITE:
                self.pvar(arg, route, write=True)
            else:
                self.walk(arg, route)


def _inner_error(name: str, inner: tuple[ast.FormatPart, ...]) -> str | None:
    """Why an inner name is malformed for this class, or None."""
    if not inner or inner == ("",):
        return "the inner name is empty"
    if any(isinstance(part, ast.PVar) for part in inner):
        return None  # a dynamic name: known per message
    text = "".join(part for part in inner if isinstance(part, str))
    if name == "avp":
        if text.startswith("i:"):
            number = text[2:]
            if not number.isascii() or not number.isdigit():
                return f"`i:` needs an AVP number, found `{number}`"
        elif text.startswith("s:") and len(text) == 2:
            return "`s:` needs an AVP name"
    elif name in ("hdr", "hdrc"):
        if not _HEADER_NAME.fullmatch(text):
            return f"`{text}` is not a header name"
    elif name in ("xavp", "xavu", "xavi"):
        if not _XAVP_INNER.fullmatch(text):
            return f"`{text}` is not `name[index]=>key[index]`"
    elif name == "sht" and ("=>" not in text or text.startswith("=>")):
        return f"`{text}` is not `table=>key`"
    return None


def _route_calls(ctx: SemaContext, route: ast.Route) -> Iterator[ast.Call]:
    stack: list[object] = [route.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            yield node
        if dataclasses.is_dataclass(node) and not isinstance(node, type | Span):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                stack.extend(value if isinstance(value, tuple) else (value,))


def transaction_free_blocks(ctx: SemaContext) -> set[int]:
    """``id()`` of the route blocks that can only run without a transaction.

    A top-level ``request_route`` or core ``reply_route`` has no transaction until the
    script creates or looks one up (tm does neither on its own for a request; for a
    reply it looks the transaction up only after ``reply_route``). Such a top-level
    block is *transaction-free* when no block it runs (itself and every ``route()`` it
    reaches) calls a function outside :data:`NO_TRANSACTION_MODULES` (t_relay,
    t_newtran, t_check_trans, and any module kcc does not know to be transaction-blind
    are assumed to make one). A block is reported when every top-level block that
    reaches it is transaction-free. ``failure_route``, ``branch_route``, named
    ``onreply_route``, ``onsend_route`` and ``event_route`` blocks are never
    transaction-free, and a ``route[X]`` no top-level block reaches is not judged.
    """
    callees = ctx.callees

    def closure(route: ast.Route) -> list[ast.Route]:
        seen: dict[int, ast.Route] = {id(route): route}
        stack = [route]
        while stack:
            current = stack.pop()
            for callee in callees.get(id(current), []):
                if id(callee) not in seen:
                    seen[id(callee)] = callee
                    stack.append(callee)
        return list(seen.values())

    reached_by: dict[int, list[bool]] = {}
    for route in ctx.route_blocks():
        kind, _name = route_key(route)
        if kind is ast.RouteKind.ROUTE:
            continue
        blocks = closure(route)
        free = kind in (ast.RouteKind.REQUEST, ast.RouteKind.REPLY) and all(
            ctx.resolved[id(call)].module in NO_TRANSACTION_MODULES
            for block in blocks
            for call in _route_calls(ctx, block)
            if id(call) in ctx.resolved
        )
        for block in blocks:
            reached_by.setdefault(id(block), []).append(free)
    return {block for block, verdicts in reached_by.items() if verdicts and all(verdicts)}


def check(ctx: SemaContext) -> None:
    checker = _Checker(ctx)
    for route in ctx.route_blocks():
        checker.walk(route.body, route)
