"""A worker SIGKILLed while it holds a process-shared lock does not stop the proxy.

Each test forks a child that takes one or more of the locks the workers share
(``$shv``'s table mutex, a cfgutils ``lock()``, tmx's table of requests being
processed, an htable table mutex and an ``sht_lock`` key lock, pike's tree lock, auth's
nonce-table lock), kills it with SIGKILL while it holds them and reaps it. The kernel
releases a dead process's locks (:mod:`kcc_runtime.plocks`): the parent must take
every lock again before the supervisor has done anything (within a generous bound: a
hang fails the test instead of blocking the run), read the values written before the
child died, and write new ones. What the supervisor does for a reaped worker
(``SharedMemoryStore.release_dead``, ``ModuleMemory.release_dead``) reports the locks
it held and clears its entry in tmx's table. A ``$shv`` writer that dies at any step
of its write leaves the value before it or the value after it, whole.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final, TypeVar

import pytest
from kcc_runtime import shm
from kcc_runtime.htable import parse_definition
from kcc_runtime.modules import auth
from kcc_runtime.pike import NEW_BLOCKED, NOT_BLOCKED, PikeTree
from kcc_runtime.shm import SharedCounters, SharedMemoryStore
from kcc_runtime.shtable import ModuleMemory, SharedHtables

from tests.runtime.test_htable import FakeClock

#: how long an operation after the recovery may take before the test calls it a hang
#: (a bound against hanging the run, not a timing assertion: it takes milliseconds)
HANG: Final = 60.0

T = TypeVar("T")


def within(fn: Callable[[], T]) -> T:
    """``fn()``, failing the test if it does not return within :data:`HANG` seconds
    (a thread, so that a deadlock is reported instead of blocking pytest)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert not thread.is_alive(), "still blocked: the lock of the dead worker was never freed"
    if errors:
        raise errors[0]
    return out[0]


def kill_while_holding(hold: Callable[[], None]) -> int:
    """Fork a child that runs ``hold`` (taking locks and keeping them), SIGKILL it
    once it says it holds them, reap it; its pid."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_fd)
            hold()
            os.write(write_fd, b"1")
            time.sleep(HANG)
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 1) == b"1", "the child could not take its locks"
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return pid


#: context managers a child entered: kept referenced, so that the garbage collector
#: does not close them (which would release the lock) before the child is killed
_ENTERED: list[contextlib.AbstractContextManager[None]] = []


def enter(manager: contextlib.AbstractContextManager[None]) -> None:
    """Enter ``manager`` and never leave it (the child is killed inside)."""
    _ENTERED.append(manager)
    manager.__enter__()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def store() -> Iterator[SharedMemoryStore]:
    shared = SharedMemoryStore({"n": 41, "s": "before"}, lock_set_size=4, workers=2)
    yield shared
    shared.close()


@pytest.fixture
def memory(clock: FakeClock) -> Iterator[ModuleMemory]:
    htables = SharedHtables([parse_definition("ipban=>initval=0;")])
    pike = PikeTree(clock=clock, max_hits=16, time_unit=2, timeout=4, capacity=256)
    module_memory = ModuleMemory(htables, pike)
    yield module_memory
    module_memory.close()


@pytest.fixture
def nonces() -> Iterator[auth.NonceTables]:
    saved = auth._TABLES[0]
    tables = auth.reset_tables(secret=b"s" * 64, nid_start=1000)
    yield tables
    auth._TABLES[0] = saved


# -- one lock at a time ------------------------------------------------------------------


def test_shv_table_mutex_of_a_dead_writer(store: SharedMemoryStore) -> None:
    def hold() -> None:
        store.reset_process_state(1)
        store._take_mutex()  # as get()/set() do, then killed before releasing

    pid = kill_while_holding(hold)
    assert store.owner(-1) == pid  # recorded, for the supervisor's report
    assert store._locks.holder(0) == 0  # and free: the kernel released it
    assert store.release_dead(pid) == [-1]
    assert store.owner(-1) == 0
    assert within(lambda: store.get("n")) == 41
    assert within(lambda: store.get("s")) == "before"
    within(lambda: store.set("n", 42))
    assert store.get("n") == 42
    assert store.release_dead(pid) == []  # nothing left to release


def die_at_line(step: int, write: Callable[[], None]) -> bool:
    """Fork a child that runs ``write`` and dies (``os._exit``: no cleanup, as under
    SIGKILL) at the ``step``-th line it executes in :mod:`kcc_runtime.shm`; whether
    it died there (False: ``write`` ended first)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        lines = 0

        def local(frame: FrameType, event: str, arg: object) -> object:
            nonlocal lines
            if event == "line":
                lines += 1
                if lines == step:
                    os._exit(DIED)
            return local

        def calls(frame: FrameType, event: str, arg: object) -> object:
            return local if frame.f_code.co_filename == shm.__file__ else None

        try:
            sys.settrace(calls)
            write()
            sys.settrace(None)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == DIED


