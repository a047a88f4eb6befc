"""Condition keywords: ``method``, ``uri``, ``src_ip``, ``myself`` ... in ``if`` tests.

The generated code reads a keyword with ``kw.<name>(ctx)`` and compares it with the
helper for that keyword's rule (``docs/generated-code.md``, "Condition keywords").
Kamailio 5.6.3 behaviour followed, measured on loopback (``listen=udp:127.0.0.1:5070``,
``listen=tcp:127.0.0.1:5060``, ``alias=proxy.example.net:5090``,
``alias=other.example``, ``auto_aliases=no``; ``$ru = ...; if (uri == myself)``):

- ``method == "options"`` is case-insensitive; ``uri``/``from_uri``/``to_uri``/
  ``status`` ``== "string"`` compare case-insensitively;
- ``uri == myself`` (``check_self``): the URI host equals a listen address or an alias
  (names case-insensitively, IP addresses by value) **and** the port matches: a URI
  without a port means 5060 (``sip:127.0.0.1`` is not myself with only a 5070
  listener, and is myself once something listens on 5060; ``sips:`` does not change
  that); a listen address matches any socket's port on that address whatever the
  protocol; an alias with a port needs that port (``sip:proxy.example.net`` is not
  myself, ``sip:PROXY.example.net:5090`` is), an alias without one matches any port
  (``sip:other.example:1234`` is myself). A ``tel:`` URI is never myself, and an
  IPv4-mapped IPv6 host is not the IPv4 address (``sip:[::ffff:127.0.0.1]:5070`` is
  not myself);
- ``src_ip == myself`` matches any listen address (any port) or alias name;
- the socket a message came in on always counts as a listen socket (Kamailio without
  ``listen`` listens on every interface).

``snd_*`` and ``to_*`` only have values in ``onsend_route``; they read
``ctx.send_socket`` (``(proto, ip, port)`` of the local socket sending) and
``ctx.send_to`` (``(proto, ip, port)`` of the destination) when the engine has set
them, else ``$null``/0. ``ip_eq_str`` with a host name does not resolve it (Kamailio
would look it up in DNS): only a textual IP can be equal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from kcc_runtime.pv import current_ruri, split_uri
from kcc_runtime.sip import Request, Response, SipParseError
from kcc_runtime.sip.uri import CACHED_MAX_LEN
from kcc_runtime.values import Value, to_str

if TYPE_CHECKING:
    from kcc_runtime.context import Context

__all__ = [
    "AF_INET",
    "AF_INET6",
    "PROTO_SCTP",
    "PROTO_TCP",
    "PROTO_TLS",
    "PROTO_UDP",
    "PROTO_WS",
    "PROTO_WSS",
    "Myself",
    "Network",
    "af",
    "dst_ip",
    "dst_port",
    "from_uri",
    "ip_eq_str",
    "ip_in",
    "ip_is_myself",
    "method",
    "method_eq",
    "msg_len",
    "network",
    "parse_ip",
    "parse_socket",
    "proto",
    "register_check_self",
    "snd_af",
    "snd_ip",
    "snd_port",
    "snd_proto",
    "src_ip",
    "src_port",
    "status",
    "str_ieq",
    "to_ip",
    "to_port",
    "to_uri",
    "uri",
    "uri_is_myself",
]

#: Kamailio's ``enum sip_protos`` (``ip_addr.h``)
PROTO_UDP: Final = 1
PROTO_TCP: Final = 2
PROTO_TLS: Final = 3
PROTO_SCTP: Final = 4
PROTO_WS: Final = 5
PROTO_WSS: Final = 6
#: Linux address families
AF_INET: Final = 2
AF_INET6: Final = 10

_PROTOS: Final[dict[str, int]] = {
    "udp": PROTO_UDP,
    "tcp": PROTO_TCP,
    "tls": PROTO_TLS,
    "sctp": PROTO_SCTP,
    "ws": PROTO_WS,
    "wss": PROTO_WSS,
}
SIP_PORT: Final = 5060
SIPS_PORT: Final = 5061

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- reading the message ---------------------------------------------------------------------


def method(ctx: Context) -> str | None:
    """The request method; for a reply, its CSeq method."""
    msg = ctx.msg
    if isinstance(msg, Request):
        return msg.method
    try:
        cseq = msg.cseq
    except SipParseError:
        return None
    return None if cseq is None else cseq.method


#: ``uri``: the R-URI as routing sees it (the rewritten one when set); None in a reply
uri: Final = current_ruri


def status(ctx: Context) -> str | None:
    """A reply's status code as text; None in a request."""
    msg = ctx.msg
    return str(msg.status) if isinstance(msg, Response) else None


