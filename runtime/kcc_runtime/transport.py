"""The proxy's sockets and event loop: the only module that touches sockets or asyncio.

One :class:`Transport` runs in each worker process. It binds every local
:class:`~kcc_runtime.engine.Socket` itself, with ``SO_REUSEPORT`` so that the N
workers of a proxy share each address and the kernel spreads the flows over them,
hands every received message to the sans-IO engine (``engine.receive(data, src,
local)``) and sends what the engine returns. The engine never sees a socket; the
transport never parses SIP (except for TCP framing) nor runs a route.

**UDP, the fast path.** The stock asyncio datagram transport reads one datagram per
loop wake-up (~27 µs per forwarded packet on the reference machine); a non-blocking
socket watched with ``loop.add_reader`` whose callback drains up to ``batch``
datagrams per wake-up costs ~3.3 µs (``/work/shared/reference/field-notes.md``).
uvloop, when installed, runs the same code (its ``add_reader`` is the same API).
Sends use ``sendto`` on the socket the engine chose (``Outgoing.src``): a full send
buffer (``EAGAIN``) drops the datagram and counts it (``send_eagain``) instead of
blocking the loop; UDP is unreliable anyway and SIP retransmits. Large ``SO_RCVBUF``
/ ``SO_SNDBUF`` (4 MiB by default) absorb bursts; ``SO_RCVBUFFORCE`` is tried first
so a privileged proxy is not capped by ``net.core.rmem_max``.

**TCP** (RFC 3261 §18.3): a listening socket per TCP address (``SO_REUSEPORT`` too:
each worker accepts its share of the connections), one asyncio protocol per
connection with a :class:`~kcc_runtime.sip.StreamFramer` (Content-Length framing;
a framing error closes the connection, as Kamailio does for a stream it cannot
resynchronise). Connections are kept by remote address: a reply to a request that
came over TCP goes back on that connection, as Kamailio's connection lookup does. A
send to an address with no connection opens one (asynchronous connect from the
source socket's address, ``tcp_connect_timeout`` 10 s); messages wait in a bounded
queue until it is up. A connection idle for ``tcp_connection_lifetime`` (Kamailio's
default 120 s) is closed. A worker keeps at most its share of the cfg's
``tcp_max_connections`` (2048 by default) open: a connection accepted beyond it is
closed at once and counted (``tcp_refused``), so a peer opening connections without
end cannot exhaust the worker's descriptors and buffers. Limitation: connections
belong to the worker that accepted or opened them (Kamailio passes descriptors
between processes through tcp_main); a reply that must reach a TCP client but is
processed by another worker opens a new connection to the client's address, which
usually fails. With ``children=1``, or with replies that come back on the same
flow, this does not arise.

**HTTP on the SIP TCP sockets** (xhttp): when the engine serves HTTP
(``http_enabled``: the cfg loads xhttp), a connection accepted on a SIP TCP socket
whose first line is an HTTP/1.x request line (:func:`~kcc_runtime.http.looks_like_http`)
is an HTTP connection for its whole life, as Kamailio's ``tcp_read`` treats it: an
:class:`~kcc_runtime.http.HttpFramer` frames it (Content-Length, chunked, or no body
with ``tcp_accept_no_cl``), each request goes to ``engine.receive_http`` and the
reply comes back as an ``Outgoing`` to the client's address, so on this connection;
an ``Outgoing`` with ``close`` set (``set_reply_close()``) closes it once written,
and requests pipelined behind it are not answered (measured on Kamailio). A SIP
connection never goes through this path.

**Reply sockets: responses reach the worker that holds the transaction.** The N
workers share each listening address through ``SO_REUSEPORT``: the kernel picks the
worker by a hash of the packet's (source, destination) addresses and ports, so what
one peer sends from one port always reaches the same worker, but a backend's
response to a relayed request comes from the backend's address and would land on an
arbitrary worker, one that does not hold the client transaction. So, with more than
one worker, each worker also owns a private UDP socket per listening IP, bound to an
ephemeral port (port 0, no ``SO_REUSEPORT``: :func:`bind_reply_socket`) and adopted
by its :class:`Transport` (``reply_sockets=``). The engine sends its client
transactions (stateful relays) from it, with its Via naming it: RFC 3261 §18.2.2
routes responses by the top Via's sent-by (or, with ``rport``, to the source port,
the same socket), so every response comes back to the worker that sent the request.
A reply socket is otherwise an ordinary UDP socket: whatever arrives on it (a
response, or a request somebody sent there) goes to ``engine.receive`` with
``local=`` the reply socket. Requests from a caller (INVITE retransmissions, CANCEL,
the ACK for a non-2xx reply) come from the caller's same address and port as the
INVITE, and the flow hash sends them to the worker that took the INVITE, as long as
the set of workers does not change: a worker that dies and is restarted reshuffles
the hash (and the restarted worker has lost its transactions anyway). Kamailio keeps
its transaction table in shared memory, so any of its workers can take any message;
kcc trades that for lock-free per-worker transactions. TCP needs no reply socket:
responses come back on the connection the worker opened.

**Timer.** Every ``timer_interval`` seconds the engine's ``on_timer(now)`` runs
(htable expiry and the like), idle TCP connections are closed, an optional
``watchdog`` is asked whether to keep running (a worker whose supervisor is gone
stops) and an optional ``housekeeping`` runs (the worker's memory trimmer). The
transaction timers need more precision (INVITE retransmissions every 0.5 s): after
every message and tick the transport asks the engine's ``next_timer()`` and wakes up
exactly then (one ``call_later`` handle, moved only earlier).

**Stopping.** A stop signal (SIGTERM) stops the loop at once, or, with
``drain_timeout`` (serve.py sets it), drains: the TCP listening sockets stop
accepting, the engine refuses new requests with a 503 and the loop serves what is
under way (replies, retransmissions, CANCEL, ACK, in-dialog requests, on UDP and on
open connections) until the engine has no transaction pending, at most
``drain_timeout`` seconds; then the engine answers what is left and the loop stops. A
second stop signal stops at once.

Nothing the network sends can raise out of a callback: errors are counted in
:attr:`Transport.stats` and logged; an exception from the engine (a bug: it never
raises) is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from kcc_runtime.http import HttpError, HttpFramer, looks_like_http
from kcc_runtime.sip import SipParseError, StreamFramer

__all__ = [
    "BindError",
    "EngineIO",
    "OutgoingLike",
    "SocketLike",
    "Transport",
    "TransportOptions",
    "bind_reply_socket",
    "check_free",
    "new_event_loop",
    "socket_label",
]

log = logging.getLogger("kcc_runtime.transport")

try:  # uvloop when installed: the same add_reader code path, a faster loop
    import uvloop as _uvloop  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the host
    _uvloop = None

#: Linux's SO_RCVBUFFORCE / SO_SNDBUFFORCE (not exported by every Python build)
_SO_RCVBUFFORCE: int = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_SNDBUFFORCE: int = getattr(socket, "SO_SNDBUFFORCE", 32)

#: the largest UDP payload
_MAX_DATAGRAM = 65535
#: how often a drain looks whether the engine still has something pending (s)
_DRAIN_POLL = 0.05


class SocketLike(Protocol):
    """What the transport reads of :class:`kcc_runtime.engine.Socket`."""

    @property
    def proto(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def port(self) -> int: ...


class OutgoingLike(Protocol):
    """What the transport reads of :class:`kcc_runtime.engine.Outgoing`."""

    @property
    def data(self) -> bytes: ...
    @property
    def proto(self) -> str: ...
    @property
    def dst(self) -> tuple[str, int]: ...
    @property
    def src(self) -> SocketLike: ...


S = TypeVar("S", bound=SocketLike)
S_contra = TypeVar("S_contra", bound=SocketLike, contravariant=True)


class EngineIO(Protocol[S_contra]):
    """The engine as the transport drives it (``kcc_runtime.engine.Proxy``)."""

    def receive(
        self, data: bytes, src: tuple[str, int], local: S_contra
    ) -> Sequence[OutgoingLike]: ...
    def on_timer(self, now: float) -> Sequence[OutgoingLike]: ...
    def start(self) -> Sequence[OutgoingLike]: ...


class BindError(OSError):
    """A local socket could not be created or bound (the message says which)."""


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Socket and timer settings of one worker's transport."""

    rcvbuf: int = 4 * 1024 * 1024
    sndbuf: int = 4 * 1024 * 1024
    #: datagrams read per wake-up before the loop runs other callbacks
    batch: int = 64
    timer_interval: float = 1.0
    #: Kamailio's ``tcp_connection_lifetime`` (s)
    tcp_lifetime: float = 120.0
    #: Kamailio's ``tcp_connect_timeout`` (s)
    tcp_connect_timeout: float = 10.0
    #: bytes a TCP connection may have queued (connecting or unsent) before new
    #: messages are dropped (Kamailio's ``tcp_conn_wq_max`` idea)
    tcp_queue_max: int = 1024 * 1024
    tcp_backlog: int = 1024
    #: largest message a TCP stream may carry
    tcp_max_message: int = 65535
    #: TCP connections this transport keeps open at once (accepted and opened);
    #: a connection accepted beyond it is closed at once (Kamailio's
    #: ``tcp_max_connections``, shared by the workers: serve.py gives each its part)
    tcp_max_connections: int = 2048
    #: seconds a stop signal leaves the engine to finish what is under way
    #: (:meth:`Transport.drain`); 0 stops at once
    drain_timeout: float = 0.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when uvloop is installed, else asyncio's default (epoll) loop."""
    if _uvloop is not None:
        loop: asyncio.AbstractEventLoop = _uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def socket_label(sock: SocketLike) -> str:
    """``udp:127.0.0.1:5060``, ``tcp:[::1]:5060``: Kamailio's way of naming a socket."""
    host = f"[{sock.ip}]" if ":" in sock.ip else sock.ip
    return f"{sock.proto}:{host}:{sock.port}"


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _canonical(ip: str) -> str:
    try:
        return ipaddress.ip_address(ip).compressed
    except ValueError:
        return ip


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    if size <= 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:  # not privileged: capped by net.core.[rw]mem_max
        sock.setsockopt(socket.SOL_SOCKET, plain, size)


