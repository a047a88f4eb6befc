"""Issue 8's one-command bench: every figure, kcc next to Kamailio 5.6, into ``RESULTS.md``.

    make bench          # = bash scripts/setup.sh, then in a private network namespace:
    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/run_all.py'
    ... bench/run_all.py --quick --output /tmp/r.md   # a smoke run, about 3 minutes

Everything runs on 127.0.0.1 (``unshare -n`` keeps it off everyone else's ports), every
process is started by this script (or ``proxy_bench``) and stopped by its PID, every run
is bounded (SIPp ``-m`` and ``-timeout``, subprocess timeouts). In order:

1. **Proxies** (``proxy_bench``, ``children=1``, one SIPp UAC socket): the stateless
   balancer ``stateless_rr_var``, the stateful ``stateful_rr`` and the failure-routing
   ``failover_rr`` (one backend answers every INVITE 500: half the calls fail over).
   For each, three CPU rounds alternating Kamailio and kcc (A B A B) at the bench's
   fixed rate: CPU ms per call of the proxy's process tree, SIPp's INVITE -> 200 OK
   response time (p50, p99 and mean; SIPp counts whole milliseconds) and the peak PSS
   of the tree (sampled every 0.25 s); then the step search for the highest rate held
   with < 1 % failed calls. Figures are the median over rounds with min-max.
2. **Transactions in flight**: ``stateful_rr`` with two slow backends
   (``bench/scenarios/uas_slow.xml``: 180 at once, 200 OK after ``HOLD_MS``); SIPp
   places ``INFLIGHT_CALLS`` INVITEs at ``INFLIGHT_RATE``/s, so from the last INVITE
   (``INFLIGHT_CALLS / INFLIGHT_RATE`` s) until the first 200 (``HOLD_MS``) every
   INVITE transaction is open in the proxy at once. The proxy tree's PSS is sampled
   every 0.5 s; the figure is the highest sample in that window (the peak over the
   whole run, when the ACKs and BYEs add their own transactions, is shown too), next
   to the idle PSS before the run and SIPp's highest count of open calls. Kamailio
   gets ``-m 1024`` (MB of shared memory, the stateful bench's): tm keeps each
   transaction (the INVITE, the branch's request and its reply) in shared memory;
   the default 64 MB runs out at about 450 calls/s of full calls (proxy_bench's field
   note), and PSS counts only the pages tm touched, so the larger reservation costs
   nothing in the figure. One run per implementation.
3. **Compiler**: wall time of fresh ``kcc check`` and ``kcc build`` processes
   (interpreter start-up and imports included; the build with an empty black cache,
   i.e. cold) on the stock ``/etc/kamailio/kamailio.cfg`` and on the 10k-line config
   ``build_bench.synthesize(10000)`` makes; median of ``COMPILE_RUNS`` with min-max.
4. **SIP parser**: ``sip_parser_bench``'s cases on a typical INVITE and 200 OK (parse,
   parse + one Via edit + serialize, parse + validate), messages per second on one
   core, median of 7 runs of 20,000 with min-max.

Then the goals of issue 8 with the measured ratios (CPU per call <= 1.0x Kamailio's on
the stateful and failure-routing balancers, <= 1.5x on the stateless one; held rate
>= Kamailio's on the stateful balancer; PSS with 10,000 transactions in flight
<= 150 MB; >= 150,000 INVITE parses/s). It prints every table and writes the same
tables as Markdown, with the machine (CPU, cores, memory, kernel, Python, Kamailio,
SIPp, date) and the total time, to ``--output`` (``bench/RESULTS.md``). It reports;
it asserts nothing. The defaults take about 13 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import build_bench  # noqa: E402
import proxy_bench  # noqa: E402
import sip_parser_bench  # noqa: E402

REPO = BENCH.parent
STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
SLOW_UAS = BENCH / "scenarios" / "uas_slow.xml"
INFLIGHT_CALLS = 10_000
INFLIGHT_RATE = 500
HOLD_MS = 25_000
COMPILE_RUNS = 3
COMPILE_TIMEOUT_S = 300.0
PROXY_BENCHES = ("stateless_rr_var", "stateful_rr", "failover_rr")

Row = tuple[str, ...]


@dataclass
class Section:
    """One table: a title, its column heads, rows and notes under it."""

    title: str
    head: Row
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [
            max(len(row[i]) for row in [self.head, *self.rows]) for i in range(len(self.head))
        ]
        lines = [f"\n{self.title}"]
        for row in [self.head, *self.rows]:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        lines.append("| " + " | ".join(self.head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(self.head) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def spread(values: Sequence[float], spec: str) -> str:
    return proxy_bench.spread_text(values, spec)


# -- the machine ------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return lines[0] if lines else "?"


def machine() -> list[tuple[str, str]]:
    """(what, value) lines describing where the figures were measured."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return [
        ("CPU", model),
        ("cores", str(os.cpu_count())),
        ("memory", memory),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("Kamailio", _first_line(["kamailio", "-v"])),
        ("SIPp", _first_line(["sipp", "-v"])),
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


