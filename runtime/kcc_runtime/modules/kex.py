"""Kamailio extensions to the core: script and branch flags, destination URI
helpers, ``pv_printf`` and debug-level control.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    PV_WRITE,
    STR,
    Arg,
    Cmd,
    FlagKind,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.modules.core import flag_in_range, split_uri
from kcc_runtime.pv import Accessor

__all__ = [
    "EXPORTS",
    "is_myself",
    "isbflagset",
    "isdsturiset",
    "issflagset",
    "pv_printf",
    "resetbflag",
    "resetdsturi",
    "resetsflag",
    "setbflag",
    "setdsturi",
    "setsflag",
]

MASK = 0xFFFFFFFF


def setsflag(ctx: Context, flag: int) -> int:
    """``setsflag(n)``: set script flag ``n`` (``$sf``): 1, -1 outside 0..31."""
    if not flag_in_range(flag):
        return -1
    ctx.sflags |= 1 << flag
    return 1


def resetsflag(ctx: Context, flag: int) -> int:
    """``resetsflag(n)``: clear script flag ``n``: 1, -1 outside 0..31."""
    if not flag_in_range(flag):
        return -1
    ctx.sflags &= ~(1 << flag) & MASK
    return 1


def issflagset(ctx: Context, flag: int) -> int:
    """``issflagset(n)``: 1 when script flag ``n`` is set, else -1."""
    if not flag_in_range(flag):
        return -1
    return 1 if ctx.sflags & (1 << flag) else -1


def _get_bflags(ctx: Context, branch: int) -> int | None:
    """Branch ``branch``'s flags: 0 is the R-URI branch, ``n`` the n-th appended
    one (Kamailio ``getbflagsval``); None when there is no such branch."""
    if branch == 0:
        return ctx.bflags
    if 0 < branch <= len(ctx.branches):
        return ctx.branches[branch - 1].bflags
    return None


def _put_bflags(ctx: Context, branch: int, value: int) -> None:
    if branch == 0:
        ctx.bflags = value
    else:
        ctx.branches[branch - 1].bflags = value


def setbflag(ctx: Context, flag: int, branch: int = 0) -> int:
    """``setbflag(n [, branch])``: set branch flag ``n`` of branch ``branch``
    (0, the R-URI branch, by default): 1; -1 for a flag outside 0..31 or a branch
    that does not exist."""
    current = _get_bflags(ctx, branch)
    if current is None or not flag_in_range(flag):
        return -1
    _put_bflags(ctx, branch, current | (1 << flag))
    return 1


def resetbflag(ctx: Context, flag: int, branch: int = 0) -> int:
    """``resetbflag(n [, branch])``: clear branch flag ``n``: 1, -1 as setbflag."""
    current = _get_bflags(ctx, branch)
    if current is None or not flag_in_range(flag):
        return -1
    _put_bflags(ctx, branch, current & ~(1 << flag) & MASK)
    return 1


def isbflagset(ctx: Context, flag: int, branch: int = 0) -> int:
    """``isbflagset(n [, branch])``: 1 when branch flag ``n`` is set, else -1."""
    current = _get_bflags(ctx, branch)
    if current is None or not flag_in_range(flag):
        return -1
    return 1 if current & (1 << flag) else -1


def setdsturi(ctx: Context, uri: str) -> int:
    """``setdsturi("sip:h:p")``: set ``$du``, the next hop, to the text as given: 1.
    Kamailio 5.6 does not check it (``setdsturi("garbage")`` sets ``$du`` to
    ``garbage`` and returns 1; ``setdsturi("")`` returns 1 and leaves no ``$du``)."""
    ctx.dst_uri = uri or None
    return 1


def resetdsturi(ctx: Context) -> int:
    """``resetdsturi()``: clear ``$du``: 1."""
    ctx.dst_uri = None
    return 1


def isdsturiset(ctx: Context) -> int:
    """``isdsturiset()``: 1 when ``$du`` is set, else -1."""
    return 1 if ctx.dst_uri else -1


def pv_printf(ctx: Context, target: Accessor, text: str) -> int:
    """``pv_printf("$var(x)", "fmt")``: assign the rendered format (the generator
    renders its pseudo-variables) to the variable: 1."""
    target.set(ctx, text)
    return 1


def is_myself(ctx: Context, uri: str) -> int:
    """``is_myself("sip:host:port")``: 1 when the URI's host and port are one of this
    proxy's listen addresses or aliases, else -1. As kex does it: a text starting
    with ``sip:``/``sips:`` is parsed as a URI (a URI without a port matches any
    port, Kamailio's ``check_self`` with port 0); any other text is taken as a bare
    host (``is_myself("127.0.0.1")`` is 1, ``is_myself("proxy.example:5060")`` -1:
    measured on Kamailio 5.6). The listen and alias table comes from the cfg
    (``ctx.proc.config.myself``, as ``uri == myself``); a process without a config
    asks the engine (``Engine.is_myself``)."""
    lowered = uri[:5].lower()
    if lowered.startswith(("sip:", "sips:")) and len(uri) > 4:
        parts = split_uri(uri)
        if parts is None or parts.host is None:
            return -1
        host = parts.host
        port = int(parts.port) if parts.port and parts.port.isdigit() else None
        proto = _transport(parts.params)
    else:
        host, port, proto = uri, None, None
    config = ctx.proc.config
    if config is None:
        return 1 if ctx.proc.engine.is_myself(host, port, proto) else -1
    received = (ctx.received.dst_ip.lower(), ctx.received.dst_port)
    return 1 if config.myself.check(host, port, received) else -1


def _transport(params: str | None) -> str | None:
    for param in (params or "").split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport" and value:
            return value.strip().lower()
    return None


EXPORTS = ModuleExports(
    name="kex",
    cmds=(
        # script flags (per top-level route run)
        Cmd(
            "setsflag",
            (Arg.flag_of(FlagKind.SCRIPT),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=setsflag,
        ),
        Cmd(
            "resetsflag",
            (Arg.flag_of(FlagKind.SCRIPT),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=resetsflag,
        ),
        Cmd(
            "issflagset",
            (Arg.flag_of(FlagKind.SCRIPT),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=issflagset,
        ),
        # branch flags
        Cmd(
            "setbflag",
            (Arg.flag_of(FlagKind.BRANCH),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=setbflag,
        ),
        Cmd(
            "setbflag",
            (Arg.flag_of(FlagKind.BRANCH), INT),
            Route.ANY,
            fixup="fixup_igp_igp",
            impl=setbflag,
        ),
        Cmd(
            "resetbflag",
            (Arg.flag_of(FlagKind.BRANCH),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=resetbflag,
        ),
        Cmd(
            "resetbflag",
            (Arg.flag_of(FlagKind.BRANCH), INT),
            Route.ANY,
            fixup="fixup_igp_igp",
            impl=resetbflag,
        ),
        Cmd(
            "isbflagset",
            (Arg.flag_of(FlagKind.BRANCH),),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=isbflagset,
        ),
        Cmd(
            "isbflagset",
            (Arg.flag_of(FlagKind.BRANCH), INT),
            Route.ANY,
            fixup="fixup_igp_igp",
            impl=isbflagset,
        ),
        # destination URI
        Cmd("setdsturi", (STR,), Route.ANY, fixup="fixup_spve_null", impl=setdsturi),
        Cmd("resetdsturi", (), Route.ANY, impl=resetdsturi),
        Cmd("isdsturiset", (), Route.ANY, impl=isdsturiset),
        # printing into variables
        Cmd(
            "pv_printf",
            (PV_WRITE, STR),
            Route.ANY,
            const_args=True,
            fixup="pv_printf_fixup",
            impl=pv_printf,
        ),
        Cmd("avp_printf", (PV_WRITE, STR), Route.ANY, const_args=True, fixup="pv_printf_fixup"),
        # addresses and logging
        Cmd("is_myself", (STR,), Route.ANY, fixup="fixup_spve_null", impl=is_myself),
        Cmd("setdebug", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("resetdebug", (), Route.ANY),
    ),
    pvs=(PvExport("sruid"),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``is_myhost/1``
