"""Max-Forwards handling: adds or decrements the header and detects loops.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH

EXPORTS = ModuleExports(
    name="maxfwd",
    cmds=(
        Cmd("maxfwd_process", (INT,), Route.REQUEST, fixup="fixup_var_int_1"),
        Cmd("mf_process_maxfwd_header", (INT,), Route.REQUEST, fixup="fixup_var_int_1"),
        Cmd("process_maxfwd", (INT,), Route.REQUEST, fixup="fixup_var_int_1"),
        Cmd("is_maxfwd_lt", (INT,), REQ_FAIL_BRANCH, fixup="fixup_var_int_1"),
        Cmd("maxfwd_at_least", (INT,), REQ_FAIL_BRANCH, fixup="fixup_var_int_1"),
        Cmd("mf_lowlimit", (INT,), REQ_FAIL_BRANCH, fixup="fixup_var_int_1"),
    ),
    params=(ModParam("max_limit", int, 70),),
)
