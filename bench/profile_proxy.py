"""Profile the kcc proxy's worker under a SIPp load: where a call's CPU goes.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/profile_proxy.py \
        --bench stateful_rr --calls 5000 --rate 500'

Builds the bench's config exactly as ``bench/proxy_bench.py`` does, starts two SIPp
backends and the proxy with ``children=1``, whose worker runs its event loop under
:mod:`cProfile` (the supervisor and the RPC process are not profiled), drives
``--calls`` calls at ``--rate`` and prints the top functions by own time and by
cumulative time, per call (microseconds). ``--out`` keeps the raw ``pstats`` file
for ``snakeviz``/``python -m pstats``. cProfile's own overhead roughly doubles a
Python function call, so the figures are for ranking, not for the bench table.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import proxy_bench as pb

# Runs in the proxy's process: profile each worker's loop, dump on SIGTERM.
_WRAPPER = """
import cProfile, gc, os, runpy, signal, sys, time
from kcc_runtime import transport

_gc = {"n": [0, 0, 0], "s": [0.0, 0.0, 0.0], "freed": [0, 0, 0], "t0": 0.0}

def _gc_timer(phase, info):
    if phase == "start":
        _gc["t0"] = time.perf_counter()
    else:
        g = info["generation"]
        _gc["n"][g] += 1
        _gc["s"][g] += time.perf_counter() - _gc["t0"]
        _gc["freed"][g] += info["collected"]

_run = transport.Transport.run

def run(self, **kwargs):
    profiler = cProfile.Profile()
    def dump(signum, frame):
        profiler.disable()
        profiler.dump_stats(os.environ["KCC_PROFILE_OUT"])
        with open(os.environ["KCC_PROFILE_OUT"] + ".gc", "w") as out:
            seconds = [round(x, 3) for x in _gc["s"]]
            out.write(f"collections per generation {_gc['n']}, seconds {seconds}, ")
            out.write(f"objects freed {_gc['freed']}\\n")
        os._exit(0)
    kwargs["stop_signals"] = ()
    signal.signal(signal.SIGTERM, dump)
    gc.callbacks.append(_gc_timer)
    profiler.enable()
    _run(self, **kwargs)

transport.Transport.run = run
module = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(module, run_name="__main__")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", choices=sorted(pb.PROFILES), default="stateful_rr")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, help="keep the pstats file here")
    args = parser.parse_args()
    profile = pb.PROFILES[args.bench]
    with tempfile.TemporaryDirectory(prefix="kcc-profile-") as tmp:
        workdir = Path(tmp)
        setup = pb.make_setup(profile, workdir, children=1)
        first, second = setup.backends
        if setup.kcc_module is None:
            print(setup.kcc_missing_reason, file=sys.stderr)
            return 1
        stats_path = args.out or workdir / "worker.pstats"
        backends = [
            pb.start_uas(workdir, port, scenario)
            for port, scenario in zip((first, second), profile.uas, strict=True)
        ]
        (port,) = pb.free_udp_ports(1)
        argv = [sys.executable, "-c", _WRAPPER, str(setup.kcc_module)]
        argv += ["--listen", f"udp:127.0.0.1:{port}", "--children", "1"]
        argv += ["--allow-dst", pb.ALLOW_DST, "--stop-timeout", "30"]
        log = (workdir / "proxy.log").open("wb")
        proxy = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "KCC_PROFILE_OUT": str(stats_path)},
        )
        try:
            deadline = time.monotonic() + 30
            while not pb.options_answered(port, 0.3):
                if pb.exited(proxy.pid) or time.monotonic() > deadline:
                    print((workdir / "proxy.log").read_text(errors="replace"), file=sys.stderr)
                    return 1
            run = pb.sipp_uac(
                workdir,
                proxy,
                port,
                calls=args.calls,
                rate=args.rate,
                spread=False,
                scenario=profile.uac,
            )
        finally:
            pb.stop(proxy)
            for uas in backends:
                pb.stop(uas, signal.SIGUSR1)
        print(
            f"{run.successful}/{run.calls} calls, {run.failed} failed, "
            f"CPU {run.cpu_ms_per_call:.3f} ms/call (profiled)"
        )
        if not stats_path.exists():
            print("the worker wrote no profile", file=sys.stderr)
            return 1
        gc_path = Path(f"{stats_path}.gc")
        if gc_path.exists():
            print("garbage collector:", gc_path.read_text().strip())
        stats = pstats.Stats(str(stats_path))
        total = stats.total_tt  # type: ignore[attr-defined]
        calls = max(run.successful, 1)
        print(f"profiled worker time {total:.2f} s, {total / calls * 1e6:.0f} us/call")
        for key in ("tottime", "cumulative"):
            print(f"\n== by {key}")
            stats.sort_stats(key).print_stats(args.top)
    return 0


if __name__ == "__main__":
    pb.exit_on_sigterm()
    raise SystemExit(main())
