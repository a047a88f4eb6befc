"""Transaction management: stateful forwarding (``t_relay``), failure, branch
and reply routes, transaction timers and replies.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import re

from kcc_runtime.context import (
    BranchContext,
    BranchFailureRouteFn,
    BranchRouteFn,
    Context,
    FailureRouteFn,
    ReplyContext,
    ReplyRouteFn,
)
from kcc_runtime.exports import (
    ANY,
    HOSTPORT,
    INT,
    INT_CONST,
    REGEX,
    REPLY_CODE,
    STR,
    STR_CONST,
    Arg,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

__all__ = [
    "EXPORTS",
    "t_any_timeout",
    "t_branch_timeout",
    "t_check_status",
    "t_check_trans",
    "t_is_canceled",
    "t_is_set",
    "t_newtran",
    "t_on_branch",
    "t_on_branch_failure",
    "t_on_failure",
    "t_on_reply",
    "t_relay",
    "t_relay_to_sctp",
    "t_relay_to_tcp",
    "t_relay_to_tls",
    "t_relay_to_udp",
    "t_reply",
    "t_set_fr",
]

log = logging.getLogger("kcc_runtime.tm")


def _relay(ctx: Context, proto: str | None, host: str | None, port: int) -> int:
    return ctx.proc.engine.t_relay(ctx, proto, host or None, port if port > 0 else None)


def t_relay(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``t_relay()`` / ``t_relay(host, port)``: relay statefully (engine): 1 relayed,
    0 a retransmission absorbed (ends the script), -1 error."""
    return _relay(ctx, None, host, port)


def t_relay_to_udp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``t_relay_to_udp([host, port])``: :func:`t_relay` over UDP."""
    return _relay(ctx, "udp", host, port)


def t_relay_to_tcp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``t_relay_to_tcp([host, port])``: :func:`t_relay` over TCP."""
    return _relay(ctx, "tcp", host, port)


