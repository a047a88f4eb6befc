"""Config debugger: execution tracing, breakpoints, PV dumps and per-module
log levels.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY

EXPORTS = ModuleExports(
    name="debugger",
    cmds=(
        Cmd("dbg_breakpoint", (ANY,), Route.ANY, const_args=True, fixup="fixup_dbg_breakpoint"),
        Cmd("dbg_pv_dump", (), Route.ANY, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_pv_dump", (ANY,), Route.ANY, const_args=True, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_pv_dump", (ANY, ANY), Route.ANY, const_args=True, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_sip_msg", (), REQ_REPLY, fixup="fixup_dbg_sip_msg"),
        Cmd("dbg_sip_msg", (ANY,), REQ_REPLY, const_args=True, fixup="fixup_dbg_sip_msg"),
        Cmd("dbg_sip_msg", (ANY, ANY), REQ_REPLY, const_args=True, fixup="fixup_dbg_sip_msg"),
    ),
    params=(
        ModParam("cfgtrace", int, 0),
        ModParam("cfgtrace_format", int, 0),
        ModParam("breakpoint", int, 0),
        ModParam("log_level", int, -1),
        ModParam("log_facility", str, None),
        ModParam("log_prefix", str, "*** cfgtrace:"),
        ModParam("log_level_name", str, None),
        ModParam("log_assign", int, 0),
        ModParam("step_usleep", int, 100000),
        ModParam("step_loops", int, 200),
        ModParam("mod_hash_size", int, 0),
        ModParam("mod_level_mode", int, 0),
        ModParam("mod_level", str, None, repeatable=True),
        ModParam("mod_facility_mode", int, 0),
        ModParam("mod_facility", str, None, repeatable=True),
        ModParam("reset_msgid", int, 0),
        ModParam("cfgpkgcheck", int, 0),
        ModParam("cfgtest", int, 0),
    ),
)
