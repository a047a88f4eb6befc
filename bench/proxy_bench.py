"""Proxy bench: the kcc proxy against Kamailio 5.6 on the chapter's three balancers.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/proxy_bench.py'

(any loopback works; a private network namespace keeps the bench off everyone else's
ports). Issues 5 and 6 ask for the proxy's CPU time per call and the highest rate held
with < 1 % failed calls, side by side with Kamailio on the same config and ``children``,
in one run, with the ratio; issue 8 adds the failure-routing balancer, response
times and memory. Three benches, one table each:

- ``stateless_rr_var`` (issue 5): ``examples/stateless_rr_var.cfg``; only INVITE and its
  replies cross the proxy (the balancer does not record-route: ACK and BYE go straight
  to the UAS), SIPp ``uac.xml``/``uas.xml``. Field notes: Kamailio spends 0.040-0.060 ms
  of CPU per call with one worker.
- ``stateful_rr`` (issue 6): ``examples/stateful_rr.cfg``; tm relays the INVITE
  statefully and record-routes it, so the whole call INVITE/100/180/200/ACK/BYE/200
  crosses the proxy (ACK and BYE loose-routed), SIPp ``uac_rr.xml``/``uas_rr.xml``.
  Field notes: Kamailio spends 0.22-0.24 ms per full call with one worker and
  saturates one core at ~4,500 calls/s; it needs ``-m 1024`` (MB of shared memory)
  at rate, or tm runs out of memory at ~450 calls/s with 64 MB.
- ``failover_rr`` (issue 8): ``examples/failover_rr.cfg``, the stateful balancer plus
  ``failure_route[MANAGE_FAILURE]``. As in ``tests/integration/test_stateful.py``'s
  ``test_backend_500_calls_complete_on_the_other``, the backend standing for the cfg's
  5081 answers every INVITE 500 (``uas_500.xml``) and the other one completes calls
  (``uas_rr.xml``): round robin sends every other call to the failing one first, tm
  ACKs its 500 and the failure route relays the INVITE to the other backend, so half
  the calls take two INVITE transactions (one failed over). SIPp ``uac_rr.xml``;
  Kamailio ``-m 1024`` as for ``stateful_rr``.

What it does per bench, on 127.0.0.1 and free ports only:

1. Builds the config with its ports rewritten into a kcc proxy (``kcc build``) and a
   Kamailio cfg; starts two fresh SIPp UAS backends.
2. CPU: ``--rounds`` rounds, each running Kamailio then kcc (A B A B, so drift in the
   machine's load hits both) at the bench's fixed rate for ``--seconds``. The proxy is
   started fresh for each run; its CPU time is the user+system time of the whole
   process tree (supervisor and workers, ``/proc/<pid>/stat`` fields 14-17, reaped
   children included) read just before and just after the SIPp UAC run, per
   successful call. The same runs give SIPp's response time of each call, INVITE ->
   200 OK (``-trace_rtt`` on a copy of the UAC scenario whose 200 carries
   ``rtd="true"``; whole milliseconds, SIPp's resolution: the table shows p50, p99
   and the mean), and the peak memory of the proxy tree: the sum of its processes'
   PSS, sampled every 0.25 s (``MemorySampler``). The table shows the median over
   rounds with min-max.
3. Capacity: a step search over the bench's rates (each run ``--step-seconds`` long),
   again alternating Kamailio and kcc at each rate; an implementation drops out at the
   first rate where >= 1 % of calls fail or SIPp could not place them all, and the
   highest rate before that is "held".

SIPp always gets ``-buff_size 4194304``; every run is bounded by ``-m`` and an outer
timeout, and calls that get no answer fail after ``-recv_timeout`` rather than SIPp's
32 s of retransmissions. The three benches together take about 8 minutes with the
defaults (2 cores); ``--quick`` (one CPU round, shorter runs, fewer steps) about 2.

If the kcc proxy cannot be built or does not serve, the bench still runs Kamailio and
prints the kcc column as "missing". It asserts nothing: it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "integration" / "scenarios"
SIPP_BUFF_SIZE = "4194304"
EXAMPLE_LISTEN = "127.0.0.1:5060"
EXAMPLE_BACKENDS = ("127.0.0.1:5081", "127.0.0.1:5082")
ALLOW_DST = "127.0.0.0/8,::1"
IMPLS = ("kamailio", "kcc")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Profile:
    """One bench: a config, the SIPp scenarios that drive it, its rates and the shared
    memory Kamailio gets (``-m``, MB)."""

    name: str
    cfg: Path
    uac: str
    uas: tuple[str, str]  # the scenario of each backend (the cfg's 5081, 5082)
    rate: int  # fixed rate of the CPU runs
    steps: tuple[int, ...]  # rates of the step search, ascending
    quick_steps: tuple[int, ...]
    kamailio_shm_mb: int


PROFILES = {
    "stateless_rr_var": Profile(
        name="stateless_rr_var",
        cfg=REPO / "examples" / "stateless_rr_var.cfg",
        uac="uac.xml",
        uas=("uas.xml", "uas.xml"),
        rate=2000,
        steps=(1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000),
        quick_steps=(1000, 3000, 6000, 10000),
        kamailio_shm_mb=256,
    ),
    "stateful_rr": Profile(
        name="stateful_rr",
        cfg=REPO / "examples" / "stateful_rr.cfg",
        uac="uac_rr.xml",
        uas=("uas_rr.xml", "uas_rr.xml"),
        rate=500,
        steps=(250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 6000),
        quick_steps=(250, 500, 1000, 2000, 4000),
        kamailio_shm_mb=1024,
    ),
    "failover_rr": Profile(
        name="failover_rr",
        cfg=REPO / "examples" / "failover_rr.cfg",
        uac="uac_rr.xml",
        uas=("uas_500.xml", "uas_rr.xml"),
        rate=500,
        steps=(250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000),
        quick_steps=(250, 500, 1000, 2000, 4000),
        kamailio_shm_mb=1024,
    ),
}


class UnavailableError(Exception):
    """The implementation cannot be run (not built, not serving): its column is missing."""


# -- processes and ports ----------------------------------------------------------------


def free_udp_ports(count: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def udp_bound(port: int) -> bool:
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if len(fields) > 1 and fields[1].endswith(suffix):
                    return True
    return False


def exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, without reaping it (``WNOWAIT``)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def exit_on_sigterm() -> None:
    """Make SIGTERM (``kill PID``, a CI time-out) raise SystemExit, so the ``finally``
    blocks stop every process the bench started: by default Python dies at once and
    leaves its proxies, SIPp peers and Kamailio running."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def stop(popen: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop one process we started, by its PID: ``sig``, up to 5 s to exit, then SIGKILL
    to what is left of its process group (its own session: only our processes), killed
    before the leader is reaped so the group id cannot have been reused. Kamailio 5.6
    with cfgutils locks sometimes deadlocks in its SIGTERM shutdown, workers included."""
    if popen.returncode is None:
        if not exited(popen.pid):
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(sig)
            deadline = time.monotonic() + 5
            while not exited(popen.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(timeout=10)


def _proc_table() -> tuple[dict[int, int], dict[int, int]]:
    """(parent of each live process, its CPU ticks: ``/proc/PID/stat`` utime, stime,
    cutime, cstime, so reaped children count too)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(rest[1])
        times[pid] = sum(int(value) for value in rest[11:15])
    return parents, times


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """User + system CPU seconds of ``root`` and every live descendant, plus what their
    reaped children used (``/proc/PID/stat`` utime, stime, cutime, cstime); and the
    root's own share (the supervisor, or Kamailio's main process)."""
    parents, times = _proc_table()
    tree = _descendants(root, parents)
    return sum(times.get(pid, 0) for pid in tree) / CLK_TCK, times.get(root, 0) / CLK_TCK


