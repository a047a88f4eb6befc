"""The `kcc` command line: exit codes, output formats, dumps, explain pages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kcc import cli
from kcc.explain import all_codes, explain_page

from .conftest import REPO

runner = CliRunner()

CLEAN = """\
loadmodule "sl.so"
request_route {
    sl_send_reply("404", "Not Found");
    exit;
}
"""

BROKEN = """\
loadmodule “sl.so”
loadmodule "textops.so"
request_route {
    if (!is_method("INVITE") {
        exit;
    }
}
"""


@pytest.fixture
def clean_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "clean.cfg"
    path.write_text(CLEAN, encoding="utf-8")
    return path


@pytest.fixture
def broken_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "broken.cfg"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def kcc(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_clean_exits_0(clean_cfg: Path) -> None:
    result = kcc("check", str(clean_cfg))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_check_broken_exits_1_with_rustc_style_text(broken_cfg: Path) -> None:
    result = kcc("check", "broken.cfg", cwd=broken_cfg.parent)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith('error[E0103]: typographic quote in place of `"`\n')
    assert " --> broken.cfg:1:12\n" in result.stderr
    # the missing parenthesis is reported too: typographic quotes do not stop the check
    assert "error[E0201]" in result.stderr
    assert " --> broken.cfg:4:" in result.stderr
    assert result.stderr.rstrip().endswith("broken.cfg: 2 errors")


def test_check_json(broken_cfg: Path) -> None:
    result = kcc("check", "--format", "json", "broken.cfg", cwd=broken_cfg.parent)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    first = data[0]
    assert {k: first[k] for k in ("code", "severity", "file", "line", "column")} == {
        "code": "E0103",
        "severity": "error",
        "file": "broken.cfg",
        "line": 1,
        "column": 12,
    }
    assert (first["end_line"], first["end_column"]) == (1, 19)
    assert first["message"] == 'typographic quote in place of `"`'


def test_defines_on_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "d.cfg"
    cfg.write_text(
        '#!ifdef WITH_SL\nloadmodule "sl.so"\n#!endif\nrequest_route { exit; }\n', "utf-8"
    )
    assert kcc("check", str(cfg), "-D", "WITH_SL").returncode == 0
    assert kcc("check", str(cfg), "-D", "WITH_SL=1").returncode == 0
    assert kcc("check", str(cfg), "-D", "bad-name").returncode == 2


def test_usage_errors_exit_2(clean_cfg: Path) -> None:
    assert kcc("check").returncode == 2
    assert kcc("check", str(clean_cfg), "--format", "xml").returncode == 2
    assert kcc("check", str(clean_cfg), "--dump-after", "nope").returncode == 2
    missing = kcc("check", "/nonexistent/x.cfg")
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_dump_after_preprocess_and_parse(tmp_path: Path) -> None:
    cfg = tmp_path / "dump.cfg"
    cfg.write_text(
        '#!define CODE 404\nloadmodule "sl.so"\nrequest_route {\n'
        '    sl_send_reply(CODE, "Not Found");\n}\n',
        "utf-8",
    )
    pre = kcc("check", str(cfg), "--dump-after", "preprocess")
    assert pre.returncode == 0, pre.stderr
    assert "404" in pre.stdout
    assert "#!define" not in pre.stdout
    parsed = kcc("check", str(cfg), "--dump-after", "parse")
    assert parsed.returncode == 0, parsed.stderr
    assert "Route" in parsed.stdout
    assert "@4:5" in parsed.stdout  # the call keeps its line:col


def test_internal_error_is_reported_not_raised(
    clean_cfg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "run_pipeline", explode)
    result = runner.invoke(cli.app, ["check", str(clean_cfg)])
    assert result.exit_code == 70
    assert "internal compiler error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output


def test_explain() -> None:
    result = kcc("explain", "E0103")
    assert result.returncode == 0
    assert result.stdout.startswith("# E0103: typographic quote")
    assert kcc("explain", "e0103").stdout == result.stdout
    assert kcc("explain", "E9999").returncode == 2
    listing = kcc("explain")
    assert listing.returncode == 0
    assert "E0103  typographic quote" in listing.stdout


def test_every_emitted_code_has_an_explain_page() -> None:
    used: set[str] = set()
    for source in (REPO / "kcc").rglob("*.py"):
        used |= set(re.findall(r'"([EW]\d{4})"', source.read_text("utf-8")))
    documented = set(all_codes())
    assert used, "no codes found: the scan is broken"
    assert used - documented == set(), "codes without a `kcc explain` page"
    assert documented - used == set(), "explain pages for codes nothing emits"
    for code in documented:
        page = explain_page(code)
        assert page is not None
        assert page.startswith(f"# {code}: ")
        assert "## Example" in page


def test_rich_rendering_is_the_plain_text_with_colour(broken_cfg: Path) -> None:
    from kcc.diagnostics import render_plain, render_rich
    from kcc.pipeline import run_pipeline

    ctx = run_pipeline(broken_cfg)
    assert ctx.sink.diagnostics
    for diag in ctx.sink.diagnostics:
        text = render_rich(diag)
        assert text.plain == render_plain(diag)
        assert any(span.style for span in text.spans)


def test_flags_table(tmp_path: Path) -> None:
    cfg = tmp_path / "flags.cfg"
    cfg.write_text(
        '#!define FLT_ACC 1\n#!define FLB_NAT 6\nloadmodule "kex.so"\n'
        "request_route {\n    setflag(FLT_ACC);\n    if (isflagset(FLT_ACC)) {\n"
        "        setbflag(FLB_NAT);\n    }\n"
        "    if (isbflagset(FLB_NAT)) {\n        exit;\n    }\n}\n",
        "utf-8",
    )
    result = kcc("check", "--flags", str(cfg))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["kind", "flag", "names", "set", "reset", "tested", "parameters"]
    assert rows[1] == ["message", "1", "FLT_ACC", "5", "-", "6", "-"]
    assert rows[2] == ["branch", "6", "FLB_NAT", "7", "-", "9", "-"]
