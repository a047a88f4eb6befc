"""Freed memory goes back to the system (:mod:`kcc_runtime.memory`).

glibc keeps freed blocks in its heap; ``malloc_trim`` returns their pages. The effect
is measured in a child process (its own heap and resident size): 60 MB of 60 KB
messages allocated, two thirds freed in a pattern that leaves the heap's top in use
(so ``free`` alone returns nothing), then one trim.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from kcc_runtime import memory
from kcc_runtime.memory import Trimmer

CHILD = """
import sys
from kcc_runtime.memory import malloc_trim

def anon_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])

blocks = [bytes(60_000) for _ in range(1_000)]
kept = blocks[2::3]  # every third stays: the heap cannot shrink from its top
del blocks
freed = anon_kb()
assert malloc_trim()
print(freed, anon_kb())
"""


def test_malloc_trim_returns_freed_pages() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    before, after = (int(x) for x in done.stdout.split())
    # ~40 MB of the 60 MB were freed; free() kept them resident, the trim gives most back
    assert before - after > 20_000, (before, after)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trimmer_trims_at_most_once_per_interval() -> None:
    clock = Clock()
    trimmer = Trimmer(30.0, clock)
    trimmer()
    assert trimmer.trims == 0  # not before the first interval
    clock.now += 30.0
    trimmer()
    trimmer()
    assert trimmer.trims == 1
    clock.now += 29.0
    trimmer()
    assert trimmer.trims == 1
    clock.now += 1.0
    trimmer()
    assert trimmer.trims == 2


def test_without_malloc_trim_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    assert memory.malloc_trim() is False
    clock = Clock()
    trimmer = Trimmer(1.0, clock)
    clock.now += 5.0
    trimmer()
    assert trimmer.trims == 0


def test_a_trim_empties_the_parse_caches() -> None:
    """Nothing a parse cache holds outlives one trim interval, so entries stored among
    a burst's objects do not keep that burst's arenas alive (memory's docstring)."""
    from kcc_runtime.engine import _ip_literal_cached
    from kcc_runtime.sip.headers import _parse_cseq_cached, parse_cseq
    from kcc_runtime.sip.uri import _parse_uri_cached, parse_uri

    caches = [_parse_uri_cached, _parse_cseq_cached, _ip_literal_cached]
    parse_uri(b"sip:alice@example.com")
    parse_cseq(b"1 INVITE")
    _ip_literal_cached("127.0.0.1")
    assert all(cache.cache_info().currsize > 0 for cache in caches)
    clock = Clock()
    trimmer = Trimmer(30.0, clock)
    trimmer()
    assert all(cache.cache_info().currsize > 0 for cache in caches)  # not yet due
    clock.now += 30.0
    trimmer()
    assert [cache.cache_info().currsize for cache in caches] == [0, 0, 0]
    assert parse_uri(b"sip:alice@example.com").host == "example.com"  # parsed again
