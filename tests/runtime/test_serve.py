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
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kcc_runtime import logs
from kcc_runtime.router import Config
from kcc_runtime.serve import (
    ListenSpec,
    Options,
    ServeError,
    _bind_reply_sockets,
    parse_args,
    parse_listen,
)
from kcc_runtime.transport import BindError, TransportOptions

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
        def __init__(self, router, sockets, allow_dst, shared, reply_sockets):
            self.shared = shared
            self.reply = reply_sockets
        def receive(self, data, src, local):
            if data.startswith(b"exit "):
                os._exit(int(data[5:]))
            if data == b"hold":
                self.shared.lock("held")
            if data == b"whoami":  # the worker's reply sockets
                names = [b"%s|%d|%s" % (r.ip.encode(), r.port, repr(r.advertise).encode())
                         for r in self.reply]
                return [Out(b"%d " % os.getpid() + b" ".join(names), "udp", src, local)]
            if data.startswith(b"relay "):  # a stateful relay: from the reply socket
                out = self.reply[0]
                dst = (out.ip, int(data[6:]))
                return [Out(b"%d relayed" % os.getpid(), "udp", dst, out)]
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


def free_port(ip: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.bind((ip, 0))
        port: int = udp.getsockname()[1]
    with socket.socket(family, socket.SOCK_STREAM) as tcp:
        tcp.bind((ip, port))  # free for TCP too, as a `listen=` without proto
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


def udp_client(ip: str = "127.0.0.1") -> socket.socket:
    client = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((ip, 0))
    client.settimeout(TIMEOUT)
    return client


def ask(
    port: int, data: bytes, client: socket.socket | None = None, ip: str = "127.0.0.1"
) -> bytes:
    own = client is None
    sock = client or udp_client(ip)
    try:
        sock.sendto(data, (ip, port))
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


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_responses_reach_the_worker_that_relayed(start: Starter, tmp_path: Path, ip: str) -> None:
    """Issue 6 item 5: each worker relays from its own reply socket; a response sent to
    the address in a worker's Via reaches that worker, whatever the flow hash of the
    shared port would say; a caller's retransmissions stay on one worker."""
    port = free_port(ip)
    host = f"[{ip}]" if ":" in ip else ip
    proxy = start(
        [PYTHON, stand_in(tmp_path), "--listen", f"udp:{host}:{port}", "--log-level", "2"]
    )
    workers = set(proxy.workers())
    callers: dict[int, socket.socket] = {}  # worker pid -> a caller its flow hash picks
    replies: dict[int, int] = {}  # worker pid -> its reply port
    try:
        for _ in range(64):
            if len(callers) == 2:
                break
            caller = udp_client(ip)
            pid_text, name = ask(port, b"whoami", caller, ip).split(b" ")
            reply_ip, reply_port_text, advertise = name.split(b"|")
            worker = int(pid_text)
            assert (reply_ip.decode(), advertise) == (ip, b"None")
            replies[worker] = int(reply_port_text)
            if worker in callers:
                caller.close()
            else:
                callers[worker] = caller
        assert set(callers) == workers
        assert len(set(replies.values())) == 2
        assert port not in replies.values()
        for worker, reply_port in replies.items():
            proxy.wait_for(f"({worker}) INFO: <core> [serve.py:")
            assert f"({worker}) INFO: <core>" in proxy.text()
            assert f"reply socket udp:{host}:{reply_port}" in proxy.text()
        with udp_client(ip) as backend:  # one backend socket for both workers' relays
            for worker, caller in callers.items():
                for i in range(10):  # a caller's retransmissions: always the same worker
                    assert ask(port, b"again %d" % i, caller, ip) == b"%d again %d" % (worker, i)
                caller.sendto(b"relay %d" % backend.getsockname()[1], (ip, port))
                data, via = backend.recvfrom(100)
                assert (data, via[:2]) == (b"%d relayed" % worker, (ip, replies[worker]))
                for i in range(10):  # responses to the Via address reach that worker
                    backend.sendto(b"SIP/2.0 18%d Ringing" % i, via)
                    data, addr = backend.recvfrom(100)
                    assert (data, addr[:2]) == (b"%d SIP/2.0 18%d Ringing" % (worker, i), via[:2])
            # a request sent to a reply socket is processed like any other
            worker, reply_port = next(iter(replies.items()))
            assert ask(reply_port, b"OPTIONS", backend, ip) == b"%d OPTIONS" % worker
    finally:
        for caller in callers.values():
            caller.close()
    assert proxy.stop() == 0


def test_one_worker_has_no_reply_socket(start: Starter, tmp_path: Path) -> None:
    port = free_port()
    proxy = start(
        [PYTHON, stand_in(tmp_path), "--listen", f"udp:127.0.0.1:{port}", "--children", "1"]
    )
    (pid,) = proxy.workers()
    assert ask(port, b"whoami") == b"%d " % pid
    assert proxy.stop() == 0


def test_reply_sockets_per_udp_ip() -> None:
    opts = Options(
        listens=(
            ListenSpec("udp", "127.0.0.1", 5060, ("192.0.2.7", 5080)),
            ListenSpec("tcp", "127.0.0.1", 5060),
            ListenSpec("udp", "127.0.0.1", 5062),
            ListenSpec("tcp", "127.0.0.2", 5060),
            ListenSpec("udp", "::1", 5060),
        ),
        children=2,
        log_level=logging.WARNING,
        allow_dst=None,
    )
    bound = _bind_reply_sockets(opts, TransportOptions(), lambda spec: spec)
    try:
        assert [raw.family for _, raw in bound] == [socket.AF_INET, socket.AF_INET6]
        ports = [raw.getsockname()[1] for _, raw in bound]
        assert [spec for spec, _ in bound] == [
            ListenSpec("udp", "127.0.0.1", ports[0], ("192.0.2.7", ports[0])),
            ListenSpec("udp", "::1", ports[1]),
        ]
    finally:
        for _, raw in bound:
            raw.close()
    assert _bind_reply_sockets(replace(opts, children=1), TransportOptions(), lambda s: s) == []
    bad = replace(
        opts, listens=(ListenSpec("udp", "127.0.0.1", 5060), ListenSpec("udp", "192.0.2.1", 5060))
    )
    with pytest.raises(BindError, match=r"cannot bind udp:192\.0\.2\.1:0"):
        _bind_reply_sockets(bad, TransportOptions(), lambda s: s)


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
    assert f"worker pid {first} died holding 1 lock(s)" in text
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


def test_generated_module_answers_a_request_on_a_reply_socket(start: Starter) -> None:
    """A request that reaches a worker's reply socket (nobody should send one there)
    is routed like any other, and answered from that socket."""
    port = free_port()
    proxy = start(
        [
            *(PYTHON, str(REPO / "golden" / "stateless_rr_var.py")),
            *("--listen", f"udp:127.0.0.1:{port}", "--children", "2", "--log-level", "2"),
            *("--allow-dst", "127.0.0.0/8"),
        ]
    )
    reply_ports = [int(p) for p in re.findall(r"reply socket udp:127\.0\.0\.1:(\d+)", proxy.text())]
    assert len(set(reply_ports)) == 2
    assert port not in reply_ports
    for reply_port in reply_ports:
        with udp_client() as client:
            client.sendto(options(client), ("127.0.0.1", reply_port))
            data, addr = client.recvfrom(65535)
        assert data.startswith(b"SIP/2.0 404 Not Found\r\n")
        assert addr == ("127.0.0.1", reply_port)
    assert proxy.stop() == 0


STATEFUL_CFG = """\
listen=udp:127.0.0.1:{port}
children=2
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {{
\tif (is_method("CANCEL")) {{
\t\tif (t_check_trans())
\t\t\tt_relay();
\t\texit;
\t}}
\tt_check_trans();
\trewritehostport("127.0.0.1:{backend}");
\tif (!t_relay()) {{
\t\tsl_reply_error();
\t}}
}}
"""


def _header(message: bytes, name: bytes) -> bytes:
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    raise AssertionError(f"no {name!r} in {message!r}")


def test_stateful_relay_answers_reach_the_transaction(start: Starter, tmp_path: Path) -> None:
    """The real engine with children=2: each worker relays an INVITE from its reply
    socket, with our Via naming it; the backend's 486, sent to that Via, reaches the
    worker holding the client transaction: it sends the hop-by-hop ACK (only the
    transaction can: a stateless relay of an unmatched reply sends none) and relays
    the 486 to the caller, whose ACK the server transaction absorbs."""
    backend = udp_client()
    port = free_port()
    cfg = tmp_path / "stateful.cfg"
    cfg.write_text(STATEFUL_CFG.format(port=port, backend=backend.getsockname()[1]))
    module = tmp_path / "stateful.py"
    subprocess.run(
        [PYTHON, "-m", "kcc", "build", str(cfg), "-o", str(module)], check=True, timeout=60
    )
    proxy = start([PYTHON, str(module), "--allow-dst", "127.0.0.0/8", "--log-level", "2"])
    reply_ports = {int(p) for p in re.findall(r"reply socket udp:127\.0\.0\.1:(\d+)", proxy.text())}
    assert len(reply_ports) == 2
    used: list[int] = []
    try:
        for n in range(64):
            if set(used) == reply_ports and len(used) >= 4:
                break
            with udp_client() as caller:
                host, cport = caller.getsockname()
                invite = (
                    f"INVITE sip:b@127.0.0.1 SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {host}:{cport};branch=z9hG4bKc{n}\r\n"
                    f"From: <sip:a@127.0.0.1>;tag=a{n}\r\nTo: <sip:b@127.0.0.1>\r\n"
                    f"Call-ID: call{n}-{cport}\r\nCSeq: 1 INVITE\r\n"
                    f"Contact: <sip:a@{host}:{cport}>\r\nMax-Forwards: 70\r\n"
                    f"Content-Length: 0\r\n\r\n"
                ).encode()
                caller.sendto(invite, ("127.0.0.1", port))
                assert caller.recv(65535).startswith(b"SIP/2.0 100 ")
                relayed, src = backend.recvfrom(65535)
                assert relayed.startswith(b"INVITE sip:b@127.0.0.1:")
                assert src[1] in reply_ports
                via = _header(relayed, b"via")
                assert via.startswith(b"SIP/2.0/UDP 127.0.0.1:%d;branch=" % src[1])
                used.append(src[1])
                head = relayed.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
                kept = [
                    line
                    for line in head
                    if line.split(b":", 1)[0].strip().lower() in (b"via", b"from", b"call-id")
                ]
                busy = b"\r\n".join(
                    [
                        b"SIP/2.0 486 Busy Here",
                        *kept,
                        b"To: " + _header(relayed, b"to") + b";tag=be",
                        b"CSeq: 1 INVITE",
                        b"Content-Length: 0",
                        b"",
                        b"",
                    ]
                )
                backend.sendto(busy, ("127.0.0.1", src[1]))  # where our Via points
                ack, ack_src = backend.recvfrom(65535)
                assert ack.startswith(b"ACK sip:b@127.0.0.1:")
                assert ack_src == src
                assert _header(ack, b"via") == via
                answer = caller.recv(65535)
                assert answer.startswith(b"SIP/2.0 486 Busy Here\r\n")
                assert _header(answer, b"via") == (
                    f"SIP/2.0/UDP {host}:{cport};branch=z9hG4bKc{n}".encode()
                )
                # the caller's ACK (same flow: the same worker) is absorbed by the
                # server transaction: the next thing the backend sees is an INVITE
                ack = invite.replace(b"INVITE sip:", b"ACK sip:", 1)
                ack = ack.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
                ack = ack.replace(b"To: <sip:b@127.0.0.1>", b"To: " + _header(answer, b"to"))
                caller.sendto(ack, ("127.0.0.1", port))
        assert set(used) == reply_ports
    finally:
        backend.close()
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
        # xlog("L_ALERT", ...) and L_BUG print their own words, as Kamailio's dprint.h
        for level, word in (
            (logs.ALERT, "ALERT"),
            (logs.BUG, "BUG"),
            (logging.CRITICAL, "CRITICAL"),
        ):
            record = logging.LogRecord("kcc_runtime.xlog", level, "x.py", 1, "pike\n", (), None)
            assert fmt.format(record) == f" 2({os.getpid()}) {word}: <script>: pike\n"
    finally:
        logs.set_rank(0)
