"""tm/tmx extras: ``t_on_branch_failure`` and its event route, ``t_is_set``, the
``t_is_*_route`` tests, tm's reply priorities, transaction ids and the ``$T_*``
pseudo-variables, driven through :class:`kcc_runtime.engine.Proxy` with bytes and a
fake clock.

The expected values marked "measured" come from Kamailio 5.6.3 on loopback
(``listen=udp:127.0.0.1:5360``, a Python caller and backends answering 100/486,
180/503, 404 or nothing; a cfg logging every value with ``xlog`` in request,
branch, onreply, branch-failure and failure routes).
"""

from __future__ import annotations

from typing import Any

import pytest
from kcc_runtime.context import (
    BranchContext,
    Context,
    EventContext,
    FailureContext,
    OnsendContext,
    ReplyContext,
    RequestContext,
)
from kcc_runtime.exports import Route
from kcc_runtime.modules import core, tm, tmx
from kcc_runtime.pv import PvError, accessor
from kcc_runtime.shm import SharedMemoryStore
from kcc_runtime.sip import Request, parse_message
from kcc_runtime.tm import hash_index, reply_prio
from kcc_runtime.values import Value, compile_posix_ere

from tests.runtime.fake_engine import make_ctx
from tests.runtime.test_tm import B1, B2, CALLER, ME, answer, cancel, invite, plain, summary


def pv(ctx: Context, name: str, inner: Any = None) -> Value:
    return accessor(name, inner).get(ctx)


def nested(name: str, inner: str, inner_name: str | None = None) -> Any:
    """``$name($inner(inner_name))`` as the generated code builds it."""
    from kcc_runtime.pv import Fmt

    return accessor(name, Fmt(accessor(inner, inner_name)))


def tagged(data: bytes, tag: str) -> bytes:
    return data.replace(b"Content-Length: 0", b"X-B: " + tag.encode() + b"\r\nContent-Length: 0")


