"""The supervisor and its workers as real processes on loopback, plus option parsing.

Proxies run as subprocesses: a stand-in engine (replies ``<worker pid> <data>``) for
the process tests, the real engine on compiled cfgs for SIP over UDP/TCP and for
``$shv`` under ``lock()`` across workers. Every wait is bounded; teardown stops each
process by its PID.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kcc_runtime import logs
from kcc_runtime.router import Config
from kcc_runtime.serve import ListenSpec, ServeError, parse_args, parse_listen

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TIMEOUT = 15.0

STAND_IN = textwrap.dedent(
    """
    import os, sys
    from dataclasses import dataclass
    from kcc_runtime import serve
    from kcc_runtime.router import Config, Router

    @dataclass(frozen=True)
    class Out:
        data: bytes
        proto: str
        dst: tuple
        src: object

    class Engine:
        def __init__(self, router, sockets, allow_dst, shared):
            self.shared = shared
        def receive(self, data, src, local):
            if data.startswith(b"exit "):
                os._exit(int(data[5:]))
            if data == b"hold":
                self.shared.lock("held")
            return [Out(b"%d " % os.getpid() + data, local.proto, src, local)]
        def on_timer(self, now):
            return []
        def start(self):
            return []

    router = Router(config=Config(globals=(("children", 2),)))
    raise SystemExit(
        serve.run(router, sys.argv[1:], engine_factory=Engine, socket_factory=lambda s: s)
    )
    """
)

COUNT_CFG = """\
listen=udp:127.0.0.1:5060
children=2
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "cfgutils.so"
modparam("pv", "shvset", "n=i:0")
modparam("cfgutils", "lock_set_size", 1)
request_route {
\tlock("count");
\t$shv(n) = $shv(n) + 1;
\t$var(x) = $shv(n);
\tunlock("count");
\tsl_send_reply("200", "n=$var(x)");
\texit;
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", port))  # free for TCP too, as a `listen=` without proto
    return port


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Proxy:
    """A proxy subprocess; ``wait_ready`` waits for the supervisor's ready line."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._err = log.open("wb")
        self.proc = subprocess.Popen(argv, stderr=self._err, stdout=subprocess.DEVNULL)
        self.workers_seen: set[int] = set()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.text().count(needle) < count:
            assert self.proc.poll() is None, f"proxy exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.text()}"
            time.sleep(0.02)

    def workers(self) -> list[int]:
        pids = children_of(self.proc.pid)
        self.workers_seen.update(pids)
        return pids

    def stop(self) -> int:
        self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for pid in self.workers_seen:  # never leave a worker behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._err.close()
        return code


Starter = Callable[..., Proxy]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    running: list[Proxy] = []

    def _start(argv: list[str], *, ready: bool = True) -> Proxy:
        proxy = Proxy(argv, tmp_path / f"proxy{len(running)}.log")
        running.append(proxy)
        if ready:
            proxy.wait_for("kcc proxy ready:")
        return proxy

    yield _start
    for proxy in running:
        proxy.stop()


def stand_in(tmp_path: Path) -> str:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return str(script)


def udp_client() -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(TIMEOUT)
    return client


def ask(port: int, data: bytes, client: socket.socket | None = None) -> bytes:
    own = client is None
    sock = client or udp_client()
    try:
        sock.sendto(data, ("127.0.0.1", port))
        return sock.recv(65535)
    finally:
        if own:
            sock.close()


def options(client: socket.socket, proto: str = "UDP") -> bytes:
    host, port = client.getsockname()[:2]
    return (
        f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{proto} {host}:{port};branch=z9hG4bK{port}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c{port}\r\n"
        f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


# -- option parsing --------------------------------------------------------------------


def test_listen_forms() -> None:
    assert parse_listen("udp:127.0.0.1:5070") == [ListenSpec("udp", "127.0.0.1", 5070)]
    assert parse_listen("127.0.0.1", default_port=5080) == [
        ListenSpec("udp", "127.0.0.1", 5080),
        ListenSpec("tcp", "127.0.0.1", 5080),
    ]
    assert parse_listen("127.0.0.1", tcp=False) == [ListenSpec("udp", "127.0.0.1", 5060)]
    assert parse_listen("udp:[::1]:5062") == [ListenSpec("udp", "::1", 5062)]
    assert parse_listen('tcp:127.0.0.1:5060 advertise 192.0.2.7:5080 name "x"') == [
        ListenSpec("tcp", "127.0.0.1", 5060, ("192.0.2.7", 5080))
    ]
    assert parse_listen("udp:127.0.0.1:5060/sip.example.com") == [
        ListenSpec("udp", "127.0.0.1", 5060, ("sip.example.com", 5060))
    ]
    for bad, message in (
        ("tls:127.0.0.1:5061", "protocol tls is not supported"),
        ("udp:127.0.0.1:99999", "port 99999 out of range"),
        ("udp:127.0.0.1:x", "is not a listen address"),
    ):
        with pytest.raises(ServeError, match=message):
            parse_listen(bad)


def test_options_default_to_the_cfg() -> None:
    config = Config(
        globals=(
            ("debug", 2),
            ("children", 3),
            ("port", 5070),
            ("listen", "udp:127.0.0.1"),
            ("tcp_connection_lifetime", 30),
        ),
        modules=("cfgutils",),
        modparams=(("cfgutils", "lock_set_size", 4),),
    )
    opts = parse_args(config, [])
    assert opts.listens == (ListenSpec("udp", "127.0.0.1", 5070),)
    assert (opts.children, opts.log_level, opts.allow_dst) == (3, 20, None)
    assert (opts.lock_set_size, opts.tcp_lifetime) == (4, 30.0)
    opts = parse_args(
        config,
        [
            *("--listen", "tcp:127.0.0.1:5090", "-l", "udp:[::1]:5090", "--children", "1"),
            *("--log-level", "-1", "--allow-dst", "127.0.0.0/8,::1", "--allow-dst", "10.1.2.3"),
        ],
    )
    assert opts.listens == (ListenSpec("tcp", "127.0.0.1", 5090), ListenSpec("udp", "::1", 5090))
    assert (opts.children, opts.log_level) == (1, 40)
    assert opts.allow_dst == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.1.2.3/32"),
    )
    assert parse_args(Config(globals=(("listen", "udp:127.0.0.1:5060"),)), []).children == 8


def test_bad_options() -> None:
    with pytest.raises(ServeError, match="no listen address"):
        parse_args(Config(), [])
    listen = Config(globals=(("listen", "udp:127.0.0.1:5060"),))
    with pytest.raises(ServeError, match="not a CIDR network"):
        parse_args(listen, ["--allow-dst", "127.0.0.0/8,nonsense"])
    with pytest.raises(ServeError, match="not a Kamailio level"):
        parse_args(listen, ["--log-level", "loud"])
    with pytest.raises(SystemExit):
        parse_args(listen, ["--children", "0"])


# -- processes (stand-in engine) --------------------------------------------------------


def test_two_workers_share_the_port(start: Starter, tmp_path: Path) -> None:
    port = free_port()
    proxy = start([PYTHON, stand_in(tmp_path), "--listen", f"udp:127.0.0.1:{port}"])
    assert f"kcc proxy ready: udp:127.0.0.1:{port} (2 workers)" in proxy.text()
    workers = set(proxy.workers())
    assert len(workers) == 2
    answered = set()
    for i in range(40):  # SO_REUSEPORT spreads source ports over the workers
        pid, data = ask(port, b"ping %d" % i).split(b" ", 1)
        assert data == b"ping %d" % i
        answered.add(int(pid))
    assert answered == workers
    assert proxy.stop() == 0
    assert "no --allow-dst" in proxy.text()
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


def test_dead_worker_is_restarted_and_its_locks_released(start: Starter, tmp_path: Path) -> None:
    port = free_port()
    proxy = start(
        [PYTHON, stand_in(tmp_path), "--listen", f"udp:127.0.0.1:{port}", "--children", "1"]
    )
    (first,) = proxy.workers()
    client = udp_client()
    assert ask(port, b"hold", client) == b"%d hold" % first  # the worker takes a lock
    os.kill(first, signal.SIGKILL)
    proxy.wait_for("serving again")
    text = proxy.text()
    assert f"worker 1 (pid {first}) killed by signal 9 (SIGKILL); restarting it in 0.1 s" in text
    assert f"released 1 lock(s) held by dead worker pid {first}" in text
    (second,) = proxy.workers()
    assert second != first
    assert ask(port, b"after", client) == b"%d after" % second
    # the new worker can take the lock the dead one held
    assert ask(port, b"hold", client) == b"%d hold" % second
    client.sendto(b"exit 7", ("127.0.0.1", port))
    proxy.wait_for("serving again", 2)
    assert f"worker 1 (pid {second}) exited with status 7" in proxy.text()
    client.close()
    assert proxy.stop() == 0


def test_start_failures(start: Starter, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proxy = start(
            [PYTHON, stand_in(tmp_path), "--listen", f"udp:127.0.0.1:{port}"], ready=False
        )
        assert proxy.proc.wait(TIMEOUT) == 1
        assert f"cannot bind udp:127.0.0.1:{port}: Address already in use" in proxy.text()
    script = tmp_path / "nolisten.py"
    script.write_text(STAND_IN.replace('(("children", 2),)', "()"))
    proxy = start([PYTHON, str(script)], ready=False)
    assert proxy.proc.wait(TIMEOUT) == 2
    assert "no listen address" in proxy.text()


# -- the generated proxy (real engine) --------------------------------------------------


def test_generated_module_answers_udp_and_tcp(start: Starter) -> None:
    port = free_port()
    proxy = start(
        [
            *(PYTHON, str(REPO / "golden" / "stateless_rr_var.py")),
            *("--listen", f"udp:127.0.0.1:{port}", "--listen", f"tcp:127.0.0.1:{port}"),
            *("--children", "2", "--allow-dst", "127.0.0.0/8,::1"),
        ]
    )
    assert f"ready: udp:127.0.0.1:{port}, tcp:127.0.0.1:{port} (2 workers)" in proxy.text()
    with udp_client() as client:
        reply = ask(port, options(client), client)
    assert reply.startswith(b"SIP/2.0 404 Not Found\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(options(conn, "TCP"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65535)
            assert chunk
            data += chunk
    assert data.startswith(b"SIP/2.0 404 Not Found\r\n")
    assert b"CSeq: 1 OPTIONS\r\n" in data
    assert proxy.stop() == 0


def test_shv_counts_under_lock_across_workers(start: Starter, tmp_path: Path) -> None:
    cfg = tmp_path / "count.cfg"
    cfg.write_text(COUNT_CFG)
    module = tmp_path / "count.py"
    subprocess.run(
        [PYTHON, "-m", "kcc", "build", str(cfg), "-o", str(module)], check=True, timeout=60
    )
    port = free_port()
    proxy = start([PYTHON, str(module), "--listen", f"udp:127.0.0.1:{port}", "--children", "2"])
    clients = [udp_client() for _ in range(8)]
    counts = []
    for i in range(1000):
        client = clients[i % len(clients)]
        reply = ask(port, options(client).replace(b"CSeq: 1", b"CSeq: %d" % (i + 1)), client)
        counts.append(int(reply.split(b"\r\n", 1)[0].split(b"n=")[1]))
    for client in clients:
        client.close()
    assert sorted(counts) == list(range(1, 1001))
    assert proxy.stop() == 0


# -- logs -------------------------------------------------------------------------------


def test_kamailio_log_lines() -> None:
    assert [logs.parse_level(x) for x in ("3", "2", "1", 0, "-1", "-5", "9")] == [
        logging.DEBUG,
        logging.INFO,
        logs.NOTICE,
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
        logging.DEBUG,
    ]
    assert [logs.parse_level(x) for x in ("L_DBG", "info", "warn", "bogus")] == [
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        None,
    ]
    fmt = logs.KamailioFormatter()
    logs.set_rank(2)
    try:
        script = logging.LogRecord(
            "kcc_runtime.xlog", logging.ERROR, "x.py", 1, "hello %s\n", ("INVITE",), None
        )
        assert fmt.format(script) == f" 2({os.getpid()}) ERROR: <script>: hello INVITE\n"
        core = logging.LogRecord("kcc_runtime.serve", logs.NOTICE, "/a/serve.py", 7, "up", (), None)
        core.funcName = "run"
        assert fmt.format(core) == f" 2({os.getpid()}) NOTICE: <core> [serve.py:7]: run(): up\n"
        module = logging.LogRecord("kcc_runtime.sl", logging.WARNING, "sl.py", 3, "m", (), None)
        module.funcName = "f"
        assert fmt.format(module) == f" 2({os.getpid()}) WARNING: sl [sl.py:3]: f(): m\n"
    finally:
        logs.set_rank(0)
