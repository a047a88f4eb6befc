"""RPC control against a running proxy (issue 7 point 6): the real ``kamcmd`` (ctl's
binrpc over its unix socket) and kamctl-style JSON-RPC over jsonrpcs' FIFO, against
Kamailio 5.6.3 and the kcc proxy built from the same cfg (``examples/registrar.cfg``
with ctl, jsonrpcs, cfg_rpc, kex and tmx loaded and a custom cfg variable).

Both run with 2 workers, their RPC sockets in their own directory (``-Y`` /
``--runtime-dir``). A raw UDP REGISTER registers alice; then ``ul.dump``,
``ul.lookup``, ``core.version``, ``stats.get_statistics all``, ``cfg.get``/``cfg.seti``
and ``ul.rm`` are run, and the answers' structures (names, nesting and order, not
the volatile values) must be the same for both; values kcc controls (the contact,
its Call-ID, CSeq, User-Agent, the statistics that count the REGISTER) are checked
exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    EXAMPLES,
    Services,
    free_udp_ports,
    start_proxy_cfg,
)

pytestmark = pytest.mark.skipif(
    shutil.which("kamcmd") is None or shutil.which("kamailio") is None,
    reason="kamailio and kamcmd (the kamailio package) are needed",
)

EXTRA = """loadmodule "kex.so"
loadmodule "tmx.so"
loadmodule "ctl.so"
loadmodule "jsonrpcs.so"
loadmodule "cfg_rpc.so"

pstn.gw_port = 5061 desc "the PSTN gateway's port"
"""


def _cfg(port: int) -> str:
    text = (EXAMPLES / "registrar.cfg").read_text(encoding="utf-8")
    text = re.sub(r"listen=udp:127\.0\.0\.1:\d+", f"listen=udp:127.0.0.1:{port}", text)
    return text.replace('loadmodule "registrar.so"\n', 'loadmodule "registrar.so"\n' + EXTRA)


def _register(port: int) -> tuple[str, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3.0)
    local = int(sock.getsockname()[1])
    msg = (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-rpc-1;rport\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:alice@127.0.0.1>\r\n"
        "Call-ID: rpc-reg-1@127.0.0.1\r\nCSeq: 7 REGISTER\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:alice@127.0.0.1:{local}>;expires=600\r\n"
        "User-Agent: rpc-test/1.0\r\nContent-Length: 0\r\n\r\n"
    )
    try:
        sock.sendto(msg.encode(), ("127.0.0.1", port))
        reply = sock.recv(65536).decode()
    finally:
        sock.close()
    return reply.split("\r\n", 1)[0], local


def _kamcmd(sock: Path, *args: str) -> str:
    result = subprocess.run(
        ["kamcmd", "-s", f"unix:{sock}", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout + result.stderr


def _fifo(fifo: Path, method: str, params: list[Any] | None = None) -> Any:
    name = f"kcc_rpc_test_{os.getpid()}"
    reply = Path("/tmp") / name
    with_params = {} if params is None else {"params": params}
    os.mkfifo(reply)
    try:
        doc = {"jsonrpc": "2.0", "method": method, **with_params, "reply_name": name, "id": 1}
        with open(fifo, "w", encoding="utf-8") as out:
            out.write(json.dumps(doc) + "\n")
        fd = os.open(reply, os.O_RDONLY)
        with os.fdopen(fd, "rb") as answer:
            return json.loads(answer.read())
    finally:
        reply.unlink()


def _shape(value: Any) -> Any:
    """A JSON value with its leaves replaced by their type names."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _text_shape(output: str) -> list[str]:
    """kamcmd's output with the values after ``key:`` removed."""
    return [re.sub(r":\s.*$", ":", line) for line in output.splitlines()]


