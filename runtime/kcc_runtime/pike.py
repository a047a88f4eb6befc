"""pike's flood detector: Kamailio's IP tree, in memory shared by every worker.

Kamailio's pike (``pike_funcs.c``, ``ip_tree.c``; read for the facts) keeps one tree of
address bytes for IPv4 and IPv6 together, in shared memory, and this module keeps the
same tree with the same counters, so a source is blocked after the same requests:

- a request from an address walks the tree from the node of its first byte along the
  longest matching prefix. A first byte never seen makes that node (hits 1). A prefix
  node gets a hit; once it is *hot* (``hits`` previous or current, or their mean, at
  least ``reqs_density_per_unit / 4``) it grows a child for the next byte, the child
  inheriting ``hits - 1``; otherwise, unless it is *warm* (current hits at least
  ``x / 4``), its expiry is not refreshed. The whole address found is a leaf: its
  ``leaf_hits`` count, and when they make it hot (previous or current at least ``x``,
  or their mean) it turns *red*: the first time the check returns -2 and logs
  ``PIKE - BLOCKing ip <ip>, node=<n>`` at ``pike_log_level`` (default L_WARN), and
  while it stays red -1. So a new IPv4 address is blocked after at most about 3x
  requests in one sampling unit, and fewer when its prefix is already in the tree;
- every ``sampling_time_unit`` seconds each node's counters move to "previous" and
  restart at 0; a red leaf that is no longer hot is unblocked then (``PIKE -
  UNBLOCKing node <n>``). A node not refreshed for ``remove_latency`` seconds is
  removed (a leaf node; a prefix node once its last child went);
- return codes of ``pike_check_req``/``pike_check_ip``: 1 not blocked (also on an
  internal error), -1 blocked, -2 blocked from this request on.

Timers: Kamailio runs the swap every ``sampling_time_unit`` s and the clean-up every
second in its timer process. Here whoever takes the tree's lock first after a
boundary runs them (:meth:`PikeTree.tick`, called by every check and by the worker's
timer through :meth:`PikeTree.on_timer`): the swap boundaries are multiples of
``sampling_time_unit`` since the tree was made, and a check always sees the state the
timers would have left, because they only depend on the clock.

**Memory.** Nodes live in a fixed pool (``capacity`` nodes, default 16384: about
4096 IPv4 addresses with nothing shared) in one anonymous ``MAP_SHARED`` mapping made
by the supervisor before it forks, with one process-shared lock that the kernel
releases when its holder dies (:class:`~kcc_runtime.plocks.ProcessLocks`; its holder's
pid is recorded for the supervisor's report, :meth:`release_dead`). Kamailio's tree is
bounded only by shared memory (and it allows the request when that runs out). Here an
attacker rotating source addresses cannot grow it: when the pool is full, the
coldest eighth of the tree's leaves (not red first, then the soonest to expire, then
the fewest hits) is removed at once, with a warning, and the check goes on.

:meth:`PikeTree.top` gives the tree's address leaves with their counters and status
(``HOT``/``WARM``/``""``) for ``pike.top``.
"""

from __future__ import annotations

import ipaddress
import logging
import mmap
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kcc_runtime import logs
from kcc_runtime.kw import parse_ip
from kcc_runtime.plocks import ProcessLocks

if TYPE_CHECKING:
    from kcc_runtime.router import Config

__all__ = [
    "BLOCKED",
    "DEFAULT_CAPACITY",
    "NEW_BLOCKED",
    "NOT_BLOCKED",
    "PikeEntry",
    "PikeTree",
    "ip_bytes",
]

log = logging.getLogger("kcc_runtime.pike")


#: return codes of pike_check_req / pike_check_ip
NOT_BLOCKED: Final = 1
BLOCKED: Final = -1
NEW_BLOCKED: Final = -2

DEFAULT_CAPACITY: Final = 16384
#: Kamailio's counters are unsigned short, incremented while below 65534
_HIT_CAP: Final = 0xFFFF - 1

