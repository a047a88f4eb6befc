"""Stateful forwarding (:mod:`kcc_runtime.tm` through :class:`kcc_runtime.engine.Proxy`)
driven with bytes and a fake clock, no sockets.

The expected bytes marked "measured" were captured from Kamailio 5.6.3 on loopback
running ``examples/stateful_rr.cfg`` with ``listen=udp:127.0.0.1:5160`` (backends on
5181/5182, substituted here by the goldens' 5081/5082; a Python UDP caller on
127.0.0.1:5170 and backends recording what Kamailio sent).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kcc_runtime.context import (
    BranchContext,
    FailureContext,
    ReplyContext,
    RequestContext,
    ScriptDrop,
)
from kcc_runtime.engine import Outgoing, Proxy, Socket
from kcc_runtime.modules import core, corex, sl, tm
from kcc_runtime.router import Config, Router
from kcc_runtime.sip import Request, parse_message
from kcc_runtime.values import compile_posix_ere

from tests.runtime.test_engine import golden_router

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
CALLER = ("127.0.0.1", 5170)
B1 = ("127.0.0.1", 5081)
B2 = ("127.0.0.1", 5082)
ME = Socket("udp", "127.0.0.1", 5160)
TM_TAG = "5b4167208bb1319f0333e26fe8df2283"  # md5("SER-TM/tags127.0.0.15160"), measured


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(stem: str, **kw: Any) -> tuple[Proxy, Clock]:
    clock = Clock()
    kw.setdefault("allow_dst", LOOPBACK)
    return Proxy(golden_router(stem), [ME], clock=clock, **kw), clock


def invite(cid: str, branch: str | None = None) -> bytes:
    return (
        "INVITE sip:bob@127.0.0.1:5160 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5170;branch={branch or 'z9hG4bK-' + cid};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {cid}@example.com\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@127.0.0.1:5170>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def cancel(cid: str) -> bytes:
    return (
        "CANCEL sip:bob@127.0.0.1:5160 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-{cid};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {cid}@example.com\r\n"
        "CSeq: 1 CANCEL\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answer(req: bytes, code: int, reason: str, totag: str = "b2tag") -> bytes:
    """What the backend answers: Vias, From, To (+tag), Call-ID, CSeq, Record-Route."""
    lines = req.decode().split("\r\n")
    out = [f"SIP/2.0 {code} {reason}"]
    for line in lines[1:]:
        low = line.lower()
        if low.startswith(("via", "from", "call-id", "cseq", "record-route")):
            out.append(line)
        elif low.startswith("to:"):
            out.append(line + (f";tag={totag}" if code > 100 else ""))
    if code < 300:
        out.append("Contact: <sip:bob@127.0.0.1:5081>")
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def first_line(out: Outgoing) -> bytes:
    return out.data.split(b"\r\n", 1)[0]


def summary(outs: list[Outgoing]) -> list[tuple[bytes, tuple[str, int]]]:
    return [(first_line(o), o.dst) for o in outs]


#: measured: Kamailio's answer and branch for ``invite("c1")``
TRYING_C1 = (
    b"SIP/2.0 100 trying -- your call is important to us\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-c1;rport=5170;received=127.0.0.1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
    b"Content-Length: 0\r\n\r\n"
)
BRANCH_C1 = b"z9hG4bK483f.e37f16c9fa2e25b51cf259b1eea9858d"
INVITE_C1_B1 = (
    b"INVITE sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
    b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1>\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=" + BRANCH_C1 + b".0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5170;received=127.0.0.1;branch=z9hG4bK-c1;rport=5170\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5170>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_invite_gets_100_then_one_branch_as_kamailio_sends_them() -> None:
    p, _ = make("stateful_rr")
    out = p.receive(invite("c1"), CALLER, ME)
    assert [(o.data, o.dst, o.src) for o in out] == [
        (TRYING_C1, CALLER, ME),
        (INVITE_C1_B1, B1, ME),
    ]


def test_full_call_180_200_relayed_ack_and_bye_loose_routed() -> None:
    p, clock = make("stateful_rr")
    [_, fwd] = p.receive(invite("c1"), CALLER, ME)
    ringing = answer(fwd.data, 180, "Ringing")
    [out] = p.receive(ringing, B1, ME)
    # measured: the 180 relayed with our Via removed, nothing else changed
    assert out.dst == CALLER
    assert out.data == (
        b"SIP/2.0 180 Ringing\r\n"
        b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1>\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;received=127.0.0.1;branch=z9hG4bK-c1;rport=5170\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=b2tag\r\n"
        b"Call-ID: c1@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:bob@127.0.0.1:5081>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    ok = answer(fwd.data, 200, "OK")
    [out] = p.receive(ok, B1, ME)
    assert first_line(out) == b"SIP/2.0 200 OK"
    assert out.dst == CALLER
    # a retransmitted 2xx is relayed too
    assert summary(p.receive(ok, B1, ME)) == [(b"SIP/2.0 200 OK", CALLER)]
    ack = (
        b"ACK sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-c1-ack;rport\r\n"
        b"Route: <sip:127.0.0.1:5160;lr;ftag=a1>\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=b2tag\r\n"
        b"Call-ID: c1@example.com\r\n"
        b"CSeq: 1 ACK\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    [out] = p.receive(ack, CALLER, ME)
    assert first_line(out) == b"ACK sip:bob@127.0.0.1:5081 SIP/2.0"
    assert out.dst == B1
    assert b"Route:" not in out.data  # loose_route removed our own entry
    bye = ack.replace(b"ACK sip", b"BYE sip").replace(b"1 ACK", b"2 BYE")
    bye = bye.replace(b"c1-ack", b"c1-bye")
    [out] = p.receive(bye, CALLER, ME)
    assert (first_line(out), out.dst) == (b"BYE sip:bob@127.0.0.1:5081 SIP/2.0", B1)
    assert out.data.split(b"\r\n")[1].startswith(b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=z9hG4bK")
    # the BYE is a client transaction: retransmitted after T1 until answered
    clock.now += 0.5
    assert summary(p.on_timer(clock.now)) == [(b"BYE sip:bob@127.0.0.1:5081 SIP/2.0", B1)]
    [relayed] = p.receive(answer(out.data, 200, "OK"), B1, ME)
    assert (first_line(relayed), relayed.dst) == (b"SIP/2.0 200 OK", CALLER)
    clock.now += 1.0
    assert p.on_timer(clock.now) == []


def test_cancel_after_180_gets_200_cancel_to_backend_and_487_relayed() -> None:
    p, clock = make("stateful_rr")
    [_, fwd] = p.receive(invite("c1"), CALLER, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)
    out = p.receive(cancel("c1"), CALLER, ME)
    # measured: the CANCEL to the backend, then 200 canceling to the caller
    assert sorted((o.data, o.dst) for o in out) == sorted(
        [
            (
                b"SIP/2.0 200 canceling\r\n"
                b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-c1;rport=5170"
                b";received=127.0.0.1\r\n"
                b"From: <sip:alice@example.com>;tag=a1\r\n"
                b"To: <sip:bob@example.com>;tag=" + TM_TAG.encode() + b"-621b42b8\r\n"
                b"Call-ID: c1@example.com\r\n"
                b"CSeq: 1 CANCEL\r\n"
                b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
                b"Content-Length: 0\r\n\r\n",
                CALLER,
            ),
            (
                b"CANCEL sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
                b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=" + BRANCH_C1 + b".0\r\n"
                b"Max-Forwards: 70\r\n"
                b"From: <sip:alice@example.com>;tag=a1\r\n"
                b"To: <sip:bob@example.com>\r\n"
                b"Call-ID: c1@example.com\r\n"
                b"CSeq: 1 CANCEL\r\n"
                b"Content-Length: 0\r\n\r\n",
                B1,
            ),
        ]
    )
    [cancel_fwd] = [o for o in out if o.dst == B1]
    assert p.receive(answer(cancel_fwd.data, 200, "OK"), B1, ME) == []
    out = p.receive(answer(fwd.data, 487, "Request Terminated"), B1, ME)
    # measured: hop-by-hop ACK to the backend, the 487 relayed (no failure route here)
    assert summary(out) == [
        (b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        (b"SIP/2.0 487 Request Terminated", CALLER),
    ]
    assert out[0].data == (
        b"ACK sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=" + BRANCH_C1 + b".0\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=b2tag\r\n"
        b"Call-ID: c1@example.com\r\n"
        b"CSeq: 1 ACK\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    # the caller's ACK has no Route: the book's trap, the 487 is retransmitted (T1)
    clock.now += 0.5
    assert summary(p.on_timer(clock.now)) == [(b"SIP/2.0 487 Request Terminated", CALLER)]


def test_cancel_before_any_reply_ends_with_a_local_487_at_fr_timer() -> None:
    p, clock = make("stateful_rr")
    p.receive(invite("c2"), CALLER, ME)
    out = p.receive(cancel("c2"), CALLER, ME)
    # measured: 200 canceling only; no CANCEL before a provisional reply
    assert summary(out) == [(b"SIP/2.0 200 canceling", CALLER)]
    clock.now += 29.9
    assert all(first_line(o).startswith(b"INVITE") for o in p.on_timer(clock.now))
    clock.now += 0.2
    [out487] = [o for o in p.on_timer(clock.now) if o.dst == CALLER]
    # measured (with fr_timer=1000): the local 487 and tm's To-tag
    assert out487.data == (
        b"SIP/2.0 487 Request Terminated\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-c2;rport=5170;received=127.0.0.1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=" + TM_TAG.encode() + b"-db383d58\r\n"
        b"Call-ID: c2@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_unmatched_cancel_sends_nothing() -> None:
    p, _ = make("stateful_rr")
    assert p.receive(cancel("nope"), CALLER, ME) == []


def test_silent_backend_gets_a_local_408_at_fr_timer() -> None:
    p, clock = make("stateful_rr")
    p.receive(invite("c3"), CALLER, ME)
    # Timer A capped at T2 as Kamailio does
    sent_at = []
    for _ in range(300):
        clock.now += 0.1
        for o in p.on_timer(clock.now):
            sent_at.append((round(clock.now - 1000.0, 1), first_line(o)))
    invites = [t for t, line in sent_at if line.startswith(b"INVITE")]
    assert invites[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    [(when, line)] = [(t, line) for t, line in sent_at if line.startswith(b"SIP/2.0")][:1]
    assert (when, line) == (30.0, b"SIP/2.0 408 Request Timeout")


def test_408_bytes_measured() -> None:
    p, clock = make("stateful_rr")
    p.receive(invite("c3"), CALLER, ME)
    clock.now += 30.0
    [out] = [o for o in p.on_timer(clock.now) if o.dst == CALLER]
    assert out.data == (
        b"SIP/2.0 408 Request Timeout\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-c3;rport=5170;received=127.0.0.1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=" + TM_TAG.encode() + b"-4329e708\r\n"
        b"Call-ID: c3@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_retransmitted_invite_is_absorbed_with_the_last_reply() -> None:
    p, _ = make("stateful_rr")
    [trying, fwd] = p.receive(invite("c4"), CALLER, ME)
    # before any final: the 100 again, nothing to the backend
    assert [(o.data, o.dst) for o in p.receive(invite("c4"), CALLER, ME)] == [(trying.data, CALLER)]
    out = p.receive(answer(fwd.data, 486, "Busy Here"), B1, ME)
    assert summary(out) == [
        (b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        (b"SIP/2.0 486 Busy Here", CALLER),
    ]
    # measured: the retransmitted INVITE gets the 486 again
    again = p.receive(invite("c4"), CALLER, ME)
    assert [(o.data, o.dst) for o in again] == [(out[1].data, CALLER)]
    # the backend's retransmitted 486 is absorbed: ACKed again, not relayed
    assert summary(p.receive(answer(fwd.data, 486, "Busy Here"), B1, ME)) == [
        (b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1)
    ]
    assert p.stats["forwarded"] == 1


# -- failure routing (examples/failover_rr.cfg) ------------------------------------------


def test_failover_500_reroutes_to_the_other_backend() -> None:
    p, _ = make("failover_rr")
    [_, fwd] = p.receive(invite("f8"), CALLER, ME)
    assert fwd.dst == B1
    out = p.receive(answer(fwd.data, 500, "Server Error"), B1, ME)
    assert summary(out) == [
        (b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        (b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0", B2),
    ]
    second = out[1].data
    # a new branch (index 1) of the same transaction, Record-Route kept
    head = fwd.data.split(b"branch=", 1)[1].split(b"\r\n", 1)[0]
    assert head.endswith(b".0")
    assert b"branch=" + head[:-1] + b"1\r\n" in second
    assert b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1>\r\n" in second
    # measured: Kamailio's second branch of the same call
    assert second.split(b"\r\n")[1:4] == [
        b"Record-Route: <sip:127.0.0.1:5160;lr;ftag=a1>",
        b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=z9hG4bK6b52.3c521b4a2cc80f602166ea10a1f8342d.1",
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;received=127.0.0.1;branch=z9hG4bK-f8;rport=5170",
    ]
    out = p.receive(answer(second, 200, "OK"), B2, ME)
    assert summary(out) == [(b"SIP/2.0 200 OK", CALLER)]


def test_failover_silent_backend_reroutes_after_fr_timer() -> None:
    p, clock = make("failover_rr")
    p.receive(invite("f2"), CALLER, ME)
    clock.now += 30.0
    out = [
        o
        for o in p.on_timer(clock.now)
        if not first_line(o).startswith(b"INVITE sip:bob@127.0.0.1:5081")
    ]
    assert summary(out) == [(b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0", B2)]
    assert summary(p.receive(answer(out[0].data, 200, "OK"), B2, ME)) == [
        (b"SIP/2.0 200 OK", CALLER)
    ]


def test_failover_after_180_times_out_at_fr_inv_timer_cancels_and_reroutes() -> None:
    p, clock = make("failover_rr")
    [_, fwd] = p.receive(invite("f3"), CALLER, ME)
    assert summary(p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)) == [
        (b"SIP/2.0 180 Ringing", CALLER)
    ]
    clock.now += 119.0
    assert p.on_timer(clock.now) == []
    clock.now += 1.0
    out = p.on_timer(clock.now)
    assert summary(out) == [
        (b"CANCEL sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        (b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0", B2),
    ]


def test_failover_both_failing_gives_the_caller_the_final_error() -> None:
    p, _ = make("failover_rr")
    [_, fwd] = p.receive(invite("f7"), CALLER, ME)
    [_, second] = p.receive(answer(fwd.data, 500, "Server Error"), B1, ME)
    out = p.receive(answer(second.data, 486, "Busy Here"), B2, ME)
    assert summary(out) == [
        (b"ACK sip:bob@127.0.0.1:5082 SIP/2.0", B2),
        (b"SIP/2.0 486 Busy Here", CALLER),
    ]


def test_a_503_goes_upstream_as_a_local_500() -> None:
    p, _ = make("failover_rr")
    [_, fwd] = p.receive(invite("f7"), CALLER, ME)
    [_, second] = p.receive(answer(fwd.data, 500, "Server Error"), B1, ME)
    out = p.receive(answer(second.data, 503, "Service Unavailable"), B2, ME)
    assert summary(out)[0] == (b"ACK sip:bob@127.0.0.1:5082 SIP/2.0", B2)
    # measured (remap_503_500, on by default)
    assert out[1].data == (
        b"SIP/2.0 500 Service Unavailable\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-f7;rport=5170;received=127.0.0.1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=" + TM_TAG.encode() + b"-8aaa99b1\r\n"
        b"Call-ID: f7@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_failover_not_rerouted_on_other_codes_or_when_canceled() -> None:
    p, _ = make("failover_rr")
    [_, fwd] = p.receive(invite("f5"), CALLER, ME)
    out = p.receive(answer(fwd.data, 486, "Busy Here"), B1, ME)
    assert summary(out)[1] == (b"SIP/2.0 486 Busy Here", CALLER)
    [_, fwd] = p.receive(invite("f6"), CALLER, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B2, ME)
    p.receive(cancel("f6"), CALLER, ME)
    out = p.receive(answer(fwd.data, 487, "Request Terminated"), B2, ME)
    assert summary(out) == [
        (b"ACK sip:bob@127.0.0.1:5082 SIP/2.0", B2),
        (b"SIP/2.0 487 Request Terminated", CALLER),
    ]


def test_failover_caller_outside_the_subnets_gets_403() -> None:
    p, _ = make("failover_rr")
    out = p.receive(invite("f7"), ("127.0.2.9", 5170), ME)
    assert summary(out) == [(b"SIP/2.0 403 Forbidden", ("127.0.2.9", 5170))]


# -- the functions one by one, with small routes -------------------------------------------


def router_of(request: Any, **kw: Any) -> Router:
    modparams = kw.pop("modparams", ())
    return Router(config=Config(modules=("tm", "sl"), modparams=modparams), request=request, **kw)


def plain(request: Any, **kw: Any) -> tuple[Proxy, Clock]:
    clock = Clock()
    allow = kw.pop("allow_dst", LOOPBACK)
    reply_sockets = kw.pop("reply_sockets", ())
    sockets = kw.pop("sockets", [ME])
    return (
        Proxy(
            router_of(request, **kw),
            sockets,
            clock=clock,
            allow_dst=allow,
            reply_sockets=reply_sockets,
        ),
        clock,
    )


def test_t_reply_is_stateful_and_retransmitted_until_acked() -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        codes.append(tm.t_check_trans(ctx))
        if codes[-1] == 0 or ctx.msg.method == "ACK":
            return 1
        codes.append(ctx.action(tm.t_reply(ctx, 404, "Nowhere")))
        return 1

    p, clock = plain(route)
    [out] = p.receive(invite("r1"), CALLER, ME)
    assert codes == [-1, 1]
    assert first_line(out) == b"SIP/2.0 404 Nowhere"
    assert b"tag=" + TM_TAG.encode() + b"-" in out.data
    clock.now += 0.5
    assert [o.data for o in p.on_timer(clock.now)] == [out.data]
    codes.clear()
    # a retransmission: t_check_trans absorbs it (0) and the 404 goes again
    assert [o.data for o in p.receive(invite("r1"), CALLER, ME)] == [out.data]
    assert codes == [0]
    to = out.data.split(b"To: ", 1)[1].split(b"\r\n", 1)[0]
    ack = (
        invite("r1")
        .replace(b"INVITE sip", b"ACK sip")
        .replace(b"1 INVITE", b"1 ACK")
        .replace(b"To: <sip:bob@example.com>", b"To: " + to)
    )
    codes.clear()
    assert p.receive(ack, CALLER, ME) == []
    assert codes == [0]  # the ACK of the negative reply is absorbed
    clock.now += 1.0
    assert p.on_timer(clock.now) == []  # Timer G stopped by the ACK


def test_t_check_trans_on_retransmission_ends_the_script() -> None:
    seen: list[str] = []

    def route(ctx: RequestContext) -> int:
        ctx.action(tm.t_check_trans(ctx))
        seen.append("relay")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    first = p.receive(invite("r2").replace(b"5160 SIP", b"5081 SIP", 1), CALLER, ME)
    assert summary(first) == [
        (b"SIP/2.0 100 trying -- your call is important to us", CALLER),
        (b"INVITE sip:bob@127.0.0.1:5081 SIP/2.0", B1),
    ]
    again = p.receive(invite("r2").replace(b"5160 SIP", b"5081 SIP", 1), CALLER, ME)
    assert summary(again) == [(b"SIP/2.0 100 trying -- your call is important to us", CALLER)]
    assert seen == ["relay"]


def test_refused_destination_makes_t_relay_fail() -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "10.1.2.3:5060")
        rc = tm.t_relay(ctx)
        codes.append(rc)
        if rc < 0:
            sl.sl_reply_error(ctx)
        return 1

    p, _ = plain(route)
    out = p.receive(invite("r3"), CALLER, ME)
    assert codes == [-477]  # tm's E_SEND, the guard refusing is a send error
    # the script's stateless error reply, then tm's own at the end of the script
    assert summary(out) == [
        (b"SIP/2.0 100 trying -- your call is important to us", CALLER),
        (b"SIP/2.0 500 I'm terribly sorry, server error occurred (1/SL)", CALLER),
        (b"SIP/2.0 477 Unfortunately error on sending to next hop occurred (477/TM)", CALLER),
    ]
    assert p.stats["refused_dst"] == 1


def test_unresolvable_host_gets_tm_478_after_the_script() -> None:
    def route(ctx: RequestContext) -> int:
        core.rewritehost(ctx, "nonexistent.invalid")
        if tm.t_relay(ctx) < 0:
            sl.sl_reply_error(ctx)
        return 1

    clock = Clock()
    p = Proxy(router_of(route), [ME], clock=clock, allow_dst=LOOPBACK, resolver=lambda host: None)
    out = p.receive(invite("x1"), CALLER, ME)
    assert summary(out)[:2] == [
        (b"SIP/2.0 100 trying -- your call is important to us", CALLER),
        (b"SIP/2.0 500 I'm terribly sorry, server error occurred (1/SL)", CALLER),
    ]
    # measured (Kamailio 5.6.3, same route with rewritehost("nonexistent.invalid"))
    assert out[2].data == (
        b"SIP/2.0 478 Unresolvable destination (478/TM)\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-x1;rport=5170;received=127.0.0.1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=" + TM_TAG.encode() + b"-f10cea13\r\n"
        b"Call-ID: x1@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    clock.now += 0.5
    assert [o.data for o in p.on_timer(clock.now)] == [out[2].data]
    # a retransmission gets it again and never reaches the script's relay
    assert [o.data for o in p.receive(invite("x1"), CALLER, ME)][-1:] == [out[2].data]


def test_reply_socket_sends_the_branch_and_names_it_in_via() -> None:
    rs = Socket("udp", "127.0.0.1", 40001)

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route, reply_sockets=[rs])
    [trying, fwd] = p.receive(invite("r4"), CALLER, ME)
    assert trying.src == ME
    assert fwd.src == rs
    assert b"\r\nVia: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK" in fwd.data
    [relayed] = p.receive(answer(fwd.data, 180, "Ringing"), B1, rs)
    assert (first_line(relayed), relayed.dst, relayed.src) == (
        b"SIP/2.0 180 Ringing",
        CALLER,
        ME,
    )


def test_each_branch_leaves_from_the_reply_socket_of_its_listening_ip() -> None:
    """One reply socket per UDP listening IP (serve.py): a branch goes out from the
    one on the IP Kamailio's socket choice gives (the IP the request came in on, when
    of the destination's family), else from the first of the destination's family."""
    me6 = Socket("udp", "::1", 5160)
    me2 = Socket("udp", "127.0.0.2", 5160)
    rs1 = Socket("udp", "127.0.0.1", 40001)
    rs2 = Socket("udp", "127.0.0.2", 40002)
    rs6 = Socket("udp", "::1", 40006)
    targets = {"v4": "127.0.0.1:5081", "v6": "[::1]:5081"}

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, targets[ctx.msg.header("subject") or "v4"])
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(
        route,
        sockets=[ME, me2, me6],
        reply_sockets=[rs1, rs2, rs6],
        allow_dst=[*LOOPBACK, ipaddress.ip_network("::1/128")],
    )

    def relay(cid: str, subject: str, local: Socket) -> Outgoing:
        request = invite(cid).replace(b"CSeq:", f"Subject: {subject}\r\nCSeq:".encode())
        [_, fwd] = p.receive(request, CALLER, local)
        return fwd

    assert relay("s1", "v4", ME).src == rs1
    assert relay("s2", "v4", me2).src == rs2
    assert relay("s3", "v6", ME).src == rs6
    fwd = relay("s4", "v6", me2)
    assert (fwd.src, fwd.dst) == (rs6, ("::1", 5081))
    assert b"\r\nVia: SIP/2.0/UDP [::1]:40006;branch=z9hG4bK" in fwd.data


def test_failure_route_sees_codes_timeouts_avps_and_can_t_reply() -> None:
    seen: list[Any] = []

    def failure(ctx: FailureContext) -> int:
        seen.append(
            (
                ctx.t_reply_code,
                ctx.t_branch_idx,
                tm.t_branch_timeout(ctx),
                tm.t_any_timeout(ctx),
                tm.t_is_canceled(ctx),
                tm.t_check_status(ctx, compile_posix_ere("408")),
                ctx.avps.get("x"),
                ctx.flags,
            )
        )
        return ctx.action(tm.t_reply(ctx, 480, "Gone"))

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        ctx.flags = 4
        tm.t_on_failure(ctx, failure)
        rc = ctx.action(tm.t_relay(ctx))
        ctx.avps["x"] = [7]
        return rc

    p, clock = plain(route, modparams=(("tm", "fr_timer", 2000),))
    p.receive(invite("r5"), CALLER, ME)
    clock.now += 2.0
    out = [o for o in p.on_timer(clock.now) if o.dst == CALLER]
    assert seen == [(408, 0, 1, 1, -1, 1, [7], 4)]
    assert summary(out) == [(b"SIP/2.0 480 Gone", CALLER)]


def test_stray_reply_is_relayed_statelessly() -> None:
    p, _ = make("stateful_rr")
    stray = (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5160;branch=z9hG4bKnope.x.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-s;rport=5170\r\n"
        b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: s\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert summary(p.receive(stray, B1, ME)) == [(b"SIP/2.0 200 OK", CALLER)]


def test_bad_bytes_never_raise() -> None:
    p, _ = make("failover_rr")
    [_, fwd] = p.receive(invite("z1"), CALLER, ME)
    broken = answer(fwd.data, 500, "X").replace(b"CSeq: 1 INVITE", b"CSeq: x")
    p.receive(broken, B1, ME)
    assert p.stats["errors"] == 0
    msg = parse_message(fwd.data)
    assert isinstance(msg, Request)


def test_branch_route_can_drop_and_onreply_route_sees_the_transaction() -> None:
    seen: list[Any] = []
    drop = [True]

    def branch(ctx: BranchContext) -> int:
        seen.append(("branch", ctx.t_branch_idx, ctx.avps.get("a")))
        if drop[0]:
            raise ScriptDrop
        return 1

    def onreply(ctx: ReplyContext) -> int:
        seen.append(("reply", ctx.t_reply_code, ctx.t_branch_idx, ctx.avps.get("a")))
        if ctx.msg.status == 183:
            raise ScriptDrop
        return 1

    def route(ctx: RequestContext) -> int:
        ctx.avps["a"] = ["v"]
        core.rewritehostport(ctx, "127.0.0.1:5081")
        tm.t_on_branch(ctx, branch)
        tm.t_on_reply(ctx, onreply)
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    out = p.receive(invite("b1"), CALLER, ME)
    # the dropped branch is not sent (the caller gets tm's error reply)
    assert [o.dst for o in out] == [CALLER, CALLER]
    drop[0] = False
    [_, fwd] = p.receive(invite("b2"), CALLER, ME)
    assert fwd.dst == B1
    assert p.receive(answer(fwd.data, 183, "Progress"), B1, ME) == []
    assert summary(p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)) == [
        (b"SIP/2.0 180 Ringing", CALLER)
    ]
    assert seen == [
        ("branch", 0, ["v"]),
        ("branch", 0, ["v"]),
        ("reply", 183, 0, ["v"]),
        ("reply", 180, 0, ["v"]),
    ]


# -- forking and t_relay's codes, measured on Kamailio 5.6.3 ---------------------------


def test_appended_branches_are_forked_in_parallel_with_their_own_branch_ids() -> None:
    """append_branch + t_relay: one client branch per URI, ``.0`` for the R-URI and
    ``.1`` for the appended one, each with its own R-URI (the bytes Kamailio sent for
    two registered contacts, examples/registrar.cfg)."""
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        corex.append_branch(ctx, "sip:bob@127.0.0.1:5082")
        codes.append(tm.t_relay(ctx))
        codes.append(len(ctx.branches))  # consumed
        return 1

    p, _ = plain(route)
    out = p.receive(invite("f1"), CALLER, ME)
    assert codes == [1, 0]
    [_, b0, b1] = out
    assert (first_line(b0), b0.dst) == (b"INVITE sip:bob@127.0.0.1:5081 SIP/2.0", B1)
    assert (first_line(b1), b1.dst) == (b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0", B2)
    via0 = b0.data.split(b"\r\n")[1]
    via1 = b1.data.split(b"\r\n")[1]
    assert via0.endswith(b".0") and via1.endswith(b".1") and via0[:-2] == via1[:-2]
    # every other byte is the same request
    assert b0.data.split(b"\r\n")[2:] == b1.data.split(b"\r\n")[2:]


def test_failure_route_relays_only_what_it_set() -> None:
    """In failure_route the R-URI is consumed: ``append_branch`` + ``t_relay`` sends
    the appended branch alone; ``t_relay`` with nothing new is -1 ("no branches for
    forwarding") and the caller gets the branch's 408."""
    codes: list[int] = []

    def failure(ctx: FailureContext) -> int:
        if ctx.msg.header("x-mode") == "1":
            corex.append_branch(ctx, "sip:b@127.0.0.1:5082")
        codes.append(tm.t_relay(ctx))
        return 1

    def route(ctx: RequestContext) -> int:
        core.rewritehostport(ctx, "127.0.0.1:5081")
        tm.t_on_failure(ctx, failure)
        return ctx.action(tm.t_relay(ctx))

    for mode, sent, code in (("1", [B2], 1), ("2", [], -1)):
        p, clock = plain(route, modparams=(("tm", "fr_timer", 1000),))
        request = invite("m" + mode).replace(b"CSeq:", b"X-Mode: " + mode.encode() + b"\r\nCSeq:")
        [_, first] = p.receive(request, CALLER, ME)
        assert first.dst == B1
        clock.now += 0.5
        p.on_timer(clock.now)  # the INVITE's retransmission
        clock.now += 0.6
        out = p.on_timer(clock.now)
        assert [o.dst for o in out if o.data.startswith(b"INVITE")] == sent, mode
        assert codes[-1] == code
        if not sent:
            assert [first_line(o) for o in out] == [b"SIP/2.0 408 Request Timeout"]


def test_cancel_t_relay_is_1_and_a_retransmitted_cancel_gets_its_200_again() -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        if ctx.msg.method == "CANCEL":
            codes.append(tm.t_relay(ctx))
            return 1
        core.rewritehostport(ctx, "127.0.0.1:5081")
        return ctx.action(tm.t_relay(ctx))

    p, _ = plain(route)
    p.receive(invite("c9"), CALLER, ME)
    first = p.receive(cancel("c9"), CALLER, ME)
    again = p.receive(cancel("c9"), CALLER, ME)
    assert codes == [1, 1]
    assert [first_line(o) for o in first] == [b"SIP/2.0 200 canceling"]
    assert [o.data for o in again] == [first[0].data]


def test_t_relay_error_codes_and_tm_replies() -> None:
    """-478 ``478 Unresolvable destination (478/TM)``; -7 ``500 ... (7/TM)`` with no
    socket for the transport; -6 ``500 ... (6/TM)`` when branch_route drops every
    branch (each as Kamailio returned and answered)."""
    codes: list[int] = []

    def dropper(ctx: BranchContext) -> int:
        raise ScriptDrop

    def route(ctx: RequestContext) -> int:
        mode = ctx.msg.header("x-mode")
        if mode == "1":
            core.rewritehost(ctx, "nonexistent.invalid")
        elif mode == "2":
            core.rewritehostport(ctx, "127.0.0.1:5081;transport=tcp")
        else:
            core.rewritehostport(ctx, "127.0.0.1:5081")
            tm.t_on_branch(ctx, dropper)
        codes.append(tm.t_relay(ctx))
        return 1

    for mode, code, reply in (
        ("1", -478, b"SIP/2.0 478 Unresolvable destination (478/TM)"),
        ("2", -7, b"SIP/2.0 500 I'm terribly sorry, server error occurred (7/TM)"),
        ("3", -6, b"SIP/2.0 500 I'm terribly sorry, server error occurred (6/TM)"),
    ):
        p = Proxy(
            router_of(route), [ME], clock=Clock(), allow_dst=LOOPBACK, resolver=lambda host: None
        )
        request = invite("e" + mode).replace(b"CSeq:", b"X-Mode: " + mode.encode() + b"\r\nCSeq:")
        out = p.receive(request, CALLER, ME)
        assert codes[-1] == code
        assert [first_line(o) for o in out] == [
            b"SIP/2.0 100 trying -- your call is important to us",
            reply,
        ]


def test_tmx_statistics_count_transactions_and_replies() -> None:
    """tmx's counters (``kamcmd tm.stats``/``stats.get_statistics tmx:``): a relayed
    call and a call answered by a local 408."""
    p, clock = make("stateful_rr")
    counters = p.process.shared.counters
    [_, fwd] = p.receive(invite("s1"), CALLER, ME)
    p.receive(answer(fwd.data, 100, "Trying"), B1, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)
    assert counters.get("tmx:active_transactions") == 1
    p.receive(answer(fwd.data, 200, "OK"), B1, ME)
    p.receive(invite("s2"), CALLER, ME)  # to B2, which never answers
    clock.now += 200
    for _ in range(40):
        clock.now += 5
        p.on_timer(clock.now)
    assert {
        name: counters.get(f"tmx:{name}")
        for name in (
            "UAS_transactions",
            "active_transactions",
            "rpl_received",
            "rpl_absorbed",
            "rpl_relayed",
            "rpl_generated",
            "rpl_sent",
            "2xx_transactions",
            "4xx_transactions",
        )
    } == {
        "UAS_transactions": 2,
        "active_transactions": 0,
        "rpl_received": 3,
        "rpl_absorbed": 1,  # the backend's 100
        "rpl_relayed": 2,  # 180, 200
        "rpl_generated": 3,  # two 100 Trying, the 408
        "rpl_sent": 5,
        "2xx_transactions": 1,
        "4xx_transactions": 1,
    }
