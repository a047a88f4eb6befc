"""NAT traversal helpers: NAT detection tests, Contact and SDP fixing,
received parameters and keepalive pings of registered contacts.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    INT_CONST,
    STR,
    STR_CONST,
    Cmd,
    FlagKind,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY_BRANCH_LOCAL = Route.REQUEST | Route.ONREPLY | Route.BRANCH | Route.LOCAL
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH
REQ_BRANCH_LOCAL = Route.REQUEST | Route.BRANCH | Route.LOCAL
REQ_FAIL_REPLY_BRANCH_LOCAL = (
    Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH | Route.LOCAL
)

EXPORTS = ModuleExports(
    name="nathelper",
    cmds=(
        # NAT detection
        Cmd("nat_uac_test", (INT,), REQ_FAIL_REPLY_BRANCH_LOCAL, fixup="fixup_igp_null"),
        Cmd("is_rfc1918", (STR,), Route.ANY, fixup="fixup_spve_null"),
        # fixing Contact and SDP
        Cmd("fix_nated_contact", (), REQ_REPLY_BRANCH_LOCAL),
        Cmd("add_contact_alias", (), REQ_REPLY_BRANCH_LOCAL),
        Cmd(
            "add_contact_alias",
            (STR, STR, STR),
            REQ_FAIL_REPLY_BRANCH,
            fixup="fixup_add_contact_alias",
        ),
        Cmd("set_contact_alias", (), REQ_REPLY_BRANCH_LOCAL),
        Cmd("set_contact_alias", (INT_CONST,), REQ_REPLY_BRANCH_LOCAL, fixup="fixup_int_1"),
        Cmd("handle_ruri_alias", (), REQ_BRANCH_LOCAL),
        Cmd("handle_ruri_alias", (INT,), REQ_BRANCH_LOCAL, fixup="fixup_igp_null"),
        Cmd("fix_nated_sdp", (INT,), REQ_FAIL_REPLY_BRANCH_LOCAL, fixup="fixup_fix_sdp"),
        Cmd("fix_nated_sdp", (INT, STR), REQ_FAIL_REPLY_BRANCH_LOCAL, fixup="fixup_fix_sdp"),
        Cmd("fix_nated_register", (), Route.REQUEST, fixup="fixup_fix_nated_register"),
        Cmd("add_rcv_param", (), Route.REQUEST),
        Cmd("add_rcv_param", (INT,), Route.REQUEST, fixup="fixup_igp_null"),
        Cmd("set_alias_to_pv", (STR_CONST,), Route.ANY),
    ),
    params=(
        ModParam("natping_interval", int, 0),
        ModParam("ping_nated_only", int, 0),
        ModParam("nortpproxy_str", str, "a=nortpproxy:yes\\r\\n"),
        ModParam("received_avp", str, None),
        ModParam("force_socket", str, None),
        ModParam("sipping_from", str, None),
        ModParam("sipping_method", str, "OPTIONS"),
        ModParam("sipping_bflag", int, -1, flag=FlagKind.BRANCH),
        ModParam("natping_disable_bflag", int, -1, flag=FlagKind.BRANCH),
        ModParam("natping_processes", int, 1),
        ModParam("natping_socket", str, None),
        ModParam("keepalive_timeout", int, 0),
        ModParam("udpping_from_path", int, 0),
        ModParam("append_sdp_oldmediaip", int, 1),
        ModParam("filter_server_id", int, 0),
        ModParam("nat_addr_mode", int, 1),
        ModParam("alias_name", str, "alias"),
    ),
    pvs=(
        PvExport("rr_count"),
        PvExport("rr_top_count"),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``ignore_path``
