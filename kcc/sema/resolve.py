"""Names at the top level: loaded modules, the route table, module parameters.

Fills :attr:`SemaContext.loaded` and :attr:`SemaContext.routes` and reports, the way
Kamailio 5.6 does at parse time (each behaviour checked with ``kamailio -c``):

- E0302 ``loadmodule`` of a module Kamailio does not have ("could not find module");
- E0303 the same module loaded twice ("attempting to load the same module twice",
  then "failed to load module");
- E0304 a duplicate route block ("duplicate route"). Only a block written *with a
  name* is checked: a second unnamed ``request_route {}``, ``reply_route {}``,
  ``failure_route {}`` ... is appended to the first by Kamailio, so it is no error;
  ``route[0]`` names the main route, so it clashes with an earlier
  ``request_route``; ``onreply_route[0]`` is always appended (never a clash);
  ``route["X"]`` and ``route[X]`` are the same name;
- modparam, evaluated in file order like Kamailio, so only modules loaded *above* the
  ``modparam`` count. The module argument is a POSIX extended regex matched against
  the whole module name, ignoring case (``"nathelper|registrar"``, ``"TM"``). E0312:
  no loaded module matches ("No module matching <x> found"); E0313: a matching module
  has no such parameter; E0314: it has it, but not with the value's type (Kamailio
  5.6 never converts: ``"3"`` for an int parameter and ``3`` for a string parameter
  are both "parameter <x> of type <...> not found"); W0315: a parameter that keeps one
  value given twice (Kamailio accepts it and keeps the last value).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.constants import posix_ere_error
from kcc.sema.context import RouteKey, SemaContext, module_name, route_key
from kcc.source import Span

__all__ = [
    "check",
    "describe_route",
    "did_you_mean",
    "header_span",
    "loadmodule_line",
    "modparam_modules",
]


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``name`` (case-insensitive first), or None."""
    pool = sorted(set(candidates))
    for candidate in pool:
        if candidate.lower() == name.lower() and candidate != name:
            return candidate
    close = difflib.get_close_matches(name, pool, n=1, cutoff=cutoff)
    return close[0] if close else None


def loadmodule_line(module: str) -> str:
    return f'loadmodule "{module}.so"'


def describe_route(route: ast.Route) -> str:
    """How the block is written: ``request_route``, ``route[RELAY]``, ``reply_route``."""
    if route.name is None:
        return route.kind.value
    return f"{route.kind.value}[{route.name}]"


def header_span(route: ast.Route) -> Span:
    """The block's name, or its keyword when it has none (``request_route``)."""
    if route.name_span is not None:
        return route.name_span
    start = route.span.start
    return Span(route.span.file, start, start + len(route.kind.value), route.span.origin)


def check(ctx: SemaContext) -> None:
    unknown: list[str] = []
    first_load: dict[str, ast.LoadModule] = {}
    #: (module, param) -> the first modparam that set it
    params_set: dict[tuple[str, str], ast.ModParam] = {}
    for item in ctx.config.items:
        if isinstance(item, ast.LoadModule):
            _loadmodule(ctx, item, first_load, unknown)
        elif isinstance(item, ast.ModParam):
            _modparam(ctx, item, unknown, params_set)
    _route_table(ctx)


# -- loadmodule -------------------------------------------------------------------------


def _loadmodule(
    ctx: SemaContext,
    item: ast.LoadModule,
    first_load: dict[str, ast.LoadModule],
    unknown: list[str],
) -> None:
    if item.expand and "$" in item.path.value:
        return  # loadmodulex with a variable part: only known at start-up
    name = module_name(item.path.value)
    previous = first_load.get(name)
    if previous is not None:
        ctx.sink.emit(
            Diagnostic.error(
                "E0303",
                f"module `{name}` is loaded twice",
                item.path.span,
                f"`{name}` loaded again here",
                labels=[Label(previous.path.span, "first loaded here")],
                notes=["Kamailio refuses to load a module twice"],
                help="remove the second `loadmodule`",
            )
        )
        return
    first_load[name] = item
    if not ctx.registry.is_module(name):
        unknown.append(name)
        close = did_you_mean(name, ctx.registry.module_names(), cutoff=0.75)
        ctx.sink.emit(
            Diagnostic.error(
                "E0302",
                f"unknown module `{name}`",
                item.path.span,
                "no Kamailio module has this name",
                help=f"a module with a similar name exists: `{close}`" if close else None,
            )
        )
        return
    ctx.loaded[name] = item


