"""Transaction extensions: ``$T_*`` variables on the current transaction,
cancelling branches, suspending and continuing transactions.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    ANY,
    INT,
    REPLY_CODE,
    STR,
    STR_CONST,
    Arg,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.sip import Request, SipParseError

__all__ = [
    "EXPORTS",
    "t_is_branch_route",
    "t_is_failure_route",
    "t_is_reply_route",
    "t_is_request_route",
    "t_precheck_trans",
]

# The t_is_*_route tests read the kind of the top-level block being run
# (Kamailio's ``route_type``), which a sub-route called with ``route(X)`` shares:
# tmx compares it with ``==`` (``& ONREPLY_ROUTE`` for the reply test, so the core
# reply_route counts too). Measured on Kamailio 5.6.3: t_is_request_route() true in
# request_route; t_is_branch_route() true in branch_route; t_is_reply_route() true
# in onreply_route; t_is_failure_route() true in failure_route and false, like
# t_is_request_route(), in event_route[tm:branch-failure:X].


def t_is_failure_route(ctx: Context) -> int:
    """``t_is_failure_route()``: 1 in a failure_route (and what it calls), else -1."""
    return 1 if ctx.kind == Route.FAILURE else -1


def t_is_branch_route(ctx: Context) -> int:
    """``t_is_branch_route()``: 1 in a branch_route, else -1."""
    return 1 if ctx.kind == Route.BRANCH else -1


def t_is_reply_route(ctx: Context) -> int:
    """``t_is_reply_route()``: 1 in an onreply_route or the core reply_route, else -1."""
    return 1 if ctx.kind & Route.ONREPLY else -1


def t_is_request_route(ctx: Context) -> int:
    """``t_is_request_route()``: 1 in request_route, else -1 (event routes too)."""
    return 1 if ctx.kind == Route.REQUEST else -1


def pretran_key(msg: Request) -> bytes | None:
    """The fingerprint tmx's pre-transaction table compares: Call-ID, From tag, CSeq
    number and method, and the top Via's branch (a retransmission carries all five
    unchanged, RFC 3261 §17.2.3). None when a part cannot be read (tmx then answers
    false)."""
    try:
        call_id = msg.call_id
        cseq = msg.cseq
        from_ = msg.from_
        vias = msg.vias
    except SipParseError:
        return None
    if call_id is None or cseq is None or from_ is None or not vias:
        return None
    parts = (call_id, from_.tag or "", str(cseq.number), cseq.method, vias[0].branch or "")
    return "\x00".join(parts).encode("utf-8", "surrogateescape")


def t_precheck_trans(ctx: Context) -> int:
    """``t_precheck_trans()``: true (1) when another worker is processing the same
    request right now, a retransmission that reached two workers before either made
    the transaction; false (-1) otherwise, and always for ACK and CANCEL (tmx
    README 4.14). The request stays claimed by this worker until its request route
    ends (tmx's post-script callback). ``modparam("tmx", "precheck_trans", 0)``
    turns the table off: always false."""
    msg = ctx.msg
    if not isinstance(msg, Request) or msg.method in ("ACK", "CANCEL"):
        return -1
    if ctx.proc.modparam_int("tmx", "precheck_trans", 1) == 0:
        return -1
    key = pretran_key(msg)
    if key is None:
        return -1
    return 1 if ctx.proc.shared.pretran_claim(key) else -1


EXPORTS = ModuleExports(
    name="tmx",
    cmds=(
        # cancelling
        Cmd(
            "t_cancel_branches",
            (STR_CONST,),
            Route.ONREPLY,
            const_args=True,
            fixup="fixup_cancel_branches",
        ),
        Cmd(
            "t_cancel_callid",
            (STR, STR, INT),
            Route.ANY,
            const_args=True,
            fixup="fixup_cancel_callid",
        ),
        Cmd(
            "t_cancel_callid",
            (ANY, ANY, ANY, ANY),
            Route.ANY,
            const_args=True,
            fixup="fixup_cancel_callid",
        ),
        # replies by call-id
        Cmd(
            "t_reply_callid",
            (STR, STR, REPLY_CODE, STR),
            Route.ANY,
            const_args=True,
            fixup="fixup_reply_callid",
        ),
        Cmd("t_is_reply_route", (), Route.ANY, impl=t_is_reply_route),
        # suspend and continue
        Cmd("t_suspend", (), Route.ANY),
        Cmd(
            "t_continue",
            (INT, INT, Arg.route_name(Route.REQUEST)),
            Route.ANY,
            const_args=True,
            fixup="fixup_t_continue",
        ),
        Cmd("t_reuse_branch", (), Route.EVENT),
        # transaction state
        Cmd("t_flush_flags", (), Route.ANY),
        Cmd("t_flush_xflags", (), Route.ANY),
        Cmd("t_is_failure_route", (), Route.ANY, impl=t_is_failure_route),
        Cmd("t_is_branch_route", (), Route.ANY, impl=t_is_branch_route),
        Cmd("t_is_request_route", (), Route.ANY, impl=t_is_request_route),
        Cmd("t_precheck_trans", (), Route.REQUEST, impl=t_precheck_trans),
        Cmd("t_drop", (), Route.ANY),
        Cmd("t_drop", (INT,), Route.ANY, fixup="fixup_igp_null"),
    ),
    params=(ModParam("precheck_trans", int, 1),),
    pvs=(
        PvExport("T_branch_idx", transaction=True),
        PvExport("T_reply_ruid", transaction=True),
        PvExport("T_reply_code", transaction=True),
        PvExport("T_reply_reason", transaction=True),
        PvExport("T_reply_last", transaction=True),
        PvExport("T_inv", inner=True, transaction=True),
        PvExport("T_req", inner=True, transaction=True),
        PvExport("T_rpl", inner=True, transaction=True),
        PvExport("T", inner=True, transaction=True),
        PvExport("T_branch", inner=True, transaction=True),
    ),
    depends=("tm",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``t_uac_ack_local/2``, ``t_uac_ack_local/3``, ``t_uac_ack_local/4``,
#   ``t_cancel_branch_idx/3``, ``t_vbflag_set/1``, ``t_vbflag_reset/1``, ``t_vbflag_is_set/1``