#: the exit code of a child that died where :func:`die_at_line` told it to
DIED: Final = 77


@pytest.mark.parametrize("fresh", [False, True], ids=["set name", "new name"])
def test_a_shv_writer_dying_at_any_step_leaves_the_old_or_the_new_value(
    store: SharedMemoryStore, fresh: bool
) -> None:
    # a SIGKILL can land anywhere in a write: what the next reader sees is the value
    # before the write or the value after it, whole ("s" holds "before"; a name never
    # set reads as 0). The child dies after each line of shm in turn; a death inside
    # a line's copy of bytes only reaches the copy that is not yet current
    new = "x" * 3000
    seen: set[object] = set()
    step = 1
    while True:
        name = f"new{step}" if fresh else "s"
        old = store.get(name)
        if not die_at_line(step, functools.partial(store.set, name, new)):
            break
        value = within(functools.partial(store.get, name))
        assert value in (old, new), f"died at step {step}: read {str(value)[:40]!r}"
        seen.add(value)
        store.set(name, old)
        step += 1
    assert seen == {old, new}  # the deaths fell on both sides of the last store
    assert store.get(name) == new  # the child that ran to the end wrote it


def test_cfgutils_lock_of_a_dead_worker(store: SharedMemoryStore) -> None:
    def hold() -> None:
        store.reset_process_state(1)
        store.lock("counter")
        store.lock("counter")  # recursive: one semaphore taken once
        store.set("n", 50)

    pid = kill_while_holding(hold)
    index = store.lock_index("counter")
    assert store.owner(index) == pid
    # free before the supervisor does anything: no moment of a worker's life leaves
    # a lock taken behind it
    assert store.trylock("counter") is True
    assert store.get("n") == 50  # written (under the lock) before the kill
    store.set("n", 51)
    assert store.unlock("counter") is True
    assert store.owner(index) == 0
    within(lambda: store.lock("counter"))
    assert store.unlock("counter") is True


def test_a_worker_killed_before_recording_its_lock(store: SharedMemoryStore) -> None:
    # between taking a lock and writing its pid next to it: with a semaphore and the
    # supervisor releasing what the dead worker's record named, this lock stayed
    # taken for good and every worker asking for it hung
    index = store.lock_index("counter")

    def hold() -> None:
        store._locks.acquire(index + 1)

    pid = kill_while_holding(hold)
    assert store.owner(index) == 0
    assert store.release_dead(pid) == []  # nothing recorded to report
    assert within(lambda: store.trylock("counter")) is True
    assert store.unlock("counter") is True


def test_precheck_entry_of_a_dead_worker(store: SharedMemoryStore) -> None:
    def hold() -> None:
        store.reset_process_state(1)
        assert store.pretran_claim(b"INVITE sip:x call-1 1") is False

    pid = kill_while_holding(hold)
    store.reset_process_state(0)
    # still claimed: a retransmission now looks like one another worker processes
    assert store.pretran_claim(b"INVITE sip:x call-1 1") is True
    store.pretran_release()
    store.release_dead(pid)
    assert within(lambda: store.pretran_claim(b"INVITE sip:x call-1 1")) is False
    store.pretran_release()


def test_htable_mutex_and_key_lock_of_a_dead_worker(memory: ModuleMemory, clock: FakeClock) -> None:
    shared = memory.htables
    assert shared is not None
    before = shared.view(clock)
    before.tables["ipban"].set("10.0.0.1", 3)

    def hold() -> None:
        tables = shared.view(clock)
        tables.lock("ipban", "10.0.0.1")  # sht_lock
        tables.tables["ipban"].add("10.0.0.1", 1)
        enter(shared.mutex(shared.regions["ipban"].index))  # inside an operation

    pid = kill_while_holding(hold)
    key_lock = shared.key_lock_index("ipban", "10.0.0.1")
    table_mutex = shared.regions["ipban"].index
    assert shared.owner(key_lock) == pid
    assert shared.owner(table_mutex) == pid
    assert shared._locks.holder(key_lock) == shared._locks.holder(table_mutex) == 0
    assert memory.release_dead(pid) == 2
    tables = shared.view(clock)
    assert within(lambda: tables.tables["ipban"].get("10.0.0.1")) == 4
    assert within(lambda: tables.tables["ipban"].add("10.0.0.1", 1)) == 5
    within(lambda: tables.lock("ipban", "10.0.0.1"))
    tables.unlock("ipban", "10.0.0.1")
    assert shared.owner(key_lock) == 0


