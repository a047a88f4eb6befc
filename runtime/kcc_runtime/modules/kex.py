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
from kcc_runtime.modules.core import flag_in_range

__all__ = [
    "EXPORTS",
    "isbflagset",
    "issflagset",
    "resetbflag",
    "resetsflag",
    "setbflag",
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
        Cmd("setdsturi", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("resetdsturi", (), Route.ANY),
        Cmd("isdsturiset", (), Route.ANY),
        # printing into variables
        Cmd("pv_printf", (PV_WRITE, STR), Route.ANY, const_args=True, fixup="pv_printf_fixup"),
        Cmd("avp_printf", (PV_WRITE, STR), Route.ANY, const_args=True, fixup="pv_printf_fixup"),
        # addresses and logging
        Cmd("is_myself", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("setdebug", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("resetdebug", (), Route.ANY),
    ),
    pvs=(PvExport("sruid"),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``is_myhost/1``
