"""The htable module's named hash tables (``$sht(table=>key)``), shared by every
worker of one proxy.

Tables are declared with ``modparam("htable", "htable", "name=>size=8;autoexpire=300;
initval=0;updateexpire=1")``. :class:`Table` holds the semantics below over a storage
its subclass gives: :class:`DictTable`, a dict in one process (tests, ``Router.process``
without a supervisor: :meth:`HashTables.from_modparams`), and
:class:`kcc_runtime.shtable.SharedTable`, fixed slots in memory the supervisor maps
before it forks, so that every worker sees every write, as Kamailio keeps its tables in
shared memory. Route code (``$sht`` accessors in :mod:`kcc_runtime.pv`, the functions
in :mod:`kcc_runtime.modules.htable`) only ever uses the methods of :class:`Table` and
:class:`HashTables`; ``Table.entries()`` is the read API for a dump (``htable.dump``).

Kamailio 5.6.3 behaviour followed (measured on loopback with ``xlog`` from
``event_route[htable:mod-init]`` and ``request_route``; the module README for the rest):

- a definition is ``name=>attr=value;...`` with the attributes ``size``, ``autoexpire``,
  ``initval``, ``updateexpire``, ``dbtable``, ``dbmode``, ``dmqreplicate``, ``cols``;
  an unknown attribute, a missing ``=>``, a non-number where a number belongs
  (``size=x``, ``autoexpire=-5``, ``initval=abc``) or a table declared twice makes
  Kamailio refuse to start ("invalid htable parameter", "htable already configured"):
  here :class:`HtableDefinitionError`. ``name=>`` alone is a table with the defaults.
  There is no database and no DMQ here: ``dbtable``/``dbmode``/``cols``/
  ``dmqreplicate`` are accepted and ignored with a warning;
- ``size`` is the number of bits of the slot count (2^size buckets, not a cap on the
  items in Kamailio); here a table holds at most :func:`capacity_for` ``= max(1024,
  2 * 2^size)`` items, in one process as in shared memory, so that keys written from
  message content (``$sht(seen=>$si)``) cannot grow it without limit: a new key in a
  full table is refused with an error line and nothing is written;
- a missing key reads ``$null``, or the int ``initval`` when the table has one;
  ``$sht(t=>k) = $null`` deletes; ints and strings are kept as they are (a string
  ``"12"`` stays a string: ``$sht(a=>k) + 1`` is ``"121"``);
- time is whole seconds (Kamailio's ``time(NULL)``); in a table with ``autoexpire=N``
  an item written at ``t`` expires at ``t + N`` and is gone once the clock passes it
  (``expire < now``); a write refreshes the expiry unless ``updateexpire=0``. Items of
  a table without ``autoexpire`` never expire, whatever ``sht_setxs``/``$shtex`` ask;
- ``$shtinc``/``$shtdec`` add to an int item and give the new value; a missing item is
  created as ``initval +/- 1`` when the table has an ``initval``, else nothing happens
  and the result is ``$null``; a string item gives ``$null``;
- ``$shtcn(t=>expr)``/``$shtcv(t=>expr)`` count items by name / by string value:
  ``~~re`` (POSIX ERE, case-insensitive), ``%~text`` (starts with), ``~%text`` (ends
  with), ``==text`` (equal), ``**`` (all items, ints included), anything else is a
  regex;
- iterators (``sht_iterator_*``) belong to the process, at most 4 at a time.

Expired items are removed lazily when a read meets them and periodically by
:meth:`HashTables.purge`, which the engine's timer calls (Kamailio: every
``timer_interval`` s, default 20) and which returns every item that expired since the
last call, so the engine can run ``event_route[htable:expired:<table>]`` for each with
:attr:`HashTables.expired_record` set (``$shtrecord(key)``/``$shtrecord(value)``).
Kamailio removes expired items only in its timer, so ``$shtcn`` there still counts an
expired item until the next sweep; here counting sweeps the table first.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Protocol

from kcc_runtime.values import EvalError, Value, compile_posix_ere, wrap32

__all__ = [
    "MAX_ITERATORS",
    "MIN_CAPACITY",
    "Clock",
    "DictTable",
    "ExpiredRecord",
    "HashTables",
    "HtIterator",
    "HtableDefinitionError",
    "Item",
    "KeyLocks",
    "Table",
    "TableFactory",
    "TableSpec",
    "capacity_for",
    "compile_matcher",
    "count_matcher",
    "parse_definition",
]

log = logging.getLogger("kcc_runtime.htable")

#: the time source: seconds since the epoch (``time.time``; tests pass a fake)
Clock = Callable[[], float]
#: Kamailio's ``HT_ITERATOR_SIZE``: iterators one process may hold at once
MAX_ITERATORS: Final = 4

_INT_ATTRS: Final = ("size", "autoexpire", "updateexpire", "dbmode", "dmqreplicate")
_IGNORED: Final = ("dbtable", "dbmode", "cols", "dmqreplicate")


class HtableDefinitionError(ValueError):
    """A ``modparam("htable", "htable", ...)`` value Kamailio refuses at start-up."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table definition, parsed."""

    name: str
    #: slot count bits as written (0: not given, Kamailio's default of 8 slots)
    size: int = 0
    #: seconds after the last write an item expires; 0: never
    autoexpire: int = 0
    #: what a missing key reads instead of ``$null``
    initval: int | None = None
    #: whether a write refreshes an item's expiry
    updateexpire: bool = True
    #: accepted and ignored (no database, no DMQ in kcc)
    dbtable: str | None = None
    dbmode: int = 0
    dmqreplicate: int = 0
    cols: str | None = None

    @property
    def slots(self) -> int:
        """The bucket count Kamailio would allocate (2^size, clamped to 8..16384)."""
        bits = self.size if self.size >= 2 else 3
        return 1 << min(bits, 14)


