"""Source-address checks are exact: subnets by value (never by text prefix), IPv6 in
every textual form, IPv4 never matching IPv6, malformed text refused without an
exception.

The Kamailio answers were measured on 5.6.3 (loopback, ``listen=udp:127.0.0.1`` and
``udp:[::1]``, one OPTIONS from each, ``if (src_ip == ...) xlog(...)``):

- from 127.0.0.1: ``src_ip == "127.000.000.001"`` and ``"0127.0.0.1"`` are equal
  (``str2ip`` reads decimal with leading zeros), ``"[127.0.0.1]"``, ``"127.1"``,
  ``"127.0.0.1 "``, ``"127.0.0.10"``, ``"::ffff:127.0.0.1"`` (any case, any form) are
  not; ``src_ip == ::ffff:7f00:0/104`` and ``::/0`` do not match; ``0.0.0.0/0`` does;
- from ::1: ``"0:0:0:0:0:0:0:1"``, ``"0000:0000::0001"``, ``"[::1]"`` are equal,
  ``"::1%lo"`` is not; ``::/0`` matches, ``0.0.0.0/0`` and ``127.0.0.0/8`` do not.

(Kamailio 5.6 also takes ``"127.0.0.257"`` for 127.0.0.1: its ``str2ip`` wraps an
octet modulo 256. kcc refuses that text: not followed on purpose.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

import pytest
from kcc_runtime import db, kw
from kcc_runtime.context import Context, Received, RequestContext
from kcc_runtime.modules import nathelper, permissions
from kcc_runtime.pike import BLOCKED, NEW_BLOCKED, NOT_BLOCKED, PikeTree, ip_bytes

from tests.runtime.fake_engine import make_ctx
from tests.runtime.test_htable import FakeClock

#: text that is no address (and must never raise anywhere)
MALFORMED: Final = (
    "",
    " ",
    "10.0.0",
    "10.0.0.0.1",
    "10.0.0.1/8",
    "10.0.0.1:5060",
    "10..0.1",
    "256.0.0.1",
    "10.0.0.-1",
    "1e1.0.0.1",
    "١٠.0.0.1",  # Arabic-Indic digits
    "::g",
    ":::",
    "1::2::3",
    "[::1",
    "::1]",
    "[]",
    "[10.0.0.1]",
    "2001:db8::1/64",
    "\x00",
    "10.0.0.1\x00",
    "0" * 5000 + "1.0.0.0.1",
    "1" * 5000 + ".0.0.1",
    "a" * 100_000,
    "x.example.com",
)


# -- src_ip == subnet / address (kw.ip_in, kw.ip_eq_str) ----------------------------------


@pytest.mark.parametrize(
    ("net", "inside", "outside"),
    [
        (
            ("10.0.0.0", 8),
            ("10.0.0.0", "10.0.0.1", "10.255.255.255", "10.128.0.1"),
            ("11.0.0.0", "9.255.255.255", "100.0.0.1", "110.0.0.1", "1.0.0.10"),
        ),
        (
            ("192.168.1.0", 24),
            ("192.168.1.0", "192.168.1.255", "192.168.1.17"),
            ("192.168.2.0", "192.168.0.255", "192.168.10.1", "192.168.11.1", "192.168.100.1"),
        ),
        (
            ("10.0.0.1", 32),
            ("10.0.0.1",),
            ("10.0.0.10", "10.0.0.100", "10.0.0.0", "10.0.0.2", "100.0.0.1", "110.0.0.1"),
        ),
        (
            ("0.0.0.0", 0),
            ("0.0.0.0", "255.255.255.255", "10.0.0.1"),
            ("::", "::ffff:10.0.0.1", "2001:db8::1"),
        ),
        (
            ("10.1.2.3", 8),  # host bits are ignored, as Kamailio masks
            ("10.0.0.0", "10.255.255.255"),
            ("11.0.0.0",),
        ),
    ],
)
def test_ipv4_subnets_are_exact(
    net: tuple[str, int], inside: tuple[str, ...], outside: tuple[str, ...]
) -> None:
    network = kw.network(*net)
    for ip in inside:
        assert kw.ip_in(ip, network) == 1, ip
    for ip in outside:
        assert kw.ip_in(ip, network) == 0, ip


@pytest.mark.parametrize(
    ("net", "inside", "outside"),
    [
        (
            ("2001:db8:1:2::", 64),
            (
                "2001:db8:1:2::",
                "2001:db8:1:2::1",
                "2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF",
                "2001:0db8:0001:0002:0000:0000:0000:0001",
                "[2001:db8:1:2::5]",
            ),
            ("2001:db8:1:3::", "2001:db8:1:1:ffff:ffff:ffff:ffff", "2001:db8:1:20::1", "::1"),
        ),
        (
            ("::1", 128),
            ("::1", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "[::1]"),
            ("::", "::2", "::10", "::100", "1::", "::1:0"),
        ),
        (
            ("::", 0),
            (
                "::",
                "::1",
                "2001:db8::1",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "::ffff:1.2.3.4",
            ),
            ("0.0.0.0", "10.0.0.1", "255.255.255.255"),
        ),
        (
            ("::ffff:7f00:0", 104),  # the IPv4-mapped 127/8: never an IPv4 source
            ("::ffff:127.0.0.1", "::FFFF:7F00:1", "0:0:0:0:0:ffff:7f00:1"),
            ("127.0.0.1", "127.0.0.0"),
        ),
    ],
)
def test_ipv6_subnets_are_exact_in_every_form(
    net: tuple[str, int], inside: tuple[str, ...], outside: tuple[str, ...]
) -> None:
    network = kw.network(*net)
    for ip in inside:
        assert kw.ip_in(ip, network) == 1, ip
    for ip in outside:
        assert kw.ip_in(ip, network) == 0, ip


def test_ipv4_never_matches_an_ipv6_subnet_and_the_reverse() -> None:
    for net in (kw.network("::", 0), kw.network("::ffff:0:0", 96), kw.network("a00::", 8)):
        for ip in ("10.0.0.1", "0.0.0.0", "127.0.0.1", "255.255.255.255"):
            assert kw.ip_in(ip, net) == 0, (ip, net)
    for net in (kw.network("0.0.0.0", 0), kw.network("10.0.0.0", 8)):
        for ip in ("::", "::a00:1", "a00::1", "::ffff:10.0.0.1", "::10.0.0.1"):
            assert kw.ip_in(ip, net) == 0, (ip, net)


@pytest.mark.parametrize(
    ("source", "text", "equal"),
    [
        # measured on 5.6.3 (see the module docstring)
        ("127.0.0.1", "127.0.0.1", 1),
        ("127.0.0.1", "127.000.000.001", 1),
        ("127.0.0.1", "0127.0.0.1", 1),
        ("127.0.0.1", "127.0.0.0001", 1),
        ("127.0.0.1", "127.0.0.10", 0),
        ("127.0.0.1", "127.0.0.1 ", 0),
        ("127.0.0.1", "127.1", 0),
        ("127.0.0.1", "[127.0.0.1]", 0),
        ("127.0.0.1", "::ffff:127.0.0.1", 0),
        ("127.0.0.1", "::FFFF:127.0.0.1", 0),
        ("127.0.0.1", "0:0:0:0:0:FFFF:7F00:1", 0),
        ("127.0.0.1", "127.0.0.257", 0),  # Kamailio wraps this to .1: refused here
        ("::1", "::1", 1),
        ("::1", "0:0:0:0:0:0:0:1", 1),
        ("::1", "0000:0000::0001", 1),
        ("::1", "[::1]", 1),
        ("::1", "::1%lo", 0),
        ("::1", "::ffff:0.0.0.1", 0),
        ("::1", "0.0.0.1", 0),
        # IPv6 by value, whatever the case and compression
        ("2001:db8::a", "2001:DB8:0:0:0:0:0:A", 1),
        ("2001:db8::a", "2001:0db8::000a", 1),
        ("2001:db8::a", "2001:db8::a0", 0),
        ("2001:db8::a", "2001:db8::", 0),
        # string prefixes are never enough
        ("10.0.0.1", "10.0.0.10", 0),
        ("10.0.0.10", "10.0.0.1", 0),
        ("10.0.0.1", "100.0.0.1", 0),
        ("100.0.0.1", "10.0.0.1", 0),
        ("::1", "::10", 0),
        ("::10", "::1", 0),
    ],
)
def test_src_ip_equals_a_string_by_value(source: str, text: str, equal: int) -> None:
    assert kw.ip_eq_str(source, text) == equal
    assert kw.ip_eq_str(text, source) == equal  # the same relation both ways


def test_malformed_text_is_never_an_address_and_never_raises() -> None:
    nets = (kw.network("0.0.0.0", 0), kw.network("::", 0))
    for text in MALFORMED:
        assert kw.parse_ip(text) is None, text[:30]
        for net in nets:
            assert kw.ip_in(text, net) == 0
        assert kw.ip_eq_str(text, "10.0.0.1") == 0
        assert kw.ip_eq_str("10.0.0.1", text) == 0
        assert kw.ip_eq_str(text, text) == 0  # no address: not even equal to itself
    for value in (None, 0, 167772161, -1):
        for net in nets:
            assert kw.ip_in(value, net) == 0
        assert kw.ip_eq_str(value, "10.0.0.1") == 0


def test_a_zone_id_is_part_of_the_address() -> None:
    # a received address never carries one; a written one differs from the bare one
    assert kw.ip_eq_str("fe80::1%eth0", "fe80::1%eth0") == 1
    assert kw.ip_eq_str("fe80::1%eth0", "fe80::1") == 0
    assert kw.ip_eq_str("fe80::1%eth0", "fe80::1%eth1") == 0


# -- myself -------------------------------------------------------------------------------


def test_myself_compares_addresses_by_value_and_family() -> None:
    me = kw.Myself.from_cfg(("udp:127.0.0.1:5060", "udp:[2001:db8::1]:5060"), ())
    assert me.check("127.0.0.1", None)
    assert me.check("127.000.000.001", 5060)
    assert me.check("2001:DB8:0:0::1", 5060)
    assert me.check("[2001:db8::1]", None)
    assert me.check("2001:0db8::0001", 5060)
    for other in (
        "127.0.0.10",
        "127.0.0.2",
        "::ffff:127.0.0.1",
        "[127.0.0.1]",
        "2001:db8::10",
        "2001:db8::",
        "2001:db8::1%eth0",
        "127.0.0.1.example.com",
    ):
        assert not me.check(other, None), other
    for text in MALFORMED:
        assert not me.check(text, None)
        assert not me.check(text, 5060)


# -- permissions: the address table ------------------------------------------------------

ROWS: Final = [
    (1, "10.0.0.0", 8, 0, "ten"),
    (2, "10.0.0.1", 32, 0, None),
    (3, "192.168.1.0", 24, 5060, None),
    (4, "2001:db8:1:2::", 64, 0, None),
    (5, "::1", 128, 0, None),
    (6, "0.0.0.0", 0, 7000, None),
    (7, "::", 0, 7001, None),
    (8, "::ffff:10.0.0.0", 104, 0, None),
    (9, "10.0.0.1", 40, 0, None),  # a bad mask: the row is skipped
    (10, "10.0.0.0", 0, 0, None),  # the whole IPv4 space
]

OPTIONS: Final = (
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


def ctx_from(url: str, ip: str = "127.0.0.1", port: int = 5060) -> Context:
    mp: dict[tuple[str, str], int | str] = {("permissions", "db_url"): url}
    return make_ctx(
        OPTIONS, RequestContext, received=Received(ip, port, "127.0.0.1", 5060), modparams=mp
    )


@pytest.mark.parametrize(
    ("group", "addr", "port", "code"),
    [
        (1, "10.0.0.0", 1, 1),
        (1, "10.255.255.255", 1, 1),
        (1, "010.1.2.3", 1, 1),  # Kamailio's str2ip: decimal with leading zeros
        (1, "11.0.0.0", 1, -1),
        (1, "9.255.255.255", 1, -1),
        (1, "100.0.0.1", 1, -1),
        (1, "::ffff:10.0.0.1", 1, -1),
        (1, "[10.0.0.1]", 1, -1),
        (2, "10.0.0.1", 9, 1),
        (2, "10.0.0.10", 9, -1),
        (2, "10.0.0.100", 9, -1),
        (2, "100.0.0.1", 9, -1),
        (3, "192.168.1.255", 5060, 1),
        (3, "192.168.1.255", 5061, -1),
        (3, "192.168.10.1", 5060, -1),
        (3, "192.168.2.0", 5060, -1),
        (4, "2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF", 1, 1),
        (4, "2001:0db8:0001:0002::0001", 1, 1),
        (4, "[2001:db8:1:2::1]", 1, 1),
        (4, "2001:db8:1:3::", 1, -1),
        (4, "2001:db8:1:20::1", 1, -1),
        (5, "0:0:0:0:0:0:0:1", 1, 1),
        (5, "[::1]", 1, 1),
        (5, "::10", 1, -1),
        (5, "::ffff:0.0.0.1", 1, -1),
        (5, "0.0.0.1", 1, -1),
        (6, "255.255.255.255", 7000, 1),
        (6, "::1", 7000, -1),
        (6, "255.255.255.255", 7001, -1),
        (7, "2001:db8::1", 7001, 1),
        (7, "10.0.0.1", 7001, -1),
        (8, "::ffff:10.1.2.3", 1, 1),
        (8, "10.1.2.3", 1, -1),
        (9, "10.0.0.1", 1, -1),
        (10, "1.2.3.4", 1, 1),
        (10, "::1", 1, -1),
    ],
)
def test_allow_address_is_exact(url: str, group: int, addr: str, port: int, code: int) -> None:
    assert permissions.allow_address(ctx_from(url), group, addr, port) == code


def test_allow_source_address_uses_the_received_address_by_value(url: str) -> None:
    assert permissions.allow_source_address(ctx_from(url, "10.200.0.1"), 1) == 1
    assert permissions.allow_source_address(ctx_from(url, "11.0.0.0"), 1) == -1
    assert permissions.allow_source_address(ctx_from(url, "2001:db8:1:2::9"), 4) == 1
    assert permissions.allow_source_address(ctx_from(url, "2001:db8:1:3::9"), 4) == -1
    # exact addresses are tried before subnets (Kamailio's hash table, then its
    # subnet table): 10.0.0.1/32 (group 2) before 10/8 (group 1)
    assert permissions.allow_source_address_group(ctx_from(url, "10.0.0.1")) == 2
    assert permissions.allow_source_address_group(ctx_from(url, "10.0.0.2")) == 1
    assert permissions.allow_source_address_group(ctx_from(url, "11.0.0.1")) == 10
    assert permissions.allow_source_address_group(ctx_from(url, "::2", 5)) == -1


def test_allow_address_refuses_malformed_text_cleanly(url: str) -> None:
    ctx = ctx_from(url)
    for text in MALFORMED:
        for group in (1, 6, 7, 10):
            assert permissions.allow_address(ctx, group, text, 7000) == -1, text[:30]
        assert permissions.allow_address_group(ctx, text, 7000) == -1


def test_address_table_rows_in_any_form_match_by_value() -> None:
    table = permissions.AddressTable()
    table.add(1, "[2001:DB8::1]", 128, 0, None)
    table.add(2, "010.000.000.001", 32, 0, None)
    table.add(3, "fe80::1%eth0", 64, 0, None)
    assert table.match("2001:db8:0::0001", 5060, 1) is not None
    assert table.match("2001:db8::2", 5060, 1) is None
    assert table.match("10.0.0.1", 5060, 2) is not None
    assert table.match("10.0.0.10", 5060, 2) is None
    assert table.match("fe80::abcd", 5060, 3) is not None
    assert table.match("fe81::1", 5060, 3) is None


# -- nathelper: private ranges and "received from the Via address" ---------------------


@pytest.mark.parametrize(
    ("ip", "private"),
    [
        ("10.0.0.0", True),
        ("010.000.000.001", True),  # str2ip: decimal with leading zeros
        ("10.255.255.255", True),
        ("11.0.0.0", False),
        ("9.255.255.255", False),
        ("172.16.0.0", True),
        ("172.31.255.255", True),
        ("172.32.0.0", False),
        ("172.15.255.255", False),
        ("192.168.0.0", True),
        ("192.168.255.255", True),
        ("192.169.0.0", False),
        ("100.64.0.0", True),
        ("100.127.255.255", True),
        ("100.128.0.0", False),
        ("100.63.255.255", False),
        ("1.10.0.0", False),
        ("110.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::1", False),
        ("[10.0.0.1]", False),
    ],
)
def test_rfc1918_ranges_are_exact(ip: str, private: bool) -> None:
    assert nathelper.is_private(ip, 0) is private
    assert nathelper.is_private(ip, 1) is private


def test_rfc1918_refuses_malformed_text() -> None:
    for text in MALFORMED:
        assert nathelper.is_private(text) is False


def _via_ctx(via_host: str, source: str) -> Context:
    data = (
        f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host}:5080;branch=z9hG4bK1\r\n"
        "From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    return make_ctx(data, RequestContext, received=Received(source, 5080, "127.0.0.1", 5060))


@pytest.mark.parametrize(
    ("via_host", "source", "natted"),
    [
        ("[::1]", "::1", -1),
        ("[0:0:0:0:0:0:0:1]", "::1", -1),
        ("[2001:DB8::A]", "2001:db8::a", -1),
        ("[::10]", "::1", 1),
        ("10.0.0.1", "10.0.0.1", -1),
        ("10.0.0.1", "10.0.0.10", 1),
        ("10.0.0.10", "10.0.0.1", 1),
        ("10.0.0.1", "100.0.0.1", 1),
        ("[::ffff:10.0.0.1]", "10.0.0.1", 1),
        ("host.example.com", "10.0.0.1", 1),
    ],
)
def test_nat_uac_test_received_compares_by_value(via_host: str, source: str, natted: int) -> None:
    assert nathelper.nat_uac_test(_via_ctx(via_host, source), 2) == natted


# -- pike: one leaf per address, whatever its form; IPv4 and IPv6 apart ----------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


def test_pike_keys_are_the_address_bytes() -> None:
    assert ip_bytes("::1") == ip_bytes("0:0:0:0:0:0:0:1") == ip_bytes("[::1]") == bytes(15) + b"\1"
    assert ip_bytes("10.0.0.1") == b"\n\0\0\1"
    assert ip_bytes("::ffff:10.0.0.1") != ip_bytes("10.0.0.1")
    for text in MALFORMED[:-1]:  # the last one is a name
        assert ip_bytes(text) is None or len(ip_bytes(text) or b"") in (4, 16)
    assert ip_bytes("x.example.com") is None


def test_pike_counts_every_form_of_an_ipv6_address_on_one_leaf(clock: FakeClock) -> None:
    pike = PikeTree(clock=clock, max_hits=16, time_unit=2, timeout=4)
    forms = ("2001:db8::7", "2001:DB8:0:0:0:0:0:7", "[2001:db8::7]", "2001:0db8::0007")
    codes = [pike.check(forms[i % len(forms)]) for i in range(34)]
    # the same 33 + 1 as one form (tests/runtime/test_pike.py)
    assert codes == [NOT_BLOCKED] * 33 + [NEW_BLOCKED]
    assert pike.check("2001:db8::8") == NOT_BLOCKED


def test_pike_never_blocks_ipv4_for_ipv6_traffic_or_the_reverse(clock: FakeClock) -> None:
    pike = PikeTree(clock=clock, max_hits=16, time_unit=2, timeout=4)
    # a00:1:: starts with the bytes of 10.0.0.1: a common prefix in the shared tree
    assert BLOCKED in [pike.check("a00:1::") for _ in range(40)]
    assert pike.check("10.0.0.1") == NOT_BLOCKED
    assert pike.check("::ffff:10.0.0.1") == NOT_BLOCKED
    other = PikeTree(clock=clock, max_hits=16, time_unit=2, timeout=4)
    assert BLOCKED in [other.check("10.0.0.1") for _ in range(40)]
    assert other.check("a00:1::") == NOT_BLOCKED
    assert other.check("::ffff:10.0.0.1") == NOT_BLOCKED
    assert other.check("10.0.0.10") == NOT_BLOCKED


def test_pike_refuses_malformed_text_cleanly(clock: FakeClock) -> None:
    pike = PikeTree(clock=clock, max_hits=2, time_unit=2, timeout=4)
    for text in MALFORMED:
        for _ in range(5):
            assert pike.check(text) == NOT_BLOCKED
    assert pike.nodes_in_use == 0
