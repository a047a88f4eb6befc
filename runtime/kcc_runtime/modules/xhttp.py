"""Minimal HTTP server on the SIP TCP listeners: ``event_route[xhttp:request]``
and ``xhttp_reply()``.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    REPLY_CODE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

__all__ = ["EXPORTS", "xhttp_reply"]


def xhttp_reply(ctx: Context, code: int, reason: str, ctype: str, body: str) -> int:
    """``xhttp_reply(code, reason, ctype, body)``: answer the HTTP request (engine)."""
    return ctx.proc.engine.xhttp_reply(ctx, code, reason, ctype, body)


EXPORTS = ModuleExports(
    name="xhttp",
    cmds=(
        Cmd(
            "xhttp_reply",
            (REPLY_CODE, STR, STR, STR),
            Route.REQUEST,
            fixup="fixup_xhttp_reply",
            impl=xhttp_reply,
        ),
    ),
    params=(
        ModParam("url_match", str, None),
        ModParam("url_skip", str, None),
        ModParam("event_callback", str, None),
    ),
    pvs=(PvExport("hu"),),
    transformations=(
        "url.path",
        "url.querystring",
    ),
    depends=("sl",),
)
