"""The sans-IO transaction layer (RFC 3261 §17) against a fake clock and raw bytes.

Kamailio figures were measured on 5.6 over loopback (``t_relay`` to a silent peer with
``fr_timer`` 25 s): the INVITE went out at 0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
23.5 s (retransmissions capped at T2), a 408 came at 25 s; the ACK for a relayed 500 was
``Via, Max-Forwards: 70, From, To (with the 500's tag), Call-ID, CSeq n ACK, Route...,
Content-Length: 0``.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kcc_runtime.sip import Request, Response, parse_message
from kcc_runtime.transaction import (
    AckReceived,
    ClientTransaction,
    Event,
    Kind,
    RequestReceived,
    ResponseReceived,
    Retransmission,
    ServerTransaction,
    State,
    StrayResponse,
    TableFull,
    Timeout,
    TimerConfig,
    Transaction,
    TransactionLayer,
    TransactionLimitError,
    TransactionTerminated,
    TransportError,
)

SRC = ("192.0.2.1", 5060)
DEST = ("198.51.100.7", 5060)
RFC = TimerConfig.rfc3261()


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKabc1",
    transport: str = "UDP",
    host: str = "192.0.2.1",
    to_tag: str | None = None,
    from_tag: str = "f1",
    cseq: int = 1,
    cseq_method: str | None = None,
    uri: str = "sip:bob@example.com",
    routes: tuple[str, ...] = (),
    call_id: str = "cid-1",
) -> bytes:
    via = f"SIP/2.0/{transport} {host}:5060" + (f";branch={branch}" if branch else "")
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        "Via: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKdeep",
        "Max-Forwards: 70",
        f"From: Alice <sip:alice@example.com>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        *(f"Route: {r}" for r in routes),
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def response(req: bytes, status: int, reason: str = "X", *, to_tag: str | None = "t9") -> bytes:
    """A response to ``req``: its Via lines, From, Call-ID, CSeq and To (+ tag)."""
    msg = parse_message(req)
    assert isinstance(msg, Request)
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in msg.header_values("via")]
    lines.append(f"From: {msg.header('from')}")
    to = msg.header("to") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"To: {to}", f"Call-ID: {msg.call_id}", f"CSeq: {msg.header('cseq')}"]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def req(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def resp(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def state_of(tx: Transaction) -> State:
    """The state, read through a call so mypy does not narrow it across actions."""
    return tx.state


def drain(layer: TransactionLayer) -> list[Event]:
    out: list[Event] = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, bytes]]:
    """Fire timers up to ``end``; return ``(time, first line)`` of everything sent."""
    sent: list[tuple[float, bytes]] = []
    while (when := layer.get_timer()) is not None and when <= end:
        layer.handle_timer(when)
        sent += [(round(when, 3), d.split(b"\r\n")[0]) for d, _ in layer.datagrams_to_send()]
    return sent


def times(sent: list[tuple[float, bytes]]) -> list[float]:
    return [t for t, _ in sent]


# ---- client transactions ------------------------------------------------------------


def test_invite_client_kamailio_retransmits_capped_at_t2_until_fr_timer() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(request(), DEST, 0.0)
    assert layer.datagrams_to_send() == [(request(), DEST)]
    assert tx.kind is Kind.INVITE_CLIENT and state_of(tx) is State.CALLING
    sent = run_until(layer, 100.0)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5]
    assert {line for _, line in sent} == {b"INVITE sip:bob@example.com SIP/2.0"}
    events = drain(layer)
    assert events == [Timeout(tx, "B", False), TransactionTerminated(tx)]
    assert tx.timed_out and state_of(tx) is State.TERMINATED and len(layer) == 0
    assert layer.get_timer() is None


def test_invite_client_rfc_timer_a_doubles_without_cap_until_b() -> None:
    layer = TransactionLayer(RFC)
    tx = layer.send_request(request(), DEST, 10.0)
    layer.datagrams_to_send()
    sent = run_until(layer, 100.0)
    assert times(sent) == [10.5, 11.5, 13.5, 17.5, 25.5, 41.5]
    assert drain(layer) == [Timeout(tx, "B", False), TransactionTerminated(tx)]
    assert layer.get_timer() is None


def test_non_invite_client_rfc_caps_at_t2_and_times_out_with_f() -> None:
    layer = TransactionLayer(RFC)
    tx = layer.send_request(request("OPTIONS"), DEST, 0.0)
    layer.datagrams_to_send()
    sent = run_until(layer, 100.0)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert drain(layer) == [Timeout(tx, "F", False), TransactionTerminated(tx)]


def test_non_invite_client_kamailio_fr_timer_and_max_noninv_lifetime() -> None:
    layer = TransactionLayer(TimerConfig(fr_timer=60.0))
    tx = layer.send_request(request("OPTIONS"), DEST, 0.0)
    run_until(layer, 100.0)
    # fr_timer 60 s is cut to max_noninv_lifetime (32 s)
    assert drain(layer)[0] == Timeout(tx, "F", False)
    tx2 = layer.send_request(request("OPTIONS", branch="z9hG4bKo2"), DEST, 100.0, fr_timer=2.0)
    layer.datagrams_to_send()
    assert times(run_until(layer, 200.0)) == [100.5, 101.5]
    assert drain(layer) == [Timeout(tx2, "F", False), TransactionTerminated(tx2)]


def test_non_invite_client_after_1xx_retransmits_every_t2() -> None:
    layer = TransactionLayer(RFC)
    data = request("OPTIONS")
    tx = layer.send_request(data, DEST, 0.0)
    layer.datagrams_to_send()
    assert times(run_until(layer, 1.6)) == [0.5, 1.5]
    layer.receive_response(resp(response(data, 100)), DEST, 2.0)
    assert state_of(tx) is State.PROCEEDING
    assert times(run_until(layer, 20.0)) == [3.5, 7.5, 11.5, 15.5, 19.5]
    ok = resp(response(data, 200, "OK"))
    layer.receive_response(ok, DEST, 20.0)
    events = drain(layer)
    assert [type(e) for e in events] == [ResponseReceived, ResponseReceived]
    assert state_of(tx) is State.COMPLETED
    assert run_until(layer, 30.0) == []
    assert drain(layer) == [TransactionTerminated(tx)]  # Timer K = T4 = 5 s
    assert layer.get_timer() is None


def test_invite_client_1xx_stops_retransmission_and_starts_fr_inv_timer() -> None:
    layer = TransactionLayer()
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    run_until(layer, 1.0)
    layer.receive_response(resp(response(data, 180, "Ringing")), DEST, 1.0)
    assert state_of(tx) is State.PROCEEDING and tx.armed_timers == {"C"}
    assert layer.get_timer() == 121.0
    layer.receive_response(resp(response(data, 180, "Ringing")), DEST, 50.0)
    assert layer.get_timer() == 170.0  # restart_fr_on_each_reply
    assert run_until(layer, 169.0) == []
    events = drain(layer)
    assert [(type(e), e.response.status) for e in events if isinstance(e, ResponseReceived)] == [
        (ResponseReceived, 180),
        (ResponseReceived, 180),
    ]
    assert len(events) == 2
    run_until(layer, 170.0)
    assert drain(layer) == [Timeout(tx, "C", True)]
    assert state_of(tx) is State.COMPLETED  # waits to ACK a 487 after the TU's CANCEL


def test_fr_inv_timer_restarts_only_on_increasing_replies_when_configured() -> None:
    layer = TransactionLayer(TimerConfig(restart_fr_on_each_reply=False))
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    layer.receive_response(resp(response(data, 100)), DEST, 1.0)
    assert layer.get_timer() == 121.0  # the first 1xx restarts
    layer.receive_response(resp(response(data, 180)), DEST, 2.0)
    assert layer.get_timer() == 122.0  # an increasing code >= 180 restarts
    layer.receive_response(resp(response(data, 180)), DEST, 3.0)
    assert layer.get_timer() == 122.0  # a repeated 180 does not
    layer.receive_response(resp(response(data, 183)), DEST, 4.0)
    assert layer.get_timer() == 124.0
    assert state_of(tx) is State.PROCEEDING


def test_max_inv_lifetime_bounds_fr_inv_timer() -> None:
    layer = TransactionLayer(TimerConfig(max_inv_lifetime=100.0))
    data = request()
    layer.send_request(data, DEST, 0.0)
    layer.receive_response(resp(response(data, 180)), DEST, 10.0)
    assert layer.get_timer() == 100.0


def test_ack_for_487_is_built_exactly_and_resent_on_retransmission() -> None:
    layer = TransactionLayer()
    data = request(routes=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"), cseq=7)
    tx = layer.send_request(data, DEST, 0.0)
    layer.datagrams_to_send()
    final = resp(response(data, 487, "Request Terminated", to_tag="be1"))
    layer.receive_response(final, DEST, 0.2)
    out = layer.datagrams_to_send()
    assert len(out) == 1 and out[0][1] == DEST
    assert out[0][0].split(b"\r\n") == [
        b"ACK sip:bob@example.com SIP/2.0",
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc1",
        b"Max-Forwards: 70",
        b"From: Alice <sip:alice@example.com>;tag=f1",
        b"To: <sip:bob@example.com>;tag=be1",
        b"Call-ID: cid-1",
        b"CSeq: 7 ACK",
        b"Route: <sip:p1.example.com;lr>",
        b"Route: <sip:p2.example.com;lr>",
        b"Content-Length: 0",
        b"",
        b"",
    ]
    assert drain(layer) == [ResponseReceived(final, DEST, tx)]
    assert state_of(tx) is State.COMPLETED and tx.last_status == 487
    again = resp(response(data, 487, "Request Terminated", to_tag="be1"))
    layer.receive_response(again, DEST, 1.0)
    assert layer.datagrams_to_send() == out
    assert drain(layer) == [Retransmission(again, DEST, tx)]
    assert run_until(layer, 5.19) == []  # Timer D = wt_timer 5 s after 0.2
    assert drain(layer) == []
    run_until(layer, 5.2)
    assert drain(layer) == [TransactionTerminated(tx)]


def test_ack_for_500_over_rfc_timer_d_is_32s_udp() -> None:
    layer = TransactionLayer(RFC)
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    layer.receive_response(resp(response(data, 500, "Oops")), DEST, 1.0)
    ack = layer.datagrams_to_send()[-1][0]
    assert ack.startswith(b"ACK sip:bob@example.com SIP/2.0\r\n")
    assert b"\r\nCSeq: 1 ACK\r\n" in ack and b"\r\nTo: <sip:bob@example.com>;tag=t9\r\n" in ack
    assert layer.get_timer() == 33.0
    run_until(layer, 33.0)
    assert state_of(tx) is State.TERMINATED


def test_2xx_goes_to_the_tu_without_ack_and_retransmissions_follow() -> None:
    layer = TransactionLayer()
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    layer.datagrams_to_send()
    ok = resp(response(data, 200, "OK"))
    layer.receive_response(ok, DEST, 0.1)
    assert layer.datagrams_to_send() == []
    assert state_of(tx) is State.ACCEPTED and tx.armed_timers == {"M"}
    ok2 = resp(response(data, 200, "OK"))
    layer.receive_response(ok2, DEST, 0.6)
    late = resp(response(data, 486, "Busy"))
    layer.receive_response(late, DEST, 0.7)  # a 3xx-6xx after a 2xx is discarded
    assert drain(layer) == [
        ResponseReceived(ok, DEST, tx),
        ResponseReceived(ok2, DEST, tx, retransmission=True),
    ]
    assert layer.datagrams_to_send() == []
    run_until(layer, 6.0)
    assert drain(layer) == [TransactionTerminated(tx)]


def test_fr_inv_timeout_after_1xx_keeps_branch_to_ack_the_487() -> None:
    layer = TransactionLayer(TimerConfig(fr_inv_timer=10.0))
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    layer.receive_response(resp(response(data, 180)), DEST, 1.0)
    drain(layer)
    layer.datagrams_to_send()
    run_until(layer, 11.0)
    assert drain(layer) == [Timeout(tx, "C", True)]
    assert state_of(tx) is State.COMPLETED and tx.timed_out
    cancel = tx.build_cancel()
    assert cancel.split(b"\r\n")[:7] == [
        b"CANCEL sip:bob@example.com SIP/2.0",
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc1",
        b"Max-Forwards: 70",
        b"From: Alice <sip:alice@example.com>;tag=f1",
        b"To: <sip:bob@example.com>",
        b"Call-ID: cid-1",
        b"CSeq: 1 CANCEL",
    ]
    term = resp(response(data, 487, "Request Terminated"))
    layer.receive_response(term, DEST, 11.5)
    assert layer.datagrams_to_send()[0][0].startswith(b"ACK ")
    assert drain(layer) == [ResponseReceived(term, DEST, tx, late=True)]
    run_until(layer, 17.0)
    assert drain(layer) == [TransactionTerminated(tx)]


def test_fr_timeout_without_1xx_keeps_branch_to_ack_a_late_final() -> None:
    # Timer B: the branch is kept for wt_timer, as tm keeps the cell; the backend's
    # late 486 is ACKed (again for each retransmission) and not left to the stateless
    # path, which relayed it upstream after the TU's 408 and never ACKed it
    layer = TransactionLayer(TimerConfig(fr_timer=10.0))
    data = request()
    tx = layer.send_request(data, DEST, 0.0)
    layer.datagrams_to_send()
    run_until(layer, 10.0)
    assert drain(layer) == [Timeout(tx, "B", False)]
    assert state_of(tx) is State.COMPLETED and tx.armed_timers == {"D"}
    busy = resp(response(data, 486, "Busy Here", to_tag="b1"))
    layer.receive_response(busy, DEST, 11.0)
    (ack,) = layer.datagrams_to_send()
    assert ack == (tx.build_ack(busy), DEST) and ack[0].startswith(b"ACK ")
    assert drain(layer) == [ResponseReceived(busy, DEST, tx, late=True)]
    again = resp(response(data, 486, "Busy Here", to_tag="b1"))
    layer.receive_response(again, DEST, 12.0)
    assert layer.datagrams_to_send() == [ack]
    assert drain(layer) == [Retransmission(again, DEST, tx)]
    run_until(layer, 15.0)  # Timer D: wt_timer, 5 s after the timeout
    assert drain(layer) == [TransactionTerminated(tx)] and len(layer) == 0
    # the RFC's Timer D is 0 on a reliable transport: the timeout ends the branch
    rfc = TransactionLayer(RFC)
    tcp = rfc.send_request(request(branch="z9hG4bKt1"), DEST, 0.0, reliable=True)
    run_until(rfc, 40.0)
    assert drain(rfc) == [Timeout(tcp, "B", False), TransactionTerminated(tcp)]


def test_response_matching_uses_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    inv = request()
    cancel = request("CANCEL")
    tx_inv = layer.send_request(inv, DEST, 0.0)
    tx_cancel = layer.send_request(cancel, DEST, 0.0)
    assert tx_cancel.kind is Kind.NON_INVITE_CLIENT
    ok_cancel = resp(response(cancel, 200, "OK"))
    assert layer.receive_response(ok_cancel, DEST, 0.1) is tx_cancel
    assert state_of(tx_inv) is State.CALLING
    stray = resp(response(request(branch="z9hG4bKother"), 200, "OK"))
    assert layer.receive_response(stray, DEST, 0.2) is None
    assert drain(layer) == [
        ResponseReceived(ok_cancel, DEST, tx_cancel),
        StrayResponse(stray, DEST),
    ]


def test_reliable_transport_has_no_retransmissions_and_rfc_d_is_zero() -> None:
    layer = TransactionLayer(RFC)
    data = request(transport="TCP")
    tx = layer.send_request(data, DEST, 0.0)
    assert tx.reliable and tx.armed_timers == {"B"}
    assert layer.get_timer() == 32.0
    layer.datagrams_to_send()
    layer.receive_response(resp(response(data, 503, "Unavailable")), DEST, 1.0)
    assert [d[:4] for d, _ in layer.datagrams_to_send()] == [b"ACK "]
    assert state_of(tx) is State.TERMINATED and len(layer) == 0
    assert [type(e) for e in drain(layer)] == [ResponseReceived, TransactionTerminated]
    # an explicit override wins over the Via transport
    tx2 = layer.send_request(request(branch="z9hG4bKu2"), DEST, 2.0, reliable=True)
    assert tx2.armed_timers == {"B"}


def test_send_request_rejects_what_cannot_be_a_client_transaction() -> None:
    layer = TransactionLayer(max_transactions=1)
    with pytest.raises(ValueError, match="ACK"):
        layer.send_request(request("ACK"), DEST, 0.0)
    with pytest.raises(ValueError, match="branch"):
        layer.send_request(request(branch=None), DEST, 0.0)
    with pytest.raises(ValueError, match="request"):
        layer.send_request(response(request(), 200), DEST, 0.0)
    layer.send_request(request(), DEST, 0.0)
    with pytest.raises(ValueError, match="exists"):
        layer.send_request(request(), DEST, 0.0)
    with pytest.raises(TransactionLimitError):
        layer.send_request(request(branch="z9hG4bKx2"), DEST, 0.0)


def test_send_request_built_by_the_tu_is_not_parsed_and_matches_the_same() -> None:
    # tm names the method and branch of a request it built: the layer trusts them
    # and the transaction behaves as one whose bytes it parsed
    layer = TransactionLayer()
    data = request()
    tx = layer.send_request(data, DEST, 0.0, reliable=False, built=("INVITE", "z9hG4bKabc1"))
    assert (tx.method, tx.branch, tx.kind, tx.reliable) == (
        "INVITE",
        "z9hG4bKabc1",
        Kind.INVITE_CLIENT,
        False,
    )
    assert tx.request.buf == data  # parsed only when asked for (CANCEL, ACK)
    assert drain(layer) == []
    assert layer.datagrams_to_send() == [(data, DEST)]
    assert layer.receive_response(resp(response(data, 180)), DEST, 0.1) is tx
    with pytest.raises(ValueError, match="ACK"):
        layer.send_request(data, DEST, 0.0, reliable=False, built=("ACK", "z9hG4bKa2"))
    with pytest.raises(ValueError, match="exists"):
        layer.send_request(data, DEST, 0.0, reliable=False, built=("INVITE", "z9hG4bKabc1"))


def test_client_transport_error_ends_the_transaction() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(request(), DEST, 0.0)
    layer.transport_error(tx, 0.1)
    assert drain(layer) == [TransportError(tx), TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.get_timer() is None
    layer.transport_error(tx, 0.2)  # already gone: nothing
    assert drain(layer) == []


# ---- server transactions ------------------------------------------------------------


def new_server(layer: TransactionLayer, data: bytes, now: float = 0.0) -> ServerTransaction:
    tx = layer.receive_request(req(data), SRC, now)
    assert tx is not None
    events = drain(layer)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].transaction is tx
    return tx


def test_invite_server_100_then_retransmission_resends_it() -> None:
    layer = TransactionLayer()
    data = request()
    tx = new_server(layer, data)
    assert tx.kind is Kind.INVITE_SERVER and state_of(tx) is State.PROCEEDING
    again = req(data)
    assert layer.receive_request(again, SRC, 0.3) is tx
    assert layer.datagrams_to_send() == []  # nothing sent yet, nothing to resend
    assert drain(layer) == [Retransmission(again, SRC, tx)]
    assert layer.send_trying(tx, 0.4)
    trying = layer.datagrams_to_send()
    assert trying[0][1] == SRC
    assert trying[0][0].split(b"\r\n") == [
        b"SIP/2.0 100 trying -- your call is important to us",
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc1",
        b"Via: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKdeep",
        b"From: Alice <sip:alice@example.com>;tag=f1",
        b"To: <sip:bob@example.com>",
        b"Call-ID: cid-1",
        b"CSeq: 1 INVITE",
        b"Content-Length: 0",
        b"",
        b"",
    ]
    assert not layer.send_trying(tx, 0.5)  # only once
    layer.receive_request(req(data), SRC, 1.0)
    assert layer.datagrams_to_send() == trying


def test_invite_server_final_retransmits_with_g_until_h() -> None:
    layer = TransactionLayer()
    data = request()
    tx = new_server(layer, data)
    busy = response(data, 486, "Busy Here")
    assert layer.send_response(tx, busy, 0.0)
    assert layer.datagrams_to_send() == [(busy, SRC)]
    assert state_of(tx) is State.COMPLETED
    sent = run_until(layer, 100.0)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5]
    assert {line for _, line in sent} == {b"SIP/2.0 486 Busy Here"}
    assert drain(layer) == [Timeout(tx, "H", True), TransactionTerminated(tx)]
    assert not layer.send_response(tx, busy, 31.0)


def test_invite_server_rfc_timer_h_is_64_t1() -> None:
    layer = TransactionLayer(RFC)
    tx = new_server(layer, request())
    layer.send_response(tx, response(request(), 404, "Not Found"), 0.0)
    layer.datagrams_to_send()
    sent = run_until(layer, 100.0)
    assert times(sent)[-1] == 31.5 and len(sent) == 10
    assert drain(layer)[0] == Timeout(tx, "H", True)


def test_ack_stops_g_and_h_then_timer_i_ends_the_transaction() -> None:
    layer = TransactionLayer(RFC)
    data = request()
    tx = new_server(layer, data)
    layer.send_response(tx, response(data, 603, "Decline"), 0.0)
    layer.datagrams_to_send()
    assert times(run_until(layer, 2.0)) == [0.5, 1.5]
    ack = req(request("ACK", to_tag="t9"))
    assert layer.receive_request(ack, SRC, 2.0) is tx
    assert state_of(tx) is State.CONFIRMED and tx.armed_timers == {"I"}
    ack2 = req(request("ACK", to_tag="t9"))
    layer.receive_request(ack2, SRC, 2.5)
    # a retransmitted INVITE in Confirmed is absorbed with no resend
    layer.receive_request(req(data), SRC, 3.0)
    assert layer.datagrams_to_send() == [(response(data, 603, "Decline"), SRC)]
    events = drain(layer)
    assert events[:2] == [AckReceived(ack, SRC, tx), Retransmission(ack2, SRC, tx)]
    assert len(events) == 3 and isinstance(events[2], Retransmission)
    assert run_until(layer, 7.0) == []  # Timer I = T4
    assert state_of(tx) is State.TERMINATED and len(layer) == 0


def test_invite_server_2xx_accepted_resends_2xx_and_ack_passes_through() -> None:
    layer = TransactionLayer()
    data = request()
    tx = new_server(layer, data)
    ok = response(data, 200, "OK")
    layer.send_response(tx, ok, 0.0)
    assert state_of(tx) is State.ACCEPTED and tx.armed_timers == {"L"}
    layer.datagrams_to_send()
    layer.receive_request(req(data), SRC, 1.0)
    assert layer.datagrams_to_send() == [(ok, SRC)]
    ack = req(request("ACK", branch="z9hG4bKnewack", to_tag="t9"))
    assert layer.receive_request(ack, SRC, 1.1) is None
    events = drain(layer)
    assert events[-1] == RequestReceived(ack, SRC, None)
    assert layer.send_response(tx, ok, 1.2)  # forked 2xx keep flowing (RFC 6026)
    assert not layer.send_response(tx, response(data, 486), 1.3)
    run_until(layer, 6.0)
    assert drain(layer) == [TransactionTerminated(tx)]


def test_non_invite_server_absorbs_and_j_ends_it() -> None:
    layer = TransactionLayer(RFC)
    data = request("REGISTER")
    tx = new_server(layer, data)
    assert tx.kind is Kind.NON_INVITE_SERVER and state_of(tx) is State.TRYING
    layer.receive_request(req(data), SRC, 0.1)
    assert layer.datagrams_to_send() == []  # Trying: absorbed, nothing to resend
    ok = response(data, 200, "OK")
    assert layer.send_response(tx, ok, 0.2)
    assert not layer.send_response(tx, ok, 0.3)
    assert state_of(tx) is State.COMPLETED
    layer.datagrams_to_send()
    layer.receive_request(req(data), SRC, 1.0)
    assert layer.datagrams_to_send() == [(ok, SRC)]
    assert run_until(layer, 32.19) == []  # no retransmission of non-INVITE finals
    assert state_of(tx) is State.COMPLETED
    run_until(layer, 32.2)
    assert state_of(tx) is State.TERMINATED  # Timer J = 64*T1 after 0.2 s


def test_non_invite_server_reliable_ends_at_once() -> None:
    layer = TransactionLayer(RFC)
    data = request("OPTIONS", transport="TCP")
    tx = new_server(layer, data)
    layer.send_response(tx, response(data, 200, "OK"), 0.0)
    assert state_of(tx) is State.TERMINATED and len(layer) == 0
    assert drain(layer) == [TransactionTerminated(tx)]


def test_invite_server_reliable_has_h_but_no_g() -> None:
    layer = TransactionLayer()
    data = request(transport="TCP")
    tx = new_server(layer, data)
    layer.send_response(tx, response(data, 486), 0.0)
    assert tx.armed_timers == {"H"}


def test_cancel_has_its_own_transaction_and_finds_its_invite() -> None:
    layer = TransactionLayer()
    inv = new_server(layer, request())
    cancel = req(request("CANCEL"))
    assert layer.find_invite_for_cancel(cancel) is inv
    ctx = layer.receive_request(cancel, SRC, 0.5)
    assert ctx is not None and ctx is not inv and ctx.kind is Kind.NON_INVITE_SERVER
    assert layer.find_invite_for_cancel(req(request("CANCEL", branch="z9hG4bKzzz"))) is None
    # a different sent-by is another transaction (§17.2.3)
    assert layer.find_invite_for_cancel(req(request("CANCEL", host="192.0.2.99"))) is None


def test_requests_reusing_a_branch_are_told_apart_by_call_id_and_cseq() -> None:
    # Kamailio looks a request up in the hash bucket of its Call-ID and CSeq number:
    # two INVITEs with one branch but two Call-IDs (a UA or a SIPp scenario with a
    # fixed branch, a fuzzer) are two transactions and both are relayed; matching on
    # branch, sent-by and method alone absorbed the second as a retransmission
    layer = TransactionLayer()
    first = new_server(layer, request(call_id="cid-1"))
    second = layer.receive_request(req(request(call_id="cid-2")), SRC, 0.1)
    assert second is not None and second is not first
    third = layer.receive_request(req(request(call_id="cid-1", cseq=2)), SRC, 0.2)
    assert third is not None and third not in (first, second)
    # a retransmission repeats them all; CANCEL and a negative reply's ACK carry the
    # INVITE's Call-ID and CSeq number
    assert layer.match_request(req(request(call_id="cid-2"))) is second
    assert layer.find_invite_for_cancel(req(request("CANCEL", call_id="cid-2"))) is second
    layer.send_response(first, response(request(call_id="cid-1"), 486, "Busy"), 0.3)
    ack = req(request("ACK", call_id="cid-1", to_tag="t9"))
    assert layer.receive_request(ack, SRC, 0.4) is first
    assert state_of(first) is State.CONFIRMED
    assert state_of(second) is not State.CONFIRMED


def test_rfc2543_fallback_matching() -> None:
    layer = TransactionLayer()
    data = request(branch=None)
    tx = new_server(layer, data)
    assert layer.match_request(req(data)) is tx
    assert layer.match_request(req(request(branch=None, from_tag="other"))) is None
    assert layer.match_request(req(request(branch=None, cseq=2))) is None
    assert layer.match_request(req(request(branch=None, uri="sip:carol@example.com"))) is None
    assert layer.match_request(req(request(branch="1234"))) is None  # other top Via
    cancel = req(request("CANCEL", branch=None))
    assert layer.find_invite_for_cancel(cancel) is tx
    # the ACK: no match before a final; then the To tag must be the response's
    ack = req(request("ACK", branch=None, to_tag="t9"))
    assert layer.match_request(ack) is None
    layer.send_response(tx, response(data, 486, "Busy", to_tag="t9"), 0.0)
    assert layer.match_request(req(request("ACK", branch=None, to_tag="zz"))) is None
    assert layer.receive_request(ack, SRC, 1.0) is tx
    assert state_of(tx) is State.CONFIRMED
    layer.handle_timer(100.0)
    assert len(layer) == 0


def test_server_table_is_bounded() -> None:
    layer = TransactionLayer(max_transactions=2)
    new_server(layer, request(branch="z9hG4bK1"))
    new_server(layer, request(branch="z9hG4bK2"))
    third = req(request(branch="z9hG4bK3"))
    assert layer.receive_request(third, SRC, 0.0) is None
    assert drain(layer) == [TableFull(third, SRC)]
    assert len(layer.server_transactions) == 2


def test_message_bytes_held_are_bounded() -> None:
    # a flood of large requests to a backend that never answers must not hold more
    # than max_bytes: Kamailio's shared memory bounds its tm the same way
    first, second = request(branch="z9hG4bK1"), request(branch="z9hG4bK2")
    layer = TransactionLayer(max_bytes=len(first) + len(second) - 1)
    tx = new_server(layer, first)
    assert layer.bytes == len(first)
    too_many = req(second)
    assert layer.receive_request(too_many, SRC, 0.0) is None
    assert drain(layer) == [TableFull(too_many, SRC)]
    with pytest.raises(TransactionLimitError, match="max_bytes"):
        layer.send_request(request(branch="z9hG4bKc1"), DEST, 0.0)
    # what a transaction held is given back when it ends
    layer.send_response(tx, response(first, 486, "Busy", to_tag="t1"), 0.0)
    layer.handle_timer(100.0)
    assert len(layer) == 0 and layer.bytes == 0
    client = layer.send_request(request(branch="z9hG4bKc2"), DEST, 100.0)
    assert layer.bytes == len(request(branch="z9hG4bKc2"))
    layer.handle_timer(1000.0)  # timer B: the client transaction times out
    assert not client.terminated and layer.bytes == len(request(branch="z9hG4bKc2"))
    layer.handle_timer(1010.0)  # Timer D: it waited for late replies, now it ends
    assert client.terminated and layer.bytes == 0


def test_unmatchable_and_uncreated_requests_go_to_the_tu() -> None:
    layer = TransactionLayer()
    no_via = req(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert layer.receive_request(no_via, SRC, 0.0) is None
    lone_ack = req(request("ACK"))
    assert layer.receive_request(lone_ack, SRC, 0.0) is None
    opt = req(request("OPTIONS"))
    assert layer.receive_request(opt, SRC, 0.0, create=False) is None
    assert drain(layer) == [
        RequestReceived(no_via, SRC, None),
        RequestReceived(lone_ack, SRC, None),
        RequestReceived(opt, SRC, None),
    ]
    assert layer.create_server_transaction(opt, SRC, 0.1) is not None
    assert len(layer) == 1


def test_send_response_rejects_non_responses() -> None:
    layer = TransactionLayer()
    tx = new_server(layer, request())
    with pytest.raises(ValueError, match="status line"):
        layer.send_response(tx, b"INVITE sip:x SIP/2.0\r\n\r\n", 0.0)
    with pytest.raises(ValueError, match="out of range"):
        layer.send_response(tx, b"SIP/2.0 099 Weird\r\n\r\n", 0.0)


def test_reply_dest_can_be_changed_by_the_tu() -> None:
    layer = TransactionLayer()
    tx = new_server(layer, request("OPTIONS"))
    tx.reply_dest = ("192.0.2.1", 40000)
    layer.send_response(tx, response(request("OPTIONS"), 200, "OK"), 0.0)
    assert layer.datagrams_to_send()[0][1] == ("192.0.2.1", 40000)


# ---- random interleavings -------------------------------------------------------------

BRANCHES = ["z9hG4bKa", "z9hG4bKb", None]
METHODS = ["INVITE", "OPTIONS", "ACK", "CANCEL", "BYE"]
STATUSES = [100, 180, 200, 404, 487, 503]

op = st.one_of(
    st.tuples(st.just("recv_req"), st.sampled_from(METHODS), st.sampled_from(BRANCHES)),
    st.tuples(
        st.just("send_req"), st.sampled_from([*METHODS[:2], "BYE"]), st.sampled_from(BRANCHES)
    ),
    st.tuples(st.just("recv_resp"), st.sampled_from(STATUSES), st.sampled_from(BRANCHES)),
    st.tuples(st.just("send_resp"), st.sampled_from(STATUSES), st.integers(0, 5)),
    st.tuples(st.just("timer"), st.floats(0.0, 40.0), st.just(None)),
    st.tuples(st.just("error"), st.integers(0, 5), st.just(None)),
)


def check_consistent(layer: TransactionLayer) -> None:
    for tx in [*layer.server_transactions, *layer.client_transactions]:
        assert state_of(tx) is not State.TERMINATED
        # every transaction that is not waiting for its TU has a timer that ends it
        waiting_for_tu = isinstance(tx, ServerTransaction) and tx.state in (
            State.TRYING,
            State.PROCEEDING,
        )
        if not waiting_for_tu:
            assert tx.armed_timers & set("BCDFHIJKLM"), tx
    assert len(layer.server_transactions) + len(layer.client_transactions) == len(layer)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(op, max_size=40), st.sampled_from([TimerConfig(), RFC]))
def test_random_interleavings_never_raise_and_stay_consistent(
    ops: list[tuple[str, object, object]], config: TimerConfig
) -> None:
    layer = TransactionLayer(config, max_transactions=3)
    now = 0.0
    seen: list[ServerTransaction | ClientTransaction] = []
    for kind, a, b in ops:
        branch = b if isinstance(b, str) or b is None else None
        if kind == "recv_req":
            got = layer.receive_request(req(request(str(a), branch=branch, to_tag="t9")), SRC, now)
            if got is not None:
                seen.append(got)
        elif kind == "send_req":
            with contextlib.suppress(ValueError, TransactionLimitError):
                seen.append(
                    layer.send_request(request(str(a), branch=branch or "z9hG4bKc"), DEST, now)
                )
        elif kind == "recv_resp":
            data = request("INVITE", branch=branch or "z9hG4bKc")
            layer.receive_response(resp(response(data, int(str(a)))), DEST, now)
        elif kind == "send_resp" and seen:
            target = seen[int(str(b)) % len(seen)]
            if isinstance(target, ServerTransaction):
                layer.send_response(target, response(target.request.buf, int(str(a))), now)
        elif kind == "timer":
            now += float(str(a))
            layer.handle_timer(now)
        elif kind == "error" and seen:
            layer.transport_error(seen[int(str(a)) % len(seen)], now)
        layer.datagrams_to_send()
        drain(layer)
        check_consistent(layer)
    for done in seen:
        if state_of(done) is State.TERMINATED:
            assert done.armed_timers == frozenset()
    # given time, everything not waiting for its TU ends
    layer.handle_timer(now + 1000.0)
    layer.handle_timer(now + 2000.0)
    assert layer.client_transactions == []
