"""SIP registrar: stores REGISTER contacts in usrloc and looks them up to
route requests to registered users.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
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
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="registrar",
    cmds=(
        # storing contacts
        Cmd("save", (STR_CONST,), REQ_FAIL_REPLY, const_args=True, fixup="save_fixup"),
        Cmd("save", (STR_CONST, INT), REQ_FAIL_REPLY, const_args=True, fixup="save_fixup"),
        Cmd("save", (STR_CONST, INT, STR), REQ_FAIL_REPLY, const_args=True, fixup="save_fixup"),
        Cmd("unregister", (STR_CONST, STR), Route.ANY, const_args=True, fixup="unreg_fixup"),
        Cmd("unregister", (STR_CONST, STR, STR), Route.ANY, const_args=True, fixup="unreg_fixup"),
        # lookups
        Cmd("lookup", (STR_CONST,), REQ_FAIL, const_args=True, fixup="domain_uri_fixup"),
        Cmd("lookup", (STR_CONST, STR), REQ_FAIL, const_args=True, fixup="domain_uri_fixup"),
        Cmd("lookup_to_dset", (STR_CONST,), REQ_FAIL, const_args=True, fixup="domain_uri_fixup"),
        Cmd(
            "lookup_to_dset", (STR_CONST, STR), REQ_FAIL, const_args=True, fixup="domain_uri_fixup"
        ),
        Cmd("registered", (STR_CONST,), Route.ANY, const_args=True, fixup="domain_uri_fixup"),
        Cmd("registered", (STR_CONST, STR), Route.ANY, const_args=True, fixup="domain_uri_fixup"),
        Cmd(
            "registered",
            (STR_CONST, STR, INT),
            Route.ANY,
            const_args=True,
            fixup="registered_fixup",
        ),
        Cmd(
            "registered",
            (STR_CONST, STR, INT, INT),
            Route.ANY,
            const_args=True,
            fixup="registered_fixup",
        ),
        Cmd("lookup_branches", (STR_CONST,), REQ_FAIL, const_args=True, fixup="domain_uri_fixup"),
        # contact fetching
        Cmd(
            "reg_fetch_contacts",
            (STR_CONST, STR, STR_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fetchc_fixup",
        ),
        Cmd("reg_free_contacts", (STR_CONST,), REQ_FAIL, fixup="fixup_str_null"),
        Cmd("reg_send_reply", (), REQ_FAIL),
        # miscellaneous
        Cmd("add_sock_hdr", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
    ),
    params=(
        ModParam("default_expires", int, 3600),
        ModParam("default_expires_range", int, 0),
        ModParam("expires_range", int, 0),
        ModParam("default_q", int, 0),
        ModParam("append_branches", int, 1),
        ModParam("case_sensitive", int, 0),
        ModParam("realm_prefix", str, None),
        ModParam("min_expires", int, 60),
        ModParam("max_expires", int, 0),
        ModParam("received_param", str, "received"),
        ModParam("received_avp", str, None),
        ModParam("max_contacts", int, 0),
        ModParam("retry_after", int, 0),
        ModParam("sock_mode", int, 0),
        ModParam("sock_flag", int, -1, flag=FlagKind.MESSAGE),
        ModParam("sock_hdr_name", str, None),
        ModParam("method_filtering", int, 0),
        ModParam("use_path", int, 0),
        ModParam("path_mode", int, 2),
        ModParam("path_use_received", int, 0),
        ModParam("path_check_local", int, 0),
        ModParam("xavp_cfg", str, None),
        ModParam("xavp_rcd", str, None),
        ModParam("xavp_rcd_mask", int, 0),
        ModParam("gruu_enabled", int, 1),
        ModParam("outbound_mode", int, 0),
        ModParam("regid_mode", int, 0),
        ModParam("flow_timer", int, 0),
        ModParam("contact_max_size", int, 512),
        ModParam("event_callback", str, None),
        ModParam("lookup_filter_mode", int, None),
        ModParam("min_expires_mode", int, 0),
        ModParam("use_expired_contacts", int, 0),
    ),
    pvs=(PvExport("ulc", inner=True, writable=True, index=True),),
    depends=("usrloc", "sl"),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``lookup_xavp/4``, ``reg_from_user/3``
