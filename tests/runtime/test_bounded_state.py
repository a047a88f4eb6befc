"""State filled from network input stays under its bound, however many distinct
sources, keys or texts an attacker sends.

Each test feeds many distinct values (source addresses, ``$sht`` keys, ``$shv``
names, host names, patterns) into one table or cache and checks its size never goes
past the bound the code claims, and that the table still works afterwards.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

import pytest
from kcc_runtime import kw, pv
from kcc_runtime.engine import Proxy, Socket
from kcc_runtime.htable import DictTable, HashTables, capacity_for, parse_definition
from kcc_runtime.modules import core, textops
from kcc_runtime.pike import NEW_BLOCKED, PikeTree
from kcc_runtime.router import Config, Router
from kcc_runtime.shm import SharedMemoryStore, SharedValueError
from kcc_runtime.shtable import SharedHtables
from kcc_runtime.sip.uri import CACHED_MAX_LEN

from tests.runtime.test_htable import FakeClock

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


def sources(count: int) -> Iterator[str]:
    """``count`` distinct addresses, IPv4 and IPv6 mixed (rotating /64s)."""
    for n in range(count):
        if n % 2:
            yield str(ipaddress.IPv4Address(0x0A000000 + n * 7919 % (1 << 24)))
        else:
            yield f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::{n % 97 + 1:x}"


# -- htable: $sht(t=>$si) from rotating sources -----------------------------------------


def test_dict_table_holds_at_most_its_capacity(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tables = HashTables.from_modparams(["ipban=>size=4;initval=0;"], clock)
    table = tables.tables["ipban"]
    assert isinstance(table, DictTable)
    bound = capacity_for(parse_definition("ipban=>size=4;"))
    assert bound == 1024
    first = "192.0.2.1"
    assert table.set(first, 1)
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.htable"):
        results = [table.set(ip, 1) for ip in sources(5000)]
    assert len(table.items) == bound
    assert results.count(True) == bound - 1
    assert "cannot set $sht(ipban=>" in caplog.text and "the table is full" in caplog.text
    # a full table still updates its keys, counts them, and takes new keys again
    # once some go
    assert table.set(first, 7) and table.get(first) == 7
    assert table.add(first, 1) == 8
    assert table.add("198.51.100.1", 1) is None  # a new key: refused, nothing written
    assert table.get("198.51.100.1") == 0  # initval
    table.set(first, None)  # delete
    assert table.set("198.51.100.1", 1)
    assert len(table.items) == bound


def test_shared_table_holds_at_most_its_capacity(clock: FakeClock) -> None:
    memory = SharedHtables([parse_definition("ipban=>size=4;")])
    table = memory.view(clock).tables["ipban"]
    bound = capacity_for(parse_definition("ipban=>size=4;"))
    accepted = sum(table.set(ip, 1) for ip in sources(3000))
    assert accepted == bound
    assert len(table) == bound
    assert table.get(next(iter(sources(1)))) == 1  # the first keys are intact
    memory.close()


# -- pike: rotating IPv6 /64s cannot grow the tree -------------------------------------


def test_pike_tree_is_bounded_for_rotating_ipv6_and_ipv4_sources(clock: FakeClock) -> None:
    pike = PikeTree(clock=clock, max_hits=16, time_unit=2, timeout=120, capacity=256)
    for n, ip in enumerate(sources(4000)):
        for _ in range(1 + n % 3):
            pike.check(ip)
        assert pike.nodes_in_use <= 256
    # still catches a flooder after all that eviction
    assert NEW_BLOCKED in [pike.check("2001:db8:ffff::1") for _ in range(80)]
    assert pike.nodes_in_use <= 256


# -- $shv: a fixed table ------------------------------------------------------------------


def test_shv_table_refuses_names_past_its_slots() -> None:
    store = SharedMemoryStore(slots=64)
    stored = 0
    for n in range(500):
        try:
            store.set(f"v{n}", n)
            stored += 1
        except SharedValueError:
            pass
    assert stored == 64
    # reading names never set does not grow the process's slot index
    for n in range(500, 5000):
        assert store.get(f"v{n}") == 0
    assert len(store._index) <= 64
    assert (store.get("v1"), store.get("v63")) == (1, 63)  # the first 64 are intact
    store.set("v1", "again")  # a name already in the table can still be written
    assert store.get("v1") == "again"
    store.close()


# -- caches of this process keyed by message text --------------------------------------


def test_myself_host_cache_is_bounded() -> None:
    me = kw.Myself.from_cfg(("udp:127.0.0.1:5060",), ())
    for n in range(10_000):
        assert not me.check(f"h{n}.example.com", 5060)
        assert not me.check(str(ipaddress.IPv4Address(0x0B000000 + n)), None)
    assert len(kw._HOST_KEYS) <= kw._HOST_KEYS_MAX
    long_host = "x" * (CACHED_MAX_LEN + 1) + ".example.com"
    assert not me.check(long_host, 5060)
    assert long_host not in kw._HOST_KEYS
    assert me.check("127.0.0.1", 5060)


def test_textops_caches_are_bounded() -> None:
    for n in range(6000):
        textops._method_set(f"INVITE|M{n}")
    assert len(textops._METHOD_SETS) <= 4096
    for n in range(2000):
        textops.parse_subst(f"/a{n}/b/")
    assert len(textops._SUBST_CACHE) <= 1024


def test_uri_split_caches_are_bounded() -> None:
    for n in range(6000):
        pv.split_uri(f"sip:u{n}@h{n}.example.com")
        core.split_uri(f"sip:u{n}@h{n}.example.com")
    assert pv._split_uri.cache_info().currsize <= 1024
    assert core._split_uri.cache_info().currsize <= 4096
    long_uri = "sip:" + "u" * 5000 + "@example.com"
    before = pv._split_uri.cache_info().currsize
    assert pv.split_uri(long_uri) is not None
    assert pv._split_uri.cache_info().currsize == before  # never cached


# -- the outbound guard's per-destination memory ----------------------------------------


def test_outbound_guard_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    proxy = Proxy(Router(config=Config()), [Socket("udp", "127.0.0.1", 5960)], allow_dst=LOOPBACK)
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.engine"):
        for n, ip in enumerate(sources(10_000)):
            assert proxy.dst_allowed((ip, 5060 + n % 3)) is False
    assert len(proxy._allowed) <= 4096
    assert len(proxy._refused_logged) <= 4096
    assert proxy.dst_allowed(("127.0.0.1", 5060)) is True
