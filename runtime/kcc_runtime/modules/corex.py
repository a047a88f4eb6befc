"""Core extensions: extra branch and send functions, message and socket
helpers, ``$cfg``/``$lsock`` variables and the ``sock`` transformation class.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    PV_WRITE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="corex",
    cmds=(
        # branches
        Cmd("append_branch", (), REQ_FAIL),
        Cmd("append_branch", (STR,), REQ_FAIL, fixup="fixup_spve_null"),
        Cmd("append_branch", (STR, STR), REQ_FAIL, fixup="fixup_spve_spve"),
        # sending
        Cmd("forward_reply", (), Route.CORE_ONREPLY),
        Cmd("send_udp", (), REQ_FAIL),
        Cmd("send_udp", (STR,), REQ_FAIL, fixup="fixup_spve_null"),
        Cmd("send_tcp", (), REQ_FAIL),
        Cmd("send_tcp", (STR,), REQ_FAIL, fixup="fixup_spve_null"),
        Cmd("send_data", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("sendx", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("via_add_srvid", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("via_add_xavp_params", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("via_use_xavp_fields", (INT,), Route.ANY, fixup="fixup_igp_null"),
        # message
        Cmd("is_incoming", (), Route.ANY),
        Cmd("msg_iflag_set", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("msg_iflag_reset", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("msg_iflag_is_set", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("file_read", (STR, PV_WRITE), Route.ANY, fixup="fixup_file_op"),
        Cmd("file_write", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("setxflag", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("resetxflag", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("isxflagset", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("set_send_socket", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("set_send_socket_name", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("set_recv_socket", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("set_recv_socket_name", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("set_source_address", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_faked_msg", (), Route.ANY),
        Cmd("is_socket_name", (STR,), Route.ANY, fixup="fixup_spve_null"),
        # connections
        Cmd("add_tcp_alias", (INT,), Route.ANY, fixup="fixup_igp_null"),
    ),
    params=(
        ModParam("alias_subdomains", str, None, repeatable=True),
        ModParam("dns_cache", str, None, repeatable=True),
        ModParam("nio_intercept", int, 0),
        ModParam("nio_min_msg_len", int, 0),
        ModParam("nio_msg_avp", str, None),
        ModParam("evcb_reply_out", str, None),
    ),
    pvs=(
        PvExport("cfg", inner=True),
        PvExport("lsock", inner=True),
    ),
    transformations=(
        "sock.host",
        "sock.port",
        "sock.proto",
        "sock.touri",
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``forward_uac/0``, ``forward_uac/1``, ``forward_uac_uri/1``, ``forward_uac_uri/2``,
#   ``via_reply_add_xavp_params/1``, ``msg_vbflag_set/1``, ``msg_vbflag_reset/1``,
#   ``msg_vbflag_is_set/1``, ``msg_vbflag_parse/1``
# parameters ``dns_file``
# variables ``$atkv``