# node fields (int32 each)
_BYTE, _FLAGS, _BRANCH, _PARENT, _KIDS, _NEXT, _PREV = 0, 1, 2, 3, 4, 5, 6
_H_PREV, _H_CURR, _L_PREV, _L_CURR, _EXPIRES = 7, 8, 9, 10, 11
_FIELDS: Final = 12
# node flags
_IPLEAF: Final = 1
_RED: Final = 2
_INTIMER: Final = 4
# mark results
_NEW: Final = 1
_RED_NODE: Final = 2
_NEWRED: Final = 4
_NO_UPDATE: Final = 8
# header (int32 each): lock owner, free list head, nodes in use, last swap unit,
# last clean second, blocked counter, then the 256 branch heads
_OWNER, _FREE, _USED, _SWAPPED, _CLEANED, _BLOCKS = 0, 1, 2, 3, 4, 5
_HEADS: Final = 8
_HEADER: Final = _HEADS + 256
_NONE: Final = -1


@dataclass(frozen=True, slots=True)
class PikeEntry:
    """One address leaf of the tree, as ``pike.top`` lists it."""

    ip: str
    #: leaf hits (previous unit, current unit)
    leaf_hits: tuple[int, int]
    #: prefix hits of the node (previous unit, current unit)
    hits: tuple[int, int]
    #: the second (since the epoch) the node expires
    expires: int
    #: ``HOT`` (red or about to be), ``WARM`` or ``""``
    status: str


def ip_bytes(text: str) -> bytes | None:
    """The address bytes pike keys on (4 for IPv4, 16 for IPv6); None when ``text``
    is not an address (read as ``src_ip == "..."`` reads it: :func:`kw.parse_ip`)."""
    address = parse_ip(text)
    return None if address is None else address.packed


