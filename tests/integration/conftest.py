"""Running real SIP traffic through a proxy: SIPp UAS/UAC, the kcc proxy and Kamailio 5.6
as subprocesses on free loopback ports.

Every test here is parametrized over ``impl in ("kamailio", "kcc")``: the same config
(an ``examples/`` balancer with its fixed ports rewritten to free ones, nothing else
changed) runs once in real Kamailio and once as the proxy ``kcc build`` generates, and
both must give the same, exact results. Kamailio is the oracle; the kcc side is never
skipped: a kcc proxy that cannot be built or does not start makes its test fail, with
the proxy's log in the message.

How the processes are run (facts from ``/work/shared/reference/field-notes.md``):

- Kamailio: ``kamailio -DD -E -f CFG -Y DIR -w DIR -m 64 -n CHILDREN``; ``-DD`` keeps the
  main process in the foreground (its PID is the one we stop with SIGTERM; it takes its
  workers down with it), ``-n`` overrides the cfg's ``children=``.
- kcc: ``kcc build CFG -o DIR/NAME.py``, then ``python DIR/NAME.py --listen
  udp:127.0.0.1:PORT --children N --allow-dst 127.0.0.0/8,::1`` (issue 5's serve
  contract); SIGTERM stops it.
- A proxy is ready when it answers an OPTIONS probe (both example balancers answer
  every non-INVITE with 404), so no log format is relied on.
- SIPp always gets ``-buff_size 4194304`` and ``-nostdin``; a UAS is ready when its
  port shows in ``/proc/net/udp`` and stops on SIGUSR1 (SIPp's "quit" signal, which
  flushes its logs and exits 0). A UAC run is bounded by ``-m CALLS`` and an outer
  timeout, and never retransmits (``-nr``, with ``-recv_timeout`` to end a call whose
  message was lost): a retransmitted INVITE is a new request for a stateless proxy.
- The chapter's stateless balancer does not record-route: the UAC scenario sends ACK
  and BYE straight to the UAS named in the 200's Contact, and the UAS answers the BYE
  straight to the UAC (``scenarios/uac.xml``, ``scenarios/uas.xml``).

Every process is stopped by its own PID (SIGTERM, then SIGKILL after a grace period),
never by name. Tests run inside ``unshare -n`` with only ``lo`` up; everything binds to
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kcc_runtime import bencode
from kcc_runtime.modules.rtpengine import NgClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
IMPLS = ("kamailio", "kcc")

#: SIPp's socket buffers: the 64 KiB default drops packets at speed (field notes)
SIPP_BUFF_SIZE = "4194304"
#: the fixed addresses the example configs name, rewritten per test
EXAMPLE_LISTEN = "127.0.0.1:5060"
EXAMPLE_BACKENDS = ("127.0.0.1:5081", "127.0.0.1:5082")
#: what the kcc proxy may send to (the suite's guard, issue 5 item 6)
ALLOW_DST = "127.0.0.0/8,::1"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

needs_sipp = pytest.mark.skipif(
    shutil.which("sipp") is None or shutil.which("kamailio") is None,
    reason="SIPp (sip-tester) and kamailio are needed: scripts/setup.sh installs them",
)


# -- ports ------------------------------------------------------------------------------


def free_udp_ports(count: int) -> list[int]:
    """``count`` distinct UDP ports free on 127.0.0.1 right now (all bound at once, then
    released, so they differ from each other)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def udp_bound(port: int) -> bool:
    """Whether some socket of this network namespace is bound to UDP ``port``
    (``/proc/net/udp`` and ``udp6``, local address column ``HEXIP:HEXPORT``)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and fields[1].endswith(suffix):
                return True
    return False


def exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, without reaping it (``WNOWAIT``)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


# -- processes --------------------------------------------------------------------------


@dataclass
class Service:
    """A subprocess we started, with its output in ``log``; stopped by its PID."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        """Still running (a process that exited is left unreaped: see ``stop``)."""
        return self.popen.returncode is None and not exited(self.pid)

    def stop(self) -> int:
        """Send ``stop_signal``, wait up to ``STOP_TIMEOUT`` for the process to exit,
        then SIGKILL whatever is left of its process group (its own session, made at
        spawn: only processes we started are in it) and reap it. Returns the exit
        status (negative: killed by that signal).

        The group kill matters: Kamailio 5.6 with cfgutils' locks sometimes deadlocks in
        its SIGTERM shutdown (main and workers all waiting on a futex, measured here
        about once in ten stops); killing the main process alone would leave its
        workers behind. The group is killed while the leader is still unreaped, so its
        PID (the group id) cannot have been reused."""
        if self.popen.returncode is None:
            if not exited(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    self.popen.send_signal(self.stop_signal)
                wait_until(lambda: exited(self.pid), STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, argv: Sequence[str], log: Path, *, cwd: Path, stop_signal: int) -> Service:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # a process group of its own, for ``Service.stop``
        )
    return Service(name, popen, log, stop_signal)


class Services:
    """Everything one test started; the fixture stops it all, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Service] = []

    def add(self, service: Service) -> Service:
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.started):
            service.stop()
        self.started.clear()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    group = Services(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


# -- SIP probes (one request, one reply, on a socket of our own) ------------------------


COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
}


