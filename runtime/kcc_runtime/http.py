"""HTTP/1.x on a SIP TCP listener, sans-IO: what Kamailio's ``tcp_read`` and the
xhttp module do with an HTTP request that arrives on a SIP TCP socket.

Kamailio (with xhttp loaded) reads an HTTP request on a SIP TCP connection like a
SIP one: the first line names the method, the URL and ``HTTP/1.x``; the body is
framed by ``Content-Length``, by chunked transfer coding (decoded before the
script sees it), or, with ``tcp_accept_no_cl=yes`` (the stock cfg), absent. Then
xhttp inserts a ``Via: SIP/2.0/TCP <source>`` line as the first header, so that
the core's SIP parser and sl's reply builder work on it, and runs
``event_route[xhttp:request]``; ``xhttp_reply`` sends back a reply built like a
SIP reply to it, with the ``Via`` line renamed ``Sia``.

Facts measured on Kamailio 5.6.3 running the stock cfg with ``-A WITH_JSONRPC``
(a raw Python TCP client on loopback; see ``tests/runtime/test_http.py``):

- the reply to ``POST /RPC HTTP/1.1`` is
  ``HTTP/1.1 200 OK\\r\\nSia: SIP/2.0/TCP 127.0.0.1:<client port>\\r\\n``
  ``Content-Type: application/json\\r\\nServer: kamailio (5.6.3 (x86_64/linux))\\r\\n``
  ``Content-Length: 76\\r\\n\\r\\n<body>``; an ``HTTP/1.0`` request gets an
  ``HTTP/1.0`` status line (the reply takes the request's version);
- a request line with no header line after it fails the core's parsing (logged
  "core parsing of SIP message failed") and the connection is closed unanswered;
- a method in lower case is accepted (``get /x HTTP/1.1``), and ``$hu`` is the
  request-target as written, query string included (``/x?a=1&b=2``);
- a chunked body reaches the script decoded (jsonrpcs logged the decoded text);
- with ``set_reply_close()`` the connection is closed after the reply, so a second,
  pipelined request is never answered.

:class:`HttpFramer` frames the stream, :func:`parse_request` turns one framed
request into a :class:`~kcc_runtime.sip.Request` (the inserted Via included, version
``HTTP/1.x``), :func:`build_reply` builds xhttp's reply. Nothing here raises on bad
input but :class:`HttpError` from :meth:`HttpFramer.feed` (the transport closes the
connection on it, as Kamailio does on a stream it cannot frame).
"""

from __future__ import annotations

import re
from typing import Final

from kcc_runtime.sip import Request

__all__ = [
    "HttpError",
    "HttpFramer",
    "build_reply",
    "looks_like_http",
    "parse_request",
]

#: ``METHOD SP request-target SP HTTP/1.x`` (RFC 9112 §3; a token for the method)
_REQUEST_LINE: Final = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP/1\.[0-9])\r?\Z")
_CONTENT_LENGTH: Final = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$")
_CHUNKED: Final = re.compile(rb"(?im)^transfer-encoding[ \t]*:[^\r\n]*\bchunked\b")
#: a first line longer than this without its end is not an HTTP request line
_MAX_LINE: Final = 8192


class HttpError(Exception):
    """The stream cannot be framed (bad Content-Length or chunk size, too large,
    no length with ``tcp_accept_no_cl`` off)."""


def looks_like_http(buf: bytes | bytearray) -> bool | None:
    """Whether a TCP stream starting with ``buf`` carries HTTP/1.x: True when its
    first line is an HTTP request line, False when it is something else (SIP),
    None while the first line is incomplete. Leading CRLFs (SIP keep-alives) are
    skipped."""
    start = 0
    while start < len(buf) and buf[start] in (0x0D, 0x0A):
        start += 1
    nl = buf.find(b"\n", start)
    if nl < 0:
        return None if len(buf) - start < _MAX_LINE else False
    return _REQUEST_LINE.match(bytes(buf[start:nl])) is not None