def _name_addr_uri(ctx: Context, which: str) -> str | None:
    try:
        na = ctx.msg.from_ if which == "from" else ctx.msg.to
    except SipParseError:
        return None
    return None if na is None else na.uri_raw.decode("utf-8", "surrogateescape")


def from_uri(ctx: Context) -> str | None:
    return _name_addr_uri(ctx, "from")


def to_uri(ctx: Context) -> str | None:
    return _name_addr_uri(ctx, "to")


def src_ip(ctx: Context) -> str:
    return ctx.received.src_ip


def src_port(ctx: Context) -> int:
    return ctx.received.src_port


def dst_ip(ctx: Context) -> str:
    return ctx.received.dst_ip


def dst_port(ctx: Context) -> int:
    return ctx.received.dst_port


def proto(ctx: Context) -> int:
    """The receiving protocol as Kamailio's ``PROTO_*`` number (0 if unknown)."""
    return _PROTOS.get(ctx.received.proto.lower(), 0)


def _family(ip: str | None) -> int:
    if not ip:
        return 0
    return AF_INET6 if ":" in ip else AF_INET


def af(ctx: Context) -> int:
    """The address family of the received message (``AF_INET``/``AF_INET6``)."""
    return _family(ctx.received.src_ip)


def msg_len(ctx: Context) -> int:
    """``msg:len``: the received message's length in bytes."""
    return len(ctx.msg.buf)


def _send_tuple(ctx: Context, attr: str) -> tuple[str, str, int] | None:
    value = getattr(ctx, attr, None)
    if isinstance(value, tuple) and len(value) == 3:
        return value
    return None


def snd_ip(ctx: Context) -> str | None:
    sock = _send_tuple(ctx, "send_socket")
    return None if sock is None else sock[1]


def snd_port(ctx: Context) -> int:
    sock = _send_tuple(ctx, "send_socket")
    return 0 if sock is None else sock[2]


def snd_proto(ctx: Context) -> int:
    sock = _send_tuple(ctx, "send_socket")
    return 0 if sock is None else _PROTOS.get(sock[0].lower(), 0)


def snd_af(ctx: Context) -> int:
    return _family(snd_ip(ctx))


def to_ip(ctx: Context) -> str | None:
    dst = _send_tuple(ctx, "send_to")
    return None if dst is None else dst[1]


def to_port(ctx: Context) -> int:
    dst = _send_tuple(ctx, "send_to")
    return 0 if dst is None else dst[2]


# -- comparisons -----------------------------------------------------------------------------


def method_eq(ctx: Context, name: str) -> int:
    """``method == "NAME"``: 1 when the method is ``name``, ignoring case."""
    current = method(ctx)
    return 1 if current is not None and current.lower() == name.lower() else 0


def str_ieq(left: Value, right: str) -> int:
    """``uri == "text"`` (and ``from_uri``, ``to_uri``, ``status``): case-insensitive."""
    return 1 if left is not None and to_str(left).lower() == right.lower() else 0


#: a dotted IPv4 address whose octets may have leading zeros (``127.000.000.001``)
_DOTTED: Final = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)", re.ASCII)


