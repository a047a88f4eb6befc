"""The shared statistics: one row per process, summed on read; the catalog's names
as Kamailio 5.6.3 lists them (``kamcmd stats.get_statistics all``)."""

from __future__ import annotations

import os

import pytest
from kcc_runtime.rpc.stats import sl_reply_counter, statistic_names
from kcc_runtime.shared import Counters
from kcc_runtime.shm import SharedCounters


def test_rows_are_summed_across_forked_processes() -> None:
    counters = SharedCounters(["core:rcv_requests", "sl:200_replies"], rows=3)
    try:
        pids = []
        for row in (1, 2):
            pid = os.fork()
            if pid == 0:
                counters.use_row(row)
                counters.add("core:rcv_requests", 10 * row)
                counters.add("no:such")  # no cell: ignored
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            assert os.waitpid(pid, 0)[1] == 0
        counters.add("core:rcv_requests")
        assert counters.get("core:rcv_requests") == 31
        assert counters.get("no:such") == 0
        assert counters.snapshot() == {"core:rcv_requests": 31, "sl:200_replies": 0}
        with pytest.raises(ValueError):
            counters.use_row(3)
    finally:
        counters.close()


def test_int64_wraps() -> None:
    counters = SharedCounters(["x:y"], rows=1)
    try:
        counters.add("x:y", 2**63 - 1)
        counters.add("x:y")
        assert counters.get("x:y") == -(2**63)
    finally:
        counters.close()


def test_local_counters() -> None:
    counters = Counters()
    counters.add("a:b", 2)
    assert counters.get("a:b") == 2 and counters.snapshot() == {"a:b": 2}


def test_catalog_names() -> None:
    names = statistic_names(["sl", "tmx", "registrar"])
    assert len([n for n in names if n.startswith("core:")]) == 85
    assert "core:rcv_replies_6xx_update" in names
    assert "sl:received_ACKs" in names and "tmx:UAS_transactions" in names
    assert len([n for n in names if n.startswith("sl:")]) == 24
    assert statistic_names([]) == [n for n in names if n.startswith("core:")]
    assert sl_reply_counter(404) == "sl:404_replies"
    assert sl_reply_counter(486) == "sl:4xx_replies"
    assert sl_reply_counter(180) == "sl:1xx_replies"
