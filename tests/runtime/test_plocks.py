"""The process locks the workers share (:mod:`kcc_runtime.plocks`), across real forked
processes: they exclude, a dead holder's are free at once, a fork inherits none, and
a deadlock between two processes is an error instead of a hang."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Final

import pytest
from kcc_runtime.plocks import LockDeadlockError, ProcessLocks

#: the longest a child may take to report (a bound against hanging the run)
HANG: Final = 60.0


@pytest.fixture
def locks() -> Iterator[ProcessLocks]:
    made = ProcessLocks(3)
    yield made
    made.close()


@contextlib.contextmanager
def child(run: Callable[[int], None]) -> Iterator[tuple[int, int]]:
    """Fork a child running ``run(write_fd)`` then exiting 0 (1 if it raised); yield
    its pid and the read end of its pipe; kill it if it is still there at the end."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(read_fd)
            run(write_fd)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_fd)
    try:
        yield pid, read_fd
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_lock_excludes_other_processes_and_names_its_holder(locks: ProcessLocks) -> None:
    def hold(out: int) -> None:
        locks.acquire(1)
        os.write(out, b"1")
        time.sleep(HANG)

    with child(hold) as (pid, read_fd):
        assert os.read(read_fd, 1) == b"1"
        assert locks.holder(1) == pid
        assert locks.try_acquire(1) is False
        assert locks.holder(0) == locks.holder(2) == 0  # one byte per lock
        assert locks.try_acquire(0) and locks.try_acquire(2)
        # a process's own locks are no conflict: re-taking one is no error
        assert locks.holder(0) == 0 and locks.try_acquire(0)
        locks.release(0)
        locks.release(2)
        os.kill(pid, signal.SIGKILL)
        assert exit_code(pid) == -signal.SIGKILL
        # the kernel released it with the process: nobody had to
        assert locks.holder(1) == 0
        assert locks.try_acquire(1) is True
        locks.release(1)


def test_a_waiter_gets_the_lock_when_its_holder_dies(locks: ProcessLocks) -> None:
    def hold(out: int) -> None:
        locks.acquire(2)
        os.write(out, b"1")
        time.sleep(HANG)

    def wait(out: int) -> None:
        os.write(out, b"w")
        locks.acquire(2)  # blocked in the kernel until the holder is gone
        os.write(out, b"2")

    with child(hold) as (holder, held), child(wait) as (waiter, waiting):
        assert os.read(held, 1) == b"1"
        assert os.read(waiting, 1) == b"w"
        os.kill(holder, signal.SIGKILL)
        assert exit_code(holder) == -signal.SIGKILL
        assert os.read(waiting, 1) == b"2"
        assert exit_code(waiter) == 0


def test_a_fork_inherits_no_lock(locks: ProcessLocks) -> None:
    locks.acquire(0)

    def forked(out: int) -> None:
        # the parent's lock is the parent's: the child cannot take it, and releasing
        # it here releases nothing of the parent's
        os.write(out, b"y" if locks.try_acquire(0) else b"n")
        locks.release(0)

    with child(forked) as (pid, read_fd):
        assert os.read(read_fd, 1) == b"n"
        assert exit_code(pid) == 0
    with child(forked) as (pid, read_fd):
        assert os.read(read_fd, 1) == b"n"  # still the parent's
        assert exit_code(pid) == 0
    locks.release(0)


def test_a_deadlock_between_two_workers_is_an_error_not_a_hang(locks: ProcessLocks) -> None:
    # the parent holds 0 and asks for 1, the child holds 1 and asks for 0: whichever
    # asks second closes the cycle, and the kernel fails that request
    locks.acquire(0)

    def cross(out: int) -> None:
        locks.acquire(1)
        os.write(out, b"1")
        try:
            locks.acquire(0)
        except LockDeadlockError:
            os.write(out, b"D")
            return  # exits: its lock 1 is released
        os.write(out, b"0")

    with child(cross) as (pid, read_fd):
        assert os.read(read_fd, 1) == b"1"
        time.sleep(0.2)  # most often the child waits by now; either order is checked
        try:
            locks.acquire(1)
        except LockDeadlockError as exc:
            assert "deadlock" in str(exc)
            locks.release(0)  # the child gets it and ends
            assert os.read(read_fd, 1) == b"0"
        else:
            assert os.read(read_fd, 1) == b"D"
            locks.release(1)
            locks.release(0)
        assert exit_code(pid) == 0


def test_indexes_are_checked(locks: ProcessLocks) -> None:
    with pytest.raises(IndexError, match=r"lock 3 outside 0\.\.2"):
        locks.acquire(3)
    with pytest.raises(IndexError, match=r"lock -1 outside 0\.\.2"):
        locks.try_acquire(-1)
    with pytest.raises(ValueError, match="count"):
        ProcessLocks(0)
