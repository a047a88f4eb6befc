"""State shared by every worker of one proxy: ``$shv``, the ``lock()`` locks and the
table of requests being processed (tmx's ``t_precheck_trans``).

This is the single-process store: one worker, so the table is a dict and a lock is a
recursion counter per name (``lock("x")`` twice then ``unlock("x")`` twice, as
cfgutils' recursive locks allow), and no other process can be processing a request.
The multi-process proxy (``children=N``) replaces it with a store in shared memory
behind the same methods; route code and the modules only ever use these methods.
"""

from __future__ import annotations

from collections.abc import Callable

from kcc_runtime.values import Value

__all__ = ["Counters", "SharedStore", "register_dead_releaser", "release_dead_elsewhere"]

#: what else keeps a process-shared lock (a module's tables in shared memory, made
#: before the fork): ``fn(pid)`` clears what the dead worker ``pid`` left recorded
#: (the kernel released the locks themselves) and says how many locks it held;
#: :func:`release_dead_elsewhere` calls them all
_DEAD_RELEASERS: list[Callable[[int], int]] = []


def register_dead_releaser(fn: Callable[[int], int]) -> None:
    """Have ``fn(pid)`` called for every worker the supervisor reaps (registering
    the same function again changes nothing)."""
    if fn not in _DEAD_RELEASERS:
        _DEAD_RELEASERS.append(fn)


def release_dead_elsewhere(pid: int) -> int:
    """Every registered releaser for the dead worker ``pid``: how many locks it held
    in their tables. :meth:`kcc_runtime.shm.SharedMemoryStore.release_dead` calls it."""
    return sum(fn(pid) for fn in _DEAD_RELEASERS) if pid else 0


class SharedStore:
    """``$shv(name)`` values and named locks."""

    def __init__(self, initial: dict[str, Value] | None = None) -> None:
        self._values: dict[str, Value] = dict(initial or {})
        self._held: dict[str, int] = {}
        #: the statistics counters (the RPC process reads them: ``stats.*``)
        self.counters: Counters = Counters()

    def get(self, name: str) -> Value:
        """``$shv(name)``: an unset shared variable reads as the int 0, as in Kamailio."""
        return self._values.get(name, 0)

    def set(self, name: str, value: Value) -> None:
        """``$shv(name) = value``; ``$null`` sets the int 0."""
        self._values[name] = 0 if value is None else value

    def lock(self, name: str) -> None:
        """Take the lock ``name`` (recursive within one worker)."""
        self._held[name] = self._held.get(name, 0) + 1

    def unlock(self, name: str) -> bool:
        """Release ``name``; False when this worker does not hold it."""
        count = self._held.get(name, 0)
        if count == 0:
            return False
        if count == 1:
            del self._held[name]
        else:
            self._held[name] = count - 1
        return True

    def held(self, name: str) -> bool:
        return name in self._held

    def cfg_override(self, group: str, name: str) -> int | str | None:
        """The value ``cfg.seti``/``cfg.sets`` gave ``group.name`` (None: never set
        over RPC; the cfg's value holds)."""
        value = self._values.get(f"\0cfg:{group}.{name}")
        return value if isinstance(value, int | str) else None

    def set_cfg_override(self, group: str, name: str, value: int | str) -> None:
        """Record an RPC-set cfg variable for every worker (kept in the ``$shv``
        table under a name no script can write: it starts with a NUL byte)."""
        self.set(f"\0cfg:{group}.{name}", value)

    def pretran_claim(self, key: bytes) -> bool:
        """tmx's ``t_precheck_trans``: record that this worker is processing the
        request whose fingerprint is ``key`` (until :meth:`pretran_release`) and say
        whether another worker is processing the same request right now. One
        process: never."""
        return False

    def pretran_release(self) -> None:
        """The request this worker claimed is processed (the engine calls this after
        every request route, as tmx's post-script callback does)."""


class Counters:
    """Named statistics counters (Kamailio's ``core:rcv_requests``, ``sl:200_replies``
    ...) of a single process: a dict. The multi-process proxy replaces it with
    :class:`~kcc_runtime.shm.SharedCounters` (one row per process in shared memory,
    summed by the RPC process); the engine and the modules only call :meth:`add`."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (created at 0 on first use)."""
        self._values[name] = self._values.get(name, 0) + n

    def get(self, name: str) -> int:
        """The counter's value (0 when never added to)."""
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """Every counter added to so far, by name."""
        return dict(self._values)
