"""Registrations survive a restart with a persisting ``db_mode`` (issue 7 acceptance:
"Restart with a persisting DB mode keeps registrations").

``examples/registrar.cfg`` with usrloc over SQLite (``db_sqlite``, ``db_url``
``sqlite:////abs/path``, ``db_mode`` 1: write-through), the same cfg in Kamailio 5.6 and
in kcc: bob registers, the proxy is stopped (SIGTERM) and started again on the same
database, and an INVITE for bob is relayed to the contact he registered before the
restart; a second contact registered after the restart is added to the first, and the
database holds both rows in Kamailio's ``location`` table. With ``db_mode`` 0 (memory
only), the same restart forgets him: 404.

The URL has four slashes: Kamailio's db_sqlite takes what follows the third as a path
relative to its working directory (``-w``), so ``sqlite:////abs`` is the absolute
``/abs`` in both (kcc reads ``sqlite:///abs`` as absolute too).
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from kcc_runtime.location import LocationStore

from tests.integration.conftest import (
    EXAMPLES,
    IMPLS,
    Services,
    free_udp_ports,
    needs_sipp,
    start_proxy_cfg,
)

pytestmark = [needs_sipp, pytest.mark.parametrize("impl", IMPLS)]


def _cfg(port: int, db: Path | None) -> str:
    text = (EXAMPLES / "registrar.cfg").read_text(encoding="utf-8")
    text = text.replace("listen=udp:127.0.0.1:5070", f"listen=udp:127.0.0.1:{port}")
    if db is not None:
        text = text.replace(
            'loadmodule "usrloc.so"', 'loadmodule "db_sqlite.so"\nloadmodule "usrloc.so"'
        )
        text = text.replace(
            'modparam("usrloc", "timer_interval", 60)',
            'modparam("usrloc", "timer_interval", 60)\n'
            f'modparam("usrloc", "db_url", "sqlite:///{db}")\n'
            'modparam("usrloc", "db_mode", 1)',
        )
    return text


def _exchange(port: int, data: str, local: socket.socket) -> str:
    local.sendto(data.encode(), ("127.0.0.1", port))
    return local.recv(65536).decode()


def _register(port: int, user_sock: socket.socket, n: int) -> str:
    ip, local = user_sock.getsockname()
    return _exchange(
        port,
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{local};branch=z9hG4bK-reg-{n};rport\r\n"
        "From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: persist-{n}@127.0.0.1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:bob@{ip}:{local}>;expires=600\r\nContent-Length: 0\r\n\r\n",
        user_sock,
    ).split("\r\n", 1)[0]


def _invite(port: int, caller: socket.socket, n: int) -> bytes:
    ip, local = caller.getsockname()
    return (
        f"INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{local};branch=z9hG4bK-inv-{n};rport\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: persist-inv-{n}@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:alice@{ip}:{local}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3.0)
    return sock


def _first_lines(sock: socket.socket, timeout: float) -> list[str]:
    sock.settimeout(timeout)
    out = []
    try:
        while True:
            out.append(sock.recv(65536).decode().split("\r\n", 1)[0])
    except TimeoutError:
        return out


def test_registrations_survive_a_restart(impl: str, services: Services) -> None:
    (port,) = free_udp_ports(1)
    db = services.workdir / "usrloc.db"
    # Kamailio's table, made beforehand as kamdbctl would (Kamailio does not create it)
    store = LocationStore(str(db))
    store.table("location")
    store.close()
    bob1, bob2, alice = _udp(), _udp(), _udp()
    try:
        proxy = start_proxy_cfg(services, impl, "persist1", _cfg(port, db), children=1, port=port)
        assert _register(port, bob1, 1) == "SIP/2.0 200 OK"
        assert proxy.service.stop() == 0
        # started again on the same database: bob's contact is still there
        start_proxy_cfg(services, impl, "persist2", _cfg(port, db), children=1, port=port)
        alice.sendto(_invite(port, alice, 1), ("127.0.0.1", port))
        assert _first_lines(bob1, 2.0)[:1] == [
            f"INVITE sip:bob@127.0.0.1:{bob1.getsockname()[1]} SIP/2.0"
        ]
        assert _register(port, bob2, 2) == "SIP/2.0 200 OK"
        rows = (
            sqlite3.connect(db)
            .execute("SELECT username, contact FROM location ORDER BY id")
            .fetchall()
        )
        assert rows == [
            ("bob", f"sip:bob@127.0.0.1:{bob1.getsockname()[1]}"),
            ("bob", f"sip:bob@127.0.0.1:{bob2.getsockname()[1]}"),
        ]
    finally:
        for sock in (bob1, bob2, alice):
            sock.close()


def test_memory_only_registrations_do_not_survive(impl: str, services: Services) -> None:
    (port,) = free_udp_ports(1)
    bob, alice = _udp(), _udp()
    try:
        proxy = start_proxy_cfg(services, impl, "memory1", _cfg(port, None), children=1, port=port)
        assert _register(port, bob, 1) == "SIP/2.0 200 OK"
        assert proxy.service.stop() == 0
        start_proxy_cfg(services, impl, "memory2", _cfg(port, None), children=1, port=port)
        alice.sendto(_invite(port, alice, 2), ("127.0.0.1", port))
        assert "SIP/2.0 404 Not Found" in _first_lines(alice, 2.0)
        assert _first_lines(bob, 0.3) == []
    finally:
        for sock in (bob, alice):
            sock.close()