# -- 1. the proxies ---------------------------------------------------------------------


def proxy_sections(quick: bool) -> tuple[list[Section], list[proxy_bench.Result]]:
    argv = ["--benches", ",".join(PROXY_BENCHES), "--children", "1"]
    results = proxy_bench.run_benches(proxy_bench.parse_args(argv + (["--quick"] if quick else [])))
    sections = []
    for result in results:
        section = Section(
            f"Proxy: {result.profile.name} (children=1)",
            ("", "Kamailio", "kcc", "kcc/Kamailio"),
        )
        section.rows = list(proxy_bench.summary_rows(result))
        section.notes = proxy_bench.result_notes(result)
        sections.append(section)
    return sections, results


# -- 2. transactions in flight ----------------------------------------------------------


@dataclass
class InFlight:
    impl: str
    calls: int
    idle_kb: int = 0
    window_kb: int | None = None  # highest PSS while every INVITE was open
    peak_kb: int = 0  # over the whole run
    open_calls: int = 0  # SIPp's highest CurrentCall
    successful: int = 0
    note: str = ""


def inflight_run(setup: proxy_bench.Setup, impl: str, calls: int, hold_ms: int) -> InFlight:
    """One implementation through ``stateful_rr`` and the slow backends (module doc)."""
    out = InFlight(impl, calls)
    try:
        with proxy_bench.running_proxy(setup, impl) as (proxy, port):
            out.idle_kb = proxy_bench.tree_pss_kb(proxy.pid)
            (local,) = proxy_bench.free_udp_ports(1)
            stat = setup.workdir / f"inflight-{impl}.csv"
            argv = ["sipp", "-sf", str(proxy_bench.SCENARIOS / "uac_rr.xml")]
            argv += ["-i", "127.0.0.1", "-p", str(local), "-nostdin"]
            argv += ["-buff_size", proxy_bench.SIPP_BUFF_SIZE, "-m", str(calls)]
            argv += ["-r", str(INFLIGHT_RATE), "-l", str(2 * calls)]
            argv += ["-recv_timeout", str(hold_ms + 30_000), "-timeout", "300s"]
            argv += ["-trace_stat", "-stf", str(stat), "-fd", "1", f"127.0.0.1:{port}"]
            place_s = calls / INFLIGHT_RATE
            start = time.monotonic()
            with (
                proxy_bench.MemorySampler(proxy.pid, interval=0.5) as memory,
                contextlib.suppress(subprocess.TimeoutExpired),
            ):
                subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    cwd=setup.workdir,
                    timeout=place_s + hold_ms / 1000 + 330,
                    check=False,
                )
            window = [
                kb
                for at, kb in memory.samples
                if start + place_s + 0.5 <= at <= start + hold_ms / 1000 - 0.5
            ]
            out.window_kb = max(window) if window else None
            out.peak_kb = memory.peak_kb
            out.open_calls, out.successful = _sipp_counts(stat)
    except proxy_bench.UnavailableError as exc:
        out.note = str(exc)[:300]
    return out


def _sipp_counts(stat: Path) -> tuple[int, int]:
    """(highest CurrentCall over SIPp's periodic rows, SuccessfulCall(C) at the end)."""
    if not stat.exists():
        return 0, 0
    with stat.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if len(rows) < 2:
        return 0, 0
    records = [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]
    current = [int(r.get("CurrentCall", "0") or 0) for r in records]
    return max(current), int(records[-1].get("SuccessfulCall(C)", "0") or 0)