@dataclass(frozen=True)
class SipReply:
    """A reply as received: status line and headers (names lowercased, compact forms
    expanded), in order."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    def all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for hname, value in self.headers if hname == key]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if len(values) == 1 else None


def parse_reply(data: bytes) -> SipReply | None:
    """The status line and headers of a SIP reply; None if ``data`` is not one."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    lines = head.split("\r\n")
    match = re.fullmatch(r"SIP/2\.0 (\d{3}) (.*)", lines[0])
    if match is None:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return SipReply(int(match.group(1)), match.group(2), tuple(headers), data)


@dataclass
class SipProbe:
    """A tiny UAC on its own UDP socket: sends one request, returns the first reply."""

    sock: socket.socket = field(
        default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    )

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def request(
        self,
        method: str,
        ruri: str,
        *,
        to: str | None = None,
        call_id: str | None = None,
        branch: str | None = None,
        to_tag: str | None = None,
    ) -> tuple[bytes, str]:
        """The bytes of a minimal valid request (RFC 3261 §8.1.1) and its Call-ID."""
        call_id = call_id or f"{secrets.token_hex(8)}@127.0.0.1"
        branch = branch or f"z9hG4bK{secrets.token_hex(8)}"
        to_hdr = f"<{to or ruri}>" + (f";tag={to_tag}" if to_tag else "")
        text = (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
            f"From: <sip:probe@127.0.0.1:{self.port}>;tag=probe{self.port}\r\n"
            f"To: {to_hdr}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:probe@127.0.0.1:{self.port}>\r\n"
            "Max-Forwards: 70\r\n"
            "User-Agent: kcc-integration-probe\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        return text.encode("ascii"), call_id

    def send(self, data: bytes, dst_port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", dst_port))

    def receive(self, timeout: float) -> SipReply | None:
        """The next SIP reply on the socket, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return None
            reply = parse_reply(data)
            if reply is not None:
                return reply
        return None

    def ask(self, method: str, ruri: str, dst_port: int, timeout: float = 2.0) -> SipReply | None:
        """Send one request (retransmitted every 0.5 s, RFC 3261 T1) until a reply
        arrives or ``timeout`` passes."""
        data, call_id = self.request(method, ruri)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.send(data, dst_port)
            reply = self.receive(min(0.5, left))
            if reply is not None and reply.one("call-id") == call_id:
                return reply
        return None

    def exchange(
        self, data: bytes, call_id: str, dst_port: int, timeout: float = 2.0
    ) -> SipReply | None:
        """Send the request ``data`` as given (for requests ``request`` cannot build:
        a bad header, Max-Forwards 0), retransmitted every 0.5 s like ``ask``, until a
        reply with this ``call_id`` arrives or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.send(data, dst_port)
            reply = self.receive(min(0.5, left))
            if reply is not None and reply.one("call-id") == call_id:
                return reply
        return None


@pytest.fixture
def probe() -> Iterator[SipProbe]:
    sip = SipProbe()
    try:
        yield sip
    finally:
        sip.close()


# -- configs and proxies ----------------------------------------------------------------


def rewrite_ports(text: str, listen_port: int, backend_ports: Sequence[int]) -> str:
    """The example config with its fixed loopback ports replaced: ``listen`` on
    ``listen_port``, the two backends on ``backend_ports``. Nothing else changes."""
    assert EXAMPLE_LISTEN in text, "the example config no longer listens on 127.0.0.1:5060"
    text = text.replace(EXAMPLE_LISTEN, f"127.0.0.1:{listen_port}")
    for old, port in zip(EXAMPLE_BACKENDS, backend_ports, strict=True):
        assert old in text, f"the example config no longer names {old}"
        text = text.replace(old, f"127.0.0.1:{port}")
    return text


@dataclass
class Proxy:
    impl: str
    port: int
    service: Service


def kcc_command(module: Path, port: int, children: int) -> list[str]:
    """How the generated proxy is started (issue 5 serve contract)."""
    return [
        sys.executable,
        str(module),
        "--listen",
        f"udp:127.0.0.1:{port}",
        "--children",
        str(children),
        "--allow-dst",
        ALLOW_DST,
        # the ctl/jsonrpcs sockets beside the module, as Kamailio's -Y puts them
        "--runtime-dir",
        str(module.parent),
    ]


def kamailio_command(cfg: Path, rundir: Path, children: int) -> list[str]:
    """Kamailio in the foreground, logging to stderr, ``children`` UDP workers."""
    return [
        "kamailio",
        "-DD",
        "-E",
        "-f",
        str(cfg),
        "-Y",
        str(rundir),
        "-w",
        str(rundir),
        "-m",
        "64",
        "-n",
        str(children),
    ]


def kcc_build(cfg: Path, module: Path, defines: Sequence[str] = ()) -> None:
    """``kcc build cfg -o module`` (with ``-D NAME`` for each of ``defines``); fails the
    test with kcc's diagnostics if it fails."""
    kcc = Path(sys.executable).with_name("kcc")
    result = subprocess.run(
        [str(kcc), "build", str(cfg), "-o", str(module), *(f"-D{name}" for name in defines)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kcc build {cfg.name} failed ({result.returncode}):\n{result.stderr}")


def start_proxy(
    services: Services,
    impl: str,
    example: str,
    backend_ports: Sequence[int],
    *,
    children: int,
    port: int | None = None,
    edit: Callable[[str], str] | None = None,
) -> Proxy:
    """Run ``examples/<example>.cfg`` (ports rewritten, then passed through ``edit`` if
    given, e.g. to add short tm timers) in ``impl`` and wait until it answers an
    OPTIONS; fail the test with the proxy's log if it does not. The cfg names its own
    ``listen=`` address: Kamailio gets no ``-l`` (``start_proxy_cfg``)."""
    if port is None:
        port = free_udp_ports(1)[0]
    source = (EXAMPLES / f"{example}.cfg").read_text(encoding="utf-8")
    text = rewrite_ports(source, port, backend_ports)
    if edit is not None:
        text = edit(text)
    return start_proxy_cfg(
        services, impl, example, text, children=children, port=port, listen_option=False
    )


def start_proxy_cfg(
    services: Services,
    impl: str,
    name: str,
    text: str,
    *,
    children: int,
    port: int | None = None,
    defines: Sequence[str] = (),
    kamailio_workdir: Path | None = None,
    listen_option: bool = True,
) -> Proxy:
    """Run the config ``text`` (written to a directory of its own as ``<name>.cfg``) in
    ``impl`` with its listen address given on the command line: ``-l
    udp:127.0.0.1:PORT`` for Kamailio, ``--listen`` for kcc, so that a config without
    ``listen=`` (the stock ``kamailio.cfg`` binds every interface) serves loopback
    only (``listen_option`` False: no ``-l`` for Kamailio, the cfg's own ``listen=``
    names ``port``; kcc always gets ``--listen``). Kamailio's ``-Y`` puts its RPC FIFO
    and sockets (jsonrpcs, ctl) in that directory too. Ready when it answers an
    OPTIONS probe (``OPTIONS sip:ping@127.0.0.1:PORT``); fails the test with the
    proxy's log if it exits first or never answers.

    ``defines`` are the cfg's switches (``WITH_AUTH``...): ``-A NAME`` for Kamailio,
    ``-D NAME`` for ``kcc build``. ``kamailio_workdir`` replaces Kamailio's ``-w``
    (the run directory by default): db_sqlite opens ``sqlite:///path`` relative to
    it, so a cfg naming an absolute database path needs ``/`` (measured)."""
    if port is None:
        port = free_udp_ports(1)[0]
    rundir = services.workdir / f"{impl}-{name}-{port}"
    rundir.mkdir()
    cfg = rundir / f"{name}.cfg"
    cfg.write_text(text, encoding="utf-8")
    if impl == "kamailio":
        argv = kamailio_command(cfg, rundir, children)
        if listen_option:
            argv += ["-l", f"udp:127.0.0.1:{port}"]
        for define in defines:
            argv += ["-A", define]
        if kamailio_workdir is not None:
            argv[argv.index("-w") + 1] = str(kamailio_workdir)
    elif impl == "kcc":
        module = rundir / f"{name}.py"
        kcc_build(cfg, module, defines)
        argv = kcc_command(module, port, children)
    else:
        raise ValueError(impl)
    service = services.add(
        spawn(impl, argv, rundir / "proxy.log", cwd=rundir, stop_signal=signal.SIGTERM)
    )
    probe = SipProbe()
    try:

        def answers() -> bool:
            if not service.alive():
                return True
            return probe.ask("OPTIONS", f"sip:ping@127.0.0.1:{port}", port, 0.3) is not None

        ready = wait_until(answers, START_TIMEOUT, step=0.0)
    finally:
        probe.close()
    if not service.alive():
        code = service.stop()
        pytest.fail(
            f"{impl} proxy for {name} exited ({code}) before serving:\n{service.log_tail()}"
        )
    if not ready:
        pytest.fail(f"{impl} proxy for {name} never answered an OPTIONS:\n{service.log_tail()}")
    return Proxy(impl, port, service)


# -- a running cfg shared by a test module (the stock cfg and its switches) -------------

#: Debian's stock config (Kamailio 5.6), read at test time: GPL, never copied here
STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
needs_stock_cfg = pytest.mark.skipif(
    not STOCK_CFG.is_file(), reason=f"{STOCK_CFG} (Debian's kamailio package) is needed"
)
#: the (impl, children) pairs a module-scoped proxy fixture runs with
IMPL_CHILDREN = [(impl, children) for impl in IMPLS for children in (1, 2)]


def impl_children_id(param: tuple[str, int]) -> str:
    """The test id of an ``IMPL_CHILDREN`` pair: ``kcc-children2``."""
    return f"{param[0]}-children{param[1]}"


@dataclass
class RunningProxy:
    """A proxy started for a whole test module, with what its tests ask of it: its
    address as users name it, its log, and the real RPC clients on its sockets."""

    impl: str
    children: int
    proxy: Proxy

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def domain(self) -> str:
        """The proxy's domain as users address it (``uri==myself`` holds for it)."""
        return f"127.0.0.1:{self.proxy.port}"

    @property
    def address(self) -> tuple[str, int]:
        """Where user agents send to (and where its replies come from)."""
        return ("127.0.0.1", self.proxy.port)

    def log(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the proxy's log, for an assertion message."""
        return f"{self.impl} proxy log:\n{self.proxy.service.log_tail(lines)}"

    def log_text(self) -> str:
        """The proxy's whole log so far (stdout and stderr)."""
        return self.proxy.service.log.read_text(encoding="utf-8", errors="replace")

    def script_lines(self, marker: str) -> list[str]:
        """The script's log lines containing ``marker`` (the text after
        ``<script>: ``)."""
        return [
            line.split("<script>: ", 1)[1]
            for line in self.log_text().splitlines()
            if "<script>: " in line and marker in line
        ]

    def kamctl(self, *args: str) -> str:
        """The real ``kamctl`` (its default RPCFIFO engine: JSON-RPC over jsonrpcs'
        FIFO, ``RPCFIFOPATH`` pointing at the proxy's)."""
        fifo = self.proxy.service.log.parent / "kamailio_rpc.fifo"
        done = subprocess.run(
            ["kamctl", *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ, "RPCFIFOPATH": str(fifo)},
        )
        assert done.returncode == 0, f"kamctl {args}: {done.stdout}{done.stderr}\n{self.log()}"
        return done.stdout

    def kamcmd(self, *args: str) -> str:
        """The real ``kamcmd`` on the proxy's ctl socket (the stock cfg's default
        ``kamailio_ctl``, in the runtime directory: Kamailio's ``-Y``, kcc's
        ``--runtime-dir``)."""
        ctl = self.proxy.service.log.parent / "kamailio_ctl"
        done = subprocess.run(
            ["kamcmd", "-s", f"unix:{ctl}", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 0, f"kamcmd {args}: {done.stdout}{done.stderr}\n{self.log()}"
        return done.stdout


@contextlib.contextmanager
def module_services(factory: pytest.TempPathFactory, basename: str) -> Iterator[Services]:
    """A ``Services`` group for a module-scoped fixture, in a fresh directory named
    after ``basename`` (keep it short: Kamailio's RPC socket paths under it must stay
    below the 108 bytes of a unix socket address); everything in it is stopped at
    the end."""
    group = Services(factory.mktemp(basename))
    try:
        yield group
    finally:
        group.stop_all()


def stock_proxy(
    request: pytest.FixtureRequest,
    factory: pytest.TempPathFactory,
    basename: str,
    defines: Sequence[str] = (),
) -> Iterator[RunningProxy]:
    """The body of a module-scoped fixture parametrized over ``IMPL_CHILDREN``: the
    unmodified stock cfg with ``defines`` in ``impl`` with ``children`` workers, in a
    directory ``<basename>-<impl>-<children>``."""
    impl, children = request.param
    with module_services(factory, f"{basename}-{impl}-{children}") as group:
        text = STOCK_CFG.read_text(encoding="utf-8")
        proxy = start_proxy_cfg(group, impl, "kamailio", text, children=children, defines=defines)
        yield RunningProxy(impl, children, proxy)


# -- SIPp -------------------------------------------------------------------------------


@dataclass
class Uas:
    port: int
    service: Service
    calls_log: Path
    #: SIPp's ``-trace_msg`` log (every message sent and received), when asked for
    messages_log: Path | None = None

    def invites(self) -> list[str]:
        """The Call-IDs of the INVITEs this UAS took, one per call (a retransmission is
        absorbed by SIPp and not logged again). Stop the UAS first: SIPp flushes on exit."""
        try:
            lines = self.calls_log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [line.split(" ", 1)[1] for line in lines if line.startswith("INVITE ")]


def sipp_base(scenario: str, local_port: int, local_ip: str = "127.0.0.1") -> list[str]:
    return [
        "sipp",
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        local_ip,
        "-p",
        str(local_port),
        "-buff_size",
        SIPP_BUFF_SIZE,
        "-nostdin",
    ]


def start_uas(
    services: Services, port: int, scenario: str = "uas.xml", *, trace_msg: bool = False
) -> Uas:
    """A SIPp backend (``scenarios/<scenario>``) on 127.0.0.1:``port``; with
    ``trace_msg``, every message it sends and receives is logged (``Uas.messages_log``)."""
    log = services.workdir / f"uas-{port}.calls"
    messages = services.workdir / f"uas-{port}.messages" if trace_msg else None
    argv = [
        *sipp_base(scenario, port),
        "-trace_logs",
        "-log_file",
        str(log),
        "-trace_err",
        "-error_file",
        str(services.workdir / f"uas-{port}.errors"),
    ]
    if messages is not None:
        argv += ["-trace_msg", "-message_file", str(messages)]
    service = services.add(
        spawn(
            f"uas:{port}",
            argv,
            services.workdir / f"uas-{port}.out",
            cwd=services.workdir,
            stop_signal=signal.SIGUSR1,
        )
    )
    if not wait_until(lambda: udp_bound(port) or not service.alive(), START_TIMEOUT):
        pytest.fail(f"SIPp UAS on port {port} did not bind:\n{service.log_tail()}")
    if not service.alive():
        pytest.fail(f"SIPp UAS on port {port} exited:\n{service.log_tail()}")
    return Uas(port, service, log, messages)


def start_backends(services: Services) -> tuple[Uas, Uas]:
    first, second = free_udp_ports(2)
    return start_uas(services, first), start_uas(services, second)


@dataclass(frozen=True)
class UacResult:
    returncode: int
    successful: int
    failed: int
    #: the UAS port each call reached, in call-number order
    backends: tuple[int, ...]
    output: str


def read_stat(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` CSV (written at exit) as a dict."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def run_sipp_client(
    services: Services, argv: Sequence[str], timeout: float, failure: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the SIPp client ``argv`` to its end in the test's directory, its output
    captured; fails the test with ``<failure> in <timeout> s`` if it runs longer than
    ``timeout`` seconds (the outer bound on top of SIPp's own ``-timeout``)."""
    try:
        return subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=services.workdir,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{failure} in {timeout:.0f} s")


def run_uac(
    services: Services,
    proxy_port: int,
    *,
    calls: int,
    rate: int,
    socket_per_call: bool = False,
    timeout: float = 60.0,
    scenario: str = "uac.xml",
    local_ip: str = "127.0.0.1",
) -> UacResult:
    """``calls`` calls of ``scenarios/<scenario>`` through the proxy at ``rate`` calls/s,
    sent from ``local_ip`` (any 127/8 address works on ``lo``); ``socket_per_call`` is
    SIPp's ``-t un`` (a source port per call, so SO_REUSEPORT spreads the calls over
    every worker). ``UacResult.backends`` holds the second word of each
    ``<call number> <word>`` line the scenario logs, when it is a number (the UAS port
    for ``uac.xml``, the final status code for ``uac_fail.xml``)."""
    (local_port,) = free_udp_ports(1)
    tag = f"uac-{local_port}"
    calls_log = services.workdir / f"{tag}.calls"
    stat = services.workdir / f"{tag}.csv"
    errors = services.workdir / f"{tag}.errors"
    argv = [
        *sipp_base(scenario, local_port, local_ip),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-timeout",
        f"{int(timeout)}s",
        # no retransmissions: a stateless proxy forwards a retransmitted INVITE as a new
        # request (to the other backend), which would make the counts depend on timing;
        # a message that is really lost fails its call after 10 s instead
        "-nr",
        "-recv_timeout",
        "10000",
        "-trace_logs",
        "-log_file",
        str(calls_log),
        "-trace_stat",
        "-stf",
        str(stat),
        "-trace_err",
        "-error_file",
        str(errors),
    ]
    if socket_per_call:
        argv += ["-t", "un", "-max_socket", "4096"]
    argv.append(f"127.0.0.1:{proxy_port}")
    done = run_sipp_client(services, argv, timeout + 30, f"SIPp UAC did not finish {calls} calls")
    stats = read_stat(stat) if stat.exists() else {}
    error_text = errors.read_text(encoding="utf-8", errors="replace") if errors.exists() else ""
    per_call: dict[int, int] = {}
    if calls_log.exists():
        for line in calls_log.read_text(encoding="utf-8").splitlines():
            number, _, port = line.partition(" ")
            if number.isdigit() and port.isdigit():
                per_call[int(number)] = int(port)
    return UacResult(
        returncode=done.returncode,
        successful=int(stats.get("SuccessfulCall(C)", "-1")),
        failed=int(stats.get("FailedCall(C)", "-1")),
        backends=tuple(per_call[n] for n in sorted(per_call)),
        output=(done.stdout + done.stderr).decode("utf-8", errors="replace")[-3000:]
        + f"\nSIPp errors:\n{error_text[-3000:]}",
    )


def stop_uas(*backends: Uas) -> None:
    """Stop the UASes (flushing their call logs) and check they exited cleanly."""
    for uas in backends:
        code = uas.service.stop()
        assert code in (0, 1, 99), f"SIPp UAS {uas.port} exited {code}:\n{uas.service.log_tail()}"


def sipvicious_svmap() -> Path:
    return Path(sys.executable).with_name("sipvicious_svmap")


def isolated_env(home: Path) -> dict[str, str]:
    """The environment with HOME moved into the test's directory (svmap keeps its
    session state under ~/.sipvicious)."""
    env = dict(os.environ)
    env["HOME"] = str(home)
    return env


# -- SIPp message traces (-trace_msg) ---------------------------------------------------


class ParsedHead:
    """What a test reads of a SIP message's head, for classes with a ``start`` line and
    ``headers`` (names lowercased, compact forms expanded, in order)."""

    start: str
    headers: tuple[tuple[str, str], ...]

    @property
    def status(self) -> int | None:
        """The status code of a reply, None for a request."""
        match = re.fullmatch(r"SIP/2\.0 (\d{3}) .*", self.start)
        return int(match.group(1)) if match else None

    @property
    def reason(self) -> str:
        """The reason phrase of a reply ("" for a request)."""
        return self.start.split(" ", 2)[2] if self.status is not None else ""

    @property
    def method(self) -> str:
        """The method of a request ("" for a reply)."""
        return "" if self.status is not None else self.start.split(" ", 1)[0]

    @property
    def ruri(self) -> str:
        """The Request-URI of a request ("" for a reply)."""
        return "" if self.status is not None else self.start.split(" ")[1]

    def all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for hname, value in self.headers if hname == key]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, f"{name}: {values} in {self!r}"
        return values[0]


def header_fields(lines: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The header fields of ``lines`` (a message's head after its start line), up to
    the first empty line: names lowercased, compact forms expanded, continuation lines
    folded into the field before; a line with no colon is skipped."""
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            break
        if line[:1] in (" ", "\t") and headers:
            hname, value = headers[-1]
            headers[-1] = (hname, f"{value} {line.strip()}")
            continue
        hname, sep, value = line.partition(":")
        if sep:
            key = hname.strip().lower()
            headers.append((COMPACT.get(key, key), value.strip()))
    return tuple(headers)


@dataclass(frozen=True)
class TracedMessage(ParsedHead):
    """One message of a SIPp ``-trace_msg`` log: whether SIPp sent or received it, its
    start line and its headers (names lowercased, compact forms expanded), in order."""

    sent: bool
    start: str
    headers: tuple[tuple[str, str], ...]


#: a -trace_msg block: a dashes-and-timestamp line, the direction line, a blank line,
#: then the message (up to the next block)
TRACE_BLOCK = re.compile(
    r"^-{10,} [^\n]*\nUDP message (sent|received) [^\n]*\n\n(.*?)(?=^-{10,} |\Z)",
    re.MULTILINE | re.DOTALL,
)


def sipp_trace(path: Path) -> list[TracedMessage]:
    """Every message of the SIPp ``-trace_msg`` log at ``path`` in order (empty when
    there is none: SIPp writes it as it goes and flushes it at exit)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    messages: list[TracedMessage] = []
    for match in TRACE_BLOCK.finditer(text.replace("\r\n", "\n")):
        lines = match.group(2).strip("\n").split("\n")
        messages.append(TracedMessage(match.group(1) == "sent", lines[0], header_fields(lines[1:])))
    return messages


def distinct(messages: list[TracedMessage]) -> list[TracedMessage]:
    """``messages`` without repeats of the same start line and CSeq (a retransmission
    that raced its answer)."""
    seen: set[tuple[str, str]] = set()
    kept: list[TracedMessage] = []
    for message in messages:
        key = (message.start, message.one("cseq"))
        if key not in seen:
            seen.add(key)
            kept.append(message)
    return kept


@dataclass(frozen=True)
class SippRun:
    """The outcome of one bounded SIPp client run (``run_sipp``)."""

    returncode: int
    successful: int
    failed: int
    #: every message SIPp sent and received, in order (-trace_msg)
    messages: tuple[TracedMessage, ...]
    output: str

    def received(self) -> list[TracedMessage]:
        return [message for message in self.messages if not message.sent]


def run_sipp(
    services: Services,
    scenario: str,
    proxy_port: int,
    *,
    local_port: int,
    service: str,
    calls: int = 1,
    timeout: float = 10.0,
    extra: Sequence[str] = (),
    local_ip: str = "127.0.0.1",
) -> SippRun:
    """One SIPp client run of ``scenarios/<scenario>`` from 127.0.0.1:``local_port``
    (a fixed port: a user agent whose registered Contact is that address) to the proxy,
    with ``[service]`` = ``service`` (SIPp's ``-s``, e.g. the user to register or to
    call), ``calls`` calls at 10/s, no retransmissions (``-nr``; a lost message ends
    its call after 5 s), every message logged (``-trace_msg``). ``extra`` options go
    before the proxy's address (e.g. ``-au USER -ap PASSWORD`` for a scenario's
    ``[authentication]``); ``local_ip`` is the address SIPp binds (any of 127/8)."""
    tag = f"sipp-{scenario.removesuffix('.xml')}-{service}-{local_port}"
    for n in range(1, 100):  # a fresh name per run: the same port may run twice
        if not (services.workdir / f"{tag}-{n}.msg").exists():
            tag = f"{tag}-{n}"
            break
    messages = services.workdir / f"{tag}.msg"
    stat = services.workdir / f"{tag}.csv"
    errors = services.workdir / f"{tag}.errors"
    argv = [
        *sipp_base(scenario, local_port, local_ip),
        "-s",
        service,
        "-m",
        str(calls),
        "-r",
        "10",
        "-timeout",
        f"{int(timeout)}s",
        "-nr",
        "-recv_timeout",
        "5000",
        "-trace_msg",
        "-message_file",
        str(messages),
        "-trace_stat",
        "-stf",
        str(stat),
        "-trace_err",
        "-error_file",
        str(errors),
        *extra,
        f"127.0.0.1:{proxy_port}",
    ]
    done = run_sipp_client(services, argv, timeout + 30, f"SIPp {scenario} did not finish")
    stats = read_stat(stat) if stat.exists() else {}
    error_text = errors.read_text(encoding="utf-8", errors="replace") if errors.exists() else ""
    return SippRun(
        returncode=done.returncode,
        successful=int(stats.get("SuccessfulCall(C)", "-1")),
        failed=int(stats.get("FailedCall(C)", "-1")),
        messages=tuple(sipp_trace(messages)),
        output=(done.stdout + done.stderr).decode("utf-8", errors="replace")[-3000:]
        + f"\nSIPp errors:\n{error_text[-3000:]}",
    )


# -- NAT tests: the rtpengine daemon, an ng relay, raw UDP user agents -------------------

needs_rtpengine = pytest.mark.skipif(
    shutil.which("rtpengine") is None, reason="rtpengine-daemon is needed (scripts/setup.sh)"
)

#: rtpengine's media ports (``rtpengine`` fixture)
RTP_MIN, RTP_MAX = 41000, 41999
#: seconds a user agent waits for a message
UA_WAIT = 3.0


@dataclass
class RtpEngine:
    """The daemon we started, and an ng client of its own to ask it questions."""

    port: int
    service: Service
    client: NgClient

    def query(self, call_id: str) -> dict[str, bencode.BValue]:
        answer = self.client.request({"command": "query", "call-id": call_id})
        assert answer is not None, f"rtpengine did not answer:\n{self.service.log_tail()}"
        return answer

    def local_ports(self, call_id: str) -> set[int]:
        """The media ports rtpengine opened for ``call_id`` (every stream of every
        tag of its ``query`` answer)."""
        answer = self.query(call_id)
        assert answer.get("result") == b"ok", answer
        found: set[int] = set()
        tags = answer.get("tags")
        assert isinstance(tags, dict)
        for tag in tags.values():
            assert isinstance(tag, dict)
            medias = tag.get("medias", [])
            assert isinstance(medias, list)
            for media in medias:
                assert isinstance(media, dict)
                streams = media.get("streams", [])
                assert isinstance(streams, list)
                for stream in streams:
                    assert isinstance(stream, dict)
                    port = stream.get("local port")
                    if isinstance(port, int):
                        found.add(port)
        return found


@pytest.fixture(scope="module")
def rtpengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtpEngine]:
    """One userspace rtpengine for the file: ng on a free loopback port, media on
    127.0.0.1 in ``RTP_MIN``..``RTP_MAX``, sessions deleted as soon as asked."""
    workdir = tmp_path_factory.mktemp("rtpengine")
    group = Services(workdir)
    (port,) = free_udp_ports(1)
    argv = [
        str(shutil.which("rtpengine")),
        "--foreground",
        "--table=-1",
        "--interface=127.0.0.1",
        f"--listen-ng=127.0.0.1:{port}",
        f"--port-min={RTP_MIN}",
        f"--port-max={RTP_MAX}",
        "--delete-delay=0",
        "--num-threads=2",
        "--log-stderr",
        f"--pidfile={workdir / 'rtpengine.pid'}",
    ]
    service = group.add(
        spawn("rtpengine", argv, workdir / "rtpengine.log", cwd=workdir, stop_signal=signal.SIGTERM)
    )
    try:
        client = NgClient("127.0.0.1", port, timeout=0.2, retries=0)
        if (
            not wait_until(
                lambda: (
                    not service.alive()
                    or client.request({"command": "ping"}) == {"result": b"pong"}
                ),
                10.0,
            )
            or not service.alive()
        ):
            pytest.fail(f"rtpengine did not answer ping:\n{service.log_tail()}")
        yield RtpEngine(port, service, client)
    finally:
        group.stop_all()


class NgTap:
    """A UDP relay between the proxy and rtpengine that records every ng command
    (``<cookie> <bencoded dict>``) the proxy sends, so the commands Kamailio and kcc
    send can be compared. Answers go back to the socket that asked, by cookie. It
    listens on 127.0.0.1:``port`` (a free port by default; the stock cfg's fixed
    ``udp:127.0.0.1:2223`` for tests of the unmodified stock cfg)."""

    def __init__(self, upstream: int, port: int = 0) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", port))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", upstream))
        self.commands: list[dict[str, bencode.BValue]] = []
        self.asked: dict[bytes, tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="ng-tap", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.front.getsockname()[1])

    def run(self) -> None:
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.1)
            for sock in ready:
                if sock is self.front:
                    data, addr = self.front.recvfrom(65535)
                    cookie, _, payload = data.partition(b" ")
                    with contextlib.suppress(bencode.BencodeError):
                        value = bencode.decode(payload)
                        if isinstance(value, dict):
                            with self.lock:
                                self.commands.append(value)
                    self.asked[cookie] = addr
                    self.back.send(data)
                else:
                    data = self.back.recv(65535)
                    addr = self.asked.pop(data.partition(b" ")[0], None)
                    if addr is not None:
                        self.front.sendto(data, addr)

    def for_call(self, call_id: str) -> list[dict[str, bencode.BValue]]:
        """The commands sent for ``call_id``, in order."""
        with self.lock:
            return [c for c in self.commands if c.get("call-id") == call_id.encode()]

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.front.close()
        self.back.close()

    def __enter__(self) -> NgTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Sip:
    """One SIP message as received: start line, headers (name as written, value) in
    order, body."""

    start: str
    headers: tuple[tuple[str, str], ...]
    body: str
    raw: bytes
    #: where it came from
    source: tuple[str, int] = ("", 0)

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3}) ", self.start)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str:
        return "" if self.status is not None else self.start.split(" ", 1)[0]

    @property
    def ruri(self) -> str:
        return self.start.split(" ")[1]

    def all(self, name: str) -> list[str]:
        return [value for hname, value in self.headers if hname.lower() == name.lower()]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, f"{name}: {values} in\n{self.raw.decode(errors='replace')}"
        return values[0]

    def names(self) -> list[str]:
        return [hname for hname, _ in self.headers]


def parse_sip(data: bytes, source: tuple[str, int] = ("", 0)) -> Sip | None:
    text = data.decode("utf-8", errors="replace")
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        return None
    lines = head.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))
    return Sip(lines[0], tuple(headers), body, data, source)


class Ua:
    """A user agent on its own UDP socket on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str, dst: tuple[str, int]) -> None:
        self.sock.sendto(text.encode("utf-8"), dst)

    def receive(self, timeout: float = UA_WAIT) -> Sip | None:
        """The next SIP message (anything else is skipped), None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                return None
            message = parse_sip(data, (str(addr[0]), int(addr[1])))
            if message is not None:
                return message
        return None

    def expect(self, what: str, timeout: float = UA_WAIT) -> Sip:
        """The next message, which must start with ``what`` (a status code or a method)."""
        message = self.receive(timeout)
        assert message is not None, f"nothing received while waiting for {what}"
        if message.status is not None:
            assert str(message.status) == what, message.raw.decode(errors="replace")
        else:
            assert message.method == what, message.raw.decode(errors="replace")
        return message


@pytest.fixture
def alice() -> Iterator[Ua]:
    ua = Ua()
    try:
        yield ua
    finally:
        ua.close()


@pytest.fixture
def bob() -> Iterator[Ua]:
    ua = Ua()
    try:
        yield ua
    finally:
        ua.close()


def request(
    method: str,
    ruri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    route: str | None = None,
    extra: tuple[str, ...] = (),
    body: str = "",
    branch: str | None = None,
) -> str:
    """A request as a user agent sends it (Via with ``;rport``, RFC 3581)."""
    branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP {via};branch={branch};rport",
        *([f"Route: {route}"] if route else []),
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        *([f"Contact: {contact}"] if contact else []),
        *extra,
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines)


def sdp(host: str, port: int, session: int) -> str:
    return (
        f"v=0\r\no=- {session} {session} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
    )


def reply(req: Sip, code: int, reason: str, *, to_tag: str, contact: str, body: str = "") -> str:
    """A UAS reply to ``req`` (its Vias, From, To with ``to_tag``, Call-ID, CSeq,
    Record-Route copied, RFC 3261 §8.2.6.2, §12.1.1)."""
    to = req.one("to")
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in req.all("via")]
    lines += [f"Record-Route: {v}" for v in req.all("record-route")]
    lines += [
        f"From: {req.one('from')}",
        f"To: {to}",
        f"Call-ID: {req.one('call-id')}",
        f"CSeq: {req.one('cseq')}",
        f"Contact: {contact}",
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines)


def top_via_address(message: Sip) -> tuple[str, int]:
    """Where a UAS sends its replies: the top Via's sent-by (RFC 3261 §18.2.2)."""
    match = re.match(r"SIP/2\.0/UDP ([\d.]+):(\d+)", message.all("via")[0])
    assert match is not None, message.all("via")
    return match.group(1), int(match.group(2))


def expected_sdp(session: int, port: int) -> str:
    """An SDP of ``sdp()`` after rtpengine with ``replace-origin
    replace-session-connection``: o= and c= name rtpengine's interface, m= its port,
    and rtpengine adds ``a=sendrecv`` and ``a=rtcp:<port+1>``."""
    return (
        f"v=0\r\no=- {session} {session} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:8 PCMA/8000\r\na=sendrecv\r\na=rtcp:{port + 1}\r\n"
    )


def media_port(message: Sip) -> int:
    match = re.search(r"^m=audio (\d+) ", message.body, re.MULTILINE)
    assert match is not None, message.body
    return int(match.group(1))
