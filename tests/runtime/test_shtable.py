"""Shared htables (kcc_runtime.shtable): the $sht semantics over the shared table,
its bounds, and the tables seen by forked workers."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Iterator

import pytest
from kcc_runtime.context import Context
from kcc_runtime.htable import ExpiredRecord, HashTables, parse_definition
from kcc_runtime.modules import htable as htable_module
from kcc_runtime.router import Config, Router
from kcc_runtime.shtable import ModuleMemory, SharedHtables, SharedTable, capacity_for

from tests.runtime import test_htable as base
from tests.runtime.fake_engine import make_ctx
from tests.runtime.test_htable import (  # noqa: F401 -- rerun over the shared table
    DEFS,
    OPTIONS,
    FakeClock,
    get,
    put,
    test_iterator_limit_and_restart,
    test_setex_through_iterator,
    test_sht_lock_unlock,
    test_sht_match,
    test_sht_read_write_delete,
    test_sht_reset,
    test_sht_rm,
    test_sht_rm_name_and_value,
    test_sht_rm_re,
    test_sht_setxs_setxi,
    test_sht_unknown_table,
    test_shtcn,
    test_shtcn_case,
    test_shtcv,
    test_shtex_write,
    test_shtinc_shtdec,
    test_shtinc_wraps_at_32_bits,
    test_table_without_autoexpire_never_expires,
)

assert base.DEFS == DEFS


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _memory(defs: tuple[str, ...] | list[str], **kwargs: int) -> SharedHtables:
    return SharedHtables([parse_definition(d) for d in defs], **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(clock: FakeClock) -> Iterator[Context]:
    """The htable tests' context, its tables in shared memory."""
    memory = _memory(DEFS)
    context = make_ctx(OPTIONS)
    context.proc.htables = memory.view(clock)
    assert isinstance(context.proc.htables.tables["a"], SharedTable)
    yield context
    memory.close()


def test_capacity_follows_size() -> None:
    assert capacity_for(parse_definition("ipban=>size=8;")) == 1024
    assert capacity_for(parse_definition("a=>size=12;")) == 8192
    assert capacity_for(parse_definition("a=>size=40;")) == 32768


def test_autoexpire_over_shared_table(ctx: Context, clock: FakeClock) -> None:
    put(ctx, "sht", "a=>k", 1)
    clock.t += 300
    assert get(ctx, "sht", "a=>k") == 1
    clock.t += 1
    assert get(ctx, "sht", "a=>k") is None
    assert len(ctx.proc.htables.tables["a"]) == 0  # type: ignore[arg-type]
    assert ctx.proc.htables.purge() == [ExpiredRecord("a", "k", 1)]
    assert ctx.proc.htables.purge() == []


