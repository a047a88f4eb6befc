"""htable's tables (``$sht``) and pike's tree in memory shared by every worker.

Kamailio allocates htable's tables and pike's IP tree in shared memory when its main
process initialises the modules, before it forks the workers, so a ban written by one
worker (``$sht(ipban=>$si) = 1``) stops the flooder in every other. kcc does the same,
with the design of :mod:`kcc_runtime.shm` (``$shv``):

- **Memory**: one anonymous ``MAP_SHARED`` mapping for all the tables, made by the
  supervisor before it forks (:meth:`ModuleMemory.from_config`, called by
  :mod:`kcc_runtime.serve`); every worker inherits it. Nothing is named in
  ``/dev/shm``, so a supervisor killed by SIGKILL leaks nothing. pike's tree has its
  own mapping (:class:`kcc_runtime.pike.PikeTree`).
- **A table** is a fixed array of slots, open addressing with linear probing on the
  CRC-32 of the key (stable across processes, unlike ``hash()``), deletion by
  backward shift (no tombstones: a table that sees many keys come and go keeps short
  probes). A slot holds the key (at most ``max_key`` bytes of UTF-8, default 255),
  the type, an int64, a string of at most ``max_value`` bytes (default 1024) and the
  expiry second. Kamailio chains items in ``2^size`` buckets with no bound but shared
  memory itself; a fixed table needs one: a table holds at most
  :func:`capacity_for` ``= max(1024, 2 * 2^size)`` items (``size`` clamped to 3..14 as
  Kamailio does, so 1024..32768 items), in ``capacity * 5 / 4`` slots. A write of a new
  key into a full table, of a key or a string longer than the slot holds, or of an
  int outside 64 bits fails: an error line (Kamailio's ``cannot set $sht(...)``
  wording for the table and key) and nothing is written; ``$sht(t=>k) = v`` then goes
  on as Kamailio does after a failed assignment, ``$shtinc`` gives ``$null``.
- **Locks** (:class:`~kcc_runtime.plocks.ProcessLocks`, made before the fork, which
  the kernel releases when their holder dies): each table has one mutex taken for
  every operation (:meth:`Table._locked`), so reads never see a torn slot and
  ``$shtinc`` is atomic across workers (Kamailio locks the bucket).
  ``sht_lock("t=>k")`` takes one of a set of :data:`KEY_LOCKS` locks chosen by the
  CRC-32 of table and key, recursive within a worker (Kamailio's recursive slot locks:
  two keys of the same slot share a lock). Each lock records its holder's pid in the
  mapping, for the report of :meth:`ModuleMemory.release_dead`, which the supervisor
  calls for every worker it reaps, as for ``$shv``.
- **Expiry**: any worker that meets an expired item (a read, or the sweep its timer
  runs every second through :meth:`HashTables.purge`) removes it under the mutex and
  reports it: each expired item is removed once, by one worker, and that worker runs
  ``event_route[htable:expired:<table>]`` for it (Kamailio: its timer process does).
- Per process, as in Kamailio (pkg memory): iterators (``sht_iterator_*``), the
  ``sht_lock`` recursion counts, ``$shtrecord``.

The single-process path (unit tests, ``Router.process`` without a supervisor) keeps
:class:`~kcc_runtime.htable.DictTable`; :func:`worker_state` picks one or the other.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kcc_runtime.htable import (
    Clock,
    ExpiredRecord,
    HashTables,
    Item,
    Table,
    TableSpec,
    capacity_for,
)
from kcc_runtime.pike import PikeTree
from kcc_runtime.plocks import ProcessLocks

if TYPE_CHECKING:
    from kcc_runtime.router import Config

__all__ = [
    "DEFAULT_MAX_KEY",
    "DEFAULT_MAX_VALUE",
    "KEY_LOCKS",
    "ModuleMemory",
    "SharedHtables",
    "SharedTable",
    "capacity_for",
    "worker_state",
]

log = logging.getLogger("kcc_runtime.htable")


#: longest key (bytes of UTF-8) a shared table holds
DEFAULT_MAX_KEY: Final = 255
#: longest string value (bytes of UTF-8) a shared table holds
DEFAULT_MAX_VALUE: Final = 1024
#: locks of the ``sht_lock`` set (shared by every table)
KEY_LOCKS: Final = 64
#: slot header: used, type (0 int / 1 str), key length, string length, key CRC-32,
#: int value, expiry second
_HEAD: Final = struct.Struct("<BBHHIqq")
_INT: Final = 0
_STR: Final = 1
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class _Region:
    """Where one table lives in the mapping."""

    spec: TableSpec
    #: index of its mutex in the lock list and the owners array
    index: int
    #: offset of its item count (int64), then its slots
    at: int
    capacity: int
    slots: int


class SharedHtables:
    """Every table of the cfg in one mapping, with their mutexes and the ``sht_lock``
    set; made once by the supervisor (:meth:`ModuleMemory.from_config`)."""

    def __init__(
        self,
        specs: Sequence[TableSpec],
        *,
        max_key: int = DEFAULT_MAX_KEY,
        max_value: int = DEFAULT_MAX_VALUE,
        capacity: int | None = None,
    ) -> None:
        """``capacity`` overrides :func:`capacity_for` (tests fill a small table)."""
        if max_key < 1 or max_value < 0 or (capacity is not None and capacity < 1):
            raise ValueError("max_key and capacity must be >= 1, max_value >= 0")
        self.specs = tuple(specs)
        self.max_key = max_key
        self.max_value = max_value
        self.slot_size = _HEAD.size + max_key + max_value
        self._owners_count = len(self.specs) + KEY_LOCKS
        at = (4 * self._owners_count + 15) & ~15
        regions: list[_Region] = []
        for index, spec in enumerate(self.specs):
            cap = capacity if capacity is not None else capacity_for(spec)
            slots = cap + cap // 4 + 1
            regions.append(_Region(spec, index, at, cap, slots))
            at += 8 + slots * self.slot_size
        self.regions = {r.spec.name: r for r in regions}
        self._mm = mmap.mmap(-1, max(at, mmap.PAGESIZE))
        self._owners = memoryview(self._mm)[: 4 * self._owners_count].cast("i")
        self._locks = ProcessLocks(self._owners_count, "kcc-htable-locks")

    # -- locks --------------------------------------------------------------------------

    @contextmanager
    def mutex(self, index: int) -> Iterator[None]:
        """Hold lock ``index`` (a table's mutex) for one operation."""
        self._locks.acquire(index)
        self._owners[index] = os.getpid()
        try:
            yield
        finally:
            self._owners[index] = 0
            self._locks.release(index)

    def key_lock_index(self, table: str, key: str) -> int:
        """The ``sht_lock`` lock of ``table=>key`` (an index into the lock list)."""
        digest = zlib.crc32(f"{table}=>{key}".encode("utf-8", "surrogateescape"))
        return len(self.specs) + digest % KEY_LOCKS

    def take(self, index: int) -> None:
        self._locks.acquire(index)
        self._owners[index] = os.getpid()

    def give(self, index: int) -> None:
        self._owners[index] = 0
        self._locks.release(index)

    def owner(self, index: int) -> int:
        """The pid recorded as holding lock ``index``; 0 when free."""
        return self._owners[index]

    def release_dead(self, pid: int) -> list[int]:
        """The locks the dead process ``pid`` held (the kernel released them when it
        died): their indexes, their records cleared."""
        released: list[int] = []
        if pid:
            for index in range(self._owners_count):
                if self._owners[index] == pid:
                    self._owners[index] = 0
                    released.append(index)
        return released

    # -- a worker's view ----------------------------------------------------------------

    def view(self, clock: Clock) -> HashTables:
        """This process's :class:`HashTables` over the shared tables (its own
        iterators, lock counts and expired list)."""

        def make(spec: TableSpec, clock: Clock, expired: list[ExpiredRecord]) -> Table:
            return SharedTable(self, self.regions[spec.name], clock, expired)

        return HashTables.from_specs(
            self.specs, clock, make_table=make, key_locks=_SharedKeyLocks(self)
        )

    def close(self) -> None:
        """Unmap the memory (the supervisor, after its workers are gone)."""
        self._owners.release()
        self._mm.close()
        self._locks.close()


class _SharedKeyLocks:
    """``sht_lock`` across workers: per process, the recursion count of each lock."""

    __slots__ = ("_holds", "_memory")

    def __init__(self, memory: SharedHtables) -> None:
        self._memory = memory
        self._holds: dict[int, int] = {}

    def acquire(self, table: str, key: str) -> None:
        index = self._memory.key_lock_index(table, key)
        holds = self._holds.get(index, 0)
        if holds == 0:
            self._memory.take(index)
        self._holds[index] = holds + 1

    def release(self, table: str, key: str) -> None:
        index = self._memory.key_lock_index(table, key)
        holds = self._holds.get(index, 0)
        if holds == 0:
            return
        if holds == 1:
            del self._holds[index]
            self._memory.give(index)
        else:
            self._holds[index] = holds - 1


class SharedTable(Table):
    """One table in the shared mapping (see the module docstring for the layout)."""

    __slots__ = ("_memory", "_mm", "_region")

    def __init__(
        self,
        memory: SharedHtables,
        region: _Region,
        clock: Clock,
        expired: list[ExpiredRecord],
    ) -> None:
        super().__init__(region.spec, clock, expired)
        self._memory = memory
        self._region = region
        self._mm = memory._mm

    @property
    def capacity(self) -> int:
        return self._region.capacity

    def __len__(self) -> int:
        """How many items are stored (expired ones included until swept)."""
        return int(struct.unpack_from("<q", self._mm, self._region.at)[0])

    def _set_len(self, count: int) -> None:
        struct.pack_into("<q", self._mm, self._region.at, count)

    def _locked(self) -> AbstractContextManager[None]:
        return self._memory.mutex(self._region.index)

    def _slot_at(self, slot: int) -> int:
        return self._region.at + 8 + slot * self._memory.slot_size

    def _find(self, key: bytes, digest: int) -> tuple[int, bool]:
        """(slot, found): the key's slot, or the empty slot where it would go."""
        mm = self._mm
        slots = self._region.slots
        slot = digest % slots
        for _ in range(slots):
            at = self._slot_at(slot)
            used, _, key_len, _, crc, _, _ = _HEAD.unpack_from(mm, at)
            if not used:
                return slot, False
            start = at + _HEAD.size
            if crc == digest and key_len == len(key) and mm[start : start + key_len] == key:
                return slot, True
            slot = (slot + 1) % slots
        return -1, False  # never: the table always keeps an empty slot

    def _read(self, at: int) -> tuple[str, Item]:
        mm = self._mm
        _, kind, key_len, str_len, _, number, expire = _HEAD.unpack_from(mm, at)
        start = at + _HEAD.size
        key = mm[start : start + key_len].decode("utf-8", "surrogateescape")
        if kind == _INT:
            return key, Item(int(number), int(expire))
        start += self._memory.max_key
        text = mm[start : start + str_len].decode("utf-8", "surrogateescape")
        return key, Item(text, int(expire))

    def _lookup(self, key: str) -> Item | None:
        data = key.encode("utf-8", "surrogateescape")
        if len(data) > self._memory.max_key:
            return None
        slot, found = self._find(data, zlib.crc32(data))
        return self._read(self._slot_at(slot))[1] if found else None

    def _refuse(self, key: str, why: str) -> bool:
        log.error("cannot set $sht(%s=>%s): %s", self.spec.name, key, why)
        return False

    def _store(self, key: str, item: Item) -> bool:
        data = key.encode("utf-8", "surrogateescape")
        if len(data) > self._memory.max_key:
            return self._refuse(
                key, f"a key has at most {self._memory.max_key} bytes in a shared table"
            )
        value = item.value
        text = b""
        number = 0
        if isinstance(value, int):
            kind, number = _INT, value
            if not _I64_MIN <= number <= _I64_MAX:
                return self._refuse(key, f"{value} does not fit in 64 bits")
        else:
            kind, text = _STR, value.encode("utf-8", "surrogateescape")
            if len(text) > self._memory.max_value:
                return self._refuse(
                    key,
                    f"a string of {len(text)} bytes is longer than the "
                    f"{self._memory.max_value} bytes a shared table holds",
                )
        digest = zlib.crc32(data)
        slot, found = self._find(data, digest)
        if not found:
            count = len(self)
            if count >= self._region.capacity:
                return self._refuse(
                    key, f"the table is full ({self._region.capacity} items, kcc's bound)"
                )
            self._set_len(count + 1)
        at = self._slot_at(slot)
        mm = self._mm
        start = at + _HEAD.size
        mm[start : start + len(data)] = data
        if text:
            start += self._memory.max_key
            mm[start : start + len(text)] = text
        _HEAD.pack_into(mm, at, 1, kind, len(data), len(text), digest, number, item.expire)
        return True

    def _remove(self, key: str) -> None:
        data = key.encode("utf-8", "surrogateescape")
        if len(data) > self._memory.max_key:
            return
        slot, found = self._find(data, zlib.crc32(data))
        if found:
            self._delete_slot(slot)
            self._set_len(len(self) - 1)

    def _delete_slot(self, hole: int) -> None:
        """Empty ``hole`` and shift back the entries after it that probed past it, so
        every key stays reachable from its home slot without tombstones."""
        mm = self._mm
        slots = self._region.slots
        size = self._memory.slot_size
        probe = hole
        while True:
            probe = (probe + 1) % slots
            at = self._slot_at(probe)
            used, _, _, _, crc, _, _ = _HEAD.unpack_from(mm, at)
            if not used:
                break
            home = crc % slots
            if (probe - home) % slots >= (probe - hole) % slots:
                dst = self._slot_at(hole)
                mm[dst : dst + size] = mm[at : at + size]
                hole = probe
        _HEAD.pack_into(mm, self._slot_at(hole), 0, 0, 0, 0, 0, 0, 0)

    def _used_slots(self) -> Iterator[int]:
        mm = self._mm
        for slot in range(self._region.slots):
            at = self._slot_at(slot)
            if mm[at]:
                yield at

    def _snapshot(self) -> list[tuple[str, Item]]:
        return [self._read(at) for at in self._used_slots()]

    def _expired_keys(self, now: int) -> list[tuple[str, Item]]:
        out: list[tuple[str, Item]] = []
        for at in self._used_slots():
            expire = _HEAD.unpack_from(self._mm, at)[6]
            if 0 < expire < now:
                out.append(self._read(at))
        return out

    def _clear(self) -> None:
        for at in self._used_slots():
            _HEAD.pack_into(self._mm, at, 0, 0, 0, 0, 0, 0, 0)
        self._set_len(0)


@dataclass
class ModuleMemory:
    """What the supervisor maps before forking for the modules the cfg loads:
    htable's tables and pike's tree (None when the module is not loaded)."""

    htables: SharedHtables | None = None
    pike: PikeTree | None = None

    @classmethod
    def from_config(cls, config: Config) -> ModuleMemory:
        """The shared memory for ``config``'s htable definitions and pike settings; a
        bad definition raises :class:`~kcc_runtime.htable.HtableDefinitionError`."""
        htables = None
        if "htable" in config.modules:
            definitions = config.modparam_values("htable", "htable")
            # the same checks as the single-process path (a name given twice...)
            specs = list(HashTables.from_modparams(definitions).tables.values())
            htables = SharedHtables([t.spec for t in specs])
        pike = PikeTree.from_config(config) if "pike" in config.modules else None
        return cls(htables, pike)

    def release_dead(self, pid: int) -> int:
        """Release the locks a dead worker held; how many."""
        released = 0
        if self.htables is not None:
            released += len(self.htables.release_dead(pid))
        if self.pike is not None:
            released += self.pike.release_dead(pid)
        return released

    def close(self) -> None:
        if self.htables is not None:
            self.htables.close()
        if self.pike is not None:
            self.pike.close()


def worker_state(
    config: Config, memory: ModuleMemory | None, clock: Clock
) -> tuple[HashTables, PikeTree | None]:
    """A worker's htables and pike tree: over ``memory`` when the supervisor made it,
    else process-local ones (dict tables, an unshared tree) from ``config``."""
    if memory is not None:
        tables = (
            memory.htables.view(clock)
            if memory.htables is not None
            else HashTables.from_modparams(config.modparam_values("htable", "htable"), clock)
        )
        return tables, memory.pike
    tables = HashTables.from_modparams(config.modparam_values("htable", "htable"), clock)
    pike = PikeTree.from_config(config) if "pike" in config.modules else None
    return tables, pike