def t_relay_to_tls(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``t_relay_to_tls([host, port])``: :func:`t_relay` over TLS."""
    return _relay(ctx, "tls", host, port)


def t_relay_to_sctp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``t_relay_to_sctp([host, port])``: :func:`t_relay` over SCTP."""
    return _relay(ctx, "sctp", host, port)


def t_newtran(ctx: Context) -> int:
    """``t_newtran()``: create the transaction (engine)."""
    return ctx.proc.engine.t_newtran(ctx)


def t_check_trans(ctx: Context) -> int:
    """``t_check_trans()``: does the message belong to a transaction (engine)."""
    return ctx.proc.engine.t_check_trans(ctx)


def t_reply(ctx: Context, code: int, reason: str) -> int:
    """``t_reply(code, reason)``: a stateful reply (engine); code outside
    100..699: -1."""
    if not 100 <= code <= 699:
        log.error("invalid reply code %d (100..699)", code)
        return -1
    return ctx.proc.engine.t_reply(ctx, code, reason)


def t_is_canceled(ctx: Context) -> int:
    """``t_is_canceled()``: 1 when the transaction was canceled, else -1."""
    return ctx.proc.engine.t_is_canceled(ctx)


def t_branch_timeout(ctx: Context) -> int:
    """``t_branch_timeout()``: 1 when the failed branch timed out, else -1."""
    return ctx.proc.engine.t_branch_timeout(ctx)


def t_any_timeout(ctx: Context) -> int:
    """``t_any_timeout()``: 1 when any branch timed out, else -1."""
    return ctx.proc.engine.t_any_timeout(ctx)


# The t_on_* functions arm the block for the message and, once the transaction
# exists, for the transaction itself (tm's ``t_on_failure`` writes ``t->on_failure``
# when ``T`` is set, else a per-message variable that ``t_newtran`` copies): so one
# armed in an onreply_route or a branch-failure route takes effect.


def t_on_failure(ctx: Context, route: FailureRouteFn) -> int:
    """``t_on_failure("NAME")``: run ``failure_route[NAME]`` when every branch of
    the transaction failed (the last call wins): 1."""
    ctx.on_failure = route
    if ctx.tm_cell is not None:
        ctx.tm_cell.on_failure = route
    return 1


def t_on_branch(ctx: Context, route: BranchRouteFn) -> int:
    """``t_on_branch("NAME")``: run ``branch_route[NAME]`` for each new branch: 1."""
    ctx.on_branch = route
    if ctx.tm_cell is not None:
        ctx.tm_cell.on_branch = route
    return 1


def t_on_reply(ctx: Context, route: ReplyRouteFn) -> int:
    """``t_on_reply("NAME")``: run ``onreply_route[NAME]`` for each reply: 1."""
    ctx.on_reply = route
    if ctx.tm_cell is not None:
        ctx.tm_cell.on_reply = route
    return 1


def t_on_branch_failure(ctx: Context, route: BranchFailureRouteFn) -> int:
    """``t_on_branch_failure("NAME")``: run ``event_route[tm:branch-failure:NAME]``
    on each negative final reply of the branches created from now on (tm README
    4.7; the semantics are in :mod:`kcc_runtime.tm`): 1."""
    ctx.on_branch_failure = route
    if ctx.tm_cell is not None:
        ctx.tm_cell.on_branch_failure = route
    return 1


#: ``t_is_set`` targets (tm's ``fixup_t_is_set`` accepts these three)
T_IS_SET_TARGETS = ("branch_route", "failure_route", "onreply_route")


def t_is_set(ctx: Context, target: str) -> int:
    """``t_is_set(target)``: 1 when the ``branch_route``, ``failure_route`` or
    ``onreply_route`` named by ``target`` is armed for the transaction -- or, before
    the transaction exists, for the message -- else -1 (tm ``t_is_set``).

    Measured on Kamailio 5.6.3: false at the start of request_route; true after
    ``t_on_failure`` before ``t_relay`` and after a later ``t_newtran``; in
    failure_route ``failure_route`` is false (tm disarms it before running the
    block) and ``onreply_route`` true; in onreply_route and in the branch-failure
    route ``failure_route`` is true; in a branch_route ``branch_route`` is false
    (only a ``t_on_branch`` there would set it). Kamailio refuses any other target
    at start-up; here it is an error and -1.
    """
    if target not in T_IS_SET_TARGETS:
        log.error("t_is_set: unknown target %r", target)
        return -1
    cell = ctx.tm_cell
    armed: object
    if target == "branch_route":
        armed = ctx.on_branch if cell is None or isinstance(ctx, BranchContext) else cell.on_branch
    elif target == "failure_route":
        armed = ctx.on_failure if cell is None else cell.on_failure
    else:
        armed = ctx.on_reply if cell is None else cell.on_reply
    return 1 if armed is not None else -1


def t_check_status(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``t_check_status("re")``: 1 when the regex finds a match in the status code
    (as text, unanchored ``regexec``), -1 otherwise (tm ``t_check_status``).

    The code is that of the reply being processed in a reply route and, from the
    engine (:meth:`Engine.t_status`), the winning reply's in failure_route and the
    last sent reply's in request_route. No transaction: error, -1.
    """
    status = ctx.proc.engine.t_status(ctx)
    if status is None:
        log.error("cannot check status for a reply which has no T-state established")
        return -1
    if isinstance(ctx, ReplyContext):
        status = ctx.msg.status
    return 1 if pattern.search(str(status)) else -1


def t_set_fr(ctx: Context, invite_ms: int, noninvite_ms: int = 0) -> int:
    """``t_set_fr(fr_inv [, fr])``: final-response timeouts in ms (0: the module
    default) for this transaction (engine)."""
    if invite_ms < 0 or noninvite_ms < 0:
        log.error("invalid timer value")
        return -1
    return ctx.proc.engine.t_set_fr(ctx, invite_ms, noninvite_ms)


# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY
REQ_FAIL = Route.REQUEST | Route.FAILURE
REQ_FAIL_TMREPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.TM_ONREPLY | Route.BRANCH
FAIL_EVENT = Route.FAILURE | Route.EVENT
REQ_REPLY_BRANCH = Route.REQUEST | Route.ONREPLY | Route.BRANCH
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="tm",
    cmds=(
        # stateful forwarding
        Cmd("t_newtran", (), Route.REQUEST, impl=t_newtran),
        Cmd("t_release", (), Route.REQUEST),
        Cmd(
            "t_relay_to_udp",
            (HOSTPORT, INT_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_hostport2proxy",
            impl=t_relay_to_udp,
        ),
        Cmd("t_relay_to_udp", (), REQ_FAIL, impl=t_relay_to_udp),
        Cmd(
            "t_relay_to_tcp",
            (HOSTPORT, INT_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_hostport2proxy",
            impl=t_relay_to_tcp,
        ),
        Cmd("t_relay_to_tcp", (), REQ_FAIL, impl=t_relay_to_tcp),
        Cmd(
            "t_relay_to_tls",
            (HOSTPORT, INT_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_hostport2proxy",
            impl=t_relay_to_tls,
        ),
        Cmd("t_relay_to_tls", (), REQ_FAIL, impl=t_relay_to_tls),
        Cmd(
            "t_relay_to_sctp",
            (HOSTPORT, INT_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_hostport2proxy",
            impl=t_relay_to_sctp,
        ),
        Cmd("t_relay_to_sctp", (), REQ_FAIL, impl=t_relay_to_sctp),
        Cmd("t_replicate", (), Route.REQUEST),
        Cmd("t_replicate", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
        Cmd(
            "t_replicate",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_replicate_udp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_replicate_tcp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_replicate_tls",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_replicate_sctp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_replicate_to",
            (STR_CONST, HOSTPORT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_proto_hostport2proxy",
        ),
        Cmd("t_relay", (), REQ_FAIL, impl=t_relay),
        Cmd(
            "t_relay",
            (HOSTPORT, INT_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_hostport2proxy",
            impl=t_relay,
        ),
        Cmd(
            "t_relay_to_avp",
            (STR_CONST, HOSTPORT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_proto_hostport2proxy",
        ),
        Cmd("t_relay_to", (), REQ_FAIL),
        Cmd("t_relay_to", (ANY,), REQ_FAIL, const_args=True, fixup="fixup_t_relay_to"),
        Cmd("t_relay_to", (ANY, ANY), REQ_FAIL, const_args=True, fixup="fixup_t_relay_to"),
        Cmd(
            "t_forward_nonack",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd("t_forward_nonack_uri", (), Route.REQUEST),
        Cmd(
            "t_forward_nonack_udp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_forward_nonack_tcp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_forward_nonack_tls",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_forward_nonack_sctp",
            (HOSTPORT, INT_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_hostport2proxy",
        ),
        Cmd(
            "t_forward_nonack_to",
            (STR_CONST, HOSTPORT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_proto_hostport2proxy",
        ),
        Cmd("t_relay_cancel", (), Route.REQUEST),
        Cmd("t_set_auto_inv_100", (INT,), Route.REQUEST, fixup="fixup_var_int_1"),
        Cmd("t_save_lumps", (), Route.REQUEST),
        # route blocks armed for this transaction
        Cmd(
            "t_on_failure",
            (Arg.route_name(Route.FAILURE),),
            REQ_FAIL_TMREPLY_BRANCH,
            const_args=True,
            fixup="fixup_on_failure",
            impl=t_on_failure,
        ),
        Cmd(
            "t_on_branch_failure",
            (Arg.route_name(Route.BRANCH_FAILURE),),
            REQ_FAIL_TMREPLY_BRANCH,
            const_args=True,
            fixup="fixup_on_branch_failure",
            impl=t_on_branch_failure,
        ),
        Cmd(
            "t_on_reply",
            (Arg.route_name(Route.TM_ONREPLY),),
            REQ_FAIL_TMREPLY_BRANCH,
            const_args=True,
            fixup="fixup_on_reply",
            impl=t_on_reply,
        ),
        Cmd(
            "t_on_branch",
            (Arg.route_name(Route.BRANCH),),
            REQ_FAIL,
            const_args=True,
            fixup="fixup_on_branch",
            impl=t_on_branch,
        ),
        # replies
        Cmd(
            "t_reply",
            (REPLY_CODE, STR),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_t_reply",
            impl=t_reply,
        ),
        Cmd(
            "t_send_reply",
            (REPLY_CODE, STR),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_t_reply",
        ),
        Cmd("t_retransmit_reply", (), Route.REQUEST),
        Cmd("t_drop_replies", (), Route.FAILURE),
        Cmd("t_drop_replies", (STR_CONST,), Route.FAILURE),
        # transaction lookup and state
        Cmd("t_lookup_request", (), Route.REQUEST),
        Cmd("t_lookup_cancel", (), Route.REQUEST),
        Cmd("t_lookup_cancel", (INT_CONST,), Route.REQUEST, fixup="fixup_int_1"),
        Cmd(
            "t_check_status",
            (REGEX,),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_t_check_status",
            impl=t_check_status,
        ),
        Cmd("t_branch_timeout", (), FAIL_EVENT, impl=t_branch_timeout),
        Cmd("t_branch_replied", (), FAIL_EVENT),
        Cmd("t_any_timeout", (), REQ_FAIL_TMREPLY_BRANCH, impl=t_any_timeout),
        Cmd("t_any_replied", (), REQ_FAIL_TMREPLY_BRANCH),
        Cmd("t_is_canceled", (), REQ_FAIL_TMREPLY_BRANCH, impl=t_is_canceled),
        Cmd("t_is_retr_async_reply", (), Route.TM_ONREPLY),
        Cmd("t_is_expired", (), REQ_FAIL_TMREPLY_BRANCH),
        Cmd("t_grep_status", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"),
        Cmd("t_check_trans", (), REQ_REPLY_BRANCH, impl=t_check_trans),
        Cmd(
            "t_is_set",
            (STR_CONST,),
            Route.ANY,
            const_args=True,
            fixup="fixup_t_is_set",
            impl=t_is_set,
        ),
        Cmd("t_get_status_code", (), REQ_FAIL_REPLY_BRANCH),
        # timers
        Cmd("t_set_fr", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1", impl=t_set_fr),
        Cmd(
            "t_set_fr", (INT, INT), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_12", impl=t_set_fr
        ),
        Cmd("t_reset_fr", (), REQ_FAIL_TMREPLY_BRANCH),
        Cmd("t_set_retr", (INT, INT), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_12"),
        Cmd("t_reset_retr", (), REQ_FAIL_TMREPLY_BRANCH),
        Cmd("t_set_max_lifetime", (INT, INT), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_12"),
        Cmd("t_reset_max_lifetime", (), REQ_FAIL_TMREPLY_BRANCH),
        # behaviour switches
        Cmd("t_set_disable_6xx", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"),
        Cmd("t_set_disable_failover", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"),
        Cmd("t_set_no_e2e_cancel_reason", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"),
        Cmd(
            "t_disable_e2e_cancel_reason", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"
        ),
        Cmd(
            "t_set_disable_internal_reply", (INT,), REQ_FAIL_TMREPLY_BRANCH, fixup="fixup_var_int_1"
        ),
        # serial forking
        Cmd("t_load_contacts", (), REQ_FAIL),
        Cmd("t_load_contacts", (INT,), REQ_FAIL, fixup="fixup_var_int_1"),
        Cmd("t_next_contacts", (), REQ_FAIL),
        Cmd("t_next_contact_flow", (), Route.REQUEST),
        # FIFO/unix-socket delivery
        Cmd(
            "t_write_req", (STR_CONST, STR_CONST), REQ_FAIL, const_args=True, fixup="fixup_t_write"
        ),
        Cmd(
            "t_write_unix", (STR_CONST, STR_CONST), REQ_FAIL, const_args=True, fixup="fixup_t_write"
        ),
        # miscellaneous
        Cmd("t_use_uac_headers", (), Route.ANY),
        Cmd(
            "t_uac_send",
            (STR, STR, STR, STR, STR, STR),
            Route.ANY,
            const_args=True,
            fixup="fixup_spve_all",
        ),
        Cmd("t_clean", (), Route.ANY),
    ),
    params=(
        ModParam("ruri_matching", int, 1),
        ModParam("via1_matching", int, 1),
        ModParam("callid_matching", int, 0),
        ModParam("callid_cseq_matching", int, 0),
        ModParam("fr_timer", int, 30000),
        ModParam("fr_inv_timer", int, 120000),
        ModParam("wt_timer", int, 5000),
        ModParam("retr_timer1", int, 500),
        ModParam("retr_timer2", int, 4000),
        ModParam("max_inv_lifetime", int, 180000),
        ModParam("max_noninv_lifetime", int, 32000),
        ModParam("noisy_ctimer", int, 1),
        ModParam("auto_inv_100", int, 1),
        ModParam("auto_inv_100_reason", str, "trying -- your call is important to us"),
        ModParam("unix_tx_timeout", int, 500),
        ModParam("restart_fr_on_each_reply", int, 1),
        ModParam("fr_timer_avp", str, None),
        ModParam("fr_inv_timer_avp", str, None),
        ModParam("tw_append", str, None, repeatable=True),
        ModParam("pass_provisional_replies", int, 0),
        ModParam("aggregate_challenges", int, 1),
        ModParam("unmatched_cancel", int, 0),
        ModParam("default_code", int, 500),
        ModParam("default_reason", str, "Server Internal Error"),
        ModParam("reparse_invite", int, 1),
        ModParam("ac_extra_hdrs", str, ""),
        ModParam("blst_503", int, 0),
        ModParam("blst_503_def_timeout", int, 0),
        ModParam("blst_503_min_timeout", int, 0),
        ModParam("blst_503_max_timeout", int, 3600),
        ModParam("blst_methods_add", int, 1),
        ModParam("blst_methods_lookup", int, 4294967287),
        ModParam("cancel_b_method", int, 1),
        ModParam("reparse_on_dns_failover", int, 1),
        ModParam("on_sl_reply", str, None),
        ModParam("contacts_avp", str, None),
        ModParam("contact_flows_avp", str, None),
        ModParam("disable_6xx_block", int, 0),
        ModParam("local_ack_mode", int, 0),
        ModParam("failure_reply_mode", int, 3),
        ModParam("faked_reply_prio", int, 0),
        ModParam("remap_503_500", int, 1),
        ModParam("failure_exec_mode", int, 0),
        ModParam("dns_reuse_rcv_socket", int, 0),
        ModParam("local_cancel_reason", int, 1),
        ModParam("e2e_cancel_reason", int, 1),
        ModParam("xavp_contact", str, None),
        ModParam("event_callback", str, None),
        ModParam("relay_100", int, 0),
        ModParam("rich_redirect", int, None),
        ModParam("event_callback_lres_sent", str, None),
        ModParam("exec_time_check", int, 5000),
        ModParam("reply_relay_mode", int, 1),
        ModParam("enable_uac_fr", int, None),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``t_reply_error/0``, ``t_relay_to_proxy/1``, ``t_relay_to_proxy/1``,
#   ``t_set_no_auto_ack/1``, ``t_exists/0``, ``t_msg_apply_changes/0``, ``t_cell_append_branches/2``
# parameters ``reply_matching``, ``local_ack_branch_mode``, ``e2e_cancel_hop_by_hop``,
#   ``headers_mode``, ``evcb_local_ack_sent``, ``failover_reply_codes``, ``reply_408_code``,
#   ``reply_408_reason``, ``delayed_reply``, ``evlreq_mode``
