"""Structured header values, parsed from the original buffer on demand.

Each parser takes the buffer and the ``[start, end)`` offsets of one header value and
returns frozen objects that remember where their parts sit in the buffer, so an edit
(``received``/``rport`` on the top Via, removing one Via of a comma-joined line) can be
spliced without re-serializing anything else. The patterns come from ``abnf.py``.

- ``parse_vias``: Via (RFC 3261 §20.42, §25 ``via-parm``), with ``branch`` (§8.1.1.7),
  ``received`` (§18.2.1) and ``rport`` (RFC 3581 §3, §4);
- ``parse_name_addr`` / ``parse_name_addr_list``: From, To, Contact, Route,
  Record-Route (§20.10, §20.20, §20.30, §20.34, §20.39);
- ``parse_cseq`` (§20.16, 32-bit number per §8.1.1.5) and ``parse_digits``.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from kcc_runtime.memory import parse_cache
from kcc_runtime.sip import abnf
from kcc_runtime.sip.errors import SipParseError
from kcc_runtime.sip.uri import CACHED_MAX_LEN, Params, Uri, parse_uri

#: Compact header names (RFC 3261 §7.3.3 and table in §20; ``o``/``u`` RFC 6665, ``r``
#: RFC 3515, ``b`` RFC 3892, ``x`` RFC 4028, ``y`` RFC 8224, ``a``/``j``/``d`` RFC 3841).
COMPACT: Final[dict[bytes, bytes]] = {
    b"v": b"via",
    b"f": b"from",
    b"t": b"to",
    b"i": b"call-id",
    b"m": b"contact",
    b"l": b"content-length",
    b"c": b"content-type",
    b"k": b"supported",
    b"s": b"subject",
    b"e": b"content-encoding",
    b"o": b"event",
    b"u": b"allow-events",
    b"r": b"refer-to",
    b"b": b"referred-by",
    b"x": b"session-expires",
    b"y": b"identity",
    b"a": b"accept-contact",
    b"j": b"reject-contact",
    b"d": b"request-disposition",
}

_LWS: Final = b" \t\r\n"
_HAS_LWS: Final = re.compile(rb"[ \t\r\n]")
MAX_UINT32: Final = 2**32 - 1


def unquote(raw: bytes) -> str:
    """The text of a quoted-string (quotes removed, quoted-pairs resolved), or ``raw``."""
    if raw[:1] == b'"':
        raw = abnf.QUOTED_PAIR_RE.sub(rb"\1", raw[1:-1])
    return raw.decode("utf-8", "surrogateescape")


def _param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return "" if value is None else value
    return None


class Via(NamedTuple):
    """One via-parm. Offsets are absolute positions in the message buffer.

    A ``NamedTuple`` rather than a frozen dataclass: as immutable, and about three
    times cheaper to build, which matters on the forwarding path. ``branch``,
    ``received`` and ``rport`` are looked up once, when the value is parsed: the
    transaction layer and tm read them several times per message.
    """

    #: ``"SIP/2.0"`` as written, without LWS.
    protocol: str
    #: Transport, upper-cased (``UDP``, ``TCP``, ``TLS``, ``SCTP``, ``WS``... or unknown).
    transport: str
    #: sent-by host as written (an IPv6 reference keeps its brackets).
    host: str
    #: sent-by port, or None.
    port: int | None
    #: Parameters in order, names lower-cased, values unquoted (None: no ``=``).
    params: Params
    #: Where this via-parm starts (its protocol name) and ends (after its last param).
    start: int
    end: int
    #: Span of each parameter (``name[=value]``, without the ``;``), in order.
    param_spans: tuple[tuple[int, int], ...]
    #: The ``branch`` parameter (RFC 3261 §8.1.1.7).
    branch: str | None
    #: The ``received`` parameter (§18.2.1), brackets kept as sent (RFC 5118 §4.5).
    received: str | None
    #: The ``rport`` parameter (RFC 3581): "" when present without a value.
    rport: str | None

    def param(self, name: str) -> str | None:
        """Value of parameter ``name``: "" when it has no value, None when absent."""
        return _param(self.params, name)


def _via(  # noqa: PLR0917 -- the fields of a Via, in order
    protocol: str,
    transport: str,
    host: str,
    port: int | None,
    params: Params,
    start: int,
    end: int,
    param_spans: tuple[tuple[int, int], ...],
) -> Via:
    """A ``Via`` with its ``branch``, ``received`` and ``rport`` looked up.

    ``tuple.__new__`` skips the ``NamedTuple`` constructor's Python-level ``__new__``
    (~0.12 µs against ~0.26 µs); every field is given, in order.
    """
    return tuple.__new__(
        Via,
        (
            protocol,
            transport,
            host,
            port,
            params,
            start,
            end,
            param_spans,
            _param(params, "branch"),
            _param(params, "received"),
            _param(params, "rport"),
        ),
    )


def parse_vias(buf: bytes, start: int, end: int) -> list[Via]:
    """Parse every via-parm of one Via header value ``buf[start:end]``.

    Each value of the usual shape takes one ``VIA_SIMPLE`` match, comma-separated ones
    too (SIPp and other UAs copy every Via of a request onto one line of the
    response); any other value sends the whole line to the general parser, which gives
    the same result for what that pattern takes.
    """
    out: list[Via] = []
    pos = start
    match = abnf.VIA_SIMPLE.match
    while True:
        m = match(buf, pos, end)
        if m is None:
            return parse_vias_general(buf, start, end)
        transport, host, port_raw, plist, comma = m.groups()
        port = None if port_raw is None else int(port_raw)
        if port is not None and port > 65535:
            return parse_vias_general(buf, start, end)
        at = m.start(4)
        params: list[tuple[str, str | None]] = []
        spans: list[tuple[int, int]] = []
        # the pattern took ASCII only: one decode for the list, not two per parameter
        for item in plist.decode("ascii").split(";")[1:]:
            at += 1
            name, eq, value = item.partition("=")
            params.append((name.lower(), value if eq else None))
            spans.append((at, at + len(item)))
            at += len(item)
        via = _via(
            "SIP/2.0",
            transport.decode("ascii").upper(),
            host.decode("ascii"),
            port,
            tuple(params),
            m.start(1) - 8,  # len(b"SIP/2.0/")
            at,  # after the last parameter
            tuple(spans),
        )
        out.append(via)
        if comma is None:  # the end of the value
            return out
        pos = m.end()


def parse_vias_general(buf: bytes, start: int, end: int) -> list[Via]:
    """``parse_vias`` for any value: LWS and folds anywhere, lists, quoted values."""
    out: list[Via] = []
    pos = start
    while True:
        m = abnf.VIA_PARM.match(buf, pos, end)
        if m is None:
            raise SipParseError(400, "Bad Via header", can_reply=False)
        port_raw = m.group(5)
        port: int | None = None
        if port_raw is not None:
            if len(port_raw) > 5 or int(port_raw) > 65535:
                raise SipParseError(400, "Bad Via port", can_reply=False)
            port = int(port_raw)
        pos = m.end()
        params: list[tuple[str, str | None]] = []
        spans: list[tuple[int, int]] = []
        match_param = abnf.GENERIC_PARAM.match
        pm = match_param(buf, pos, end)
        while pm is not None:
            name, value = pm.group(1, 2)
            pos = pm.end()
            text = (
                None
                if value is None
                else unquote(value)
                if value[:1] == b'"'
                else value.decode("ascii")
            )
            params.append((name.lower().decode("ascii"), text))
            spans.append((pm.start(1), pos))
            pm = match_param(buf, pos, end)
        proto, version, transport, host = m.group(1, 2, 3, 4)
        out.append(
            _via(
                f"{proto.decode('ascii')}/{version.decode('ascii')}",
                transport.decode("ascii").upper(),
                host.decode("ascii"),
                port,
                tuple(params),
                m.start(1),
                pos,
                tuple(spans),
            )
        )
        while pos < end and buf[pos] in _LWS:
            pos += 1
        if pos == end:
            return out
        if buf[pos] != 0x2C:  # ","
            raise SipParseError(400, "Bad Via header", can_reply=False)
        pos += 1


class NameAddr(NamedTuple):
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route...)."""

    #: Display name (unquoted), or None.
    display: str | None
    #: The URI's bytes as written (inside ``<>`` for a name-addr).
    uri_raw: bytes
    #: Header parameters (after the URI), names lower-cased, values unquoted.
    params: Params
    #: Absolute span of this value in the buffer.
    start: int
    end: int
    #: The ``tag`` parameter (RFC 3261 §19.3), None when absent (looked up once: the
    #: transaction layer and dialog matching read it several times per message).
    tag: str | None

    @property
    def uri(self) -> Uri:
        """The parsed URI (raises ``SipParseError`` when it breaks its grammar)."""
        return parse_uri(self.uri_raw)

    def param(self, name: str) -> str | None:
        """Value of header parameter ``name``: "" without a value, None when absent."""
        return _param(self.params, name)


