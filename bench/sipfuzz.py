"""A fast SIP datagram fuzzer for soaking a running proxy (issue 9, the soak).

Shared by ``bench/soak.py`` (a million datagrams) and ``tests/integration/test_soak.py``
(the short version). Plain ``random.Random`` with a seed, not hypothesis: the soak needs
tens of thousands of datagrams a second, reproducibly.

Seeds: every message of the RFC 4475 / RFC 5118 torture corpus
(``tests/data/sip-torture/*/INDEX.tsv``) and the messages of a SIPp call as SIPp's
scenarios write them (INVITE with SDP, 100, 180, 200, ACK, BYE, its 200, OPTIONS).
Each datagram is one seed with one to three mutations:

- byte flips (1-16 random bytes replaced);
- truncation at a random offset;
- header duplication (one header line repeated 2-200 times);
- Content-Length huge, negative, garbage or wrong (set, added, or given twice);
- deep comma lists (a Via, Route, Contact or Accept header of 10-5,000 elements);
- NUL bytes inserted;
- bad UTF-8 (overlong forms, surrogates, lone continuation bytes, 0xFE/0xFF) inserted;
- oversize (a header or body padded to 1,500-65,000 bytes).

The sender only ever sends to a loopback address (``send_fuzz`` refuses any other):
the torture messages name other hosts in their headers, which is harmless, only the
destination of the socket matters.
"""

from __future__ import annotations

import csv
import ipaddress
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "sip-torture"
#: the largest datagram the fuzzer builds (IPv4 UDP carries at most 65,507 bytes)
MAX_DATAGRAM = 65_000

_SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _message(start: str, headers: list[str], body: str = "") -> bytes:
    lines = [start, *headers, f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode("ascii")


def sipp_messages(proxy_port: int) -> list[bytes]:
    """A SIPp call's messages as ``uac_rr.xml``/``uas_rr.xml`` write them, addressed to
    a proxy on 127.0.0.1:``proxy_port``. Requests carry ``rport`` (the proxy answers to
    the sending socket); replies carry the proxy's Via on top (the proxy's reply path
    runs) over a Via at an unbound port. Call-IDs start with ``fuzz-``: they never
    match a call of the SIPp UAC running beside."""
    me = "127.0.0.1:5070"
    proxy = f"127.0.0.1:{proxy_port}"
    common = [
        f"From: sipp <sip:sipp@{me}>;tag=1234SIPpTag001",
        "Call-ID: fuzz-1-1234@127.0.0.1",
        f"Contact: <sip:sipp@{me}>",
        "Max-Forwards: 70",
    ]
    via = f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-1234-1-0;rport"
    proxy_via = f"Via: SIP/2.0/UDP {proxy};branch=z9hG4bKfuzz.0"
    to = f"To: <sip:service@{proxy}>"
    to_tag = f"{to};tag=1234SIPpTag011"
    route = f"Route: <sip:{proxy};lr>"
    sdp = ["Content-Type: application/sdp"]
    reply_head = [proxy_via, via, common[0], to_tag, common[1]]
    return [
        _message(
            f"INVITE sip:service@{proxy} SIP/2.0",
            [via, *common[:2], to, "CSeq: 1 INVITE", *common[2:], "Subject: soak", *sdp],
            _SDP,
        ),
        _message("SIP/2.0 100 Trying", [*reply_head, "CSeq: 1 INVITE"]),
        _message("SIP/2.0 180 Ringing", [*reply_head, "CSeq: 1 INVITE", common[2]]),
        _message("SIP/2.0 200 OK", [*reply_head, "CSeq: 1 INVITE", common[2], *sdp], _SDP),
        _message(
            "ACK sip:uas@127.0.0.1:5090 SIP/2.0",
            [via, route, *common[:2], to_tag, "CSeq: 1 ACK", *common[2:]],
        ),
        _message(
            "BYE sip:uas@127.0.0.1:5090 SIP/2.0",
            [via, route, *common[:2], to_tag, "CSeq: 2 BYE", *common[2:]],
        ),
        _message("SIP/2.0 200 OK", [*reply_head, "CSeq: 2 BYE"]),
        _message(
            f"OPTIONS sip:ping@{proxy} SIP/2.0",
            [via, *common[:2], to, "CSeq: 1 OPTIONS", *common[2:]],
        ),
    ]


def torture_messages() -> list[bytes]:
    """Every message the torture corpus's ``INDEX.tsv`` files name, as raw bytes."""
    messages: list[bytes] = []
    for rfc in ("rfc4475", "rfc5118"):
        with (CORPUS / rfc / "INDEX.tsv").open(newline="", encoding="utf-8") as index:
            for row in csv.DictReader(index, delimiter="\t"):
                messages.append((CORPUS / rfc / row["file"]).read_bytes())
    return messages


_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[^\r\n]*")
_BAD_LENGTHS = (
    b"99999999999999999999999",
    b"4294967296",
    b"2147483648",
    b"65536",
    b"-1",
    b"-2147483648",
    b"- 5",
    b"abc",
    b"",
    b"1e3",
    b"0x10",
    b"12 34",
    b"+7",
    b"0000000000000000000000000000010",
)
_BAD_UTF8 = (
    b"\xff",
    b"\xfe\xff",
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xbf\xbf",
    b"\xf0\x9f",
)
_LIST_ITEMS = (
    b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK%d",
    b"<sip:127.0.0.%d;lr>",
    b"<sip:u%d@127.0.0.1>",
    b"a/b%d",
    b"1%d",
)
_LIST_NAMES = (b"Via", b"Route", b"Contact", b"Accept", b"Record-Route", b"Supported")


class Mutator:
    """Mutated SIP datagrams from ``seeds``, reproducible from ``seed``."""

    def __init__(self, seeds: list[bytes], seed: int) -> None:
        if not seeds:
            raise ValueError("no seed messages")
        self.seeds = seeds
        self.rng = random.Random(seed)
        #: the comma lists, built once: (item, length) -> the header value
        self._lists: dict[tuple[int, int], bytes] = {}
        #: the mutations, weighted: the big ones (comma lists, oversize) are rarer, so
        #: the datagrams average a few kB, as a scanner's would
        self._ops: list[Callable[[bytes], bytes]] = [
            *[self.flip] * 3,
            *[self.truncate] * 2,
            *[self.duplicate_header] * 2,
            *[self.content_length] * 3,
            self.comma_list,
            *[self.nuls] * 2,
            *[self.bad_utf8] * 2,
            self.oversize,
        ]

    def datagram(self) -> bytes:
        """One seed with one to three mutations, at most ``MAX_DATAGRAM`` bytes."""
        rng = self.rng
        data = rng.choice(self.seeds)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            data = rng.choice(self._ops)(data)
        return data[:MAX_DATAGRAM]

    def _line_span(self, data: bytes) -> tuple[int, int]:
        """Start and end (after its ``\\n``) of a random header line among the first
        4 KiB, or of the start line when there is no other."""
        limit = min(len(data), 4096)
        ends: list[int] = []
        at = data.find(b"\n", 0, limit)
        while at >= 0:
            ends.append(at + 1)
            at = data.find(b"\n", at + 1, limit)
        if not ends:
            return (0, 0)
        if len(ends) == 1:
            return (0, ends[0])
        line = self.rng.randrange(1, len(ends))
        return (ends[line - 1], ends[line])

    def flip(self, data: bytes) -> bytes:
        if not data:
            return data
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 16)):
            buf[self.rng.randrange(len(buf))] = self.rng.randrange(256)
        return bytes(buf)

    def truncate(self, data: bytes) -> bytes:
        return data[: self.rng.randrange(len(data) + 1)]

    def duplicate_header(self, data: bytes) -> bytes:
        start, end = self._line_span(data)
        room = (MAX_DATAGRAM - len(data)) // max(end - start, 1)
        copies = min(self.rng.randint(1, 199), max(room, 1))
        return data[:end] + data[start:end] * copies + data[end:]

    def content_length(self, data: bytes) -> bytes:
        rng = self.rng
        value = rng.choice((*_BAD_LENGTHS, str(rng.randint(0, 100_000)).encode()))
        header = rng.choice((b"Content-Length", b"l", b"content-length")) + b": " + value
        found = _CONTENT_LENGTH.search(data)
        if found is not None and rng.random() < 0.7:
            return data[: found.start()] + header + data[found.end() :]
        start, _ = self._line_span(data)
        return data[:start] + header + b"\r\n" + data[start:]

    def comma_list(self, data: bytes) -> bytes:
        rng = self.rng
        key = (rng.randrange(len(_LIST_ITEMS)), rng.choice((10, 50, 500, 5000)))
        value = self._lists.get(key)
        if value is None:
            item = _LIST_ITEMS[key[0]]
            value = self._lists[key] = b",".join(item % n for n in range(key[1]))
        start, _ = self._line_span(data)
        header = rng.choice(_LIST_NAMES) + b": " + value[: MAX_DATAGRAM - len(data)] + b"\r\n"
        return data[:start] + header + data[start:]

    def nuls(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 8)):
            buf[self.rng.randrange(len(buf) + 1) : 0] = b"\x00" * self.rng.randint(1, 4)
        return bytes(buf)

    def bad_utf8(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 6)):
            at = self.rng.randrange(len(buf) + 1)
            buf[at:at] = self.rng.choice(_BAD_UTF8)
        return bytes(buf)

    def oversize(self, data: bytes) -> bytes:
        rng = self.rng
        size = rng.randint(1_500, MAX_DATAGRAM)
        if len(data) >= size:
            return data
        if rng.random() < 0.5:  # a huge header value
            start, _ = self._line_span(data)
            pad = b"X-Pad: " + rng.randbytes(8).hex().encode() * ((size - len(data)) // 16)
            return data[:start] + pad + b"\r\n" + data[start:]
        return data + b"A" * (size - len(data))  # a huge body


@dataclass
class SendStats:
    """What ``send_fuzz`` did: datagrams and bytes sent, sends the kernel refused
    (``ENOBUFS``/``EAGAIN``: the datagram was lost before the proxy), replies the
    proxy sent back to the sending sockets, and the seconds it took."""

    sent: int = 0
    bytes: int = 0
    refused: int = 0
    replies: int = 0
    seconds: float = 0.0


def send_fuzz(
    port: int,
    count: int,
    *,
    seed: int,
    rate: float,
    sources: int = 4,
    host: str = "127.0.0.1",
    batch: int = 200,
    progress: Callable[[SendStats], None] | None = None,
    timeout: float = 3600.0,
) -> SendStats:
    """Send ``count`` fuzzed datagrams to ``host``:``port`` (a loopback address only)
    from ``sources`` sockets of their own (round robin), paced at about ``rate``
    datagrams a second: ``batch`` at a time, then a sleep until the batch's due time.
    Replies are read and counted between batches. Stops after ``timeout`` seconds
    whatever was sent. ``progress`` is called about once a second."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the fuzzer sends to loopback only, not {host}")
    mutator = Mutator([*torture_messages(), *sipp_messages(port)], seed)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sources)]
    stats = SendStats()
    try:
        for sock in socks:
            sock.bind((host, 0))
            sock.setblocking(False)
        dst = (host, port)
        start = time.monotonic()
        deadline = start + timeout
        reported = start
        while stats.sent + stats.refused < count:
            for _ in range(min(batch, count - stats.sent - stats.refused)):
                data = mutator.datagram()
                try:
                    socks[(stats.sent + stats.refused) % sources].sendto(data, dst)
                except OSError:  # ENOBUFS, EAGAIN, ECONNREFUSED
                    stats.refused += 1
                    continue
                stats.sent += 1
                stats.bytes += len(data)
            for sock in socks:
                stats.replies += _drain(sock)
            now = time.monotonic()
            if now >= deadline:
                break
            due = start + (stats.sent + stats.refused) / rate
            if due > now:
                time.sleep(due - now)
            if progress is not None and now - reported >= 1.0:
                reported = now
                stats.seconds = now - start
                progress(stats)
        stats.seconds = time.monotonic() - start
        return stats
    finally:
        for sock in socks:
            sock.close()


def _drain(sock: socket.socket) -> int:
    """Read and count what is waiting on ``sock`` (at most 10,000 datagrams)."""
    for got in range(10_000):
        try:
            sock.recv(65_535)
        except OSError:  # nothing waiting (EAGAIN), or an ICMP error
            return got
    return 10_000
