"""Flood detection: counts requests per source IP and reports sources above
the configured rate.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY

EXPORTS = ModuleExports(
    name="pike",
    cmds=(
        Cmd("pike_check_req", (), REQ_REPLY),
        Cmd("pike_check_ip", (STR,), REQ_REPLY, fixup="fixup_spve_null"),
    ),
    params=(
        ModParam("sampling_time_unit", int, 2),
        ModParam("reqs_density_per_unit", int, 30),
        ModParam("remove_latency", int, 120),
        ModParam("pike_log_level", int, 1),
    ),
)
