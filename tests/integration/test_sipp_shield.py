"""The shield the soaks put in front of their SIPp backends (``bench/sipp_shield.py``):
what SIPp can take passes both ways, each proxy socket's answers coming back to it; a
request too large for SIPp is answered 513 by the shield and never reaches SIPp, and
neither does the ACK of that 513. Loopback sockets only, no SIPp: plain sockets stand
in for the backend and for two workers of the proxy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.sipp_shield import SIPP_SAFE_SIZE, TAG, shield, too_large_reply
from tests.integration.conftest import free_udp_ports, udp_bound, wait_until


def invite(size: int = 0, *, to: str = "To: <sip:uas@127.0.0.1>") -> bytes:
    """An INVITE as the proxy relays it (its Via on top), padded by a long Via list to
    at least ``size`` bytes."""
    head = [
        "INVITE sip:uas@127.0.0.1:5081 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport=5070",
        "Record-Route: <sip:127.0.0.1:5060;lr>",
        "From: <sip:caller@127.0.0.1>;tag=1",
        to,
        "i: fuzz-1@127.0.0.1",
        "CSeq: 1 INVITE",
        "Max-Forwards: 69",
    ]
    text = "\r\n".join(head)
    if len(text) < size:
        items = (size - len(text)) // 48 + 1
        text += "\r\nv: " + ",".join(
            f"SIP/2.0/UDP 192.0.2.{i % 250}:5060;branch=z9hG4bK{i:020d}" for i in range(items)
        )
    return (text + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_the_513_copies_via_from_to_call_id_and_cseq_in_order() -> None:
    request = invite(SIPP_SAFE_SIZE)
    reply = too_large_reply(request)
    assert reply is not None
    lines = reply.split(b"\r\n")
    assert lines[0] == b"SIP/2.0 513 Message Too Large"
    vias = [line for line in lines if line.startswith((b"Via:", b"v:"))]
    assert vias == [line for line in request.split(b"\r\n") if line.startswith((b"Via:", b"v:"))]
    assert b"From: <sip:caller@127.0.0.1>;tag=1" in lines
    assert b"To: <sip:uas@127.0.0.1>;tag=" + TAG in lines
    assert b"i: fuzz-1@127.0.0.1" in lines
    assert b"CSeq: 1 INVITE" in lines
    assert not [line for line in lines if line.startswith((b"Record-Route", b"Max-Forwards"))]
    assert reply.endswith(b"Content-Length: 0\r\n\r\n")


def test_a_to_tag_is_kept_and_folded_lines_stay_whole() -> None:
    request = invite(to="To: <sip:uas@127.0.0.1>\r\n ;Tag = abc").replace(
        b"CSeq: 1 INVITE", b"CSeq: 1\r\n\tINVITE"
    )
    reply = too_large_reply(request)
    assert reply is not None
    assert b"To: <sip:uas@127.0.0.1>\r\n ;Tag = abc\r\n" in reply
    assert TAG not in reply
    assert b"CSeq: 1\r\n\tINVITE\r\n" in reply


def test_a_request_with_bare_lf_line_ends_is_answered_in_crlf() -> None:
    request = invite(SIPP_SAFE_SIZE)
    reply = too_large_reply(request.replace(b"\r\n", b"\n"))
    assert reply is not None
    assert reply == too_large_reply(request)


@pytest.mark.parametrize(
    "message",
    [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n",
        invite().replace(b"INVITE sip:", b"ACK sip:", 1).replace(b"1 INVITE", b"1 ACK"),
        invite().replace(b"CSeq: 1 INVITE\r\n", b""),
        invite().replace(b"\r\n\r\n", b"\r\n"),
    ],
    ids=["response", "ACK", "no CSeq", "no end of headers"],
)
def test_what_cannot_be_answered_gets_no_513(message: bytes) -> None:
    assert too_large_reply(message) is None


@dataclass
class Lab:
    port: int  # the shield's
    backend: socket.socket  # stands for SIPp
    caller: socket.socket  # stands for a proxy worker's socket
    other: socket.socket  # and for another's

    def send(self, data: bytes, sock: socket.socket | None = None) -> None:
        (sock or self.caller).sendto(data, ("127.0.0.1", self.port))


def received_from(sock: socket.socket, timeout: float) -> tuple[bytes, tuple[str, int]] | None:
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(65_536)
    except TimeoutError:
        return None


def received(sock: socket.socket, timeout: float) -> bytes | None:
    got = received_from(sock, timeout)
    return None if got is None else got[0]


@pytest.fixture
def lab() -> Iterator[Lab]:
    listen, to = free_udp_ports(2)
    backend = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    backend.bind(("127.0.0.1", to))
    caller, other = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    caller.bind(("127.0.0.1", 0))
    other.bind(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=shield, args=(listen, to, stop))
    thread.start()
    try:
        assert wait_until(lambda: udp_bound(listen), 10.0), "the shield did not bind"
        yield Lab(listen, backend, caller, other)
    finally:
        stop.set()
        thread.join(timeout=10)
        for sock in (backend, caller, other):
            sock.close()
    assert not thread.is_alive(), "the shield did not stop"


def test_sipp_answers_each_proxy_socket_through_the_shield(lab: Lab) -> None:
    answers = []
    for sock, call in ((lab.caller, b"fuzz-1@"), (lab.other, b"fuzz-2@")):
        request = invite(2_000).replace(b"fuzz-1@", call)
        lab.send(request, sock)
        got = received_from(lab.backend, 5.0)
        assert got is not None and got[0] == request
        answers.append((sock, got[1], b"SIP/2.0 180 Ringing\r\ni: " + call + b"\r\n\r\n"))
    assert answers[0][1] != answers[1][1], "one socket toward SIPp for both proxy sockets"
    for sock, shield_side, answer in reversed(answers):
        lab.backend.sendto(answer, shield_side)
        assert received_from(sock, 5.0) == (answer, ("127.0.0.1", lab.port))


def test_small_requests_pass_and_large_ones_are_answered_without_reaching_sipp(lab: Lab) -> None:
    small = invite(2_000)
    lab.send(small)
    assert received(lab.backend, 5.0) == small

    large = invite(SIPP_SAFE_SIZE)
    lab.send(large)
    assert received(lab.caller, 5.0) == too_large_reply(large)
    ack = b"ACK sip:uas@127.0.0.1:5081 SIP/2.0\r\nTo: <sip:uas@127.0.0.1>;tag=" + TAG + b"\r\n\r\n"
    lab.send(ack)
    lab.send(b"SIP/2.0 180 Ringing\r\nX-Pad: " + b"a" * SIPP_SAFE_SIZE + b"\r\n\r\n")
    last = invite(1_000).replace(b"fuzz-1@", b"fuzz-2@")
    lab.send(last)
    # the datagrams of one socket arrive in order: the ACK and the large response
    # came before ``last`` and were held back
    assert received(lab.backend, 5.0) == last
    assert received(lab.backend, 0.5) is None
    assert received(lab.caller, 0.5) is None
