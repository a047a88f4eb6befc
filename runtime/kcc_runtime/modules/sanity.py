"""Sanity checks of incoming requests (R-URI, CSeq, Content-Length, Via ...),
replying with the right error when one fails.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY

EXPORTS = ModuleExports(
    name="sanity",
    cmds=(
        Cmd("sanity_check", (), REQ_REPLY),
        Cmd("sanity_check", (INT,), REQ_REPLY, fixup="fixup_igp_null"),
        Cmd("sanity_check", (INT, INT), REQ_REPLY, fixup="fixup_igp_igp"),
        Cmd("sanity_reply", (), REQ_REPLY),
    ),
    params=(
        ModParam("default_checks", int, 3047),
        ModParam("uri_checks", int, 7),
        ModParam("proxy_require", str, None),
        ModParam("autodrop", int, 1),
        ModParam("noreply", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``size_checks``, ``size_message``, ``size_method``, ``size_ruri``, ``size_from_uri``,
#   ``size_to_uri``, ``size_contact_uri``, ``size_route_uri``, ``size_path_uri``, ``size_pai_uri``,
#   ``size_header``, ``size_headers``, ``size_body``
