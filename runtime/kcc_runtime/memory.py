"""Giving the memory a worker freed back to the system.

CPython hands objects larger than 512 bytes (every SIP message, every reply built) to
the C library's ``malloc``, and glibc keeps what is freed inside its heap for the next
allocations: after a burst (thousands of transactions open at once, a flood of 60 KB
datagrams) the worker's resident memory stays at the burst's high-water mark although
the objects are gone. ``malloc_trim(0)`` returns every whole free page of the heap to
the kernel. Measured on a worker after 300,000 fuzzed datagrams and a 40 s pause: 25.4
MB anonymous resident memory, 22.6 MB after the trim (21.5 MB idle); one trim takes
about 10 ms when it has much to return and under 1 ms otherwise.

:class:`Trimmer` trims at most every ``interval`` seconds; the transport's housekeeping
tick calls it (``serve.py`` sets it up for each worker). On a C library without
``malloc_trim`` (musl) it does nothing.

CPython's own allocator keeps objects of up to 512 bytes in 1 MB arenas, and gives an
arena back only once every object in it is gone. The parse caches (:func:`parse_cache`:
URIs, CSeqs, IP literals, each bounded) fill from the network, so during a burst their
entries land among the burst's short-lived objects, one here and one there, and keep
those arenas alive after the burst is over. Each trim therefore empties them first:
nothing a cache holds is older than one interval, and an idle worker's caches are
empty, so they are not what keeps the burst's arenas. Measured with
``bench/soak.py`` (300,000 fuzzed datagrams): with the caches off, a worker ended
the soak with 1.5 MB fewer live objects and one or two arenas fewer; refilling them
costs a few hundred parses per worker per interval.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["Trimmer", "clear_caches", "malloc_trim", "parse_cache"]

_T = TypeVar("_T")

#: how often a worker trims by default (s)
TRIM_INTERVAL: Final = 30.0


#: the ``cache_clear`` of every :func:`parse_cache`
_CACHES: list[Callable[[], None]] = []


def parse_cache(
    maxsize: int,
) -> Callable[[Callable[..., _T]], functools._lru_cache_wrapper[_T]]:
    """``functools.lru_cache(maxsize=maxsize)`` for a pure function of values taken
    from the network, whose entries every :class:`Trimmer` pass drops
    (:func:`clear_caches`)."""

    def decorate(function: Callable[..., _T]) -> functools._lru_cache_wrapper[_T]:
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _CACHES.append(cached.cache_clear)
        return cached

    return decorate


def clear_caches() -> None:
    """Empty every :func:`parse_cache`."""
    for clear in _CACHES:
        clear()


def _libc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _libc_trim()


def malloc_trim() -> bool:
    """Return the heap's free pages to the kernel; False when the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class Trimmer:
    """Empties the parse caches and calls :func:`malloc_trim` when called, at most once
    every ``interval`` seconds."""

    def __init__(
        self, interval: float = TRIM_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.trims = 0
        self._due = clock() + interval

    def __call__(self) -> None:
        now = self.clock()
        if now < self._due:
            return
        self._due = now + self.interval
        clear_caches()  # their entries first: what they free is trimmed with the rest
        if malloc_trim():
            self.trims += 1
