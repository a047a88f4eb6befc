"""Record-Route and Route handling: ``record_route()``, ``loose_route()`` and
route parameters.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    REGEX,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="rr",
    cmds=(
        # record-routing
        Cmd("record_route", (), REQ_FAIL_BRANCH),
        Cmd("record_route", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        Cmd("record_route_preset", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        Cmd("record_route_preset", (STR, STR), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        Cmd("record_route_advertised_address", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        # route processing
        Cmd("loose_route", (), Route.REQUEST),
        Cmd("loose_route_preloaded", (), Route.REQUEST),
        Cmd("loose_route_mode", (INT,), Route.REQUEST, fixup="fixup_igp_null"),
        Cmd("check_route_param", (REGEX,), Route.REQUEST, fixup="fixup_regexp_null"),
        Cmd("remove_record_route", (), REQ_FAIL),
        Cmd("rr_next_hop_route", (), Route.ANY),
        # route parameters
        Cmd("add_rr_param", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        # direction
        Cmd("is_direction", (STR_CONST,), Route.REQUEST, const_args=True, fixup="direction_fixup"),
    ),
    params=(
        ModParam("append_fromtag", int, 1),
        ModParam("enable_double_rr", int, 1),
        ModParam("enable_full_lr", int, 0),
        ModParam("add_username", int, 0),
        ModParam("enable_socket_mismatch_warning", int, 1),
        ModParam("custom_user_avp", str, None),
        ModParam("force_send_socket", int, 0),
        ModParam("ignore_sips", int, 0),
        ModParam("sockname_mode", int, 0),
    ),
    pvs=(
        PvExport("route_uri"),
        PvExport("fti"),
        PvExport("tti"),
        PvExport("rdir", inner=True),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``loose_route_mode``