def parse_ip(text: str | None) -> Address | None:
    """``text`` as an address (never raises), as Kamailio's ``str2ip``/``str2ip6``
    read it (measured on 5.6.3 with ``src_ip == "..."``): an IPv6 address in any
    textual form, also in brackets (``[::1]``); an IPv4 address in dotted decimal,
    leading zeros allowed (``127.000.000.001`` and ``0127.0.0.1`` are 127.0.0.1),
    never in brackets (``[127.0.0.1]`` is not an address). An octet above 255 makes
    the text no address (Kamailio 5.6 wraps it modulo 256, so that ``127.0.0.257``
    equals 127.0.0.1: not followed). None for anything else."""
    if not text:
        return None
    if text[0] == "[":
        if text[-1] != "]":
            return None
        try:
            return ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    dotted = _DOTTED.fullmatch(text)
    if dotted is None:
        return None
    digits = [part.lstrip("0") for part in dotted.groups()]
    if any(len(part) > 3 for part in digits):
        return None  # above 255 (and no int() of a text of thousands of digits)
    octets = [int(part or "0") for part in digits]
    if any(octet > 255 for octet in octets):
        return None
    return ipaddress.IPv4Address(bytes(octets))


def network(addr: str, prefix: int) -> Network:
    """``addr/prefix`` as written in the cfg (host bits are ignored, as Kamailio masks)."""
    return ipaddress.ip_network(f"{addr.strip('[]')}/{prefix}", strict=False)


def ip_in(ip: Value, net: Network) -> int:
    """``src_ip == 10.0.0.0/8``: 1 when the address is in the network (same family)."""
    address = parse_ip(to_str(ip))
    if address is None or address.version != net.version:
        return 0
    return 1 if address in net else 0


def ip_eq_str(ip: Value, text: str) -> int:
    """``src_ip == "1.2.3.4"``: equal addresses (IPv6 compared by value)."""
    left = parse_ip(to_str(ip))
    right = parse_ip(text)
    if left is None or right is None:
        return 0
    return 1 if left == right else 0


# -- myself ------------------------------------------------------------------------------------


def parse_socket(text: str) -> tuple[str | None, str, int | None]:
    """``[proto:]host[:port]`` (``udp:127.0.0.1:5060``, ``[::1]``, ``tls:h:5061``) ->
    (proto or None, host without brackets, port or None). Anything after the first
    space (``advertise ...``, ``name ...``) is left out."""
    text = text.strip().split()[0] if text.strip() else ""
    proto: str | None = None
    head, sep, rest = text.partition(":")
    if sep and head.lower() in _PROTOS:
        proto = head.lower()
        text = rest
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        host = text[1:close] if close > 0 else text[1:]
        tail = text[close + 1 :] if close > 0 else ""
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text) if port_text.isdigit() else None
    else:
        host = text  # a bare IPv6 address or a name
    return proto, host, port


def _advertised(text: str) -> str | None:
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if word.lower() == "advertise":
            return words[i + 1]
    return None


#: a host as ``myself`` compares it: an IP literal (IPv6 with or without brackets) as
#: its packed bytes (with ``%scope`` for an IPv6 one: equal exactly when the addresses
#: are), else the name in lower case (bytes never equal a str: an address never
#: equals a name). Both hash in C, where an ``ipaddress`` object hashes in Python.
_HostKey: TypeAlias = bytes | str

#: :func:`_host_key` by host text: parsing an address costs 2-4 us and the same few
#: hosts (ours, the peers') come back in every message; bounded, so a flood of
#: distinct names only cycles it
_HOST_KEYS: dict[str, _HostKey] = {}
_HOST_KEYS_MAX: Final = 4096


def _host_key(host: str) -> _HostKey:
    """The form of ``host`` that equals another host's exactly when Kamailio's
    ``check_self`` takes them for the same host."""
    key = _HOST_KEYS.get(host)
    if key is None:
        address = parse_ip(host)
        if address is None:
            key = host.lower()
        elif isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            key = address.packed + b"%" + address.scope_id.encode("utf-8", "surrogateescape")
        else:
            key = address.packed
        if len(host) > CACHED_MAX_LEN:
            return key  # a flood of long names must not fill the cache's memory
        if len(_HOST_KEYS) >= _HOST_KEYS_MAX:
            _HOST_KEYS.clear()
        _HOST_KEYS[host] = key
    return key


