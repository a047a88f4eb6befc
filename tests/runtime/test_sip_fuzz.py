"""Nothing crashes: mutated torture messages only ever raise ``SipParseError``.

Hypothesis mutates the RFC 4475/5118 corpus (truncation, byte flips, duplicated header
lines, huge or odd Content-Length values, inserted CR/LF/NUL/quote bytes) and drives
every reader, ``validate()``, every edit and ``serialize()`` on what parses, plus the
stream framer on random chunkings. Whatever is serialized must parse again.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kcc_runtime.sip import Request, SipParseError, StreamFramer, parse_message
from kcc_runtime.sip.message import Message

from .corpus import CASES

SEEDS = [c.data for c in CASES]
SPECIAL = [b"\r", b"\n", b"\x00", b'"', b"<", b">", b",", b";", b":", b" ", b"\\", b"%", b"["]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "dup", "length", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "dup":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            if end >= 0:
                data[start:start] = data[start : end + 1]
        elif kind == "length":
            value = draw(
                st.sampled_from(
                    [b"99999999999999999999999", b"-1", b"0", b"1" * 5000, b"4294967296", b"x"]
                )
            )
            data = bytearray(
                bytes(data).replace(b"Content-Length: ", b"Content-Length: " + value + b"\r\nX: ")
            )
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(SPECIAL))
        else:
            del data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


def attempt(fn: Callable[[], object]) -> None:
    try:
        fn()
    except SipParseError as exc:
        assert 400 <= exc.status <= 599 and exc.reason


def exercise(msg: Message) -> None:
    readers: list[Callable[[], object]] = [
        lambda: msg.vias,
        lambda: msg.via,
        lambda: msg.from_ and msg.from_.uri,
        lambda: msg.to and msg.to.uri,
        lambda: msg.call_id,
        lambda: msg.cseq,
        lambda: msg.max_forwards,
        lambda: [c.uri for c in msg.contacts],
        lambda: [r.uri for r in msg.routes],
        lambda: msg.record_routes,
        lambda: msg.content_length,
        lambda: msg.content_type,
        lambda: msg.header_values("Via"),
        msg.validate,
    ]
    if isinstance(msg, Request):
        readers.append(lambda: msg.uri)
    valid = True
    for reader in readers:
        try:
            reader()
        except SipParseError as exc:
            assert 400 <= exc.status <= 599 and exc.reason
            valid = False
    attempt(lambda: msg.set_via_received("192.0.2.1", 5060))
    attempt(msg.remove_top_via)
    attempt(lambda: msg.insert_via("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKfuzz"))
    attempt(lambda: msg.add_record_route("<sip:192.0.2.9;lr>"))
    attempt(lambda: msg.remove_header("Contact"))
    out = msg.serialize()
    if valid:  # a message that validated is forwarded as one that parses again
        again = parse_message(out)
        assert again.body == msg.body
        assert again.via is not None and again.via.branch == "z9hG4bKfuzz"
    else:
        attempt(lambda: parse_message(out))


#: found by this test: a bare LF ends the Content-Type line of a CRLF message; once the
#: Contact after it is removed, the header section must still end at the empty line
BARE_LF_BEFORE_REMOVED_HEADER = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
    b"Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\r\nCSeq: 35 INVITE\r\n"
    b"From: sip:user@example.com;tag=11141343\r\nTo: sip:user@example.edu;tag=2229\r\n"
    b"Content-Length: 3\r\nContent-Type: application/sdp\x00\n"
    b"Contact: <sip:user@host28.example.com>\r\n\r\nv=0"
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
@example(BARE_LF_BEFORE_REMOVED_HEADER)
def test_mutated_datagrams_never_crash(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert exc.status in (400, 505)
        return
    exercise(msg)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.lists(st.integers(1, 200), min_size=1, max_size=20))
def test_mutated_streams_never_crash(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer()
    pos = 0
    chunks = []
    for size in cuts:
        chunks.append(data[pos : pos + size])
        pos += size
    chunks.append(data[pos:])
    try:
        for chunk in chunks:
            for msg in framer.feed(chunk):
                exercise(msg)
    except SipParseError as exc:
        assert exc.status in (400, 413, 505)
        assert framer.broken


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    exercise(msg)
