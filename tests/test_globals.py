"""Global settings: names and value kinds, compared with what `kamailio -c` says.

Each case is a top-level line with Kamailio 5.6's verdict, recorded by running
`kamailio -c` on it; where Kamailio is installed the test runs it again, so the table
cannot drift from the oracle.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kcc.pipeline import run_pipeline

CASES: list[tuple[str, str | None]] = [
    ("children = 4", None),
    ("children = 0x4", None),
    ("debug = -1", None),
    ("port = yes", None),
    ("log_facility = LOG_LOCAL0", None),
    ('server_header = "Server: kcc"', None),
    ('listen = udp:127.0.0.1:5060 advertise 127.0.0.2:5070 name "x"', None),
    ("listen = [::1]", None),
    ("alias = a.example.org:5060 b.example.org", None),
    ('pstn.gw_ip = "127.0.0.1" desc "PSTN gateway"', None),
    ("childern = 4", "E0310"),
    ('children = "4"', "E0311"),
    ("log_stderror = maybe", "E0311"),
    ('log_facility = "LOG_LOCAL0"', "E0311"),
    ("user_agent_header = abc", "E0311"),
]


def _config(line: str) -> str:
    return f'loadmodule "pv.so"\n{line}\nrequest_route {{\n\texit;\n}}\n'


@pytest.mark.parametrize(("line", "code"), CASES)
def test_global_setting(line: str, code: str | None, tmp_path: Path) -> None:
    path = tmp_path / "g.cfg"
    path.write_text(_config(line), encoding="utf-8")
    ctx = run_pipeline(path)
    got = [(d.code, d.span.line if d.span else 0) for d in ctx.sink.diagnostics]
    assert got == ([] if code is None else [(code, 2)])


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
@pytest.mark.parametrize(("line", "code"), CASES)
def test_kamailio_agrees(line: str, code: str | None, tmp_path: Path) -> None:
    path = tmp_path / "g.cfg"
    path.write_text(_config(line), encoding="utf-8")
    result = subprocess.run(
        ["kamailio", "-c", "-f", str(path), "-Y", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if code is None:
        assert "config file ok" in result.stderr, result.stderr
    else:
        assert "parse error in config file" in result.stderr
        assert ", line 2, column" in result.stderr
