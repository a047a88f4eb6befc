"""A worker stopping gracefully (issue 9, faults: SIGTERM during load), sans-IO.

:meth:`Proxy.begin_drain` refuses what would start something new with a stateless
503, routes everything that belongs to something under way (retransmissions, CANCEL,
ACK, in-dialog requests, replies), :meth:`Proxy.pending` counts the transactions that
still owe the caller something, and :meth:`Proxy.abort_pending` answers them at the
drain's deadline. The transport's side (signals, the deadline) is in
``test_transport.py``; the whole stop under SIPp load in
``tests/integration/test_faults.py``.
"""

from __future__ import annotations

from kcc_runtime.engine import Proxy

from tests.runtime.test_tm import (
    B1,
    B2,
    CALLER,
    ME,
    answer,
    cancel,
    first_line,
    invite,
    make,
    summary,
)


def ack_for(reply: bytes) -> bytes:
    """The caller's ACK for the 2xx ``reply`` (its To-tag), through our Record-Route."""
    to = next(line for line in reply.split(b"\r\n") if line.startswith(b"To:"))
    cid = next(line for line in reply.split(b"\r\n") if line.startswith(b"Call-ID:"))
    return (
        b"ACK sip:bob@127.0.0.1:5081 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5170;branch=z9hG4bK-"
        + cid[9:].split(b"@")[0]
        + b"-ack;rport\r\nRoute: <sip:127.0.0.1:5160;lr;ftag=a1>\r\n"
        + b"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
        + to
        + b"\r\n"
        + cid
        + b"\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )


def test_a_new_request_gets_503_without_running_the_script() -> None:
    p, _ = make("stateful_rr")
    p.begin_drain()
    [out] = p.receive(invite("n1"), CALLER, ME)
    assert (first_line(out), out.dst) == (b"SIP/2.0 503 Service Unavailable", CALLER)
    assert b"Call-ID: n1@example.com\r\n" in out.data
    assert b"To: <sip:bob@example.com>;tag=" in out.data  # a stateless reply's tag
    assert p.stats["refused_draining"] == 1
    assert p.stats["forwarded"] == 0
    assert p.pending() == 0
    # an OPTIONS or a REGISTER starts nothing either: refused the same way
    options = invite("n2").replace(b"INVITE", b"OPTIONS")
    assert summary(p.receive(options, CALLER, ME)) == [(b"SIP/2.0 503 Service Unavailable", CALLER)]
    assert p.stats["refused_draining"] == 2


def test_a_call_under_way_finishes_while_draining() -> None:
    p, _ = make("stateful_rr")
    [_, fwd] = p.receive(invite("c1"), CALLER, ME)
    assert p.pending() == 1
    p.begin_drain()
    # the caller's retransmission reaches its transaction: the last reply again, no 503
    assert summary(p.receive(invite("c1"), CALLER, ME)) == [
        (b"SIP/2.0 100 trying -- your call is important to us", CALLER)
    ]
    assert p.stats["refused_draining"] == 0
    assert summary(p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)) == [
        (b"SIP/2.0 180 Ringing", CALLER)
    ]
    assert p.pending() == 1
    ok = answer(fwd.data, 200, "OK")
    assert summary(p.receive(ok, B1, ME)) == [(b"SIP/2.0 200 OK", CALLER)]
    assert p.pending() == 0  # answered: the drain may end
    # the call's ACK and BYE (in-dialog, To-tag) are still routed to the backend
    relayed = p.receive(ack_for(ok), CALLER, ME)
    assert summary(relayed) == [(b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1)]
    bye = ack_for(ok).replace(b"ACK sip", b"BYE sip").replace(b"1 ACK", b"2 BYE")
    [out] = p.receive(bye.replace(b"c1-ack", b"c1-bye"), CALLER, ME)
    assert (first_line(out), out.dst) == (b"BYE sip:bob@127.0.0.1:5081 SIP/2.0", B1)
    assert p.pending() == 1  # the BYE's transaction, until its 200
    assert summary(p.receive(answer(out.data, 200, "OK"), B1, ME)) == [(b"SIP/2.0 200 OK", CALLER)]
    assert p.pending() == 0
    assert p.stats["refused_draining"] == 0