def _skip_lws(buf: bytes, pos: int, end: int) -> int:
    while pos < end and buf[pos] in _LWS:
        pos += 1
    return pos


def _bad_header(what: str) -> SipParseError:
    """The error for a malformed ``what`` header: built only when raised, as most values
    parse and building an exception is costly."""
    return SipParseError(400, f"Bad {what} header")


def parse_name_addr(buf: bytes, start: int, end: int, what: str) -> NameAddr:
    """Parse ``(name-addr / addr-spec) *(SEMI generic-param)`` in ``buf[start:end]``.

    The usual shape takes one ``NAME_ADDR_SIMPLE`` match; anything else the general
    parser, which gives the same result for what that pattern takes.
    """
    m = abnf.NAME_ADDR_SIMPLE.match(buf, start, end)
    if m is None:
        return parse_name_addr_general(buf, start, end, what)
    display, bracketed, bare, plist = m.groups()
    params: list[tuple[str, str | None]] = []
    for item in plist.decode("ascii").split(";")[1:]:  # ASCII only, as the pattern took
        name, eq, value = item.partition("=")
        params.append((name.lower(), value if eq else None))
    found = tuple(params)
    return tuple.__new__(  # every field, in order: cheaper than NameAddr(...), as ``_via``
        NameAddr,
        (
            None if display is None else display.decode("ascii"),
            bare if bracketed is None else bracketed,
            found,
            start,
            end,
            _param(found, "tag"),
        ),
    )