def tree_pss_kb(root: int) -> int:
    """Memory of ``root``'s process tree now: the sum of each process's PSS (``Pss:`` of
    ``/proc/PID/smaps_rollup``, kB). PSS charges a page shared by n processes 1/n to
    each, so the sum counts Kamailio's shared memory (mapped by every child) and the
    copy-on-write pages kcc's workers share with the supervisor once, where summed
    RSS would count them once per process. Only touched pages count: Kamailio's
    ``-m`` reservation costs nothing until tm uses it."""
    total = 0
    for pid in _descendants(root, _proc_table()[0]):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
        except OSError:
            continue  # exited meanwhile
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


class MemorySampler:
    """Samples ``tree_pss_kb(root)`` every ``interval`` seconds in a thread while the
    ``with`` block runs (once more at the end); ``peak_kb`` is the highest sample.
    The kernel keeps no peak of PSS (``VmHWM`` is per process and counts shared pages
    in full), hence the sampling; 0.25 s is short next to the runs' seconds and
    reading ``smaps_rollup`` costs the reader, not the proxy, its CPU time."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root = root
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (monotonic time, kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak_kb(self) -> int:
        return max((kb for _, kb in self.samples), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), tree_pss_kb(self.root)))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.samples.append((time.monotonic(), tree_pss_kb(self.root)))


def options_answered(port: int, timeout: float) -> bool:
    """Whether an OPTIONS to 127.0.0.1:``port`` gets any SIP reply within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        call_id = secrets.token_hex(8)
        request = (
            f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id};rport\r\n"
            f"From: <sip:bench@127.0.0.1>;tag={call_id}\r\n"
            f"To: <sip:ping@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode("ascii")
        sock.sendto(request, ("127.0.0.1", port))
        sock.settimeout(timeout)
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 ")
        except TimeoutError:
            return False


# -- the proxies ------------------------------------------------------------------------


@dataclass
class Setup:
    profile: Profile
    workdir: Path
    cfg_text: str
    children: int
    backends: tuple[int, int]
    kcc_module: Path | None  # None: the kcc proxy is not available
    kcc_missing_reason: str = ""


def make_setup(profile: Profile, workdir: Path, children: int) -> Setup:
    """A bench's config on two free backend ports in ``workdir``, built by kcc
    (``kcc_module`` None, with the reason, when that failed)."""
    first, second = free_udp_ports(2)
    setup = Setup(
        profile=profile,
        workdir=workdir,
        cfg_text=profile.cfg.read_text(encoding="utf-8"),
        children=children,
        backends=(first, second),
        kcc_module=None,
    )
    build_kcc(setup)
    return setup


def rewrite_ports(text: str, listen_port: int, backends: Sequence[int]) -> str:
    if EXAMPLE_LISTEN not in text:
        raise SystemExit(f"the config does not listen on {EXAMPLE_LISTEN}")
    text = text.replace(EXAMPLE_LISTEN, f"127.0.0.1:{listen_port}")
    for old, port in zip(EXAMPLE_BACKENDS, backends, strict=True):
        text = text.replace(old, f"127.0.0.1:{port}")
    return text


