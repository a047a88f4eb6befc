"""The generated module of every ``examples/*.cfg`` is pinned in ``golden/``.

Each example is rebuilt (from the repository root, as the goldens were) and compared
byte for byte; a mismatch fails with the unified diff and the command that accepts it.
The goldens themselves must pass ``mypy --strict`` against the runtime, ``ruff check``
(``golden/ruff.toml``) and be stable under the pinned black formatting.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kcc.format import format_module
from kcc.pipeline import run_pipeline

from .conftest import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.cfg"))
GOLDEN = REPO / "golden"
UPDATE = ".venv/bin/pytest tests/test_golden.py --update-golden"


def build_example(cfg: Path) -> str:
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        ctx = run_pipeline(cfg.relative_to(REPO), stop_after="build")
    finally:
        os.chdir(cwd)
    errors = [d for d in ctx.sink.diagnostics if d.is_error]
    assert not errors, f"{cfg.name} does not build: {[d.message for d in errors]}"
    assert ctx.python is not None
    return ctx.python


@pytest.mark.parametrize("cfg", EXAMPLES, ids=[c.stem for c in EXAMPLES])
def test_golden(cfg: Path, update_golden: bool) -> None:
    actual = build_example(cfg)
    golden = GOLDEN / f"{cfg.stem}.py"
    if update_golden:
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"no golden/{golden.name}: run `{UPDATE}`"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/{golden.name}",
                tofile=f"kcc build examples/{cfg.name}",
            )
        )
        pytest.fail(f"generated code changed; if intended, run `{UPDATE}`:\n{diff}")


def test_every_golden_has_an_example() -> None:
    stems = {c.stem for c in EXAMPLES}
    assert {p.stem for p in GOLDEN.glob("*.py")} == stems


def test_goldens_are_black_stable() -> None:
    for golden in sorted(GOLDEN.glob("*.py")):
        text = golden.read_text(encoding="utf-8")
        assert format_module(text) == text, golden.name


def test_goldens_pass_mypy_strict(tmp_path: Path) -> None:
    env = {**os.environ, "MYPYPATH": str(REPO / "runtime")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), "golden"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_goldens_pass_ruff() -> None:
    files = [str(p) for p in sorted(GOLDEN.glob("*.py"))]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stem", [c.stem for c in EXAMPLES])
def test_golden_imports(stem: str) -> None:
    """A golden is a module the runtime accepts at import (accessors, regexes ...)."""
    golden = GOLDEN / f"{stem}.py"
    namespace: dict[str, object] = {"__name__": f"golden_{golden.stem}"}
    exec(compile(golden.read_text(encoding="utf-8"), str(golden), "exec"), namespace)
    assert namespace["__kcc_source__"] == f"examples/{golden.stem}.cfg"
    assert "ROUTER" in namespace
