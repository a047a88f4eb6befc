#!/usr/bin/env python3
"""Faults against a running kcc proxy (issue 9, build item 3), the long versions.

Each scenario runs the proxy ``kcc build`` makes of an ``examples/`` balancer (its
fixed ports moved to free loopback ones, tm's final-response timers shortened to
``FR_TIMER_MS`` so a dead backend is noticed quickly) and returns what it measured;
``tests/integration/test_faults.py`` runs the same functions with small counts and
asserts on the results, this script runs them with large ones and prints the figures:

1. ``backend_dies``: a backend answers an INVITE (180, or 180 and 200) and dies. The
   caller must get tm's local 408 (for the INVITE after ``fr_inv_timer``; for the BYE
   it then sends through the proxy, after ``fr_timer`` of retransmissions to the dead
   backend), as Kamailio's tm sends it. ``failover_to_live_backend``: with one backend
   dead, failover_rr's failure_route sends every call the dead one should have taken to
   the live one, so every call of a SIPp run succeeds.
2. ``worker_killed``: one of two workers is SIGKILLed during a SIPp run; the supervisor
   restarts it (a new pid) and a second run after the restart must lose nothing.
3. ``oversize``: a UDP datagram of the largest size IPv4 carries (65,507 bytes) and a
   TCP message above the framer's limit (65,535 bytes): the TCP connection is closed
   and logged, and the proxy still answers on UDP and TCP.
4. ``flood``: a burst of OPTIONS from one socket, as fast as Python sends them, far
   above what one worker drains (the kernel drops the excess: its ``drops`` counter in
   ``/proc/net/udp`` is reported); afterwards the proxy answers again, same workers.
5. SIGTERM: each worker drains (serve.py): new requests get 503, what is under way
   goes on until nothing is pending, at most 80 % of ``--stop-timeout``, then what
   is left gets a local 503 and its branches a CANCEL. ``sigterm_drain`` checks it
   call by call with its own backends (answering 200 after a delay, or never), and
   ``sigterm_under_load`` stops a proxy in the middle of a SIPp run: exit code, time
   to exit, tracebacks in the log, workers left behind, SIGKILLs needed.

6. ``slow_backend``: backends that answer 200 only seconds after the INVITE, so that
   thousands of transactions are open at once (10,000 in the long run, as
   ``bench/run_all.py``'s in-flight bench but through two workers): every caller gets
   its 200, the proxy answers OPTIONS all along, no worker dies; peak PSS reported.

Run inside a network namespace of its own, loopback only::

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python bench/faults.py'
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench

REPO = proxy_bench.REPO
EXAMPLES = REPO / "examples"
#: tm's fr_timer and fr_inv_timer in the cfg copies (ms)
FR_TIMER_MS = 1500
START_TIMEOUT = 30.0
#: the framer's limit (TransportOptions.tcp_max_message)
TCP_MAX_MESSAGE = 65535
#: the largest UDP payload IPv4 carries
UDP_MAX = 65507


def short_timers(text: str, fr_ms: int = FR_TIMER_MS) -> str:
    """The cfg with tm's ``fr_timer`` and ``fr_inv_timer`` set to ``fr_ms`` (added
    after the last ``loadmodule``)."""
    anchor = 'loadmodule "siputils.so"\n'
    assert anchor in text, "the example no longer loads siputils.so"
    timers = f'modparam("tm", "fr_timer", {fr_ms})\nmodparam("tm", "fr_inv_timer", {fr_ms})\n'
    return text.replace(anchor, anchor + timers, 1)


def children_of(pid: int) -> list[int]:
    """The child pids of ``pid`` (the supervisor's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(p) for p in text.split()]


def udp_drops(port: int) -> int:
    """The kernel's drop counter summed over the UDP sockets bound to ``port`` (the
    last column of ``/proc/net/udp``: datagrams refused because a receive buffer was
    full)."""
    total = 0
    suffix = f":{port:04X}"
    for line in Path("/proc/net/udp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 12 and fields[1].endswith(suffix):
            total += int(fields[-1])
    return total


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


# -- processes ---------------------------------------------------------------------------


@dataclass
class Proxy:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> list[int]:
        return children_of(self.pid)


class Lab:
    """A work directory and everything started in it, stopped by PID on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[subprocess.Popen[bytes], int]] = []

    def close(self) -> None:
        for popen, sig in reversed(self.started):
            proxy_bench.stop(popen, sig)
        self.started.clear()

    def build(self, example: str, backends: Sequence[int], fr_ms: int = FR_TIMER_MS) -> Path:
        """``kcc build`` of ``examples/<example>.cfg`` with ``backends`` for its two
        backends and tm's timers at ``fr_ms`` (its listen port is replaced by
        ``--listen``)."""
        text = (EXAMPLES / f"{example}.cfg").read_text(encoding="utf-8")
        cfg = self.workdir / f"{example}-{secrets.token_hex(3)}.cfg"
        cfg.write_text(short_timers(proxy_bench.rewrite_ports(text, 5060, backends), fr_ms))
        module = cfg.with_suffix(".py")
        kcc = Path(sys.executable).with_name("kcc")
        done = subprocess.run(
            [str(kcc), "build", str(cfg), "-o", str(module)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kcc build {example} failed: {done.stderr}")
        return module

    def proxy(
        self,
        module: Path,
        *,
        children: int,
        tcp: bool = False,
        extra: Sequence[str] = (),
    ) -> Proxy:
        """Run ``module`` on a free UDP port (and TCP on the same port with ``tcp``);
        returns once it answers an OPTIONS."""
        (port,) = proxy_bench.free_udp_ports(1)
        argv = [sys.executable, str(module), "--listen", f"udp:127.0.0.1:{port}"]
        if tcp:
            argv += ["--listen", f"tcp:127.0.0.1:{port}"]
        argv += ["--children", str(children), "--allow-dst", proxy_bench.ALLOW_DST, *extra]
        log = self.workdir / f"proxy-{port}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        self.started.append((popen, signal.SIGTERM))
        proxy = Proxy(popen, port, log)
        if not wait_until(
            lambda: proxy_bench.exited(popen.pid) or proxy_bench.options_answered(port, 0.3),
            START_TIMEOUT,
            0.0,
        ) or proxy_bench.exited(popen.pid):
            raise RuntimeError(f"the proxy did not start:\n{proxy.text()[-2000:]}")
        return proxy

    def uas(self, port: int, scenario: str = "uas_rr.xml") -> subprocess.Popen[bytes]:
        """A SIPp UAS on ``port`` (stopped with SIGUSR1, SIPp's quit)."""
        popen = proxy_bench.start_uas(self.workdir, port, scenario)
        self.started.append((popen, signal.SIGUSR1))
        return popen

    def uac_start(
        self, port: int, *, calls: int, rate: int, recv_timeout_ms: int = 4000
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a SIPp UAC (``uac_rr.xml``, a socket per call so the calls spread
        over the workers, no retransmissions) of ``calls`` calls at ``rate``/s;
        returns it and its statistics file."""
        (local,) = proxy_bench.free_udp_ports(1)
        stat = self.workdir / f"uac-{local}.csv"
        argv = sipp_argv("uac_rr.xml", local)
        argv += ["-m", str(calls), "-r", str(rate), "-nr"]
        argv += ["-recv_timeout", str(recv_timeout_ms), "-timeout", "300s"]
        argv += ["-trace_stat", "-stf", str(stat), "-t", "un", "-max_socket", "8192"]
        argv.append(f"127.0.0.1:{port}")
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
        )
        self.started.append((popen, signal.SIGTERM))
        return popen, stat

    def uac(self, port: int, *, calls: int, rate: int) -> Calls:
        """A SIPp UAC run to its end (bounded: ``calls`` at ``rate``, 300 s)."""
        popen, stat = self.uac_start(port, calls=calls, rate=rate)
        return finish_uac(popen, stat, calls)


def sipp_argv(scenario: str, local: int) -> list[str]:
    """SIPp with an integration-test scenario on 127.0.0.1:``local``."""
    return [
        "sipp",
        "-sf",
        str(proxy_bench.SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(local),
        "-buff_size",
        proxy_bench.SIPP_BUFF_SIZE,
        "-nostdin",
    ]


@dataclass(frozen=True)
class Calls:
    """A SIPp UAC run's counts (from its ``-trace_stat`` file)."""

    asked: int
    created: int
    successful: int
    failed: int


def finish_uac(popen: subprocess.Popen[bytes], stat: Path, calls: int) -> Calls:
    try:
        popen.wait(timeout=330)
    except subprocess.TimeoutExpired:
        proxy_bench.stop(popen)
    rows: list[list[str]] = []
    if stat.exists():
        with stat.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
    last = dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}
    return Calls(
        asked=calls,
        created=int(last.get("TotalCallCreated", "0")),
        successful=int(last.get("SuccessfulCall(C)", "0")),
        failed=int(last.get("FailedCall(C)", "0")),
    )


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    with tempfile.TemporaryDirectory(prefix="kcc-faults-") as tmp:
        group = Lab(Path(tmp))
        try:
            yield group
        finally:
            group.close()


# -- raw SIP on our own sockets ----------------------------------------------------------


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def request(
    method: str,
    ruri: str,
    sock: socket.socket,
    *,
    call_id: str,
    cseq: int = 1,
    to_tag: str = "",
    routes: Sequence[str] = (),
    proto: str = "UDP",
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    """A minimal valid request from ``sock``'s address (RFC 3261 §8.1.1)."""
    port = port_of(sock)
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{proto} 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        *(f"Route: {route}" for route in routes),
        f"From: <sip:caller@127.0.0.1:{port}>;tag=c{port}",
        f"To: <{ruri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:caller@127.0.0.1:{port}>",
        "Max-Forwards: 70",
    ]
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def headers(message: bytes, name: str) -> list[str]:
    """The values of header ``name`` (case-insensitive; no compact forms: the proxy
    and this module write full names)."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    key = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")[1:]
        if line.lower().startswith(key)
    ]


def status_of(message: bytes) -> int | None:
    match = re.match(rb"SIP/2\.0 (\d{3}) ", message)
    return int(match.group(1)) if match else None


def reply(req: bytes, status: int, reason: str, *, to_tag: str, contact: str) -> bytes:
    """A UAS reply to ``req``: its Vias, Record-Routes, From, Call-ID and CSeq copied,
    its To with ``to_tag`` (RFC 3261 §8.2.6, §12.1.1)."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in headers(req, "Via")]
    lines += [f"Record-Route: {r}" for r in headers(req, "Record-Route")]
    lines += [f"From: {headers(req, 'From')[0]}", f"To: {headers(req, 'To')[0]};tag={to_tag}"]
    lines += [f"Call-ID: {headers(req, 'Call-ID')[0]}", f"CSeq: {headers(req, 'CSeq')[0]}"]
    lines += [f"Contact: <{contact}>", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def receive(
    sock: socket.socket, timeout: float, want: Callable[[bytes], bool]
) -> tuple[bytes | None, float]:
    """The first datagram on ``sock`` that ``want`` accepts within ``timeout``, and
    when it came (``time.monotonic``)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            data = sock.recv(65535)
            if want(data):
                return data, time.monotonic()
    return None, time.monotonic()


def options_answered(port: int, timeout: float, proto: str = "udp") -> bool:
    """Whether an OPTIONS to the proxy gets a SIP reply within ``timeout`` (over a
    new TCP connection with ``proto`` "tcp")."""
    if proto == "udp":
        return proxy_bench.options_answered(port, timeout)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        msg = request(
            "OPTIONS", f"sip:ping@127.0.0.1:{port}", conn, call_id=secrets.token_hex(8), proto="TCP"
        )
        conn.sendall(msg)
        try:
            return conn.recv(65535).startswith(b"SIP/2.0 ")
        except TimeoutError:
            return False


# -- 1. a backend that dies mid-call -----------------------------------------------------


@dataclass(frozen=True)
class Death:
    """What the caller saw when its backend died after ``stage`` (180 or 200)."""

    stage: int
    #: provisional/final statuses received for the INVITE, in order
    invite_statuses: tuple[int, ...]
    #: the final status of the BYE sent after the backend died (stage 200), else None
    bye_status: int | None
    #: seconds from the backend's death to the caller's final answer (None: none came)
    answered_after: float | None
    #: whether the proxy answered an OPTIONS afterwards
    serving: bool


def backend_dies(lab: Lab, stage: int, timeout: float = 15.0) -> Death:
    """One call through stateful_rr whose backend answers 180 (and 200 if ``stage``
    is 200) and then closes its socket. With stage 180 the caller waits for the
    INVITE's final answer; with 200 it ACKs and sends a BYE through the proxy (its
    Route set from the Record-Route) and waits for the BYE's."""
    first, second = udp_socket(), udp_socket()
    caller = udp_socket()
    try:
        backends = {port_of(first): first, port_of(second): second}
        proxy = lab.proxy(lab.build("stateful_rr", list(backends)), children=1)
        call_id = f"{secrets.token_hex(8)}@faults"
        ruri = f"sip:callee@127.0.0.1:{proxy.port}"
        caller.sendto(request("INVITE", ruri, caller, call_id=call_id), ("127.0.0.1", proxy.port))
        ready, _, _ = select.select(list(backends.values()), [], [], timeout)
        if not ready:
            raise RuntimeError(f"no INVITE reached a backend:\n{proxy.text()[-2000:]}")
        backend = ready[0]
        invite, addr = backend.recvfrom(65535)
        contact = f"sip:callee@127.0.0.1:{port_of(backend)}"
        tag = secrets.token_hex(4)
        backend.sendto(reply(invite, 180, "Ringing", to_tag=tag, contact=contact), addr)
        statuses: list[int] = []

        def final_or_180(data: bytes) -> bool:
            code = status_of(data)
            if code is None or call_id not in data.decode("utf-8", "replace"):
                return False
            statuses.append(code)
            return code >= 180

        got, _ = receive(caller, timeout, final_or_180)
        if stage == 200:
            ok = reply(invite, 200, "OK", to_tag=tag, contact=contact)
            backend.sendto(ok, addr)
            got, _ = receive(caller, timeout, final_or_180)
        backend.close()  # the backend is dead from here on
        died = time.monotonic()
        bye_status: int | None = None
        if stage == 180:
            got, when = receive(caller, timeout, lambda d: final_or_180(d) and statuses[-1] >= 200)
            answered = when - died if got is not None else None
        else:
            routes = headers(got, "Record-Route") if got is not None else []
            ack = request("ACK", contact, caller, call_id=call_id, to_tag=tag, routes=routes)
            caller.sendto(ack, ("127.0.0.1", proxy.port))
            bye = request(
                "BYE", contact, caller, call_id=call_id, cseq=2, to_tag=tag, routes=routes
            )
            caller.sendto(bye, ("127.0.0.1", proxy.port))
            got, when = receive(
                caller,
                timeout,
                lambda d: status_of(d) is not None and b"BYE" in d and status_of(d) != 100,
            )
            bye_status = status_of(got) if got is not None else None
            answered = when - died if got is not None else None
        return Death(
            stage=stage,
            invite_statuses=tuple(statuses),
            bye_status=bye_status,
            answered_after=answered,
            serving=options_answered(proxy.port, 5.0),
        )
    finally:
        for sock in (first, second, caller):
            sock.close()


def failover_to_live_backend(lab: Lab, calls: int, rate: int) -> Calls:
    """``calls`` SIPp calls through failover_rr with its first backend dead (a closed
    port) and its second a SIPp UAS: each call the round robin gives to the dead one
    fails over to the live one when fr_timer fires."""
    dead, live = proxy_bench.free_udp_ports(2)
    module = lab.build("failover_rr", (dead, live))
    lab.uas(live)
    proxy = lab.proxy(module, children=2)
    return lab.uac(proxy.port, calls=calls, rate=rate)


# -- 2. a worker killed with SIGKILL -----------------------------------------------------


@dataclass(frozen=True)
class Kill:
    during: Calls
    after: Calls
    killed: int
    #: the workers before the kill and after the restart
    before_pids: tuple[int, ...]
    after_pids: tuple[int, ...]
    restart_logged: bool
    restart_seconds: float | None
    traceback: bool


def worker_killed(lab: Lab, calls: int, rate: int, after_calls: int) -> Kill:
    """A SIPp run of ``calls`` calls at ``rate``/s through stateful_rr with two
    workers; a third of the way through one worker gets SIGKILL. When the supervisor
    has restarted it, a second run of ``after_calls`` calls."""
    ports = proxy_bench.free_udp_ports(2)
    module = lab.build("stateful_rr", ports)
    for port in ports:
        lab.uas(port)
    proxy = lab.proxy(module, children=2)
    before = proxy.workers()
    popen, stat = lab.uac_start(proxy.port, calls=calls, rate=rate)
    time.sleep(calls / rate / 3)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    restarted = wait_until(
        lambda: "serving again" in proxy.text() and len(set(proxy.workers()) - set(before)) == 1,
        20.0,
        0.01,
    )
    restart_seconds = time.monotonic() - killed_at if restarted else None
    during = finish_uac(popen, stat, calls)
    after_pids = proxy.workers()
    after = lab.uac(proxy.port, calls=after_calls, rate=rate)
    text = proxy.text()
    return Kill(
        during=during,
        after=after,
        killed=victim,
        before_pids=tuple(before),
        after_pids=tuple(after_pids),
        restart_logged=f"(pid {victim}) killed by signal 9" in text,
        restart_seconds=restart_seconds,
        traceback="Traceback" in text,
    )


# -- 3. messages above the maximum size --------------------------------------------------


@dataclass(frozen=True)
class Oversize:
    #: what the proxy answered to the 65,507-byte UDP datagram (a status, or None)
    udp_status: int | None
    #: whether the proxy closed the TCP connection that sent an oversized message
    tcp_closed: bool
    tcp_logged: bool
    udp_serving: bool
    tcp_serving: bool
    workers_same: bool
    traceback: bool


def oversize(lab: Lab) -> Oversize:
    """An OPTIONS padded to ``UDP_MAX`` bytes (a long header) over UDP, then a TCP
    message whose head runs past ``TCP_MAX_MESSAGE`` bytes with no end."""
    ports = proxy_bench.free_udp_ports(2)
    proxy = lab.proxy(lab.build("stateful_rr", ports), children=1, tcp=True)
    workers = proxy.workers()
    caller = udp_socket()
    try:
        call_id = f"{secrets.token_hex(8)}@big"
        base = request("OPTIONS", f"sip:ping@127.0.0.1:{proxy.port}", caller, call_id=call_id)
        pad = UDP_MAX - len(base) - len("X-Pad: \r\n")
        big = base.replace(b"Max-Forwards", b"X-Pad: " + b"a" * pad + b"\r\nMax-Forwards", 1)
        assert len(big) == UDP_MAX
        caller.sendto(big, ("127.0.0.1", proxy.port))
        got, _ = receive(caller, 5.0, lambda d: call_id.encode() in d)
        udp_status = status_of(got) if got is not None else None
    finally:
        caller.close()
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    closed = False
    try:
        conn.sendall(b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nX-Pad: ")
        with contextlib.suppress(OSError):  # the proxy may close while we still send
            for _ in range(TCP_MAX_MESSAGE // 8192 + 2):
                conn.sendall(b"b" * 8192)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if conn.recv(65535) == b"":
                    closed = True
                    break
            except ConnectionResetError:
                closed = True
                break
            except TimeoutError:
                break
    finally:
        conn.close()
    logged = wait_until(lambda: "closing the TCP connection" in proxy.text(), 5.0)
    return Oversize(
        udp_status=udp_status,
        tcp_closed=closed,
        tcp_logged=logged,
        udp_serving=options_answered(proxy.port, 5.0),
        tcp_serving=options_answered(proxy.port, 5.0, "tcp"),
        workers_same=proxy.workers() == workers,
        traceback="Traceback" in proxy.text(),
    )


# -- 4. a full socket buffer -------------------------------------------------------------


@dataclass(frozen=True)
class Flood:
    sent: int
    send_seconds: float
    #: replies (404s) the sender read back within the drain window
    answered: int
    #: datagrams the kernel dropped at the proxy's sockets (full receive buffer)
    kernel_drops: int
    #: seconds from the burst's end until an OPTIONS was answered again
    recovered_after: float | None
    workers_same: bool
    traceback: bool


def flood(lab: Lab, count: int, children: int) -> Flood:
    """``count`` OPTIONS from one socket as fast as it sends them, a small receive
    buffer on the proxy (``--rcvbuf 262144``) so the burst overflows it for sure."""
    ports = proxy_bench.free_udp_ports(2)
    module = lab.build("stateful_rr", ports)
    proxy = lab.proxy(module, children=children, extra=["--rcvbuf", "262144"])
    workers = proxy.workers()
    drops_before = udp_drops(proxy.port)
    sender = udp_socket()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sender.setblocking(False)
    answered = 0
    try:
        call_id = f"{secrets.token_hex(8)}@flood"
        msg = request("OPTIONS", f"sip:ping@127.0.0.1:{proxy.port}", sender, call_id=call_id)
        dst = ("127.0.0.1", proxy.port)
        start = time.monotonic()
        sent = 0
        while sent < count:
            try:
                sender.sendto(msg, dst)
                sent += 1
            except BlockingIOError:
                select.select([], [sender], [], 0.01)
            if sent % 256 == 0:
                answered += drain(sender)
        burst_end = time.monotonic()
        recovered = wait_until(lambda: options_answered(proxy.port, 0.5), 30.0, 0.0)
        recovered_after = time.monotonic() - burst_end if recovered else None
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            answered += drain(sender)
            time.sleep(0.05)
    finally:
        sender.close()
    text = proxy.text()
    return Flood(
        sent=sent,
        send_seconds=burst_end - start,
        answered=answered,
        kernel_drops=udp_drops(proxy.port) - drops_before,
        recovered_after=recovered_after,
        workers_same=proxy.workers() == workers,
        traceback="Traceback" in text,
    )


def drain(sock: socket.socket) -> int:
    """Read what is queued on the non-blocking ``sock``; how many datagrams."""
    got = 0
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return got
        got += 1


# -- 5. SIGTERM during load --------------------------------------------------------------


class Backends:
    """Two UAS sockets served by a thread: each INVITE gets a 180 at once and a 200
    ``answer_after`` seconds later (never when None); a CANCEL gets its 200 and the
    INVITE a 487; everything else is recorded and left alone."""

    def __init__(self, answer_after: float | None) -> None:
        self.socks = [udp_socket(), udp_socket()]
        self.answer_after = answer_after
        self.invites = 0
        self.cancels = 0
        self._invites: dict[str, tuple[bytes, tuple[str, int], str]] = {}
        self._due: list[tuple[float, str]] = []  # a heap
        self._canceled: set[str] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def ports(self) -> list[int]:
        return [port_of(sock) for sock in self.socks]

    def close(self) -> None:
        self._stop = True
        self._thread.join(5.0)
        for sock in self.socks:
            sock.close()

    def _serve(self) -> None:
        while not self._stop:
            ready, _, _ = select.select(self.socks, [], [], 0.02)
            for sock in ready:
                data, addr = sock.recvfrom(65535)
                self._on_request(sock, data, addr)
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, call_id = heapq.heappop(self._due)
                if call_id in self._canceled:
                    continue
                invite, addr, contact = self._invites[call_id]
                sock = self._sock_of(contact)
                sock.sendto(reply(invite, 200, "OK", to_tag="uas", contact=contact), addr)

    def _sock_of(self, contact: str) -> socket.socket:
        port = int(contact.rsplit(":", 1)[1])
        return next(sock for sock in self.socks if port_of(sock) == port)

    def _on_request(self, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        method = data.split(b" ", 1)[0]
        call_ids = headers(data, "Call-ID")
        if not call_ids:
            return
        call_id = call_ids[0]
        contact = f"sip:callee@127.0.0.1:{port_of(sock)}"
        if method == b"INVITE" and call_id not in self._invites:
            self.invites += 1
            self._invites[call_id] = (data, addr, contact)
            sock.sendto(reply(data, 180, "Ringing", to_tag="uas", contact=contact), addr)
            if self.answer_after is not None:
                heapq.heappush(self._due, (time.monotonic() + self.answer_after, call_id))
        elif method == b"CANCEL" and call_id in self._invites:
            self.cancels += 1
            sock.sendto(reply(data, 200, "OK", to_tag="uas", contact=contact), addr)
            invite, to, _ = self._invites[call_id]
            sock.sendto(reply(invite, 487, "Request Terminated", to_tag="uas", contact=contact), to)
            self._canceled.add(call_id)


@dataclass(frozen=True)
class Drain:
    """What SIGTERM did to calls under way (``sigterm_drain``)."""

    #: the final status each call under way at the SIGTERM got (None: none came)
    finals: tuple[int | None, ...]
    #: the status a call started after the SIGTERM got
    new_call: int | None
    #: CANCELs the backends received
    cancels: int
    returncode: int | None
    exit_seconds: float | None
    #: workers the supervisor had to SIGKILL (its log says so)
    sigkilled: int
    traceback: bool
    log_tail: str = field(repr=False)


def sigterm_drain(
    lab: Lab, calls: int, answer_after: float | None, stop_timeout: float, children: int = 2
) -> Drain:
    """``calls`` INVITEs through stateful_rr (each from its own socket, so they
    spread over the workers) are ringing when the supervisor gets SIGTERM; the
    backends answer them ``answer_after`` seconds after the INVITE (or never). A new
    INVITE follows the SIGTERM. Returns every caller's final status."""
    backends = Backends(answer_after)
    callers = [udp_socket() for _ in range(calls)]
    late = udp_socket()
    try:
        # tm's own timeouts (408) must not end the calls before the drain does
        module = lab.build("stateful_rr", backends.ports, fr_ms=60_000)
        proxy = lab.proxy(module, children=children, extra=["--stop-timeout", str(stop_timeout)])
        where = ("127.0.0.1", proxy.port)
        ruri = f"sip:callee@127.0.0.1:{proxy.port}"
        ids = [f"{secrets.token_hex(8)}@drain" for _ in callers]
        for sock, call_id in zip(callers, ids, strict=True):
            sock.sendto(request("INVITE", ruri, sock, call_id=call_id), where)
        for sock in callers:
            ringing, _ = receive(sock, 10.0, lambda d: status_of(d) == 180)
            if ringing is None:
                raise RuntimeError(f"a call did not ring:\n{proxy.text()[-2000:]}")
        proxy.popen.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        time.sleep(0.1)  # the workers have the signal
        late.sendto(request("INVITE", ruri, late, call_id=f"{secrets.token_hex(8)}@late"), where)
        new, _ = receive(late, 5.0, lambda d: (status_of(d) or 0) >= 200)
        finals: list[int | None] = []
        for sock in callers:
            got, _ = receive(sock, stop_timeout + 10, lambda d: (status_of(d) or 0) >= 200)
            finals.append(None if got is None else status_of(got))
        try:
            code: int | None = proxy.popen.wait(timeout=stop_timeout + 20)
            exit_seconds: float | None = time.monotonic() - sent
        except subprocess.TimeoutExpired:
            code, exit_seconds = None, None
        text = proxy.text()
        return Drain(
            finals=tuple(finals),
            new_call=None if new is None else status_of(new),
            cancels=backends.cancels,
            returncode=code,
            exit_seconds=exit_seconds,
            sigkilled=text.count("did not stop: SIGKILL"),
            traceback="Traceback" in text,
            log_tail=text[-2000:],
        )
    finally:
        backends.close()
        for sock in (*callers, late):
            sock.close()


@dataclass(frozen=True)
class Term:
    returncode: int | None
    exit_seconds: float | None
    workers_left: tuple[int, ...]
    sigkilled: int
    traceback: bool
    calls: Calls
    stop_timeout: float
    log_tail: str = field(repr=False)


def sigterm_under_load(lab: Lab, calls: int, rate: int, stop_timeout: float) -> Term:
    """SIGTERM to the supervisor (stateful_rr, two workers, ``--stop-timeout``) half
    way through a SIPp run of ``calls`` calls at ``rate``/s: the calls after it get
    503 (SIPp counts them failed), the ones under way finish."""
    ports = proxy_bench.free_udp_ports(2)
    module = lab.build("stateful_rr", ports)
    for port in ports:
        lab.uas(port)
    proxy = lab.proxy(module, children=2, extra=["--stop-timeout", str(stop_timeout)])
    workers = proxy.workers()
    popen, stat = lab.uac_start(proxy.port, calls=calls, rate=rate, recv_timeout_ms=2000)
    time.sleep(calls / rate / 2)
    proxy.popen.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        code: int | None = proxy.popen.wait(timeout=stop_timeout + 20)
        exit_seconds: float | None = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        code, exit_seconds = None, None
    left = tuple(pid for pid in workers if Path(f"/proc/{pid}").exists())
    result = finish_uac(popen, stat, calls)
    text = proxy.text()
    return Term(
        returncode=code,
        exit_seconds=exit_seconds,
        workers_left=left,
        sigkilled=text.count("did not stop: SIGKILL"),
        traceback="Traceback" in text,
        calls=result,
        stop_timeout=stop_timeout,
        log_tail=text[-2000:],
    )


# -- 6. a slow backend holding many transactions ------------------------------------------


@dataclass(frozen=True)
class Held:
    """``calls`` INVITEs held ``hold`` seconds each by slow backends (``slow_backend``)."""

    calls: int
    #: final statuses the callers got, by status
    finals: dict[int, int]
    #: the highest number of INVITEs waiting for their 200 at once (sent, not final)
    most_open: int
    #: OPTIONS answered (of those sent) while the INVITEs were held
    options_answered: int
    options_sent: int
    peak_pss_mb: float
    workers_same: bool
    traceback: bool
    log_tail: str = field(repr=False)


def slow_backend(lab: Lab, calls: int, rate: float, hold: float, children: int = 2) -> Held:
    """``calls`` INVITEs through stateful_rr at ``rate``/s to backends that answer 180
    at once and 200 only ``hold`` seconds later, so that up to ``rate * hold``
    transactions are open at once; meanwhile an OPTIONS a second checks the proxy
    still answers. Every caller must get its 200."""
    backends = Backends(hold)
    callers = [udp_socket() for _ in range(8)]
    try:
        module = lab.build("stateful_rr", backends.ports, fr_ms=60_000)
        proxy = lab.proxy(module, children=children)
        pids = sorted(proxy.workers())
        where = ("127.0.0.1", proxy.port)
        ruri = f"sip:callee@127.0.0.1:{proxy.port}"
        for sock in callers:
            sock.setblocking(False)
        finals: dict[str, int] = {}
        sent = 0
        most_open = 0
        asked = answered = 0
        started = time.monotonic()
        next_probe = started + 1.0
        deadline = started + calls / rate + hold + 30.0
        with proxy_bench.MemorySampler(proxy.pid, interval=0.5) as memory:
            while len(finals) < calls and time.monotonic() < deadline:
                now = time.monotonic()
                due = min(calls, int((now - started) * rate) + 1)
                while sent < due:
                    sock = callers[sent % len(callers)]
                    call_id = f"held-{sent}-{secrets.token_hex(4)}"
                    sock.sendto(request("INVITE", ruri, sock, call_id=call_id), where)
                    sent += 1
                for sock in callers:
                    while True:
                        try:
                            data = sock.recv(65535)
                        except BlockingIOError:
                            break
                        status = status_of(data)
                        if status is not None and status >= 200:
                            finals.setdefault(headers(data, "Call-ID")[0], status)
                most_open = max(most_open, sent - len(finals))
                if now >= next_probe and sent - len(finals) > 0:
                    next_probe = now + 1.0
                    asked += 1
                    answered += options_answered(proxy.port, 2.0)
                select.select(callers, [], [], 0.005)
        counts: dict[int, int] = {}
        for status in finals.values():
            counts[status] = counts.get(status, 0) + 1
        text = proxy.text()
        return Held(
            calls=calls,
            finals=counts,
            most_open=most_open,
            options_answered=answered,
            options_sent=asked,
            peak_pss_mb=round(memory.peak_kb / 1024, 1),
            workers_same=sorted(proxy.workers()) == pids,
            traceback="Traceback" in text,
            log_tail=text[-2000:],
        )
    finally:
        backends.close()
        for sock in callers:
            sock.close()


# -- the script --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per SIPp run")
    parser.add_argument("--rate", type=int, default=100, help="calls per second")
    parser.add_argument("--flood", type=int, default=500_000, help="datagrams in the burst")
    args = parser.parse_args(argv)
    for stage in (180, 200):
        with lab() as group:
            print(f"backend dies after {stage}: {backend_dies(group, stage)}", flush=True)
    with lab() as group:
        result = failover_to_live_backend(group, args.calls // 4, args.rate // 4)
        print(f"failover with a dead backend: {result}", flush=True)
    with lab() as group:
        kill = worker_killed(group, args.calls, args.rate, args.calls // 2)
        lost = kill.during.asked - kill.during.successful
        print(
            f"worker SIGKILL: during {kill.during} ({lost} lost), after {kill.after}, "
            f"restart in {kill.restart_seconds} s, pids {kill.before_pids} -> "
            f"{kill.after_pids}, traceback {kill.traceback}",
            flush=True,
        )
    with lab() as group:
        print(f"oversize: {oversize(group)}", flush=True)
    for children in (1, 2):
        with lab() as group:
            print(f"flood ({children} workers): {flood(group, args.flood, children)}", flush=True)
    for answer_after, stop_timeout in ((1.0, 8.0), (None, 2.0)):
        with lab() as group:
            drained = sigterm_drain(group, 50, answer_after, stop_timeout)
            print(
                f"SIGTERM with 50 calls ringing, answered after {answer_after} s, "
                f"--stop-timeout {stop_timeout}: {drained}",
                flush=True,
            )
    with lab() as group:
        held = slow_backend(group, 10_000, 500.0, 25.0)
        print(f"slow backend, 10,000 INVITEs held 25 s at 500/s: {held}", flush=True)
    with lab() as group:
        term = sigterm_under_load(group, args.calls, args.rate, 5.0)
        print(f"SIGTERM under load: {term}", flush=True)
    return 0


if __name__ == "__main__":
    proxy_bench.exit_on_sigterm()
    raise SystemExit(main())
