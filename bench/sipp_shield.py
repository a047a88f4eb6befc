"""A one-way UDP shield in front of a SIPp backend, for soaks that relay fuzz to it.

    python bench/sipp_shield.py --listen PORT --to SIPP_PORT

Forwards every datagram that reaches 127.0.0.1:``PORT`` to the SIPp backend on
127.0.0.1:``SIPP_PORT``, except those SIPp cannot take: datagrams of
:data:`SIPP_SAFE_SIZE` bytes or more are dropped and counted.

Why: SIPp 3.6 copies a header's values (every line of that name, joined by ", ") into
a static buffer of ``MAX_HEADER_LEN * 10`` = 20,490 bytes without checking the length
(``get_header`` in its ``sip_parser.cpp``), and its scenarios look up Via, From, To,
Call-ID, CSeq and Record-Route in each message they take. A header longer than that
overwrites the memory after the buffer; the backend dies then or later with SIGSEGV.
The soak's fuzz has such messages (a Via or Route list of thousands of elements, a
header padded to 65,000 bytes), and a balancer relays every INVITE it can parse:
Kamailio 5.6 and kcc alike killed a SIPp backend that way, and the calls balanced to
it failed, which said nothing about the proxy. A header's joined values are never
longer than the datagram, so a datagram under 20,490 bytes cannot overflow it.

Measured with the soak's fuzz sent straight to a SIPp UAS (``uas_rr.xml``), requests
only, 5,000 a second: with no cap it died with SIGSEGV after 10,500 to 23,500
requests (seeds 1, 7 and 9); with this cap it took all of some 118,000 requests of
each of seeds 1, 2, 3, 7 and 9 and lived. Fuzzed responses kill SIPp at any size (a
307-byte 180 with bad UTF-8 aborted it: ``stack smashing detected``), but a UAS
behind a proxy is sent requests only.

The proxy still receives, parses and relays every fuzzed datagram; only the backend is
spared. The shield is one-way: the backend runs with ``-rsa`` naming the proxy, so its
replies go straight to the proxy, and the ACK and BYE of a call go to the backend's own
port (its Contact). On SIGTERM or SIGUSR1 it prints its counts and exits 0:
``shield PORT -> SIPP_PORT: forwarded N, dropped M of 20490 bytes or more, K send
errors`` (a send error is a datagram lost to a full buffer, as UDP may lose it).
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

#: SIPp's ``MAX_HEADER_LEN * 10``: the size of the buffer ``get_header`` fills
SIPP_SAFE_SIZE = 2049 * 10
#: the socket's receive buffer: a burst of fuzz must not be lost here
RCVBUF = 4 * 1024 * 1024


def shield_argv(listen: int, to: int) -> list[str]:
    """The command that runs a shield from 127.0.0.1:``listen`` to SIPp on ``to``."""
    return [sys.executable, str(Path(__file__).resolve()), "--listen", str(listen), "--to", str(to)]


def shield(listen: int, to: int, stop: threading.Event) -> tuple[int, int, int]:
    """Forward from 127.0.0.1:``listen`` to 127.0.0.1:``to`` until ``stop`` is set
    (looked at every 0.2 s at least); returns (forwarded, dropped for their size, lost
    to send errors)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("127.0.0.1", listen))
    sock.settimeout(0.2)
    backend = ("127.0.0.1", to)
    buffer = bytearray(65_536)
    view = memoryview(buffer)
    forwarded = dropped = errors = 0
    try:
        while not stop.is_set():
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                continue
            if size >= SIPP_SAFE_SIZE:
                dropped += 1
                continue
            try:
                sock.sendto(view[:size], backend)
            except OSError:  # a full buffer on SIPp's side: UDP loses it, so may we
                errors += 1
            else:
                forwarded += 1
    finally:
        sock.close()
    return forwarded, dropped, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="the port the proxy sends to")
    parser.add_argument("--to", type=int, required=True, help="the SIPp backend's port")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    forwarded, dropped, errors = shield(args.listen, args.to, stop)
    print(
        f"shield {args.listen} -> {args.to}: forwarded {forwarded}, dropped {dropped} of"
        f" {SIPP_SAFE_SIZE} bytes or more, {errors} send errors",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