@dataclass(frozen=True, slots=True)
class Myself:
    """The local identities ``myself`` compares with: listen sockets (host, port)
    and aliases (name, port; 0 for any port).

    Their :func:`_host_key` forms are computed once, so that a check is a set lookup."""

    sockets: tuple[tuple[str, int], ...] = ()
    aliases: tuple[tuple[str, int], ...] = ()
    #: (host key, port) of every socket and of every alias with a port
    _pairs: frozenset[tuple[_HostKey, int]] = field(init=False, repr=False, compare=False)
    #: the host keys of the aliases that match any port
    _any_port: frozenset[_HostKey] = field(init=False, repr=False, compare=False)
    #: every host key (a check without a port)
    _hosts: frozenset[_HostKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sockets = [(_host_key(h), p) for h, p in self.sockets]
        aliases = [(_host_key(h), p) for h, p in self.aliases]
        pairs = frozenset([*sockets, *((k, p) for k, p in aliases if p != 0)])
        object.__setattr__(self, "_pairs", pairs)
        object.__setattr__(self, "_any_port", frozenset(k for k, p in aliases if p == 0))
        object.__setattr__(self, "_hosts", frozenset(k for k, _ in (*sockets, *aliases)))

    @classmethod
    def from_cfg(cls, listens: tuple[str, ...], aliases: tuple[str, ...]) -> Myself:
        sockets: list[tuple[str, int]] = []
        for text in listens:
            proto_name, host, port = parse_socket(text)
            default = SIPS_PORT if proto_name in ("tls", "wss") else SIP_PORT
            sockets.append((host.lower(), port or default))
            adv = _advertised(text)
            if adv is not None:
                _, adv_host, adv_port = parse_socket(adv)
                sockets.append((adv_host.lower(), adv_port or port or default))
        names: list[tuple[str, int]] = []
        for text in aliases:
            _, host, port = parse_socket(text)
            names.append((host.lower(), port or 0))
        return cls(tuple(sockets), tuple(names))

    def check(self, host: str, port: int | None, extra: tuple[str, int] | None = None) -> bool:
        """Kamailio's ``check_self(host, port)``; ``port`` None matches any port;
        ``extra`` is one more socket (the one the message came in on)."""
        key = _host_key(host)
        if port is None:
            if key in self._hosts:
                return True
        elif (key, port) in self._pairs or key in self._any_port:
            return True
        return (
            extra is not None and (port is None or port == extra[1]) and _host_key(extra[0]) == key
        )


_EMPTY: Final = Myself()


def _myself(ctx: Context) -> Myself:
    """The engine's identities (the cfg's and the command line's sockets), else the
    cfg's."""
    proc = ctx.proc
    if proc.myself is not None:
        return proc.myself
    return _EMPTY if proc.config is None else proc.config.myself


def _received_socket(ctx: Context) -> tuple[str, int]:
    return ctx.received.dst_ip.lower(), ctx.received.dst_port


#: a module's addition to ``myself`` (Kamailio's ``register_check_self_func``):
#: ``fn(ctx, host, port)``, asked when no listen address or alias matched
CheckSelfFn: TypeAlias = Callable[["Context", str, int | None], bool]
_CHECK_SELF: list[CheckSelfFn] = []


def register_check_self(fn: CheckSelfFn) -> None:
    """Add a module's ``myself`` check (domain's ``register_myself``); registering
    the same function again changes nothing. The function decides per message
    whether it applies (its module loaded, its parameter set)."""
    if fn not in _CHECK_SELF:
        _CHECK_SELF.append(fn)


def _check_self(ctx: Context, host: str, port: int | None) -> bool:
    """Kamailio's ``check_self``: the sockets and aliases, then the modules' checks."""
    if _myself(ctx).check(host, port, _received_socket(ctx)):
        return True
    return any(fn(ctx, host, port) for fn in _CHECK_SELF)


def uri_is_myself(ctx: Context, text: Value) -> int:
    """``uri == myself``: the URI's host and port are one of this proxy's."""
    if text is None:
        return 0
    parts = split_uri(to_str(text))
    if parts is None or parts.scheme.startswith("tel"):
        return 0
    port = int(parts.port) if parts.port.isdigit() else SIP_PORT
    host = parts.host
    return 1 if _check_self(ctx, host, port) else 0


def ip_is_myself(ctx: Context, ip: Value) -> int:
    """``src_ip == myself``: the address is one this proxy listens on (any port)."""
    if ip is None:
        return 0
    return 1 if _check_self(ctx, to_str(ip), None) else 0
