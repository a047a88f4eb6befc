"""The RPC process: ctl's binrpc sockets and jsonrpcs' FIFO and datagram socket,
served by one process the supervisor starts (Kamailio runs "ctl handler",
"JSONRPCS FIFO" and "JSONRPCS DATAGRAM" processes; kcc one for all three).

**Where it listens** (Kamailio's rules, relative paths under the runtime
directory, ``--runtime-dir``, Kamailio's ``-Y``, default ``/run/kamailio``):

- ctl (when loaded): every ``modparam("ctl", "binrpc", ...)``, default
  ``unix:<runtime dir>/kamailio_ctl``. ``unix:``/``unixs:`` a unix stream socket
  (kamcmd's ``-s unix:``), ``unixd:`` a unix datagram socket, ``tcp:host:port`` and
  ``udp:host:port`` (a bare path is ``unix:``). Socket mode ``mode`` (0600).
- jsonrpcs (when loaded), by ``transport`` (default 6): 2, the FIFO ``fifo_name``
  (``kamailio_rpc.fifo``, mode ``fifo_mode`` 0660), replies written to the FIFO the
  request names in ``reply_name`` under ``fifo_reply_dir`` (``/tmp/``); 4, the
  datagram socket ``dgram_socket`` (``kamailio_rpc.sock``, or ``udp:host:port``),
  replies sent back to the sender. Transport 1 (HTTP, with xhttp) is not served
  here.

A stream connection carries any number of requests, each answered in order; a
packet that is not binrpc gets fault 400 and the connection is closed, as
Kamailio does. Every socket and FIFO is created at start (a stale file is
replaced) and removed when the process ends (SIGTERM); the supervisor removes them
too, for a process that was killed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import selectors
import signal
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from kcc_runtime.rpc import binrpc, jsonrpc
from kcc_runtime.rpc.commands import REGISTRY, RpcEnv
from kcc_runtime.rpc.registry import Fault, Params, RpcValue
from kcc_runtime.shared import SharedStore

if TYPE_CHECKING:
    from kcc_runtime.router import Config
    from kcc_runtime.shtable import ModuleMemory

__all__ = ["Endpoint", "RpcServer", "endpoints"]

log = logging.getLogger("kcc_runtime.ctl")

DEFAULT_RUNTIME_DIR: Final = "/run/kamailio"
_MAX_STREAM_BUFFER: Final = binrpc.MAX_REQUEST_BODY + 16
_FIFO_REPLY_WAIT: Final = 2.0


@dataclass(frozen=True)
class Endpoint:
    """One place the RPC process listens: ``kind`` is ``binrpc`` or ``jsonrpc``,
    ``proto`` ``unix``, ``unixd``, ``tcp``, ``udp`` or ``fifo``; ``address`` a path
    or ``(host, port)``."""

    kind: str
    proto: str
    address: str | tuple[str, int]
    mode: int = 0o600


def _under(runtime_dir: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(runtime_dir, path)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _ctl_endpoint(text: str, runtime_dir: str, mode: int) -> Endpoint:
    proto, sep, rest = text.partition(":")
    if not sep or proto not in ("unix", "unixs", "unixd", "tcp", "udp"):
        proto, rest = "unix", text
    proto = "unix" if proto == "unixs" else proto
    if proto in ("tcp", "udp"):
        return Endpoint("binrpc", proto, _host_port(rest))
    return Endpoint("binrpc", proto, _under(runtime_dir, rest), mode)


def endpoints(
    modparam: Callable[[str, str], list[int | str]], modules: tuple[str, ...], runtime_dir: str
) -> list[Endpoint]:
    """Where to listen for a cfg: ``modparam(module, name)`` gives every value
    of a parameter, in cfg order. Raises ValueError for a bad address."""
    out: list[Endpoint] = []

    def last(module: str, name: str, default: int | str) -> int | str:
        values = modparam(module, name)
        return values[-1] if values else default

    if "ctl" in modules:
        mode = int(last("ctl", "mode", 0o600))
        specs = modparam("ctl", "binrpc") or [f"unix:{runtime_dir}/kamailio_ctl"]
        out += [_ctl_endpoint(str(s), runtime_dir, mode) for s in specs]
    if "jsonrpcs" in modules:
        transport = int(last("jsonrpcs", "transport", 6))
        if transport == 0 or transport & 2:
            name = str(last("jsonrpcs", "fifo_name", "kamailio_rpc.fifo"))
            mode = int(last("jsonrpcs", "fifo_mode", 0o660))
            out.append(Endpoint("jsonrpc", "fifo", _under(runtime_dir, name), mode))
        if transport == 0 or transport & 4:
            name = str(last("jsonrpcs", "dgram_socket", "kamailio_rpc.sock"))
            mode = int(last("jsonrpcs", "dgram_mode", 0o660))
            if name.startswith(("udp:", "udp4:", "udp6:")):
                out.append(Endpoint("jsonrpc", "udp", _host_port(name.partition(":")[2])))
            else:
                out.append(Endpoint("jsonrpc", "unixd", _under(runtime_dir, name), mode))
    return out


@dataclass
class _Conn:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


class RpcServer:
    """The RPC process's sockets and its loop (``serve_forever``)."""

    def __init__(
        self,
        env: RpcEnv,
        points: list[Endpoint],
        *,
        pretty: bool = True,
        fifo_reply_dir: str = "/tmp/",
        max_body: int = binrpc.DEFAULT_MAX_BODY,
    ) -> None:
        self.env = env
        self.points = points
        self.pretty = pretty
        self.fifo_reply_dir = fifo_reply_dir
        self.max_body = max_body
        self.selector = selectors.DefaultSelector()
        self.paths: list[str] = []
        self._fifo_buffers: dict[int, bytearray] = {}
        self._fifo_keep: list[int] = []
        self._stop = False

    # -- the command side -------------------------------------------------------------

    def call(self, method: str, params: Params) -> list[RpcValue]:
        """Run one command; anything but a :class:`Fault` is logged and answered
        with fault 500 (a bug must not end the RPC process)."""
        try:
            return REGISTRY.call(self.env, method, params)
        except Fault:
            raise
        except Exception as exc:
            log.exception("RPC command %s failed", method)
            raise Fault(500, f"internal error: {exc.__class__.__name__}") from None

    def binrpc_answer(self, data: bytes | bytearray) -> tuple[bytes | None, int, bool]:
        """The reply to the request at the start of ``data``: (reply or None
        while incomplete, bytes used, whether to close the connection)."""
        try:
            request, used = binrpc.parse_request(data)
        except binrpc.BinrpcError as exc:
            log.error("bad binrpc request: %s", exc.message)
            return binrpc.encode_fault(exc.code, exc.message, exc.cookie), len(data), True
        if request is None:
            return None, 0, False
        try:
            values = self.call(request.method, Params(request.params))
        except Fault as fault:
            return binrpc.encode_fault(fault.code, fault.message, request.cookie), used, False
        return binrpc.encode_reply(values, request.cookie, self.max_body), used, False

    def json_answer(self, data: bytes) -> tuple[jsonrpc.JsonRequest | None, str | None]:
        return jsonrpc.handle(data, self.call, self.pretty)

    # -- sockets --------------------------------------------------------------------

    def _unlink_stale(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(path).st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                os.unlink(path)

    def open(self) -> None:
        """Create every socket and FIFO. Raises OSError."""
        for point in self.points:
            if point.proto == "fifo":
                assert isinstance(point.address, str)
                self._unlink_stale(point.address)
                os.mkfifo(point.address, point.mode)
                os.chmod(point.address, point.mode)
                self.paths.append(point.address)
                fd = os.open(point.address, os.O_RDONLY | os.O_NONBLOCK)
                # a writer of our own keeps the FIFO from reading EOF between clients
                self._fifo_keep.append(os.open(point.address, os.O_WRONLY | os.O_NONBLOCK))
                self._fifo_buffers[fd] = bytearray()
                self.selector.register(fd, selectors.EVENT_READ, ("fifo", point))
                continue
            if point.proto in ("unix", "unixd"):
                assert isinstance(point.address, str)
                kind = socket.SOCK_STREAM if point.proto == "unix" else socket.SOCK_DGRAM
                sock = socket.socket(socket.AF_UNIX, kind)
                self._unlink_stale(point.address)
                sock.bind(point.address)
                os.chmod(point.address, point.mode)
                self.paths.append(point.address)
            else:
                assert isinstance(point.address, tuple)
                host, port = point.address
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                kind = socket.SOCK_STREAM if point.proto == "tcp" else socket.SOCK_DGRAM
                sock = socket.socket(family, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
            sock.setblocking(False)
            if kind == socket.SOCK_STREAM:
                sock.listen(16)
                self.selector.register(sock, selectors.EVENT_READ, ("listen", point))
            else:
                self.selector.register(sock, selectors.EVENT_READ, ("dgram", point))

    def close(self) -> None:
        """Close everything and remove the socket files and FIFOs."""
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
            else:
                with contextlib.suppress(OSError):
                    os.close(int(key.fd))
        for fd in self._fifo_keep:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fifo_keep.clear()
        remove_paths(self.paths)
        self.paths.clear()

    # -- the loop ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stop = True

    def serve_forever(self, watchdog: Callable[[], bool] = lambda: True) -> None:
        """Serve until :meth:`stop` (SIGTERM) or ``watchdog`` returns False."""
        while not self._stop and watchdog():
            for key, _ in self.selector.select(1.0):
                what, point = key.data
                try:
                    if what == "listen":
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                    elif what == "conn":
                        self._on_stream(key.fileobj, point)  # type: ignore[arg-type]
                    elif what == "dgram":
                        self._on_dgram(key.fileobj, point)  # type: ignore[arg-type]
                    else:
                        self._on_fifo(key.fd)
                except OSError as exc:
                    log.error("RPC transport error: %s", exc)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, ("conn", _Conn(sock)))

    def _drop(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def _on_stream(self, sock: socket.socket, conn: _Conn) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.buffer += data
        while conn.buffer:
            answer, used, close = self.binrpc_answer(conn.buffer)
            if answer is None:
                if len(conn.buffer) > _MAX_STREAM_BUFFER:
                    self._drop(conn)
                return
            del conn.buffer[:used]
            try:
                sock.setblocking(True)
                sock.settimeout(2.0)
                sock.sendall(answer)
                sock.setblocking(False)
            except OSError:
                self._drop(conn)
                return
            if close:
                self._drop(conn)
                return

    def _on_dgram(self, sock: socket.socket, point: Endpoint) -> None:
        try:
            data, peer = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        if point.kind == "binrpc":
            answer, _, _ = self.binrpc_answer(data)
        else:
            _, text = self.json_answer(data)
            answer = None if text is None else text.encode("utf-8", "surrogateescape")
        if answer is not None and peer:
            try:
                sock.sendto(answer, peer)
            except OSError as exc:
                log.error("cannot send the RPC reply: %s", exc)

    def _on_fifo(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        buffer = self._fifo_buffers[fd]
        buffer += data
        decoder = json.JSONDecoder()
        while True:
            text = bytes(buffer).decode("utf-8", "surrogateescape").lstrip()
            if not text:
                buffer.clear()
                return
            try:
                _, end = decoder.raw_decode(text)
            except ValueError:
                if "\n" not in text or len(buffer) > _MAX_STREAM_BUFFER:
                    if len(buffer) > _MAX_STREAM_BUFFER:
                        buffer.clear()
                    return
                # a line that is not (the start of) a JSON document: drop it
                bad, _, rest = text.partition("\n")
                try:
                    json.loads(text)
                except ValueError:
                    log.error("invalid json doc [[%s]]", bad[:200])
                    buffer[:] = rest.encode("utf-8", "surrogateescape")
                    continue
                return
            document = text[:end]
            buffer[:] = text[end:].encode("utf-8", "surrogateescape")
            request, answer = self.json_answer(document.encode("utf-8", "surrogateescape"))
            if request is None or answer is None:
                continue
            self._fifo_reply(request.reply_name, answer)

    def _fifo_reply(self, name: str | None, answer: str) -> None:
        if not name or "/" in name or name in (".", ".."):
            log.error("jsonrpc fifo request without a valid reply_name")
            return
        path = os.path.join(self.fifo_reply_dir, name)
        deadline = time.monotonic() + _FIFO_REPLY_WAIT
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                    log.error("cannot open the reply fifo %s: %s", path, exc)
                    return
                time.sleep(0.01)
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                log.error("reply_name %s is not a fifo", path)
                return
            os.set_blocking(fd, True)
            os.write(fd, answer.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            log.error("cannot write the reply fifo %s: %s", path, exc)
        finally:
            os.close(fd)


def remove_paths(paths: list[str]) -> None:
    """Remove socket files and FIFOs (never anything else)."""
    for path in paths:
        with contextlib.suppress(OSError):
            mode = os.lstat(path).st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                os.unlink(path)


def install_stop(server: RpcServer) -> None:
    """SIGTERM ends :meth:`RpcServer.serve_forever` (the supervisor's stop)."""
    signal.signal(signal.SIGTERM, lambda _s, _f: server.stop())


# -- the process the supervisor starts ---------------------------------------------------


#: the ``$shv`` names (NUL-prefixed: no script can write them) of the processes' pids
def pid_key(rank: int) -> str:
    return f"\0pid:{rank}"


def rpc_endpoints(config: Config, runtime_dir: str) -> list[Endpoint]:
    """:func:`endpoints` for a ``router.Config``."""
    modules = config.modules
    values = config.modparam_values

    def modparam(module: str, name: str) -> list[int | str]:
        return list(values(module, name))

    return endpoints(modparam, modules, runtime_dir)


def run_rpc_process(
    *,
    config: Config,
    store: SharedStore,
    points: list[Endpoint],
    ready: Callable[[], None],
    watchdog: Callable[[], bool],
    started: float,
    describe: list[str],
    module_memory: ModuleMemory | None = None,
) -> int:
    """The RPC process's life (forked by the supervisor): open the sockets, say
    ready, serve until SIGTERM, remove the sockets. ``describe`` is the ``core.psx``
    description of rank 0, 1, ... (supervisor, workers, this process); their pids
    are read from the shared store, where the supervisor writes them."""
    from kcc_runtime import location as loc
    from kcc_runtime.rpc.worker import address_reload
    from kcc_runtime.shtable import worker_state

    def params(module: str, name: str) -> list[int | str]:
        return list(config.modparam_values(module, name))

    def last(module: str, name: str, default: int | str) -> int | str:
        values = params(module, name)
        return values[-1] if values else default

    modules = config.modules
    location = None
    db_mode = int(last("usrloc", "db_mode", 0))
    if "usrloc" in modules:
        url = last("usrloc", "db_url", "")
        location = loc.store_for(
            db_mode, str(url) or None, int(last("usrloc", "timer_interval", 60))
        )

    def processes() -> list[tuple[int, str]]:
        out = []
        for rank, text in enumerate(describe):
            pid = store.get(pid_key(rank))
            out.append((pid if isinstance(pid, int) else 0, text))
        return out

    env = RpcEnv(
        config=config,
        shared=store,
        started=started,
        processes=processes,
        location=location,
        db_mode=db_mode,
        use_domain=bool(last("usrloc", "use_domain", 0)),
        modules=modules,
        reload_addresses=address_reload(modules),
    )
    if "htable" in modules or "pike" in modules:
        # the supervisor's shared tables and tree (private ones without it)
        htables, pike = worker_state(config, module_memory, time.time)
        env.htables = htables if "htable" in modules else None
        env.pike = pike if "pike" in modules else None
    server = RpcServer(
        env,
        points,
        pretty=bool(last("jsonrpcs", "pretty_format", 1)),
        fifo_reply_dir=str(last("jsonrpcs", "fifo_reply_dir", "/tmp/")),
        max_body=int(last("ctl", "binrpc_max_body_size", 32)) * 1024,
    )
    install_stop(server)
    try:
        server.open()
    except OSError as exc:
        log.error("cannot open the RPC sockets: %s", exc)
        server.close()
        return 3
    try:
        ready()
        server.serve_forever(watchdog)
    finally:
        server.close()
    return 0
