"""Throughput of the sans-IO SIP parser and splicing serializer (kcc_runtime.sip).

    .venv/bin/python bench/sip_parser_bench.py [--runs 7] [--number 20000]

Prints, for a typical INVITE (SIPp ``uac`` shape, SDP body) and a 200 OK:

- ``parse``: ``parse_message(datagram)`` (start line, header index, Content-Length);
- ``parse+edit+serialize``: what a stateless proxy does per message: parse, read the
  top Via, add a Via (INVITE) or remove the top Via (200 OK), ``serialize()``;
- ``parse+validate``: parse plus ``validate()`` (every header a proxy relies on).

Each figure is the median of ``--runs`` runs of ``--number`` iterations, in messages per
second on one core. The issue's goal is at least 150,000 INVITE parses/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from kcc_runtime.sip import parse_message

SDP = (
    b"v=0\r\n"
    b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0;rport\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
    b"To: service <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: sip:sipp@127.0.0.1:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"User-Agent: SIPp\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(SDP)
) + SDP

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKdeadbeef.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0;rport=5061;received=127.0.0.1\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
    b"To: service <sip:service@127.0.0.1:5060>;tag=67890SIPpTag011\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:127.0.0.1:5062;transport=UDP>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(SDP)
) + SDP


def forward_invite() -> bytes:
    msg = parse_message(INVITE)
    _ = msg.via
    msg.insert_via(b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKdeadbeef.0")
    return msg.serialize()


def forward_200() -> bytes:
    msg = parse_message(OK_200)
    _ = msg.via
    msg.remove_top_via()
    return msg.serialize()


def validate(data: bytes) -> Callable[[], None]:
    def run() -> None:
        parse_message(data).validate()

    return run


def rates(fn: Callable[[], object], number: int, runs: int) -> list[float]:
    """Calls per second of each of ``runs`` runs of ``number`` calls."""
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        results.append(number / (time.perf_counter() - start))
    return results


def rate(fn: Callable[[], object], number: int, runs: int) -> float:
    """Median calls per second over ``runs`` runs of ``number`` calls."""
    return statistics.median(rates(fn, number, runs))


#: (name, one iteration) of each figure, in the order they are printed
CASES: list[tuple[str, Callable[[], object]]] = [
    ("INVITE parse", lambda: parse_message(INVITE)),
    ("INVITE parse+add Via+serialize", forward_invite),
    ("INVITE parse+validate", validate(INVITE)),
    ("200 OK parse", lambda: parse_message(OK_200)),
    ("200 OK parse+remove Via+serialize", forward_200),
    ("200 OK parse+validate", validate(OK_200)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    print(f"kcc_runtime.sip, median of {args.runs} runs x {args.number} messages, one core")
    for name, fn in CASES:
        per_s = rate(fn, args.number, args.runs)
        print(f"  {name:36} {per_s:>10,.0f} /s  {1e6 / per_s:6.2f} µs")


if __name__ == "__main__":
    main()
