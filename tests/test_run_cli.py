"""``kcc run FILE.cfg [proxy options]``: build into the cache, then run the proxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KCC = [sys.executable, "-m", "kcc"]
TIMEOUT = 30.0


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "KCC_CACHE_DIR": str(cache)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_proxy(cache: Path, log: Path, port: int) -> None:
    argv = [*KCC, "run", str(REPO / "examples" / "stateless_rr_var.cfg")]
    argv += ["--listen", f"udp:127.0.0.1:{port}", "--children", "1"]
    argv += ["--allow-dst", "127.0.0.0/8,::1"]
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, stderr=err, env=_env(cache))
    try:
        deadline = time.monotonic() + TIMEOUT
        while "kcc proxy ready:" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.settimeout(TIMEOUT)
            cport = client.getsockname()[1]
            client.sendto(
                f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK1\r\n"
                "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: r1\r\n"
                "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n".encode(),
                ("127.0.0.1", port),
            )
            assert client.recv(65535).startswith(b"SIP/2.0 404 Not Found\r\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def test_run_builds_into_the_cache_and_serves(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run_proxy(cache, tmp_path / "first.log", _free_port())
    built = list((cache / "run").glob("*/stateless_rr_var.py"))
    assert len(built) == 1
    expected = subprocess.run(
        [*KCC, "build", str(REPO / "examples" / "stateless_rr_var.cfg")],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout
    assert built[0].read_text() == expected
    # a second run reuses the module: same file, not rewritten
    stamp = built[0].stat().st_mtime_ns
    _run_proxy(cache, tmp_path / "second.log", _free_port())
    assert list((cache / "run").glob("*/stateless_rr_var.py")) == built
    assert built[0].stat().st_mtime_ns == stamp


def test_run_key_follows_defines(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cfg = REPO / "examples" / "stateless_rr_var.cfg"
    for extra in ([], ["-D", "FOO"]):
        result = subprocess.run(
            [*KCC, "run", str(cfg), *extra, "--children", "x"],
            check=False,
            capture_output=True,
            text=True,
            env=_env(cache),
            timeout=TIMEOUT,
        )
        assert result.returncode == 2  # the proxy's own option check
        assert "argument --children: `x` is not a number" in result.stderr
    assert len(list((cache / "run").glob("*/stateless_rr_var.py"))) == 2


def test_run_reports_cfg_errors_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("request_route {\n\tno_such_function();\n}\n")
    result = subprocess.run(
        [*KCC, "run", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert "no_such_function" in result.stderr
    result = subprocess.run(
        [*KCC, "run", str(tmp_path / "missing.cfg")],
        check=False,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr
