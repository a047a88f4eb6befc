"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25; RFC 3966), parsed from bytes on demand.

``parse_uri`` splits a URI into its parts and checks each part against its ABNF
(``abnf.py``). ``%HH`` escapes are decoded exactly where the grammar has ``escaped``
(user, password, parameter names and values, header names and values), and exactly
once (RFC 4475 §3.1.1.3: ``value%25%34%31`` is ``value%41``, not ``valueA``); the host
is never decoded. Decoded parts are ``str`` from UTF-8 with ``surrogateescape``, so an
escaped NUL or a non-UTF-8 octet survives (RFC 4475 §3.1.1.4). Any other scheme is kept
as an opaque ``AbsoluteUri`` (RFC 4475 §3.3.2: a proxy parses it, and the routing logic
decides what to answer).

Every URI keeps its ``raw`` bytes: the serializer forwards a URI as it was received
unless the routing logic replaced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from kcc_runtime.memory import parse_cache
from kcc_runtime.sip import abnf
from kcc_runtime.sip.errors import SipParseError

Params = tuple[tuple[str, str | None], ...]


def unescape(raw: bytes) -> str:
    """Decode ``%HH`` escapes once and return the text (UTF-8, ``surrogateescape``)."""
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1)."""

    #: ``"sip"`` or ``"sips"`` (lower case; the scheme is case-insensitive).
    scheme: str
    #: Decoded user part, or None when there is no userinfo.
    user: str | None
    #: Decoded password, or None when there is none.
    password: str | None
    #: Host as written (an IPv6 reference keeps its brackets).
    host: str
    #: Port, or None when absent.
    port: int | None
    #: URI parameters in order, names lower-cased, values decoded (None: no ``=``).
    params: Params
    #: Header fields (``?name=value&...``), decoded.
    headers: tuple[tuple[str, str], ...]
    #: The URI exactly as received.
    raw: bytes

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` ("" for a parameter without a value)."""
        for key, value in self.params:
            if key == name:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        """Whether parameter ``name`` is present, with or without a value."""
        return any(key == name for key, _ in self.params)


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: Params
    raw: bytes

    scheme = "tel"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of any other scheme, kept opaque (RFC 3261 §19.1.1 absoluteURI)."""

    scheme: str
    opaque: str
    raw: bytes


Uri = SipUri | TelUri | AbsoluteUri


def _bad(raw: bytes, what: str) -> SipParseError:
    return SipParseError(400, f"Bad URI ({what})")


def _params(parts: list[bytes], raw: bytes) -> Params:
    out: list[tuple[str, str | None]] = []
    for part in parts:
        m = abnf.URI_PARAM_RE.match(part)
        if m is None:
            raise _bad(raw, "parameter")
        value = m.group(2)
        out.append((unescape(m.group(1)).lower(), None if value is None else unescape(value)))
    return tuple(out)


def parse_uri(raw: bytes) -> Uri:
    """Parse one URI; raise ``SipParseError(400)`` when it breaks its grammar.

    Results are immutable and depend on the bytes alone, so the last
    ``_URI_CACHE_SIZE`` distinct URIs are remembered: a proxy sees the same From, To,
    Contact and Request-URI values over and over (bounded, so unique URIs from a
    flood only cycle the cache; and only URIs up to ``CACHED_MAX_LEN`` bytes, or a
    flood of 60 KB URIs would make the bound a quarter of a gigabyte)."""
    if len(raw) > CACHED_MAX_LEN:
        return _parse_uri_cached.__wrapped__(raw)
    return _parse_uri_cached(raw)


_URI_CACHE_SIZE: Final = 4096
#: the longest value the parsers' caches keep (longer ones are parsed every time)
CACHED_MAX_LEN: Final = 256


@parse_cache(maxsize=_URI_CACHE_SIZE)
def _parse_uri_cached(raw: bytes) -> Uri:
    colon = raw.find(b":")
    if colon <= 0:
        raise _bad(raw, "no scheme")
    scheme = raw[:colon].lower()
    if scheme in (b"sip", b"sips"):
        return _parse_sip(raw, scheme.decode("ascii"), colon + 1)
    if scheme == b"tel":
        rest = raw[colon + 1 :]
        number, *params = rest.split(b";")
        if abnf.TEL_NUMBER_RE.match(number) is None:
            raise _bad(raw, "tel number")
        return TelUri(_text(number), _params(params, raw), raw)
    m = abnf.ABSOLUTE_URI_RE.match(raw)
    if m is None:
        raise _bad(raw, "absolute URI")
    return AbsoluteUri(_text(m.group(1)).lower(), _text(m.group(2)), raw)


def _parse_sip(raw: bytes, scheme: str, start: int) -> SipUri:
    # userinfo ends at the first "@": no later part of a SIP URI may hold an unescaped "@"
    at = raw.find(b"@", start)
    user: str | None = None
    password: str | None = None
    if at >= 0:
        userinfo = raw[start:at]
        ucolon = userinfo.find(b":")
        user_raw = userinfo if ucolon < 0 else userinfo[:ucolon]
        if abnf.USER_RE.match(user_raw) is None:
            raise _bad(raw, "user")
        user = unescape(user_raw)
        if ucolon >= 0:
            pw = userinfo[ucolon + 1 :]
            if abnf.PASSWORD_RE.match(pw) is None:
                raise _bad(raw, "password")
            password = unescape(pw)
        start = at + 1
    rest = raw[start:]
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find(b"?")
    if q >= 0:
        hparts: list[tuple[str, str]] = []
        for part in rest[q + 1 :].split(b"&"):
            hm = abnf.URI_HEADER_RE.match(part)
            if hm is None:
                raise _bad(raw, "header")
            hparts.append((unescape(hm.group(1)), unescape(hm.group(2))))
        headers = tuple(hparts)
        rest = rest[:q]
    hostport, *params = rest.split(b";")
    m = abnf.HOSTPORT_RE.match(hostport)
    if m is None:
        raise _bad(raw, "host")
    port_raw = m.group(2)
    port = None if port_raw is None else int(port_raw)
    if port is not None and port > 65535:
        raise _bad(raw, "port")
    return SipUri(
        scheme, user, password, _text(m.group(1)), port, _params(params, raw), headers, raw
    )
