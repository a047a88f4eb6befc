"""The oracle: Kamailio 5.6 itself evaluates the ``MEASURED`` table of
``test_values.py``, and every result must equal ``kcc_runtime.values``'s.

Kamailio runs on loopback (``-l udp:127.0.0.1:PORT``, one worker), one OPTIONS
request drives ``request_route``, which calls one sub-route per expression: the
``$var``s are set, the result is assigned to ``$avp(rN)`` and logged with ``xlog``
as ``KCC|N|[value]``, then ``$avp(rN) + 1`` is logged as ``KCC|N|T|[...]`` to tell
an int from a string (``5`` -> ``6``, ``"5"`` -> ``"51"``). An expression without a
value leaves the AVP unset: ``<null>``. Skipped only when ``kamailio`` is missing;
bounded (20 s) and the process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from kcc_runtime import values as v

from tests.runtime.test_values import MEASURED, NO_VALUE, Env, parse_expr, run_or_no_value

KAMAILIO = shutil.which("kamailio")
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

pytestmark = pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")


def _literal(value: int | str | None) -> str:
    if value is None:
        return "$null"
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config() -> str:
    lines = [
        "#!KAMAILIO",
        "debug=2",
        "log_stderror=yes",
        "children=1",
        "auto_aliases=no",
        "dns=no",
        "rev_dns=no",
        f'mpath="{MODULES}"',
        'loadmodule "pv.so"',
        'loadmodule "xlog.so"',
        'loadmodule "sl.so"',
        "request_route {",
    ]
    lines += [f"  route(E{i});" for i in range(len(MEASURED))]
    lines += ['  sl_send_reply("200", "done");', "}"]
    for i, (env, text, _) in enumerate(MEASURED):
        lines.append(f"route[E{i}] {{")
        lines += [f"  $var({name}) = {_literal(value)};" for name, value in env.items()]
        lines.append(f"  $avp(r{i}) = {text};")
        lines.append(f'  xlog("L_ERR", "KCC|{i}|V|[$avp(r{i})]\\n");')
        lines.append(f"  $avp(t{i}) = $avp(r{i}) + 1;")
        lines.append(f'  xlog("L_ERR", "KCC|{i}|T|[$avp(t{i})]\\n");')
        lines.append("}")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_kamailio(tmp_path: Path) -> str:
    assert KAMAILIO is not None
    cfg = tmp_path / "values.cfg"
    cfg.write_text(_config())
    port = _free_port()
    proc = subprocess.Popen(
        [
            KAMAILIO,
            "-DD",
            "-E",
            "-f",
            str(cfg),
            "-l",
            f"udp:127.0.0.1:{port}",
            "-Y",
            str(tmp_path),
            "-w",
            str(tmp_path),
            "-m",
            "32",
            "-M",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uac:
            uac.bind(("127.0.0.1", 0))
            uac.settimeout(0.2)
            local = uac.getsockname()[1]
            request = (
                f"OPTIONS sip:x@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-kcc-values\r\n"
                "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\n"
                "Call-ID: kcc-values\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            deadline = time.monotonic() + 10
            answered = False
            while not answered and time.monotonic() < deadline and proc.poll() is None:
                uac.sendto(request, ("127.0.0.1", port))
                with contextlib.suppress(TimeoutError):
                    answered = b"200 done" in uac.recv(65535)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate(timeout=2)
    assert answered, output[-3000:]
    return output


def _as_logged(value: int | str | None) -> tuple[str, str]:
    """What xlog prints for the value and for ``value + 1``."""
    if value == NO_VALUE:
        return "<null>", "1"
    if value is None:
        return "<null>", "1"
    return v.to_str(value), v.to_str(v.add(value, 1))


def test_kamailio_agrees_with_values(tmp_path: Path) -> None:
    output = _run_kamailio(tmp_path)
    logged: dict[tuple[int, str], str] = {}
    for match in re.finditer(r"KCC\|(\d+)\|([VT])\|\[(.*)\]$", output, re.MULTILINE):
        logged[(int(match.group(1)), match.group(2))] = match.group(3)
    mismatches = []
    for i, (env, text, expected) in enumerate(MEASURED):
        env_: Env = dict(env)
        ours = run_or_no_value(parse_expr(text), env_)
        kamailio = (logged.get((i, "V")), logged.get((i, "T")))
        if _as_logged(ours) != kamailio or _as_logged(expected) != kamailio:
            mismatches.append((env, text, kamailio, _as_logged(ours), expected))
    assert mismatches == []