def build_kcc(setup: Setup) -> None:
    """``kcc build`` the config once (the listen port is overridden with ``--listen``
    at each start) and check the module is a runnable proxy (``--help`` names
    ``--listen``); otherwise record why the kcc column is missing."""
    cfg = setup.workdir / "kcc.cfg"
    cfg.write_text(rewrite_ports(setup.cfg_text, 5060, setup.backends), encoding="utf-8")
    module = setup.workdir / "proxy.py"
    kcc = Path(sys.executable).with_name("kcc")
    built = subprocess.run(
        [str(kcc), "build", str(cfg), "-o", str(module)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        setup.kcc_missing_reason = f"kcc build failed: {built.stderr.strip()[:300]}"
        return
    helped = subprocess.run(
        [sys.executable, str(module), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if helped.returncode != 0 or "--listen" not in helped.stdout + helped.stderr:
        setup.kcc_missing_reason = "the generated module is not a runnable proxy yet"
        return
    setup.kcc_module = module


@contextlib.contextmanager
def running_proxy(setup: Setup, impl: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start ``impl`` on a free port; yields (process, port); stops it by PID."""
    (port,) = free_udp_ports(1)
    rundir = Path(tempfile.mkdtemp(prefix=f"{impl}-", dir=setup.workdir))
    if impl == "kamailio":
        cfg = rundir / "proxy.cfg"
        cfg.write_text(rewrite_ports(setup.cfg_text, port, setup.backends), encoding="utf-8")
        argv = ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(rundir), "-w", str(rundir)]
        argv += ["-m", str(setup.profile.kamailio_shm_mb), "-n", str(setup.children)]
    else:
        if setup.kcc_module is None:
            raise UnavailableError(setup.kcc_missing_reason)
        argv = [sys.executable, str(setup.kcc_module), "--listen", f"udp:127.0.0.1:{port}"]
        argv += ["--children", str(setup.children), "--allow-dst", ALLOW_DST]
    log = rundir / "proxy.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 20
        while not options_answered(port, 0.3):
            if exited(popen.pid) or time.monotonic() > deadline:
                tail = log.read_text(encoding="utf-8", errors="replace")[-500:]
                raise UnavailableError(f"{impl} did not start serving: {tail}")
        yield popen, port
    finally:
        stop(popen)


# -- SIPp -------------------------------------------------------------------------------


def start_uas(
    workdir: Path, port: int, scenario: str | Path, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """A SIPp UAS on 127.0.0.1:``port``: ``scenario`` is a file of the integration
    tests' scenarios, or a path; ``extra`` more SIPp options."""
    path = scenario if isinstance(scenario, Path) else SCENARIOS / scenario
    argv = ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-buff_size", SIPP_BUFF_SIZE, "-nostdin", *extra]
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"uas-{port}.err").open("wb"),
        cwd=workdir,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not udp_bound(port):
        if exited(popen.pid) or time.monotonic() > deadline:
            stop(popen)
            raise SystemExit(f"SIPp UAS on port {port} did not start")
        time.sleep(0.05)
    return popen


@dataclass(frozen=True)
class Run:
    calls: int  # requested
    created: int
    successful: int
    failed: int
    cpu: float  # proxy tree CPU seconds over the run
    cpu_main: float  # of which the root process (supervisor / Kamailio main)
    wall: float
    rtt_ms: tuple[int, ...] = ()  # SIPp's INVITE -> 200 OK time of each call, whole ms
    peak_pss_kb: int = 0  # highest sampled PSS of the proxy tree during the run

    @property
    def rtt_p50(self) -> float | None:
        return percentile(self.rtt_ms, 50)

    @property
    def rtt_p99(self) -> float | None:
        return percentile(self.rtt_ms, 99)

    @property
    def rtt_mean(self) -> float | None:
        return statistics.fmean(self.rtt_ms) if self.rtt_ms else None

    @property
    def failed_ratio(self) -> float:
        return (self.failed + self.calls - self.created) / self.calls

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu / max(self.successful, 1) * 1000


def percentile(values: Sequence[int], pct: float) -> float | None:
    """The nearest-rank ``pct`` percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def timed_scenario(workdir: Path, scenario: str, name: str) -> Path:
    """A copy of ``scenario`` named ``name`` whose first ``<recv response="200"`` carries
    ``rtd="true"``: SIPp's response-time timer 1 starts with the call (the INVITE) and
    stops there, so each call's figure is INVITE -> 200 OK through the proxy (two
    hops each way plus the UAS's immediate answer)."""
    text = (SCENARIOS / scenario).read_text(encoding="iso-8859-1")
    marked = text.replace('<recv response="200"', '<recv response="200" rtd="true"', 1)
    if marked == text:
        raise SystemExit(f'{scenario}: no <recv response="200"> to time')
    path = workdir / name
    path.write_text(marked, encoding="iso-8859-1")
    return path


def read_rtts(workdir: Path, stem: str) -> tuple[int, ...]:
    """The response times SIPp wrote with ``-trace_rtt`` (``STEM_PID_rtt.csv``, lines
    ``date_ms;response_time_ms;rtd_no``). Measured with SIPp 3.6.1: the response time
    is a whole number of milliseconds (SIPp's clock ticks in ms), so on loopback most
    calls read 0 or 1; the mean of many such samples is still a fair sub-ms estimate."""
    values: list[int] = []
    for path in workdir.glob(f"{stem}_*_rtt.csv"):
        for line in path.read_text(encoding="ascii", errors="replace").splitlines()[1:]:
            fields = line.split(";")
            if len(fields) >= 3 and fields[2].strip() == "1":
                with contextlib.suppress(ValueError):
                    values.append(int(float(fields[1])))
    return tuple(values)


def sipp_uac(
    workdir: Path,
    proxy: subprocess.Popen[bytes],
    port: int,
    *,
    calls: int,
    rate: int,
    spread: bool,
    scenario: str,
) -> Run:
    """One bounded SIPp UAC run through the proxy, with the proxy tree's CPU time, its
    peak PSS (sampled) and SIPp's response time of every call (``-trace_rtt``)."""
    (local,) = free_udp_ports(1)
    stat = workdir / f"uac-{local}.csv"
    timed = timed_scenario(workdir, scenario, f"uac-{local}.xml")
    argv = ["sipp", "-sf", str(timed), "-i", "127.0.0.1", "-p", str(local)]
    argv += ["-buff_size", SIPP_BUFF_SIZE, "-nostdin", "-m", str(calls), "-r", str(rate)]
    argv += ["-recv_timeout", "3000", "-timeout", "120s", "-trace_stat", "-stf", str(stat)]
    argv += ["-trace_rtt", "-rtt_freq", "100"]
    if spread:
        argv += ["-t", "un", "-max_socket", "8192"]
    argv.append(f"127.0.0.1:{port}")
    before, before_main = tree_cpu_seconds(proxy.pid)
    start = time.monotonic()
    with MemorySampler(proxy.pid) as memory, contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=workdir,
            timeout=150,
            check=False,
        )
    wall = time.monotonic() - start
    after, after_main = tree_cpu_seconds(proxy.pid)
    last: dict[str, str] = {}
    if stat.exists():
        with stat.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        if len(rows) >= 2:
            last = dict(zip(rows[0], rows[-1], strict=False))
    return Run(
        calls=calls,
        created=int(last.get("TotalCallCreated", "0")),
        successful=int(last.get("SuccessfulCall(C)", "0")),
        failed=int(last.get("FailedCall(C)", "0")),
        cpu=after - before,
        cpu_main=after_main - before_main,
        wall=wall,
        rtt_ms=read_rtts(workdir, timed.stem),
        peak_pss_kb=memory.peak_kb,
    )


# -- the bench --------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        return lines[0] if lines else "?"

    return "\n".join(
        [
            f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {model}",
            f"kernel:  {platform.release()}",
            f"python:  {platform.python_version()} ({sys.executable})",
            f"kamailio: {first_line(['kamailio', '-v'])}",
            f"sipp:    {first_line(['sipp', '-v'])}",
        ]
    )


def fmt(value: float | None, spec: str) -> str:
    return "missing" if value is None else format(value, spec)


def ratio(kcc: float | None, kam: float | None) -> str:
    if kcc is None or kam is None or kam == 0:
        return "-"
    return f"{kcc / kam:.2f}x"


def rate_list(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of rates: {text!r}") from None
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError(f"rates must be positive: {text!r}")
    return rates


def profile_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in PROFILES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown bench {', '.join(unknown) or repr(text)}; known: {', '.join(PROFILES)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--benches",
        type=profile_list,
        default=tuple(PROFILES),
        help=f"comma-separated, from {', '.join(PROFILES)} (default: all)",
    )
    parser.add_argument("--children", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="one CPU round, short runs, four steps: < 3 min"
    )
    parser.add_argument(
        "--cfg", type=Path, help="another config for a single bench (same ports as the example)"
    )
    parser.add_argument("--rate", type=int, help="fixed rate for the CPU runs (bench default)")
    parser.add_argument("--seconds", type=float, help="length of a CPU run (default 5, quick 3)")
    parser.add_argument("--rounds", type=int, help="CPU rounds (default 3, quick 1)")
    parser.add_argument("--steps", type=rate_list, help="comma-separated step-search rates")
    parser.add_argument("--step-seconds", type=float, help="step run length (default 4, quick 2)")
    args = parser.parse_args(argv)
    if args.cfg is not None and len(args.benches) != 1:
        parser.error("--cfg replaces the config of one bench: give --benches NAME too")
    if args.children < 1 or (args.rate is not None and args.rate < 1):
        parser.error("--children and --rate must be positive")
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 5.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.step_seconds is None:
        args.step_seconds = 2.0 if args.quick else 4.0
    if args.seconds <= 0 or args.step_seconds <= 0 or args.rounds < 1:
        parser.error("--seconds, --step-seconds and --rounds must be positive")
    return args


@dataclass
class Result:
    profile: Profile
    rate: int
    cpu: dict[str, list[Run]] = field(default_factory=lambda: {impl: [] for impl in IMPLS})
    held: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(IMPLS))
    notes: list[str] = field(default_factory=list)
    searched: set[str] = field(default_factory=set)  # took part in the step search
    first_step: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("sipp", "kamailio"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/setup.sh installs it)", file=sys.stderr)
            return 2
    print(machine())
    started = time.monotonic()
    results = run_benches(args)
    for result in results:
        print_table(result, args.children)
    print(f"\nbench time: {time.monotonic() - started:.0f} s")
    return 0


def run_benches(args: argparse.Namespace) -> list[Result]:
    """Every bench of ``args.benches`` in turn (``args`` as ``parse_args`` makes it),
    printing progress; their results, for ``print_table`` or ``summary_rows``."""
    spread = args.children > 1  # one source port would reach one SO_REUSEPORT worker
    print(
        f"children={args.children}, "
        f"{'per-call source ports (-t un)' if spread else 'one UAC socket'}"
        f"{', quick' if args.quick else ''}"
    )
    results: list[Result] = []
    for name in args.benches:
        profile = PROFILES[name]
        if args.cfg is not None:
            profile = dataclasses.replace(profile, cfg=args.cfg)
        if args.steps is not None:
            steps = args.steps
        else:
            steps = profile.quick_steps if args.quick else profile.steps
        result = Result(profile=profile, rate=args.rate or profile.rate)
        print(f"\n== {profile.name}: {profile.cfg}", flush=True)
        run_profile(result, args, spread, steps)
        results.append(result)
    return results


def run_profile(
    result: Result, args: argparse.Namespace, spread: bool, steps: tuple[int, ...]
) -> None:
    """Build, start fresh backends (a failed call leaves a UAS call waiting forever, so
    none is carried from one bench to the next), run the CPU rounds and the search."""
    profile = result.profile
    with tempfile.TemporaryDirectory(prefix=f"kcc-bench-{profile.name}-") as tmp:
        workdir = Path(tmp)
        setup = make_setup(profile, workdir, args.children)
        first, second = setup.backends
        if setup.kcc_module is None:
            print(f"kcc: missing ({setup.kcc_missing_reason})")
        backends: list[subprocess.Popen[bytes]] = []
        try:
            for port, scenario in zip((first, second), profile.uas, strict=True):
                backends.append(start_uas(workdir, port, scenario))
            bench(setup, result, args, spread, steps)
        finally:
            for uas in backends:
                stop(uas, signal.SIGUSR1)


def one_run(setup: Setup, impl: str, *, calls: int, rate: int, spread: bool) -> Run:
    with running_proxy(setup, impl) as (proxy, port):
        return sipp_uac(
            setup.workdir,
            proxy,
            port,
            calls=calls,
            rate=rate,
            spread=spread,
            scenario=setup.profile.uac,
        )


def bench(
    setup: Setup,
    result: Result,
    args: argparse.Namespace,
    spread: bool,
    steps: tuple[int, ...],
) -> None:
    unavailable: set[str] = set()
    calls = max(int(result.rate * args.seconds), 1)
    for round_no in range(1, args.rounds + 1):
        for impl in IMPLS:
            if impl in unavailable:
                continue
            try:
                run = one_run(setup, impl, calls=calls, rate=result.rate, spread=spread)
            except UnavailableError as exc:
                unavailable.add(impl)
                result.notes.append(f"{impl}: {exc}")
                continue
            result.cpu[impl].append(run)
            print(
                f"  cpu round {round_no} {impl:8} {run.successful}/{calls} calls ok, "
                f"{run.cpu:.2f} s CPU ({run.cpu_main:.2f} s in the main process), "
                f"{run.cpu_ms_per_call:.4f} ms/call",
                flush=True,
            )
    searching = [impl for impl in IMPLS if impl not in unavailable]
    result.searched.update(searching)
    result.first_step = steps[0]
    for rate in steps:
        step_calls = max(int(rate * args.step_seconds), 1)
        for impl in list(searching):
            try:
                run = one_run(setup, impl, calls=step_calls, rate=rate, spread=spread)
            except UnavailableError as exc:
                result.notes.append(f"{impl} at {rate}/s: {exc}")
                searching.remove(impl)
                continue
            ok = run.created == step_calls and run.failed_ratio < 0.01
            print(
                f"  step {impl:8} {rate:6}/s: {run.successful}/{step_calls} ok, "
                f"{run.failed_ratio:.2%} failed, {run.wall:.1f} s -> "
                f"{'held' if ok else 'NOT held'}",
                flush=True,
            )
            if ok:
                result.held[impl] = rate
            else:
                searching.remove(impl)
        if not searching:
            break
    for impl in searching:
        result.notes.append(f"{impl} held every step rate: the search is capped at {steps[-1]}/s")


def spread_text(values: Sequence[float], spec: str) -> str:
    """``median (min-max)`` of ``values``, or just the value when there is one."""
    if not values:
        return "missing"
    median = format(statistics.median(values), spec)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), spec)}-{format(max(values), spec)})"