def _split_attrs(text: str) -> list[str]:
    """Split ``a=1;b='x;y'`` at the semicolons outside quotes."""
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == ";":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item for item in items if item.strip(" \t")]


def _number(definition: str, attr: str, text: str, *, signed: bool) -> int:
    body = text[1:] if signed and text[:1] in "+-" else text
    if not body.isascii() or not body.isdigit():
        raise HtableDefinitionError(
            f"invalid htable parameter [{definition}]: {attr}={text!r} is not "
            f"{'an integer' if signed else 'a non-negative integer'}"
        )
    return int(text)


def parse_definition(text: str) -> TableSpec:
    """Parse one ``name=>attr=value;...`` definition (Kamailio's ``ht_table_spec``);
    :class:`HtableDefinitionError` for what Kamailio refuses."""
    name, sep, rest = text.partition("=>")
    if not sep:
        raise HtableDefinitionError(f"invalid htable parameter [{text}]: no '=>' after the name")
    values: dict[str, str] = {}
    for item in _split_attrs(rest):
        key, eq, value = item.partition("=")
        key, value = key.strip(" \t"), value.strip(" \t")
        if not eq:
            raise HtableDefinitionError(f"invalid htable parameter [{text}]: {key!r} has no value")
        if key not in (*_INT_ATTRS, "initval", "dbtable", "cols"):
            raise HtableDefinitionError(
                f"invalid htable parameter [{text}]: unknown attribute {key!r}"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    ints = {k: _number(text, k, values[k], signed=False) for k in _INT_ATTRS if k in values}
    initval = values.get("initval")
    return TableSpec(
        name=name.strip(" \t"),
        size=ints.get("size", 0),
        autoexpire=ints.get("autoexpire", 0),
        initval=None if initval is None else _number(text, "initval", initval, signed=True),
        updateexpire=ints.get("updateexpire", 1) != 0,
        dbtable=values.get("dbtable") or None,
        dbmode=ints.get("dbmode", 0),
        dmqreplicate=ints.get("dmqreplicate", 0),
        cols=values.get("cols") or None,
    )


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Callable[[str], bool] | None:
    """A case-insensitive POSIX ERE search (htable's ``regcomp`` flags); None (logged)
    when glibc would refuse the pattern ("bad re")."""
    try:
        compiled = compile_posix_ere(pattern)
    except EvalError:
        log.error("bad re %s", pattern)
        return None
    return lambda text: compiled.search(text) is not None


def compile_matcher(op: str, operand: str) -> Callable[[str], bool] | None:
    """The test of ``sht_match_name``/``sht_rm_name`` & co.: ``eq``, ``ne``, ``sw``
    (case-sensitive), ``re`` (case-insensitive regex). None for an unsupported
    operator (logged, as Kamailio's "unsupported match operator") or a bad regex."""
    if op == "eq":
        return lambda text: text == operand
    if op == "ne":
        return lambda text: text != operand
    if op == "sw":
        return lambda text: text.startswith(operand)
    if op == "re":
        return _regex(operand)
    log.warning("unsupported match operator: %s", op)
    return None


def count_matcher(expr: str) -> Callable[[str], bool] | None:
    """The test of ``$shtcn``/``$shtcv``: ``~~re``, ``%~prefix``, ``~%suffix``,
    ``==text``, ``**`` (everything), else a regex; None for a bad regex."""
    head, tail = expr[:2], expr[2:]
    if head == "**":
        return lambda text: True
    if head == "==":
        return lambda text: text == tail
    if head == "%~":
        return lambda text: text.startswith(tail)
    if head == "~%":
        return lambda text: text.endswith(tail)
    return _regex(tail if head == "~~" else expr)


@dataclass(slots=True)
class Item:
    """One entry: its value and its absolute expiry second (0: never)."""

    value: int | str
    expire: int = 0


@dataclass(frozen=True, slots=True)
class ExpiredRecord:
    """An item that expired: what ``event_route[htable:expired:<table>]`` sees."""

    table: str
    key: str
    value: int | str


class Table(ABC):
    """One named table: htable's semantics (expiry, ``initval``, ``updateexpire``,
    counting, matching) over a storage that a subclass provides: a dict in one
    process (:class:`DictTable`), fixed slots in memory shared by every worker
    (:class:`kcc_runtime.shtable.SharedTable`). Every public method takes the
    storage's lock once (:meth:`_locked`; nothing in one process) and reads the clock
    once, through :meth:`now`, so an operation is atomic across workers, as
    Kamailio's slot locks make it."""

    __slots__ = ("_clock", "_expired", "spec")

    def __init__(self, spec: TableSpec, clock: Clock, expired: list[ExpiredRecord]) -> None:
        self.spec = spec
        self._clock = clock
        #: this process's list of expired items, reported by :meth:`HashTables.purge`
        self._expired = expired

    # -- the storage (called with the table locked) -----------------------------------

    def _locked(self) -> AbstractContextManager[object]:
        """Hold the table for one operation (a no-op for a process-local table)."""
        return nullcontext()

    @abstractmethod
    def _lookup(self, key: str) -> Item | None:
        """The stored item (a copy for a shared table), expired or not."""

    @abstractmethod
    def _store(self, key: str, item: Item) -> bool:
        """Write ``item`` under ``key``; False (logged) when the storage cannot hold
        it (a shared table full, a key or value too long)."""

    @abstractmethod
    def _remove(self, key: str) -> None:
        """Remove ``key`` if present."""

    @abstractmethod
    def _snapshot(self) -> list[tuple[str, Item]]:
        """Every stored item, in storage order."""

    @abstractmethod
    def _clear(self) -> None:
        """Remove every item."""

    def _expired_keys(self, now: int) -> list[tuple[str, Item]]:
        """The stored items that have expired at ``now`` (a shared table reads only
        the expiry of each slot)."""
        return [(k, i) for k, i in self._snapshot() if self._is_expired(i, now)]

    # -- semantics --------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def _is_expired(self, item: Item, now: int) -> bool:
        return self.spec.autoexpire > 0 and 0 < item.expire < now

    def _expire(self, key: str, item: Item) -> None:
        self._remove(key)
        self._expired.append(ExpiredRecord(self.spec.name, key, item.value))

    def _live(self, key: str, now: int) -> Item | None:
        item = self._lookup(key)
        if item is None:
            return None
        if self._is_expired(item, now):
            self._expire(key, item)
            return None
        return item

    def live(self, key: str, now: int | None = None) -> Item | None:
        """The item under ``key`` unless it has expired (then it is removed)."""
        with self._locked():
            return self._live(key, self.now() if now is None else now)

    def _sweep(self, now: int) -> None:
        if self.spec.autoexpire > 0:
            for key, item in self._expired_keys(now):
                self._expire(key, item)

    def sweep(self, now: int | None = None) -> None:
        """Remove every expired item (queued for :meth:`HashTables.purge`: in a shared
        table the process that removes an item is the one that reports it)."""
        if self.spec.autoexpire <= 0:
            return
        with self._locked():
            self._sweep(self.now() if now is None else now)

    def _new_expire(self, now: int) -> int:
        return now + self.spec.autoexpire if self.spec.autoexpire > 0 else 0

    def get(self, key: str) -> Value:
        """``$sht(t=>key)``: the value, else ``initval``, else ``$null``."""
        with self._locked():
            item = self._live(key, self.now())
        if item is not None:
            return item.value
        return self.spec.initval

    def _set(self, key: str, value: Value, now: int) -> bool:
        if value is None:
            self._remove(key)
            return True
        item = self._live(key, now)
        if item is None:
            return self._store(key, Item(value, self._new_expire(now)))
        item.value = value
        if self.spec.updateexpire:
            item.expire = self._new_expire(now)
        return self._store(key, item)

    def set(self, key: str, value: Value) -> bool:
        """``$sht(t=>key) = value``; ``$null`` deletes. False (logged) when a shared
        table cannot hold the item (nothing is written)."""
        with self._locked():
            return self._set(key, value, self.now())

    def set_ex(self, key: str, value: int | str, expires: int) -> bool:
        """``sht_setxs``/``sht_setxi``: set the value, the item expiring ``expires``
        s from now (0: after ``autoexpire``; ignored in a table without it)."""
        with self._locked():
            now = self.now()
            if not self._set(key, value, now):
                return False
            if expires > 0 and self.spec.autoexpire > 0:
                item = self._lookup(key)
                if item is not None:
                    item.expire = now + expires
                    return self._store(key, item)
            return True

    def delete(self, key: str) -> None:
        with self._locked():
            self._remove(key)

    def expires_in(self, key: str) -> int:
        """``$shtex(t=>key)``: seconds until the item expires; 0 for a missing item,
        one that never expires, or any item of a table without ``autoexpire``."""
        if self.spec.autoexpire <= 0:
            return 0
        with self._locked():
            now = self.now()
            item = self._live(key, now)
        if item is None or item.expire == 0:
            return 0
        return item.expire - now

    def set_expires(self, key: str, seconds: int) -> None:
        """``$shtex(t=>key) = seconds``: the item expires ``seconds`` from now (0:
        never); nothing in a table without ``autoexpire`` or for a missing item."""
        if self.spec.autoexpire <= 0:
            return
        with self._locked():
            now = self.now()
            item = self._live(key, now)
            if item is not None:
                item.expire = now + seconds if seconds > 0 else 0
                self._store(key, item)

    def add(self, key: str, delta: int) -> int | None:
        """``$shtinc``/``$shtdec``: the new int value, None when nothing was added
        (also when a shared table is full)."""
        with self._locked():
            now = self.now()
            item = self._live(key, now)
            if item is None:
                if self.spec.initval is None:
                    return None
                value = wrap32(self.spec.initval + delta)
                return value if self._store(key, Item(value, self._new_expire(now))) else None
            if not isinstance(item.value, int):
                return None
            item.value = wrap32(item.value + delta)
            if self.spec.updateexpire:
                item.expire = self._new_expire(now)
            return item.value if self._store(key, item) else None

    def reset(self) -> None:
        """``sht_reset``: remove every item."""
        with self._locked():
            self._clear()

    def entries(self) -> list[tuple[str, Item]]:
        """Every live item (expired ones are swept first), in storage order: the read
        API for ``htable.dump`` and the like."""
        with self._locked():
            self._sweep(self.now())
            return self._snapshot()

    def keys(self) -> list[str]:
        """The names of every live item."""
        return [key for key, _ in self.entries()]

    def count(self, test: Callable[[str], bool], *, by_value: bool, everything: bool) -> int:
        """``$shtcn``/``$shtcv``: how many items' names (values) pass ``test``; by
        value only string values count unless ``everything`` (``**``)."""
        items = self.entries()
        if not by_value:
            return sum(1 for key, _ in items if test(key))
        if everything:
            return len(items)
        return sum(1 for _, i in items if isinstance(i.value, str) and test(i.value))

    def any_match(self, test: Callable[[str], bool], *, by_value: bool) -> bool:
        """``sht_match_name``/``sht_match_str_value``: whether a live item matches
        (by value: string values only)."""
        items = self.entries()
        if not by_value:
            return any(test(key) for key, _ in items)
        return any(isinstance(i.value, str) and test(i.value) for _, i in items)

    def remove_matching(self, test: Callable[[str], bool], *, by_value: bool) -> int:
        """``sht_rm_name``/``sht_rm_value`` & co.: remove the matching items (by
        value: string values only); how many went."""
        with self._locked():
            doomed = [
                key
                for key, item in self._snapshot()
                if (test(key) if not by_value else isinstance(item.value, str) and test(item.value))
            ]
            for key in doomed:
                self._remove(key)
        return len(doomed)


#: the fewest items a table holds, whatever its ``size``
MIN_CAPACITY: Final = 1024


def capacity_for(spec: TableSpec) -> int:
    """How many items the table for ``spec`` holds: ``max(1024, 2 * 2^size)``
    (``2^size`` is Kamailio's bucket count, 8..16384). The shared tables and the
    dict tables of one process have the same bound, so that a flood of new keys
    (``$sht(seen=>$si) = 1`` from rotating addresses) is refused the same way."""
    return max(MIN_CAPACITY, 2 * spec.slots)


class DictTable(Table):
    """A table of one process: a dict (insertion order), at most
    :func:`capacity_for` items (a new key in a full table is refused, logged as a
    shared table logs it)."""

    __slots__ = ("capacity", "items")

    def __init__(self, spec: TableSpec, clock: Clock, expired: list[ExpiredRecord]) -> None:
        super().__init__(spec, clock, expired)
        self.items: dict[str, Item] = {}
        self.capacity = capacity_for(spec)

    def _lookup(self, key: str) -> Item | None:
        return self.items.get(key)

    def _store(self, key: str, item: Item) -> bool:
        items = self.items
        if len(items) >= self.capacity and key not in items:
            log.error(
                "cannot set $sht(%s=>%s): the table is full (%d items, kcc's bound)",
                self.spec.name,
                key,
                self.capacity,
            )
            return False
        items[key] = item
        return True

    def _remove(self, key: str) -> None:
        self.items.pop(key, None)

    def _snapshot(self) -> list[tuple[str, Item]]:
        return list(self.items.items())

    def _clear(self) -> None:
        self.items.clear()


#: builds one table of a :class:`HashTables` (``DictTable`` or a shared one)
TableFactory = Callable[[TableSpec, Clock, list[ExpiredRecord]], Table]


class KeyLocks(Protocol):
    """``sht_lock`` locks shared by every worker (:class:`kcc_runtime.shtable`):
    recursive within one process."""

    def acquire(self, table: str, key: str) -> None: ...

    def release(self, table: str, key: str) -> None: ...


@dataclass(slots=True)
class HtIterator:
    """``sht_iterator_start(name, table)``: a walk over the table's keys as they were
    at the start (items removed since are skipped). ``current`` is the key the
    iterator is on, None before the first ``next`` and after the last."""

    table: Table
    keys: list[str]
    position: int = -1
    current: str | None = None

    def next(self) -> bool:
        """Move to the next live item; False at the end."""
        while self.position + 1 < len(self.keys):
            self.position += 1
            key = self.keys[self.position]
            if self.table.live(key) is not None:
                self.current = key
                return True
        self.position = len(self.keys)
        self.current = None
        return False

    def item(self) -> Item | None:
        """The current item (None when there is none or it has gone)."""
        return None if self.current is None else self.table.live(self.current)


@dataclass
class HashTables:
    """Every table of the cfg, the ``sht_lock`` locks, and this process's iterators."""

    tables: dict[str, Table] = field(default_factory=dict)
    clock: Clock = time.time
    #: ``sht_lock`` recursion counts by (table, key) (re-entrant per process)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    #: ``sht_iterator_*`` by name: per process in Kamailio (pkg memory)
    iterators: dict[str, HtIterator] = field(default_factory=dict)
    #: the record ``event_route[htable:expired:<table>]`` runs for (``$shtrecord``)
    expired_record: ExpiredRecord | None = None
    #: the cross-process side of ``sht_lock`` (None: one process, nothing to lock)
    key_locks: KeyLocks | None = None
    _expired: list[ExpiredRecord] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_specs(
        cls,
        specs: Iterable[TableSpec],
        clock: Clock = time.time,
        *,
        make_table: TableFactory = DictTable,
        key_locks: KeyLocks | None = None,
    ) -> HashTables:
        """Tables for ``specs`` (each built by ``make_table``: a dict by default); a
        name given twice is a :class:`HtableDefinitionError` ("htable already
        configured")."""
        out = cls(clock=clock, key_locks=key_locks)
        for spec in specs:
            if spec.name in out.tables:
                raise HtableDefinitionError(f"htable already configured [{spec.name}]")
            ignored = [a for a in _IGNORED if getattr(spec, a)]
            if ignored:
                log.warning(
                    "htable [%s]: %s ignored: kcc has no database or DMQ replication",
                    spec.name,
                    ", ".join(ignored),
                )
            out.tables[spec.name] = make_table(spec, clock, out._expired)
        return out

    @classmethod
    def from_modparams(
        cls, definitions: Iterable[int | str], clock: Clock = time.time
    ) -> HashTables:
        """Tables for every ``modparam("htable", "htable", ...)`` value, in cfg order;
        the first bad one raises :class:`HtableDefinitionError` (Kamailio does not
        start)."""
        return cls.from_specs((parse_definition(str(d)) for d in definitions), clock)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def purge(self, now: int | None = None) -> list[ExpiredRecord]:
        """The timer's sweep: remove every expired item and return every item that
        expired since the last call (also those removed lazily by reads), oldest
        first, for ``event_route[htable:expired:<table>]``."""
        for table in self.tables.values():
            table.sweep(now)
        out = list(self._expired)
        self._expired.clear()
        return out

    # -- sht_lock / sht_unlock -----------------------------------------------------

    def lock(self, table: str, key: str) -> None:
        """Take the key's lock (re-entrant in this process); with shared tables it
        blocks while another worker holds a lock of the same slot."""
        if self.key_locks is not None:
            self.key_locks.acquire(table, key)
        self.held[(table, key)] = self.held.get((table, key), 0) + 1

    def unlock(self, table: str, key: str) -> None:
        """Release one level; releasing a lock not held does nothing (Kamailio: 1)."""
        count = self.held.get((table, key), 0)
        if count == 0:
            return
        if count == 1:
            self.held.pop((table, key), None)
        else:
            self.held[(table, key)] = count - 1
        if self.key_locks is not None:
            self.key_locks.release(table, key)

    # -- iterators -------------------------------------------------------------------

    def iterator_start(self, name: str, table: Table) -> bool:
        """Start (or restart) iterator ``name``; False when 4 others are in use."""
        if name not in self.iterators and len(self.iterators) >= MAX_ITERATORS:
            log.error("no iterator available - max number is %d", MAX_ITERATORS)
            return False
        self.iterators[name] = HtIterator(table, table.keys())
        return True

    def iterator_end(self, name: str) -> bool:
        return self.iterators.pop(name, None) is not None

    def dump(self) -> list[str]:
        """``sht_print``: one line per table and per item (Kamailio prints slots and
        hash ids; a dict has neither, so those are left out)."""
        lines: list[str] = []
        for table in self.tables.values():
            entries = table.entries()
            spec = table.spec
            lines.append(
                f"htable[{spec.name}] slots: {spec.slots} items: {len(entries)} "
                f"exp: {spec.autoexpire}"
            )
            for key, item in entries:
                kind = "i" if isinstance(item.value, int) else "s"
                lines.append(f"\tcell: {key} expire: {item.expire} v-{kind}:{item.value}")
        return lines
