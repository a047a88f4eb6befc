"""Stateless replies: ``sl_send_reply()`` and ``send_reply()`` (stateful when a
transaction exists).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    REPLY_CODE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY

EXPORTS = ModuleExports(
    name="sl",
    cmds=(
        # stateless replies
        Cmd("sl_send_reply", (REPLY_CODE, STR), Route.REQUEST, fixup="fixup_sl_reply"),
        Cmd("sl_reply", (REPLY_CODE, STR), Route.REQUEST, fixup="fixup_sl_reply"),
        Cmd("sl_reply_error", (), Route.REQUEST),
        # stateful when a transaction exists
        Cmd("send_reply", (REPLY_CODE, STR), REQ_FAIL_REPLY, fixup="fixup_sl_reply"),
        Cmd("send_reply_mode", (REPLY_CODE, STR, INT), REQ_FAIL_REPLY, fixup="fixup_sl_reply_mode"),
        # reply forwarding
        Cmd("sl_forward_reply", (), Route.ONREPLY),
        Cmd("sl_forward_reply", (STR,), Route.ONREPLY, fixup="fixup_spve_all"),
        Cmd("sl_forward_reply", (STR, STR), Route.ONREPLY, fixup="fixup_spve_all"),
    ),
    params=(
        ModParam("default_code", int, 500),
        ModParam("default_reason", str, "Internal Server Error"),
        ModParam("bind_tm", int, 1),
        ModParam("rich_redirect", int, None),
        ModParam("event_callback_fl_ack", str, None),
        ModParam("event_callback_lres_sent", str, None),
    ),
    pvs=(PvExport("ltt", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``send_reply_error/0``