# -- modparam ---------------------------------------------------------------------------


def modparam_modules(pattern: str, loaded: Sequence[str]) -> list[str] | None:
    """The loaded modules a ``modparam`` module argument selects, as Kamailio matches
    it (``^(pattern)$``, extended regex, ignoring case); None if it is not a regex."""
    if re.fullmatch(r"[A-Za-z0-9_]+", pattern):
        return [m for m in loaded if m.lower() == pattern.lower()]
    if posix_ere_error(pattern) is not None:
        return None
    try:
        compiled = re.compile(f"(?:{pattern})", re.IGNORECASE)
    except re.error:
        return None
    return [m for m in loaded if compiled.fullmatch(m)]


def _modparam(
    ctx: SemaContext,
    item: ast.ModParam,
    unknown: list[str],
    params_set: dict[tuple[str, str], ast.ModParam],
) -> None:
    pattern = item.module.value
    if item.expand and "$" in pattern:
        return
    matched = modparam_modules(pattern, [*ctx.loaded, *unknown])
    if matched is None:
        error = posix_ere_error(pattern)
        reason = error.message if error is not None else "not a valid regular expression"
        ctx.sink.emit(
            Diagnostic.error(
                "E0407",
                f"the module name `{pattern}` of this `modparam` is not a valid regular expression",
                item.module.span,
                reason,
                notes=["Kamailio matches the module argument as a POSIX extended regex"],
            )
        )
        return
    if not matched:
        _module_not_loaded(ctx, item)
        return
    for module in matched:
        if module in unknown:
            continue  # already reported as an unknown module
        _check_param(ctx, item, module, params_set)


def _module_not_loaded(ctx: SemaContext, item: ast.ModParam) -> None:
    pattern = item.module.value
    later = _loaded_later(ctx, item, pattern)
    notes: list[str] = []
    labels: list[Label] = []
    if later is not None:
        later_name = module_name(later.path.value)
        label = f"`{later_name}` is loaded only further down"
        labels.append(Label(later.path.span, "loaded here"))
        notes.append("Kamailio sets module parameters as it reads them, in file order")
        help_text = f"move this `modparam` below `{loadmodule_line(later_name)}`"
    elif ctx.registry.is_module(pattern.lower()):
        label = f"`{pattern.lower()}` is not loaded"
        help_text = f"add `{loadmodule_line(pattern.lower())}` above this line"
    else:
        label = "no loaded module matches this name"
        close = did_you_mean(pattern, ctx.loaded, cutoff=0.6)
        if close is None:
            close = did_you_mean(pattern, ctx.registry.module_names(), cutoff=0.75)
        help_text = f"a module with a similar name exists: `{close}`" if close else ""
    ctx.sink.emit(
        Diagnostic.error(
            "E0312",
            f"`modparam` for module `{pattern}`, which is not loaded",
            item.module.span,
            label,
            labels=labels,
            notes=notes,
            help=help_text or None,
        )
    )


def _loaded_later(ctx: SemaContext, item: ast.ModParam, pattern: str) -> ast.LoadModule | None:
    seen = False
    for other in ctx.config.items:
        if other is item:
            seen = True
        elif seen and isinstance(other, ast.LoadModule):
            name = module_name(other.path.value)
            if ctx.registry.is_module(name) and modparam_modules(pattern, [name]):
                return other
    return None


def _value_type(value: ast.String | ast.Number | ast.PVar) -> type[int] | type[str] | None:
    if isinstance(value, ast.Number):
        return int
    if isinstance(value, ast.String):
        return str
    return None  # modparamx with a variable: its type is known only at start-up


