"""How long ``kcc build`` takes on large configs, stage by stage, and how it grows.

    python bench/build_bench.py                    # 1k, 10k and 50k cfg lines
    python bench/build_bench.py --sizes 1000 10000 --no-cli
    python bench/build_bench.py --keep DIR         # keep the synthetic configs

The configs are synthetic but made of real routing code: the header (globals,
``loadmodule``, ``modparam``) of ``examples/failover_rr.cfg`` plus the few lines the
other examples need, then copies of the routing blocks of the five small examples
(``failover_rr``, ``redirect_rr``, ``stateful_rr``, ``stateless_rr_shv``,
``stateless_rr_var``), copy ``k`` with every route renamed ``NAME_k`` (its
``request_route`` becomes ``route[MAIN_k]``, references follow), and one
``request_route`` that dispatches on ``$var(k)`` to every ``MAIN_k`` so each block is
reachable as a request route, as in a real config. Copies are added until the target
line count is reached.

For each size, in this process (imports done, grammar loaded, one warm-up build of a
small config first), each stage of ``kcc.pipeline.STAGES`` is timed on its own. The
``build`` stage generates the code and formats it at the same time (black runs in
worker processes on each route function as soon as it is generated, see
``kcc.format.FormatStream``), so its time is emit and format together; ``emit alone``
shows what generation costs without formatting (the same config generated again,
``CodeGenerator.generate`` plus the module text). The black cache of ``kcc.format`` is
pointed at a fresh empty directory for every size, so the figures are **cold** (what a
first build costs); ``build warm`` is the build stage run again with that cache filled.
For 10k lines, one fresh ``python -m kcc build`` process is timed as well (wall clock:
interpreter start-up, imports and the whole build, cold cache).

Goal: a 10k-line config builds in under 3 s (printed, never asserted). The growth
ratio column is time(size) / time(previous size) next to the line ratio: equal ratios
mean linear growth.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kcc import pipeline  # noqa: E402
from kcc.codegen.emit import CodeGenerator, module_code  # noqa: E402
from kcc.pipeline import CompileContext  # noqa: E402

GOAL_10K_S = 3.0
SUBPROCESS_TIMEOUT_S = 600.0
BASE = "failover_rr"
COPIED = ("failover_rr", "redirect_rr", "stateful_rr", "stateless_rr_shv", "stateless_rr_var")
#: header lines the copied examples need beyond the base's header
EXTRA_HEADER = ('modparam("pv", "varset", "i=i:0")',)

_ROUTE_HEAD = re.compile(
    r"^(request_route|route|failure_route|branch_route|onreply_route)\b", re.MULTILINE
)
_NAMED_BLOCK = re.compile(r"\b(route|failure_route|branch_route|onreply_route)\[(\w+)\]")
_ROUTE_CALL = re.compile(r"\broute\((\w+)\)")
_ARMING = re.compile(r"\bt_on_(failure|branch|reply)\(\"(\w+)\"\)")


def _split_example(name: str) -> tuple[str, str]:
    """(header, routing blocks) of ``examples/<name>.cfg``."""
    text = (ROOT / "examples" / f"{name}.cfg").read_text(encoding="utf-8")
    first = _ROUTE_HEAD.search(text)
    if first is None:
        raise SystemExit(f"examples/{name}.cfg has no route block")
    return text[: first.start()], text[first.start() :]


def _renamed(routing: str, k: int) -> str:
    text = _NAMED_BLOCK.sub(lambda m: f"{m.group(1)}[{m.group(2)}_{k}]", routing)
    text = _ROUTE_CALL.sub(lambda m: f"route({m.group(1)}_{k})", text)
    text = _ARMING.sub(lambda m: f't_on_{m.group(1)}("{m.group(2)}_{k}")', text)
    return text.replace("request_route {", f"route[MAIN_{k}] {{", 1)


def synthesize(target_lines: int) -> str:
    """A config of at least ``target_lines`` lines (see the module docstring)."""
    header, _ = _split_example(BASE)
    header = header.rstrip("\n") + "\n" + "\n".join(EXTRA_HEADER) + "\n\n"
    routings = [_split_example(name)[1] for name in COPIED]
    copies: list[str] = []
    lines = header.count("\n") + 4
    k = 0
    while lines < target_lines:
        routing = _renamed(routings[k % len(routings)], k)
        copies.append(routing.rstrip("\n") + "\n\n")
        lines += routing.count("\n") + 2 + 3  # the block and its dispatch lines
        k += 1
    dispatch = "".join(f"\tif ($var(k) == {i}) {{\n\t\troute(MAIN_{i});\n\t}}\n" for i in range(k))
    return header + "request_route {\n" + dispatch + "\tdrop;\n}\n\n" + "".join(copies)


@dataclass
class Result:
    size: int
    cfg_lines: int
    stages: dict[str, float] = field(default_factory=dict)
    emit_alone: float | None = None
    build_warm: float | None = None
    out_lines: int = 0
    out_bytes: int = 0
    errors: list[str] = field(default_factory=list)
    cli: float | None = None

    @property
    def total(self) -> float:
        return sum(self.stages.values())


@contextmanager
def _cache_dir(path: Path | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("KCC_CACHE_DIR", "KCC_NO_CACHE")}
    os.environ.pop("KCC_NO_CACHE", None)
    if path is None:
        os.environ["KCC_NO_CACHE"] = "1"
    else:
        os.environ["KCC_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stage_names() -> list[str]:
    return [name for name, _ in pipeline.STAGES]


def run_stages(path: Path, result: Result) -> CompileContext | None:
    """Run every pipeline stage on ``path``, timing each; the context, or None when a
    stage failed (the errors go to ``result``)."""
    ctx = CompileContext(path, {})
    must_stop: Callable[..., bool] = pipeline._must_stop
    for name, stage in pipeline.STAGES:
        start = time.perf_counter()
        try:
            stage(ctx)
        except Exception as exc:  # a bench reports, it does not stop
            result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return None
        result.stages[name] = time.perf_counter() - start
        if must_stop(ctx.sink, name):
            result.errors.extend(
                f"{d.code}: {d.message}" for d in ctx.sink.diagnostics if d.is_error
            )
            return None
    return ctx


def time_emit_alone(ctx: CompileContext) -> float:
    """Code generation without formatting, on an already checked context."""
    assert ctx.sema is not None
    start = time.perf_counter()
    module = CodeGenerator(ctx.sema, source="bench", digest="0").generate()
    module_code(module, {})
    return time.perf_counter() - start


def time_build_warm(ctx: CompileContext) -> float:
    """The ``build`` stage again, its black cache now filled."""
    build = dict(pipeline.STAGES)["build"]
    start = time.perf_counter()
    build(ctx)
    return time.perf_counter() - start


def run_cli(path: Path, out: Path, cache: Path) -> float | None:
    env = dict(os.environ, KCC_CACHE_DIR=str(cache))
    env.pop("KCC_NO_CACHE", None)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kcc", "build", str(path), "-o", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-2000:])
        return None
    return elapsed


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, black {importlib.metadata.version('black')}"
    )


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(results: list[Result]) -> None:
    stages = _stage_names()
    head = ["size", "cfg lines", *[f"{s} s" for s in stages], "total s", "emit alone s"]
    head += ["build warm s"]
    head += ["out lines", "out bytes", "x lines", "x time", "cli s"]
    rows: list[list[str]] = []
    previous: Result | None = None
    for res in results:
        growth_lines = growth_time = "-"
        if previous is not None and previous.total > 0 and not res.errors:
            growth_lines = f"{res.cfg_lines / previous.cfg_lines:.1f}"
            growth_time = f"{res.total / previous.total:.1f}"
        rows.append(
            [
                f"{res.size // 1000}k",
                str(res.cfg_lines),
                *[_fmt_s(res.stages.get(s)) for s in stages],
                _fmt_s(res.total),
                _fmt_s(res.emit_alone),
                _fmt_s(res.build_warm),
                str(res.out_lines),
                str(res.out_bytes),
                growth_lines,
                growth_time,
                _fmt_s(res.cli),
            ]
        )
        previous = res
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    for res in results:
        for error in res.errors[:5]:
            print(f"{res.size // 1000}k: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--no-cli", action="store_true", help="skip the cold CLI run")
    parser.add_argument("--keep", type=Path, help="write the synthetic configs here")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"stages: {', '.join(_stage_names())}; goal: 10k cfg lines < {GOAL_10K_S:.0f} s")
    with tempfile.TemporaryDirectory(prefix="kcc-build-bench-") as tmp:
        work = Path(tmp)
        warm = work / "warmup.cfg"
        warm.write_text(synthesize(200), encoding="utf-8")
        with _cache_dir(None):
            run_stages(warm, Result(0, 0))
        results: list[Result] = []
        for size in args.sizes:
            text = synthesize(size)
            path = (args.keep or work) / f"synthetic_{size}.cfg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            res = Result(size, text.count("\n"))
            cache = work / f"cache-{size}"
            with _cache_dir(cache):
                ctx = run_stages(path, res)
                out = None if ctx is None else ctx.python
                if ctx is not None and out is not None:
                    res.build_warm = time_build_warm(ctx)
                    res.emit_alone = time_emit_alone(ctx)
            if out is not None:
                res.out_lines = out.count("\n")
                res.out_bytes = len(out.encode("utf-8"))
            if size == 10000 and not args.no_cli and out is not None:
                res.cli = run_cli(path, work / "cli_out.py", work / "cache-cli")
            results.append(res)
            print(f"... {size // 1000}k done", file=sys.stderr)
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
