"""Kamailio extensions to the core: script and branch flags, destination URI
helpers, ``pv_printf`` and debug-level control.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

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

EXPORTS = ModuleExports(
    name="kex",
    cmds=(
        # script flags (per top-level route run)
        Cmd("setsflag", (Arg.flag_of(FlagKind.SCRIPT),), Route.ANY, fixup="fixup_igp_null"),
        Cmd("resetsflag", (Arg.flag_of(FlagKind.SCRIPT),), Route.ANY, fixup="fixup_igp_null"),
        Cmd("issflagset", (Arg.flag_of(FlagKind.SCRIPT),), Route.ANY, fixup="fixup_igp_null"),
        # branch flags
        Cmd("setbflag", (Arg.flag_of(FlagKind.BRANCH),), Route.ANY, fixup="fixup_igp_null"),
        Cmd("setbflag", (Arg.flag_of(FlagKind.BRANCH), INT), Route.ANY, fixup="fixup_igp_igp"),
        Cmd("resetbflag", (Arg.flag_of(FlagKind.BRANCH),), Route.ANY, fixup="fixup_igp_null"),
        Cmd("resetbflag", (Arg.flag_of(FlagKind.BRANCH), INT), Route.ANY, fixup="fixup_igp_igp"),
        Cmd("isbflagset", (Arg.flag_of(FlagKind.BRANCH),), Route.ANY, fixup="fixup_igp_null"),
        Cmd("isbflagset", (Arg.flag_of(FlagKind.BRANCH), INT), Route.ANY, fixup="fixup_igp_igp"),
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
