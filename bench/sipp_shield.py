"""A UDP shield in front of a SIPp backend, for soaks that relay fuzz to it.

    python bench/sipp_shield.py --listen PORT --to SIPP_PORT

Passes the datagrams between a proxy that sends to 127.0.0.1:``PORT`` and the SIPp
backend on 127.0.0.1:``SIPP_PORT``, both ways, except those SIPp cannot take: a
request of :data:`SIPP_SAFE_SIZE` bytes or more is answered ``513 Message Too Large``
by the shield itself, as a UAS that cannot take it would (RFC 3261 §21.5.14), and the
ACK of that answer is not passed on; anything else that large is dropped.

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

Why answer rather than drop: dropped, each such request would keep its transaction
in the proxy for ``fr_timer`` (30 s), retransmitted all the while, where SIPp used to
answer it at once, and the soak would measure a different load.

The proxy still receives, parses and relays every fuzzed datagram; only the backend is
spared. Both ways pass through the shield, and each proxy address gets a socket of its
own toward SIPp (:func:`shield`): SIPp answers to where a request came from, and a
proxy with several workers sends each transaction from the socket of the worker
whose transaction it is. The ACK and BYE of a call go straight to SIPp's own port
(its Contact), and SIPp answers the BYE straight back. On SIGTERM or SIGUSR1 the
shield prints its counts (:meth:`Counts.report`) and exits 0.
"""

from __future__ import annotations

import argparse
import re
import selectors
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: SIPp's ``MAX_HEADER_LEN * 10``: the size of the buffer ``get_header`` fills
SIPP_SAFE_SIZE = 2049 * 10
#: the socket's receive buffer: a burst of fuzz must not be lost here
RCVBUF = 4 * 1024 * 1024
#: the proxy addresses (its workers' sockets) the shield keeps a socket toward SIPp for
MAX_PEERS = 64
#: the To tag of the shield's 513s, by which their ACKs are recognised
TAG = b"kcc-sipp-shield"

#: the header lines a response copies from its request (RFC 3261 §8.2.6.2), by their
#: long and compact names
_COPIED = {
    b"via": b"via",
    b"v": b"via",
    b"from": b"from",
    b"f": b"from",
    b"to": b"to",
    b"t": b"to",
    b"call-id": b"call-id",
    b"i": b"call-id",
    b"cseq": b"cseq",
}
_TAG_PARAM = re.compile(rb";[ \t]*tag[ \t]*=", re.IGNORECASE)
#: lines end in CRLF, or in a bare LF, which proxies take and relay as they are
_LINE_END = re.compile(rb"\r?\n")


def too_large_reply(request: bytes) -> bytes | None:
    """``513 Message Too Large`` for ``request``: its Via, From, To, Call-ID and CSeq
    lines copied in order (folded lines kept whole, every line ended by CRLF),
    :data:`TAG` added to a To without a tag. None for a response, an ACK (never
    answered) or a request missing one of those headers (dropped unanswered, as a UAS
    drops what it cannot parse)."""
    if request.startswith((b"SIP/", b"ACK ")):
        return None
    lines = _LINE_END.split(request)[:-1]  # the last is what follows the last line end
    if b"" not in lines:  # no empty line: the header section does not end
        return None
    fields: list[bytes] = []
    for line in lines[1 : lines.index(b"")]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    copied: list[bytes] = []
    found: set[bytes] = set()
    for field in fields:
        name, colon, _ = field.partition(b":")
        kind = _COPIED.get(name.strip().lower())
        if not colon or kind is None:
            continue
        untagged = kind == b"to" and _TAG_PARAM.search(field) is None
        copied.append(field + b";tag=" + TAG if untagged else field)
        found.add(kind)
    if len(found) < len(set(_COPIED.values())):
        return None
    reply = [b"SIP/2.0 513 Message Too Large", *copied, b"Content-Length: 0", b"", b""]
    return b"\r\n".join(reply)


def is_ack_of_ours(request: bytes) -> bool:
    """Whether ``request`` is the ACK of a 513 the shield sent (its To has our tag)."""
    return request.startswith(b"ACK ") and b"tag=" + TAG in request


@dataclass
class Counts:
    forwarded: int = 0  # to SIPp
    returned: int = 0  # from SIPp, to the proxy
    answered: int = 0  # too large, answered 513
    dropped: int = 0  # too large and not answerable, the ACK of a 513, or no peer left
    errors: int = 0  # send errors: lost to a full buffer, as UDP may lose them

    def report(self, listen: int, to: int) -> str:
        return (
            f"shield {listen} <-> {to}: forwarded {self.forwarded}, returned {self.returned};"
            f" of {SIPP_SAFE_SIZE} bytes or more, answered 513 {self.answered}; dropped"
            f" {self.dropped} (ACKs of the 513s included); {self.errors} send errors"
        )


def shield_argv(listen: int, to: int) -> list[str]:
    """The command that runs a shield from 127.0.0.1:``listen`` to SIPp on ``to``."""
    return [sys.executable, str(Path(__file__).resolve()), "--listen", str(listen), "--to", str(to)]


def _udp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def shield(listen: int, to: int, stop: threading.Event) -> Counts:
    """Shield SIPp on 127.0.0.1:``to`` from 127.0.0.1:``listen`` until ``stop`` is set
    (looked at every 0.2 s at least).

    Each address that sends to ``listen`` (a proxy worker's socket) gets a socket of
    its own toward SIPp, at most :data:`MAX_PEERS`: SIPp answers a request to where it
    came from, and what it sends to that socket goes back to that address from
    ``listen``, so the proxy sees the backend answer from the address it sent to, on
    the socket it sent from (with several workers, the one whose transaction it is)."""
    front = _udp_socket(listen)
    backend = ("127.0.0.1", to)
    peers: dict[tuple[str, int], socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(front, selectors.EVENT_READ, None)
    buffer = bytearray(65_536)
    view = memoryview(buffer)
    counts = Counts()
    try:
        while not stop.is_set():
            for key, _ in selector.select(0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    size, source = sock.recvfrom_into(buffer)
                except BlockingIOError:
                    continue
                data = view[:size]
                try:
                    if key.data is not None:  # SIPp, to the proxy address of this socket
                        front.sendto(data, key.data)
                        counts.returned += 1
                    elif size >= SIPP_SAFE_SIZE:
                        reply = too_large_reply(bytes(data))
                        if reply is None:
                            counts.dropped += 1
                        else:
                            front.sendto(reply, source)
                            counts.answered += 1
                    elif buffer.startswith(b"ACK ") and is_ack_of_ours(bytes(data)):
                        counts.dropped += 1
                    else:
                        peer = peers.get(source)
                        if peer is None and len(peers) < MAX_PEERS:
                            peers[source] = peer = _udp_socket(0)
                            selector.register(peer, selectors.EVENT_READ, source)
                        if peer is None:
                            counts.dropped += 1
                        else:
                            peer.sendto(data, backend)
                            counts.forwarded += 1
                except OSError:
                    counts.errors += 1
    finally:
        selector.close()
        for sock in (front, *peers.values()):
            sock.close()
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="the port the proxy sends to")
    parser.add_argument("--to", type=int, required=True, help="the SIPp backend's port")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    print(shield(args.listen, args.to, stop).report(args.listen, args.to), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