def parse_name_addr_general(buf: bytes, start: int, end: int, what: str) -> NameAddr:
    """``parse_name_addr`` for any value: quoted display names, LWS, quoted values.

    RFC 3261 §20.10: an addr-spec (no ``<>``) ends at the first ``;``, which starts the
    header parameters, and may not contain ``,``, ``?`` or ``;`` (RFC 4475 §3.1.2.13).
    A display name is a quoted-string or tokens separated by LWS (RFC 4475 §3.1.2.15
    rejects ``Bell, Alexander``).
    """
    pos = _skip_lws(buf, start, end)
    if pos >= end:
        raise _bad_header(what)
    display: str | None = None
    lt = -1
    if buf[pos] == 0x22:  # '"'
        qm = abnf.QUOTED_DISPLAY_RE.match(buf, pos, end)
        if qm is None:
            raise _bad_header(what)
        display = unquote(qm.group(1))
        lt = qm.end() - 1
    else:
        lt = buf.find(b"<", pos, end)
        if lt >= 0:
            dm = abnf.DISPLAY_TOKENS_RE.match(buf, pos, lt)
            if dm is None:
                raise _bad_header(what)
            tokens = dm.group(1)
            display = None if tokens is None else tokens.decode("ascii")
    if lt >= 0:
        gt = buf.find(b">", lt + 1, end)
        if gt < 0:
            raise _bad_header(what)
        uri_raw = buf[lt + 1 : gt]
        pos = gt + 1
    else:
        semi = buf.find(b";", pos, end)
        stop = end if semi < 0 else semi
        uri_raw = buf[pos:stop].rstrip(_LWS)
        pos = stop
        if b"?" in uri_raw or b"," in uri_raw:
            raise _bad_header(what)
    if not uri_raw or b":" not in uri_raw or _HAS_LWS.search(uri_raw) is not None:
        raise _bad_header(what)
    params: list[tuple[str, str | None]] = []
    pm = abnf.GENERIC_PARAM.match(buf, pos, end)
    while pm is not None:
        value = pm.group(2)
        params.append(
            (pm.group(1).decode("ascii").lower(), None if value is None else unquote(value))
        )
        pos = pm.end()
        pm = abnf.GENERIC_PARAM.match(buf, pos, end)
    if _skip_lws(buf, pos, end) != end:
        raise _bad_header(what)
    found = tuple(params)
    return NameAddr(display, uri_raw, found, start, end, _param(found, "tag"))


