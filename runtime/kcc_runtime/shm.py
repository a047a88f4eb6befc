"""``$shv`` values and ``lock()`` locks shared by every worker process of one proxy.

Kamailio keeps shared variables (pv module, ``shvset``) and cfgutils' lock set in
shared memory allocated by the main process before it forks the workers.
:class:`SharedMemoryStore` does the same, behind the methods of
:class:`~kcc_runtime.shared.SharedStore` that route code and the modules use:

- **Memory**: one anonymous ``MAP_SHARED`` mapping (``mmap.mmap(-1, size)``) made by
  the supervisor before it forks; every worker inherits it. It is the mapping
  ``multiprocessing.shared_memory`` would give, without a name in ``/dev/shm``: a
  supervisor killed by SIGKILL leaks nothing, and no resource-tracker process is
  started. The store is therefore only usable by processes forked from the one that
  made it (which is how :mod:`kcc_runtime.serve` runs workers).
- **``$shv`` table**: a fixed table of ``slots`` slots, open addressing with linear
  probing on the CRC-32 of the name (stable across processes, unlike ``hash()``);
  names are never removed, so a name keeps its slot and each worker caches the slot
  index after the first lookup. A slot holds the name and two copies of a value (the
  type, an int64 and a string of at most ``max_value`` bytes of UTF-8), one of them
  current. Kamailio allocates each value in shared memory with no per-value cap; a
  fixed table needs one, so a longer string, a name longer than ``max_name`` bytes,
  or a new name when the table is full raises :class:`SharedValueError` (the router
  logs it with the cfg line and the message ends as an ``error`` outcome: nothing is
  half-written). Every read and write holds the table mutex, so a reader never sees
  a value being written.
- **A writer that dies mid-write** (SIGKILL, the OOM killer) leaves the old value or
  the new one, never a mix: a write fills the copy that is not current, then makes
  it current with a one-byte store; a new name becomes visible, reading as the int
  0, only once its name is whole. Kamailio's own writer frees the old value and
  links the new one, and its main process stops the proxy when a child dies.
- **Locks**: cfgutils ``lock(name)`` hashes the name into a set of
  ``2^lock_set_size`` locks (``modparam("cfgutils", "lock_set_size", N)``) and its
  locks are recursive in one process. Here the set is made before the fork, and each
  worker keeps its own ownership counts: a lock is taken by the first ``lock()`` of a
  slot and released by the matching last ``unlock()``. Two names that hash to the same lock
  share it, as in Kamailio. Kamailio with ``lock_set_size`` 0 (its default) has no
  lock set and its ``lock()`` fails; this store then uses one lock (see the report of
  the module function for the return code).
- **A worker that dies holding a lock**: in Kamailio the others then wait forever.
  Here the locks and the table mutex are :class:`~kcc_runtime.plocks.ProcessLocks`,
  which the kernel releases when their holder dies, wherever it dies: the others go
  on. Each lock also records its holder's pid in the shared mapping, for the
  supervisor's report only: :meth:`SharedMemoryStore.release_dead`, called with the
  pid of every worker it reaps, clears that worker's records and says which locks it
  died holding; it also calls the releasers other modules registered
  (:func:`kcc_runtime.shared.register_dead_releaser`: auth's nonce tables).
- **Requests being processed** (tmx's ``t_precheck_trans``): one entry per worker,
  ``workers`` entries, each the pid and a 16-byte fingerprint of the request that
  worker is running the request route for (zero when idle). Kamailio keeps the same
  thing, one slot per process in a shared hash table. A worker claims its entry
  under the table mutex, then looks for the same fingerprint in the other entries;
  it clears the entry when the route ends. A worker found dead by the supervisor has
  its entry cleared with its locks.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from typing import Final

from kcc_runtime.plocks import ProcessLocks
from kcc_runtime.shared import Counters, SharedStore, release_dead_elsewhere
from kcc_runtime.values import Value

__all__ = ["SharedCounters", "SharedMemoryStore", "SharedValueError"]

log = logging.getLogger("kcc_runtime.shm")


#: a worker's entry in the table of requests being processed: pid, fingerprint
_PRETRAN: Final = struct.Struct("<i16s")
_PRETRAN_IDLE: Final = bytes(16)
#: slot header: used, current value copy (0 / 1), name length; the name follows, then
#: the two value copies
_SLOT_HEAD: Final = struct.Struct("<BBH4x")
_USED: Final = 0
_CURRENT: Final = 1
#: value copy header: type (0 int / 1 str), string length, int value; the string follows
_VALUE_HEAD: Final = struct.Struct("<B3xIq")
_INT: Final = 0
_STR: Final = 1
#: cfgutils' lock set size is a power of two; past 2^12 semaphores the set costs
#: more memory than any cfg needs (Kamailio's own examples use 4..8)
MAX_LOCK_SET_SIZE: Final = 12
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


class SharedValueError(ValueError):
    """A ``$shv`` write the fixed table cannot hold (name or string too long, table
    full, int outside 64 bits)."""


class SharedMemoryStore(SharedStore):
    """``$shv(name)`` values and named locks in memory shared by forked workers."""

    def __init__(
        self,
        initial: dict[str, Value] | None = None,
        *,
        lock_set_size: int = 0,
        workers: int = 1,
        slots: int = 1024,
        max_name: int = 64,
        max_value: int = 4096,
    ) -> None:
        super().__init__()
        if slots < 1 or workers < 1 or max_name < 1 or max_value < 0:
            raise ValueError("slots, workers and max_name must be >= 1, max_value >= 0")
        if not 0 <= lock_set_size <= MAX_LOCK_SET_SIZE:
            raise ValueError(f"lock_set_size must be 0..{MAX_LOCK_SET_SIZE}, not {lock_set_size}")
        self.slots = slots
        self.max_name = max_name
        self.max_value = max_value
        self.lock_set_size = lock_set_size
        self.lock_count = 1 << lock_set_size
        self._value_size = _VALUE_HEAD.size + max_value
        self._slot_size = _SLOT_HEAD.size + max_name + 2 * self._value_size
        self.workers = workers
        # owners: [table mutex, lock 0 .. lock n-1], int32 pids (0: free; reported
        # only); then one entry per worker for t_precheck_trans; then the $shv table
        owners_size = 4 * (self.lock_count + 1)
        self._pretran_at = owners_size
        self._table_at = (owners_size + workers * _PRETRAN.size + 15) & ~15
        self._mm = mmap.mmap(-1, self._table_at + slots * self._slot_size)
        self._owners = memoryview(self._mm)[:owners_size].cast("i")
        #: lock 0 is the table mutex, lock 1 + i cfgutils' lock i
        self._locks = ProcessLocks(self.lock_count + 1, "kcc-shv-locks")
        #: per process: slot index by name (slots never move), lock holds by lock
        #: index and by name (cfgutils' recursion)
        self._index: dict[str, int] = {}
        self._lock_holds: dict[int, int] = {}
        self._name_holds: dict[str, int] = {}
        #: per process: this worker's entry in the requests-being-processed table,
        #: and whether it holds a fingerprint now
        self._pretran_slot = 0
        self._pretran_held = False
        for name, value in (initial or {}).items():
            self.set(name, value)

    # -- $shv ---------------------------------------------------------------------------

    def _take_mutex(self) -> None:
        self._locks.acquire(0)
        self._owners[0] = os.getpid()

    def _drop_mutex(self) -> None:
        self._owners[0] = 0
        self._locks.release(0)

    def _slot_at(self, slot: int) -> int:
        """The offset of ``slot``'s header."""
        return self._table_at + slot * self._slot_size

    def _copy_at(self, slot: int, copy: int) -> int:
        """The offset of value copy ``copy`` (0 or 1) of ``slot``."""
        return self._slot_at(slot) + _SLOT_HEAD.size + self.max_name + copy * self._value_size

    def _find(self, name: str, key: bytes, create: bool) -> int:
        """The slot of ``name`` (the table mutex held); -1 when absent and not created."""
        cached = self._index.get(name)
        if cached is not None:
            return cached
        mm = self._mm
        start = zlib.crc32(key) % self.slots
        for probe in range(self.slots):
            slot = (start + probe) % self.slots
            at = self._slot_at(slot)
            used, _, name_len = _SLOT_HEAD.unpack_from(mm, at)
            if not used:
                if not create:
                    return -1
                # name first, the used byte last: a writer killed in between leaves
                # the slot unused; copy 0, never written, reads as the int 0
                mm[at + _SLOT_HEAD.size : at + _SLOT_HEAD.size + len(key)] = key
                _SLOT_HEAD.pack_into(mm, at, 0, 0, len(key))
                mm[at + _USED] = 1
                self._index[name] = slot
                return slot
            head = at + _SLOT_HEAD.size
            if name_len == len(key) and mm[head : head + name_len] == key:
                self._index[name] = slot
                return slot
        if create:
            raise SharedValueError(
                f"$shv({name}): the shared table is full ({self.slots} variables)"
            )
        return -1

    def get(self, name: str) -> Value:
        """``$shv(name)``: an unset shared variable reads as the int 0, as in Kamailio."""
        key = name.encode("utf-8", "surrogateescape")
        mm = self._mm
        self._take_mutex()
        try:
            slot = self._find(name, key, create=False)
            if slot < 0:
                return 0
            at = self._copy_at(slot, mm[self._slot_at(slot) + _CURRENT])
            kind, str_len, number = _VALUE_HEAD.unpack_from(mm, at)
            if kind == _INT:
                return int(number)
            start = at + _VALUE_HEAD.size
            return mm[start : start + str_len].decode("utf-8", "surrogateescape")
        finally:
            self._drop_mutex()

    def set(self, name: str, value: Value) -> None:
        """``$shv(name) = value``; ``$null`` sets the int 0. Raises
        :class:`SharedValueError` for what the fixed table cannot hold."""
        key = name.encode("utf-8", "surrogateescape")
        if not key or len(key) > self.max_name:
            raise SharedValueError(
                f"$shv({name}): a shared variable name has 1 to {self.max_name} bytes"
            )
        data = b""
        number = 0
        if value is None:
            kind = _INT
        elif isinstance(value, int):
            kind, number = _INT, value
            if not _I64_MIN <= number <= _I64_MAX:
                raise SharedValueError(f"$shv({name}): {value} does not fit in 64 bits")
        else:
            kind, data = _STR, value.encode("utf-8", "surrogateescape")
            if len(data) > self.max_value:
                raise SharedValueError(
                    f"$shv({name}): a string of {len(data)} bytes is longer than the "
                    f"{self.max_value} bytes a shared variable holds"
                )
        mm = self._mm
        self._take_mutex()
        try:
            slot = self._find(name, key, create=True)
            head = self._slot_at(slot)
            spare = 1 - mm[head + _CURRENT]
            at = self._copy_at(slot, spare)
            mm[at + _VALUE_HEAD.size : at + _VALUE_HEAD.size + len(data)] = data
            _VALUE_HEAD.pack_into(mm, at, kind, len(data), number)
            mm[head + _CURRENT] = spare  # one byte: the value is now the new one
        finally:
            self._drop_mutex()

    def cfg_override(self, group: str, name: str) -> int | str | None:
        """The RPC-set value of a cfg variable in the shared table (None: unset)."""
        key = f"\0cfg:{group}.{name}"
        if self.get_raw_slot(key) < 0:
            return None
        value = self.get(key)
        return value if isinstance(value, int | str) else None

    def get_raw_slot(self, name: str) -> int:
        """The table slot of ``name``; -1 when it was never set."""
        self._take_mutex()
        try:
            return self._find(name, name.encode("utf-8", "surrogateescape"), create=False)
        finally:
            self._drop_mutex()

    # -- lock() / unlock() -----------------------------------------------------------------

    def lock_index(self, name: str) -> int:
        """The lock of the set that ``name`` hashes into."""
        return zlib.crc32(name.encode("utf-8", "surrogateescape")) & (self.lock_count - 1)

    def lock(self, name: str) -> None:
        """Take the lock ``name`` (recursive within one worker): blocks while another
        worker holds it, as cfgutils' ``lock()`` does."""
        index = self.lock_index(name)
        holds = self._lock_holds.get(index, 0)
        if holds == 0:
            self._locks.acquire(index + 1)
            self._owners[index + 1] = os.getpid()
        self._lock_holds[index] = holds + 1
        self._name_holds[name] = self._name_holds.get(name, 0) + 1

    def trylock(self, name: str) -> bool:
        """Take ``name`` if no other worker holds it (cfgutils ``trylock``): True when
        taken (or already held by this worker: recursion), False otherwise."""
        index = self.lock_index(name)
        holds = self._lock_holds.get(index, 0)
        if holds == 0:
            if not self._locks.try_acquire(index + 1):
                return False
            self._owners[index + 1] = os.getpid()
        self._lock_holds[index] = holds + 1
        self._name_holds[name] = self._name_holds.get(name, 0) + 1
        return True

    def unlock(self, name: str) -> bool:
        """Release ``name``; False (and nothing released) when this worker does not
        hold it."""
        count = self._name_holds.get(name, 0)
        if count == 0:
            return False
        if count == 1:
            del self._name_holds[name]
        else:
            self._name_holds[name] = count - 1
        index = self.lock_index(name)
        holds = self._lock_holds[index] - 1
        if holds == 0:
            del self._lock_holds[index]
            self._owners[index + 1] = 0
            self._locks.release(index + 1)
        else:
            self._lock_holds[index] = holds
        return True

    def held(self, name: str) -> bool:
        """Whether this worker holds ``name``."""
        return name in self._name_holds

    # -- t_precheck_trans -------------------------------------------------------------

    def pretran_claim(self, key: bytes) -> bool:
        """Record that this worker processes the request fingerprinted by ``key`` (any
        length: hashed to 16 bytes) and say whether another worker is processing the
        same request now (a retransmission that reached two workers)."""
        digest = hashlib.blake2b(key, digest_size=16).digest()
        mm = self._mm
        mine = self._pretran_slot
        self._take_mutex()
        try:
            _PRETRAN.pack_into(mm, self._pretran_at + mine * _PRETRAN.size, os.getpid(), digest)
            self._pretran_held = True
            for entry in range(self.workers):
                if entry != mine:
                    pid, other = _PRETRAN.unpack_from(mm, self._pretran_at + entry * _PRETRAN.size)
                    if pid and other == digest:
                        return True
            return False
        finally:
            self._drop_mutex()

    def pretran_release(self) -> None:
        """Clear this worker's entry (the request route ended)."""
        if self._pretran_held:
            self._pretran_held = False
            at = self._pretran_at + self._pretran_slot * _PRETRAN.size
            self._take_mutex()
            try:
                _PRETRAN.pack_into(self._mm, at, 0, _PRETRAN_IDLE)
            finally:
                self._drop_mutex()

    # -- supervisor side -------------------------------------------------------------

    def owner(self, index: int) -> int:
        """The pid recorded as holding lock ``index`` (-1: the table mutex); 0 when
        free."""
        return self._owners[index + 1]

    def release_dead(self, pid: int) -> list[int]:
        """The locks the dead process ``pid`` held (the supervisor calls this for each
        worker it reaps), -1 for the table mutex: the kernel released them when it
        died; their records and its entry in the table of requests being processed
        are cleared here, and the other modules' releasers are called."""
        released: list[int] = []
        for slot in range(self.lock_count + 1):
            if pid and self._owners[slot] == pid:
                self._owners[slot] = 0
                released.append(slot - 1)
        if pid:
            for entry in range(self.workers):
                at = self._pretran_at + entry * _PRETRAN.size
                if _PRETRAN.unpack_from(self._mm, at)[0] == pid:
                    _PRETRAN.pack_into(self._mm, at, 0, _PRETRAN_IDLE)
            others = release_dead_elsewhere(pid)
            if others:
                log.warning("worker pid %d died holding %d module lock(s)", pid, others)
        return released

    def reset_process_state(self, worker: int = 0) -> None:
        """Forget this process's lock holds (a freshly forked worker starts holding
        nothing, whatever its parent held); ``worker`` (0 .. workers-1) is its entry in
        the table of requests being processed."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"worker {worker} outside 0..{self.workers - 1}")
        self._lock_holds.clear()
        self._name_holds.clear()
        self._pretran_slot = worker
        self._pretran_held = False

    def close(self) -> None:
        """Unmap the memory (the supervisor, after its workers are gone)."""
        self._owners.release()
        self._mm.close()
        self._locks.close()


class SharedCounters(Counters):
    """Statistics counters shared by every process of one proxy.

    Kamailio keeps each statistic in shared memory (``counters``' per-process
    slots, summed when read). The same here: the names are fixed before the fork
    (the supervisor builds the table from the catalog of the modules the cfg loads)
    and every process owns one row of ``len(names)`` int64 cells in an anonymous
    ``MAP_SHARED`` mapping; a process only ever writes its own row (no lock: one
    writer per cell), and a reader sums the rows. A worker that restarts takes its
    rank's row back, so the numbers stay the proxy's since it started. A name not in
    the table is ignored by :meth:`add` (it has no cell) and reads as 0."""

    def __init__(self, names: Iterable[str], rows: int) -> None:
        super().__init__()
        if rows < 1:
            raise ValueError("rows must be >= 1")
        self.names: tuple[str, ...] = tuple(dict.fromkeys(names))
        self._index = {name: i for i, name in enumerate(self.names)}
        self.rows = rows
        self._mm = mmap.mmap(-1, max(8, 8 * len(self.names) * rows))
        self._cells = memoryview(self._mm).cast("q")
        #: the cell of each name in this process's row (:meth:`add` runs several
        #: times per message: one dict lookup finds the cell)
        self._cell_of: dict[str, int] = {}
        self.use_row(0)

    def use_row(self, row: int) -> None:
        """Make this process write to ``row`` (its rank; 0 the supervisor)."""
        if not 0 <= row < self.rows:
            raise ValueError(f"row {row} outside 0..{self.rows - 1}")
        base = row * len(self.names)
        self._cell_of = {name: base + i for name, i in self._index.items()}

    def add(self, name: str, n: int = 1) -> None:
        at = self._cell_of.get(name)
        if at is not None:
            value = self._cells[at] + n
            if not _I64_MIN <= value <= _I64_MAX:
                # int64 wraps as Kamailio's counters do (never raises)
                value = (value + 2**63) % 2**64 - 2**63
            self._cells[at] = value

    def get(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            return 0
        width = len(self.names)
        return sum(self._cells[row * width + index] for row in range(self.rows))

    def snapshot(self) -> dict[str, int]:
        return {name: self.get(name) for name in self.names}

    def close(self) -> None:
        """Unmap the memory (the supervisor, after its children are gone)."""
        self._cells.release()
        self._mm.close()
