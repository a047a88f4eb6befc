"""Run a compiled cfg as a SIP proxy: options, a supervisor, N worker processes.

A generated module ends with::

    if __name__ == "__main__":
        raise SystemExit(serve.main(ROUTER))

so ``python proxy.py --listen udp:127.0.0.1:5060 --children 2`` runs the proxy.

**Options** (each defaults to the cfg's value, as Kamailio's command line overrides
its cfg): ``--listen [proto:]host[:port][/advhost[:advport]]`` (repeatable; Kamailio's
``-l`` syntax; replaces the cfg's ``listen=`` entries), ``--children N`` (``children``,
8 when the cfg has none, Kamailio's default), ``--log-level`` (a Kamailio level -5..3
or a name, default the cfg's ``debug``, else 0 = warnings), ``--allow-dst
CIDR[,CIDR...]`` (repeatable: the engine refuses any send outside these networks; no
restriction when absent, with a warning), ``--rcvbuf``/``--sndbuf`` (socket buffers,
4 MiB) and ``--stop-timeout`` (seconds a worker gets to drain and stop on SIGTERM,
5).

**Sockets.** Each cfg ``listen=`` entry (``proto:host:port`` with an optional
``advertise host:port``) is a socket; an entry without a protocol is UDP and TCP, as
Kamailio listens on every enabled protocol (TCP unless ``disable_tcp=yes``); a
missing port is the cfg's ``port=`` (5060). A host name is resolved once at start.
Kamailio with no ``listen=`` binds every interface; kcc refuses to start instead and
says so: a proxy should never answer on an address nobody chose (tests always run on
loopback).

**Processes.** Always one supervisor and N workers, ``children=1`` included, so
every proxy behaves the same. The supervisor creates the shared store
(:class:`~kcc_runtime.shm.SharedMemoryStore`: ``$shv`` with the cfg's ``shvset``
values, the ``lock()`` set of ``2^lock_set_size`` locks) and the htable tables and
pike tree of the cfg (:class:`~kcc_runtime.shtable.ModuleMemory`, set on the router
as ``module_memory`` so each worker's ``Router.process`` uses them), checks that every address
is free (one bind without ``SO_REUSEPORT``, closed at once), then forks the workers
and binds nothing itself. Each worker binds every socket with ``SO_REUSEPORT``,
builds its own :class:`~kcc_runtime.engine.Proxy` (its own ``$var``), calls
``engine.start()`` and serves (:class:`~kcc_runtime.transport.Transport`). When every
worker serves, the supervisor prints one line on stderr, which tests wait for::

    kcc proxy ready: udp:127.0.0.1:5060 (2 workers)

**Reply sockets** (with ``children`` > 1). Transactions live in the worker that
created them, so the responses to a stateful relay must come back to that worker,
not to whichever worker ``SO_REUSEPORT``'s flow hash picks for the backend's address.
Each worker therefore binds, per UDP listening IP, one private UDP socket on an
ephemeral port (:func:`~kcc_runtime.transport.bind_reply_socket`) and gives it to its
engine (``Proxy(..., reply_sockets=...)``): the engine sends its client transactions
from it with a Via naming it, and responses, routed by Via, reach the worker that
holds the transaction. The caller's retransmissions, CANCEL and hop-by-hop ACK come
from the caller's own address and port, which the flow hash maps to the worker that
took the INVITE, as long as no worker restarts (a restart reshuffles the hash; the
module docstring of :mod:`kcc_runtime.transport` states the limits). The reply
socket's advertised address, when its listen entry has ``advertise host:port``, is
that host with the reply socket's own port (a 1:1 NAT forwards it; a port-mapping NAT
does not). With ``children=1`` there is no reply socket: every message reaches the one
worker, and relays leave from the listening socket with a Via naming it, exactly as
Kamailio's do. Each worker logs its reply sockets at the info level::

    1(4242) INFO: <core> [serve.py:..]: _worker(): reply socket udp:127.0.0.1:40211

A worker that dies is reaped, its exit status logged, the locks it held released
(Kamailio would deadlock the others) and it is started again after a backoff: 0.1 s,
doubling for each death within 10 s of the previous start, at most 10 s. A worker
that fails before the proxy was ever ready (an address in use, a cfg the engine
rejects) stops the start: every worker is stopped and :func:`main` returns 1.
SIGTERM or SIGINT to the supervisor stops the workers: each gets SIGTERM and drains
(:meth:`~kcc_runtime.transport.Transport.drain`): new requests get ``503 Service
Unavailable``, what is under way goes on (replies, retransmissions, CANCEL, ACK,
in-dialog requests) until no transaction is pending, for at most 80 % of
``--stop-timeout``; then the requests still unanswered get a local 503, their
branches are canceled and the worker exits. A worker still alive at
``--stop-timeout`` gets SIGKILL. Then :func:`main` returns 0. (Kamailio has no
drain: its SIGTERM ends every process at once. Raise ``--stop-timeout`` above
``fr_inv_timer`` to let every call being set up finish.) A worker ignores SIGINT (a Ctrl-C
reaches the whole process group; the supervisor handles it) and stops by itself when
its supervisor is gone.

Logs go to stderr in Kamailio's format (:mod:`kcc_runtime.logs`), rank 0 the
supervisor and 1..N the workers; ``xlog`` output goes through the same handler.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import ipaddress
import logging
import os
import re
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn

from kcc_runtime import location, logs
from kcc_runtime.memory import Trimmer
from kcc_runtime.shm import MAX_LOCK_SET_SIZE, SharedMemoryStore
from kcc_runtime.transport import (
    BindError,
    EngineIO,
    SocketLike,
    Transport,
    TransportOptions,
    bind_reply_socket,
    check_free,
    socket_label,
)

if TYPE_CHECKING:
    from kcc_runtime.router import Config, Router

__all__ = [
    "ListenSpec",
    "Options",
    "ServeError",
    "main",
    "parse_args",
    "parse_listen",
    "run",
]

log = logging.getLogger("kcc_runtime.serve")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Kamailio's default number of UDP workers
DEFAULT_CHILDREN: Final = 8
#: Kamailio's default ``debug`` (L_WARN)
DEFAULT_DEBUG: Final = 0
DEFAULT_PORT: Final = 5060
EXIT_START_FAILED: Final = 1
EXIT_USAGE: Final = 2
#: a worker's exit code when a socket could not be bound
_EXIT_BIND: Final = 3
#: restart backoff (s)
_BACKOFF_FIRST: Final = 0.1
_BACKOFF_MAX: Final = 10.0
_QUICK_DEATH: Final = 10.0
#: the part of ``--stop-timeout`` a worker drains before answering what is left (the
#: rest leaves it time to send those answers before the supervisor's SIGKILL)
_DRAIN_SHARE: Final = 0.8

#: middle-generation collections between two full ones in a worker (CPython: 10)
_GC_FULL_THRESHOLD: Final = 1000
_SUPERVISOR_SIGNALS: Final = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


class ServeError(Exception):
    """A start-up problem stated for the operator (bad listen address, no listen)."""


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """One local socket to open (the fields of :class:`kcc_runtime.engine.Socket`)."""

    proto: str
    ip: str
    port: int
    advertise: tuple[str, int] | None = None


@dataclass(frozen=True)
class Options:
    """The proxy's settings after the command line and the cfg are merged."""

    listens: tuple[ListenSpec, ...]
    children: int
    log_level: int
    allow_dst: tuple[Network, ...] | None
    rcvbuf: int = 4 * 1024 * 1024
    sndbuf: int = 4 * 1024 * 1024
    stop_timeout: float = 5.0
    tcp_lifetime: float = 120.0
    #: Kamailio's ``tcp_max_connections`` for the whole proxy (each worker takes
    #: its share: the connections of a worker are its own)
    tcp_max_connections: int = 2048
    lock_set_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: where the RPC sockets and FIFO go (Kamailio's ``-Y``)
    runtime_dir: str = "/run/kamailio"


#: builds a worker's engine: (router, sockets, allow_dst, shared store, reply sockets)
#: -> engine; the reply sockets are the worker's private ones (none with children=1)
EngineFactory = Callable[
    ["Router", Sequence[Any], "Sequence[Network] | None", SharedMemoryStore, Sequence[Any]],
    EngineIO[Any],
]
#: turns a :class:`ListenSpec` into the engine's socket type
SocketFactory = Callable[[ListenSpec], SocketLike]


# ---------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------


def _resolve(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise ServeError(f"cannot resolve listen host `{host}`: {exc}") from None
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == family:
                return str(info[4][0])
    raise ServeError(f"listen host `{host}` has no IP address")


#: ``[proto:]host[:port]``: host a name, an IPv4 address, a bracketed IPv6 address
#: (needed with a port) or a bare IPv6 address
_ADDRESS: Final = re.compile(
    r"(?:(?P<proto>[a-z]+):)?(?P<host>\[[0-9a-f:.]+\]|[^:\[\]/\s]+|[0-9a-f:.]*:[0-9a-f:.]*)"
    r"(?::(?P<port>\d{1,5}))?",
    re.IGNORECASE,
)
_SUPPORTED: Final = ("udp", "tcp")


def _address(text: str, default_port: int, *, what: str) -> tuple[str | None, str, int]:
    match = _ADDRESS.fullmatch(text)
    if match is None:
        raise ServeError(f"`{text}` is not a {what} ([proto:]host[:port])")
    proto = match["proto"].lower() if match["proto"] else None
    host = match["host"].strip("[]")
    port = int(match["port"]) if match["port"] else default_port
    if not 0 < port < 65536:
        raise ServeError(f"`{text}`: port {port} out of range")
    return proto, host, port


def parse_listen(
    text: str, *, default_port: int = DEFAULT_PORT, tcp: bool = True
) -> list[ListenSpec]:
    """Sockets of one ``listen=`` value or ``--listen`` argument.

    ``[proto:]host[:port]`` then an optional advertised address, either Kamailio's
    cfg form (`` advertise host:port``, and a `` name "x"`` that is ignored) or its
    ``-l`` form (``/host:port``). No protocol: UDP and (when ``tcp``) TCP, as
    Kamailio listens on every enabled protocol. Raises :class:`ServeError`."""
    words = text.split()
    if not words:
        raise ServeError("empty listen address")
    main_part, slash, adv_text = words[0].partition("/")
    advertise_text: str | None = adv_text if slash else None
    for i, word in enumerate(words[1:-1], start=1):
        if word.lower() == "advertise":
            advertise_text = words[i + 1]
    proto, host, port = _address(main_part, default_port, what="listen address")
    if proto is not None and proto not in _SUPPORTED:
        raise ServeError(f"`{text}`: protocol {proto} is not supported (udp and tcp are)")
    ip = _resolve(host)
    advertise: tuple[str, int] | None = None
    if advertise_text:
        _, adv_host, adv_port = _address(advertise_text, port, what="advertised address")
        advertise = (adv_host, adv_port)
    protos = [proto] if proto else (["udp", "tcp"] if tcp else ["udp"])
    return [ListenSpec(p, ip, port, advertise) for p in protos]


def _int_global(config: Config, name: str, default: int) -> int:
    value = config.global_value(name, default)
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "on", "true"):
        return 1
    if text in ("no", "off", "false"):
        return 0
    return int(text) if text.lstrip("-").isdigit() else default


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be at least 1")
    return value


def _networks(values: list[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ServeError(f"--allow-dst: `{item.strip()}` is not a CIDR network") from None
    return tuple(out)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the compiled Kamailio cfg as a SIP proxy (values default to the cfg's).",
    )
    parser.add_argument(
        "--listen",
        "-l",
        action="append",
        default=[],
        metavar="[PROTO:]HOST[:PORT][/ADVHOST[:ADVPORT]]",
        help="a local socket (repeatable); replaces the cfg's listen= entries",
    )
    parser.add_argument("--children", type=_positive_int, help="worker processes")
    parser.add_argument("--log-level", help="Kamailio level -5..3 or a name (info, warn...)")
    parser.add_argument(
        "--allow-dst",
        action="append",
        default=[],
        metavar="CIDR[,CIDR...]",
        help="refuse to send anywhere outside these networks (repeatable)",
    )
    parser.add_argument("--rcvbuf", type=_positive_int, default=4 * 1024 * 1024)
    parser.add_argument("--sndbuf", type=_positive_int, default=4 * 1024 * 1024)
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on SIGTERM a worker drains what is under way, then is killed after this",
    )
    parser.add_argument(
        "--runtime-dir",
        default="/run/kamailio",
        help="directory of the ctl/jsonrpcs sockets and FIFO (Kamailio's -Y)",
    )
    return parser


def parse_args(config: Config, argv: Sequence[str], prog: str = "proxy") -> Options:
    """Merge the command line with the cfg; :class:`ServeError` (or argparse's
    ``SystemExit(2)``) for bad input."""
    ns = _parser(prog).parse_args(list(argv))
    default_port = _int_global(config, "port", DEFAULT_PORT)
    tcp = _int_global(config, "disable_tcp", 0) == 0
    listens: list[ListenSpec] = []
    texts = list(ns.listen) or [str(v) for v in config.global_values("listen")]
    for text in texts:
        for spec in parse_listen(text, default_port=default_port, tcp=tcp):
            if spec not in listens:
                listens.append(spec)
    if not listens:
        raise ServeError(
            "no listen address: give `listen=` in the cfg or `--listen proto:ip:port` "
            "(kcc never binds every interface, unlike Kamailio without listen=)"
        )
    level_text: str | int = ns.log_level if ns.log_level is not None else DEFAULT_DEBUG
    if ns.log_level is None:
        debug = config.global_value("debug", DEFAULT_DEBUG)
        level_text = debug if isinstance(debug, int) else str(debug)
    level = logs.parse_level(level_text)
    if level is None:
        raise ServeError(f"--log-level: `{level_text}` is not a Kamailio level (-5..3 or a name)")
    children = ns.children or _int_global(config, "children", DEFAULT_CHILDREN)
    if children < 1:
        raise ServeError(f"children={children}: at least one worker is needed")
    sizes = config.modparam_values("cfgutils", "lock_set_size")
    lock_set_size = sizes[-1] if sizes and isinstance(sizes[-1], int) else 0
    if not 0 <= lock_set_size <= MAX_LOCK_SET_SIZE:
        raise ServeError(f"cfgutils lock_set_size {lock_set_size}: use 0..{MAX_LOCK_SET_SIZE}")
    return Options(
        listens=tuple(listens),
        children=children,
        log_level=level,
        allow_dst=_networks(ns.allow_dst) if ns.allow_dst else None,
        rcvbuf=ns.rcvbuf,
        sndbuf=ns.sndbuf,
        stop_timeout=max(0.0, ns.stop_timeout),
        tcp_lifetime=float(_int_global(config, "tcp_connection_lifetime", 120)),
        tcp_max_connections=max(1, _int_global(config, "tcp_max_connections", 2048)),
        lock_set_size=lock_set_size,
        runtime_dir=ns.runtime_dir,
    )


# ---------------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------------


def _default_engine(
    router: Router,
    sockets: Sequence[Any],
    allow_dst: Sequence[Network] | None,
    shared: SharedMemoryStore,
    reply_sockets: Sequence[Any],
) -> EngineIO[Any]:
    """The generated proxy's engine; it relays statefully from the worker's reply
    sockets (one per UDP listening IP), when it has them."""
    from kcc_runtime.engine import Proxy

    engine: EngineIO[Any] = Proxy(
        router,
        sockets,
        allow_dst=allow_dst,
        shared=shared,
        reply_sockets=reply_sockets,
    )
    return engine


def _reply_addresses(listens: Sequence[ListenSpec]) -> list[tuple[str, str | None]]:
    """``(ip, advertised host)`` of each distinct UDP listening IP, in cfg order."""
    out: dict[str, str | None] = {}
    for spec in listens:
        if spec.proto != "udp":
            continue
        host = spec.advertise[0] if spec.advertise is not None else None
        if out.get(spec.ip) is None:
            out[spec.ip] = host
    return list(out.items())


def _bind_reply_sockets(
    opts: Options, transport_options: TransportOptions, socket_factory: SocketFactory
) -> list[tuple[SocketLike, socket.socket]]:
    """A worker's private reply sockets (none with one worker); see the module
    docstring. Raises :class:`BindError`, with whatever was bound closed again."""
    if opts.children <= 1:
        return []
    bound: list[tuple[SocketLike, socket.socket]] = []
    try:
        for ip, advertised in _reply_addresses(opts.listens):
            raw = bind_reply_socket(ip, transport_options)
            try:
                port = int(raw.getsockname()[1])
                spec = ListenSpec(
                    "udp", ip, port, None if advertised is None else (advertised, port)
                )
                bound.append((socket_factory(spec), raw))
            except BaseException:
                raw.close()
                raise
    except BaseException:
        for _, raw in bound:
            raw.close()
        raise
    return bound


def _default_socket(spec: ListenSpec) -> SocketLike:
    from kcc_runtime.engine import Socket

    sock: SocketLike = Socket(spec.proto, spec.ip, spec.port, spec.advertise)
    return sock


def _worker(
    rank: int,
    *,
    router: Router,
    opts: Options,
    store: SharedMemoryStore,
    ready_fd: int,
    supervisor: int,
    engine_factory: EngineFactory,
    socket_factory: SocketFactory,
) -> NoReturn:
    """A worker's whole life; never returns to the supervisor's code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SUPERVISOR_SIGNALS)
        logs.set_rank(rank)
        store.reset_process_state(rank - 1)
        use_row = getattr(store.counters, "use_row", None)
        if use_row is not None:
            use_row(rank)  # the worker's row of the shared statistics
        sockets = [socket_factory(spec) for spec in opts.listens]
        transport_options = TransportOptions(
            rcvbuf=opts.rcvbuf,
            sndbuf=opts.sndbuf,
            tcp_lifetime=opts.tcp_lifetime,
            tcp_max_connections=-(-opts.tcp_max_connections // opts.children),
            drain_timeout=opts.stop_timeout * _DRAIN_SHARE,
        )
        replies = _bind_reply_sockets(opts, transport_options, socket_factory)
        for reply, _ in replies:
            log.info("reply socket %s", socket_label(reply))
        engine = engine_factory(
            router, sockets, opts.allow_dst, store, [reply for reply, _ in replies]
        )
        transport = Transport(engine, sockets, transport_options, reply_sockets=replies)
        transport.bind()
        gc.freeze()  # the same for what the worker built to serve
        # A full collection walks every live transaction (~80 objects each, ~100 ms
        # for 1,500 calls in their wait timer): with CPython's default it ran every
        # second or two at load and was the p99 response time. tm frees finished
        # calls by reference counting (no cycles), so the young generations still
        # collect what cyclic garbage there is and full passes can be rare.
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, _GC_FULL_THRESHOLD)

        def ready() -> None:
            os.write(ready_fd, f"{os.getpid()}\n".encode())

        transport.run(
            on_ready=ready,
            watchdog=lambda: os.getppid() == supervisor,
            housekeeping=Trimmer(),  # freed memory back to the system every 30 s
        )
        code = 0
    except BindError as exc:
        log.error("%s", exc.strerror or exc)
        code = _EXIT_BIND
    except BaseException:
        log.exception("worker %d failed", rank)
        code = 1
    finally:
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)


# ---------------------------------------------------------------------------------
# the supervisor
# ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    rank: int
    pid: int = 0
    started: float = 0.0
    ready: bool = False
    failures: int = 0
    restart_at: float | None = None


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by signal {number} ({name})"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class _Supervisor:
    def __init__(
        self,
        router: Router,
        opts: Options,
        store: SharedMemoryStore,
        engine_factory: EngineFactory,
        socket_factory: SocketFactory,
    ) -> None:
        self.router = router
        self.opts = opts
        self.store = store
        self.engine_factory = engine_factory
        self.socket_factory = socket_factory
        self.slots = [_Slot(rank) for rank in range(1, opts.children + 1)]
        # the RPC process (ctl/jsonrpcs): one more slot, restarted like a worker
        self.rpc_points = _rpc_points(router, opts)
        if self.rpc_points:
            self.slots.append(_Slot(opts.children + 1))
        self.started = time.time()
        _publish_rpc_facts(self)
        self.by_pid: dict[int, _Slot] = {}
        self.stopping = False
        self.announced = False
        self.ready_r, self.ready_w = os.pipe()
        self.sig_r, self.sig_w = os.pipe()
        self._ready_buf = b""

    # -- processes ------------------------------------------------------------------

    def spawn(self, slot: _Slot) -> None:
        sys.stderr.flush()
        sys.stdout.flush()
        # the router, the cfg's constants and the modules live as long as the
        # processes: out of the cyclic collector's passes (which would also write to
        # their pages and unshare them from the children)
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            os.close(self.ready_r)
            os.close(self.sig_r)
            os.close(self.sig_w)
            if slot.rank > self.opts.children:
                _rpc_process(self, slot.rank)
            _worker(
                slot.rank,
                router=self.router,
                opts=self.opts,
                store=self.store,
                ready_fd=self.ready_w,
                supervisor=os.getppid(),
                engine_factory=self.engine_factory,
                socket_factory=self.socket_factory,
            )
        slot.pid = pid
        _record_pid(self.store, slot.rank, pid)
        slot.started = time.monotonic()
        slot.ready = False
        slot.restart_at = None
        self.by_pid[pid] = slot

    def _reap(self) -> list[tuple[_Slot, int, int]]:
        dead: list[tuple[_Slot, int, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return dead
            if pid == 0:
                return dead
            slot = self.by_pid.pop(pid, None)
            released = self.store.release_dead(pid)
            if released:
                log.warning("worker pid %d died holding %d lock(s)", pid, len(released))
            _release_module_memory(self.router, pid)
            if slot is not None:
                slot.pid = 0
                dead.append((slot, pid, status))

    def _read_ready(self) -> None:
        try:
            self._ready_buf += os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        *lines, self._ready_buf = self._ready_buf.split(b"\n")
        for line in lines:
            slot = self.by_pid.get(int(line)) if line.strip().isdigit() else None
            if slot is not None:
                slot.ready = True
                if self.announced:
                    log.warning("worker %d (pid %d) serving again", slot.rank, slot.pid)

    def _drain_signals(self) -> None:
        try:
            while os.read(self.sig_r, 512):
                pass
        except BlockingIOError:
            return

    # -- the loop ---------------------------------------------------------------------

    def serve(self) -> int:
        os.set_blocking(self.ready_r, False)
        os.set_blocking(self.sig_r, False)
        os.set_blocking(self.sig_w, False)
        selector = selectors.DefaultSelector()
        selector.register(self.ready_r, selectors.EVENT_READ)
        selector.register(self.sig_r, selectors.EVENT_READ)

        def on_stop(signum: int, _frame: object) -> None:
            if not self.stopping:
                log.info("signal %d received: stopping", signum)
            self.stopping = True

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        signal.set_wakeup_fd(self.sig_w)
        try:
            for slot in self.slots:
                signal.pthread_sigmask(signal.SIG_BLOCK, _SUPERVISOR_SIGNALS)
                try:
                    self.spawn(slot)
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SUPERVISOR_SIGNALS)
            return self._loop(selector)
        finally:
            self._stop_all()
            signal.set_wakeup_fd(-1)
            selector.close()
            for fd in (self.ready_r, self.ready_w, self.sig_r, self.sig_w):
                os.close(fd)

    def _stop_requested(self) -> bool:
        """Whether SIGTERM/SIGINT arrived (set by the signal handler at any point)."""
        return self.stopping

    def _loop(self, selector: selectors.BaseSelector) -> int:
        while not self.stopping:
            now = time.monotonic()
            due = [s.restart_at for s in self.slots if s.restart_at is not None]
            timeout = max(0.0, min(due) - now) if due else None
            selector.select(timeout)
            self._drain_signals()
            self._read_ready()
            for slot, pid, status in self._reap():
                if self._stop_requested():
                    continue
                if not self.announced:
                    log.error(
                        "worker %d (pid %d) %s before the proxy was ready: stopping",
                        slot.rank,
                        pid,
                        _describe_status(status),
                    )
                    return EXIT_START_FAILED
                lived = time.monotonic() - slot.started
                slot.failures = slot.failures + 1 if lived < _QUICK_DEATH else 1
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (slot.failures - 1))
                slot.restart_at = time.monotonic() + delay
                log.error(
                    "worker %d (pid %d) %s; restarting it in %.1f s",
                    slot.rank,
                    pid,
                    _describe_status(status),
                    delay,
                )
            if self._stop_requested():
                break
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    signal.pthread_sigmask(signal.SIG_BLOCK, _SUPERVISOR_SIGNALS)
                    try:
                        self.spawn(slot)
                    finally:
                        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SUPERVISOR_SIGNALS)
            if not self.announced and all(s.ready for s in self.slots):
                self.announced = True
                labels = ", ".join(socket_label(s) for s in self.opts.listens)
                count = self.opts.children
                sys.stderr.write(
                    f"kcc proxy ready: {labels} ({count} worker{'s' if count != 1 else ''})\n"
                )
                sys.stderr.flush()
        return 0

    def _stop_all(self) -> None:
        live = [s for s in self.slots if s.pid]
        for slot in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.opts.stop_timeout
        while any(s.pid for s in self.slots) and time.monotonic() < deadline:
            self._reap()
            if any(s.pid for s in self.slots):
                time.sleep(0.01)
        for slot in self.slots:
            if slot.pid:
                log.warning("worker %d (pid %d) did not stop: SIGKILL", slot.rank, slot.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
        while any(s.pid for s in self.slots):
            self._reap()
            if any(s.pid for s in self.slots):
                time.sleep(0.01)


def run(
    router: Router,
    argv: Sequence[str],
    *,
    prog: str = "proxy",
    engine_factory: EngineFactory = _default_engine,
    socket_factory: SocketFactory = _default_socket,
) -> int:
    """:func:`main` with the engine and socket types injectable (tests run the
    supervisor with a stand-in engine)."""
    try:
        opts = parse_args(router.config, argv, prog)
    except ServeError as exc:
        logs.setup(logging.WARNING)
        log.error("%s", exc)
        return EXIT_USAGE
    logs.setup(opts.log_level)
    if opts.allow_dst is None:
        log.warning("no --allow-dst: the proxy may send to any address the cfg routes to")
    try:
        for spec in opts.listens:
            check_free(spec)
    except BindError as exc:
        log.error("%s", exc.strerror or exc)
        return EXIT_START_FAILED
    shared_router = _with_module_memory(router)
    if shared_router is None:
        return EXIT_START_FAILED
    router = shared_router
    store = SharedMemoryStore(
        router.config.shv_initial(), lock_set_size=opts.lock_set_size, workers=opts.children
    )
    counters = _shared_counters(router, opts, store)
    try:
        # usrloc's db_mode 0 database: one file for all workers, removed at exit
        with location.private_directory():
            return _Supervisor(router, opts, store, engine_factory, socket_factory).serve()
    finally:
        _remove_rpc_paths(router, opts)
        counters.close()
        store.close()
        if router.module_memory is not None:
            router.module_memory.close()


# ---------------------------------------------------------------------------------
# htable's tables and pike's tree, shared by the workers (kcc_runtime.shtable)
# ---------------------------------------------------------------------------------


def _with_module_memory(router: Router) -> Router | None:
    """``router`` with htable's tables and pike's tree mapped in shared memory before
    the fork (:class:`~kcc_runtime.shtable.ModuleMemory`), so every worker's
    ``Router.process`` uses them; None (logged) for an htable definition Kamailio
    refuses, which stops the start as it stops Kamailio."""
    from kcc_runtime.htable import HtableDefinitionError
    from kcc_runtime.shtable import ModuleMemory

    try:
        memory = ModuleMemory.from_config(router.config)
    except HtableDefinitionError as exc:
        log.error("%s", exc)
        return None
    return dataclasses.replace(router, module_memory=memory)


def _release_module_memory(router: Router, pid: int) -> None:
    """Forget the htable/pike locks a dead worker held (the kernel released them)."""
    if router.module_memory is not None:
        released = router.module_memory.release_dead(pid)
        if released:
            log.warning("worker pid %d died holding %d htable/pike lock(s)", pid, released)


# ---------------------------------------------------------------------------------
# the RPC process (kcc_runtime.rpc.server) and the shared statistics
# ---------------------------------------------------------------------------------


def _rpc_points(router: Router, opts: Options) -> list[Any]:
    """Where the RPC process listens (none: no ctl/jsonrpcs in the cfg, no process)."""
    from kcc_runtime.rpc.server import rpc_endpoints

    return rpc_endpoints(router.config, opts.runtime_dir)


def _shared_counters(router: Router, opts: Options, store: SharedMemoryStore) -> Any:
    """The statistics table, one row per process (supervisor, workers, RPC)."""
    from kcc_runtime.modules.counters import script_counter_names
    from kcc_runtime.rpc.stats import statistic_names
    from kcc_runtime.shm import SharedCounters

    names = statistic_names(router.config.modules, script_counter_names(router.config))
    counters = SharedCounters(names, opts.children + 2)
    store.counters = counters
    return counters


def _publish_rpc_facts(sup: _Supervisor) -> None:
    """The start time and process descriptions the RPC commands read, for the
    workers too (``jsonrpc_dispatch`` over HTTP runs them there)."""
    from kcc_runtime.rpc.worker import describe_processes, publish

    udp = [s for s in sup.opts.listens if s.proto == "udp"]
    first = f"{udp[0].ip}:{udp[0].port}" if udp else "-"
    describe = describe_processes(sup.opts.children, first, bool(sup.rpc_points))
    publish(sup.store, sup.started, describe)


def _record_pid(store: SharedMemoryStore, rank: int, pid: int) -> None:
    """Publish a process's pid for ``core.psx`` (rank 0: the supervisor)."""
    from kcc_runtime.rpc.server import pid_key

    store.set(pid_key(0), os.getpid())
    store.set(pid_key(rank), pid)


def _remove_rpc_paths(router: Router, opts: Options) -> None:
    """Remove the RPC sockets and FIFO a killed RPC process left behind."""
    from kcc_runtime.rpc.server import remove_paths

    paths = [p.address for p in _rpc_points(router, opts) if isinstance(p.address, str)]
    remove_paths(paths)


def _rpc_process(sup: _Supervisor, rank: int) -> NoReturn:
    """The RPC process's whole life; never returns to the supervisor's code."""
    from kcc_runtime.rpc.server import run_rpc_process

    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SUPERVISOR_SIGNALS)
        logs.set_rank(rank)
        sup.store.reset_process_state(0)
        sup.store.counters.use_row(rank)  # type: ignore[attr-defined]
        os.makedirs(sup.opts.runtime_dir, exist_ok=True)
        supervisor = os.getppid()
        udp = [s for s in sup.opts.listens if s.proto == "udp"]
        first = f"{udp[0].ip}:{udp[0].port}" if udp else "-"
        describe = ["main process - attendant"]
        describe += [f"udp receiver child={i} sock={first}" for i in range(sup.opts.children)]
        describe.append("ctl handler")

        def ready() -> None:
            os.write(sup.ready_w, f"{os.getpid()}\n".encode())

        code = run_rpc_process(
            config=sup.router.config,
            store=sup.store,
            points=sup.rpc_points,
            ready=ready,
            watchdog=lambda: os.getppid() == supervisor,
            started=sup.started,
            describe=describe,
            module_memory=sup.router.module_memory,
        )
    except BaseException:
        log.exception("RPC process failed")
        code = 1
    finally:
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)


def main(router: Router, argv: Sequence[str] | None = None) -> int:
    """Run the proxy for ``router`` with the command line ``argv`` (default
    ``sys.argv[1:]``); the exit code: 0 after SIGTERM/SIGINT, 1 when the proxy could
    not start, 2 for bad options."""
    args = sys.argv[1:] if argv is None else list(argv)
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "proxy"
    return run(router, args, prog=prog)