def _session(services: Services, impl: str) -> dict[str, Any]:
    port = free_udp_ports(1)[0]
    proxy = start_proxy_cfg(services, impl, "rpc", _cfg(port), children=2, port=port)
    rundir = services.workdir / f"{impl}-rpc-{port}"
    ctl = rundir / "kamailio_ctl"
    status, contact_port = _register(port)
    assert status == "SIP/2.0 200 OK"
    out: dict[str, Any] = {"contact_port": contact_port}
    out["version"] = _kamcmd(ctl, "core.version")
    out["dump"] = _kamcmd(ctl, "ul.dump")
    out["lookup"] = _kamcmd(ctl, "ul.lookup", "location", "alice@127.0.0.1")
    out["stats"] = _kamcmd(ctl, "stats.get_statistics", "all")
    out["cfg_before"] = _kamcmd(ctl, "cfg.get", "pstn", "gw_port")
    out["seti"] = _kamcmd(ctl, "cfg.seti", "pstn", "gw_port", "7000")
    out["cfg_after"] = _kamcmd(ctl, "cfg.get", "pstn", "gw_port")
    out["missing"] = _kamcmd(ctl, "no.such")
    out["json_dump"] = _fifo(rundir / "kamailio_rpc.fifo", "ul.dump")
    out["json_version"] = _fifo(rundir / "kamailio_rpc.fifo", "core.version")
    out["rm"] = _kamcmd(ctl, "ul.rm", "location", "alice@127.0.0.1")
    out["lookup_after"] = _kamcmd(ctl, "ul.lookup", "location", "alice@127.0.0.1")
    proxy.service.stop()
    out["sockets_left"] = sorted(p.name for p in rundir.iterdir() if p.name.startswith("kamailio_"))
    return out


def test_kamcmd_and_fifo_against_kamailio(services: Services) -> None:
    kam = _session(services, "kamailio")
    kcc = _session(services, "kcc")

    assert kam["version"].startswith("kamailio 5.6")
    assert re.fullmatch(r"kcc \S+ \(\S+/linux\) \n", kcc["version"])
    assert kcc["json_version"]["result"] == kcc["version"].rstrip("\n")

    # the same structure, key by key, in the same order
    assert _text_shape(kcc["dump"]) == _text_shape(kam["dump"])
    assert _text_shape(kcc["lookup"]) == _text_shape(kam["lookup"])
    assert _shape(kcc["json_dump"]) == _shape(kam["json_dump"])
    for line in (
        f"Address: sip:alice@127.0.0.1:{kcc['contact_port']}",
        "Call-ID: rpc-reg-1@127.0.0.1",
        "CSeq: 7",
        "User-Agent: rpc-test/1.0",
        "AoR: alice",
        "Methods: -1",
        "Tcpconn-Id: -1",
    ):
        assert line in kcc["dump"]

    kam_stats = dict(line.split(" = ") for line in kam["stats"].splitlines())
    kcc_stats = dict(line.split(" = ") for line in kcc["stats"].splitlines())
    # every statistic kcc lists is one Kamailio lists (kcc leaves out shmem/dns/tcp)
    assert set(kcc_stats) <= set(kam_stats)
    assert {k for k in kam_stats if k.split(":")[0] in ("core", "sl", "tmx", "usrloc")} <= set(
        kcc_stats
    )
    for name in (
        "core:rcv_requests_register",
        "usrloc:location_contacts",
        "registrar:max_contacts",
    ):
        assert kcc_stats[name] == kam_stats[name], name
    assert int(kcc_stats["sl:200_replies"]) >= 1

    for result in (kam, kcc):
        assert result["cfg_before"] == "5061\n"
        assert result["seti"] == ""
        assert result["cfg_after"] == "7000\n"
        assert result["missing"] == "error: 500 - command no.such not found\n"
        assert result["rm"] == ""
        assert result["lookup_after"] == "error: 500 - AOR not found in location table\n"
    # kcc removes its sockets and FIFO when it stops (Kamailio leaves them)
    assert kcc["sockets_left"] == []
