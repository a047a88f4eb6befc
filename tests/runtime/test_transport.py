"""The transport on real loopback sockets, driven by a stand-in engine.

The transport runs in a thread with its own loop (no signal handlers); the test talks
to it with plain Python sockets. Every wait is bounded by a socket timeout.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from kcc_runtime.transport import BindError, Transport, TransportOptions, check_free

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
    ask for a send elsewhere; ``boom`` raises (an engine bug)."""

    received: list[tuple[bytes, tuple[str, int], Sock]] = field(default_factory=list)
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
    def __init__(self, engine: Echo, sockets: Sequence[Sock], options: TransportOptions) -> None:
        self.transport: Transport[Sock] = Transport(engine, sockets, options)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.transport.run(on_ready=self.ready.set, stop_signals=())
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
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


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


def test_tcp_connect_failure_is_counted(engine: Echo) -> None:
    udp = Sock("udp", "127.0.0.1", free_port())
    tcp = Sock("tcp", "127.0.0.1", free_port(socket.SOCK_STREAM))
    closed = free_port(socket.SOCK_STREAM)
    with Running(engine, [udp, tcp], TransportOptions()) as transport, udp_client() as client:
        client.sendto(b"to:tcp:127.0.0.1:%d:lost" % closed, ("127.0.0.1", udp.port))
        client.sendto(b"ping", ("127.0.0.1", udp.port))
        assert client.recv(100) == b"echo:ping"
        for _ in range(200):  # the connect fails asynchronously: ask again until seen
            client.sendto(b"ping", ("127.0.0.1", udp.port))
            client.recv(100)
            if transport.stats["tcp_connect_failed"]:
                break
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
