"""permissions' address table over SQLite.

Expected codes measured on Kamailio 5.6.3 with ``db_sqlite`` and the rows below
(requests from 127.0.0.1): see :mod:`kcc_runtime.modules.permissions`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from kcc_runtime import db
from kcc_runtime.context import Context, Received, RequestContext
from kcc_runtime.modules import permissions

from tests.runtime.fake_engine import make_ctx

ROWS = [
    (1, "127.0.0.2", 32, 0, "t1"),
    (2, "127.0.3.0", 24, 5070, None),
    (3, "::1", 128, 0, None),
    (4, "gw.example.com", 32, 0, None),
    (5, "2001:db8::", 32, 5060, None),
]

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = str(tmp_path / "k.db")
    db.create_tables(path, ("address",))
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (?,?,?,?,?)", ROWS)
    conn.commit()
    conn.close()
    return f"sqlite://{path}"


def ctx_from(url: str, ip: str, port: int, **extra: str) -> Context:
    mp: dict[tuple[str, str], int | str] = {("permissions", "db_url"): url}
    mp.update({("permissions", k): v for k, v in extra.items()})
    return make_ctx(
        OPTIONS, RequestContext, received=Received(ip, port, "127.0.0.1", 5060), modparams=mp
    )


def test_measured_codes(url: str) -> None:
    ctx = ctx_from(url, "127.0.0.1", 40000)
    assert permissions.allow_source_address(ctx) == -1
    assert permissions.allow_source_address(ctx, 2) == -1
    assert permissions.allow_source_address_group(ctx) == -1
    assert permissions.allow_address(ctx, 2, "127.0.3.9", 5070) == 1
    assert permissions.allow_address(ctx, 2, "127.0.3.9", 5071) == -1
    assert permissions.allow_address(ctx, 3, "::1", 0) == 1
    assert permissions.allow_address(ctx, 1, "127.0.0.2", 9) == 1


def test_source_address_groups_ipv6_and_names(url: str) -> None:
    ctx = ctx_from(url, "127.0.0.2", 5060, peer_tag_avp="$avp(s:peer)")
    assert permissions.allow_source_address(ctx) == 1
    assert ctx.avps["peer"] == ["t1"]
    assert permissions.allow_source_address_group(ctx) == 1
    ctx = ctx_from(url, "2001:db8:1::5", 5060)
    assert permissions.allow_source_address_group(ctx) == 5
    assert permissions.allow_source_address(ctx, 5) == 1
    ctx = ctx_from(url, "2001:db8:1::5", 5061)
    assert permissions.allow_source_address_group(ctx) == -1
    assert permissions.allow_address_group(ctx, "gw.example.com", 1) == 4
    assert permissions.allow_address(ctx, 4, "GW.example.com", 7) == 1
    assert permissions.allow_address(ctx, 4, "other.example.com", 7) == -1


def test_reload_sees_new_rows(url: str) -> None:
    ctx = ctx_from(url, "127.0.0.9", 5060)
    assert permissions.allow_source_address(ctx, 9) == -1
    conn = sqlite3.connect(url.removeprefix("sqlite://"))
    conn.execute("INSERT INTO address (grp, ip_addr, mask, port) VALUES (9, '127.0.0.9', 32, 0)")
    conn.commit()
    conn.close()
    assert permissions.allow_source_address(ctx, 9) == -1  # still the loaded copy
    permissions.reload_addresses()
    assert permissions.allow_source_address(ctx, 9) == 1


def test_no_database_is_minus_one(tmp_path: Path) -> None:
    ctx = make_ctx(OPTIONS, RequestContext)
    assert permissions.allow_source_address(ctx) == -1
    ctx = ctx_from(f"sqlite://{tmp_path}/missing.db", "127.0.0.2", 5060)
    assert permissions.allow_source_address(ctx) == -1
