"""SIP presence server: PUBLISH and SUBSCRIBE handling, watcher state and
NOTIFY generation.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="presence",
    cmds=(
        Cmd("handle_publish", (), Route.REQUEST, fixup="fixup_presence"),
        Cmd("handle_publish", (STR,), Route.REQUEST, fixup="fixup_presence"),
        Cmd("handle_subscribe", (), Route.REQUEST, fixup="fixup_subscribe"),
        Cmd("handle_subscribe", (STR,), Route.REQUEST, fixup="fixup_subscribe"),
        Cmd("pres_auth_status", (STR, STR), Route.REQUEST, fixup="fixup_spve_spve"),
        Cmd("pres_refresh_watchers", (ANY, ANY, ANY), Route.ANY, fixup="fixup_refresh_watchers"),
        Cmd(
            "pres_refresh_watchers",
            (ANY, ANY, ANY, ANY, ANY),
            Route.ANY,
            fixup="fixup_refresh_watchers",
        ),
        Cmd("pres_update_watchers", (ANY, ANY), Route.ANY, fixup="fixup_update_watchers"),
        Cmd("pres_has_subscribers", (ANY, ANY), Route.ANY, fixup="fixup_has_subscribers"),
    ),
    params=(
        ModParam("db_url", str, None),
        ModParam("presentity_table", str, "presentity"),
        ModParam("active_watchers_table", str, "active_watchers"),
        ModParam("watchers_table", str, "watchers"),
        ModParam("clean_period", int, 100),
        ModParam("db_update_period", int, 100),
        ModParam("waitn_time", int, 5),
        ModParam("notifier_poll_rate", int, 10),
        ModParam("notifier_processes", int, 1),
        ModParam("force_delete", int, 0),
        ModParam("startup_mode", int, 1),
        ModParam("expires_offset", int, 0),
        ModParam("max_expires", int, 3600),
        ModParam("min_expires", int, 0),
        ModParam("min_expires_action", int, 1),
        ModParam("server_address", str, None),
        ModParam("subs_htable_size", int, 9),
        ModParam("pres_htable_size", int, 9),
        ModParam("subs_db_mode", int, 2),
        ModParam("publ_cache", int, 1),
        ModParam("enable_sphere_check", int, 0),
        ModParam("timeout_rm_subs", int, 1),
        ModParam("send_fast_notify", int, 1),
        ModParam("fetch_rows", int, 500),
        ModParam("db_table_lock_type", int, 1),
        ModParam("local_log_level", int, 2),
        ModParam("local_log_facility", str, None),
        ModParam("subs_remove_match", int, 0),
        ModParam("xavp_cfg", str, None),
        ModParam("retrieve_order", int, 0),
        ModParam("retrieve_order_by", str, "priority"),
        ModParam("sip_uri_match", int, 0),
        ModParam("cseq_offset", int, 0),
        ModParam("enable_dmq", int, 0),
        ModParam("pres_subs_mode", int, 1),
        ModParam("delete_same_subs", int, 0),
        ModParam("timer_mode", int, 1),
        ModParam("subs_respond_200", int, 1),
    ),
    pvs=(
        PvExport("subs", inner=True),
        PvExport("notify_reply", inner=True),
    ),
    depends=("sl", "tm"),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``enable_pres_dmq``, ``enable_pres_sync_dmq``, ``enable_subs_dmq``,
#   ``enable_subs_sync_dmq``, ``skip_notify_dmq``, ``default_socket``, ``dmq_peer_id``
