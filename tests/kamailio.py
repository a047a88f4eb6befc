"""Running the real Kamailio as the oracle: `kamailio -c` on a config, and the common
"kcc and Kamailio agree" assertion. Tests that need it carry ``needs_kamailio``; the
test command installs the package, so in CI they always run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kcc.diagnostics import render_plain
from kcc.pipeline import run_pipeline

__all__ = ["agrees_with_kamailio", "kamailio_check", "needs_kamailio", "reported_lines"]

needs_kamailio = pytest.mark.skipif(
    shutil.which("kamailio") is None, reason="the kamailio package is not installed"
)


def kamailio_check(path: Path) -> subprocess.CompletedProcess[str]:
    """`kamailio -c -f path`, its runtime directory beside the config."""
    return subprocess.run(
        ["kamailio", "-c", "-f", str(path), "-Y", str(path.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def reported_lines(stderr: str) -> set[int]:
    """Every line number Kamailio's log names (``... line 12, column 3: ...``)."""
    return {
        int(part.split(",")[0])
        for part in stderr.split("line ")[1:]
        if part.split(",")[0].isdigit()
    }


def agrees_with_kamailio(tmp_path: Path, text: str, code: str | None) -> None:
    """Kamailio accepts ``text`` and kcc finds no error (``code`` None), or both reject
    it and kcc's only error has ``code``, on a line Kamailio names."""
    path = tmp_path / "k.cfg"
    path.write_text(text, encoding="utf-8")
    result = kamailio_check(path)
    ctx = run_pipeline(path)
    errors = [d for d in ctx.sink.diagnostics if d.is_error]
    if code is None:
        assert "bad config file" not in result.stderr, result.stderr
        assert not errors, [render_plain(d) for d in errors]
        return
    assert "bad config file" in result.stderr
    assert [d.code for d in errors] == [code]
    assert errors[0].span is not None
    assert errors[0].span.line in reported_lines(result.stderr)