def inflight_section(quick: bool) -> tuple[Section, dict[str, InFlight]]:
    calls = 2_000 if quick else INFLIGHT_CALLS
    hold_ms = 8_000 if quick else HOLD_MS
    profile = proxy_bench.PROFILES["stateful_rr"]
    runs: dict[str, InFlight] = {}
    with tempfile.TemporaryDirectory(prefix="kcc-bench-inflight-") as tmp:
        workdir = Path(tmp)
        setup = proxy_bench.make_setup(profile, workdir, children=1)
        first, second = setup.backends
        backends: list[subprocess.Popen[bytes]] = []
        try:
            for port in (first, second):
                extra = ["-d", str(hold_ms), "-l", str(2 * calls)]
                backends.append(proxy_bench.start_uas(workdir, port, SLOW_UAS, extra))
            for impl in proxy_bench.IMPLS:
                print(f"  in flight: {impl}, {calls} INVITEs held {hold_ms} ms ...", flush=True)
                runs[impl] = inflight_run(setup, impl, calls, hold_ms)
                run = runs[impl]
                print(
                    f"  in flight: {impl} idle {run.idle_kb / 1024:.1f} MB, "
                    f"all open {_mb(run.window_kb)} MB, peak {run.peak_kb / 1024:.1f} MB, "
                    f"{run.open_calls} open calls, {run.successful}/{calls} ok {run.note}",
                    flush=True,
                )
        finally:
            for uas in backends:
                proxy_bench.stop(uas, signal.SIGUSR1)
    kam, kcc = runs.get("kamailio"), runs.get("kcc")
    section = Section(
        f"Memory with {calls:,} transactions in flight (stateful_rr, children=1)",
        ("", "Kamailio", "kcc", "kcc/Kamailio"),
    )

    def row(label: str, value: Callable[[InFlight], float | None], spec: str) -> Row:
        kam_v = value(kam) if kam is not None and not kam.note else None
        kcc_v = value(kcc) if kcc is not None and not kcc.note else None
        return (
            label,
            proxy_bench.fmt(kam_v, spec),
            proxy_bench.fmt(kcc_v, spec),
            proxy_bench.ratio(kcc_v, kam_v),
        )

    section.rows = [
        row("PSS idle, MB", lambda r: r.idle_kb / 1024, ".1f"),
        row(
            f"PSS with all {calls:,} INVITEs open, MB",
            lambda r: None if r.window_kb is None else r.window_kb / 1024,
            ".1f",
        ),
        row("PSS peak over the run, MB", lambda r: r.peak_kb / 1024, ".1f"),
        row("highest open calls at the UAC", lambda r: float(r.open_calls), ".0f"),
        row(f"calls completed of {calls:,}", lambda r: float(r.successful), ".0f"),
    ]
    section.notes = [
        f"{INFLIGHT_RATE} INVITEs/s, the backends answer 180 at once and 200 after "
        f"{hold_ms / 1000:.0f} s; one run each; Kamailio with -m "
        f"{profile.kamailio_shm_mb} (MB of shared memory)",
        *(f"{r.impl}: {r.note}" for r in runs.values() if r.note),
    ]
    return section, runs


def _mb(kb: int | None) -> str:
    return "missing" if kb is None else f"{kb / 1024:.1f}"


# -- 3. the compiler --------------------------------------------------------------------


