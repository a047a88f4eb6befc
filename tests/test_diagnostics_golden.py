"""Broken configs with their exact expected diagnostics.

Each ``tests/diagnostics/<case>.cfg`` starts with ``# expect: CODE[, CODE]`` and is
checked with ``kcc check`` from the repository root; the plain-text diagnostics must
equal ``<case>.stderr`` byte for byte. After an intended change:
``pytest tests/test_diagnostics_golden.py --update-golden``, then review the diff of
the ``.stderr`` files like code.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from kcc.diagnostics import render_plain, summary_line
from kcc.pipeline import run_pipeline

from .conftest import REPO

CASES = sorted((REPO / "tests" / "diagnostics").glob("*.cfg"))


def render_case(cfg: Path) -> str:
    cwd = Path.cwd()
    os.chdir(REPO)
    # build-time refusals (E09xx) are found by `kcc build`, which runs the `build` stage
    header = cfg.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
    stage = "build" if "E09" in header else "check"
    try:
        ctx = run_pipeline(cfg.relative_to(REPO), stop_after=stage)
        text = "".join(render_plain(d) + "\n" for d in ctx.sink.sorted())
        return text + f"{summary_line(ctx.sink)}\n"
    finally:
        os.chdir(cwd)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("cfg", CASES, ids=[c.stem for c in CASES])
def test_diagnostic_golden(cfg: Path, update_golden: bool) -> None:
    actual = render_case(cfg)
    expected_path = cfg.with_suffix(".stderr")
    if update_golden:
        expected_path.write_text(actual, encoding="utf-8")
        return
    assert expected_path.exists(), f"no {expected_path.name}: run pytest --update-golden"
    expected = expected_path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(expected_path.relative_to(REPO)),
                tofile="kcc check",
            )
        )
        pytest.fail(f"diagnostics changed (pytest --update-golden to accept):\n{diff}")
    # the case says which diagnostic it is about: `# expect: E0110` on its first line
    first_line = cfg.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert first_line.startswith("# expect: "), f"{cfg.name}: no `# expect: CODE` header"
    for code in first_line.removeprefix("# expect: ").split(","):
        assert f"[{code.strip()}]" in actual, f"{cfg.name}: {code.strip()} not reported"