def _check_param(
    ctx: SemaContext,
    item: ast.ModParam,
    module: str,
    params_set: dict[tuple[str, str], ast.ModParam],
) -> None:
    name = item.param.value
    overloads = ctx.registry.param_overloads(module, name)
    if not overloads:
        exports = ctx.registry.module(module)
        names = [p.name for p in exports.params] if exports is not None else []
        close = did_you_mean(name, names)
        ctx.sink.emit(
            Diagnostic.error(
                "E0313",
                f"module `{module}` has no parameter `{name}`",
                item.param.span,
                "unknown parameter" if names else f"`{module}` has no parameters at all",
                help=f"a parameter with a similar name exists: `{close}`" if close else None,
            )
        )
        return
    value_type = _value_type(item.value)
    if value_type is not None and not any(p.type is value_type for p in overloads):
        _wrong_type(ctx, item, module, overloads[0].type)
        return
    chosen = next((p for p in overloads if p.type is value_type), overloads[0])
    key = (module, name)
    first = params_set.get(key)
    if first is None:
        params_set[key] = item
        return
    if chosen.repeatable:
        return
    ctx.sink.emit(
        Diagnostic.warning(
            "W0315",
            f"parameter `{name}` of module `{module}` is set twice",
            _whole(item),
            "this value replaces the first one",
            labels=[Label(_whole(first), "first set here")],
            notes=[f"`{name}` holds one value: Kamailio keeps the last one it reads"],
            help="remove one of the two `modparam` lines",
        )
    )


def _whole(item: ast.ModParam) -> Span:
    return item.param.span.to(item.value.span)


def _wrong_type(ctx: SemaContext, item: ast.ModParam, module: str, wanted: type) -> None:
    name = item.param.value
    value = item.value
    if wanted is int:
        expected, given = "an integer", "a string"
        help_text = "write the number without quotes"
        if isinstance(value, ast.String):
            text = value.value.strip()
            if re.fullmatch(r"-?[0-9]+", text):
                help_text = f"write the number without quotes: `{text}`"
            elif text.lower() in ("yes", "no", "on", "off", "true", "false"):
                number = 1 if text.lower() in ("yes", "on", "true") else 0
                help_text = f"write the number without quotes: `{number}`"
    else:
        expected, given = "a string", "a number"
        help_text = "quote the value"
        if isinstance(value, ast.Number):
            help_text = f'quote the value: `"{value.text}"`'
    ctx.sink.emit(
        Diagnostic.error(
            "E0314",
            f"parameter `{name}` of module `{module}` takes {expected}, not {given}",
            value.span,
            f"expected {expected}",
            notes=["Kamailio does not convert module parameter values"],
            help=help_text,
        )
    )


# -- route table ------------------------------------------------------------------------


def _slot(route: ast.Route) -> RouteKey:
    """The table entry Kamailio stores the block in (``route[0]`` is the main route,
    ``failure_route[0]`` is the unnamed failure route ...)."""
    kind, name = route_key(route)
    if name == "0" and kind in (ast.RouteKind.FAILURE, ast.RouteKind.BRANCH, ast.RouteKind.ONSEND):
        return (kind, None)
    return (kind, name)


def _appends(route: ast.Route) -> bool:
    """Kamailio appends this block to an earlier one of the same slot (no error)."""
    if route.name is None:
        return True
    return route.kind is ast.RouteKind.ONREPLY and route.name == "0"


def _route_table(ctx: SemaContext) -> None:
    slots: dict[RouteKey, ast.Route] = {}
    for route in ctx.route_blocks():
        slot = _slot(route)
        first = slots.get(slot)
        if first is None:
            slots[slot] = route
        elif not _appends(route):
            what = describe_route(route)
            ctx.sink.emit(
                Diagnostic.error(
                    "E0304",
                    f"duplicate route block `{what}`",
                    ctx.span_of_name(route),
                    "defined again here",
                    labels=[
                        Label(header_span(first), f"`{describe_route(first)}` first defined here")
                    ],
                    notes=['Kamailio rejects the config: "duplicate route"'],
                    help="rename one of the blocks, or merge them",
                )
            )
        ctx.routes.setdefault(route_key(route), route)
