"""Locks shared by a proxy's worker processes, which a dead holder cannot keep.

Kamailio's shared-memory locks are futexes: a process killed while holding one leaves
it taken, and every other process that wants it waits forever. kcc's workers share
locks the same way (``lock()``, ``$shv``, htable, pike, auth's nonces), and a worker
can die anywhere (SIGKILL, the OOM killer), so each lock here is one byte of an
anonymous memory file locked with a POSIX record lock (``fcntl(F_SETLKW)``): the
kernel releases every record lock of a process when it ends, however it ends, at the
instant it ends. Nothing else has to notice the death, and no moment of the holder's
life leaves a lock taken behind it (a semaphore with its holder's pid recorded next
to it, released by the supervisor for a reaped worker, did: a worker killed between
taking the semaphore and recording its pid left it taken for good).

- The file is made by the supervisor before it forks (``os.memfd_create``; an
  unlinked temporary file where that is missing) and every worker inherits its
  descriptor. Record locks belong to a process: they are not inherited across
  ``fork`` (a freshly forked worker holds nothing, whatever its parent held) and a
  lock another process holds conflicts, one this process holds does not.
- Record locks are not recursive: callers count their own holds (cfgutils'
  ``lock()`` is recursive within a process) and release on the last.
- The kernel detects a cycle of processes waiting for each other's record locks
  (two workers taking two locks in opposite orders) and fails the request with
  ``EDEADLK``: :meth:`ProcessLocks.acquire` raises :class:`LockDeadlockError`, which
  the router reports with the cfg line; Kamailio's workers would both hang.
- A process must not close another descriptor of the file: POSIX drops all of its
  record locks on the file when any of its descriptors of it is closed. Only
  :meth:`ProcessLocks.close` (or the collection of the object) closes this one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import tempfile
import weakref
from typing import Final

__all__ = ["LockDeadlockError", "ProcessLocks"]

#: Linux's ``struct flock``: l_type, l_whence, (padding), l_start, l_len, l_pid
_FLOCK: Final = struct.Struct("@hhqqi4x")


class LockDeadlockError(RuntimeError):
    """Taking the lock would deadlock with another worker (the kernel saw the cycle)."""


class ProcessLocks:
    """``count`` locks shared with every process forked after this is made."""

    def __init__(self, count: int, name: str = "kcc-locks") -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        self.count = count
        self._fd = _anonymous_file(name)
        self._close = weakref.finalize(self, os.close, self._fd)

    def _check(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise IndexError(f"lock {index} outside 0..{self.count - 1}")

    def acquire(self, index: int) -> None:
        """Take lock ``index``, waiting while another process holds it."""
        self._check(index)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, index)
        except OSError as exc:
            if exc.errno == errno.EDEADLK:
                raise LockDeadlockError(
                    f"lock {index}: taking it would deadlock with another worker, "
                    "which waits for a lock this one holds"
                ) from None
            raise

    def try_acquire(self, index: int) -> bool:
        """Take lock ``index`` if no other process holds it; whether it was taken."""
        self._check(index)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, index)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def release(self, index: int) -> None:
        """Release lock ``index`` (nothing happens if this process does not hold it)."""
        self._check(index)
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, index)

    def holder(self, index: int) -> int:
        """The pid of another process holding lock ``index``; 0 when none does (this
        process's own locks do not count: the kernel reports conflicts only)."""
        self._check(index)
        query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, index, 1, 0)
        l_type, _, _, _, pid = _FLOCK.unpack(fcntl.fcntl(self._fd, fcntl.F_GETLK, query))
        return 0 if l_type == fcntl.F_UNLCK else pid

    def close(self) -> None:
        """Close the file (the last process to use the locks; done when this object
        is collected otherwise)."""
        self._close()


def _anonymous_file(name: str) -> int:
    """A descriptor of a file with no name anywhere, inherited by forked children."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd: int = memfd_create(name)  # MFD_CLOEXEC: a fork inherits it, an exec not
        return fd
    fd, path = tempfile.mkstemp(prefix=f"{name}-")
    os.unlink(path)
    return fd
