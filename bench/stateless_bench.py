"""Stateless balancer bench: the kcc proxy against Kamailio 5.6 on the same config.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/stateless_bench.py'

(any loopback works; a private network namespace keeps the bench off everyone else's
ports). Issue 5 asks for the proxy's CPU time per call and the highest rate held with
< 1 % failed calls, side by side with Kamailio, with the ratio (goal: CPU per call
within 1.5x of Kamailio's).

What it does, on 127.0.0.1 and free ports only:

1. Builds the config (default ``examples/stateless_rr_var.cfg``) with its ports
   rewritten, into a kcc proxy (``kcc build``) and a Kamailio cfg; starts two SIPp UAS
   backends (``tests/integration/scenarios/uas.xml``).
2. CPU: ``--rounds`` rounds, each running Kamailio then kcc (alternating, so drift in
   the machine's load hits both) at the fixed ``--rate`` for ``--seconds``. The proxy
   is started fresh for each run; its CPU time is the user+system time of the whole
   process tree (supervisor and workers, ``/proc/<pid>/stat`` fields 14-17, reaped
   children included) read just before and just after the SIPp UAC run, per 1000
   calls. The table shows the median over rounds.
3. Capacity: for each implementation, a step search over ``--steps`` rates (each run
   ``--step-seconds`` long) stops at the first rate where >= 1 % of calls fail or SIPp
   could not place them all; the highest rate before that is "held".

Only INVITE and its replies cross the proxy (the chapter's balancer does not
record-route: ACK and BYE go straight to the UAS), as in the field notes' Kamailio
figures (0.040-0.060 ms CPU per call with one worker). SIPp always gets
``-buff_size 4194304``; every run is bounded by ``-m`` and an outer timeout, and
calls that get no answer fail after ``-recv_timeout`` rather than SIPp's 32 s of
retransmissions. The whole run stays under 10 minutes with the defaults.

If the kcc proxy cannot be built or does not serve yet, the bench still runs Kamailio
and prints the kcc column as "missing". It asserts nothing: it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "integration" / "scenarios"
SIPP_BUFF_SIZE = "4194304"
EXAMPLE_LISTEN = "127.0.0.1:5060"
EXAMPLE_BACKENDS = ("127.0.0.1:5081", "127.0.0.1:5082")
ALLOW_DST = "127.0.0.0/8,::1"
IMPLS = ("kamailio", "kcc")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_STEPS = (1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000)


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


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """User + system CPU seconds of ``root`` and every live descendant, plus what their
    reaped children used (``/proc/PID/stat`` utime, stime, cutime, cstime); and the
    root's own share (the supervisor, or Kamailio's main process)."""
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
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(times.get(pid, 0) for pid in tree) / CLK_TCK, times.get(root, 0) / CLK_TCK


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
    workdir: Path
    cfg_text: str
    children: int
    backends: tuple[int, int]
    kcc_module: Path | None  # None: the kcc proxy is not available
    kcc_missing_reason: str = ""


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
        argv += ["-m", "256", "-n", str(setup.children)]
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


def start_uas(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    argv = ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-buff_size", SIPP_BUFF_SIZE, "-nostdin"]
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

    @property
    def failed_ratio(self) -> float:
        return (self.failed + self.calls - self.created) / self.calls

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / max(self.successful, 1) * 1000


def sipp_uac(
    workdir: Path,
    proxy: subprocess.Popen[bytes],
    port: int,
    *,
    calls: int,
    rate: int,
    spread: bool,
) -> Run:
    """One bounded SIPp UAC run through the proxy, with the proxy tree's CPU time."""
    (local,) = free_udp_ports(1)
    stat = workdir / f"uac-{local}.csv"
    argv = ["sipp", "-sf", str(SCENARIOS / "uac.xml"), "-i", "127.0.0.1", "-p", str(local)]
    argv += ["-buff_size", SIPP_BUFF_SIZE, "-nostdin", "-m", str(calls), "-r", str(rate)]
    argv += ["-recv_timeout", "3000", "-timeout", "120s", "-trace_stat", "-stf", str(stat)]
    if spread:
        argv += ["-t", "un", "-max_socket", "8192"]
    argv.append(f"127.0.0.1:{port}")
    before, before_main = tree_cpu_seconds(proxy.pid)
    start = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", type=Path, default=REPO / "examples" / "stateless_rr_var.cfg")
    parser.add_argument("--children", type=int, default=1)
    parser.add_argument("--rate", type=int, default=2000, help="fixed rate for the CPU runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a CPU run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--steps",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        default=DEFAULT_STEPS,
        help="comma-separated rates for the step search",
    )
    parser.add_argument("--step-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    for tool in ("sipp", "kamailio"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/setup.sh installs it)", file=sys.stderr)
            return 2
    spread = args.children > 1  # one source port would reach one SO_REUSEPORT worker
    print(machine())
    print(
        f"config: {args.cfg}, children={args.children}, "
        f"{'per-call source ports (-t un)' if spread else 'one UAC socket'}"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kcc-bench-") as tmp:
        workdir = Path(tmp)
        setup = Setup(
            workdir=workdir,
            cfg_text=args.cfg.read_text(encoding="utf-8"),
            children=args.children,
            backends=(0, 0),
            kcc_module=None,
        )
        first, second = free_udp_ports(2)
        setup.backends = (first, second)
        build_kcc(setup)
        if setup.kcc_module is None:
            print(f"kcc: missing ({setup.kcc_missing_reason})")
        backends = [start_uas(workdir, first), start_uas(workdir, second)]
        try:
            cpu, held, notes = bench(setup, args, spread)
        finally:
            for uas in backends:
                stop(uas, signal.SIGUSR1)
    print_table(args, cpu, held)
    for note in notes:
        print(f"note: {note}")
    print(f"bench time: {time.monotonic() - started:.0f} s")
    return 0


def bench(
    setup: Setup, args: argparse.Namespace, spread: bool
) -> tuple[dict[str, list[Run]], dict[str, int | None], list[str]]:
    cpu: dict[str, list[Run]] = {impl: [] for impl in IMPLS}
    held: dict[str, int | None] = {impl: None for impl in IMPLS}
    notes: list[str] = []
    unavailable: set[str] = set()
    calls = max(int(args.rate * args.seconds), 1)
    for round_no in range(1, args.rounds + 1):
        for impl in IMPLS:
            if impl in unavailable:
                continue
            try:
                with running_proxy(setup, impl) as (proxy, port):
                    run = sipp_uac(
                        setup.workdir, proxy, port, calls=calls, rate=args.rate, spread=spread
                    )
            except UnavailableError as exc:
                unavailable.add(impl)
                notes.append(f"{impl}: {exc}")
                continue
            cpu[impl].append(run)
            print(
                f"  cpu round {round_no} {impl:8} {run.successful}/{calls} calls ok, "
                f"{run.cpu:.2f} s CPU ({run.cpu_main:.2f} s in the main process), "
                f"{run.cpu_per_1000:.3f} s/1000 calls",
                flush=True,
            )
    for impl in IMPLS:
        if impl in unavailable:
            continue
        best: int | None = None
        for rate in args.steps:
            step_calls = max(int(rate * args.step_seconds), 1)
            try:
                with running_proxy(setup, impl) as (proxy, port):
                    run = sipp_uac(
                        setup.workdir, proxy, port, calls=step_calls, rate=rate, spread=spread
                    )
            except UnavailableError as exc:
                notes.append(f"{impl} at {rate}/s: {exc}")
                break
            ok = run.created == step_calls and run.failed_ratio < 0.01
            print(
                f"  step {impl:8} {rate:6}/s: {run.successful}/{step_calls} ok, "
                f"{run.failed_ratio:.2%} failed, {run.wall:.1f} s -> "
                f"{'held' if ok else 'NOT held'}",
                flush=True,
            )
            if not ok:
                break
            best = rate
        else:
            notes.append(f"{impl} held every step rate: the search is capped at {args.steps[-1]}/s")
        held[impl] = best
    return cpu, held, notes


def print_table(
    args: argparse.Namespace, cpu: dict[str, list[Run]], held: dict[str, int | None]
) -> None:
    def median_cpu(impl: str) -> float | None:
        runs = cpu[impl]
        return statistics.median(run.cpu_per_1000 for run in runs) if runs else None

    kam_cpu, kcc_cpu = median_cpu("kamailio"), median_cpu("kcc")
    print()
    print(f"{'':40} {'Kamailio':>12} {'kcc':>12} {'kcc/Kamailio':>13}")
    print(
        f"{f'CPU s per 1000 calls @ {args.rate}/s (median)':40} "
        f"{fmt(kam_cpu, '.3f'):>12} {fmt(kcc_cpu, '.3f'):>12} {ratio(kcc_cpu, kam_cpu):>13}"
    )
    print(
        f"{'CPU ms per call':40} {fmt(kam_cpu, '.4f'):>12} {fmt(kcc_cpu, '.4f'):>12} "
        f"{ratio(kcc_cpu, kam_cpu):>13}"
    )
    kam_rate = float(held["kamailio"]) if held["kamailio"] is not None else None
    kcc_rate = float(held["kcc"]) if held["kcc"] is not None else None
    print(
        f"{'highest rate held, < 1 % failed (calls/s)':40} {fmt(kam_rate, '.0f'):>12} "
        f"{fmt(kcc_rate, '.0f'):>12} {ratio(kcc_rate, kam_rate):>13}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
