"""Bytes in, lazy messages out: datagram parsing and stream framing (sans-IO).

``parse_message(data)`` takes one UDP datagram; ``StreamFramer`` is fed the bytes of a
TCP/TLS connection and returns each message once all of it has arrived. Neither does any
I/O or keeps a clock: the transport owns sockets and timeouts (RFC 4475 §3.1.2.2: a
stream that never delivers the promised body is closed on a timer, by the transport).

What is checked at this stage is what framing needs and what every consumer needs:

- leading CRLFs before the start line are skipped (RFC 3261 §7.5; RFC 5626 keep-alives);
- the start line matches ``Request-Line`` or ``Status-Line`` with single SPs (§7.1,
  §7.2; RFC 4475 §3.1.2.9/§3.1.2.10 reject extra or trailing SPs); a request of another
  SIP version is answered 505 (§21.5.6), a response with one is dropped; a status code
  must have 3 digits (RFC 4475 §3.1.2.19);
- Content-Length (§18.3, §20.14): several lines must agree (RFC 4475 §3.3.9); a
  negative or non-numeric one is an error (§3.1.2.3); on a datagram, a value larger than
  what arrived is an error (§3.1.2.2) and octets after the body are ignored (§3.1.1.8);
  a datagram without one has the rest of the datagram as body (RFC 2543, RFC 4475
  §3.4.1). On a stream it is mandatory.

Lines end in CRLF; a message whose start line ends in a bare LF is read with bare-LF
line ends throughout (RFC 5118's archive is written that way, and Kamailio accepts it).
A datagram whose header section reaches the end of the datagram without the empty line
is accepted with an empty body (RFC 5118 §4.10's archive copies end that way).
Everything else is lazy (``message.py``): the header lines are indexed only as far as
a read needs (the top Via is usually the first line), and values are parsed when read.
"""

from __future__ import annotations

import re
from typing import Final

from kcc_runtime.sip import abnf
from kcc_runtime.sip.errors import SipParseError
from kcc_runtime.sip.headers import parse_digits
from kcc_runtime.sip.message import Request, Response

#: Largest message a stream may announce or buffer (headers and body): 413 above it.
DEFAULT_MAX_MESSAGE: Final = 65535

_MAX_CL: Final = 2**31 - 1


#: a Content-Length line (either spelling, RFC 3261 §7.3.3) at a line start, from the LF
#: before it: 1 is the long name (empty for ``l``), 2 the value with its folded
#: continuation lines (§7.3.1), up to the LF ending it
_CONTENT_LENGTH: Final = re.compile(
    rb"\n(?:(content-length)|l)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE
)


def _content_length(buf: bytes, hdr_start: int, hdr_end: int, can_reply: bool) -> int | None:
    """The one Content-Length value, None when absent; errors for bad or conflicting.

    Framing needs this before anything else, so it is found without indexing the
    headers: one regex ``findall`` over the header section (from the start line's LF)
    takes every line of either spelling, folded values included (~1 µs for the bench
    INVITE, where lowering the section and looking for each spelling took ~1.6 µs).
    Several lines are judged long spelling first, then ``l``, each in order, so the
    first fault reported is the same whatever the lines' order.
    """
    found = _CONTENT_LENGTH.findall(buf, hdr_start - 1, hdr_end)
    if len(found) > 1:
        found.sort(key=lambda line: not line[0])  # stable: the order within a spelling kept
    value: int | None = None
    for _, raw in found:
        n = parse_digits(raw, _MAX_CL)
        if n is None:
            raise SipParseError(400, "Bad Content-Length", can_reply=can_reply)
        if value is not None and n != value:
            raise SipParseError(400, "Conflicting Content-Length values", can_reply=can_reply)
        value = n
    return value


def headers_only_request(
    data: bytes, eol: bytes, hdr_start: int, hdr_end: int, method: str = ""
) -> Request:
    """A lazy ``Request`` over the header section of a message whose start line or
    framing was refused: what an error reply is built from (its Via, From, To,
    Call-ID, CSeq); the Request-URI and body are empty."""
    return Request(
        buf=data,
        eol=eol,
        hdr_start=hdr_start,
        hdr_end=hdr_end,
        body_start=hdr_end,
        body_end=hdr_end,
        has_content_length=False,
        method=method,
        uri_start=hdr_start,
        uri_end=hdr_start,
        version="SIP/2.0",
    )


def _can_reply(data: bytes, eol: bytes, hdr_start: int, hdr_end: int) -> bool:
    """Whether a request that failed framing or its start line can still be answered."""
    return headers_only_request(data, eol, hdr_start, hdr_end).reply_possible()


def _head_end(data: bytes, start: int, lf_only: bool) -> tuple[int, int]:
    """(end of the header section, start of the body), or (-1, -1) if not complete.

    The section ends at the first empty line. Header lines end at LF, CR LF or not
    (as in Kamailio's parser), so in a CRLF message a bare LF before the empty line
    (``...\x00\n\r\n``) ends the section there too: a header removed after such a
    line must not move the end of the section (found by the SIP fuzzer)."""
    if lf_only:
        i = data.find(b"\n\n", start - 1)
        return (i + 1, i + 2) if i >= 0 else (-1, -1)
    i = data.find(b"\n\r\n", start - 1)
    j = data.find(b"\n\n", start - 1, len(data) if i < 0 else i + 1)
    if j >= 0:
        return j + 1, j + 2
    return (i + 1, i + 3) if i >= 0 else (-1, -1)


def _skip_crlf(data: bytes | bytearray) -> int:
    pos = 0
    n = len(data)
    while pos < n and data[pos] in (0x0D, 0x0A):
        pos += 1
    return pos


def parse_message(
    data: bytes, *, stream: bool = False, loose_length: bool = False
) -> Request | Response:
    """Parse one message. ``stream=True`` demands a Content-Length matching the data.
    ``loose_length`` (a datagram, for a cfg that runs ``sanity_check``): a
    Content-Length larger than the datagram takes the rest of it as the body, as
    Kamailio's core does, and sanity's Content-Length check answers it.

    Raises ``SipParseError`` for a message that cannot be framed or whose start line is
    malformed; header values are checked when read (``Message.validate()`` checks the
    ones a proxy needs).
    """
    pos = _skip_crlf(data) if data[:1] in (b"\r", b"\n") else 0
    nl = data.find(b"\n", pos)
    if nl < 0 or pos == len(data):
        raise SipParseError(400, "No start line", can_reply=False)
    lf_only = data[nl - 1] != 0x0D
    line_end = nl if lf_only else nl - 1
    is_response = data[pos : pos + 4].upper() == b"SIP/"
    hdr_start = nl + 1
    hdr_end, body_start = _head_end(data, hdr_start, lf_only)
    if hdr_end < 0:
        last = data[-1:]
        if stream or last != b"\n":
            raise SipParseError(400, "Header section not terminated", can_reply=False)
        hdr_end = body_start = len(data)
    eol = b"\n" if lf_only else b"\r\n"

    def fail(status: int, reason: str) -> SipParseError:
        # a request is answered when the headers a reply copies are usable
        ok = not is_response and _can_reply(data, eol, hdr_start, hdr_end)
        return SipParseError(status, reason, can_reply=ok)

    try:
        length = _content_length(data, hdr_start, hdr_end, False)
    except SipParseError as exc:
        raise fail(exc.status, exc.reason) from None
    available = len(data) - body_start
    if length is None:
        if stream:
            raise fail(400, "Missing Content-Length")
        body_end = len(data)
    elif length > available:
        if stream or not loose_length:
            raise fail(400, "Content-Length larger than the message")
        body_end = len(data)
    else:
        body_end = body_start + length
    has_cl = length is not None
    start_line = data[pos:line_end]
    if is_response:
        m = abnf.STATUS_LINE.match(start_line)
        if m is None or len(m.group(4)) != 3 or m.group(4)[0] == 0x30:
            raise SipParseError(400, "Bad status line", can_reply=False)
        if m.group(2) != b"2" or m.group(3) != b"0":
            raise SipParseError(505, "Version Not Supported", can_reply=False)
        return Response(
            data,
            eol,
            hdr_start,
            hdr_end,
            body_start,
            body_end,
            has_cl,
            int(m.group(4)),
            m.group(5).decode("utf-8", "surrogateescape"),
            "SIP/2.0",
        )
    m = abnf.REQUEST_LINE.match(start_line)
    if m is None:
        raise fail(400, "Bad request line")
    if m.group(4) != b"2" or m.group(5) != b"0":
        raise fail(505, "Version Not Supported")
    return Request(
        data,
        eol,
        hdr_start,
        hdr_end,
        body_start,
        body_end,
        has_cl,
        m.group(1).decode("ascii"),
        pos + m.start(2),
        pos + m.end(2),
        "SIP/2.0",
    )


class StreamFramer:
    """Content-Length framing of a byte stream (RFC 3261 §18.3), sans-IO.

    ``feed(data)`` returns every message completed by ``data`` (possibly none). A
    framing error (no, negative, non-numeric, conflicting or oversized Content-Length,
    an unterminated header section longer than ``max_message``) raises
    ``SipParseError``: the stream cannot be resynchronised, so the transport answers
    if ``can_reply`` and closes the connection (RFC 4475 §3.1.2.3). After an error the
    framer refuses further input. CRLF keep-alives between messages are skipped
    (RFC 5626 §3.5.1).
    """

    __slots__ = ("_buf", "broken", "max_message")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self.max_message = max_message
        self.broken = False

    @property
    def buffered(self) -> int:
        """How many bytes are waiting for the rest of their message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add bytes from the stream; return the messages they complete."""
        if self.broken:
            raise SipParseError(400, "Stream already failed framing", can_reply=False)
        self._buf += data
        out: list[Request | Response] = []
        try:
            while True:
                msg = self._next()
                if msg is None:
                    return out
                out.append(msg)
        except SipParseError:
            self.broken = True
            self._buf.clear()
            raise

    def _next(self) -> Request | Response | None:
        buf = self._buf
        skip = _skip_crlf(buf)
        if skip:
            del buf[:skip]
        if not buf:
            return None
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > self.max_message:
                raise SipParseError(413, "Message Too Large", can_reply=False)
            return None
        lf_only = buf[nl - 1] != 0x0D if nl > 0 else True
        data = bytes(buf)
        hdr_end, body_start = _head_end(data, nl + 1, lf_only)
        if hdr_end < 0:
            if len(buf) > self.max_message:
                raise SipParseError(413, "Message Too Large", can_reply=False)
            return None
        is_request = data[:4].upper() != b"SIP/"
        length = _content_length(data, nl + 1, hdr_end, is_request)
        if length is None:
            raise SipParseError(400, "Missing Content-Length", can_reply=is_request)
        total = body_start + length
        if total > self.max_message:
            raise SipParseError(413, "Message Too Large", can_reply=is_request)
        if len(data) < total:
            return None
        del buf[:total]
        return parse_message(data[:total], stream=True)
