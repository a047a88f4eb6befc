"""Core extensions: extra branch and send functions, message and socket
helpers, ``$cfg``/``$lsock`` variables and the ``sock`` transformation class.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Branch, Context
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
from kcc_runtime.pv import current_ruri

__all__ = ["EXPORTS", "append_branch", "str2q"]

log = logging.getLogger("kcc_runtime.corex")

#: no q-value given (Kamailio ``Q_UNSPECIFIED``)
Q_UNSPECIFIED = -1


def str2q(text: str) -> int | None:
    """Kamailio's ``str2q``: a q-value 0..1 with at most three decimals, in
    thousandths (``"0.5"`` -> 500); None when malformed."""
    t = text.strip()
    whole, dot, frac = t.partition(".")
    if whole not in ("0", "1") or len(frac) > 3 or (frac and not frac.isdigit()):
        return None
    if whole == "1" and frac.strip("0"):
        return None
    if not dot and frac:
        return None
    return int(whole) * 1000 + int((frac + "000")[:3])


def append_branch(ctx: Context, uri: str | None = None, q: str | None = None) -> int:
    """``append_branch([uri [, q]])``: add a branch for parallel forking (corex /
    kex ``km_append_branch``).

    Without a URI the branch takes the current R-URI with ``$du``, the branch flags
    of branch 0 and the forced socket, which are then reset (Kamailio moves them to
    the new branch); with a URI it gets a copy of them. -1 when ``q`` is malformed
    or the branch table is full (``max_branches``, branch 0 included)."""
    qv = Q_UNSPECIFIED
    if q is not None:
        parsed = str2q(q)
        if parsed is None:
            log.error("invalid q value <%s>", q)
            return -1
        qv = parsed
    if len(ctx.branches) + 1 >= ctx.proc.settings.max_branches:
        log.error("max nr of branches exceeded")
        return -1
    if uri:
        ctx.branches.append(Branch(uri, ctx.dst_uri, qv, ctx.bflags))
        return 1
    ruri = current_ruri(ctx)
    if ruri is None:
        return -1
    ctx.branches.append(Branch(ruri, ctx.dst_uri, qv, ctx.bflags))
    ctx.dst_uri = None
    ctx.bflags = 0
    ctx.send_socket = None
    return 1


# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="corex",
    cmds=(
        # branches
        Cmd("append_branch", (), REQ_FAIL, impl=append_branch),
        Cmd("append_branch", (STR,), REQ_FAIL, fixup="fixup_spve_null", impl=append_branch),
        Cmd("append_branch", (STR, STR), REQ_FAIL, fixup="fixup_spve_spve", impl=append_branch),
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