def summary_rows(result: Result) -> list[tuple[str, str, str, str]]:
    """The table of one bench: (what, Kamailio, kcc, kcc/Kamailio) per row. Figures
    from the CPU runs are the median over rounds with min-max."""

    def per_run(impl: str, value: Callable[[Run], float | None]) -> list[float]:
        return [v for v in (value(run) for run in result.cpu[impl]) if v is not None]

    def row(label: str, value: Callable[[Run], float | None], spec: str) -> tuple[str, ...]:
        kam, kcc = per_run("kamailio", value), per_run("kcc", value)
        kam_med = statistics.median(kam) if kam else None
        kcc_med = statistics.median(kcc) if kcc else None
        return (label, spread_text(kam, spec), spread_text(kcc, spec), ratio(kcc_med, kam_med))

    rounds = max(len(result.cpu["kamailio"]), len(result.cpu["kcc"]))
    at = f"@ {result.rate}/s, {rounds} rounds"
    rows = [
        row(f"CPU ms per call {at}", lambda run: run.cpu_ms_per_call, ".4f"),
        row(f"INVITE->200 p50 ms {at}", lambda run: run.rtt_p50, ".0f"),
        row(f"INVITE->200 p99 ms {at}", lambda run: run.rtt_p99, ".0f"),
        row(f"INVITE->200 mean ms {at}", lambda run: run.rtt_mean, ".3f"),
        row(f"peak PSS MB {at}", lambda run: run.peak_pss_kb / 1024, ".1f"),
    ]

    def held(impl: str) -> tuple[float | None, str]:
        rate = result.held[impl]
        if rate is not None:
            return float(rate), str(rate)
        if impl in result.searched:
            return None, f"< {result.first_step}"
        return None, "missing"

    (kam_rate, kam_text), (kcc_rate, kcc_text) = held("kamailio"), held("kcc")
    label = "highest rate held, < 1 % failed (calls/s)"
    rows.append((label, kam_text, kcc_text, ratio(kcc_rate, kam_rate)))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def result_notes(result: Result) -> list[str]:
    notes: list[str] = []
    for impl in IMPLS:
        lossy = sum(1 for run in result.cpu[impl] if run.successful < run.calls)
        if lossy:
            notes.append(
                f"{impl}: {lossy} of {len(result.cpu[impl])} CPU runs lost calls "
                f"({sum(run.calls - run.successful for run in result.cpu[impl])} calls); "
                "CPU is per successful call"
            )
    return notes + result.notes


def print_table(result: Result, children: int) -> None:
    rows = summary_rows(result)
    width = max(len(r[0]) for r in rows)
    kam_w = max(10, *(len(r[1]) for r in rows))
    kcc_w = max(10, *(len(r[2]) for r in rows))
    print()
    print(f"{result.profile.name} (children={children})")
    print(f"{'':{width}} {'Kamailio':>{kam_w}} {'kcc':>{kcc_w}} {'kcc/Kamailio':>13}")
    for label, kam, kcc, rat in rows:
        print(f"{label:{width}} {kam:>{kam_w}} {kcc:>{kcc_w}} {rat:>13}")
    for note in result_notes(result):
        print(f"note: {note}")


if __name__ == "__main__":
    exit_on_sigterm()
    raise SystemExit(main())
