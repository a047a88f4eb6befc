"""pike (kcc_runtime.pike): Kamailio's IP tree, its counters and timers, with an
injected clock. The request counts were measured on Kamailio 5.6 with
``examples/antiflood.cfg`` (x = 16, one OPTIONS at a time from 127.0.0.3: 21
answered, the 22nd blocked; see tests/integration/test_antiflood.py); the others
follow from the same tree rules (pike_funcs.c / ip_tree.c)."""

from __future__ import annotations

import logging
import os

import pytest
from kcc_runtime.context import Received
from kcc_runtime.modules import pike as mod
from kcc_runtime.pike import BLOCKED, NEW_BLOCKED, NOT_BLOCKED, PikeTree

from tests.runtime.fake_engine import make_ctx
from tests.runtime.test_htable import OPTIONS, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)  # a multiple of the 2 s unit: swaps at t+2, t+4...


def tree(clock: FakeClock, **kwargs: int) -> PikeTree:
    params = {"max_hits": 16, "time_unit": 2, "timeout": 4} | kwargs
    return PikeTree(clock=clock, **params)


def run(pike: PikeTree, ip: str, count: int) -> list[int]:
    return [pike.check(ip) for _ in range(count)]


def test_new_ipv4_is_blocked_after_21_requests(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pike = tree(clock)
    with caplog.at_level(logging.WARNING, logger="kcc_runtime.pike"):
        codes = run(pike, "127.0.0.3", 24)
    assert codes == [NOT_BLOCKED] * 21 + [NEW_BLOCKED, BLOCKED, BLOCKED]
    assert caplog.messages == ["PIKE - BLOCKing ip 127.0.0.3, node=0x3"]
    assert pike.blocked_ips == 1


def test_a_neighbour_sharing_the_prefix_needs_only_x_more(clock: FakeClock) -> None:
    pike = tree(clock)
    run(pike, "127.0.0.3", 22)
    assert run(pike, "127.0.0.4", 17) == [NOT_BLOCKED] * 16 + [NEW_BLOCKED]


def test_new_ipv6_is_blocked_after_33_requests(clock: FakeClock) -> None:
    pike = tree(clock)
    assert run(pike, "2001:db8::7", 34) == [NOT_BLOCKED] * 33 + [NEW_BLOCKED]
    assert pike.check("[2001:db8::7]") == BLOCKED


def test_swap_keeps_then_releases_the_block(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pike = tree(clock, timeout=120)
    run(pike, "192.0.2.1", 22)
    clock.t += 2  # one swap: the previous unit's 16+ leaf hits keep it hot
    assert pike.check("192.0.2.1") == BLOCKED
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kcc_runtime.pike"):
        clock.t += 4  # two more swaps: both units quiet, unblocked
        assert pike.check("192.0.2.1") == NOT_BLOCKED
    assert caplog.messages == ["PIKE - UNBLOCKing node 0x3"]
    # the tree is kept: x leaf hits in one unit (that one included) block it again
    assert run(pike, "192.0.2.1", 14) == [NOT_BLOCKED] * 14
    assert pike.check("192.0.2.1") == NEW_BLOCKED


def test_remove_latency_forgets_an_idle_source(clock: FakeClock) -> None:
    pike = tree(clock)
    run(pike, "127.0.0.3", 10)
    assert pike.nodes_in_use == 4
    clock.t += 5  # leaf idle past remove_latency 4
    pike.on_timer()
    assert pike.nodes_in_use == 3  # the leaf; its father waits its own latency
    clock.t += 5
    pike.on_timer()
    clock.t += 5
    pike.on_timer()
    clock.t += 5
    pike.on_timer()
    assert pike.nodes_in_use == 0
    assert run(pike, "127.0.0.3", 22)[-1] == NEW_BLOCKED  # starts over: 21 again


def test_rotating_sources_cannot_grow_the_tree(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pike = tree(clock, capacity=64, timeout=120)
    with caplog.at_level(logging.WARNING, logger="kcc_runtime.pike"):
        for n in range(2000):
            for _ in range(6):  # enough to make every address a full leaf
                pike.check(f"10.{n % 7}.{n // 7 % 250}.{n % 251}")
            assert pike.nodes_in_use <= 64
    assert "pike: the IP tree is full (64 nodes): dropping the 8 coldest entries" in (
        caplog.messages
    )
    # a real flooder is still caught
    assert NEW_BLOCKED in run(pike, "192.0.2.50", 60)


def test_counters_are_shared_with_a_forked_worker(clock: FakeClock) -> None:
    pike = tree(clock)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: 11 of the flooder's requests
        code = 0 if run(pike, "127.0.0.3", 11) == [NOT_BLOCKED] * 11 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run(pike, "127.0.0.3", 11) == [NOT_BLOCKED] * 10 + [NEW_BLOCKED]
    pike.close()


def test_top_lists_hot_and_all_leaves(clock: FakeClock) -> None:
    pike = tree(clock, timeout=120)
    run(pike, "127.0.0.3", 30)
    run(pike, "127.0.0.4", 3)
    hot = pike.top()
    assert [(e.ip, e.leaf_hits, e.status) for e in hot] == [("127.0.0.3", (0, 24), "HOT")]
    assert hot[0].expires == int(clock.t) + 120
    every = pike.top("ALL")
    assert [(e.ip, e.leaf_hits) for e in every] == [("127.0.0.3", (0, 24)), ("127.0.0.4", (0, 2))]


def test_module_functions(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(OPTIONS)
    ctx.received = Received("192.0.2.8", 5060, "127.0.0.1", 5060)
    ctx.proc.modparams = {("pike", "reqs_density_per_unit"): 4}
    codes = [mod.pike_check_req(ctx) for _ in range(8)]
    # x = 4: each hit on a prefix splits it (x/4 = 1): 1 + 3 splits, then 4 leaf hits
    assert codes == [1] * 7 + [-2]
    assert ctx.proc.pike is not None and ctx.proc.pike.max_hits == 4
    assert mod.pike_check_ip(ctx, "192.0.2.8") == -1
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.pike"):
        assert mod.pike_check_ip(ctx, "not-an-ip") == -1
        assert mod.pike_check_ip(ctx, "") == -1
    assert caplog.messages == ["failed to parse ip address: not-an-ip"]
