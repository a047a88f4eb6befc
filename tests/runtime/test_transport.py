"""The transport on real loopback sockets, driven by a stand-in engine.

The transport runs in a thread with its own loop (no signal handlers); the test talks
to it with plain Python sockets. Every wait is bounded by a socket timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from kcc_runtime.transport import (
    BindError,
    Transport,
    TransportOptions,
    bind_reply_socket,
    check_free,
)

TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Sock:
    proto: str
    ip: str
    port: int
    advertise: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Out:
    data: bytes
    proto: str
    dst: tuple[str, int]
    src: Sock


@dataclass
class Echo:
    """Replies ``echo:<data>`` to the sender on the socket it came in on; ``to:`` lines
    ask for a send elsewhere; ``relay:`` lines for a send from ``relay_from`` (a
    stateful relay from the worker's reply socket); ``boom`` raises (an engine bug)."""

    received: list[tuple[bytes, tuple[str, int], Sock]] = field(default_factory=list)
    relay_from: Sock | None = None
    timer_calls: int = 0
    started: int = 0
    start_out: list[Out] = field(default_factory=list)
    timer_event: threading.Event = field(default_factory=threading.Event)

    def receive(self, data: bytes, src: tuple[str, int], local: Sock) -> list[Out]:
        self.received.append((data, src, local))
        if data == b"boom":
            raise RuntimeError("engine bug")
        if data.startswith(b"to:"):  # to:proto:ip:port:payload
            _, proto, ip, port, payload = data.split(b":", 4)
            return [Out(payload, proto.decode(), (ip.decode(), int(port)), local)]
        if data.startswith(b"relay:") and self.relay_from is not None:  # relay:port:payload
            _, port, payload = data.split(b":", 2)
            dst = (self.relay_from.ip, int(port))
            return [Out(payload, "udp", dst, self.relay_from)]
        return [Out(b"echo:" + data, local.proto, src, local)]

    def on_timer(self, now: float) -> list[Out]:
        self.timer_calls += 1
        self.timer_event.set()
        return []

    def start(self) -> list[Out]:
        self.started += 1
        return list(self.start_out)


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM, ip: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.bind((ip, 0))
        port: int = probe.getsockname()[1]
        return port


class Running:
    def __init__(
        self,
        engine: Echo,
        sockets: Sequence[Sock],
        options: TransportOptions,
        reply_sockets: Sequence[tuple[Sock, socket.socket]] = (),
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self.transport: Transport[Sock] = Transport(
            engine, sockets, options, reply_sockets=reply_sockets
        )
        self.housekeeping = housekeeping
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.transport.run(
                on_ready=self.ready.set, housekeeping=self.housekeeping, stop_signals=()
            )
        except BaseException as exc:  # reported by the fixture
            self.error = exc
            self.ready.set()

    def __enter__(self) -> Transport[Sock]:
        self.thread.start()
        assert self.ready.wait(TIMEOUT)
        if self.error is not None:
            raise self.error
        return self.transport

    def __exit__(self, *exc: object) -> None:
        self.transport.stop()
        assert self.stopped()

    def drain(self, timeout: float) -> None:
        """Ask the running transport to drain (what SIGTERM does), from this thread."""
        loop = self.transport.loop
        assert loop is not None
        loop.call_soon_threadsafe(self.transport.drain, timeout)

    def stopped(self) -> bool:
        """Whether the transport's loop has ended, waiting up to ``TIMEOUT`` for it."""
        self.thread.join(TIMEOUT)
        return not self.thread.is_alive()


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds or ``TIMEOUT`` passes (the caller asserts)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def udp_client(ip: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    client = socket.socket(family, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    client.bind((ip, 0))
    client.settimeout(TIMEOUT)
    return client


@pytest.fixture
def engine() -> Iterator[Echo]:
    yield Echo()


def test_udp_request_reply_on_the_listening_socket(engine: Echo) -> None:
    local = Sock("udp", "127.0.0.1", free_port())
    with Running(engine, [local], TransportOptions()) as transport, udp_client() as client:
        client.sendto(b"hello", ("127.0.0.1", local.port))
        data, addr = client.recvfrom(100)
        assert (data, addr) == (b"echo:hello", ("127.0.0.1", local.port))
        assert engine.received == [(b"hello", client.getsockname(), local)]
        assert engine.started == 1
        assert transport.stats["send_errors"] == 0


def test_udp_over_ipv6(engine: Echo) -> None:
    local = Sock("udp", "::1", free_port(ip="::1"))
    with Running(engine, [local], TransportOptions()), udp_client("::1") as client:
        client.sendto(b"six", ("::1", local.port))
        data, addr = client.recvfrom(100)
        assert data == b"echo:six"
        assert addr[:2] == ("::1", local.port)
        assert engine.received[0][1] == ("::1", client.getsockname()[1])


def test_udp_burst_drained_in_batches(engine: Echo) -> None:
    local = Sock("udp", "127.0.0.1", free_port())
    with Running(engine, [local], TransportOptions(batch=8)), udp_client() as client:
        for i in range(300):
            client.sendto(b"%d" % i, ("127.0.0.1", local.port))
        got = {client.recv(100) for _ in range(300)}
        assert got == {b"echo:%d" % i for i in range(300)}


def test_engine_errors_are_counted_and_serving_goes_on(engine: Echo) -> None:
    local = Sock("udp", "127.0.0.1", free_port())
    with Running(engine, [local], TransportOptions()) as transport, udp_client() as client:
        client.sendto(b"boom", ("127.0.0.1", local.port))
        client.sendto(b"after", ("127.0.0.1", local.port))
        assert client.recv(100) == b"echo:after"
        assert transport.stats["engine_errors"] == 1


def test_send_from_the_socket_the_engine_chose(engine: Echo) -> None:
    first = Sock("udp", "127.0.0.1", free_port())
    second = Sock("udp", "127.0.0.1", free_port())
    with Running(engine, [first, second], TransportOptions()), udp_client() as client:
        sink = udp_client()
        target = sink.getsockname()
        client.sendto(b"to:udp:127.0.0.1:%d:payload" % target[1], ("127.0.0.1", second.port))
        data, addr = sink.recvfrom(100)
        assert (data, addr) == (b"payload", ("127.0.0.1", second.port))
        sink.close()


def test_start_output_is_sent_and_timer_runs(engine: Echo) -> None:
    local = Sock("udp", "127.0.0.1", free_port())
    with udp_client() as sink:
        engine.start_out.append(Out(b"hello at start", "udp", sink.getsockname(), local))
        with Running(engine, [local], TransportOptions(timer_interval=0.01)):
            assert sink.recv(100) == b"hello at start"
            assert engine.timer_event.wait(TIMEOUT)
            assert engine.timer_calls >= 1


SIP = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK1\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 4\r\n\r\nbody"
)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = conn.recv(size - len(out))
        if not chunk:
            break
        out += chunk
    return out


def test_housekeeping_runs_on_every_tick_and_its_errors_are_contained(engine: Echo) -> None:
    calls: list[float] = []
    ticked = threading.Event()

    def housekeeping() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            ticked.set()
        raise RuntimeError("a bug in housekeeping must not stop the loop")

    local = Sock("udp", "127.0.0.1", free_port())
    options = TransportOptions(timer_interval=0.02)
    with udp_client() as client, Running(engine, [local], options, housekeeping=housekeeping):
        assert ticked.wait(TIMEOUT)
        client.sendto(b"still", (local.ip, local.port))
        assert client.recv(100) == b"echo:still"


def test_tcp_framing_and_reply_on_the_same_connection(engine: Echo) -> None:
    local = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    with Running(engine, [local], TransportOptions()):
        conn = socket.create_connection(("127.0.0.1", local.port), timeout=TIMEOUT)
        # two messages, the second split across writes, after a CRLF keep-alive
        conn.sendall(b"\r\n\r\n" + SIP + SIP[:10])
        conn.sendall(SIP[10:])
        expected = b"echo:" + SIP
        assert _recv_exact(conn, 2 * len(expected)) == expected * 2
        assert [r[0] for r in engine.received] == [SIP, SIP]
        assert engine.received[0][1] == conn.getsockname()
        conn.close()


def test_tcp_framing_error_closes_the_connection(engine: Echo) -> None:
    local = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    with Running(engine, [local], TransportOptions()) as transport:
        conn = socket.create_connection(("127.0.0.1", local.port), timeout=TIMEOUT)
        conn.sendall(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")  # no Content-Length
        assert conn.recv(100) == b""
        assert transport.stats["tcp_framing_errors"] == 1
        assert engine.received == []
        conn.close()


def test_tcp_connections_beyond_the_maximum_are_closed(engine: Echo) -> None:
    # a peer opening connection after connection must not exhaust the worker
    local = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    expected = b"echo:" + SIP
    with Running(engine, [local], TransportOptions(tcp_max_connections=2)) as transport:
        kept = []
        for _ in range(2):
            conn = socket.create_connection(("127.0.0.1", local.port), timeout=TIMEOUT)
            conn.sendall(SIP)
            assert _recv_exact(conn, len(expected)) == expected
            kept.append(conn)
        third = socket.create_connection(("127.0.0.1", local.port), timeout=TIMEOUT)
        with contextlib.suppress(ConnectionResetError):
            third.sendall(SIP)
            assert third.recv(100) == b""
        third.close()
        assert transport.stats["tcp_refused"] == 1
        assert len(engine.received) == 2
        # a slot freed is a slot for the next connection
        kept.pop().close()
        wait_until(lambda: len(transport._conns) <= 1)
        again = socket.create_connection(("127.0.0.1", local.port), timeout=TIMEOUT)
        again.sendall(SIP)
        assert _recv_exact(again, len(expected)) == expected
        for conn in (*kept, again):
            conn.close()


def test_tcp_send_to_a_new_destination_connects_and_queues(engine: Echo) -> None:
    udp = Sock("udp", "127.0.0.1", free_port())
    tcp = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TIMEOUT)
    target = server.getsockname()[1]
    with Running(engine, [udp, tcp], TransportOptions()), udp_client() as client:
        client.sendto(b"to:tcp:127.0.0.1:%d:one|" % target, ("127.0.0.1", udp.port))
        client.sendto(b"to:tcp:127.0.0.1:%d:two|" % target, ("127.0.0.1", udp.port))
        peer, addr = server.accept()
        peer.settimeout(TIMEOUT)
        assert addr[0] == "127.0.0.1"
        assert _recv_exact(peer, 8) == b"one|two|"
        # what the peer sends back on that connection reaches the engine
        peer.sendall(SIP)
        assert _recv_exact(peer, len(SIP) + 5) == b"echo:" + SIP
        assert engine.received[-1][0] == SIP
        assert engine.received[-1][1] == ("127.0.0.1", target)
        peer.close()
    server.close()


def test_tcp_connections_opened_count_against_the_maximum(engine: Echo) -> None:
    # a cfg relaying to the R-URI lets callers pick destination after destination
    udp = Sock("udp", "127.0.0.1", free_port())
    tcp = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    first, second = (socket.create_server(("127.0.0.1", 0)) for _ in range(2))
    options = TransportOptions(tcp_max_connections=1)
    with Running(engine, [udp, tcp], options) as transport, udp_client() as client:
        for server in (first, second):
            server.settimeout(TIMEOUT)
            port = server.getsockname()[1]
            client.sendto(b"to:tcp:127.0.0.1:%d:hello|" % port, ("127.0.0.1", udp.port))
        peer, _ = first.accept()
        peer.settimeout(TIMEOUT)
        assert _recv_exact(peer, 6) == b"hello|"
        wait_until(lambda: transport.stats["tcp_refused"] != 0)
        assert transport.stats["tcp_refused"] == 1
        second.settimeout(0.5)
        with pytest.raises(TimeoutError):
            second.accept()  # never connected to
        peer.close()
    first.close()
    second.close()


def test_tcp_connect_failure_is_counted(engine: Echo) -> None:
    udp = Sock("udp", "127.0.0.1", free_port())
    tcp = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    closed = free_port(socket.SOCK_STREAM)
    with Running(engine, [udp, tcp], TransportOptions()) as transport, udp_client() as client:
        client.sendto(b"to:tcp:127.0.0.1:%d:lost" % closed, ("127.0.0.1", udp.port))
        client.sendto(b"ping", ("127.0.0.1", udp.port))
        assert client.recv(100) == b"echo:ping"
        # the connect fails asynchronously
        wait_until(lambda: transport.stats["tcp_connect_failed"] != 0)
        assert transport.stats["tcp_connect_failed"] == 1


def test_bind_errors_name_the_socket(engine: Echo) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(BindError, match=rf"cannot bind udp:127.0.0.1:{port}"):
            check_free(Sock("udp", "127.0.0.1", port))
    with pytest.raises(BindError, match="protocol 'sctp' is not supported"):
        Transport(engine, [Sock("sctp", "127.0.0.1", 5060)]).bind()
    # an address of no local interface (TEST-NET-1): the error names it, and the
    # socket bound before it is closed again
    first = Sock("udp", "127.0.0.1", free_port())
    transport = Transport(engine, [first, Sock("udp", "192.0.2.1", 5060)])
    with pytest.raises(BindError, match=r"cannot bind udp:192.0.2.1:5060"):
        transport.bind()
    check_free(first)


# -- reply sockets (a worker's private port for the responses to its relays) ----------


def reply_socket(ip: str) -> tuple[Sock, socket.socket]:
    raw = bind_reply_socket(ip)
    return Sock("udp", ip, raw.getsockname()[1]), raw


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_reply_socket_carries_a_relay_and_its_responses(engine: Echo, ip: str) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    listen = Sock("udp", ip, free_port(ip=ip))
    reply, raw = reply_socket(ip)
    assert raw.family == family
    assert raw.type == socket.SOCK_DGRAM
    assert reply.port not in (0, listen.port)
    assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    engine.relay_from = reply
    with (
        Running(engine, [listen], TransportOptions(), [(reply, raw)]) as transport,
        udp_client(ip) as caller,
        udp_client(ip) as backend,
    ):
        assert transport.reply_sockets == (reply,)
        # the caller's request arrives on the listening socket; the engine relays it
        # from the reply socket, as a client transaction is sent
        caller.sendto(b"relay:%d:INVITE" % backend.getsockname()[1], (ip, listen.port))
        data, addr = backend.recvfrom(100)
        assert (data, addr[:2]) == (b"INVITE", (ip, reply.port))
        # the backend answers the address it saw (the one our Via names): the response
        # reaches the engine with local= the reply socket, and the echo leaves from it
        backend.sendto(b"SIP/2.0 200 OK", addr)
        data, addr = backend.recvfrom(100)
        assert (data, addr[:2]) == (b"echo:SIP/2.0 200 OK", (ip, reply.port))
        assert engine.received[-1] == (
            b"SIP/2.0 200 OK",
            (ip, backend.getsockname()[1]),
            reply,
        )
        # a request sent to the reply socket is processed like any other
        caller.sendto(SIP, (ip, reply.port))
        data, addr = caller.recvfrom(1000)
        assert (data, addr[:2]) == (b"echo:" + SIP, (ip, reply.port))
        assert engine.received[-1] == (SIP, (ip, caller.getsockname()[1]), reply)
        assert transport.stats["send_errors"] == 0
    assert raw.fileno() == -1  # the transport closed the socket it owned


def test_fallback_sends_leave_from_a_listening_socket(engine: Echo) -> None:
    """A send whose socket does not fit the destination's family goes out from a
    listening socket of the right family, never from a reply socket."""
    four = Sock("udp", "127.0.0.1", free_port())
    six = Sock("udp", "::1", free_port(ip="::1"))
    replies = [reply_socket("::1"), reply_socket("127.0.0.1")]
    with (
        Running(engine, [four, six], TransportOptions(), replies),
        udp_client("::1") as client,
        udp_client() as sink,
    ):
        port = sink.getsockname()[1]
        client.sendto(b"to:udp:127.0.0.1:%d:crossed" % port, ("::1", six.port))
        data, addr = sink.recvfrom(100)
        assert (data, addr) == (b"crossed", ("127.0.0.1", four.port))


def test_a_reply_socket_that_does_not_match_is_refused(engine: Echo) -> None:
    listen = Sock("udp", "127.0.0.1", free_port())
    good, good_raw = reply_socket("127.0.0.1")
    _, raw = reply_socket("127.0.0.1")
    wrong = Sock("udp", "127.0.0.1", good.port)  # names another socket's port
    transport = Transport(engine, [listen], reply_sockets=[(good, good_raw), (wrong, raw)])
    with pytest.raises(BindError, match=rf"reply socket udp:127.0.0.1:{good.port} does not match"):
        transport.bind()
    assert (good_raw.fileno(), raw.fileno()) == (-1, -1)
    check_free(listen)  # the listening socket was closed again
    # a bind error on a listening socket closes the reply sockets not yet adopted
    _, raw = reply_socket("127.0.0.1")
    transport = Transport(
        engine,
        [Sock("udp", "192.0.2.1", 5060)],
        reply_sockets=[(Sock("udp", "127.0.0.1", raw.getsockname()[1]), raw)],
    )
    with pytest.raises(BindError, match=r"cannot bind udp:192\.0\.2\.1:5060"):
        transport.bind()
    assert raw.fileno() == -1


@dataclass
class Timed(Echo):
    """An engine with a transaction timer due ``delay`` s after each message, as tm's
    retransmission timers are (0.5 s for an INVITE over UDP)."""

    delay: float = 0.05
    due: float | None = None

    def receive(self, data: bytes, src: tuple[str, int], local: Sock) -> list[Out]:
        self.due = time.time() + self.delay
        return super().receive(data, src, local)

    def next_timer(self) -> float | None:
        return self.due

    def on_timer(self, now: float) -> list[Out]:
        if self.due is not None and now >= self.due:
            self.due = None
        return super().on_timer(now)


def test_transaction_timers_fire_when_due_not_at_the_housekeeping_tick() -> None:
    # the housekeeping tick is an hour away: only next_timer() can wake the engine
    engine = Timed()
    local = Sock("udp", "127.0.0.1", free_port())
    with udp_client() as client, Running(engine, [local], TransportOptions(timer_interval=3600)):
        client.sendto(b"INVITE", (local.ip, local.port))
        assert client.recv(100) == b"echo:INVITE"
        assert engine.timer_event.wait(TIMEOUT)
        assert engine.timer_calls == 1
        assert engine.due is None


@dataclass
class Draining(Echo):
    """An engine with transactions: ``hold`` opens one, ``done`` closes one; while
    draining, anything else is answered ``refused:`` (the engine's 503), and
    ``abort_pending`` answers ``aborted`` to whoever holds one."""

    draining: bool = False
    holders: list[tuple[tuple[str, int], Sock]] = field(default_factory=list)
    aborted: int = 0
    drain_begun: threading.Event = field(default_factory=threading.Event)

    def receive(self, data: bytes, src: tuple[str, int], local: Sock) -> list[Out]:
        if data == b"hold":
            self.holders.append((src, local))
            return [Out(b"held", local.proto, src, local)]
        if data == b"done":
            self.holders.pop()
            return [Out(b"finished", local.proto, src, local)]
        if self.draining:
            return [Out(b"refused:" + data, local.proto, src, local)]
        return super().receive(data, src, local)

    def begin_drain(self) -> None:
        self.draining = True
        self.drain_begun.set()

    def pending(self) -> int:
        return len(self.holders)

    def abort_pending(self) -> list[Out]:
        self.aborted += 1
        out = [Out(b"aborted", local.proto, src, local) for src, local in self.holders]
        self.holders.clear()
        return out


def test_drain_serves_what_is_under_way_then_stops() -> None:
    engine = Draining()
    udp = Sock("udp", "127.0.0.1", free_port())
    tcp = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    running = Running(engine, [udp, tcp], TransportOptions(drain_timeout=30.0))
    with udp_client() as client, running:
        client.sendto(b"hold", (udp.ip, udp.port))
        assert client.recv(100) == b"held"
        running.drain(30.0)
        assert engine.drain_begun.wait(TIMEOUT)
        client.sendto(b"INVITE", (udp.ip, udp.port))
        assert client.recv(100) == b"refused:INVITE"  # served, and refused by the engine
        # no new TCP connection is accepted once draining
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((tcp.ip, tcp.port), timeout=TIMEOUT),
        ):
            pass
        assert running.thread.is_alive()  # one transaction pending: still serving
        client.sendto(b"done", (udp.ip, udp.port))
        assert client.recv(100) == b"finished"
        assert running.stopped()  # nothing pending: stopped by itself
    assert engine.aborted == 0


def test_drain_deadline_answers_what_is_left() -> None:
    engine = Draining()
    udp = Sock("udp", "127.0.0.1", free_port())
    running = Running(engine, [udp], TransportOptions(drain_timeout=0.3))
    with udp_client() as client, running:
        client.sendto(b"hold", (udp.ip, udp.port))
        assert client.recv(100) == b"held"
        begun = time.monotonic()
        running.drain(0.3)
        assert client.recv(100) == b"aborted"
        assert time.monotonic() - begun >= 0.3
        assert running.stopped()
    assert engine.aborted == 1


def test_a_second_drain_request_stops_at_once() -> None:
    engine = Draining()
    udp = Sock("udp", "127.0.0.1", free_port())
    running = Running(engine, [udp], TransportOptions(drain_timeout=30.0))
    with udp_client() as client, running:
        client.sendto(b"hold", (udp.ip, udp.port))
        assert client.recv(100) == b"held"
        running.drain(30.0)
        assert engine.drain_begun.wait(TIMEOUT)
        client.sendto(b"INVITE", (udp.ip, udp.port))
        assert client.recv(100) == b"refused:INVITE"
        running.drain(30.0)
        assert running.stopped()
    assert engine.aborted == 0  # stopped without waiting, nothing answered


def test_an_engine_that_cannot_drain_stops_at_once(engine: Echo) -> None:
    udp = Sock("udp", "127.0.0.1", free_port())
    running = Running(engine, [udp], TransportOptions(drain_timeout=30.0))
    with running:
        running.drain(30.0)
        assert running.stopped()


class BrokenPending(Draining):
    def pending(self) -> int:
        raise RuntimeError("engine bug")


def test_a_drain_whose_engine_fails_to_count_stops() -> None:
    engine = BrokenPending()
    udp = Sock("udp", "127.0.0.1", free_port())
    running = Running(engine, [udp], TransportOptions(drain_timeout=30.0))
    with running as transport:
        running.drain(30.0)
        assert running.stopped()
        assert transport.stats["engine_errors"] == 1