def _head_end(buf: bytes | bytearray) -> tuple[int, int]:
    """(end of the header section, start of the body), or (-1, -1)."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return -1, -1


class HttpFramer:
    """HTTP/1.x request framing of a byte stream, sans-IO.

    ``feed(data)`` returns every request completed by ``data``: the header section
    and the body, a chunked body decoded (its ``Transfer-Encoding`` line kept, and
    no ``Content-Length`` added: the body ends where the buffer ends). A request
    with neither length nor chunked coding has no body when ``accept_no_cl``
    (Kamailio's ``tcp_accept_no_cl``), else :class:`HttpError`."""

    __slots__ = ("_buf", "accept_no_cl", "broken", "max_message")

    def __init__(self, max_message: int = 65536, *, accept_no_cl: bool = False) -> None:
        self._buf = bytearray()
        self.max_message = max_message
        self.accept_no_cl = accept_no_cl
        self.broken = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.broken:
            raise HttpError("stream already failed framing")
        self._buf += data
        out: list[bytes] = []
        try:
            while True:
                request = self._next()
                if request is None:
                    return out
                out.append(request)
        except HttpError:
            self.broken = True
            self._buf.clear()
            raise

    def _next(self) -> bytes | None:
        buf = self._buf
        skip = 0
        while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
            skip += 1
        if skip:
            del buf[:skip]
        if not buf:
            return None
        hdr_end, body_start = _head_end(buf)
        if hdr_end < 0:
            if len(buf) > self.max_message:
                raise HttpError("header section too large")
            return None
        head = bytes(buf[:hdr_end])
        if _CHUNKED.search(head):
            decoded = _dechunk(buf, body_start, self.max_message)
            if decoded is None:
                return None
            body, used = decoded
            del buf[:used]
            return bytes(head) + (b"\r\n\r\n" if body_start - hdr_end == 4 else b"\n\n") + body
        m = _CONTENT_LENGTH.search(head)
        if m is None:
            if not self.accept_no_cl:
                raise HttpError("no Content-Length (tcp_accept_no_cl is off)")
            length = 0
        else:
            text = m.group(1)
            if not text.isdigit():
                raise HttpError(f"bad Content-Length {text!r}")
            length = int(text)
        total = body_start + length
        if total > self.max_message:
            raise HttpError("request too large")
        if len(buf) < total:
            return None
        request = bytes(buf[:total])
        del buf[:total]
        return request


def _dechunk(buf: bytearray, pos: int, limit: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``pos``: (body, bytes used up to the end
    of the trailer) or None while incomplete."""
    body = bytearray()
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > 1024:
                raise HttpError("bad chunk size line")
            return None
        size_text = bytes(buf[pos:nl]).strip().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"bad chunk size {size_text!r}") from None
        if size < 0 or len(body) + size > limit:
            raise HttpError("chunked body too large")
        pos = nl + 1
        if size == 0:
            # the trailer section: lines up to an empty one
            while True:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    return None
                line = bytes(buf[pos:nl]).strip()
                pos = nl + 1
                if not line:
                    return bytes(body), pos
        if len(buf) < pos + size:
            return None
        body += buf[pos : pos + size]
        pos += size
        if len(buf) < pos + 1:
            return None
        if buf[pos : pos + 2] == b"\r\n":
            pos += 2
        elif buf[pos : pos + 1] == b"\n":
            pos += 1
        elif len(buf) < pos + 2 and buf[pos : pos + 1] == b"\r":
            return None
        else:
            raise HttpError("missing CRLF after a chunk")


def _via_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def parse_request(data: bytes, src: tuple[str, int], proto: str = "tcp") -> Request | None:
    """One framed HTTP request as the SIP request xhttp's event route sees: the
    request line as written (``version`` ``HTTP/1.x``), then an inserted
    ``Via: SIP/2.0/<PROTO> <source ip>:<source port>`` line, then the headers and
    the body. None (the core's parse failure) when the first line is not an HTTP
    request line or no header line follows it."""
    nl = data.find(b"\n")
    if nl < 0:
        return None
    first = data[:nl]
    m = _REQUEST_LINE.match(first)
    if m is None:
        return None
    eol = b"\r\n" if first.endswith(b"\r") else b"\n"
    rest = data[nl + 1 :]
    hdr_end, body_start = _head_end(b"\n" + rest if rest[:1] in (b"\r", b"\n") else rest)
    if rest[:1] in (b"\r", b"\n") or hdr_end < 0:
        return None  # no header line (measured: Kamailio's parser refuses it)
    via = f"Via: SIP/2.0/{proto.upper()} {_via_host(src[0])}:{src[1]}".encode()
    line = first[:-1] if eol == b"\r\n" else first
    head = line + eol + via + eol
    buf = head + rest
    return Request(
        buf=buf,
        eol=eol,
        hdr_start=len(line) + len(eol),
        hdr_end=len(head) + hdr_end,
        body_start=len(head) + body_start,
        body_end=len(buf),
        has_content_length=_CONTENT_LENGTH.search(rest[:hdr_end]) is not None,
        method=m.group(1).decode("ascii"),
        uri_start=m.start(2),
        uri_end=m.end(2),
        version=m.group(3).decode("ascii"),
    )


def build_reply(
    request: Request,
    code: int,
    reason: str,
    ctype: str,
    body: bytes,
    *,
    server: bytes | None,
) -> bytes:
    """xhttp's reply to ``request`` (from :func:`parse_request`): the request's
    version, code and reason; each Via line of the request renamed ``Sia``; the
    ``Content-Type`` (left out when empty), the ``Server`` line (``server``: the
    whole header line, None when ``server_signature`` is off), ``Content-Length``
    and the body (measured, see the module docstring)."""
    lines = [f"{request.version} {code} {reason}".encode("utf-8", "surrogateescape")]
    for name, (start, _, _, end) in zip(request.names, request.spans, strict=True):
        if name == b"via":
            line = request.buf[start:end].rstrip(b"\r\n")
            # the name as written (``Via`` or compact ``v``): xhttp renames ``Via``
            lines.append(b"Sia" + line[3:] if line[:3].lower() == b"via" else line)
    if ctype:
        lines.append(b"Content-Type: " + ctype.encode("utf-8", "surrogateescape"))
    if server is not None:
        lines.append(server)
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