def split_list(buf: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Split a header value at top-level commas (not inside quotes or ``<>``), §7.3.1."""
    if buf.find(b",", start, end) < 0:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    item = start
    in_quote = False
    in_angle = False
    skip = -1
    for m in abnf.LIST_SPECIALS_RE.finditer(buf, start, end):
        i = m.start()
        if i <= skip:
            continue
        c = buf[i]
        if in_quote:
            if c == 0x5C:  # backslash: quoted-pair
                skip = i + 1
            elif c == 0x22:
                in_quote = False
        elif c == 0x22:
            in_quote = True
        elif c == 0x3C:
            in_angle = True
        elif c == 0x3E:
            in_angle = False
        elif c == 0x2C and not in_angle:
            out.append((item, i))
            item = i + 1
    out.append((item, end))
    return out


def parse_name_addr_list(buf: bytes, start: int, end: int, what: str) -> list[NameAddr]:
    """Parse a comma-separated list of name-addr values (Contact, Route, Record-Route)."""
    if buf.find(b",", start, end) < 0:  # one value, the usual case
        return [parse_name_addr(buf, start, end, what)]
    return [parse_name_addr(buf, s, e, what) for s, e in split_list(buf, start, end)]


def parse_digits(raw: bytes, limit: int) -> int | None:
    """``1*DIGIT`` as an int, or None when not digits or above ``limit``."""
    raw = raw.strip(_LWS)
    if not raw.isdigit():  # bytes.isdigit: ASCII 0-9 only, and False when empty
        return None
    raw = raw.lstrip(b"0") or b"0"
    if len(raw) > 20:
        return None
    value = int(raw)
    return value if value <= limit else None


class CSeq(NamedTuple):
    """CSeq: the sequence number (fits 32 bits, §8.1.1.5) and the method; ``text`` is
    the number as written (``$cs``). A loosely parsed CSeq whose number is not a
    32-bit decimal has ``number`` -1."""

    number: int
    method: str
    text: str = ""


def parse_cseq(raw: bytes, *, loose: bool = False) -> CSeq:
    """Parse a CSeq value (LWS and folds allowed between number and method).
    ``loose``: as Kamailio's core, any token is a number (sanity_check judges it);
    only a CSeq without a method is refused.

    Results are immutable and depend on the arguments alone, and traffic repeats a few
    values (``1 INVITE``, ``2 BYE``...) over and over, so the last ``_CSEQ_CACHE_SIZE``
    are remembered (bounded, and short values only, as ``uri.parse_uri``)."""
    if len(raw) > CACHED_MAX_LEN:
        return _parse_cseq_cached.__wrapped__(raw, loose)
    return _parse_cseq_cached(raw, loose)


_CSEQ_CACHE_SIZE: Final = 1024


@parse_cache(maxsize=_CSEQ_CACHE_SIZE)
def _parse_cseq_cached(raw: bytes, loose: bool) -> CSeq:
    stripped = raw.strip(_LWS)
    m = (abnf.CSEQ_LOOSE_RE if loose else abnf.CSEQ_RE).match(stripped)
    if m is None:
        raise SipParseError(400, "Bad CSeq header", can_reply=False)
    text = m.group(1).decode("latin-1")
    number = parse_digits(m.group(1), MAX_UINT32)
    if number is None:
        if not loose:
            raise SipParseError(400, "CSeq number too large", can_reply=False)
        number = -1
    return CSeq(number, m.group(2).decode("ascii"), text)
