"""Stateless replies: ``sl_send_reply()`` and ``send_reply()`` (stateful when a
transaction exists).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    REPLY_CODE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

__all__ = ["EXPORTS", "send_reply", "sl_reply", "sl_reply_error", "sl_send_reply"]

log = logging.getLogger("kcc_runtime.sl")


def _valid_code(code: int) -> bool:
    if 100 <= code <= 699:
        return True
    log.error("invalid reply code %d (100..699)", code)
    return False


def sl_send_reply(ctx: Context, code: int, reason: str) -> int:
    """``sl_send_reply(code, reason)``: a stateless reply, sent by the engine: its
    code (1 sent, -1 failed); a code outside 100..699 is an error (-1)."""
    if not _valid_code(code):
        return -1
    return ctx.proc.engine.send_reply(ctx, code, reason)


def sl_reply(ctx: Context, code: int, reason: str) -> int:
    """Alias of :func:`sl_send_reply`."""
    return sl_send_reply(ctx, code, reason)


def sl_reply_error(ctx: Context) -> int:
    """``sl_reply_error()``: reply with the last internal error (engine)."""
    return ctx.proc.engine.send_error_reply(ctx)


def send_reply(ctx: Context, code: int, reason: str) -> int:
    """``send_reply(code, reason)``: stateful (tm ``t_reply``) when a transaction
    exists for the message, stateless otherwise (sl ``send_reply``)."""
    if not _valid_code(code):
        return -1
    engine = ctx.proc.engine
    if engine.has_transaction(ctx):
        return engine.t_reply(ctx, code, reason)
    return engine.send_reply(ctx, code, reason)


# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY

EXPORTS = ModuleExports(
    name="sl",
    cmds=(
        # stateless replies
        Cmd(
            "sl_send_reply",
            (REPLY_CODE, STR),
            Route.REQUEST,
            fixup="fixup_sl_reply",
            impl=sl_send_reply,
        ),
        Cmd("sl_reply", (REPLY_CODE, STR), Route.REQUEST, fixup="fixup_sl_reply", impl=sl_reply),
        Cmd("sl_reply_error", (), Route.REQUEST, impl=sl_reply_error),
        # stateful when a transaction exists
        Cmd(
            "send_reply", (REPLY_CODE, STR), REQ_FAIL_REPLY, fixup="fixup_sl_reply", impl=send_reply
        ),
        Cmd("send_reply_mode", (REPLY_CODE, STR, INT), REQ_FAIL_REPLY, fixup="fixup_sl_reply_mode"),
        # reply forwarding
        Cmd("sl_forward_reply", (), Route.ONREPLY),
        Cmd("sl_forward_reply", (STR,), Route.ONREPLY, fixup="fixup_spve_all"),
        Cmd("sl_forward_reply", (STR, STR), Route.ONREPLY, fixup="fixup_spve_all"),
    ),
    params=(
        ModParam("default_code", int, 500),
        ModParam("default_reason", str, "Internal Server Error"),
        ModParam("bind_tm", int, 1),
        ModParam("rich_redirect", int, None),
        ModParam("event_callback_fl_ack", str, None),
        ModParam("event_callback_lres_sent", str, None),
    ),
    pvs=(PvExport("ltt", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``send_reply_error/0``
