"""JSON-RPC over HTTP on the stock cfg (issue 7 point 6, ``WITH_JSONRPC``): xhttp's
``event_route[xhttp:request]`` and ``jsonrpc_dispatch()``, with ``curl`` against
Kamailio 5.6.3 and the kcc proxy built from Debian's unmodified
``/etc/kamailio/kamailio.cfg`` with ``WITH_JSONRPC`` (and ``WITH_ANTIFLOOD`` for
the htable and pike commands), each listening on UDP and TCP on one loopback port.

The answers must be the same bytes but for what differs by nature (the version
string, the client's port in the ``Sia`` line, the ``Content-Length`` that follows
from them): ``core.version``'s shape, ``ul.dump`` (no registration: the same
document), ``stats.get_statistics tmx:``, an unknown method (HTTP 500 "Method Not
Found"), ``htable.seti``/``htable.dump``/``htable.get``/``htable.delete`` on
``ipban``, ``pike.top``, and a URL outside ``/RPC`` answered by the route's own
``xhttp_reply`` (200 "Wrong URL"). A SIP OPTIONS over the same TCP port is still
SIP.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    Services,
    free_udp_ports,
    kamailio_command,
    kcc_build,
    kcc_command,
    spawn,
    wait_until,
)

STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
DEFINES = ("WITH_JSONRPC", "WITH_ANTIFLOOD")

pytestmark = pytest.mark.skipif(
    shutil.which("kamailio") is None or shutil.which("curl") is None or not STOCK_CFG.is_file(),
    reason="kamailio (Debian's package, with its stock cfg) and curl are needed",
)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def _start(services: Services, impl: str) -> int:
    port = free_udp_ports(1)[0]
    rundir = services.workdir / f"{impl}-jsonrpc-{port}"
    rundir.mkdir()
    cfg = rundir / "kamailio.cfg"
    cfg.write_text(STOCK_CFG.read_text(encoding="utf-8"), encoding="utf-8")
    if impl == "kamailio":
        argv = kamailio_command(cfg, rundir, 2)
        argv += ["-l", f"udp:127.0.0.1:{port}", "-l", f"tcp:127.0.0.1:{port}"]
        for define in DEFINES:
            argv += ["-A", define]
    else:
        module = rundir / "kamailio.py"
        kcc_build(cfg, module, DEFINES)
        argv = [*kcc_command(module, port, 2), "--listen", f"tcp:127.0.0.1:{port}"]
    service = services.add(
        spawn(impl, argv, rundir / "proxy.log", cwd=rundir, stop_signal=signal.SIGTERM)
    )
    ready = wait_until(lambda: not service.alive() or _tcp_open(port), 20.0)
    if not ready or not service.alive():
        pytest.fail(f"{impl} did not start:\n{service.log_tail()}")
    return port


def _curl(port: int, path: str, body: str | None = None) -> tuple[int, str, dict[str, str], str]:
    """(status, reason, headers, body) of one curl request (POST when ``body``)."""
    argv = ["curl", "-s", "-i", "--max-time", "5", f"http://127.0.0.1:{port}{path}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data", body]
    raw = subprocess.run(argv, capture_output=True, timeout=10, check=False).stdout
    out = raw.decode("utf-8")
    head, _, text = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    m = re.fullmatch(r"HTTP/1\.1 (\d{3}) (.*)", lines[0])
    assert m is not None, out
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(m.group(1)), m.group(2), headers, text


def _rpc(port: int, method: str, *params: Any) -> tuple[int, str, dict[str, str], str]:
    doc = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
    return _curl(port, "/RPC", json.dumps(doc))


def _session(services: Services, impl: str) -> dict[str, Any]:
    port = _start(services, impl)
    out: dict[str, Any] = {}
    out["version"] = _rpc(port, "core.version")
    out["dump"] = _rpc(port, "ul.dump")
    out["tmx"] = _rpc(port, "stats.get_statistics", "tmx:")
    out["missing"] = _rpc(port, "no.such")
    out["seti"] = _rpc(port, "htable.seti", "ipban", "127.0.0.9", 1)
    out["sets"] = _rpc(port, "htable.sets", "ipban", "1.2.3.4", "x")
    out["htdump"] = _rpc(port, "htable.dump", "ipban")
    out["htget"] = _rpc(port, "htable.get", "ipban", "127.0.0.9")
    out["htget_missing"] = _rpc(port, "htable.get", "ipban", "nokey")
    out["htdel"] = _rpc(port, "htable.delete", "ipban", "1.2.3.4")
    out["htdel_again"] = _rpc(port, "htable.delete", "ipban", "1.2.3.4")
    out["pike"] = _rpc(port, "pike.top", "ALL")
    out["pike_bad"] = _rpc(port, "pike.top", "COLD")
    out["reset"] = _rpc(port, "stats.reset_statistics", "sl:")
    out["wrong_url"] = _curl(port, "/foo?a=1")
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        local = sock.getsockname()[1]
        sock.sendall(
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bK-jsonrpc-1\r\n"
            "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
            "Call-ID: jsonrpc-options-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        out["options"] = sock.recv(65536).split(b"\r\n", 1)[0]
    return out


def _same(
    kam: tuple[int, str, dict[str, str], str], kcc: tuple[int, str, dict[str, str], str]
) -> None:
    assert kcc[:2] == kam[:2]
    assert list(kcc[2]) == list(kam[2])  # the same header names, in order
    assert kcc[2]["Content-Type"] == kam[2]["Content-Type"]
    assert kcc[2]["Server"] == kam[2]["Server"]
    assert kcc[3] == kam[3]


def test_jsonrpc_over_http_against_kamailio(services: Services) -> None:
    kam = _session(services, "kamailio")
    kcc = _session(services, "kcc")

    # core.version: the same document around a different version string
    for result, version in ((kam, r"kamailio 5\.6\.\d+"), (kcc, r"kcc \S+")):
        status, reason, headers, body = result["version"]
        assert (status, reason) == (200, "OK")
        assert list(headers) == ["Sia", "Content-Type", "Server", "Content-Length"]
        assert re.fullmatch(r"SIP/2\.0/TCP 127\.0\.0\.1:\d+", headers["Sia"])
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(body.encode())
        assert re.fullmatch(
            '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t"' + version + r' \(x86_64/linux\) ",'
            '\n\t"id":\t1\n}',
            body,
        ), body

    for name in (
        "dump", "tmx", "missing", "seti", "sets", "htget_missing", "htdel", "htdel_again",
        "pike", "pike_bad", "reset", "wrong_url",
    ):  # fmt: skip
        _same(kam[name], kcc[name])
    assert kcc["missing"][:2] == (500, "Method Not Found")
    assert kcc["wrong_url"][3] == "<html><body>Wrong URL /foo?a=1</body></html>"
    assert kcc["htdel_again"][:2] == (404, "Key not found in htable.")
    assert json.loads(kcc["reset"][3])["result"] == {}

    # the dump and the item: the same but for the expiry time
    _same(kam["htdump"], kcc["htdump"])
    assert json.loads(kcc["htdump"][3])["result"] == [
        {"entry": 30, "size": 1, "slot": [{"name": "127.0.0.9", "value": 1, "type": "int"}]},
        {"entry": 253, "size": 1, "slot": [{"name": "1.2.3.4", "value": "x", "type": "str"}]},
    ]
    expire = re.compile(r'"expire":\t"[^"]+"')
    for result in (kam, kcc):
        assert result["htget"][:2] == (200, "OK")
    assert expire.sub("", kcc["htget"][3]) == expire.sub("", kam["htget"][3])

    for result in (kam, kcc):
        assert result["options"] == b"SIP/2.0 200 Keepalive"
