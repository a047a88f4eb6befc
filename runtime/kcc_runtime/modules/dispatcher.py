"""Load balancing and failover over destination sets: selection algorithms,
probing (OPTIONS keepalives) and destination state.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    INT,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="dispatcher",
    cmds=(
        # selecting destinations
        Cmd("ds_select", (INT, INT), Route.ANY, fixup="fixup_igp_igp"),
        Cmd("ds_select", (INT, INT, INT), REQ_FAIL, fixup="fixup_igp_all"),
        Cmd("ds_select_dst", (INT, INT), REQ_FAIL, fixup="fixup_igp_igp"),
        Cmd("ds_select_dst", (INT, INT, INT), REQ_FAIL, fixup="fixup_igp_all"),
        Cmd("ds_select_domain", (INT, INT), REQ_FAIL, fixup="fixup_igp_igp"),
        Cmd("ds_select_domain", (INT, INT, INT), REQ_FAIL, fixup="fixup_igp_all"),
        Cmd("ds_select_routes", (STR, STR), REQ_FAIL, fixup="fixup_spve_spve"),
        Cmd("ds_select_routes", (STR, STR, INT), REQ_FAIL, fixup="fixup_spve_spve_igp"),
        Cmd("ds_next_dst", (), REQ_FAIL, fixup="ds_warn_fixup"),
        Cmd("ds_next_domain", (), REQ_FAIL, fixup="ds_warn_fixup"),
        Cmd("ds_set_dst", (), REQ_FAIL, fixup="ds_warn_fixup"),
        Cmd("ds_set_domain", (), REQ_FAIL, fixup="ds_warn_fixup"),
        # destination state
        Cmd("ds_mark_dst", (), REQ_FAIL_REPLY, fixup="ds_warn_fixup"),
        Cmd("ds_mark_dst", (ANY,), REQ_FAIL_REPLY, const_args=True, fixup="ds_warn_fixup"),
        Cmd("ds_is_active", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("ds_is_active", (INT, STR), Route.ANY, fixup="fixup_igp_spve"),
        Cmd("ds_reload", (), Route.ANY),
        # membership
        Cmd("ds_is_from_list", (), REQ_FAIL_REPLY_BRANCH),
        Cmd("ds_is_from_list", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("ds_is_from_list", (INT, INT), Route.ANY, fixup="fixup_ds_is_from_list"),
        Cmd("ds_is_from_list", (INT, INT, STR), Route.ANY, fixup="fixup_ds_is_from_list"),
        Cmd("ds_list_exist", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("ds_list_exists", (INT,), Route.ANY, fixup="fixup_igp_null"),
        # call load
        Cmd("ds_load_unset", (), Route.ANY),
        Cmd("ds_load_update", (), Route.ANY),
    ),
    params=(
        ModParam("list_file", str, "/etc/kamailio/dispatcher.list"),
        ModParam("db_url", str, None),
        ModParam("table_name", str, "dispatcher"),
        ModParam("setid_col", str, "setid"),
        ModParam("destination_col", str, "destination"),
        ModParam("flags_col", str, "flags"),
        ModParam("priority_col", str, "priority"),
        ModParam("attrs_col", str, "attrs"),
        ModParam("force_dst", int, 1),
        ModParam("flags", int, 0),
        ModParam("use_default", int, 0),
        ModParam("xavp_dst", str, "_dsdst_"),
        ModParam("xavp_dst_mode", int, 0),
        ModParam("xavp_ctx", str, "_dsctx_"),
        ModParam("xavp_ctx_mode", int, 0),
        ModParam("hash_pvar", str, None),
        ModParam("setid_pvname", str, None),
        ModParam("attrs_pvname", str, None),
        ModParam("ds_probing_threshold", int, 1),
        ModParam("ds_inactive_threshold", int, 1),
        ModParam("ds_ping_method", str, "OPTIONS"),
        ModParam("ds_ping_from", str, "sip:dispatcher@localhost"),
        ModParam("ds_ping_interval", int, 0),
        ModParam("ds_ping_latency_stats", int, 0),
        ModParam("ds_latency_estimator_alpha", int, 900),
        ModParam("ds_ping_reply_codes", str, ""),
        ModParam("ds_probing_mode", int, 0),
        ModParam("ds_hash_size", int, 0),
        ModParam("ds_hash_expire", int, 7200),
        ModParam("ds_hash_initexpire", int, 7200),
        ModParam("ds_hash_check_interval", int, 30),
        ModParam("outbound_proxy", str, None),
        ModParam("ds_default_socket", str, None),
        ModParam("ds_default_sockname", str, None),
        ModParam("ds_timer_mode", int, 0),
        ModParam("event_callback", str, None),
        ModParam("ds_attrs_none", int, 0),
        ModParam("ds_db_extra_attrs", str, None),
        ModParam("ds_load_mode", int, 0),
        ModParam("reload_delta", int, 5),
        ModParam("ds_dns_mode", int, 1),
        ModParam("ds_dns_interval", int, 600),
        ModParam("ds_dns_ttl", int, 0),
    ),
    pvs=(PvExport("dsv", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``ds_mark_addr/3``, ``ds_oc_set_attrs/5``, ``ds_dsg_fetch/1``, ``ds_dsg_fetch_uri/2``
# parameters ``ds_ping_fr_timeout``, ``ds_ping_fr_timer``, ``ds_retain_latency_stats``,
#   ``ds_ping_socket``, ``event_callback_mode``, ``ds_dns_match_all``
# variables ``$dsg``