@dataclass(frozen=True, slots=True)
class _Address:
    proto: str
    ip: str
    port: int


def _open_socket(
    local: SocketLike, kind: socket.SocketKind, options: TransportOptions, *, shared: bool = True
) -> socket.socket:
    family = _family(local.ip)
    label = socket_label(local)
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise BindError(exc.errno, f"cannot create a socket for {label}: {exc.strerror}") from None
    try:
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        _set_buffer(sock, _SO_RCVBUFFORCE, socket.SO_RCVBUF, options.rcvbuf)
        _set_buffer(sock, _SO_SNDBUFFORCE, socket.SO_SNDBUF, options.sndbuf)
        sock.bind((local.ip, local.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(options.tcp_backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"cannot bind {label}: {exc.strerror or exc}") from None
    return sock


def bind_reply_socket(ip: str, options: TransportOptions | None = None) -> socket.socket:
    """A worker's private UDP socket on ``ip``, bound to an ephemeral port.

    No ``SO_REUSEPORT``: the port belongs to this process alone, so whatever is sent
    to it (the responses to the requests the worker relayed from it) reaches this
    worker (see the module docstring). The port is ``sock.getsockname()[1]``; the
    caller builds the engine's socket with it and hands both to
    :class:`Transport` (``reply_sockets=``), which then owns the socket. Ephemeral
    ports (``net.ipv4.ip_local_port_range``) never collide with another worker's or
    with a listening port. Raises :class:`BindError`."""
    opts = options or TransportOptions()
    return _open_socket(_Address("udp", ip, 0), socket.SOCK_DGRAM, opts, shared=False)


def check_free(local: SocketLike) -> None:
    """Raise :class:`BindError` when ``local`` is already bound by another process.

    Workers bind with ``SO_REUSEPORT``, which would let them share a port with a
    stale proxy; the supervisor binds each address once *without* it first (and closes
    it at once), so an address in use is a clear start-up error, as for Kamailio."""
    kind = socket.SOCK_STREAM if local.proto == "tcp" else socket.SOCK_DGRAM
    try:
        probe = socket.socket(_family(local.ip), kind)
    except OSError as exc:
        raise BindError(exc.errno, f"cannot create a socket for {socket_label(local)}") from None
    try:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if probe.family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        probe.bind((local.ip, local.port))
    except OSError as exc:
        raise BindError(
            exc.errno, f"cannot bind {socket_label(local)}: {exc.strerror or exc}"
        ) from None
    finally:
        probe.close()


class _Udp(Generic[S]):
    __slots__ = ("local", "sock")

    def __init__(self, local: S, sock: socket.socket) -> None:
        self.local = local
        self.sock = sock


class _TcpConn(asyncio.Protocol, Generic[S]):
    """One TCP connection: framing in, a bounded queue out."""

    def __init__(self, owner: Transport[S], local: S, remote: tuple[str, int] | None) -> None:
        self.owner = owner
        self.local = local
        self.remote = remote
        self.framer = StreamFramer(owner.options.tcp_max_message)
        #: what the stream carries: None until its first line is read (the engine
        #: serves HTTP), then "sip" or "http" for the connection's life
        self.mode: str | None = "sip" if remote is not None or not owner.http else None
        self._head = bytearray()
        self.http_framer: HttpFramer | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.last = time.monotonic()
        self.closed = False

    # -- asyncio callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.remote is None and not self.owner._room_for_connection():
            self.closed = True
            transport.abort()
            return
        peer = transport.get_extra_info("peername")
        if self.remote is None and peer is not None:
            self.remote = (_canonical(str(peer[0])), int(peer[1]))
        if self.remote is not None:
            self.owner._register(self.remote, self)
        self.owner.stats["tcp_connections"] += 1
        while self.pending:
            transport.write(self.pending.popleft())
        self.pending_bytes = 0
        self.last = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.mode is None:
            self._head += data
            verdict = looks_like_http(self._head)
            if verdict is None:
                return
            data = bytes(self._head)
            self._head.clear()
            self.mode = "http" if verdict else "sip"
            if verdict:
                self.http_framer = HttpFramer(
                    self.owner.options.tcp_max_message, accept_no_cl=self.owner.http_no_cl
                )
        if self.http_framer is not None:
            self._http_received(data)
            return
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            self.owner.stats["tcp_framing_errors"] += 1
            log.warning("closing the TCP connection from %s: %s", self.remote, exc)
            self.close()
            return
        remote = self.remote or ("", 0)
        for msg in messages:
            self.owner._dispatch(msg.buf, remote, self.local)

    def _http_received(self, data: bytes) -> None:
        """An HTTP connection (accepted on a SIP TCP socket): every framed request
        goes to the engine's ``receive_http``; a framing error closes it."""
        assert self.http_framer is not None
        try:
            requests = self.http_framer.feed(data)
        except HttpError as exc:
            self.owner.stats["tcp_framing_errors"] += 1
            log.warning("closing the HTTP connection from %s: %s", self.remote, exc)
            self.close()
            return
        remote = self.remote or ("", 0)
        for request in requests:
            if self.closed:
                break  # set_reply_close(): what follows is never answered (measured)
            self.owner._dispatch_http(request, remote, self.local)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.remote is not None:
            self.owner._unregister(self.remote, self)

    # -- sending --------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        limit = self.owner.options.tcp_queue_max
        if self.transport is None:
            if self.pending_bytes + len(data) > limit:
                self.owner.stats["tcp_queue_full"] += 1
                return
            self.pending.append(data)
            self.pending_bytes += len(data)
            return
        if self.transport.get_write_buffer_size() + len(data) > limit:
            self.owner.stats["tcp_queue_full"] += 1
            return
        self.transport.write(data)
        self.last = time.monotonic()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class Transport(Generic[S]):
    """Sockets, event loop and timer of one worker (see the module docstring).

    Use: ``Transport(engine, sockets, options).run(...)`` in a worker process, or
    :meth:`bind` + :meth:`run` to report bind errors before serving.
    ``reply_sockets``: the worker's private UDP sockets, each already bound by
    :func:`bind_reply_socket` with the engine's socket naming its port; the transport
    owns (and closes) them from then on, reads them like the listening sockets, and
    sends from one when ``Outgoing.src`` names it."""

    def __init__(
        self,
        engine: EngineIO[S],
        sockets: Sequence[S],
        options: TransportOptions | None = None,
        *,
        reply_sockets: Sequence[tuple[S, socket.socket]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.sockets = tuple(sockets)
        self.reply_sockets: tuple[S, ...] = tuple(local for local, _ in reply_sockets)
        self._reply_raw: list[tuple[S, socket.socket]] = list(reply_sockets)
        self.options = options or TransportOptions()
        self.clock = clock
        self.stats: dict[str, int] = {
            "send_eagain": 0,
            "send_errors": 0,
            "recv_errors": 0,
            "engine_errors": 0,
            "unsupported_proto": 0,
            "tcp_connections": 0,
            "tcp_connect_failed": 0,
            "tcp_framing_errors": 0,
            "tcp_queue_full": 0,
            "tcp_idle_closed": 0,
            "tcp_refused": 0,
        }
        self.loop: asyncio.AbstractEventLoop | None = None
        self._udp: list[_Udp[S]] = []
        self._udp_by_addr: dict[tuple[str, int], _Udp[S]] = {}
        self._tcp_listen: list[tuple[S, socket.socket]] = []
        self._conns: dict[tuple[str, int], _TcpConn[S]] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._timer: asyncio.TimerHandle | None = None
        #: the wake-up for the engine's next transaction timer, and when it is due
        self._due_handle: asyncio.TimerHandle | None = None
        self._due: float | None = None
        self._watchdog: Callable[[], bool] | None = None
        self._housekeeping: Callable[[], None] | None = None
        #: when a drain started by a stop signal must end (None: not draining)
        self._drain_deadline: float | None = None
        self._bound = False
        #: the engine serves HTTP on the SIP TCP sockets (xhttp), and takes an HTTP
        #: request without Content-Length (``tcp_accept_no_cl``)
        self.http = bool(getattr(engine, "http_enabled", False)) and hasattr(engine, "receive_http")
        self.http_no_cl = bool(getattr(engine, "http_accept_no_cl", False))

    # -- set-up -----------------------------------------------------------------------

    def bind(self) -> None:
        """Create and bind every socket; :class:`BindError` names the one that failed
        (everything bound so far is closed again)."""
        if self._bound:
            return
        try:
            for local in self.sockets:
                if local.proto == "udp":
                    entry = _Udp(local, _open_socket(local, socket.SOCK_DGRAM, self.options))
                    self._udp.append(entry)
                    self._udp_by_addr.setdefault((_canonical(local.ip), local.port), entry)
                elif local.proto == "tcp":
                    sock = _open_socket(local, socket.SOCK_STREAM, self.options)
                    self._tcp_listen.append((local, sock))
                else:
                    raise BindError(
                        errno.EPROTONOSUPPORT,
                        f"{socket_label(local)}: protocol {local.proto!r} is not supported "
                        "(udp and tcp are)",
                    )
            self._adopt_reply_sockets()
        except BindError:
            self._close_sockets()
            raise
        self._bound = True

    def _adopt_reply_sockets(self) -> None:
        """Take the pre-bound reply sockets in (after the listening sockets, so that a
        send whose socket does not fit falls back to a listening one). A socket that
        does not match the engine's view of it (another family, port or protocol) is
        refused: the engine would advertise an address nobody reads."""
        pending, self._reply_raw = self._reply_raw, []
        for i, (local, sock) in enumerate(pending):
            try:
                port = int(sock.getsockname()[1])
            except OSError:
                port = -1
            if (
                local.proto != "udp"
                or sock.type != socket.SOCK_DGRAM
                or sock.family != _family(local.ip)
                or port != local.port
            ):
                for _, rest in pending[i:]:
                    rest.close()
                raise BindError(
                    errno.EINVAL,
                    f"reply socket {socket_label(local)} does not match its bound socket "
                    f"(port {port})",
                )
            sock.setblocking(False)
            entry = _Udp(local, sock)
            self._udp.append(entry)
            self._udp_by_addr.setdefault((_canonical(local.ip), local.port), entry)

    def run(
        self,
        *,
        on_ready: Callable[[], None] | None = None,
        watchdog: Callable[[], bool] | None = None,
        housekeeping: Callable[[], None] | None = None,
        stop_signals: Sequence[signal.Signals] = (signal.SIGTERM,),
    ) -> None:
        """Bind (if not done), call ``engine.start()``, then serve until one of
        ``stop_signals`` arrives (or :meth:`stop`); ``on_ready`` runs once serving.
        With ``drain_timeout`` set, the first stop signal drains (:meth:`drain`) and
        a second one stops at once. ``housekeeping`` runs on every timer tick (the
        worker's :class:`~kcc_runtime.memory.Trimmer`)."""
        self.bind()
        loop = new_event_loop()
        self.loop = loop
        self._watchdog = watchdog
        self._housekeeping = housekeeping
        try:
            for sig in stop_signals:
                loop.add_signal_handler(sig, self._on_stop_signal)
            loop.run_until_complete(self._start())
            if on_ready is not None:
                on_ready()
            loop.run_forever()
        finally:
            self._shutdown(loop)

    def stop(self) -> None:
        """Stop serving (from a signal handler, a callback, or another thread)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    def _on_stop_signal(self) -> None:
        if self._drain_deadline is None and self.options.drain_timeout > 0:
            self.drain(self.options.drain_timeout)
        else:
            self.stop()

    def drain(self, timeout: float) -> None:
        """Stop gracefully: accept no new TCP connection, tell the engine to refuse
        new requests (``begin_drain``), go on serving what is under way until the
        engine has nothing pending, then stop; at ``timeout`` seconds the engine
        answers what is left (``abort_pending``) and the loop stops. An engine
        without these methods stops at once. Call from the loop's thread."""
        loop = self.loop
        begin = getattr(self.engine, "begin_drain", None)
        if loop is None or begin is None or self._drain_deadline is not None:
            self.stop()
            return
        self._drain_deadline = time.monotonic() + timeout
        for server in self._servers:
            server.close()
        begin()
        self._drain_check()

    def _drain_check(self) -> None:
        loop = self.loop
        deadline = self._drain_deadline
        if loop is None or deadline is None:
            return
        try:
            pending: int = getattr(self.engine, "pending", lambda: 0)()
        except Exception:  # a bug: stop rather than drain for ever
            self.stats["engine_errors"] += 1
            log.exception("engine failed to count its pending transactions")
            pending = 0
        if pending == 0:
            log.info("drained: nothing pending, stopping")
            loop.stop()
            return
        if time.monotonic() < deadline:
            loop.call_later(_DRAIN_POLL, self._drain_check)
            return
        log.warning("drain timeout: answering %d pending transactions and stopping", pending)
        abort = getattr(self.engine, "abort_pending", None)
        if abort is not None:
            try:
                outs = abort()
            except Exception:
                self.stats["engine_errors"] += 1
                log.exception("engine failed to answer its pending transactions")
                outs = ()
            if outs:
                self._send(outs)
        loop.call_later(_DRAIN_POLL, loop.stop)  # TCP writes leave before the close

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for entry in self._udp:
            loop.add_reader(entry.sock.fileno(), self._udp_readable, entry)
        for local, sock in self._tcp_listen:

            def factory(local: S = local) -> _TcpConn[S]:
                return _TcpConn(self, local, None)

            self._servers.append(await loop.create_server(factory, sock=sock))
        try:
            outs = self.engine.start()
        except Exception:
            log.exception("the engine failed to start")
            raise
        self._send(outs)
        self._timer = loop.call_later(self.options.timer_interval, self._tick)

    def _shutdown(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._due_handle is not None:
            self._due_handle.cancel()
            self._due_handle = None
            self._due = None
        for entry in self._udp:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(entry.sock.fileno())
        for server in self._servers:
            server.close()
        for conn in list(self._conns.values()):
            conn.close()
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(asyncio.sleep(0))
        self._close_sockets()
        loop.close()
        self.loop = None

    def _close_sockets(self) -> None:
        for entry in self._udp:
            entry.sock.close()
        for _, sock in self._reply_raw:  # not adopted yet (a bind error came first)
            sock.close()
        self._reply_raw.clear()
        for _, sock in self._tcp_listen:
            sock.close()
        self._udp.clear()
        self._udp_by_addr.clear()
        self._tcp_listen.clear()
        self._bound = False

    # -- receiving --------------------------------------------------------------------

    def _udp_readable(self, entry: _Udp[S]) -> None:
        """Drain up to ``batch`` datagrams (the fast path: no per-packet wake-up)."""
        try:
            self._drain(entry)
        finally:
            self._arm()

    def _drain(self, entry: _Udp[S]) -> None:
        recvfrom = entry.sock.recvfrom
        engine = self.engine
        local = entry.local
        for _ in range(self.options.batch):
            try:
                data, addr = recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error reported on the socket: ECONNREFUSED...
                self.stats["recv_errors"] += 1
                continue
            try:
                outs = engine.receive(data, (addr[0], addr[1]), local)
            except Exception:  # the engine never raises; a bug must not stop the loop
                self.stats["engine_errors"] += 1
                log.exception("engine failed on a datagram from %s:%s", addr[0], addr[1])
                continue
            if outs:
                self._send(outs)

    def _dispatch_http(self, data: bytes, src: tuple[str, int], local: S) -> None:
        receive = getattr(self.engine, "receive_http", None)
        if receive is None:
            return
        try:
            outs = receive(data, src, local)
        except Exception:
            self.stats["engine_errors"] += 1
            log.exception("engine failed on an HTTP request from %s:%s", src[0], src[1])
            return
        if outs:
            self._send(outs)
        self._arm()

    def _dispatch(self, data: bytes, src: tuple[str, int], local: S) -> None:
        try:
            outs = self.engine.receive(data, src, local)
        except Exception:
            self.stats["engine_errors"] += 1
            log.exception("engine failed on a message from %s:%s", src[0], src[1])
            return
        if outs:
            self._send(outs)
        self._arm()

    # -- the transaction timers ---------------------------------------------------------

    def _arm(self) -> None:
        """Wake up when the engine's next transaction timer is due (retransmissions
        every 0.5 s and more must not wait for the 1 s housekeeping tick)."""
        next_timer = getattr(self.engine, "next_timer", None)
        loop = self.loop
        if next_timer is None or loop is None:
            return
        due: float | None = next_timer()
        if due is None or (self._due is not None and self._due <= due):
            return
        if self._due_handle is not None:
            self._due_handle.cancel()
        self._due = due
        self._due_handle = loop.call_later(max(0.001, due - self.clock()), self._due_tick)

    def _due_tick(self) -> None:
        self._due = None
        self._due_handle = None
        try:
            outs = self.engine.on_timer(self.clock())
        except Exception:
            self.stats["engine_errors"] += 1
            log.exception("engine timer failed")
            outs = ()
        if outs:
            self._send(outs)
        self._arm()

    # -- sending ----------------------------------------------------------------------

    def _send(self, outs: Sequence[OutgoingLike]) -> None:
        for out in outs:
            proto = out.proto
            if proto == "udp":
                self._send_udp(out)
            elif proto == "tcp":
                self._send_tcp(out)
            else:
                self.stats["unsupported_proto"] += 1
                log.warning("cannot send over %s to %s:%s", proto, out.dst[0], out.dst[1])

    def _udp_for(self, src: SocketLike, dst_ip: str) -> _Udp[S] | None:
        entry = self._udp_by_addr.get((src.ip, src.port))
        if entry is None:
            entry = self._udp_by_addr.get((_canonical(src.ip), src.port))
        family = _family(dst_ip)
        if entry is not None and entry.sock.family == family:
            return entry
        for other in self._udp:  # the engine's choice does not fit: same family
            if other.sock.family == family:
                return other
        return None

    def _send_udp(self, out: OutgoingLike) -> None:
        dst = out.dst
        entry = self._udp_for(out.src, dst[0])
        if entry is None:
            self.stats["send_errors"] += 1
            log.error("no UDP socket to send to %s:%s from", dst[0], dst[1])
            return
        try:
            entry.sock.sendto(out.data, dst)
        except BlockingIOError:
            self.stats["send_eagain"] += 1
        except OSError as exc:
            self.stats["send_errors"] += 1
            log.warning("sendto %s:%s failed: %s", dst[0], dst[1], exc.strerror or exc)

    def _send_tcp(self, out: OutgoingLike) -> None:
        dst = (_canonical(out.dst[0]), out.dst[1])
        conn = self._conns.get(dst)
        if conn is None or conn.closed:
            conn = self._connect(out.src, dst)
            if conn is None:
                return
        if out.data:
            conn.send(out.data)
        if getattr(out, "close", False):
            conn.close()  # asyncio writes what is buffered, then closes

    def _connect(self, src: SocketLike, dst: tuple[str, int]) -> _TcpConn[S] | None:
        local = self._tcp_local(src, dst[0])
        loop = self.loop
        if local is None or loop is None:
            self.stats["send_errors"] += 1
            log.error("no TCP socket to connect to %s:%s from", dst[0], dst[1])
            return None
        if not self._room_for_connection():
            self.stats["send_errors"] += 1
            return None  # a cfg relaying where callers say must not open them without end
        conn: _TcpConn[S] = _TcpConn(self, local, dst)
        self._conns[dst] = conn
        loop.create_task(self._open(conn, dst))
        return conn

    def _tcp_local(self, src: SocketLike, dst_ip: str) -> S | None:
        family = _family(dst_ip)
        fallback: S | None = None
        for local, _ in self._tcp_listen:
            if _family(local.ip) != family:
                continue
            if (_canonical(local.ip), local.port) == (_canonical(src.ip), src.port):
                return local
            fallback = fallback or local
        return fallback

    async def _open(self, conn: _TcpConn[S], dst: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn, host=dst[0], port=dst[1], local_addr=(conn.local.ip, 0)
                ),
                self.options.tcp_connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.stats["tcp_connect_failed"] += 1
            log.error("cannot connect to %s:%s over TCP: %s", dst[0], dst[1], exc)
            conn.closed = True
            conn.pending.clear()
            self._unregister(dst, conn)

    def _register(self, remote: tuple[str, int], conn: _TcpConn[S]) -> None:
        self._conns[remote] = conn

    def _room_for_connection(self) -> bool:
        """Whether one more connection, accepted or opened, fits under
        ``tcp_max_connections`` (each open connection costs a descriptor and buffers:
        peers opening them, or callers naming destination after destination, must not
        exhaust the worker; Kamailio counts both kinds too); counted and logged when
        not."""
        if len(self._conns) < self.options.tcp_max_connections:
            return True
        self.stats["tcp_refused"] += 1
        if self.stats["tcp_refused"] == 1 or self.stats["tcp_refused"] % 1000 == 0:
            log.warning(
                "TCP connection refused: %d open (tcp_max_connections), %d refused so far",
                len(self._conns),
                self.stats["tcp_refused"],
            )
        return False

    def _unregister(self, remote: tuple[str, int], conn: _TcpConn[S]) -> None:
        if self._conns.get(remote) is conn:
            del self._conns[remote]

    # -- timer ------------------------------------------------------------------------

    def _tick(self) -> None:
        loop = self.loop
        if loop is None:
            return
        try:
            outs = self.engine.on_timer(self.clock())
        except Exception:
            self.stats["engine_errors"] += 1
            log.exception("engine timer failed")
            outs = ()
        if outs:
            self._send(outs)
        limit = time.monotonic() - self.options.tcp_lifetime
        for conn in list(self._conns.values()):
            if conn.transport is not None and conn.last < limit:
                self.stats["tcp_idle_closed"] += 1
                conn.close()
        if self._watchdog is not None and not self._watchdog():
            loop.stop()
            return
        if self._housekeeping is not None:
            try:
                self._housekeeping()
            except Exception:
                log.exception("housekeeping failed")
        self._timer = loop.call_later(self.options.timer_interval, self._tick)
        self._arm()
