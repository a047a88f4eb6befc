"""The stateless SIP core of the running proxy: a sans-IO :class:`Proxy` that turns
received bytes into the bytes to send, running the compiled routes in between.

The transport (``kcc_runtime.serve``) owns the sockets and the clock; it calls
:meth:`Proxy.receive` with one datagram (or one framed stream message) and sends the
:class:`Outgoing` messages it returns. Everything here follows Kamailio 5.6.3, measured
on loopback with the chapter's configs (a Python UDP peer capturing what Kamailio sends);
the facts each piece mirrors are in its docstring.

Requests
    parsed (``parse_message``) and checked (``Message.validate``); a message that fails
    is answered with the parser's status (400, 505) when a reply can be built and is
    dropped otherwise (``stats["dropped_bad"]``). Kamailio 5.6's core is more liberal
    here -- without the sanity module it drops what its own parser refuses and routes
    the rest (it forwards ``clerr.dat``, answers ``mismatch01.dat`` with the script's
    404) -- but issue 5 asks for RFC 4475's verdicts, so the proxy behaves as Kamailio
    with ``sanity_check()`` first in the script would. An ACK whose To-tag is one sl
    put in a reply during the last 2 s is dropped before the script (sl's
    ``sl_filter_ACK``) when the cfg loads ``sl``. Then ``request_route`` runs in a
    fresh :class:`RequestContext`; ``exit``, ``drop`` or the end of the route send
    nothing by themselves.

Stateless replies (sl)
    RFC 3261 §8.2.6 as Kamailio's ``build_res_buf_from_sip_req`` builds them: the
    status line, then in message order every Via line, From, To, Call-ID, CSeq (and
    Record-Route for 180..299) exactly as received (header names as written, compact
    forms kept), then a ``Contact`` with the destination set for 3xx, the ``Server:``
    header and ``Content-Length: 0``. On the top Via line ``rport`` gets the source
    port in place and ``received=<source IP>`` is appended at the end of the *line*
    (Kamailio appends after the last via-parm of a comma-joined line). A To without a
    tag gets one for codes >= 180: ``md5("KAMAILIO-stateless" + first listen address
    + port)`` in hex, ``.``, then two CRC-16/CCITT values in reverse hex: of the top
    Via's host, port and branch, and of its port, host and the Call-ID (Kamailio's
    ``init_tags``/``calc_crc_suffix``). The reply goes to the source IP (Kamailio's
    default ``reply_to_via=no``), to the source port when the Via has ``rport`` or
    ``force_rport()`` was called, else to the Via port or 5060, from the socket the
    request came in on. An ACK is never answered (-1).

Stateless forwarding (core ``forward``)
    Our Via goes on top: ``SIP/2.0/<PROTO> <address>[:<port>];branch=...`` (the port
    left out when it is the protocol's default, the address the advertised one when
    set). The branch is Kamailio's ``branch_builder`` for branch 0: ``z9hG4bK``, the
    reverse hex of ``core_hash(Call-ID, CSeq number) & 0xFFFF``, ``.``, the MD5 of
    From-tag, To-tag (empty for INVITE/ACK/CANCEL), Call-ID, the received R-URI, the
    CSeq number and the top Via's host, port and branch (``char_msg_val``), ``.0``:
    a retransmission gets the same branch. The previous top Via gets
    ``received=<source IP>`` when its host is not the source IP or it has ``rport``
    or ``received`` (``received_test``), and ``rport=<source port>`` in place of an
    ``rport`` (or added by ``force_rport()``), both inserted right after the sent-by
    (``;rport=..;received=..``). Max-Forwards is left alone (maxfwd's job).

Replies received
    ``reply_route`` runs first (``drop`` stops the relay), then Kamailio's
    ``forward_reply``: the top Via is checked to be ours only with ``check_via=yes``
    (Kamailio's default is no: a reply with a foreign top Via is relayed, measured),
    a reply with no second Via is dropped, the top Via is removed and the reply goes
    to the second Via's ``received`` (port: its ``rport`` value, else its port or
    5060) or sent-by.

Every send passes the outbound guard (``allow_dst``): a destination outside the
allowed networks is refused, logged once per destination at warning level and counted
in ``stats["refused_dst"]``; the function returns -1 as a failed send does.

Stateful forwarding (tm)
    delegated to :class:`kcc_runtime.tm.Tm` (its docstring has the measured facts):
    the tm functions of the :class:`~kcc_runtime.context.Engine` protocol, replies
    matching a client branch (after the core ``reply_route``; the others are relayed
    statelessly as above), the transaction timers in :meth:`Proxy.on_timer` (the
    transport should call it by :meth:`Proxy.next_timer`), and tm's error reply at
    the end of a request_route whose ``t_relay`` failed. With ``reply_sockets`` every
    client transaction is sent from the reply socket on its listening IP (or of its
    family) and our Via names it.

Draining (a worker stopping, serve.py)
    after :meth:`Proxy.begin_drain` a request that would start something new (no
    To-tag, not an ACK or CANCEL, no transaction of ours matching it) gets a
    stateless ``503 Service Unavailable`` without running the script (RFC 3261
    §21.5.4: the server is down for maintenance; the caller tries another one) and is
    counted in ``stats["refused_draining"]``. Everything else is routed as usual:
    retransmissions, CANCEL and ACK reach their transactions, and in-dialog requests
    (a BYE) still end the calls they belong to. :meth:`Proxy.pending` counts what
    the transactions still owe; :meth:`Proxy.abort_pending` answers what is left
    with a local 503 and cancels its branches (the drain's deadline).

:meth:`Proxy.receive` never raises.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket as _socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Final, NamedTuple

from kcc_runtime import http
from kcc_runtime.context import (
    Context,
    EventContext,
    Process,
    Received,
    ReplyContext,
    RequestContext,
)
from kcc_runtime.exports import ModuleTimer, Route
from kcc_runtime.kw import Myself
from kcc_runtime.memory import parse_cache
from kcc_runtime.rpc.stats import sl_reply_counter
from kcc_runtime.shared import SharedStore
from kcc_runtime.sip import Message, Request, Response, SipParseError, SipUri, Via, parse_message
from kcc_runtime.sip.parser import headers_only_request
from kcc_runtime.sip.uri import CACHED_MAX_LEN, parse_uri
from kcc_runtime.tm import TABLE_ENTRIES, Tm

if TYPE_CHECKING:
    from kcc_runtime.router import Router

__all__ = [
    "DEFAULT_SERVER_HEADER",
    "Outgoing",
    "Proxy",
    "Resolver",
    "Socket",
    "default_resolver",
    "forward_branch",
    "sl_to_tag",
]

log = logging.getLogger("kcc_runtime.core")

#: sl_reply_error's reason for an unspecified error (``err2reason_phrase``, E_UNSPEC)
SL_ERROR_REASON: Final = "I'm terribly sorry, server error occurred (1/SL)"

#: Kamailio 5.6's ``Server:`` line (``server_header`` overrides it,
#: ``server_signature=no`` removes it)
DEFAULT_SERVER_HEADER: Final = "Server: kamailio (5.6.3 (x86_64/linux))"
#: sl's ``SL_RPL_WAIT_TIME``: an ACK is matched against sl's To-tag only this long
#: after the last stateless reply
SL_ACK_WINDOW: Final = 2.0
#: refused destinations remembered so each is logged once (then logged again)
_REFUSED_LOGGED_MAX: Final = 4096
_DEFAULT_PORTS: Final = {"udp": 5060, "tcp": 5060, "tls": 5061, "sctp": 5060, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Socket:
    """A local listening socket of the proxy (from ``listen=``/``port=``/``--listen``)."""

    proto: str  # "udp" | "tcp"
    ip: str  # textual, IPv6 without brackets
    port: int
    advertise: tuple[str, int] | None = None  # ``listen=... advertise host:port``


class _HttpExchange:
    """The HTTP request being served: where its reply goes, whether it has one."""

    __slots__ = ("local", "replied", "request", "src")

    def __init__(self, request: Request, src: tuple[str, int], local: Socket) -> None:
        self.request = request
        self.src = src
        self.local = local
        self.replied = False


class Outgoing(NamedTuple):
    """One message to send (a ``NamedTuple``: immutable, and cheaper to build than a
    frozen dataclass, one or more per message)."""

    data: bytes
    proto: str  # "udp" | "tcp"
    dst: tuple[str, int]  # IP literal and port (already resolved; never a host name)
    src: Socket  # the local socket to send from
    #: TCP: close the connection once this is written (``set_reply_close()`` on an
    #: HTTP reply, :meth:`Proxy.xhttp_reply`)
    close: bool = False


#: ``resolver(host)``: the IP literal of a host name, or None when it cannot be resolved
Resolver = Callable[[str], str | None]


def default_resolver(host: str) -> str | None:
    """An IP literal as is; a name through ``getaddrinfo`` (``/etc/hosts``, then the
    system's resolver), first address; None when it does not resolve. Called by the
    engine only for names, never for IP literals."""
    literal = _ip_literal(host)
    if literal is not None:
        return literal
    try:
        infos = _socket.getaddrinfo(
            host, None, type=_socket.SOCK_DGRAM, flags=_socket.AI_NUMERICSERV
        )
    except (OSError, UnicodeError):
        return None
    for _family, _type, _proto, _name, addr in infos:
        return str(addr[0])
    return None


def _ip_literal(host: str) -> str | None:
    """``host`` as a normalised IP text (IPv6 without brackets), None for a name
    (cached: the same few addresses come back on every message; not a long text,
    which no address is)."""
    if len(host) > CACHED_MAX_LEN:
        return _ip_literal_cached.__wrapped__(host)
    return _ip_literal_cached(host)


@parse_cache(maxsize=4096)
def _ip_literal_cached(host: str) -> str | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _rport_received(via: Via) -> tuple[int, int]:
    """The index in ``via.params`` of the first ``rport`` and of the first
    ``received`` parameter, -1 for one that is absent."""
    rport_at = received_at = -1
    if via.rport is None and via.received is None:
        return rport_at, received_at
    for n, (key, _) in enumerate(via.params):
        if key == "rport":
            if rport_at < 0:
                rport_at = n
        elif key == "received" and received_at < 0:
            received_at = n
    return rport_at, received_at


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


# -- Kamailio's hashes (facts from tags.h, crc.c, hashes.h, char_msg_val.h) ------------


def _crc16_table() -> tuple[int, ...]:
    """CRC-16/CCITT, reflected polynomial 0x8408 (Kamailio's ``crc_16_tab``)."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x8408 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC16: Final = _crc16_table()


def _reverse_hex(value: int, pad: int = 0) -> str:
    """Kamailio's ``int2reverse_hex``: nibbles least significant first, "0" for 0;
    ``pad`` zero-fills to that length (``crcitt_string_array`` pads to 4): the hex
    digits of a non-negative ``value`` reversed."""
    return f"{value:x}"[::-1].ljust(pad, "0")


def _crcitt(parts: Sequence[bytes]) -> str:
    """``crcitt_string_array``: CRC-16/CCITT (init 0xFFFF, inverted) of the
    concatenation, 4 reverse-hex digits."""
    crc = 0xFFFF
    table = _CRC16
    for part in parts:
        for byte in part:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return _reverse_hex(~crc & 0xFFFF, 4)


def _core_hash(first: bytes, second: bytes, size: int) -> int:
    """Kamailio's ``core_hash(s1, s2, size)`` over C ``char`` (signed) bytes
    (``size`` 0: the whole 32-bit hash).

    Each step adds ``v ^ (v >> 3)`` for ``v`` the next 4 bytes big-endian (the tail:
    its 1..3 bytes) summed as signed chars in an unsigned int: that is the unsigned
    value ``u`` minus 256 << 8k for every byte k places from the end with its top bit
    set, i.e. ``u - ((u & 0x80808080) << 1)`` mod 2**32 (the first byte's correction
    of a full word is 2**32, which vanishes). The sum of the steps is taken mod 2**32
    once at the end."""
    h = 0
    for data in (first, second):
        n = len(data)
        whole = n & ~3
        for u in struct.unpack_from(f">{whole >> 2}I", data) if whole else ():
            v = (u - ((u & 0x80808080) << 1)) & 0xFFFFFFFF
            h += v ^ (v >> 3)
        if whole < n:
            u = int.from_bytes(data[whole:], "big")
            v = (u - ((u & 0x808080) << 1)) & 0xFFFFFFFF
            h += v ^ (v >> 3)
    h &= 0xFFFFFFFF
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & 0xFFFFFFFF
    return h & (size - 1)


def _via_port_str(msg: Message, via: Via) -> bytes:
    """The top Via's port as written (Kamailio's ``port_str``), b"" when absent."""
    if via.port is None:
        return b""
    # the port sits right after the host in the via-parm
    start = msg.buf.find(b":", msg.buf.find(via.host.encode("ascii"), via.start), via.end)
    if start < 0:
        return str(via.port).encode()
    end = start + 1
    while end < via.end and 0x30 <= msg.buf[end] <= 0x39:
        end += 1
    return msg.buf[start + 1 : end]


def sl_tag_prefix(sockets: Sequence[Socket]) -> str:
    """The fixed part of sl's To-tags: ``md5("KAMAILIO-stateless" + address + port)``
    of the first listen socket (Kamailio's ``init_tags``), hex."""
    first = sockets[0] if sockets else None
    src = b"KAMAILIO-stateless"
    if first is not None:
        src += first.ip.encode() + str(first.port).encode()
    return hashlib.md5(src, usedforsecurity=False).hexdigest()


def sl_to_tag(prefix: str, msg: Message) -> str:
    """sl's To-tag for a reply to ``msg``: ``prefix.``, then the CRCs of the top
    Via's (host, port, branch) and of (port, host, Call-ID)."""
    via = msg.via
    if via is None:
        return prefix + ".00000000"
    host = via.host.encode("utf-8", "surrogateescape")
    port = _via_port_str(msg, via)
    first: list[bytes] = [host, port]
    branch = via.branch
    if branch is not None:
        first.append(branch.encode("utf-8", "surrogateescape"))
    callid = msg.header_bytes(b"call-id")
    second: list[bytes] = [port, host]
    if callid is not None:
        second.append(callid)
    return f"{prefix}.{_crcitt(first)}{_crcitt(second)}"


#: where :func:`forward_branch` keeps its result in ``Message._cache`` (a name the
#: parser's own entries never take)
_BRANCH_KEY: Final = "kcc.forward_branch"


def forward_branch(msg: Request) -> str:
    """The branch of the Via a stateless ``forward`` adds (see the module docstring):
    the same for every retransmission of ``msg``.

    It depends on the received bytes alone (the headers as received, the R-URI of
    the first line, not a rewritten one), so it is computed once per message: tm
    asks for it when it creates the transaction and for every branch it sends."""
    cached = msg._cache.get(_BRANCH_KEY)
    if isinstance(cached, str):
        return cached
    from_ = msg.from_
    to = msg.to
    via = msg.via
    try:  # the Call-ID ``validate`` parsed and checked, as received
        call_id = msg.call_id
    except SipParseError:
        call_id = None
    if call_id is not None:
        callid = call_id.encode("utf-8", "surrogateescape")
    else:
        callid = msg.header_bytes(b"call-id") or b""
    cseq_raw = msg.header_bytes(b"cseq") or b""
    cseq_words = cseq_raw.split(None, 1)
    cseq_num = cseq_words[0] if cseq_words else b""
    parts: list[bytes] = [
        (from_.tag or "").encode("utf-8", "surrogateescape") if from_ is not None else b"",
        b""
        if msg.method in ("INVITE", "ACK", "CANCEL") or to is None
        else (to.tag or "").encode("utf-8", "surrogateescape"),
        callid,
        msg.buf[msg.uri_start : msg.uri_end],
        cseq_num,
    ]
    if via is not None:
        parts.append(via.host.encode("utf-8", "surrogateescape"))
        parts.append(_via_port_str(msg, via))
        if via.branch is not None:
            parts.append(via.branch.encode("utf-8", "surrogateescape"))
    digest = hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
    index = _core_hash(callid, cseq_num, TABLE_ENTRIES)
    branch = f"z9hG4bK{_reverse_hex(index)}.{digest}.0"
    msg._cache[_BRANCH_KEY] = branch
    return branch


def _q_text(q: int) -> str:
    """Kamailio's ``q2str``: 0..1000 as ``0``, ``0.5``, ``0.25``, ``1``."""
    if q >= 1000:
        return "1"
    if q <= 0:
        return "0"
    return ("0." + f"{q:03d}").rstrip("0")


# -- the probe for a message that failed to parse ----------------------------------------


def _probe(data: bytes) -> Request | None:
    """A lazy ``Request`` over a message whose start line or framing was refused, to
    build the error reply from its headers (the parser says one can be built)."""
    pos = 0
    while pos < len(data) and data[pos] in (0x0D, 0x0A):
        pos += 1
    nl = data.find(b"\n", pos)
    if nl < 0:
        return None
    lf_only = nl == 0 or data[nl - 1] != 0x0D
    eol = b"\n" if lf_only else b"\r\n"
    hdr_start = nl + 1
    sep = eol + eol
    i = data.find(sep, hdr_start - len(eol))
    hdr_end = len(data) if i < 0 else i + len(eol)
    method = data[pos:nl].split(b" ", 1)[0].decode("ascii", "replace")
    return headers_only_request(data, eol, hdr_start, hdr_end, method)


#: the statistic a received reply adds to, by its class (the parser takes three
#: digits not starting with 0: 100..999)
_RCV_REPLY_COUNTER: Final = tuple(f"core:rcv_replies_{n}xx" for n in range(10))

#: the header lines a local reply copies from the request (RFC 3261 §8.2.6.2; the
#: Record-Route of a 18x/2xx as Kamailio's ``build_res_buf_from_sip_req``)
_REPLY_COPIED: Final = frozenset((b"via", b"to", b"from", b"call-id", b"cseq", b"record-route"))

#: the statistics a received request adds to (Kamailio's core counters)
_RCV_REQUEST_COUNTER: Final = {
    m: f"core:rcv_requests_{m.lower()}"
    for m in (
        "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS",
        "PRACK", "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
    )
}  # fmt: skip


class Proxy:
    """The stateless core (implements :class:`kcc_runtime.context.Engine`)."""

    def __init__(
        self,
        router: Router,
        sockets: Sequence[Socket],
        *,
        allow_dst: Sequence[IPv4Network | IPv6Network] | None = None,
        shared: SharedStore | None = None,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = default_resolver,
        reply_sockets: Sequence[Socket] = (),
    ) -> None:
        self.router = router
        #: the per-worker sockets client transactions are sent from (and named in our
        #: Via), one per UDP listening IP, so that their responses come back to this
        #: worker (serve.py)
        self.reply_sockets: tuple[Socket, ...] = tuple(reply_sockets)
        self.sockets: tuple[Socket, ...] = tuple(sockets)
        self.allow_dst: tuple[IPv4Network | IPv6Network, ...] | None = (
            None if allow_dst is None else tuple(allow_dst)
        )
        self.clock = clock
        self.resolver = resolver
        self.stats: dict[str, int] = {
            "received": 0,
            "requests": 0,
            "replies_received": 0,
            "replied": 0,
            "forwarded": 0,
            "replies_relayed": 0,
            "dropped_bad": 0,
            "dropped_replies": 0,
            "refused_dst": 0,
            "send_failed": 0,
            "sl_filtered_acks": 0,
            "refused_draining": 0,
            "errors": 0,
        }
        config = router.config
        self._sl_loaded = "sl" in config.modules
        #: the cfg does its own sanity checking: the core then lets through what
        #: Kamailio's core lets through (any CSeq number, a CSeq method not the
        #: request's, a datagram shorter than its Content-Length) and the script's
        #: sanity_check answers them, exactly as in Kamailio. Without sanity the core
        #: applies RFC 4475's verdicts itself (a 400), where Kamailio would route them.
        self._loose = "sanity" in config.modules
        signature = config.global_value("server_signature", 1)
        header = config.global_value("server_header")
        self._server_line: bytes | None = None
        if signature not in (0, "no", "off", "false"):
            text = DEFAULT_SERVER_HEADER if header is None else str(header)
            self._server_line = text.encode("utf-8", "surrogateescape")
        self._check_via = config.global_value("check_via", 0) in (1, "yes", "on", "true")
        base = config.myself
        ours = [(s.ip.lower(), s.port) for s in self.sockets]
        for s in self.sockets:
            if s.advertise is not None:
                ours.append((s.advertise[0].strip("[]").lower(), s.advertise[1]))
        self.myself = Myself(tuple(dict.fromkeys((*base.sockets, *ours))), base.aliases)
        self._sl_prefix = sl_tag_prefix(self.sockets)
        self._sl_until = 0.0
        #: the worker is stopping: new requests are refused (:meth:`begin_drain`)
        self.draining = False
        self._refused_logged: set[tuple[str, int]] = set()
        #: the guard's verdict by destination address (bounded)
        self._allowed: dict[str, bool] = {}
        self._out: list[Outgoing] = []
        #: the HTTP request ``event_route[xhttp:request]`` is running on
        self._http: _HttpExchange | None = None
        #: the socket the message being processed came in on
        self._local: Socket | None = None
        #: the start of our Via line by (address, port, proto): :meth:`_via_prefix`
        self._via_prefixes: dict[tuple[str, int, str], bytes] = {}
        self.process: Process = router.process(self, shared=shared)
        self.process.myself = self.myself  # `uri == myself` knows the --listen sockets
        self.tm = Tm(self, {n: v for m, n, v in config.modparams if m == "tm"})
        #: what the cfg's modules run on this worker's timer (nathelper's keepalives):
        #: their export tables' ``timers``, built for this engine
        self.module_timers: list[ModuleTimer] = self._module_timers(config.modules)

    # -- the transport's side ---------------------------------------------------------

    def receive(self, data: bytes, src: tuple[str, int], local: Socket) -> list[Outgoing]:
        """Process one message from ``src`` on ``local``; return what to send, in
        order. Never raises."""
        out: list[Outgoing] = []
        self._out = out
        self.stats["received"] += 1
        try:
            self._receive(data, src, local)
        except Exception:  # a bug must not kill the worker
            self.stats["errors"] += 1
            log.exception("error while processing a message from %s:%d", src[0], src[1])
        self._out = []
        return out

    def on_timer(self, now: float) -> list[Outgoing]:
        """Periodic housekeeping: the transaction timers due at ``now``
        (retransmissions, fr_timer/fr_inv_timer timeouts and the failure routes they
        run, wait timers), then htable's expiry sweep, running
        ``event_route[htable:expired:<table>]`` for every expired item."""
        out: list[Outgoing] = []
        self._out = out
        try:
            self.tm.on_timer(now)
        except Exception:
            self.stats["errors"] += 1
            log.exception("error in the transaction timer")
        for timer in self.module_timers:
            try:
                timer.on_timer(now)
            except Exception:
                self.stats["errors"] += 1
                log.exception("error in a module's timer")
        try:
            htables = self.process.htables
            for record in htables.purge(int(now)):
                route = self.router.event.get(f"htable:expired:{record.table}")
                if route is not None:
                    # $shtrecord(key)/$shtrecord(value) read the item being expired
                    htables.expired_record = record
                    try:
                        self._run_event(route)
                    finally:
                        htables.expired_record = None
        except Exception:
            self.stats["errors"] += 1
            log.exception("error in the timer")
        self._out = []
        return out

    def begin_drain(self) -> None:
        """Stop taking new requests (a 503 each); what is under way goes on."""
        if not self.draining:
            self.draining = True
            log.info("draining: new requests get 503, %d transactions pending", self.pending())

    def pending(self) -> int:
        """How many transactions still owe the caller a final reply (or wait for the
        ACK of a negative one)."""
        return len(self.tm.pending())

    def abort_pending(self) -> list[Outgoing]:
        """Answer every request still unanswered with a local ``503 Service
        Unavailable`` and cancel its branches; return what to send."""
        out: list[Outgoing] = []
        self._out = out
        try:
            for cell in self.tm.pending():
                self.tm.abort(cell, 503, "Service Unavailable")
        except Exception:
            self.stats["errors"] += 1
            log.exception("error while answering the pending transactions")
        self._out = []
        return out

    def _module_timers(self, names: Sequence[str]) -> list[ModuleTimer]:
        """The timers the loaded modules declare (``ModuleExports.timers``), each
        built for this engine (a factory may decline: None)."""
        from kcc_runtime import modules

        out: list[ModuleTimer] = []
        for name in names:
            exports = modules.get(name)
            for factory in exports.timers if exports is not None else ():
                timer = factory(self)
                if timer is not None:
                    out.append(timer)
        return out

    def next_timer(self) -> float | None:
        """When :meth:`on_timer` must next run for the transactions (None: no
        transaction timer is armed)."""
        return self.tm.next_timer()

    def start(self) -> list[Outgoing]:
        """Once per worker before serving: ``event_route[htable:mod-init]``."""
        out: list[Outgoing] = []
        self._out = out
        try:
            route = self.router.event.get("htable:mod-init")
            if route is not None:
                self._run_event(route)
        except Exception:
            self.stats["errors"] += 1
            log.exception("error in event_route[htable:mod-init]")
        self._out = []
        return out

    def _run_event(self, route: Callable[..., int]) -> None:
        """Run an event route on Kamailio's faked message (``faked_msg.c``)."""
        first = self.sockets[0] if self.sockets else Socket("udp", "127.0.0.1", 5060)
        msg = parse_message(_FAKED_MSG)
        received = Received("127.0.0.1", 5060, first.ip, first.port, first.proto)
        self.router.run(route, EventContext(self.process, msg, received))

    # -- receiving ------------------------------------------------------------------

    def _receive(self, data: bytes, src: tuple[str, int], local: Socket) -> None:
        received = Received(src[0], src[1], local.ip, local.port, local.proto)
        self._local = local
        try:
            msg = parse_message(data, loose_length=self._loose and local.proto == "udp")
            msg.loose = self._loose
            if isinstance(msg, Response):
                # a reply is relayed on its Vias (Kamailio's core), and its CSeq and
                # Call-ID identify it: those must parse, the rest passes untouched
                if not msg.vias:
                    raise SipParseError(400, "Missing Via header", can_reply=False)
                if msg.cseq is None or msg.call_id is None:
                    raise SipParseError(400, "Missing CSeq or Call-ID", can_reply=False)
            else:
                msg.validate()
        except SipParseError as exc:
            self._bad_message(data, exc, received, local)
            return
        if isinstance(msg, Response):
            self._on_reply(msg, received, local)
            return
        self.stats["requests"] += 1
        counters = self.process.shared.counters
        counters.add("core:rcv_requests")
        counters.add(_RCV_REQUEST_COUNTER.get(msg.method, "core:unsupported_methods"))
        if self._sl_loaded and msg.method == "ACK" and self._sl_ack(msg):
            self.stats["sl_filtered_acks"] += 1
            log.debug("SL local ACK found -> dropping it")
            return
        if self.draining and self._refuse_new(msg, received, local):
            return
        route = self.router.request
        if route is None:
            return
        ctx = RequestContext(self.process, msg, received)
        self.router.run(route, ctx)
        self.process.shared.pretran_release()
        self.tm.after_script(ctx)

    def _refuse_new(self, msg: Request, received: Received, local: Socket) -> bool:
        """While draining: answer a request that would start something new with a
        stateless 503 (True); False for what belongs to something under way."""
        if msg.method in ("ACK", "CANCEL"):
            return False
        to = msg.to
        if to is not None and to.tag is not None:
            return False  # in-dialog: a BYE must still end its call
        if self.tm.layer.match_request(msg) is not None:
            return False  # a retransmission: the script's t_relay absorbs it
        self.stats["refused_draining"] += 1
        ctx = RequestContext(self.process, msg, received)
        self._sl_reply(ctx, 503, "Service Unavailable", local)
        return True

    def _bad_message(
        self, data: bytes, exc: SipParseError, received: Received, local: Socket
    ) -> None:
        self.stats["dropped_bad"] += 1
        log.error(
            "core parsing of SIP message failed (%s:%d/%s): %s",
            received.src_ip,
            received.src_port,
            received.proto,
            exc.reason,
        )
        if not exc.can_reply:
            return
        probe = _probe(data)
        if probe is None or not probe.reply_possible() or probe.method.upper() == "ACK":
            return
        ctx = RequestContext(self.process, probe, received)
        self._sl_reply(ctx, exc.status, exc.reason, local)

    def _sl_ack(self, msg: Request) -> bool:
        """sl's ``sl_filter_ACK``: an ACK to a reply sl sent (its To-tag, within
        ``SL_ACK_WINDOW`` of the last sl reply)."""
        if self.clock() >= self._sl_until:
            return False
        to = msg.to
        tag = None if to is None else to.tag
        if tag is None or len(tag) != 41:
            return False
        return tag == sl_to_tag(self._sl_prefix, msg)

    # -- the Engine protocol: stateless core ---------------------------------------------

    def send_reply(self, ctx: Context, code: int, reason: str) -> int:
        return self._sl_reply(ctx, code, reason, self._local_of(ctx))

    def send_error_reply(self, ctx: Context) -> int:
        """sl's ``sl_reply_error``: the runtime records no internal error codes, so this
        is Kamailio's reply for an unspecified one (``E_UNSPEC``), as 5.6.3 sent it
        after a failed ``t_relay``: ``500 I'm terribly sorry, server error occurred
        (1/SL)``."""
        rc = self._sl_reply(ctx, 500, SL_ERROR_REASON, self._local_of(ctx))
        if rc > 0:
            log.error("stateless error reply used: %s", SL_ERROR_REASON)
        return rc

    def forward(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        msg = ctx.msg
        if isinstance(msg, Request):
            return self._forward_request(ctx, msg, proto, host, port)
        if isinstance(msg, Response):
            return self._forward_reply_to(ctx, msg, proto, host, port)
        return -1

    def is_myself(self, host: str, port: int | None, proto: str | None) -> bool:
        if port is None:
            port = _DEFAULT_PORTS.get((proto or "udp").lower(), 5060)
        return self.myself.check(host.strip("[]") if host.startswith("[") else host, port)

    # -- the Engine protocol: tm (kcc_runtime.tm) -----------------------------------

    def has_transaction(self, ctx: Context) -> bool:
        return self.tm.cell_of(ctx) is not None

    def t_relay(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        return self.tm.relay(ctx, proto, host, port)

    def t_newtran(self, ctx: Context) -> int:
        return self.tm.t_newtran(ctx)

    def t_check_trans(self, ctx: Context) -> int:
        return self.tm.check_trans(ctx)

    def t_reply(self, ctx: Context, code: int, reason: str) -> int:
        return self.tm.reply(ctx, code, reason)

    def t_is_canceled(self, ctx: Context) -> int:
        cell = self.tm.cell_of(ctx)
        return 1 if cell is not None and cell.canceled else -1

    def t_branch_timeout(self, ctx: Context) -> int:
        return self.tm.branch_timeout(ctx)

    def t_any_timeout(self, ctx: Context) -> int:
        return self.tm.any_timeout(ctx)

    def t_status(self, ctx: Context) -> int | None:
        return self.tm.status(ctx)

    def t_set_fr(self, ctx: Context, invite_ms: int, noninvite_ms: int) -> int:
        return self.tm.set_fr(ctx, invite_ms, noninvite_ms)

    def xhttp_reply(self, ctx: Context, code: int, reason: str, ctype: str, body: str) -> int:
        """xhttp's reply to the HTTP request ``event_route[xhttp:request]`` runs on
        (:func:`kcc_runtime.http.build_reply`), back on its connection, which is
        closed after it when the route called ``set_reply_close()``; -1 (logged)
        outside that route or for a second reply."""
        exchange = self._http
        if exchange is None or ctx.msg is not exchange.request:
            log.error("xhttp_reply: no HTTP request to answer")
            return -1
        if exchange.replied:
            log.error("xhttp_reply: the HTTP request was already answered")
            return -1
        exchange.replied = True
        data = http.build_reply(
            exchange.request,
            code,
            reason,
            ctype,
            body.encode("utf-8", "surrogateescape"),
            server=self._server_line,
        )
        close = "set_reply_close" in ctx.msg_flags
        self._out.append(Outgoing(data, exchange.local.proto, exchange.src, exchange.local, close))
        return 1

    # -- HTTP on the SIP TCP sockets (xhttp) ---------------------------------------------

    @property
    def http_enabled(self) -> bool:
        """The transport hands HTTP requests on SIP TCP connections to
        :meth:`receive_http` (Kamailio's ``tcp_read`` does when xhttp is loaded)."""
        return "xhttp" in self.router.config.modules

    @property
    def http_accept_no_cl(self) -> bool:
        """``tcp_accept_no_cl``: an HTTP request without Content-Length (a GET) is
        taken with an empty body rather than refused."""
        value = self.router.config.global_value("tcp_accept_no_cl", 0)
        return value in (1, "yes", "on", "true")

    def receive_http(self, data: bytes, src: tuple[str, int], local: Socket) -> list[Outgoing]:
        """One framed HTTP request from ``src`` (:class:`kcc_runtime.http.HttpFramer`):
        ``event_route[xhttp:request]`` runs on it (with the Via line xhttp inserts)
        and what it sends is returned; a request Kamailio's parser refuses is
        dropped and the connection closed (measured: no reply). Never raises."""
        out: list[Outgoing] = []
        self._out = out
        self.stats["received"] += 1
        try:
            request = http.parse_request(data, src, local.proto)
            route = self.router.event.get("xhttp:request")
            if request is None:
                self.stats["dropped_bad"] += 1
                log.error(
                    "core parsing of SIP message failed (%s:%d/%s): bad HTTP request",
                    src[0],
                    src[1],
                    local.proto,
                )
                out.append(Outgoing(b"", local.proto, src, local, True))
            elif route is None:
                log.error("xhttp: no event_route[xhttp:request] to run")
            else:
                received = Received(src[0], src[1], local.ip, local.port, local.proto)
                self._local = local
                self._http = _HttpExchange(request, src, local)
                try:
                    self.router.run(route, EventContext(self.process, request, received))
                finally:
                    self._http = None
        except Exception:  # a bug must not kill the worker
            self.stats["errors"] += 1
            log.exception("error while processing an HTTP request from %s:%d", src[0], src[1])
        self._out = []
        return out

    # -- sending ---------------------------------------------------------------------

    # -- what kcc_runtime.tm uses ------------------------------------------------------

    def local_of(self, ctx: Context) -> Socket:
        return self._local_of(ctx)

    def emit(self, data: bytes, proto: str, dst: tuple[str, int], src: Socket) -> bool:
        return self._emit(data, proto, dst, src)

    def next_hop(
        self, ctx: Context, msg: Request, proto: str | None, host: str | None, port: int | None
    ) -> tuple[str, str, int] | None:
        return self._next_hop(ctx, msg, proto, host, port)

    def resolve(self, host: str) -> str | None:
        return self._resolve(host)

    def client_socket(self, ctx: Context, proto: str, ip: str) -> Socket | None:
        """The socket a client transaction is sent from. Kamailio's
        ``get_send_socket`` picks a listening socket; unless the script forced that
        choice (``force_send_socket``), the worker's reply socket on the same IP
        replaces it, or else its first reply socket of that protocol and family, so
        that the responses come back to this worker."""
        picked = self._pick_socket(ctx, proto, ip)
        if not self.reply_sockets or ctx.send_socket is not None:
            return picked
        v6 = ":" in ip
        fallback: Socket | None = None
        for rs in self.reply_sockets:
            if rs.proto != proto or (":" in rs.ip) != v6:
                continue
            if picked is not None and rs.ip == picked.ip:
                return rs
            if fallback is None:
                fallback = rs
        return fallback or picked

    def dst_allowed(self, dst: tuple[str, int]) -> bool:
        """The outbound guard alone (see :meth:`_emit`), for a send not made yet."""
        return self._guard(dst)

    def build_reply(
        self, ctx: Context, msg: Request, code: int, reason: str, *, tm_tag: str | None = None
    ) -> bytes:
        return self._build_reply(ctx, msg, code, reason, tm_tag=tm_tag)

    def build_request(
        self, ctx: Context, msg: Request, sock: Socket, proto: str, branch: str
    ) -> bytes:
        return self._build_request(ctx, msg, sock, proto, branch)

    @staticmethod
    def strip_top_via(msg: Response) -> bytes:
        """A reply as tm relays it: our (top) Via removed, nothing else changed."""
        return _serialize_with(msg, _top_via_removal(msg))

    def _local_of(self, ctx: Context) -> Socket:
        """The local socket ``ctx.msg`` came in on."""
        r = ctx.received
        local = self._local
        if local is not None and local.ip == r.dst_ip and local.port == r.dst_port:
            return local
        for s in self.sockets:
            if s.ip == r.dst_ip and s.port == r.dst_port and s.proto == r.proto:
                return s
        return Socket(r.proto, r.dst_ip, r.dst_port)

    def _emit(self, data: bytes, proto: str, dst: tuple[str, int], src: Socket) -> bool:
        """Queue a send after the outbound guard; False when refused."""
        if not self._guard(dst):
            return False
        self._out.append(Outgoing(data, proto, dst, src))
        return True

    def _guard(self, dst: tuple[str, int]) -> bool:
        """The outbound guard: False (logged once, counted) outside ``allow_dst``."""
        if self.allow_dst is not None:
            allowed = self._allowed.get(dst[0])
            if allowed is None:
                allowed = self._allowed_ip(dst[0])
                if len(self._allowed) >= 4096:
                    self._allowed.clear()
                self._allowed[dst[0]] = allowed
            if not allowed:
                self.stats["refused_dst"] += 1
                if dst not in self._refused_logged:
                    # bounded: a cfg that relays to the R-URI lets a caller pick the
                    # destination, and every new one would stay here forever
                    if len(self._refused_logged) >= _REFUSED_LOGGED_MAX:
                        self._refused_logged.clear()
                    self._refused_logged.add(dst)
                    log.warning(
                        "refused to send to %s:%d: outside the allowed destinations (--allow-dst)",
                        dst[0],
                        dst[1],
                    )
                return False
        return True

    def _allowed_ip(self, ip: str) -> bool:
        """Whether ``ip`` is inside one of the ``allow_dst`` networks (same family)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        nets = self.allow_dst or ()
        return any(address.version == net.version and address in net for net in nets)

    def _pick_socket(self, ctx: Context | None, proto: str, ip: str) -> Socket | None:
        """Kamailio's ``get_send_socket``: ``force_send_socket`` when it names one of
        ours; else the socket the message came in on when protocol and address family
        match; else the first socket of that protocol and family."""
        v6 = ":" in ip
        if ctx is not None and ctx.send_socket is not None:
            fproto, fhost, fport = ctx.send_socket
            fip = _ip_literal(fhost) or fhost
            for s in self.sockets:
                if s.proto == fproto and s.ip == fip and s.port == fport:
                    return s
            log.warning("force_send_socket: %s:%s:%d is not a listening socket", *ctx.send_socket)
        if ctx is not None:
            local = self._local_of(ctx)
            if local.proto == proto and (":" in local.ip) == v6:
                return local
        for s in self.sockets:
            if s.proto == proto and (":" in s.ip) == v6:
                return s
        return None

    def _resolve(self, host: str) -> str | None:
        literal = _ip_literal(host)
        if literal is not None:
            return literal
        try:
            found = self.resolver(host)
        except Exception:
            log.exception("resolver failed for %s", host)
            return None
        return None if found is None else (_ip_literal(found) or None)

    # -- sl replies ----------------------------------------------------------------

    def _sl_reply(self, ctx: Context, code: int, reason: str, local: Socket) -> int:
        msg = ctx.msg
        if not isinstance(msg, Request):
            log.error("sl: cannot send a stateless reply to a reply")
            return -1
        if msg.method == "ACK":
            return -1
        if not 100 <= code <= 699:
            log.error("invalid reply code %d (100..699)", code)
            return -1
        try:
            data = self._build_reply(ctx, msg, code, reason)
            via = msg.via
        except (SipParseError, ValueError) as exc:
            log.error("sl: cannot build the reply: %s", exc)
            return -1
        if via is None:
            return -1
        r = ctx.received
        rport = "force_rport" in ctx.msg_flags or via.rport is not None
        port = r.src_port if rport else (via.port or 5060)
        self._sl_until = self.clock() + SL_ACK_WINDOW
        if not self._emit(data, local.proto, (r.src_ip, port), local):
            return -1
        self.stats["replied"] += 1
        counters = self.process.shared.counters
        counters.add("sl:sent_replies")
        counters.add(sl_reply_counter(code))
        return 1

    def _build_reply(
        self, ctx: Context, msg: Request, code: int, reason: str, *, tm_tag: str | None = None
    ) -> bytes:
        """A local reply (sl's, or tm's with ``tm_tag``: its To-tag prefix and ``-``)."""
        buf = msg.buf
        eol = b"\r\n"
        out = [b"SIP/2.0 %d " % code, reason.encode("utf-8", "surrogateescape"), eol]
        names = msg.names
        spans = msg.spans
        first_via = True
        to_done = False
        for name, (ls, _vs, _ve, le) in zip(names, spans, strict=True):
            if name not in _REPLY_COPIED:
                continue
            line_end = le - (2 if buf[le - 2 : le] == b"\r\n" else 1)
            if name == b"via":
                if first_via:
                    first_via = False
                    out.append(self._reply_top_via(ctx, msg, ls, line_end))
                else:
                    out.append(buf[ls:line_end])
                out.append(eol)
            elif name == b"to" and not to_done:
                to_done = True
                to = msg.to
                line = buf[ls:line_end]
                if code >= 180 and to is not None and not to.tag:
                    if tm_tag is None:
                        tag = sl_to_tag(self._sl_prefix, msg)
                    else:
                        tag = tm_tag + "-" + sl_to_tag("", msg)[1:]
                    line += b";tag=" + tag.encode()
                out += [line, eol]
            elif name == b"record-route":
                if 180 <= code < 300:
                    out += [buf[ls:line_end], eol]
            elif name != b"to":  # From, Call-ID, CSeq
                out += [buf[ls:line_end], eol]
        if 300 <= code < 400:
            contact = self._dset(ctx)
            if contact:
                out += [b"Contact: ", contact, eol]
        # append_to_reply / sanity's Unsupported, after the copied headers (measured)
        out += [lump.encode("utf-8", "surrogateescape") for lump in ctx.reply_lumps]
        if self._server_line is not None:
            out += [self._server_line, eol]
        out.append(b"Content-Length: 0\r\n\r\n")
        return b"".join(out)

    def _reply_top_via(self, ctx: Context, msg: Request, ls: int, line_end: int) -> bytes:
        """The top Via line of a local reply: ``rport`` filled in place (or added by
        ``force_rport``), ``received`` appended at the end of the line."""
        buf = msg.buf
        via = msg.via
        if via is None:
            return buf[ls:line_end]
        r = ctx.received
        edits: list[tuple[int, int, bytes]] = []
        rport_at, received_at = _rport_received(via)
        tail = b""
        if rport_at >= 0:
            s, e = via.param_spans[rport_at]
            edits.append((s, e, b"rport=%d" % r.src_port))
        elif "force_rport" in ctx.msg_flags:
            tail += b";rport=%d" % r.src_port
        if self._received_needed(via, r.src_ip):
            if received_at >= 0:
                s, e = via.param_spans[received_at]
                edits.append((s - 1, e, b""))
            tail += b";received=" + r.src_ip.encode()
        edits.sort()
        out = []
        cur = ls
        for s, e, data in edits:
            out += [buf[cur:s], data]
            cur = e
        out += [buf[cur:line_end], tail]
        return b"".join(out)

    @staticmethod
    def _received_needed(via: Via, src_ip: str) -> bool:
        """Kamailio's ``received_test``: the Via has ``received`` or ``rport``, or
        its host is not the source address (names never equal it)."""
        if via.received is not None or via.rport is not None:
            return True
        literal = _ip_literal(via.host)
        return literal is None or literal != (_ip_literal(src_ip) or src_ip)

    def _dset(self, ctx: Context) -> bytes:
        """The Contact of a 3xx (sl's ``print_dset``): the R-URI when the script
        rewrote it, then every branch, ``<uri>[;q=..]`` comma-separated."""
        items: list[str] = []
        if ctx.new_uri is not None:
            items.append(f"<{ctx.new_uri}>")
        for br in ctx.branches:
            item = f"<{br.uri}>"
            if br.q >= 0:
                item += f";q={_q_text(br.q)}"
            items.append(item)
        return ", ".join(items).encode("utf-8", "surrogateescape")

    # -- stateless request forwarding -------------------------------------------------

    def _next_hop(
        self, ctx: Context, msg: Request, proto: str | None, host: str | None, port: int | None
    ) -> tuple[str, str, int] | None:
        """(proto, host, port) of the next hop, None (logged) for a bad URI."""
        if host is not None:
            p = (proto or "udp").lower()
            return p, host, port or _DEFAULT_PORTS.get(p, 5060)
        text = ctx.dst_uri or ctx.new_uri
        raw = text.encode("utf-8", "surrogateescape") if text else msg.uri_raw
        try:
            uri = parse_uri(raw)
        except SipParseError:
            uri = None
        if not isinstance(uri, SipUri):
            log.error("forward: bad_uri dropping packet")
            return None
        transport = uri.param("transport")
        p = proto or (
            transport.lower() if transport else ("tls" if uri.scheme == "sips" else "udp")
        )
        return p, uri.host, port or uri.port or _DEFAULT_PORTS.get(p, 5060)

    def _forward_request(
        self, ctx: Context, msg: Request, proto: str | None, host: str | None, port: int | None
    ) -> int:
        hop = self._next_hop(ctx, msg, proto, host, port)
        if hop is None:
            return -1
        p, h, dport = hop
        ip = self._resolve(h)
        if ip is None:
            log.error("bad host name %s, dropping packet", h)
            return -1
        sock = self._pick_socket(ctx, p, ip)
        if sock is None:
            log.error(
                "cannot forward to af %d, proto %s no corresponding listening socket",
                10 if ":" in ip else 2,
                p,
            )
            return -1
        try:
            data = self._build_request(ctx, msg, sock, p)
        except (SipParseError, ValueError) as exc:
            log.error("building failed: %s", exc)
            return -1
        if not self._emit(data, p, (ip, dport), sock):
            return -1
        self.stats["forwarded"] += 1
        self.process.shared.counters.add("core:fwd_requests")
        return 1

    def _build_request(
        self, ctx: Context, msg: Request, sock: Socket, proto: str, branch: str | None = None
    ) -> bytes:
        """The request to send: our Via on top (``branch``, default the stateless
        one), received/rport on the previous top Via, the Path ``lookup`` found as a
        Route header, every other byte as received (the R-URI as the script left
        it)."""
        via = msg.via
        if branch is None:
            branch = forward_branch(msg)
        if ctx.advertised_address is not None:
            addr = ctx.advertised_address
            vport = ctx.advertised_port or (sock.advertise[1] if sock.advertise else sock.port)
        elif sock.advertise is not None:
            addr, vport = sock.advertise
        else:
            addr, vport = sock.ip, sock.port
        if ctx.advertised_port is not None:
            vport = ctx.advertised_port
        line = self._via_prefix(addr, vport, proto) + branch.encode() + msg.eol
        edits: list[tuple[int, int, bytes]] = []
        if via is not None:
            r = ctx.received
            spans = via.param_spans
            if spans:
                at = msg.buf.rfind(b";", via.start, spans[0][0])
                at = at if at >= 0 else spans[0][0]
            else:
                at = via.end
            rport_at, received_at = _rport_received(via)
            insert = b""
            if rport_at >= 0:
                s, e = spans[rport_at]
                edits.append((s, e, b"rport=%d" % r.src_port))
            elif "force_rport" in ctx.msg_flags:
                insert += b";rport=%d" % r.src_port
            if self._received_needed(via, r.src_ip):
                if received_at >= 0:
                    s, e = spans[received_at]
                    edits.append((s - 1, e, b""))
                insert += b";received=" + r.src_ip.encode()
            if insert:
                edits.append((at, at, insert))
            top = msg.spans[msg.names.index(b"via")][0]
        else:
            top = msg.hdr_start
        edits.append((top, top, line))
        if ctx.path_vec:
            # the registered contact's Path as the route set (Kamailio's
            # ``insert_path_as_route``: one Route header before the first header,
            # after our Via when that is a Via; measured on 5.6.3)
            route = b"Route: " + ctx.path_vec.encode("utf-8", "surrogateescape") + msg.eol
            edits.append((msg.hdr_start, msg.hdr_start, route))
        return _serialize_with(msg, edits)

    def _via_prefix(self, addr: str, port: int, proto: str) -> bytes:
        """``Via: SIP/2.0/PROTO host[:port];branch=`` of the Via we add: built once
        per advertised address (a worker sends from the same few sockets)."""
        key = (addr, port, proto)
        prefix = self._via_prefixes.get(key)
        if prefix is None:
            hostport = _bracket(addr)
            if port != _DEFAULT_PORTS.get(proto, 5060):
                hostport += f":{port}"
            prefix = f"Via: SIP/2.0/{proto.upper()} {hostport};branch=".encode()
            if len(self._via_prefixes) >= 256:  # set_advertised_address may vary it
                self._via_prefixes.clear()
            self._via_prefixes[key] = prefix
        return prefix

    # -- replies -------------------------------------------------------------------

    def _on_reply(self, msg: Response, received: Received, local: Socket) -> None:
        self.stats["replies_received"] += 1
        counters = self.process.shared.counters
        counters.add("core:rcv_replies")
        counters.add(_RCV_REPLY_COUNTER[msg.status // 100])
        route = self.router.reply
        if route is not None:
            ctx = ReplyContext(self.process, msg, received)
            ctx.kind = Route.CORE_ONREPLY
            outcome = self.router.run(route, ctx)
            if outcome.dropped:
                self.stats["dropped_replies"] += 1
                return
        if self.tm.on_response(msg, received, local):
            return
        self._relay_reply(msg, received, local, None)

    def _relay_reply(
        self, msg: Response, received: Received, local: Socket, ctx: Context | None
    ) -> int:
        """Kamailio's ``forward_reply``: remove our Via, send to the second one."""
        vias = msg.vias
        if not vias:
            self.stats["dropped_replies"] += 1
            log.error("reply without Via dropped")
            return -1
        top = vias[0]
        if self._check_via and not self.is_myself(top.host, top.port, top.transport.lower()):
            self.stats["dropped_replies"] += 1
            log.error("host in first via!=me : %s:%s", top.host, top.port or 0)
            return -1
        if len(vias) < 2:
            self.stats["dropped_replies"] += 1
            log.debug("reply cannot be forwarded - no 2nd via")
            return -1
        via2 = vias[1]
        port: int | None = None
        rport = via2.rport
        if rport:
            port = int(rport) if rport.isdigit() and 0 < int(rport) < 65536 else None
            if port is None:
                log.error("bad rport value(%s)", rport)
        proto = via2.transport.lower()
        name = via2.received if via2.received else via2.host
        if port is None:
            port = via2.port or _DEFAULT_PORTS.get(proto, 5060)
        ip = self._resolve(name)
        if ip is None:
            self.stats["dropped_replies"] += 1
            log.warning("resolve_host(%s) failure", name)
            return -1
        sock = self._pick_socket(ctx, proto, ip) if ctx is not None else None
        if sock is None:
            sock = self._socket_for(local, proto, ip)
        if sock is None:
            self.stats["dropped_replies"] += 1
            log.error("cannot forward reply")
            return -1
        edits = _top_via_removal(msg)
        data = _serialize_with(msg, edits)
        if not self._emit(data, proto, (ip, port), sock):
            return -1
        self.stats["replies_relayed"] += 1
        self.process.shared.counters.add("core:fwd_replies")
        return 1

    def _socket_for(self, local: Socket, proto: str, ip: str) -> Socket | None:
        v6 = ":" in ip
        if local.proto == proto and (":" in local.ip) == v6:
            return local
        for s in self.sockets:
            if s.proto == proto and (":" in s.ip) == v6:
                return s
        return None

    def _forward_reply_to(
        self, ctx: Context, msg: Response, proto: str | None, host: str | None, port: int | None
    ) -> int:
        """``forward()`` in a reply route: the stateless relay (no host given), or
        the reply as received without our Via to ``host:port``."""
        local = self._local_of(ctx)
        if host is None:
            return self._relay_reply(msg, ctx.received, local, ctx)
        p = (proto or "udp").lower()
        ip = self._resolve(host)
        if ip is None:
            log.error("bad host name %s, dropping packet", host)
            return -1
        sock = self._pick_socket(ctx, p, ip)
        if sock is None:
            log.error("cannot forward reply")
            return -1
        data = _serialize_with(msg, _top_via_removal(msg))
        dst = (ip, port or _DEFAULT_PORTS.get(p, 5060))
        return 1 if self._emit(data, p, dst, sock) else -1


def _top_via_removal(msg: Message) -> list[tuple[int, int, bytes]]:
    """The splice removing the top Via (its line, or its via-parm of a joined line)."""
    ls, vs, ve, le = msg.spans[msg.names.index(b"via")]
    vias = msg.vias  # in order: the top line's via-parms come first
    if len(vias) < 2 or not vs <= vias[1].start < ve:
        return [(ls, le, b"")]
    return [(vias[0].start, vias[1].start, b"")]


def _serialize_with(msg: Message, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``msg.serialize()`` with extra splices that are not kept on the message (each
    ``forward`` builds its own copy, as Kamailio builds each send buffer)."""
    saved = msg._edits
    msg._edits = saved + edits
    try:
        return msg.serialize()
    finally:
        msg._edits = saved


#: the message event routes run on (Kamailio's ``faked_msg.c``)
_FAKED_MSG: Final = (
    b"OPTIONS sip:you@kamailio.org SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1\r\n"
    b"From: <sip:you@kamailio.org>;tag=123\r\n"
    b"To: <sip:you@kamailio.org>\r\n"
    b"Call-ID: 123\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)
