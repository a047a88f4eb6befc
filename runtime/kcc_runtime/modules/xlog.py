"""Formatted logging with pseudo-variables: ``xlog()``, ``xdbg()`` and
friends, with per-level and per-facility variants.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="xlog",
    cmds=(
        # log with a level (the first parameter) or at the default level
        Cmd("xlog", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xlog", (STR, STR), Route.ANY, const_args=True, fixup="xlog_fixup"),
        Cmd("xlog", (STR, STR, STR), Route.ANY, const_args=True, fixup="xlog3_fixup"),
        Cmd("xlogm", (STR, STR), Route.ANY, const_args=True, fixup="xlog_fixup"),
        # one function per level
        Cmd("xdbg", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xinfo", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xnotice", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xwarn", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xerr", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xbug", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xcrit", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        Cmd("xalert", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup"),
        # with the config line prefix
        Cmd("xlogl", (STR,), Route.ANY, const_args=True, fixup="xdbgl_fixup"),
        Cmd("xlogl", (STR, STR), Route.ANY, const_args=True, fixup="xlogl_fixup"),
        Cmd("xlogl", (STR, STR, STR), Route.ANY, const_args=True, fixup="xlogl3_fixup"),
        Cmd("xdbgl", (STR,), Route.ANY, const_args=True, fixup="xdbgl_fixup"),
    ),
    params=(
        ModParam("buf_size", int, 4096),
        ModParam("force_color", int, 0),
        ModParam("long_format", int, 0),
        ModParam("prefix", str, "<script>: "),
        ModParam("log_facility", str, None),
        ModParam("log_colors", str, None, repeatable=True),
        ModParam("methods_filter", int, -1),
        ModParam("prefix_mode", int, 0),
    ),
    pvs=(PvExport("C", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``auto_newline``
