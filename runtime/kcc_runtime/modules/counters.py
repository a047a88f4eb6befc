"""Script-defined statistics counters (``cnt_inc``, ``cnt_add``), readable
over RPC.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_REPLY_SEND = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.ONSEND

EXPORTS = ModuleExports(
    name="counters",
    cmds=(
        Cmd("cnt_inc", (STR_CONST,), REQ_FAIL_REPLY_SEND, const_args=True, fixup="cnt_fixup1"),
        Cmd(
            "cnt_add", (STR_CONST, INT), REQ_FAIL_REPLY_SEND, const_args=True, fixup="cnt_int_fixup"
        ),
        Cmd("cnt_reset", (STR_CONST,), REQ_FAIL_REPLY_SEND, const_args=True, fixup="cnt_fixup1"),
    ),
    params=(
        ModParam("script_cnt_grp_name", str, None),
        ModParam("script_counter", str, None, repeatable=True),
    ),
)