def test_full_table_refuses_new_keys(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    memory = _memory(["t=>initval=0;"], capacity=3)
    tables = memory.view(clock)
    table = tables.tables["t"]
    assert [table.set(k, 1) for k in ("a", "b", "c")] == [True, True, True]
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.htable"):
        assert table.set("d", 1) is False
        assert table.add("e", 1) is None
    assert caplog.messages == [
        "cannot set $sht(t=>d): the table is full (3 items, kcc's bound)",
        "cannot set $sht(t=>e): the table is full (3 items, kcc's bound)",
    ]
    assert table.get("d") == 0  # initval: nothing was written
    assert table.set("a", "updated") is True  # an existing key is still written
    table.delete("b")
    assert table.set("d", 4) is True
    assert sorted(table.keys()) == ["a", "c", "d"]
    memory.close()


def test_sht_setx_functions_fail_when_the_table_refuses(clock: FakeClock) -> None:
    memory = _memory(["t=>autoexpire=60;"], capacity=1)
    context = make_ctx(OPTIONS)
    context.proc.htables = memory.view(clock)
    assert htable_module.sht_setxs(context, "t", "a", "x", 5) == 1
    assert htable_module.sht_setxs(context, "t", "b", "y", 5) == -1  # full
    assert htable_module.sht_setxi(context, "t", "c", 7, 5) == -1
    assert htable_module.sht_setxi(context, "t", "a", 7, 5) == 0  # Kamailio's 0
    memory.close()


def test_key_and_value_bounds(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    memory = _memory(["t=>"], max_key=4, max_value=5)
    table = memory.view(clock).tables["t"]
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.htable"):
        assert table.set("toolong", 1) is False
        assert table.set("k", "123456") is False
        assert table.set("k", 2**63) is False
    assert caplog.messages == [
        "cannot set $sht(t=>toolong): a key has at most 4 bytes in a shared table",
        "cannot set $sht(t=>k): a string of 6 bytes is longer than the 5 bytes a shared "
        "table holds",
        "cannot set $sht(t=>k): 9223372036854775808 does not fit in 64 bits",
    ]
    assert table.get("toolong") is None
    assert table.set("k", "12345") and table.get("k") == "12345"
    assert table.set("é", -7) and table.get("é") == -7  # 2 bytes of UTF-8
    memory.close()


def test_random_operations_match_the_dict_table(clock: FakeClock) -> None:
    """Backward-shift deletion keeps every key reachable: a small table with heavy
    collisions follows the dict table through 5000 random operations."""
    memory = _memory(["t=>initval=0;"], capacity=40)
    shared = memory.view(clock).tables["t"]
    model = HashTables.from_modparams(["t=>initval=0;"], clock).tables["t"]
    rng = random.Random(7)
    for _ in range(5000):
        key = f"k{rng.randrange(60)}"
        op = rng.randrange(4)
        if op == 0 and len(model.keys()) < 40:
            value: int | str = rng.choice([rng.randrange(-5, 5), f"v{rng.randrange(9)}"])
            assert shared.set(key, value) == model.set(key, value)
        elif op == 1:
            shared.delete(key)
            model.delete(key)
        elif op == 2 and (len(model.keys()) < 40 or model.get(key) != 0):
            assert shared.add(key, 1) == model.add(key, 1)
        assert shared.get(key) == model.get(key)
    assert sorted(shared.entries()) == sorted(model.entries())
    memory.close()


def test_writes_and_increments_are_shared_across_forked_workers(clock: FakeClock) -> None:
    memory = _memory(["ipban=>size=8;autoexpire=300;", "n=>initval=0;"])
    per_child = 300
    pids = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                tables = memory.view(time.time)
                for _ in range(per_child):
                    tables.tables["n"].add("hits", 1)
                tables.tables["ipban"].set(f"192.0.2.{child}", 1)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    assert [_wait(pid) for pid in pids] == [0, 0, 0]
    tables = memory.view(time.time)
    assert tables.tables["n"].get("hits") == 3 * per_child
    assert sorted(tables.tables["ipban"].keys()) == ["192.0.2.0", "192.0.2.1", "192.0.2.2"]
    memory.close()


def test_an_expired_item_is_reported_by_one_worker_only(clock: FakeClock) -> None:
    memory = _memory(["a=>autoexpire=10;"])
    parent = memory.view(clock)
    parent.tables["a"].set("x", 1)
    clock.t += 11
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        child = memory.view(clock)
        os.write(write_fd, str(len(child.purge())).encode())
        os._exit(0)
    assert _wait(pid) == 0
    assert os.read(read_fd, 8) == b"1"
    assert parent.purge() == []  # the child removed and reported it
    os.close(read_fd)
    os.close(write_fd)
    memory.close()


def test_sht_lock_blocks_other_workers_and_a_dead_holder_is_released(
    clock: FakeClock,
) -> None:
    memory = _memory(["a=>"])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        memory.view(clock).lock("a", "k")
        os.write(write_fd, b"1")
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(read_fd, 1) == b"1"
        index = memory.key_lock_index("a", "k")
        assert memory.owner(index) == pid
        os.kill(pid, signal.SIGKILL)
        assert _wait(pid) == -signal.SIGKILL
        assert memory.release_dead(pid) == [index]
        tables = memory.view(clock)
        tables.lock("a", "k")  # free again
        tables.lock("a", "k")  # recursive in one process
        assert memory.owner(index) == os.getpid()
        tables.unlock("a", "k")
        tables.unlock("a", "k")
        assert memory.owner(index) == 0
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(read_fd)
        os.close(write_fd)
        memory.close()


def test_router_process_uses_the_module_memory() -> None:
    config = Config(
        modules=("htable", "pike"),
        modparams=(
            ("htable", "htable", "ipban=>size=8;autoexpire=300;"),
            ("pike", "reqs_density_per_unit", 16),
        ),
    )
    memory = ModuleMemory.from_config(config)
    router = Router(config=config, module_memory=memory)
    one = router.process(make_ctx(OPTIONS).proc.engine)
    two = router.process(make_ctx(OPTIONS).proc.engine)
    assert one.htables is not two.htables  # per-process iterators and lock counts
    one_table = one.htables.tables["ipban"]
    assert one_table.set("192.0.2.9", 1)
    assert two.htables.tables["ipban"].get("192.0.2.9") == 1
    assert one.pike is two.pike is memory.pike
    assert memory.pike is not None and memory.pike.max_hits == 16
    local = Router(config=config).process(make_ctx(OPTIONS).proc.engine)
    assert local.htables.tables["ipban"].get("192.0.2.9") is None
    assert local.pike is not None and local.pike is not memory.pike
    memory.close()