def test_a_cancel_while_draining_reaches_its_invite() -> None:
    p, clock = make("stateful_rr")
    [_, fwd] = p.receive(invite("c1"), CALLER, ME)
    p.receive(answer(fwd.data, 180, "Ringing"), B1, ME)
    p.begin_drain()
    out = p.receive(cancel("c1"), CALLER, ME)
    assert sorted(summary(out)) == sorted(
        [
            (b"SIP/2.0 200 canceling", CALLER),
            (b"CANCEL sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        ]
    )
    terminated = answer(fwd.data, 487, "Request Terminated")
    assert summary(p.receive(terminated, B1, ME)) == [
        (b"ACK sip:bob@127.0.0.1:5081 SIP/2.0", B1),
        (b"SIP/2.0 487 Request Terminated", CALLER),
    ]
    # the 487 waits for the caller's ACK, retransmitted by timer G: still pending.
    # (stateful_rr's WITHINDLG drops the hop-by-hop ACK before t_check_trans, the
    # book's trap: only timer H ends the transaction.)
    assert p.pending() == 1
    clock.now += 0.5
    assert (b"SIP/2.0 487 Request Terminated", CALLER) in summary(p.on_timer(clock.now))
    clock.now += 32.0
    p.on_timer(clock.now)
    assert p.pending() == 0
    assert p.stats["refused_draining"] == 0


def test_abort_answers_what_is_left_and_cancels_its_branches() -> None:
    p, _ = make("stateful_rr")
    [_, ringing_fwd] = p.receive(invite("c1"), CALLER, ME)
    p.receive(answer(ringing_fwd.data, 180, "Ringing"), B1, ME)
    [_, silent_fwd] = p.receive(invite("c2"), CALLER, ME)
    assert silent_fwd.dst == B2
    p.begin_drain()
    assert p.pending() == 2
    out = p.abort_pending()
    assert sorted(summary(out)) == sorted(
        [
            # the ringing branch gets a CANCEL; the silent one is marked (tm sends it
            # if a 1xx ever comes, as for a caller's CANCEL)
            (b"CANCEL sip:bob@127.0.0.1:5081 SIP/2.0", B1),
            (b"SIP/2.0 503 Service Unavailable", CALLER),
            (b"SIP/2.0 503 Service Unavailable", CALLER),
        ]
    )
    replies = [o.data for o in out if o.dst == CALLER]
    assert {r.split(b"Call-ID: ")[1].split(b"\r\n")[0] for r in replies} == {
        b"c1@example.com",
        b"c2@example.com",
    }
    # a second abort answers nothing twice (the 503s await their ACKs)
    assert [o for o in p.abort_pending() if o.dst == CALLER] == []
    # the silent backend's first 1xx, if the worker still runs: canceled then
    late = p.receive(answer(silent_fwd.data, 180, "Ringing"), B2, ME)
    assert (b"CANCEL sip:bob@127.0.0.1:5082 SIP/2.0", B2) in summary(late)


def test_a_stateless_proxy_drains_at_once() -> None:
    p, _ = make("stateless_rr_var")
    [fwd] = p.receive(invite("s1"), CALLER, ME)
    assert fwd.dst in (B1, B2)
    p.begin_drain()
    assert p.pending() == 0  # nothing is kept: the transport may stop at once
    assert summary(p.receive(invite("s2"), CALLER, ME)) == [
        (b"SIP/2.0 503 Service Unavailable", CALLER)
    ]
    # the reply to what was forwarded before is still relayed while the loop runs
    assert summary(p.receive(answer(fwd.data, 200, "OK"), fwd.dst, ME)) == [
        (b"SIP/2.0 200 OK", CALLER)
    ]


def test_begin_drain_twice_is_harmless() -> None:
    p: Proxy
    p, _ = make("stateful_rr")
    p.begin_drain()
    p.begin_drain()
    assert p.draining
    assert p.abort_pending() == []