def test_pike_tree_lock_of_a_dead_worker(memory: ModuleMemory) -> None:
    pike = memory.pike
    assert pike is not None
    # a new IPv4 address is blocked at its 22nd request in one unit (x = 16:
    # tests/runtime/test_pike.py); 10 before the kill, the rest after it
    assert [pike.check("10.0.0.1") for _ in range(10)] == [NOT_BLOCKED] * 10

    def hold() -> None:
        enter(pike._locked())

    pid = kill_while_holding(hold)
    codes = within(lambda: [pike.check("10.0.0.1") for _ in range(12)])
    assert codes == [NOT_BLOCKED] * 11 + [NEW_BLOCKED]
    # the checks overwrote the dead worker's record: nothing left to report
    assert memory.release_dead(pid) == 0


def test_auth_nonce_lock_of_a_dead_worker(
    store: SharedMemoryStore, nonces: auth.NonceTables
) -> None:
    first = nonces.nid_inc(0)

    def hold() -> None:
        enter(nonces._locked())

    pid = kill_while_holding(hold)
    assert nonces.owner() == pid
    assert nonces._lock.holder(0) == 0
    # the supervisor's call for a reaped worker reaches the module's releaser
    store.release_dead(pid)
    assert nonces.owner() == 0
    assert within(lambda: nonces.nid_inc(0)) == first + auth.NID_INC
    nonces.otn_new(5, 0, 20, 0)
    assert within(lambda: nonces.otn_check(5, 0, 20, 0)) is True
    assert nonces.otn_check(5, 0, 20, 0) is False


def test_counters_of_a_dead_worker_are_kept() -> None:
    counters = SharedCounters(["core:rcv_requests"], rows=3)
    counters.add("core:rcv_requests", 2)

    def hold() -> None:
        counters.use_row(1)
        counters.add("core:rcv_requests", 5)

    kill_while_holding(hold)  # no lock: each process writes only its own row
    assert counters.get("core:rcv_requests") == 7
    counters.use_row(1)  # the restarted worker of that rank goes on from its row
    counters.add("core:rcv_requests", 1)
    assert counters.get("core:rcv_requests") == 8
    counters.close()


# -- every lock at once -------------------------------------------------------------------


def test_a_worker_killed_holding_every_lock(
    store: SharedMemoryStore,
    memory: ModuleMemory,
    nonces: auth.NonceTables,
    clock: FakeClock,
) -> None:
    shared, pike = memory.htables, memory.pike
    assert shared is not None and pike is not None
    shared.view(clock).tables["ipban"].set("k", "v")

    def hold() -> None:
        store.reset_process_state(1)
        store.lock("a")
        assert store.pretran_claim(b"req") is False
        tables = shared.view(clock)
        tables.lock("ipban", "k")
        enter(shared.mutex(shared.regions["ipban"].index))
        enter(pike._locked())
        enter(nonces._locked())
        store._take_mutex()

    pid = kill_while_holding(hold)
    # serve.py's _reap: the store, then the module memory (they report)
    assert sorted(store.release_dead(pid)) == [-1, store.lock_index("a")]
    assert memory.release_dead(pid) == 3
    store.reset_process_state(0)

    def everything() -> None:
        assert store.get("n") == 41
        store.set("n", 1)
        store.lock("a")
        store.unlock("a")
        assert store.pretran_claim(b"req") is False
        store.pretran_release()
        tables = shared.view(clock)
        assert tables.tables["ipban"].get("k") == "v"
        tables.lock("ipban", "k")
        tables.unlock("ipban", "k")
        assert pike.check("10.9.9.9") == NOT_BLOCKED
        nonces.nid_inc(3)

    within(everything)
    assert store.release_dead(pid) == []
    assert memory.release_dead(pid) == 0