class PikeTree:
    """The IP tree of one proxy (see the module docstring)."""

    def __init__(
        self,
        *,
        max_hits: int = 30,
        time_unit: int = 2,
        timeout: int = 120,
        log_level: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``max_hits`` is ``reqs_density_per_unit``, ``time_unit``
        ``sampling_time_unit``, ``timeout`` ``remove_latency``, ``log_level``
        ``pike_log_level`` (a Kamailio level)."""
        if capacity < 2 or time_unit < 1:
            raise ValueError("capacity must be >= 2 and time_unit >= 1")
        self.max_hits = max_hits
        self.time_unit = time_unit
        self.timeout = timeout
        self.log_level = logs.parse_level(log_level) or logging.WARNING
        self.capacity = capacity
        self.clock = clock
        #: clock second the tree was made: times are stored relative to it
        self.base = int(clock())
        self._mm = mmap.mmap(-1, 4 * (_HEADER + capacity * _FIELDS))
        self._v = memoryview(self._mm).cast("i")
        self._lock = ProcessLocks(1, "kcc-pike-lock")
        v = self._v
        for slot in range(_HEADS, _HEADER):
            v[slot] = _NONE
        for node in range(capacity):
            v[_HEADER + node * _FIELDS + _BYTE] = _NONE
            v[_HEADER + node * _FIELDS + _NEXT] = node + 1 if node + 1 < capacity else _NONE
        v[_FREE] = 0

    @classmethod
    def from_config(cls, config: Config, clock: Callable[[], float] = time.time) -> PikeTree:
        """The tree for the cfg's ``modparam("pike", ...)`` values (Kamailio's
        defaults otherwise: 2 s, 30 requests, 120 s, L_WARN)."""

        def param(name: str, default: int) -> int:
            values = config.modparam_values("pike", name)
            return values[-1] if values and isinstance(values[-1], int) else default

        return cls(
            max_hits=param("reqs_density_per_unit", 30),
            time_unit=max(1, param("sampling_time_unit", 2)),
            timeout=param("remove_latency", 120),
            log_level=param("pike_log_level", 0),
            clock=clock,
        )

    # -- locking ------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock.acquire(0)
        self._v[_OWNER] = os.getpid()
        try:
            yield
        finally:
            self._v[_OWNER] = 0
            self._lock.release(0)

    def release_dead(self, pid: int) -> int:
        """1 if the dead process ``pid`` held the lock (the kernel released it when it
        died; its record is cleared), else 0."""
        if pid and self._v[_OWNER] == pid:
            self._v[_OWNER] = 0
            return 1
        return 0

    def close(self) -> None:
        self._v.release()
        self._mm.close()
        self._lock.close()

    # -- nodes --------------------------------------------------------------------------

    def _get(self, node: int, field: int) -> int:
        return self._v[_HEADER + node * _FIELDS + field]

    def _put(self, node: int, field: int, value: int) -> None:
        self._v[_HEADER + node * _FIELDS + field] = value

    def _new_node(self, byte: int) -> int:
        v = self._v
        node = v[_FREE]
        if node == _NONE:
            return _NONE
        v[_FREE] = self._get(node, _NEXT)
        v[_USED] += 1
        at = _HEADER + node * _FIELDS
        v[at : at + _FIELDS] = memoryview(bytes(4 * _FIELDS)).cast("i")
        for field in (_PARENT, _KIDS, _NEXT, _PREV):
            v[at + field] = _NONE
        v[at + _BYTE] = byte
        return node

    def _free_node(self, node: int) -> None:
        self._put(node, _BYTE, _NONE)
        self._put(node, _NEXT, self._v[_FREE])
        self._v[_FREE] = node
        self._v[_USED] -= 1

    def _unlink(self, node: int) -> None:
        """Take ``node`` (without kids) out of the tree and free it."""
        parent, nxt, prev = (self._get(node, f) for f in (_PARENT, _NEXT, _PREV))
        if prev != _NONE:
            self._put(prev, _NEXT, nxt)
        elif parent != _NONE:
            self._put(parent, _KIDS, nxt)
        else:
            self._v[_HEADS + self._get(node, _BYTE)] = nxt
        if nxt != _NONE:
            self._put(nxt, _PREV, prev)
        self._free_node(node)

    def _hot_prefix(self, node: int) -> bool:
        limit = self.max_hits >> 2
        prev, curr = self._get(node, _H_PREV), self._get(node, _H_CURR)
        return prev >= limit or curr >= limit or (prev + curr) >> 1 >= limit

    def _hot_leaf(self, node: int) -> bool:
        limit = self.max_hits
        prev, curr = self._get(node, _L_PREV), self._get(node, _L_CURR)
        return prev >= limit or curr >= limit or (prev + curr) >> 1 >= limit

    def _warm(self, node: int) -> bool:
        return self._get(node, _H_CURR) >= self.max_hits >> 2

    def _split(self, dad: int, byte: int) -> int:
        node = self._new_node(byte)
        if node == _NONE:
            return _NONE
        hits = self._get(dad, _H_CURR)
        if hits >= 1:
            self._put(node, _H_CURR, hits - 1)
        if self._get(dad, _L_CURR) >= 1:
            # Kamailio's split copies the father's previous leaf hits minus one into
            # an unsigned short (0 - 1 wraps): kept, it only matters for an IPv4
            # address that is the prefix of an IPv6 one
            self._put(node, _L_PREV, (self._get(dad, _L_PREV) - 1) & 0xFFFF)
        first = self._get(dad, _KIDS)
        if first != _NONE:
            self._put(first, _PREV, node)
            self._put(node, _NEXT, first)
        self._put(dad, _KIDS, node)
        self._put(node, _BRANCH, self._get(dad, _BRANCH))
        self._put(node, _PARENT, dad)
        return node

    def _mark(self, ip: bytes) -> tuple[int, int, int]:
        """One hit for ``ip``: (node, father, flags) as Kamailio's ``mark_node``;
        node -1 when no node could be made."""
        kid = self._v[_HEADS + ip[0]]
        node = _NONE
        pos = 0
        while kid != _NONE and pos < len(ip):
            while kid != _NONE and self._get(kid, _BYTE) != ip[pos]:
                kid = self._get(kid, _NEXT)
            if kid != _NONE:
                node = kid
                kid = self._get(kid, _KIDS)
                pos += 1
        flags = 0
        if pos == len(ip):
            self._put(node, _FLAGS, self._get(node, _FLAGS) | _IPLEAF)
            hits = self._get(node, _L_CURR)
            if hits < _HIT_CAP:
                self._put(node, _L_CURR, hits + 1)
            if not self._get(node, _FLAGS) & _RED:
                if self._hot_leaf(node):
                    flags = _RED_NODE | _NEWRED
                    self._put(node, _FLAGS, self._get(node, _FLAGS) | _RED)
            else:
                flags = _RED_NODE
            return node, _NONE, flags
        if pos == 0:
            node = self._new_node(ip[0])
            if node == _NONE:
                return _NONE, _NONE, 0
            self._put(node, _H_CURR, 1)
            self._put(node, _BRANCH, ip[0])
            self._v[_HEADS + ip[0]] = node
            return node, _NONE, _NEW
        hits = self._get(node, _H_CURR)
        if hits < _HIT_CAP:
            self._put(node, _H_CURR, hits + 1)
        if self._hot_prefix(node):
            return self._split(node, ip[pos]), node, _NEW
        return node, _NONE, 0 if self._warm(node) else _NO_UPDATE

    # -- timers -------------------------------------------------------------------------

    def _nodes(self) -> Iterator[int]:
        """Every node in use (depth first from the branch heads)."""
        stack = [self._v[_HEADS + b] for b in range(256) if self._v[_HEADS + b] != _NONE]
        while stack:
            node = stack.pop()
            yield node
            nxt, kids = self._get(node, _NEXT), self._get(node, _KIDS)
            if nxt != _NONE:
                stack.append(nxt)
            if kids != _NONE:
                stack.append(kids)

    def _swap(self) -> None:
        for node in list(self._nodes()):
            self._put(node, _H_PREV, self._get(node, _H_CURR))
            self._put(node, _H_CURR, 0)
            self._put(node, _L_PREV, self._get(node, _L_CURR))
            self._put(node, _L_CURR, 0)
            flags = self._get(node, _FLAGS)
            if flags & _RED and not self._hot_leaf(node):
                self._put(node, _FLAGS, flags & ~_RED)
                log.log(self.log_level, "PIKE - UNBLOCKing node %#x", node)

    def _expire(self, node: int, now: int) -> None:
        """Kamailio's ``clean_routine`` for one expired node in the timer."""
        self._put(node, _FLAGS, self._get(node, _FLAGS) & ~_INTIMER)
        if self._get(node, _KIDS) != _NONE:
            # an address leaf that is also a prefix: it stops being a leaf
            self._put(node, _FLAGS, self._get(node, _FLAGS) & ~_IPLEAF)
            self._put(node, _L_CURR, 0)
            return
        dad = self._get(node, _PARENT)
        if (
            dad != _NONE
            and self._get(dad, _KIDS) == node
            and self._get(node, _NEXT) == _NONE
            and not self._get(dad, _FLAGS) & _IPLEAF
        ):
            # its last child goes: the father is a tree leaf again, in the timer
            self._put(dad, _EXPIRES, now + self.timeout)
            self._put(dad, _FLAGS, self._get(dad, _FLAGS) | _INTIMER)
        self._unlink(node)

    def _clean(self, now: int) -> None:
        for node in [n for n in self._nodes() if self._get(n, _FLAGS) & _INTIMER]:
            if self._get(node, _BYTE) != _NONE and self._get(node, _EXPIRES) <= now:
                self._expire(node, now)

    def _tick(self, now: int) -> None:
        v = self._v
        unit = now // self.time_unit
        behind = unit - v[_SWAPPED]
        if behind > 0:
            # two swaps zero every counter: more change nothing
            for _ in range(min(behind, 2)):
                self._swap()
            v[_SWAPPED] = unit
        if now > v[_CLEANED]:
            self._clean(now)
            v[_CLEANED] = now

    def _now(self) -> int:
        return int(self.clock()) - self.base

    def on_timer(self) -> None:
        """The timers (swap, clean-up) due now; any worker's timer may call it."""
        with self._locked():
            self._tick(self._now())

    def _evict(self, now: int) -> None:
        """The pool is full: remove the coldest eighth of the tree's leaves."""
        leaves = [n for n in self._nodes() if self._get(n, _KIDS) == _NONE]
        leaves.sort(
            key=lambda n: (
                bool(self._get(n, _FLAGS) & _RED),
                self._get(n, _EXPIRES),
                self._get(n, _L_PREV) + self._get(n, _L_CURR) + self._get(n, _H_CURR),
            )
        )
        doomed = leaves[: max(1, self.capacity // 8)]
        log.warning(
            "pike: the IP tree is full (%d nodes): dropping the %d coldest entries",
            self.capacity,
            len(doomed),
        )
        for node in doomed:
            if self._get(node, _BYTE) != _NONE and self._get(node, _KIDS) == _NONE:
                self._expire(node, now)

    # -- the check ----------------------------------------------------------------------

    def check(self, ip: str) -> int:
        """``pike_check_ip(ip)``/``pike_check_req()``: 1, -1 or -2 (see the module
        docstring); 1 for text that is not an address (the caller logs that)."""
        packed = ip_bytes(ip)
        if packed is None:
            return NOT_BLOCKED
        with self._locked():
            now = self._now()
            self._tick(now)
            if self._v[_FREE] == _NONE:
                self._evict(now)
            node, father, flags = self._mark(packed)
            if node == _NONE:
                return NOT_BLOCKED
            if flags & _NEW:
                self._put(node, _EXPIRES, now + self.timeout)
                self._put(node, _FLAGS, self._get(node, _FLAGS) | _INTIMER)
                if (
                    father != _NONE
                    and not self._get(father, _FLAGS) & _IPLEAF
                    and self._get(node, _NEXT) == _NONE
                ):
                    # a father with children is out of the timer
                    self._put(father, _FLAGS, self._get(father, _FLAGS) & ~_INTIMER)
            elif not flags & _NO_UPDATE and (
                self._get(node, _FLAGS) & _IPLEAF or self._get(node, _KIDS) == _NONE
            ):
                # only address leaves and tree leaves are in the timer
                self._put(node, _EXPIRES, now + self.timeout)
            if flags & _NEWRED:
                self._v[_BLOCKS] += 1
        if flags & _RED_NODE:
            if flags & _NEWRED:
                log.log(self.log_level, "PIKE - BLOCKing ip %s, node=%#x", ip, node)
                return NEW_BLOCKED
            return BLOCKED
        return NOT_BLOCKED

    # -- reading ------------------------------------------------------------------------

    @property
    def blocked_ips(self) -> int:
        """The ``pike:blocked_ips`` counter: addresses turned red so far."""
        return self._v[_BLOCKS]

    @property
    def nodes_in_use(self) -> int:
        return self._v[_USED]

    def _status(self, node: int) -> str:
        if self._hot_leaf(node):
            return "HOT"
        return "WARM" if self._warm(node) else ""

    def top(self, which: str = "HOT") -> list[PikeEntry]:
        """The address leaves of the tree (``pike.top``): ``HOT`` ones (the default),
        ``WARM`` ones, or ``ALL``; most leaf hits first, then most hits."""
        wanted = which.upper()
        out: list[PikeEntry] = []
        with self._locked():
            self._tick(self._now())
            heads = [self._v[_HEADS + b] for b in range(256)]
            stack = [(n, b"") for n in heads if n != _NONE]
            while stack:
                node, prefix = stack.pop()
                nxt, kids = self._get(node, _NEXT), self._get(node, _KIDS)
                if nxt != _NONE:
                    stack.append((nxt, prefix))
                path = prefix + bytes([self._get(node, _BYTE)])
                if kids != _NONE:
                    stack.append((kids, path))
                if not self._get(node, _FLAGS) & _IPLEAF or len(path) not in (4, 16):
                    continue
                status = self._status(node)
                if wanted in ("ALL", status):
                    out.append(
                        PikeEntry(
                            ip=str(ipaddress.ip_address(path)),
                            leaf_hits=(self._get(node, _L_PREV), self._get(node, _L_CURR)),
                            hits=(self._get(node, _H_PREV), self._get(node, _H_CURR)),
                            expires=self.base + self._get(node, _EXPIRES),
                            status=status,
                        )
                    )
        out.sort(key=lambda e: (-(e.leaf_hits[0] + e.leaf_hits[1]), -(e.hits[0] + e.hits[1])))
        return out
