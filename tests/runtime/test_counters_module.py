"""counters' script functions over the shared statistics table
(:mod:`kcc_runtime.modules.counters`).

Measured on Kamailio 5.6.3 (``script_counter`` ``"foo Foo counter"`` and ``"bar"``,
a request running ``cnt_inc("foo"); cnt_add("foo", 5); cnt_add("bar", 2)`` twice,
then once more followed by ``cnt_reset("foo")``; ``kamcmd stats.get_statistics
script:``): ``script:bar = 4``, ``script:foo = 12``, then ``script:bar = 6``,
``script:foo = 0``. ``cnt_inc("nope")`` of an undeclared counter: Kamailio refuses
to start with ``counter script.nope does not exist (forgot to define it?)``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from kcc_runtime.context import Context
from kcc_runtime.modules import counters
from kcc_runtime.router import Config
from kcc_runtime.rpc.stats import statistic_names
from kcc_runtime.shm import SharedCounters

from tests.runtime.fake_engine import make_ctx

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKc1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)

CONFIG = Config(
    modules=("sl", "counters"),
    modparams=(
        ("counters", "script_counter", "foo Foo counter"),
        ("counters", "script_counter", "bar"),
        ("counters", "script_counter", "test.x:another example"),
    ),
)


def ctx_with(config: Config, table: SharedCounters, row: int = 0) -> Context:
    ctx = make_ctx(OPTIONS)
    ctx.proc.config = config
    ctx.proc.modparams = {(m, n): v for m, n, v in config.modparams}
    table.use_row(row)
    ctx.proc.shared.counters = table
    return ctx


def table_for(config: Config, rows: int = 2) -> SharedCounters:
    names = statistic_names(config.modules, counters.script_counter_names(config))
    return SharedCounters(names, rows)


def test_declarations_become_statistics_after_the_modules_ones() -> None:
    assert counters.script_counter_names(CONFIG) == ("script:foo", "script:bar", "test:x")
    names = statistic_names(CONFIG.modules, counters.script_counter_names(CONFIG))
    assert names[-3:] == ["script:foo", "script:bar", "test:x"]
    assert "sl:200_replies" in names


def test_group_parameter_and_no_counters_module() -> None:
    cfg = replace(
        CONFIG,
        modparams=(
            ("counters", "script_cnt_grp_name", "mine"),
            ("counters", "script_counter", "reqs"),
            ("counters", "script_counter", "out.reqs  forwarded requests"),
        ),
    )
    assert counters.script_counter_names(cfg) == ("mine:reqs", "out:reqs")
    assert counters.script_counter_names(replace(CONFIG, modules=("sl",))) == ()


def test_inc_add_reset_as_measured() -> None:
    table = table_for(CONFIG)
    ctx = ctx_with(CONFIG, table)
    for _ in range(2):
        assert counters.cnt_inc(ctx, "foo") == 1
        assert counters.cnt_add(ctx, "foo", 5) == 1
        assert counters.cnt_add(ctx, "bar", 2) == 1
    assert (table.get("script:foo"), table.get("script:bar")) == (12, 4)
    counters.cnt_inc(ctx, "foo")
    counters.cnt_add(ctx, "foo", 5)
    counters.cnt_add(ctx, "bar", 2)
    assert counters.cnt_reset(ctx, "foo") == 1
    assert (table.get("script:foo"), table.get("script:bar")) == (0, 6)
    table.close()


def test_reset_writes_only_its_own_row() -> None:
    table = table_for(CONFIG)
    first = ctx_with(CONFIG, table, row=0)
    counters.cnt_add(first, "test.x", 7)
    table.use_row(1)
    counters.cnt_reset(first, "test.x")  # the same process object, now writing row 1
    assert table.get("test:x") == 0
    table.use_row(0)
    counters.cnt_add(first, "test.x", 3)
    assert table.get("test:x") == 3
    table.close()


def test_undeclared_counter_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    table = table_for(CONFIG)
    ctx = ctx_with(CONFIG, table)
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.counters"):
        assert counters.cnt_inc(ctx, "nope") == -1
        assert counters.cnt_reset(ctx, "other.foo") == -1
    assert "counter script.nope does not exist (forgot to define it?)" in caplog.text
    assert "counter other.foo does not exist" in caplog.text
    assert "script:nope" not in table.names
    table.close()
