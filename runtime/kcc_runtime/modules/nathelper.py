"""NAT traversal helpers: NAT detection tests, Contact and SDP fixing,
received parameters and keepalive pings of registered contacts.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.

Behaviour measured on Kamailio 5.6.3 on loopback (a cfg calling each function and
``forward``-ing the request to a capture socket, the request sent from
127.0.0.1:25080 with ``Contact: <sip:alice@127.0.0.77:5099>`` and ``Via: SIP/2.0/UDP
127.0.0.77:5099;rport``):

- ``nat_uac_test``: flags 2, 16 and 128 true, 1, 4, 8, 32, 64, 256, 512 false; with
  ``10.0.0.5`` in Contact and SDP and ``192.168.1.2`` in Via, 1, 4 and 8 true too;
  a Via or Contact without port compares as 5060; 512 without ``$du`` is false.
- ``fix_nated_contact()``: the Contact URI's host and port become the source
  (``<sip:alice@127.0.0.1:25080>``; ``"A" <sip:alice@127.0.0.1:25080;transport=udp>;
  expires=30``; ``sip:alice@127.0.0.77`` -> ``sip:alice@127.0.0.1:25080``), in the
  message sent; ``$ct`` still reads the received value.
- ``add_contact_alias()``: ``;alias=127.0.0.1~25080~1`` right after the URI's
  host[:port] (before its parameters); 2 and no change when the URI's host, port and
  transport (``;transport=udp`` needed: a URI without one counts as "no protocol")
  equal the source's. ``add_contact_alias(ip, port, proto)``: always added, proto
  by name (``tcp`` is 2).
- ``set_contact_alias([1])``: ``;alias=...`` appended after the URI's parameters;
  with 1 an existing ``;alias=`` parameter is removed first.
- ``handle_ruri_alias()``: the first ``;alias=ip~port~proto`` parameter (name
  case-sensitive) leaves the R-URI and ``$du`` becomes ``sip:ip:port`` plus
  ``;transport=tcp|tls|sctp|ws|wss`` for protos 2..6: 1; no such parameter or a value
  without ``~``: 2; an unknown proto digit: error, -1. The port is copied as
  written (``~x~`` gives ``sip:127.0.0.1:x``), an IPv6 address too (no brackets
  added).
- ``fix_nated_register()``: the received AVP is ``sip:127.0.0.1:25080``.
- ``add_rcv_param()``: ``;received="sip:127.0.0.1:25080"`` after the Contact value;
  ``add_rcv_param(1)``: ``;received=sip:127.0.0.1:25080`` at the end of the URI.
- ``is_rfc1918``: 10/8, 100.64/10, 192.0.0.0/24 (``nat_addr_mode`` 1), 172.16/12,
  192.168/16 true; 127.0.0.1, IPv6, bad text false.
- ``fix_nated_sdp``: see :func:`fix_nated_sdp`.

Deviation: ``handle_ruri_alias(1)`` (the last alias) fails on 5.6.3 for some R-URIs
(``no '~' in alias param value`` with two aliases, ``no second '~'`` with one,
while ``;alias=127.0.0.1~25080~3;x=1`` works) and its failed parse leaves a ``:`` in
place of the first ``~`` in the forwarded R-URI; kcc consumes the last alias.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from kcc_runtime import logs
from kcc_runtime.context import Context, Process
from kcc_runtime.exports import (
    INT,
    INT_CONST,
    STR,
    STR_CONST,
    Cmd,
    FlagKind,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.kw import parse_ip
from kcc_runtime.location import store_for
from kcc_runtime.pv import current_ruri, set_ruri
from kcc_runtime.sdp import CONNECTION_RE, current_body, has_sdp_type, replace_body
from kcc_runtime.sip import Message, Request, SipParseError

if TYPE_CHECKING:
    from kcc_runtime.location import Contact

__all__ = [
    "EXPORTS",
    "NatPinger",
    "add_contact_alias",
    "add_rcv_param",
    "fix_nated_contact",
    "fix_nated_register",
    "fix_nated_sdp",
    "handle_ruri_alias",
    "is_private",
    "is_rfc1918",
    "nat_uac_test",
    "set_contact_alias",
]

log = logging.getLogger("kcc_runtime.nathelper")

#: Kamailio's protocol numbers, as ``alias=ip~port~proto`` writes them
PROTO_NUMBERS: Final = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}
PROTO_NAMES: Final = {n: p for p, n in PROTO_NUMBERS.items()}
#: nathelper's private ranges (``nat_addr_mode`` 0), then the reserved ones mode 1 adds
_PRIVATE: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/29")
)
_RESERVED: Final = (ipaddress.IPv4Network("192.0.0.0/24"),)

NAT_UAC_TEST_C_1918: Final = 1
NAT_UAC_TEST_RCVD: Final = 2
NAT_UAC_TEST_V_1918: Final = 4
NAT_UAC_TEST_S_1918: Final = 8
NAT_UAC_TEST_RPORT: Final = 16
NAT_UAC_TEST_O_1918: Final = 32
NAT_UAC_TEST_WS: Final = 64
NAT_UAC_TEST_C_PORT: Final = 128
NAT_UAC_TEST_SDP_SRC: Final = 256
NAT_UAC_TEST_DST: Final = 512


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _str_param(ctx: Context, name: str, default: str | None = None) -> str | None:
    value = ctx.proc.modparams.get(("nathelper", name), default)
    return value if isinstance(value, str) else default


def is_private(ip: str, mode: int = 1) -> bool:
    """Whether ``ip`` is an IPv4 address in nathelper's private ranges (mode 1 adds
    192.0.0.0/24). IPv6 and text that is not an address are never private (measured:
    ``is_rfc1918("fd00::1")`` is -1 on 5.6.3)."""
    addr = parse_ip(ip)
    if not isinstance(addr, ipaddress.IPv4Address):
        return False
    nets = _PRIVATE + _RESERVED if mode else _PRIVATE
    return any(addr in net for net in nets)


def _mode(ctx: Context) -> int:
    return ctx.proc.modparam_int("nathelper", "nat_addr_mode", 1)


def is_rfc1918(ctx: Context, ip: str) -> int:
    """``is_rfc1918(ip)``: 1 when ``ip`` is a private (RFC 1918/6598/7335) IPv4
    address, else -1."""
    return 1 if is_private(ip, _mode(ctx)) else -1


def _same_ip(a: str, b: str) -> bool:
    left = parse_ip(a)
    return left is not None and left == parse_ip(b)


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _received_uri(ctx: Context) -> str:
    """``sip:<source ip>:<port>`` plus ``;transport=`` for anything but UDP, as
    ``fix_nated_register`` and ``add_rcv_param`` build it."""
    r = ctx.received
    uri = f"sip:{_hostport(r.src_ip, r.src_port)}"
    if r.proto != "udp":
        uri += f";transport={r.proto}"
    return uri


# -- the Contact URI in the buffer -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _UriSpan:
    """Where the first Contact URI and its pieces are in ``msg.buf``."""

    start: int  # the URI
    end: int
    host_start: int  # host[:port]
    host_end: int
    host: str
    port: int | None
    transport: str | None
    params_end: int  # end of the URI parameters (before ``?headers``)


def _split_hostport(uri: bytes, base: int) -> tuple[int, int, str, int | None] | None:
    colon = uri.find(b":")
    if colon < 0:
        return None
    rest_start = colon + 1
    stop = len(uri)
    for sep in (b";", b"?"):
        i = uri.find(sep, rest_start)
        if 0 <= i < stop:
            stop = i
    at = uri.rfind(b"@", rest_start, stop)
    hs = at + 1 if at >= 0 else rest_start
    hostport = uri[hs:stop]
    port: int | None = None
    if hostport.startswith(b"["):
        close = hostport.find(b"]")
        if close < 0:
            return None
        host = hostport[1:close]
        tail = hostport[close + 1 :]
    else:
        host, sep, tail = hostport.partition(b":")
        tail = b":" + tail if sep else b""
    if tail:
        if not tail.startswith(b":") or not tail[1:].isdigit():
            return None
        port = int(tail[1:])
    if not host:
        return None
    return base + hs, base + stop, _text(host), port


def _contact_span(msg: Message) -> _UriSpan | None:
    """The first Contact's URI, located in the buffer; None without a Contact or when
    it does not parse (Kamailio's ``get_contact_uri`` failing)."""
    try:
        contacts = msg.contacts
    except SipParseError:
        return None
    if not contacts:
        return None
    first = contacts[0]
    start = msg.buf.find(first.uri_raw, first.start, first.end)
    if start < 0:
        return None
    raw = first.uri_raw
    parts = _split_hostport(raw, start)
    if parts is None:
        return None
    hs, he, host, port = parts
    q = raw.find(b"?", he - start)
    params_end = start + (q if q >= 0 else len(raw))
    transport: str | None = None
    for item in raw[he - start : params_end - start].split(b";"):
        name, _, value = item.partition(b"=")
        if name.strip().lower() == b"transport":
            transport = _text(value.strip()).lower()
    return _UriSpan(start, start + len(raw), hs, he, host, port, transport, params_end)


def _default_port(msg: Message) -> int:
    return 5060


# -- nat_uac_test --------------------------------------------------------------------


def _via_test(ctx: Context, flags: int) -> bool:
    try:
        via = ctx.msg.via
    except SipParseError:
        return False
    if via is None:
        return False
    r = ctx.received
    if flags & NAT_UAC_TEST_RCVD and not _same_ip(via.host, r.src_ip):
        return True
    if flags & NAT_UAC_TEST_V_1918 and is_private(via.host, _mode(ctx)):
        return True
    via_port = via.port if via.port is not None else 5060
    return bool(flags & NAT_UAC_TEST_RPORT and via_port != r.src_port)


def _contact_test(ctx: Context, flags: int) -> bool:
    span = _contact_span(ctx.msg)
    if span is None:
        return False
    if flags & NAT_UAC_TEST_C_1918 and is_private(span.host, _mode(ctx)):
        return True
    port = span.port if span.port is not None else _default_port(ctx.msg)
    return bool(flags & NAT_UAC_TEST_C_PORT and port != ctx.received.src_port)


def _sdp_addresses(msg: Message) -> list[str]:
    if not has_sdp_type(msg):
        return []
    return [_text(m.group(2)) for m in CONNECTION_RE.finditer(current_body(msg))]


def _dst_test(ctx: Context) -> bool:
    """Flag 512: a request whose ``$du`` names another host or port than the R-URI;
    a reply whose second Via's host/port differ from its received/rport."""
    if ctx.received.proto in ("ws", "wss"):
        return True
    msg = ctx.msg
    if isinstance(msg, Request):
        if not ctx.dst_uri:
            return False
        ruri = current_ruri(ctx) or ""
        a = _split_hostport(_bytes(ruri), 0)
        b = _split_hostport(_bytes(ctx.dst_uri), 0)
        if a is None or b is None:
            return False
        return (a[2].lower(), a[3] or 5060) != (b[2].lower(), b[3] or 5060)
    try:
        vias = msg.vias
    except SipParseError:
        return False
    if len(vias) < 2:
        return False
    via = vias[1]
    params = dict(via.params)
    received = params.get("received")
    rport = params.get("rport")
    if received and not _same_ip(received, via.host):
        return True
    return bool(rport and rport.isdigit() and int(rport) != (via.port or 5060))


def nat_uac_test(ctx: Context, flags: int) -> int:
    """``nat_uac_test(flags)``: 1 when any of the tests selected by ``flags`` sees a
    NAT, else -1 (README 5.5; the flag values are the module's ``NAT_UAC_TEST_*``).
    A test whose header is missing or does not parse is false."""
    r = ctx.received
    if flags & (NAT_UAC_TEST_RCVD | NAT_UAC_TEST_V_1918 | NAT_UAC_TEST_RPORT) and _via_test(
        ctx, flags
    ):
        return 1
    if flags & NAT_UAC_TEST_O_1918 and is_private(r.src_ip, _mode(ctx)):
        return 1
    if flags & (NAT_UAC_TEST_C_1918 | NAT_UAC_TEST_C_PORT) and _contact_test(ctx, flags):
        return 1
    if flags & (NAT_UAC_TEST_S_1918 | NAT_UAC_TEST_SDP_SRC):
        addresses = _sdp_addresses(ctx.msg)
        if flags & NAT_UAC_TEST_S_1918 and any(is_private(a, _mode(ctx)) for a in addresses):
            return 1
        if flags & NAT_UAC_TEST_SDP_SRC and any(not _same_ip(a, r.src_ip) for a in addresses):
            return 1
    if flags & NAT_UAC_TEST_WS and r.proto in ("ws", "wss"):
        return 1
    if flags & NAT_UAC_TEST_DST and _dst_test(ctx):
        return 1
    return -1


# -- Contact fixing ----------------------------------------------------------------------


def fix_nated_contact(ctx: Context) -> int:
    """``fix_nated_contact()``: the first Contact URI's host[:port] becomes the
    source address and port (IPv6 in brackets), in the message sent; -1 without a
    Contact that parses."""
    span = _contact_span(ctx.msg)
    if span is None:
        log.error("fix_nated_contact: no Contact URI to fix")
        return -1
    r = ctx.received
    ctx.msg._splice(span.host_start, span.host_end, _bytes(_hostport(r.src_ip, r.src_port)))
    return 1


def _alias_value(ip: str, port: int | str, proto: int) -> str:
    return f"{_bracket(ip)}~{port}~{proto}"


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def _alias_name(ctx: Context) -> str:
    return _str_param(ctx, "alias_name", "alias") or "alias"


def add_contact_alias(
    ctx: Context, ip: str | None = None, port: str | None = None, proto: str | None = None
) -> int:
    """``add_contact_alias([ip, port, proto])``: insert ``;alias=ip~port~proto``
    after the first Contact URI's host[:port]. Without arguments the source address,
    port and protocol are used and nothing is added (2) when the URI already names
    them (host, port and ``transport`` all equal); -1 without a Contact or with a
    bad argument."""
    span = _contact_span(ctx.msg)
    if span is None:
        log.error("add_contact_alias: no Contact URI")
        return -1
    r = ctx.received
    if ip is None or port is None or proto is None:
        uri_port = span.port if span.port is not None else 5060
        if _same_ip(span.host, r.src_ip) and uri_port == r.src_port and span.transport == r.proto:
            return 2
        value = _alias_value(r.src_ip, r.src_port, PROTO_NUMBERS.get(r.proto, 1))
    else:
        number = PROTO_NUMBERS.get(proto.strip().lower())
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            log.error("add_contact_alias: bad ip address <%s>", ip)
            return -1
        if number is None or not port.isdigit() or not 0 < int(port) < 65536:
            log.error("add_contact_alias: bad port <%s> or proto <%s>", port, proto)
            return -1
        value = _alias_value(ip, port, number)
    ctx.msg._splice(span.host_end, span.host_end, _bytes(f";{_alias_name(ctx)}={value}"))
    return 1


def set_contact_alias(ctx: Context, trim: int = 0) -> int:
    """``set_contact_alias([trim])``: append ``;alias=<src ip>~<src port>~<proto>``
    after the first Contact URI's parameters; with ``trim`` 1 an existing alias
    parameter is removed first. -1 without a Contact."""
    span = _contact_span(ctx.msg)
    if span is None:
        log.error("set_contact_alias: no Contact URI")
        return -1
    r = ctx.received
    name = _alias_name(ctx)
    value = _alias_value(r.src_ip, r.src_port, PROTO_NUMBERS.get(r.proto, 1))
    buf = ctx.msg.buf
    if trim:
        params = buf[span.host_end : span.params_end]
        kept = [p for p in params.split(b";")[1:] if p.partition(b"=")[0] != _bytes(name)]
        new = b"".join(b";" + p for p in kept) + _bytes(f";{name}={value}")
        ctx.msg._splice(span.host_end, span.params_end, new)
    else:
        ctx.msg._splice(span.params_end, span.params_end, _bytes(f";{name}={value}"))
    return 1


def handle_ruri_alias(ctx: Context, mode: int = 0) -> int:
    """``handle_ruri_alias([mode])``: take the first (mode 0) or last alias
    parameter out of the R-URI and route to it (``$du``): 1; 2 when there is none
    (or its value has no ``~``); -1 on a bad value or a reply."""
    ruri = current_ruri(ctx)
    if ruri is None:
        return -1
    name = _alias_name(ctx) + "="
    q = ruri.find("?")
    head, tail = (ruri, "") if q < 0 else (ruri[:q], ruri[q:])
    pieces = head.split(";")
    found = [i for i, p in enumerate(pieces) if i > 0 and p.startswith(name)]
    if not found:
        return 2
    index = found[-1] if mode else found[0]
    value = pieces[index][len(name) :]
    if "~" not in value:
        return 2
    ip, _, rest = value.partition("~")
    port, sep, proto = rest.partition("~")
    if not sep:
        log.error("no second '~' in alias param value")
        return -1
    if len(proto) != 1 or proto not in "123456":
        log.error("unknown proto in alias param")
        return -1
    transport = PROTO_NAMES[int(proto)]
    du = f"sip:{ip}:{port}" + ("" if transport == "udp" else f";transport={transport}")
    new = ";".join(pieces[:index] + pieces[index + 1 :]) + tail
    if not set_ruri(ctx, new):
        return -1
    ctx.dst_uri = du
    return 1


def _avp_key(spec: str) -> str | int:
    """The ``ctx.avps`` key of ``received_avp`` (``$avp(RECEIVED)``, ``$avp(s:x)``,
    ``$avp(i:42)``), as the registrar reads it."""
    inner = spec.strip()
    if inner.startswith("$avp(") and inner.endswith(")"):
        inner = inner[5:-1]
    if inner.startswith("i:") and inner[2:].isdigit():
        return int(inner[2:])
    return inner[2:] if inner.startswith("s:") else inner


def fix_nated_register(ctx: Context) -> int:
    """``fix_nated_register()``: store ``sip:<src ip>:<src port>[;transport=...]``
    in the ``received_avp`` AVP, which the registrar saves as the contact's
    ``received``. -1 when ``received_avp`` is not set (Kamailio refuses to start)."""
    spec = _str_param(ctx, "received_avp")
    if not spec:
        log.error("fix_nated_register: received_avp is not set")
        return -1
    ctx.avps.setdefault(_avp_key(spec), []).insert(0, _received_uri(ctx))
    return 1


def add_rcv_param(ctx: Context, flag: int = 0) -> int:
    """``add_rcv_param([flag])``: a ``received`` parameter with the source URI on
    every Contact: a quoted header parameter (flag 0) or an unquoted URI parameter
    (flag non-zero). -1 without a Contact."""
    msg = ctx.msg
    try:
        contacts = msg.contacts
    except SipParseError:
        contacts = []
    if not contacts:
        return -1
    uri = _received_uri(ctx)
    for c in contacts:
        if flag:
            start = msg.buf.find(c.uri_raw, c.start, c.end)
            if start < 0:
                return -1
            q = c.uri_raw.find(b"?")
            at = start + (q if q >= 0 else len(c.uri_raw))
            msg._splice(at, at, _bytes(f";received={uri}"))
        else:
            msg._splice(c.end, c.end, _bytes(f';received="{uri}"'))
    return 1


# -- SDP -------------------------------------------------------------------------------

_ORIGIN_FIX: Final = 0x08
_MEDIA_FIX: Final = 0x02
_ADD_ACTIVE: Final = 0x01
_ADD_NORTPPROXY: Final = 0x04


def nortpproxy_line(value: str) -> bytes:
    """``nortpproxy_str`` as a line: the cfg's ``\\r\\n`` escapes are CR LF (the
    table's default is written with them)."""
    return _bytes(value.replace("\\r", "\r").replace("\\n", "\n"))


def _line_spans(body: bytes, prefix: bytes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(body):
        nl = body.find(b"\n", pos)
        end = len(body) if nl < 0 else nl
        if body.startswith(prefix, pos):
            stop = end - 1 if end > pos and body[end - 1 : end] == b"\r" else end
            out.append((pos, stop))
        pos = end + 1
    return out


def _last_token(body: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """The span of the line's last blank-separated token (an address)."""
    line = body[start:stop].rstrip(b" \t")
    cut = max(line.rfind(b" "), line.rfind(b"\t"))
    if cut < 0:
        return None
    return start + cut + 1, start + len(line)


def _family_of(body: bytes, start: int, stop: int) -> bytes:
    return b"6" if b" IP6 " in body[start:stop] else b""


def fix_nated_sdp(ctx: Context, flags: int, ip: str | None = None) -> int:
    """``fix_nated_sdp(flags[, ip])``: 1 when an address was replaced, 2 when none
    was, -1 without a body (measured on 5.6.3: ``extract_body(): message body has
    length zero``).

    - 0x02: every ``c=`` line's address (session and media level), then every
      ``a=rtcp:port IN IP4 addr`` line's, becomes ``ip`` or the source address;
    - 0x08: the ``o=`` line's address, then the ``a=rtcp`` lines not replaced yet;
    - an address already equal to the new one, or a null address (``0.0.0.0``,
      on-hold), is left alone;
    - each replacement appends ``a=oldmediaip:<old>`` (``a=oldmediaip6:`` for an
      ``IP6`` line, whose ``IP6`` token stays: measured) unless
      ``append_sdp_oldmediaip`` is 0;
    - 0x01 appends ``a=direction:active``, 0x04 ``nortpproxy_str`` (even when the
      body already has it, rc 2), before the ``oldmediaip`` lines.

    Measured: flags 15 on ``c=``/``o=``/``a=rtcp`` all with 10.0.0.5 from 127.0.0.1
    gave the three lines rewritten and ``a=direction:active``, ``a=nortpproxy:yes``
    and three ``a=oldmediaip:10.0.0.5`` lines appended."""
    msg = ctx.msg
    body = current_body(msg)
    if not body:
        log.error("cannot extract body from msg!")
        return -1
    new_ip = _bytes(ip if ip else ctx.received.src_ip)
    edits: list[tuple[int, int, bytes]] = []
    old_lines: list[bytes] = []
    done: set[int] = set()

    def replace(spans: Sequence[tuple[int, int]]) -> None:
        for start, stop in spans:
            if start in done:
                continue
            token = _last_token(body, start, stop)
            if token is None:
                continue
            old = body[token[0] : token[1]]
            if old == new_ip or old in (b"0.0.0.0", b"::"):
                continue
            done.add(start)
            edits.append((token[0], token[1], new_ip))
            old_lines.append(b"a=oldmediaip" + _family_of(body, start, stop) + b":" + old)

    if flags & _MEDIA_FIX:
        replace(_line_spans(body, b"c="))
        replace(_line_spans(body, b"a=rtcp:"))
    if flags & _ORIGIN_FIX:
        replace(_line_spans(body, b"o="))
        replace(_line_spans(body, b"a=rtcp:"))
    appended: list[bytes] = []
    eol = b"\r\n"
    if flags & _ADD_ACTIVE:
        appended.append(b"a=direction:active" + eol)
    if flags & _ADD_NORTPPROXY:
        marker = nortpproxy_line(_str_param(ctx, "nortpproxy_str", "a=nortpproxy:yes\\r\\n") or "")
        if marker:
            appended.append(marker)
    if ctx.proc.modparam_int("nathelper", "append_sdp_oldmediaip", 1):
        appended.extend(line + eol for line in old_lines)
    if not edits and not appended:
        return 2
    out: list[bytes] = []
    cur = 0
    for start, end, data in sorted(edits):
        out += [body[cur:start], data]
        cur = end
    out.append(body[cur:])
    if appended and not body.endswith(b"\n"):
        out.append(eol)
    out.extend(appended)
    replace_body(msg, b"".join(out))
    return 1 if edits else 2


# -- NAT pinging ------------------------------------------------------------------------


class NatPinger:
    """nathelper's keepalives to registered contacts (``natping_interval``).

    Every ``natping_interval`` seconds each valid contact of every location table
    is pinged, as nathelper's ``nh_timer`` does: contacts with
    ``natping_disable_bflag`` are skipped; with ``ping_nated_only`` 1 only contacts
    with usrloc's ``nat_bflag``; a contact with ``sipping_bflag`` (and
    ``sipping_from`` set) gets a SIP request (``sipping_method``, OPTIONS by
    default), the others a 4-byte UDP keepalive (Kamailio's ``"\\0\\0\\0\\0"``,
    sent only over UDP). The destination is the contact's ``received`` address,
    else its URI's host and port.

    One worker pings (Kamailio runs ``natping_processes`` dedicated timer processes,
    1 by default; kcc has no extra process): the worker of rank 1, or a process with
    no supervisor (rank 0). The others never ping, so each contact gets one ping per
    interval whatever ``children`` is. The pings leave from the first UDP listening
    socket (``force_socket`` is not honoured) and the replies come back to the
    proxy's socket: a reply to a ping has only our Via, so the core drops it
    (Kamailio's nathelper filters them the same way, ``sipping_rpl_filter``).
    Replies are not tracked (``keepalive_timeout`` is not implemented)."""

    def __init__(
        self,
        interval: float,
        send: Callable[[bytes, tuple[str, int]], bool],
        contacts: Callable[[], list[Contact]],
        params: dict[str, int | str],
        local: tuple[str, int],
        *,
        nat_bflag: int = -1,
    ) -> None:
        self.interval = interval
        self.send = send
        self.contacts = contacts
        self.params = params
        self.local = local
        self.nat_bflag = nat_bflag
        self.next_due: float | None = None
        self.counter = 0
        self.sent = 0

    def _int(self, name: str, default: int) -> int:
        value = self.params.get(name, default)
        return value if isinstance(value, int) else default

    def on_timer(self, now: float) -> None:
        """Ping every contact when the interval has passed."""
        if self.next_due is None:
            self.next_due = now + self.interval
            return
        if now < self.next_due:
            return
        self.next_due = now + self.interval
        for contact in self.contacts():
            self.ping(contact)

    def _flag(self, name: str) -> int:
        bit = self._int(name, -1)
        return 1 << bit if 0 <= bit < 32 else 0

    def ping(self, contact: Contact) -> bool:
        """Send one keepalive to ``contact`` if it qualifies; True when sent."""
        disable = self._flag("natping_disable_bflag")
        if disable and contact.cflags & disable:
            return False
        nat = 1 << self.nat_bflag if 0 <= self.nat_bflag < 32 else 0
        if self._int("ping_nated_only", 0) and not (nat and contact.cflags & nat):
            return False
        dst = _ping_destination(contact)
        if dst is None:
            return False
        sipping = self._flag("sipping_bflag")
        sipping_from = self.params.get("sipping_from")
        if sipping and contact.cflags & sipping and isinstance(sipping_from, str):
            data = self.options(contact, sipping_from)
        elif dst[2] == "udp":
            data = b"\0\0\0\0"
        else:
            return False
        ok = self.send(data, (dst[0], dst[1]))
        self.sent += int(ok)
        return ok

    def options(self, contact: Contact, sipping_from: str) -> bytes:
        """The keepalive request for ``contact``: nathelper's ``sipping`` template
        (request line to the contact URI, our Via with ``branch=0``, From
        ``sipping_from`` with a tag, To the contact URI, a fresh Call-ID, CSeq 1)."""
        self.counter += 1
        method = self.params.get("sipping_method", "OPTIONS")
        method = method if isinstance(method, str) and method else "OPTIONS"
        host, port = self.local
        pid = os.getpid()
        uri = contact.contact
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {_hostport(host, port)};branch=0",
            f"From: {sipping_from};tag=uloc-{pid:x}-{self.counter:x}",
            f"To: {uri}",
            f"Call-ID: nathelper-{pid:x}-{self.counter:x}-{int(time.time()):x}@{host}",
            f"CSeq: 1 {method}",
            "Content-Length: 0",
            "",
            "",
        ]
        return _bytes("\r\n".join(lines))


def _ping_destination(contact: Contact) -> tuple[str, int, str] | None:
    """Where a keepalive for ``contact`` goes: its ``received`` URI, else its own
    URI (host must be an IP literal: no DNS from the timer)."""
    for uri in (contact.received, contact.contact):
        if not uri:
            continue
        parts = _split_hostport(_bytes(uri), 0)
        if parts is None:
            continue
        host = parts[2]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        transport = "udp"
        for item in uri.split(";")[1:]:
            name, _, value = item.partition("=")
            if name.strip().lower() == "transport":
                transport = value.strip().lower()
        return host, parts[3] or 5060, transport
    return None


def pinger_for(
    modparams: dict[tuple[str, str], int | str],
    send: Callable[[bytes, tuple[str, int]], bool],
    contacts: Callable[[], list[Contact]],
    local: tuple[str, int],
) -> NatPinger | None:
    """The pinger of this worker, or None: ``natping_interval`` 0, or a worker of
    rank > 1 (see :class:`NatPinger`)."""
    interval = modparams.get(("nathelper", "natping_interval"), 0)
    if not isinstance(interval, int) or interval <= 0 or logs.rank() > 1:
        return None
    params = {n: v for (m, n), v in modparams.items() if m == "nathelper"}
    nat = modparams.get(("usrloc", "nat_bflag"), -1)
    return NatPinger(
        float(interval),
        send,
        contacts,
        params,
        local,
        nat_bflag=nat if isinstance(nat, int) else -1,
    )


def natping_timer(engine: Any) -> NatPinger | None:
    """nathelper's timer for one worker's engine (``ModuleExports.timers``): its
    pinger, or None when pinging is off or another worker pings. Pings leave from the
    engine's first UDP socket through its outbound guard (``engine.emit``), to the
    contacts of every location table (the worker's store, opened on first use)."""
    udp = [s for s in engine.sockets if s.proto == "udp"]
    if not udp:
        return None
    src = udp[0]
    process: Process = engine.process

    def send(data: bytes, dst: tuple[str, int]) -> bool:
        return bool(engine.emit(data, "udp", dst, src))

    def contacts() -> list[Contact]:
        store = process.location
        if store is None:
            db_url = process.modparams.get(("usrloc", "db_url"))
            store = process.location = store_for(
                process.modparam_int("usrloc", "db_mode", 0),
                db_url if isinstance(db_url, str) else None,
                process.modparam_int("usrloc", "timer_interval", 60),
            )
        return store.every_contact()

    return pinger_for(dict(process.modparams), send, contacts, (src.ip, src.port))


# route kinds the functions below may be used in
REQ_REPLY_BRANCH_LOCAL = Route.REQUEST | Route.ONREPLY | Route.BRANCH | Route.LOCAL
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH
REQ_BRANCH_LOCAL = Route.REQUEST | Route.BRANCH | Route.LOCAL
REQ_FAIL_REPLY_BRANCH_LOCAL = (
    Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH | Route.LOCAL
)

EXPORTS = ModuleExports(
    name="nathelper",
    timers=(natping_timer,),
    cmds=(
        # NAT detection
        Cmd(
            "nat_uac_test",
            (INT,),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            impl=nat_uac_test,
            fixup="fixup_igp_null",
        ),
        Cmd("is_rfc1918", (STR,), Route.ANY, impl=is_rfc1918, fixup="fixup_spve_null"),
        # fixing Contact and SDP
        Cmd("fix_nated_contact", (), REQ_REPLY_BRANCH_LOCAL, impl=fix_nated_contact),
        Cmd("add_contact_alias", (), REQ_REPLY_BRANCH_LOCAL, impl=add_contact_alias),
        Cmd(
            "add_contact_alias",
            (STR, STR, STR),
            REQ_FAIL_REPLY_BRANCH,
            impl=add_contact_alias,
            fixup="fixup_add_contact_alias",
        ),
        Cmd("set_contact_alias", (), REQ_REPLY_BRANCH_LOCAL, impl=set_contact_alias),
        Cmd(
            "set_contact_alias",
            (INT_CONST,),
            REQ_REPLY_BRANCH_LOCAL,
            impl=set_contact_alias,
            fixup="fixup_int_1",
        ),
        Cmd("handle_ruri_alias", (), REQ_BRANCH_LOCAL, impl=handle_ruri_alias),
        Cmd(
            "handle_ruri_alias",
            (INT,),
            REQ_BRANCH_LOCAL,
            impl=handle_ruri_alias,
            fixup="fixup_igp_null",
        ),
        Cmd(
            "fix_nated_sdp",
            (INT,),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            impl=fix_nated_sdp,
            fixup="fixup_fix_sdp",
        ),
        Cmd(
            "fix_nated_sdp",
            (INT, STR),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            impl=fix_nated_sdp,
            fixup="fixup_fix_sdp",
        ),
        Cmd(
            "fix_nated_register",
            (),
            Route.REQUEST,
            impl=fix_nated_register,
            fixup="fixup_fix_nated_register",
        ),
        Cmd("add_rcv_param", (), Route.REQUEST, impl=add_rcv_param),
        Cmd("add_rcv_param", (INT,), Route.REQUEST, impl=add_rcv_param, fixup="fixup_igp_null"),
        Cmd("set_alias_to_pv", (STR_CONST,), Route.ANY),
    ),
    params=(
        ModParam("natping_interval", int, 0),
        ModParam("ping_nated_only", int, 0),
        ModParam("nortpproxy_str", str, "a=nortpproxy:yes\\r\\n"),
        ModParam("received_avp", str, None),
        ModParam("force_socket", str, None),
        ModParam("sipping_from", str, None),
        ModParam("sipping_method", str, "OPTIONS"),
        ModParam("sipping_bflag", int, -1, flag=FlagKind.BRANCH),
        ModParam("natping_disable_bflag", int, -1, flag=FlagKind.BRANCH),
        ModParam("natping_processes", int, 1),
        ModParam("natping_socket", str, None),
        ModParam("keepalive_timeout", int, 0),
        ModParam("udpping_from_path", int, 0),
        ModParam("append_sdp_oldmediaip", int, 1),
        ModParam("filter_server_id", int, 0),
        ModParam("nat_addr_mode", int, 1),
        ModParam("alias_name", str, "alias"),
    ),
    pvs=(
        PvExport("rr_count"),
        PvExport("rr_top_count"),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``ignore_path``