def timed(argv: list[str], cache: Path | None) -> float | None:
    """Wall seconds of one fresh process (None when it failed or timed out). With
    ``cache``, kcc's black cache is pointed at that (empty) directory."""
    env = dict(os.environ)
    env.pop("KCC_NO_CACHE", None)
    if cache is not None:
        env["KCC_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    elapsed = time.perf_counter() - start
    return elapsed if proc.returncode == 0 else None


def compile_section(quick: bool) -> tuple[Section, dict[str, list[float]]]:
    kcc = str(Path(sys.executable).with_name("kcc"))
    runs = 1 if quick else COMPILE_RUNS
    section = Section(
        f"Compiler: fresh kcc processes, wall s (median of {runs}, min-max)",
        ("config", "cfg lines", "kcc check", "kcc build (cold black cache)"),
    )
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kcc-bench-compile-") as tmp:
        work = Path(tmp)
        synthetic = work / "synthetic_10000.cfg"
        synthetic.write_text(build_bench.synthesize(10_000), encoding="utf-8")
        for name, cfg in (("stock kamailio.cfg", STOCK_CFG), ("generated 10k lines", synthetic)):
            lines = cfg.read_text(encoding="utf-8", errors="replace").count("\n")
            checks: list[float] = []
            builds: list[float] = []
            failed: list[str] = []
            for k in range(runs):
                check = timed([kcc, "check", str(cfg)], None)
                build = timed(
                    [kcc, "build", str(cfg), "-o", str(work / f"out{k}.py")],
                    work / f"cache-{name[:5]}-{k}",
                )
                if check is None:
                    failed.append("check")
                else:
                    checks.append(check)
                if build is None:
                    failed.append("build")
                else:
                    builds.append(build)
            section.rows.append((name, str(lines), spread(checks, ".2f"), spread(builds, ".2f")))
            figures[f"check {name}"] = checks
            figures[f"build {name}"] = builds
            if failed:
                section.notes.append(f"{name}: {len(failed)} failed runs ({', '.join(failed)})")
            print(
                f"  compiler: {name} check {spread(checks, '.2f')} s, "
                f"build {spread(builds, '.2f')} s",
                flush=True,
            )
    return section, figures


# -- 4. the SIP parser ------------------------------------------------------------------


def parser_section(quick: bool) -> tuple[Section, dict[str, list[float]]]:
    runs, number = (3, 5_000) if quick else (7, 20_000)
    section = Section(
        f"SIP parser (kcc_runtime.sip), one core "
        f"(median of {runs} runs x {number:,} messages, min-max)",
        ("case", "messages/s", "us/message"),
    )
    figures: dict[str, list[float]] = {}
    for name, fn in sip_parser_bench.CASES:
        sip_parser_bench.rates(fn, number // 4, 1)  # warm-up, not counted
        rates = sip_parser_bench.rates(fn, number, runs)
        figures[name] = rates
        section.rows.append((name, spread(rates, ",.0f"), f"{1e6 / statistics.median(rates):.2f}"))
    return section, figures


# -- goals and the report ---------------------------------------------------------------


def _median_cpu(result: proxy_bench.Result, impl: str) -> float | None:
    runs = result.cpu[impl]
    return statistics.median(run.cpu_ms_per_call for run in runs) if runs else None


def goals_section(
    results: list[proxy_bench.Result],
    inflight: dict[str, InFlight],
    parser: dict[str, list[float]],
) -> Section:
    section = Section("Issue 8's goals", ("goal", "measured", "met"))
    by_name = {result.profile.name: result for result in results}
    for name, limit in (("stateless_rr_var", 1.5), ("stateful_rr", 1.0), ("failover_rr", 1.0)):
        result = by_name.get(name)
        kam = _median_cpu(result, "kamailio") if result else None
        kcc = _median_cpu(result, "kcc") if result else None
        if kam and kcc is not None:
            value = kcc / kam
            section.rows.append(
                (
                    f"CPU per call, {name}: kcc <= {limit:.1f}x Kamailio",
                    f"{value:.2f}x",
                    _yes(value <= limit),
                )
            )
        else:
            section.rows.append(
                (f"CPU per call, {name}: kcc <= {limit:.1f}x Kamailio", "missing", "-")
            )
    stateful = by_name.get("stateful_rr")
    if (
        stateful is not None
        and stateful.held["kcc"] is not None
        and stateful.held["kamailio"] is not None
    ):
        kcc_rate, kam_rate = stateful.held["kcc"], stateful.held["kamailio"]
        section.rows.append(
            (
                "highest held rate, stateful_rr, children=1: kcc >= Kamailio",
                f"{kcc_rate} vs {kam_rate} calls/s",
                _yes(kcc_rate >= kam_rate),
            )
        )
    else:
        section.rows.append(
            ("highest held rate, stateful_rr, children=1: kcc >= Kamailio", "missing", "-")
        )
    run = inflight.get("kcc")
    calls = run.calls if run is not None else INFLIGHT_CALLS
    label = f"kcc PSS with {calls:,} transactions in flight <= 150 MB (goal: 10,000)"
    if run is not None and run.window_kb is not None and not run.note:
        mb = run.window_kb / 1024
        section.rows.append((label, f"{mb:.1f} MB", _yes(mb <= 150)))
    else:
        section.rows.append((label, "missing", "-"))
    invite = parser.get("INVITE parse")
    label = "INVITE parses/s on one core >= 150,000"
    if invite:
        median = statistics.median(invite)
        section.rows.append((label, f"{median:,.0f}", _yes(median >= 150_000)))
    else:
        section.rows.append((label, "missing", "-"))
    return section


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def write_markdown(
    path: Path,
    described: list[tuple[str, str]],
    sections: list[Section],
    total_s: float,
    quick: bool,
) -> None:
    lines = [
        "# kcc benchmark results",
        "",
        "Written by `make bench` (`bench/run_all.py`"
        + (", `--quick`: shortened runs, not the reference figures" if quick else "")
        + "); how each figure is measured is in `bench/run_all.py`'s and "
        "`bench/proxy_bench.py`'s docstrings. Everything ran on loopback in a private "
        "network namespace, SIPp on the same machine as the proxy.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in described),
        f"| total bench time | {total_s / 60:.1f} min |",
        "",
    ]
    for section in sections:
        lines.append(section.markdown())
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    for tool in ("sipp", "kamailio"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/setup.sh installs it)", file=sys.stderr)
            return 2
    started = time.monotonic()
    described = machine()
    for key, value in described:
        print(f"{key + ':':10} {value}")
    print("\n== 1. proxies", flush=True)
    sections, results = proxy_sections(args.quick)
    print("\n== 2. transactions in flight", flush=True)
    memory, inflight = inflight_section(args.quick)
    sections.append(memory)
    print("\n== 3. compiler", flush=True)
    compiled, _ = compile_section(args.quick)
    sections.append(compiled)
    print("\n== 4. SIP parser", flush=True)
    parsed, rates = parser_section(args.quick)
    sections.append(parsed)
    sections.append(goals_section(results, inflight, rates))
    total = time.monotonic() - started
    for section in sections:
        print(section.text())
    print(f"\ntotal bench time: {total / 60:.1f} min")
    write_markdown(args.output, described, sections, total, args.quick)
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    proxy_bench.exit_on_sigterm()
    raise SystemExit(main())
