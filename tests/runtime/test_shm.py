"""SharedMemoryStore: $shv values and lock() locks shared by forked workers."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from kcc_runtime.shared import SharedStore
from kcc_runtime.shm import MAX_LOCK_SET_SIZE, SharedMemoryStore, SharedValueError


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_unset_reads_int_zero_and_values_round_trip() -> None:
    store = SharedMemoryStore()
    assert store.get("nope") == 0
    store.set("i", 42)
    store.set("s", "héllo")
    store.set("neg", -(2**31))
    assert (store.get("i"), store.get("s"), store.get("neg")) == (42, "héllo", -(2**31))
    store.set("s", "")
    assert store.get("s") == ""
    store.set("s", None)
    assert store.get("s") == 0
    store.set("i", "now a string")
    assert store.get("i") == "now a string"
    store.close()


def test_initial_values_from_shvset() -> None:
    store = SharedMemoryStore({"i": 0, "name": "kcc"})
    assert (store.get("i"), store.get("name")) == (0, "kcc")
    store.close()


def test_limits_raise_clear_errors() -> None:
    store = SharedMemoryStore(slots=2, max_name=4, max_value=8)
    store.set("v", "12345678")
    with pytest.raises(SharedValueError, match=r"9 bytes is longer than the 8 bytes"):
        store.set("v", "123456789")
    assert store.get("v") == "12345678"  # nothing half-written
    with pytest.raises(SharedValueError, match="1 to 4 bytes"):
        store.set("toolong", 1)
    with pytest.raises(SharedValueError, match="1 to 4 bytes"):
        store.set("", 1)
    store.set("w", 2)
    with pytest.raises(SharedValueError, match=r"table is full \(2 variables\)"):
        store.set("x", 3)
    assert (store.get("v"), store.get("w"), store.get("x")) == ("12345678", 2, 0)
    with pytest.raises(SharedValueError, match="64 bits"):
        store.set("w", 2**63)
    store.close()


def test_bad_sizes_refused() -> None:
    with pytest.raises(ValueError, match="lock_set_size"):
        SharedMemoryStore(lock_set_size=MAX_LOCK_SET_SIZE + 1)
    with pytest.raises(ValueError, match="slots"):
        SharedMemoryStore(slots=0)


def test_locks_are_recursive_per_worker() -> None:
    store = SharedMemoryStore(lock_set_size=2)
    assert store.lock_count == 4
    assert not store.held("a")
    store.lock("a")
    store.lock("a")
    assert store.held("a")
    assert store.owner(store.lock_index("a")) == os.getpid()
    assert store.unlock("a") is True
    assert store.held("a")
    assert store.unlock("a") is True
    assert not store.held("a")
    assert store.owner(store.lock_index("a")) == 0
    assert store.unlock("a") is False
    store.close()


def test_names_in_the_same_lock_share_it_without_deadlock() -> None:
    store = SharedMemoryStore(lock_set_size=0)  # one lock: every name hashes to it
    store.lock("a")
    store.lock("b")  # recursion on the same lock, as cfgutils' recursive locks
    assert store.unlock("b") and store.unlock("a")
    assert store.trylock("c")
    assert store.unlock("c")
    store.close()


def test_values_and_locks_are_shared_across_forked_processes() -> None:
    store = SharedMemoryStore({"n": 0}, lock_set_size=1)
    per_child = 2000
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                store.reset_process_state()
                for _ in range(per_child):
                    store.lock("balancing")
                    value = store.get("n")
                    assert isinstance(value, int)
                    store.set("n", value + 1)
                    store.unlock("balancing")
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    assert [_wait(pid) for pid in pids] == [0, 0, 0]
    assert store.get("n") == 3 * per_child
    store.close()


def test_trylock_sees_another_process_holding_the_lock() -> None:
    store = SharedMemoryStore(lock_set_size=1)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        store.reset_process_state()
        store.lock("x")
        os.write(write_fd, b"1")
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(read_fd, 1) == b"1"
        assert store.owner(store.lock_index("x")) == pid
        assert store.trylock("x") is False
        # the supervisor's job when it reaps a worker that died holding the lock
        os.kill(pid, signal.SIGKILL)
        assert _wait(pid) == -signal.SIGKILL
        assert store.release_dead(pid) == [store.lock_index("x")]
        assert store.owner(store.lock_index("x")) == 0
        assert store.trylock("x") is True
        assert store.unlock("x") is True
        assert store.release_dead(pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(read_fd)
        os.close(write_fd)
        store.close()


def test_pretran_single_process_store_never_sees_another_worker() -> None:
    store = SharedStore()
    assert store.pretran_claim(b"INVITE|call-1") is False
    assert store.pretran_claim(b"INVITE|call-1") is False
    store.pretran_release()


def test_pretran_sees_the_same_request_in_another_worker_until_released() -> None:
    store = SharedMemoryStore(workers=2)
    claimed, release = os.pipe()
    go_on, proceed = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: worker 1 processes the request
        store.reset_process_state(1)
        store.pretran_claim(b"INVITE|call-1")
        os.write(release, b"1")
        os.read(go_on, 1)
        store.pretran_release()
        os.write(release, b"2")
        time.sleep(30)
        os._exit(0)
    try:
        store.reset_process_state(0)
        assert os.read(claimed, 1) == b"1"
        # worker 0 gets a retransmission while worker 1 still runs the route
        assert store.pretran_claim(b"INVITE|call-1") is True
        store.pretran_release()
        # another request is not confused with it
        assert store.pretran_claim(b"INVITE|call-2") is False
        store.pretran_release()
        os.write(proceed, b"1")
        assert os.read(claimed, 1) == b"2"
        # worker 1 finished its route: the same request is nobody's now
        assert store.pretran_claim(b"INVITE|call-1") is False
        store.pretran_release()
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (claimed, release, go_on, proceed):
            os.close(fd)
        store.close()


def test_pretran_entry_of_a_dead_worker_is_cleared_by_release_dead() -> None:
    store = SharedMemoryStore(workers=2)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        store.reset_process_state(1)
        store.pretran_claim(b"INVITE|call-9")
        os.write(write_fd, b"1")
        time.sleep(30)
        os._exit(0)
    try:
        store.reset_process_state(0)
        assert os.read(read_fd, 1) == b"1"
        os.kill(pid, signal.SIGKILL)
        assert _wait(pid) == -signal.SIGKILL
        assert store.pretran_claim(b"INVITE|call-9") is True
        store.pretran_release()
        store.release_dead(pid)
        assert store.pretran_claim(b"INVITE|call-9") is False
        store.pretran_release()
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(read_fd)
        os.close(write_fd)
        store.close()


def test_pretran_worker_index_is_checked() -> None:
    store = SharedMemoryStore(workers=2)
    with pytest.raises(ValueError, match=r"worker 2 outside 0\.\.1"):
        store.reset_process_state(2)
    store.close()
