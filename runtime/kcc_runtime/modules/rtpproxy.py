"""Media relay control for the RTPProxy daemon: SDP rewriting to anchor RTP
streams.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="rtpproxy",
    cmds=(
        # offer/answer
        Cmd("unforce_rtp_proxy", (), Route.ANY),
        Cmd("rtpproxy_destroy", (), Route.ANY),
        Cmd("unforce_rtp_proxy", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpproxy_destroy", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpproxy_offer", (), Route.ANY),
        Cmd("rtpproxy_offer", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpproxy_offer", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("rtpproxy_answer", (), Route.ANY),
        Cmd("rtpproxy_answer", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpproxy_answer", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("rtpproxy_manage", (), Route.ANY),
        Cmd("rtpproxy_manage", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpproxy_manage", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # streams
        Cmd("rtpproxy_stream2uac", (STR, INT), Route.ANY, fixup="fixup_var_str_int"),
        Cmd("rtpproxy_stream2uas", (STR, INT), Route.ANY, fixup="fixup_var_str_int"),
        Cmd("rtpproxy_stop_stream2uac", (), Route.ANY),
        Cmd("rtpproxy_stop_stream2uas", (), Route.ANY),
        # relay sets
        Cmd("set_rtp_proxy_set", (INT,), Route.ANY, fixup="fixup_set_id"),
        # miscellaneous
        Cmd("start_recording", (), Route.ANY),
    ),
    params=(
        ModParam("nortpproxy_str", str, "a=nortpproxy:yes\\r\\n"),
        ModParam("rtpproxy_sock", str, "NONE", repeatable=True),
        ModParam("rtpproxy_disable_tout", int, 60),
        ModParam("rtpproxy_retr", int, 5),
        ModParam("rtpproxy_tout", int, 1),
        ModParam("timeout_socket", str, ""),
        ModParam("ice_candidate_priority_avp", str, None),
        ModParam("extra_id_pv", str, None),
        ModParam("db_url", str, None),
        ModParam("table_name", str, "rtpproxy"),
        ModParam("rtp_inst_pvar", str, None),
    ),
    pvs=(
        PvExport("rtpstat"),
        PvExport("rtppstat"),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``timeout_tag_pv``