def test_branch_failure_runs_per_branch_and_can_start_a_new_one() -> None:
    """Measured: the branch-failure route runs on a branch's 486 with that branch's
    code, ``$ru`` the transaction's R-URI; a ``t_relay`` there starts branch 1 whose
    404 does not run it again; failure_route then sees the winner (404 before 486)
    and ``$T_branch_idx`` 2."""
    seen: list[Any] = []

    def branch_failure(ctx: FailureContext) -> int:
        seen.append(
            (
                "bf",
                pv(ctx, "T_reply_code"),
                pv(ctx, "T_branch_idx"),
                pv(ctx, "ru"),
                pv(ctx, "rm"),
                tm.t_check_status(ctx, compile_posix_ere("486")),
                nested("T_rpl", "hdr", "X-B").get(ctx),
                pv(ctx, "T_reply_reason"),
                pv(ctx, "T_reply_last"),
                tm.t_is_set(ctx, "failure_route"),
                tmx.t_is_failure_route(ctx),
                tmx.t_is_request_route(ctx),
                ctx.kind,
            )
        )
        core.rewritehostport(ctx, "127.0.0.1:5082")
        seen.append(("relay", ctx.action(tm.t_relay(ctx))))
        return 1

    def failure(ctx: FailureContext) -> int:
        seen.append(
            (
                "fail",
                pv(ctx, "T_reply_code"),
                pv(ctx, "T_branch_idx"),
                pv(ctx, "T_reply_reason"),
                nested("T_rpl", "hdr", "X-B").get(ctx),
                nested("T_req", "hdr", "X-B").get(ctx),
                pv(ctx, "T", "reply_type"),
                tm.t_is_set(ctx, "failure_route"),
                tm.t_is_set(ctx, "onreply_route"),
                tmx.t_is_failure_route(ctx),
            )
        )
        return 1

    def onreply(ctx: ReplyContext) -> int:
        return 1

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        tm.t_on_branch_failure(ctx, branch_failure)
        tm.t_on_failure(ctx, failure)
        tm.t_on_reply(ctx, onreply)
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    [_, fwd1] = p.receive(invite("bf1"), CALLER, ME)
    out = p.receive(tagged(answer(fwd1.data, 486, "Busy Here"), "b1"), B1, ME)
    assert seen == [
        (
            "bf",
            486,
            0,
            "sip:bob@127.0.0.1:5081",
            "INVITE",
            1,
            "b1",
            None,
            None,
            1,
            -1,
            -1,
            Route.BRANCH_FAILURE,
        ),
        ("relay", 1),
    ]
    fwd2 = [o for o in out if o.dst == B2]
    assert [o.data.split(b"\r\n", 1)[0] for o in fwd2] == [b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0"]
    out = p.receive(tagged(answer(fwd2[0].data, 404, "Not Here"), "b2"), B2, ME)
    assert seen[2:] == [("fail", 404, 2, "Not Here", "b2", None, 0, -1, 1, 1)]
    assert (b"SIP/2.0 404 Not Here", CALLER) in summary(out)


def test_branch_failure_on_timeout_and_failure_route_reply_type() -> None:
    """Measured: a silent branch runs the branch-failure route with 408 and
    ``t_branch_timeout()`` true, no ``$T_rpl``; failure_route sees ``Request
    Timeout`` as ``$T_reply_reason`` and ``$T(reply_type)`` 1."""
    seen: list[Any] = []

    def branch_failure(ctx: FailureContext) -> int:
        seen.append(
            (
                "bf",
                pv(ctx, "T_reply_code"),
                tm.t_branch_timeout(ctx),
                nested("T_rpl", "rs").get(ctx),
            )
        )
        return 1

    def failure(ctx: FailureContext) -> int:
        seen.append(
            (
                "fail",
                pv(ctx, "T_reply_code"),
                pv(ctx, "T_reply_reason"),
                pv(ctx, "T", "reply_type"),
                nested("T_rpl", "rs").get(ctx),
            )
        )
        return 1

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        tm.t_on_branch_failure(ctx, branch_failure)
        tm.t_on_failure(ctx, failure)
        return ctx.action(tm.t_relay(ctx))

    p, clock = plain(route, modparams=(("tm", "fr_timer", 1000), ("tm", "fr_inv_timer", 1000)))
    p.receive(invite("bf2"), CALLER, ME)
    clock.now += 1.0
    out = [o for o in p.on_timer(clock.now) if o.dst == CALLER]
    assert seen == [("bf", 408, 1, None), ("fail", 408, "Request Timeout", 1, None)]
    assert summary(out) == [(b"SIP/2.0 408 Request Timeout", CALLER)]


def test_t_is_set_follows_the_message_then_the_transaction() -> None:
    """Measured: false at the start; true after ``t_on_failure`` and after a later
    ``t_newtran``; in a branch_route ``branch_route`` is false and ``failure_route``
    true; in onreply_route both ``onreply_route`` and ``failure_route`` true."""
    seen: list[Any] = []

    def failure(ctx: FailureContext) -> int:
        return 1

    def branch(ctx: BranchContext) -> int:
        seen.append(
            (
                "branch",
                tm.t_is_set(ctx, "branch_route"),
                tm.t_is_set(ctx, "failure_route"),
                tmx.t_is_branch_route(ctx),
                pv(ctx, "T_reply_code"),
                pv(ctx, "T_branch_idx"),
            )
        )
        return 1

    def onreply(ctx: ReplyContext) -> int:
        seen.append(
            (
                "reply",
                tm.t_is_set(ctx, "onreply_route"),
                tm.t_is_set(ctx, "failure_route"),
                tmx.t_is_reply_route(ctx),
                pv(ctx, "T_reply_last"),
                pv(ctx, "T_reply_reason"),
                nested("T_req", "ru").get(ctx),
                nested("T_rpl", "rs").get(ctx),
            )
        )
        return 1

    def route(ctx: RequestContext) -> int:
        seen.append(("start", tm.t_is_set(ctx, "failure_route"), tmx.t_is_request_route(ctx)))
        tm.t_on_failure(ctx, failure)
        seen.append(("armed", tm.t_is_set(ctx, "failure_route"), tm.t_is_set(ctx, "branch_route")))
        tm.t_newtran(ctx)
        seen.append(("newtran", tm.t_is_set(ctx, "failure_route"), pv(ctx, "T_reply_code")))
        tm.t_on_branch(ctx, branch)
        tm.t_on_reply(ctx, onreply)
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    [_, fwd] = p.receive(invite("s1"), CALLER, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)
    assert seen == [
        ("start", -1, 1),
        ("armed", 1, -1),
        ("newtran", 1, 0),
        ("branch", -1, 1, 1, 100, 0),
        # $T_req reads the request as received: the R-URI before rewritehostport
        ("reply", 1, 1, 1, 180, "Ringing", "sip:bob@127.0.0.1:5160", None),
    ]
    assert tm.t_is_set(make_ctx(invite("s2")), "bogus_route") == -1


def test_t_on_failure_in_onreply_route_arms_the_transaction() -> None:
    failures: list[int | None] = []

    def failure(ctx: FailureContext) -> int:
        failures.append(ctx.t_reply_code)
        return 1

    def onreply(ctx: ReplyContext) -> int:
        tm.t_on_failure(ctx, failure)
        return 1

    def route(ctx: RequestContext) -> int:
        tm.t_on_reply(ctx, onreply)
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    [_, fwd] = p.receive(invite("s3"), CALLER, ME)
    p.receive(answer(fwd.data, 503, "Unavailable"), B1, ME)
    assert failures == [503]


@pytest.mark.parametrize(
    ("cls", "kind", "expected"),
    [
        (RequestContext, Route.REQUEST, (-1, -1, -1, 1)),
        (FailureContext, Route.FAILURE, (1, -1, -1, -1)),
        (BranchContext, Route.BRANCH, (-1, 1, -1, -1)),
        (ReplyContext, Route.TM_ONREPLY, (-1, -1, 1, -1)),
        (ReplyContext, Route.CORE_ONREPLY, (-1, -1, 1, -1)),
        (OnsendContext, Route.ONSEND, (-1, -1, -1, -1)),
        (EventContext, Route.ONEVENT, (-1, -1, -1, -1)),
    ],
)
def test_t_is_route_kind(cls: type[Context], kind: Route, expected: tuple[int, ...]) -> None:
    ctx = make_ctx(invite("k1"), cls)
    ctx.kind = kind
    got = (
        tmx.t_is_failure_route(ctx),
        tmx.t_is_branch_route(ctx),
        tmx.t_is_reply_route(ctx),
        tmx.t_is_request_route(ctx),
    )
    assert got == expected


def test_reply_priorities_follow_t_pick_branch() -> None:
    assert [reply_prio(c) for c in (603, 302, 401, 404, 486, 500, 503, 99, 701)] == [
        1003,
        3002,
        4001,
        4104,
        4186,
        5000,
        5003,
        32099,
        10701,
    ]
    # measured: 486, 408 and 404 on three branches -> 404 goes upstream
    assert sorted((486, 408, 404), key=reply_prio) == [404, 408, 486]


def test_transaction_ids_and_t_names() -> None:
    """Measured: the tests' ``c1`` INVITE has hash index 62340 (``483f`` reversed
    in its branch); ``$T(ruid)`` reads the label; without a transaction ``$T(id_index)``
    is ``$null`` and ``$T(id_index_n)`` creates one."""
    seen: list[Any] = []

    def route(ctx: RequestContext) -> int:
        seen.append((pv(ctx, "T", "id_index"), pv(ctx, "T_reply_code"), pv(ctx, "T_reply_reason")))
        seen.append((pv(ctx, "T", "id_index_n"), pv(ctx, "T", "id_label_n")))
        seen.append(
            (
                pv(ctx, "T", "ruid"),
                pv(ctx, "T", "reply_code"),
                pv(ctx, "T", "branch_index"),
                pv(ctx, "T", "reply_type"),
                pv(ctx, "T_reply_ruid"),
            )
        )
        return 1

    p, _ = plain(route)
    p.receive(invite("c1"), CALLER, ME)
    p.receive(invite("c1", branch="z9hG4bK-again"), CALLER, ME)
    first_label = seen[1][1]
    assert 0 <= first_label < 1 << 31  # each entry starts at a random label
    assert seen == [
        (None, 0, ""),
        (62340, first_label),
        (first_label, 0, 0, 0, ""),
        (None, 0, ""),
        (62340, first_label + 1),  # the same hash entry: the next label
        (first_label + 1, 0, 0, 0, ""),
    ]
    msg = make_ctx(invite("c1")).msg
    assert isinstance(msg, Request)
    assert hash_index(msg) == 62340
    with pytest.raises(PvError):
        accessor("T", "reply_reason")
    with pytest.raises(PvError):
        accessor("T_req", "ru")


def test_t_inv_reads_the_invite_a_cancel_matches() -> None:
    seen: list[Any] = []

    def route(ctx: RequestContext) -> int:
        seen.append((pv(ctx, "rm"), nested("T_inv", "rm").get(ctx), nested("T_inv", "cs").get(ctx)))
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    [_, fwd] = p.receive(invite("v1"), CALLER, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)
    p.receive(cancel("v1"), CALLER, ME)
    # measured: $T_inv($rm) is INVITE for the CANCEL, $null for the INVITE itself
    assert seen == [("INVITE", None, None), ("CANCEL", "INVITE", "1")]


def test_t_pvs_outside_their_routes() -> None:
    ctx = make_ctx(invite("o1"), OnsendContext)
    ctx.tm_cell = None
    assert pv(ctx, "T_branch_idx") == -1
    assert pv(ctx, "T_reply_code") == 0
    assert pv(ctx, "T_reply_last") is None
    fctx = make_ctx(invite("o2"), FailureContext)
    assert pv(fctx, "T_branch_idx") is None  # tmx's error: no transaction


# -- tmx t_precheck_trans ---------------------------------------------------------------


def test_t_precheck_trans_sees_the_same_request_in_another_worker() -> None:
    """True while another worker runs the route for the same request (Call-ID, From
    tag, CSeq, top Via branch); ACK and CANCEL are never tracked; the engine clears
    the claim when the route ends; ``precheck_trans`` 0 turns it off (tmx README)."""
    store = SharedMemoryStore(workers=2)
    try:
        seen: list[int] = []

        def route(ctx: RequestContext) -> int:
            seen.append(tmx.t_precheck_trans(ctx))
            return 1

        p, _ = plain(route)
        p.process.shared = store
        store.reset_process_state(0)
        p.receive(invite("p1"), CALLER, ME)
        assert seen == [-1]  # nobody else has it; released when the route ended
        assert store.pretran_claim(b"other") is False
        store.pretran_release()
        # worker 1 is running the route for the same INVITE right now
        store.reset_process_state(1)
        assert store.pretran_claim(tmx.pretran_key(_request(invite("p1")))) is False
        store.reset_process_state(0)
        p.receive(invite("p1", branch="z9hG4bK-p1"), CALLER, ME)
        p.receive(invite("p2"), CALLER, ME)
        p.receive(cancel("p1"), CALLER, ME)
        assert seen == [-1, 1, -1, -1]
        p.process.modparams = {("tmx", "precheck_trans"): 0}
        p.receive(invite("p1"), CALLER, ME)
        assert seen[-1] == -1
    finally:
        store.close()


def _request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg
