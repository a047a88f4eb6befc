"""rr's Record-Route parameters and Route checks: ``add_rr_param``,
``check_route_param``, ``is_direction`` and ``$route_uri``.

Expected values marked "measured" come from Kamailio 5.6.3 on loopback
(``listen=udp:127.0.0.1:5360``; the Record-Route the backends received, and
``xlog`` of each check after ``loose_route()`` on BYEs with the Route sets below).
"""

from __future__ import annotations

import pytest
from kcc_runtime.context import (
    BranchContext,
    Context,
    FailureContext,
    Received,
    ReplyContext,
    RequestContext,
)
from kcc_runtime.modules import core, rr, tm
from kcc_runtime.pv import accessor
from kcc_runtime.sip import Request
from kcc_runtime.values import compile_posix_ere

from tests.runtime.fake_engine import FakeEngine, make_ctx
from tests.runtime.test_tm import B1, B2, CALLER, ME, answer, invite, plain

HERE = Received("127.0.0.1", 5370, "127.0.0.1", 5360, "udp")


def request(extra: str = "", ftag: str = "a1", totag: str = "") -> bytes:
    return (
        "BYE sip:bob@127.0.0.1:5399 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5370;branch=z9hG4bK-d1;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:alice@example.com>;tag={ftag}\r\n"
        f"To: <sip:bob@example.com>{totag}\r\n"
        "Call-ID: d1@example.com\r\nCSeq: 2 BYE\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def ctx_of(data: bytes) -> Context:
    engine = FakeEngine(myself={("127.0.0.1", 5360)})
    return make_ctx(data, RequestContext, engine, HERE)


def record_route_line(ctx: Context) -> str:
    assert isinstance(ctx.msg, Request)
    out = ctx.msg.serialize().decode()
    [line] = [x for x in out.split("\r\n") if x.startswith("Record-Route:")]
    return line


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # measured, each: the Record-Route the next hop received
        ([("param", ";nat=yes"), ("rr", None)], "<sip:127.0.0.1:5360;lr;ftag=a1;nat=yes>"),
        ([("rr", None), ("param", ";nat=yes")], "<sip:127.0.0.1:5360;lr;ftag=a1;nat=yes>"),
        (
            [("param", ";a=1"), ("rr", ";p=2"), ("param", ";b=3")],
            "<sip:127.0.0.1:5360;lr;ftag=a1;p=2;a=1;b=3>",
        ),
    ],
)
def test_add_rr_param_before_and_after_record_route(
    steps: list[tuple[str, str | None]], expected: str
) -> None:
    ctx = ctx_of(invite("p1"))
    for what, arg in steps:
        if what == "rr":
            assert rr.record_route(ctx, arg) == 1
        else:
            assert arg is not None
            assert rr.add_rr_param(ctx, arg) == 1
    assert record_route_line(ctx) == "Record-Route: " + expected
    assert rr.add_rr_param(ctx, ";x=1\r\nEvil: 1") == -1


def test_add_rr_param_in_branch_route_is_per_branch() -> None:
    """Measured: ``add_rr_param(";br=$T_branch_idx")`` in a branch_route gives
    ``;br=0`` on the first branch and ``;br=1`` on the next (not ``;br=0;br=1``)."""

    def branch(ctx: BranchContext) -> int:
        return rr.add_rr_param(ctx, f";br={ctx.t_branch_idx}")

    def failure(ctx: FailureContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5082")
        return ctx.action(tm.t_relay(ctx))

    def route(ctx: RequestContext) -> int:
        rr.add_rr_param(ctx, ";nat=yes")
        rr.record_route(ctx)
        tm.t_on_branch(ctx, branch)
        tm.t_on_failure(ctx, failure)
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    [_, fwd1] = p.receive(invite("p2"), CALLER, ME)
    out = p.receive(answer(fwd1.data, 486, "Busy"), B1, ME)
    [fwd2] = [o for o in out if o.dst == B2]
    rr1 = [x for x in fwd1.data.split(b"\r\n") if x.startswith(b"Record-Route")]
    rr2 = [x for x in fwd2.data.split(b"\r\n") if x.startswith(b"Record-Route")]
    assert rr1 == [b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1;nat=yes;br=0>"]
    assert rr2 == [b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1;nat=yes;br=1>"]


RT_NAT = "Route: <sip:127.0.0.1:5360;lr;ftag=a1;nat=yes>, <sip:b@127.0.0.1:5399;lr>\r\n"


@pytest.mark.parametrize(
    ("route_hdr", "ftag", "route_uri", "du", "nat", "anchored", "down"),
    [
        # measured on Kamailio 5.6.3, one BYE each
        (RT_NAT, "a1", "sip:127.0.0.1:5360;lr;ftag=a1;nat=yes", "sip:b@127.0.0.1:5399;lr", 1, 1, 1),
        (
            RT_NAT,
            "zz",
            "sip:127.0.0.1:5360;lr;ftag=a1;nat=yes",
            "sip:b@127.0.0.1:5399;lr",
            1,
            1,
            -1,
        ),
        (
            "Route: <sip:127.0.0.1:5360;lr>\r\nRoute: <sip:b@127.0.0.1:5399;lr>\r\n",
            "zz",
            "sip:127.0.0.1:5360;lr",
            "sip:b@127.0.0.1:5399;lr",
            -1,
            -1,
            1,
        ),
        (
            "Route: <sip:b@127.0.0.1:5399;lr;nat=yes;ftag=a1>\r\n",
            "a1",
            "sip:b@127.0.0.1:5399;lr;nat=yes;ftag=a1",
            "sip:b@127.0.0.1:5399;lr;nat=yes;ftag=a1",
            -1,
            -1,
            1,
        ),
        (
            "Route: <sip:127.0.0.1:5360;ftag=zz;lr;nat=yes?h=1>\r\n",
            "a1",
            "sip:127.0.0.1:5360;ftag=zz;lr;nat=yes?h=1",
            None,
            1,
            -1,
            -1,
        ),
    ],
)
def test_route_checks_after_loose_route(
    route_hdr: str,
    ftag: str,
    route_uri: str,
    du: str | None,
    nat: int,
    anchored: int,
    down: int,
) -> None:
    ctx = ctx_of(request(route_hdr, ftag=ftag, totag=";tag=bt"))
    assert rr.check_route_param(ctx, compile_posix_ere("nat=yes")) == -1  # before loose_route
    assert rr.is_direction(ctx, "downstream") == 1
    assert rr.loose_route(ctx) == 1
    assert accessor("route_uri").get(ctx) == route_uri  # the Route as received
    assert ctx.dst_uri == du
    assert rr.check_route_param(ctx, compile_posix_ere("nat=yes")) == nat
    assert rr.check_route_param(ctx, compile_posix_ere("^;lr;ftag")) == anchored
    assert rr.is_direction(ctx, "downstream") == down
    assert rr.is_direction(ctx, "upstream") == -down
    assert rr.is_direction(ctx, "sideways") == -1


def test_route_checks_in_branch_and_failure_routes_see_the_requests_loose_route() -> None:
    """``check_route_param``/``is_direction`` in a branch route and a failure route
    answer for the transaction's request, as ``loose_route()`` left it in the request
    route (rr keys its routed params by message id; the branch route runs on the
    request, the failure route on a copy with the same id). Measured through the
    stock cfg with WITH_NAT on Kamailio 5.6.3: a BYE with ``;nat=yes`` in its Route
    gets its rtpengine ``delete`` from ``route[NATMANAGE]`` called by
    ``branch_route[MANAGE_BRANCH]`` (tests/integration/test_stock_nat.py). A reply
    is another message (another id; read in rr's source, not measured): in the
    reply route nothing is routed (-1, downstream)."""
    nat = compile_posix_ere("nat=yes")
    seen: list[tuple[str, int, int]] = []

    def check(where: str, ctx: Context) -> int:
        seen.append((where, rr.check_route_param(ctx, nat), rr.is_direction(ctx, "upstream")))
        return 1

    def branch(ctx: BranchContext) -> int:
        return check("branch", ctx)

    def on_reply(ctx: ReplyContext) -> int:
        return check("reply", ctx)

    def failure(ctx: FailureContext) -> int:
        return check("failure", ctx)

    def route(ctx: RequestContext) -> int:
        assert rr.loose_route(ctx) == 1
        check("request", ctx)
        tm.t_on_branch(ctx, branch)
        tm.t_on_reply(ctx, on_reply)
        tm.t_on_failure(ctx, failure)
        return ctx.action(tm.t_relay(ctx))

    bye = (
        b"BYE sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-rp1;rport\r\n"
        b"Route: <sip:127.0.0.1:5160;lr;ftag=zz;nat=yes>\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=bt\r\n"
        b"Call-ID: rp1@example.com\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    p, _ = plain(route)
    [fwd] = p.receive(bye, CALLER, ME)
    assert fwd.dst == B1
    assert b"nat=yes" not in fwd.data  # our Route entry is gone
    p.receive(answer(fwd.data, 486, "Busy"), B1, ME)
    assert seen == [
        ("request", 1, 1),
        ("branch", 1, 1),
        ("reply", -1, -1),
        ("failure", 1, 1),
    ]


def test_route_uri_without_route_is_null() -> None:
    """Measured: without a Route header ``$route_uri`` compares equal to ``$null``
    and to "" and is not ``defined``."""
    assert accessor("route_uri").get(ctx_of(request())) is None
    reply = make_ctx(answer(invite("p3"), 200, "OK"))
    assert accessor("route_uri").get(reply) is None
