"""How long kcc takes to preprocess and parse a config, next to ``kamailio -c``.

    python bench/parse_bench.py                  # stock config + examples/*.cfg
    python bench/parse_bench.py FILE... --json   # machine-readable

For each config, in the same run:

warm
    ``run_pipeline(path, stop_after="parse")`` in this process: a few warm-up runs
    (imports done, grammar loaded), then ``--repeat`` timed runs; median and min-max.
    This is the figure the goal is about: **below 150 ms warm**.
check warm
    ``run_pipeline(path)`` in this process, the same way: the full ``kcc check``
    (preprocess, parse and every semantic pass). Goal: **below 300 ms warm** (the
    stock config, all checks on); printed, never asserted.
cold
    one fresh ``python -m kcc check FILE`` process, wall clock: interpreter start-up,
    imports, grammar load and the *whole* check (preprocess, parse, check).
kamailio -c
    median of ``--kamailio-runs`` runs of ``kamailio -c -f FILE``. That parses the
    config, dlopens every ``loadmodule``'d module and applies its ``modparam``\\s, and
    resolves the listen sockets, then exits (before shared memory, ``mod_init`` and
    forking). It is run with ``-l udp:127.0.0.1:5060`` so it looks at no interface
    but loopback (the stock config has no ``listen=`` and would otherwise enumerate,
    and reverse-resolve, every interface), and with a throw-away runtime dir.

The ratio is kcc warm / kamailio -c. Every run is bounded (repeat counts are capped,
subprocesses have a timeout) and nothing touches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
GOAL_WARM_MS = 150.0
GOAL_CHECK_WARM_MS = 300.0
MAX_REPEAT = 1000
SUBPROCESS_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock samples in milliseconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


@dataclass(frozen=True, slots=True)
class Row:
    config: str
    lines: int
    kcc_errors: int | None
    warm_median_ms: float | None
    warm_min_ms: float | None
    warm_max_ms: float | None
    check_errors: int | None
    check_warm_median_ms: float | None
    check_goal_met: bool | None
    cold_ms: float | None
    cold_exit: int | None
    kamailio_median_ms: float | None
    kamailio_exit: int | None
    ratio_warm_to_kamailio: float | None
    goal_warm_ms: float
    goal_met: bool | None
    note: str


def time_calls(fn: Callable[[], object], *, warmup: int, repeat: int) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed (ms)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return Timing(tuple(samples))


def time_process(argv: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a process once; its wall-clock time in ms and its exit code."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=SUBPROCESS_TIMEOUT_S,
        env=env,
        check=False,
    )
    return (time.perf_counter() - start) * 1000.0, proc.returncode


def kcc_parse(path: Path) -> Callable[[], int]:
    """A callable running preprocess+parse on ``path``; returns the error count."""
    from kcc.pipeline import run_pipeline

    def run() -> int:
        return run_pipeline(path, stop_after="parse").sink.error_count

    return run


def kcc_check(path: Path) -> Callable[[], int]:
    """A callable running the full check (every stage) on ``path``; returns the error count."""
    from kcc.pipeline import run_pipeline

    def run() -> int:
        return run_pipeline(path).sink.error_count

    return run


def kamailio_check(path: Path, runs: int, kamailio: str) -> tuple[Timing, int]:
    with tempfile.TemporaryDirectory(prefix="kcc-bench-") as rundir:
        argv = [kamailio, "-c", "-l", "udp:127.0.0.1:5060", "-Y", rundir, "-f", str(path)]
        results = [time_process(argv) for _ in range(runs)]
    return Timing(tuple(ms for ms, _ in results)), max(rc for _, rc in results)


def bench_one(
    path: Path,
    *,
    warmup: int,
    repeat: int,
    cold: bool,
    kamailio_runs: int,
    kamailio: str | None,
    parse: Callable[[Path], Callable[[], int]] = kcc_parse,
    check: Callable[[Path], Callable[[], int]] = kcc_check,
) -> Row:
    notes = []
    try:
        lines = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError as exc:
        lines = 0
        notes.append(f"unreadable: {exc.strerror}")

    warm: Timing | None = None
    errors: int | None = None
    try:
        run = parse(path)
        errors = run()
        warm = time_calls(run, warmup=warmup, repeat=repeat)
        if errors:
            notes.append(f"kcc reports {errors} error(s): parsing may stop early")
    except Exception as exc:  # a bench reports, it does not crash on a kcc bug
        notes.append(f"kcc failed: {type(exc).__name__}: {exc}")

    check_warm: Timing | None = None
    check_errors: int | None = None
    try:
        run_check = check(path)
        check_errors = run_check()
        check_warm = time_calls(run_check, warmup=warmup, repeat=repeat)
        if check_errors and not errors:
            notes.append(f"`kcc check` reports {check_errors} error(s)")
    except Exception as exc:  # a bench reports, it does not crash on a kcc bug
        notes.append(f"kcc check failed: {type(exc).__name__}: {exc}")

    cold_ms: float | None = None
    cold_exit: int | None = None
    if cold:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        cold_ms, cold_exit = time_process(
            [sys.executable, "-m", "kcc", "check", str(path)], env=env
        )
        if cold_exit not in (0, 1):
            notes.append(f"`kcc check` exit {cold_exit}")

    kam: Timing | None = None
    kam_exit: int | None = None
    if kamailio is not None and kamailio_runs > 0:
        kam, kam_exit = kamailio_check(path, kamailio_runs, kamailio)
        if kam_exit != 0:
            notes.append("`kamailio -c` rejects it")

    ratio = warm.median / kam.median if warm is not None and kam is not None else None
    return Row(
        config=display(path),
        lines=lines,
        kcc_errors=errors,
        warm_median_ms=warm.median if warm else None,
        warm_min_ms=warm.min if warm else None,
        warm_max_ms=warm.max if warm else None,
        check_errors=check_errors,
        check_warm_median_ms=check_warm.median if check_warm else None,
        check_goal_met=check_warm.median < GOAL_CHECK_WARM_MS if check_warm else None,
        cold_ms=cold_ms,
        cold_exit=cold_exit,
        kamailio_median_ms=kam.median if kam else None,
        kamailio_exit=kam_exit,
        ratio_warm_to_kamailio=ratio,
        goal_warm_ms=GOAL_WARM_MS,
        goal_met=warm.median < GOAL_WARM_MS if warm else None,
        note="; ".join(notes),
    )


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_table(rows: Sequence[Row], *, repeat: int, kamailio_runs: int) -> str:
    head = (
        "config",
        "lines",
        f"warm ms (median, min-max of {repeat})",
        "check warm ms",
        "cold ms",
        f"kamailio -c ms (median of {kamailio_runs})",
        "warm/kam",
        f"goal <{GOAL_WARM_MS:.0f} ms warm",
        f"check goal <{GOAL_CHECK_WARM_MS:.0f} ms",
    )
    body = []
    for r in rows:
        warm = (
            f"{_ms(r.warm_median_ms)} ({_ms(r.warm_min_ms)}-{_ms(r.warm_max_ms)})"
            if r.warm_median_ms is not None
            else "-"
        )
        goal = {True: "met", False: "MISSED", None: "-"}[r.goal_met]
        check_goal = {True: "met", False: "MISSED", None: "-"}[r.check_goal_met]
        ratio = "-" if r.ratio_warm_to_kamailio is None else f"x{r.ratio_warm_to_kamailio:.1f}"
        body.append(
            (
                r.config,
                str(r.lines),
                warm,
                _ms(r.check_warm_median_ms),
                _ms(r.cold_ms),
                _ms(r.kamailio_median_ms),
                ratio,
                goal,
                check_goal,
            )
        )
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    out = []
    for row in (head, tuple("-" * w for w in widths), *body):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        out.append("  ".join(cells).rstrip())
    notes = [f"  {r.config}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "notes:", *notes]
    out += [
        "",
        "warm: run_pipeline(stop_after='parse') in-process after warm-up (preprocess + parse)",
        "check warm: run_pipeline() in-process after warm-up (the full `kcc check`, median)",
        "cold: one `python -m kcc check FILE` process (start-up, imports, full check)",
        "kamailio -c: parse + load modules + modparams + sockets (-l udp:127.0.0.1:5060)",
    ]
    return "\n".join(out)


def default_configs() -> list[Path]:
    configs = [STOCK_CFG] if STOCK_CFG.is_file() else []
    return configs + sorted((ROOT / "examples").glob("*.cfg"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path, help="default: stock + examples")
    parser.add_argument("--repeat", type=int, default=20, help="timed warm runs (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")
    parser.add_argument(
        "--kamailio-runs", type=int, default=10, help="kamailio -c runs (default 10; 0: skip)"
    )
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    for name in ("repeat", "warmup", "kamailio_runs"):
        value = getattr(args, name)
        if not 0 <= value <= MAX_REPEAT or (name == "repeat" and value == 0):
            parser.error(f"--{name.replace('_', '-')} must be in 1..{MAX_REPEAT}")

    configs = args.configs or default_configs()
    if not configs:
        parser.error("no config given and neither the stock config nor examples/*.cfg exist")
    missing = [str(c) for c in configs if not c.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")

    kamailio = shutil.which("kamailio")
    rows = [
        bench_one(
            cfg,
            warmup=args.warmup,
            repeat=args.repeat,
            cold=not args.no_cold,
            kamailio_runs=args.kamailio_runs,
            kamailio=kamailio,
        )
        for cfg in configs
    ]

    if args.json:
        json.dump([asdict(r) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_table(rows, repeat=args.repeat, kamailio_runs=args.kamailio_runs))
        if kamailio is None:
            print("kamailio not found: its column is empty")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
