"""Global settings: known names and value types (``children = 4``, ``listen = ...``).

The grammar accepts any ``name = value`` at the top level (as Kamailio's lexer turns
each known name into its own token, an unknown one is a syntax error there: "unknown
config variable"). This pass checks the name against Kamailio's table of core
parameters, with a did-you-mean, and the value against the kinds the parameter takes.
"""

from __future__ import annotations

import difflib

from kcc import ast
from kcc.diagnostics import Diagnostic, DiagnosticSink
from kcc.keywords import GlobalParamSpec, keywords
from kcc.source import Span

__all__ = ["check"]

#: ``kemi.<name> = "function"`` settings (Kamailio's KEMI callbacks)
KEMI_SETTINGS = (
    "onsend_route_callback",
    "reply_route_callback",
    "event_route_callback",
    "event_callback",
    "received_route_callback",
    "received_route_mode",
    "pre_routing_callback",
    "request_route_callback",
)

PROTOCOLS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss", "any"})

_ADDRESS_NODES = (
    ast.Listen,
    ast.SocketAddr,
    ast.Host,
    ast.Name,
    ast.IPAddr,
    ast.ValueList,
    ast.MultiHomed,
    ast.Wildcard,
    ast.String,
)


def _describe(value: ast.ParamValue) -> str:
    match value:
        case ast.Number():
            return "a number"
        case ast.String():
            return "a string"
        case ast.Name():
            return "a name"
        case ast.Host():
            return "a host name"
        case ast.IPAddr():
            return "an IP address"
        case _:
            return "an address"


def _accepts(spec: GlobalParamSpec, value: ast.ParamValue) -> bool:
    kinds = spec.kinds
    if isinstance(value, ast.Number):
        return "int" in kinds
    if isinstance(value, ast.String):
        return bool(kinds & {"str", "host", "id-list"})
    if isinstance(value, ast.Name):
        if "proto" in kinds:
            return value.name.lower() in PROTOCOLS
        return bool(kinds & {"id", "host", "id-list"})
    if isinstance(value, ast.IPAddr):
        if "ipv4" in kinds:
            return value.version == 4
        return bool(kinds & {"ip", "host", "id-list"})
    if isinstance(value, ast.Host):
        return bool(kinds & {"host", "id", "id-list"})
    return "id-list" in kinds and isinstance(value, _ADDRESS_NODES)


def _expected(spec: GlobalParamSpec) -> str:
    words = {
        "int": "a number",
        "str": "a string",
        "id": "a name",
        "host": "a host name or address",
        "ip": "an IP address",
        "ipv4": "an IPv4 address",
        "proto": "a protocol (`udp`, `tcp`, `tls`, `sctp`, `ws`, `wss`)",
        "id-list": "addresses (`udp:127.0.0.1:5060`)",
        "socket": "a `{ ... }` block",
    }
    order = ["int", "str", "id", "host", "ip", "ipv4", "proto", "id-list", "socket"]
    found = [words[k] for k in order if k in spec.kinds]
    if not found:
        return spec.forms
    return found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]


def _example(spec: GlobalParamSpec, value: ast.ParamValue) -> str:
    if "int" in spec.kinds:
        if isinstance(value, ast.String) and value.value.strip().lstrip("-").isdigit():
            return f"{spec.name} = {value.value.strip()}"
        if isinstance(value, ast.Name):
            return f"{spec.name} = no"
        return f"{spec.name} = 1"
    if "str" in spec.kinds:
        return f'{spec.name} = "..."'
    if "id-list" in spec.kinds:
        return f"{spec.name} = udp:127.0.0.1:5060"
    return f"{spec.name} = ..."


def _check_param(item: ast.GlobalParam, sink: DiagnosticSink) -> None:
    table = keywords().global_params
    spec = table.get(item.name)
    if spec is None:
        close = difflib.get_close_matches(item.name, list(table), n=1, cutoff=0.75)
        if close:
            help_text = f"a parameter with a similar name exists: `{close[0]}`"
        else:
            help_text = (
                f'a custom config variable needs a group: `mygroup.{item.name} = ... desc "..."`'
            )
        sink.emit(
            Diagnostic.error(
                "E0310",
                f"unknown global parameter `{item.name}`",
                item.name_span,
                "not a Kamailio core parameter",
                help=help_text,
            )
        )
        return
    if not _accepts(spec, item.value):
        sink.emit(
            Diagnostic.error(
                "E0311",
                f"`{item.name}` takes {_expected(spec)}, not {_describe(item.value)}",
                item.value.span,
                f"expected {_expected(spec)}",
                notes=("`yes`/`no`, `on`/`off` and `true`/`false` are the numbers 1 and 0",)
                if "int" in spec.kinds
                else (),
                help=f"for example `{_example(spec, item.value)}`",
            )
        )


def _check_cfg_var(item: ast.CfgVar, sink: DiagnosticSink) -> None:
    if item.group == "kemi":
        if item.name not in KEMI_SETTINGS:
            close = difflib.get_close_matches(item.name, KEMI_SETTINGS, n=1, cutoff=0.6)
            sink.emit(
                Diagnostic.error(
                    "E0310",
                    f"unknown KEMI setting `kemi.{item.name}`",
                    Span(
                        item.span.file,
                        item.span.start,
                        item.span.start + 5 + len(item.name),
                        item.span.origin,
                    ),
                    "not a KEMI setting",
                    help=f"did you mean `kemi.{close[0]}`?"
                    if close
                    else f"KEMI settings: {', '.join(f'`kemi.{k}`' for k in KEMI_SETTINGS)}",
                )
            )
        return
    if not isinstance(item.value, ast.Number | ast.String):
        sink.emit(
            Diagnostic.error(
                "E0311",
                f"custom config variable `{item.group}.{item.name}` takes a number or a "
                f"string, not {_describe(item.value)}",
                item.value.span,
                "expected a number or a string",
                help=f'for example `{item.group}.{item.name} = "..." desc "what it is"`',
            )
        )


def check(config: ast.Config, sink: DiagnosticSink) -> None:
    for item in config.items:
        if isinstance(item, ast.GlobalParam):
            _check_param(item, sink)
        elif isinstance(item, ast.CfgVar):
            _check_cfg_var(item, sink)
