"""htable: ``$sht`` and its friends, the table definitions, expiry, and the ``sht_*``
functions with their return codes.

Expected values were measured on Kamailio 5.6.3 on loopback (``xlog`` from
``event_route[htable:mod-init]`` and ``request_route``, tables ``a=>size=4;
autoexpire=300;``, ``b=>size=4;initval=5;``, ``c=>size=4;``); the cases below repeat
those probes. Time comes from a fake clock.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from kcc_runtime import pv
from kcc_runtime.context import Context, RequestContext, ScriptExit
from kcc_runtime.htable import (
    ExpiredRecord,
    HashTables,
    HtableDefinitionError,
    TableSpec,
    parse_definition,
)
from kcc_runtime.modules import htable as ht
from kcc_runtime.router import Config, OutcomeKind, Router

from tests.runtime.fake_engine import FakeEngine, make_ctx

REPO = Path(__file__).resolve().parent.parent.parent

OPTIONS = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n"
    b"From: <sip:a@b>;tag=1\r\n"
    b"To: <sip:b@c>\r\n"
    b"Call-ID: 1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)

DEFS = ("a=>size=4;autoexpire=300;", "b=>size=4;initval=5;", "c=>size=4;")


class FakeClock:
    """A settable clock: ``clock.t`` seconds since the epoch."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(clock: FakeClock) -> Context:
    context = make_ctx(OPTIONS)
    context.proc.htables = HashTables.from_modparams(DEFS, clock=clock)
    return context


def get(ctx: Context, name: str, inner: str) -> object:
    return pv.accessor(name, inner).get(ctx)


def put(ctx: Context, name: str, inner: str, value: int | str | None) -> None:
    pv.accessor(name, inner).set(ctx, value)


# -- definitions -------------------------------------------------------------------------


def test_parse_full_definition() -> None:
    spec = parse_definition(
        "t=>size=10;autoexpire=7200;initval=-1;updateexpire=0;dbtable=htable_a;"
        "dbmode=1;dmqreplicate=1;cols='k,v;w'"
    )
    assert spec == TableSpec(
        name="t",
        size=10,
        autoexpire=7200,
        initval=-1,
        updateexpire=False,
        dbtable="htable_a",
        dbmode=1,
        dmqreplicate=1,
        cols="k,v;w",
    )
    assert spec.slots == 1024


def test_parse_defaults_and_spaces() -> None:
    assert parse_definition("a=>") == TableSpec(name="a")
    assert parse_definition("a=>").slots == 8
    assert parse_definition("a=>size=4 ; autoexpire = 10") == TableSpec("a", 4, 10)
    assert parse_definition("a=>size=40;").slots == 16384


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=>size=4;foo=1;", "unknown attribute 'foo'"),
        ("a", "no '=>' after the name"),
        ("a=>size=x;", "size='x' is not a non-negative integer"),
        ("a=>autoexpire=-5;", "autoexpire='-5' is not a non-negative integer"),
        ("a=>initval=abc;", "initval='abc' is not an integer"),
        ("a=>size;", "'size' has no value"),
    ],
)
def test_bad_definitions(text: str, message: str) -> None:
    with pytest.raises(HtableDefinitionError) as failure:
        parse_definition(text)
    assert str(failure.value) == f"invalid htable parameter [{text}]: {message}"


def test_table_declared_twice() -> None:
    with pytest.raises(HtableDefinitionError, match=r"htable already configured \[a\]"):
        HashTables.from_modparams(["a=>size=4;", "a=>size=5;"])


def test_database_and_dmq_attributes_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="kcc_runtime.htable"):
        tables = HashTables.from_modparams(["a=>dbtable=t;dmqreplicate=1;", "b=>size=3;"])
    assert sorted(tables.tables) == ["a", "b"]
    assert [r.getMessage() for r in caplog.records] == [
        "htable [a]: dbtable, dmqreplicate ignored: kcc has no database or DMQ replication"
    ]


# -- $sht --------------------------------------------------------------------------------------


def test_sht_read_write_delete(ctx: Context) -> None:
    assert get(ctx, "sht", "a=>nope") is None  # P1: <null>
    assert get(ctx, "sht", "b=>nope") == 5  # P1: the initval
    put(ctx, "sht", "a=>k1", 10)
    put(ctx, "sht", "a=>k2", "abc")
    put(ctx, "sht", "a=>k3", "12")
    assert get(ctx, "sht", "a=>k1") == 10
    assert get(ctx, "sht", "a=>k2") == "abc"
    assert get(ctx, "sht", "a=>k3") == "12"  # a string stays a string
    put(ctx, "sht", "a=>k1", None)
    assert get(ctx, "sht", "a=>k1") is None  # P6
    put(ctx, "sht", "b=>q", 3)
    put(ctx, "sht", "b=>q", None)
    assert get(ctx, "sht", "b=>q") == 5  # deleted: the initval again


def test_sht_inner_name_with_pv(ctx: Context) -> None:
    acc = pv.accessor("sht", pv.Fmt("a=>", pv.accessor("si")))
    assert acc.set(ctx, 1) == 1
    assert ctx.proc.htables.tables["a"].items.keys() == {"192.0.2.1"}
    assert acc.get(ctx) == 1


def test_sht_unknown_table(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    assert get(ctx, "sht", "nosuch=>x") is None
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.pv"):
        put(ctx, "sht", "nosuch=>x", 1)  # R31: logged, the script goes on
    assert "setting pvar failed" in caplog.text
    assert get(ctx, "sht", "nosuch=>x") is None
    assert get(ctx, "shtex", "nosuch=>x") == 0
    assert get(ctx, "shtinc", "nosuch=>x") is None


def test_sht_is_writable_and_listed() -> None:
    assert {"sht", "shtex", "shtcn", "shtcv", "shtinc", "shtdec"} <= pv.PVS
    assert {"sht", "shtex"} <= pv.WRITABLE
    assert "shtcn" not in pv.WRITABLE


# -- expiry --------------------------------------------------------------------------------------


def test_autoexpire(ctx: Context, clock: FakeClock) -> None:
    put(ctx, "sht", "a=>k", 1)
    assert get(ctx, "shtex", "a=>k") == 300  # P2
    clock.t += 300
    assert get(ctx, "sht", "a=>k") == 1  # expire == now: still there
    assert get(ctx, "shtex", "a=>k") == 0
    clock.t += 1
    assert get(ctx, "sht", "a=>k") is None
    assert ctx.proc.htables.tables["a"].items == {}  # removed lazily by the read
    assert ctx.proc.htables.purge() == [ExpiredRecord("a", "k", 1)]
    assert ctx.proc.htables.purge() == []


def test_write_refreshes_expiry_unless_updateexpire_0(clock: FakeClock) -> None:
    tables = HashTables.from_modparams(
        ["u=>autoexpire=2;", "n=>autoexpire=2;updateexpire=0;"], clock=clock
    )
    u, n = tables.tables["u"], tables.tables["n"]
    u.set("k", 1)
    n.set("k", 1)
    clock.t += 1
    u.set("k", 2)
    n.set("k", 2)
    assert (u.expires_in("k"), n.expires_in("k")) == (2, 1)  # S8
    clock.t += 2
    assert (u.get("k"), n.get("k")) == (2, None)  # S9


def test_table_without_autoexpire_never_expires(ctx: Context, clock: FakeClock) -> None:
    put(ctx, "sht", "c=>x", 1)
    assert get(ctx, "shtex", "c=>x") == 0  # P3
    put(ctx, "shtex", "c=>x", 50)
    assert get(ctx, "shtex", "c=>x") == 0  # P4: ignored
    assert ht.sht_setxs(ctx, "c", "sx", "val", 1) == 1
    assert get(ctx, "shtex", "c=>sx") == 0  # R10
    clock.t += 10**6
    assert ctx.proc.htables.purge() == []
    assert (get(ctx, "sht", "c=>x"), get(ctx, "sht", "c=>sx")) == (1, "val")  # T3


def test_shtex_write(ctx: Context, clock: FakeClock) -> None:
    put(ctx, "sht", "a=>k", 10)
    put(ctx, "shtex", "a=>k", 50)
    assert get(ctx, "shtex", "a=>k") == 50  # P5
    put(ctx, "shtex", "a=>k", 0)  # never expires (Kamailio reads garbage then)
    clock.t += 10_000
    assert get(ctx, "sht", "a=>k") == 10  # T5
    put(ctx, "sht", "a=>k", 2)
    assert get(ctx, "shtex", "a=>k") == 300  # T6: a write sets autoexpire again
    put(ctx, "shtex", "a=>missing", 5)
    assert get(ctx, "sht", "a=>missing") is None
    assert get(ctx, "shtex", "a=>missing") == 0  # P2 exmiss


def test_purge_reports_every_expired_item_once(clock: FakeClock) -> None:
    tables = HashTables.from_modparams(["a=>autoexpire=10;", "b=>autoexpire=20;"], clock=clock)
    tables.tables["a"].set("x", 1)
    tables.tables["a"].set("y", "two")
    tables.tables["b"].set("z", 3)
    clock.t += 11
    assert tables.purge() == [ExpiredRecord("a", "x", 1), ExpiredRecord("a", "y", "two")]
    assert tables.tables["b"].items.keys() == {"z"}
    clock.t += 10
    assert tables.purge() == [ExpiredRecord("b", "z", 3)]


def test_shtrecord(ctx: Context) -> None:
    assert get(ctx, "shtrecord", "key") is None
    ctx.proc.htables.expired_record = ExpiredRecord("a", "k", 7)
    assert (get(ctx, "shtrecord", "key"), get(ctx, "shtrecord", "value")) == ("k", 7)
    assert get(ctx, "shtrecord", "other") is None


# -- $shtinc / $shtdec / $shtcn / $shtcv -----------------------------------------------------


def test_shtinc_shtdec(ctx: Context) -> None:
    put(ctx, "sht", "a=>k1", 10)
    put(ctx, "sht", "a=>k2", "abc")
    put(ctx, "sht", "a=>k3", "12")
    # P9
    assert get(ctx, "shtinc", "a=>n1") is None
    assert get(ctx, "sht", "a=>n1") is None
    assert get(ctx, "shtinc", "b=>n1") == 6
    assert get(ctx, "sht", "b=>n1") == 6
    assert get(ctx, "shtinc", "a=>k2") is None
    assert get(ctx, "shtinc", "a=>k1") == 11
    assert get(ctx, "shtdec", "a=>k1") == 10
    assert get(ctx, "shtinc", "a=>k3") is None
    assert get(ctx, "shtdec", "b=>m") == 4  # S5
    assert get(ctx, "shtex", "c=>n") == 0


def test_shtinc_wraps_at_32_bits(ctx: Context) -> None:
    put(ctx, "sht", "c=>n", 2**31 - 1)
    assert get(ctx, "shtinc", "c=>n") == -(2**31)


@pytest.mark.parametrize(
    ("expr", "count"),
    [
        ("~~^k", 3),  # P7
        ("==k1", 1),
        ("~%k", 0),
        ("%~2", 0),
        ("**", 3),
        ("k.", 3),
        ("%~k", 3),  # Q1
        ("~%1", 1),
        ("%~1", 0),
        ("~%3", 1),
        ("%~3", 0),
        ("k", 3),
        ("==k", 0),
        ("~~[[", 0),  # a bad regex counts nothing
    ],
)
def test_shtcn(ctx: Context, expr: str, count: int) -> None:
    put(ctx, "sht", "a=>k1", 10)
    put(ctx, "sht", "a=>k2", "abc")
    put(ctx, "sht", "a=>k3", "12")
    assert get(ctx, "shtcn", f"a=>{expr}") == count


@pytest.mark.parametrize(
    ("expr", "count"),
    [
        ("~~^a", 1),  # P8
        ("==12", 1),
        ("~%ab", 0),
        ("**", 3),  # ints included
        ("~%a", 0),  # Q2
        ("%~a", 1),
        ("~%c", 1),
        ("%~c", 0),
        ("~%1", 0),
        ("%~1", 1),
        ("1", 1),  # the int 10 is not a string value
        ("~~^ABC", 1),  # regexes ignore case
    ],
)
def test_shtcv(ctx: Context, expr: str, count: int) -> None:
    put(ctx, "sht", "a=>k1", 10)
    put(ctx, "sht", "a=>k2", "abc")
    put(ctx, "sht", "a=>k3", "12")
    assert get(ctx, "shtcv", f"a=>{expr}") == count


def test_shtcn_case(ctx: Context) -> None:
    put(ctx, "sht", "a=>Key1", "Val")
    put(ctx, "sht", "a=>n", 1)
    # S4
    assert get(ctx, "shtcn", "a=>~~^key") == 1
    assert get(ctx, "shtcn", "a=>%~key") == 0
    assert get(ctx, "shtcn", "a=>==key1") == 0
    assert get(ctx, "shtcv", "a=>~~^val") == 1


# -- functions ---------------------------------------------------------------------------------


def fill_a(ctx: Context) -> None:
    put(ctx, "sht", "a=>k1", 10)
    put(ctx, "sht", "a=>k2", "abc")
    put(ctx, "sht", "a=>k3", "12")


def test_sht_rm(ctx: Context) -> None:
    fill_a(ctx)
    assert ht.sht_rm(ctx, "a", "zz") == 1  # R1
    assert ht.sht_rm(ctx, "nosuch", "zz") == -1  # R2
    assert ht.sht_rm(ctx, "a", "k1") == 1
    assert get(ctx, "sht", "a=>k1") is None


def test_sht_rm_name_and_value(ctx: Context) -> None:
    fill_a(ctx)
    assert ht.sht_rm_name(ctx, "a", "xx", "k") == -1  # R3
    assert ht.sht_rm_name(ctx, "nosuch", "re", "k") == -1  # R3b
    assert ht.sht_rm_name(ctx, "a", "eq", "k1") == -1  # only re and sw
    assert ht.sht_rm_name(ctx, "a", "sw", "K") == 1  # starts with: case-sensitive
    assert get(ctx, "shtcn", "a=>**") == 3
    assert ht.sht_rm_value(ctx, "a", "re", "^1") == 1
    assert get(ctx, "sht", "a=>k3") is None
    assert get(ctx, "sht", "a=>k1") == 10  # an int value is never matched
    assert ht.sht_rm_value(ctx, "a", "re", "[[") == -1
    assert ht.sht_rm_name(ctx, "a", "sw", "k") == 1  # R27
    assert get(ctx, "shtcn", "a=>**") == 0


def test_sht_rm_re(ctx: Context) -> None:
    fill_a(ctx)
    assert ht.sht_setxs(ctx, "a", "sx", "val", 20) == 1
    assert ht.sht_rm_value_re(ctx, "a=>^1") == 1  # R25
    assert (get(ctx, "sht", "a=>k3"), get(ctx, "sht", "a=>k1")) == (None, 10)
    assert ht.sht_rm_name_re(ctx, "a=>^S") == 1  # R26, case-insensitive
    assert get(ctx, "sht", "a=>sx") is None
    assert ht.sht_rm_name_re(ctx, "a=>[[") == -1  # R26b
    assert ht.sht_rm_name_re(ctx, "nosuch=>.") == -1
    assert ht.sht_rm_name_re(ctx, "no-arrow") == -1
    assert get(ctx, "shtcn", "a=>**") == 2


def test_sht_match(ctx: Context) -> None:
    fill_a(ctx)
    assert ht.sht_match_name(ctx, "a", "eq", "k1") == 1  # R4
    assert ht.sht_match_name(ctx, "a", "eq", "k9") == -1  # R5
    assert ht.sht_match_name(ctx, "a", "xx", "k9") == -1  # R6
    assert ht.sht_match_name(ctx, "a", "ne", "k1") == 1  # R7
    assert ht.sht_match_name(ctx, "nosuch", "eq", "k1") == -1  # R7b
    assert ht.sht_match_str_value(ctx, "a", "eq", "12") == 1  # R8
    assert ht.sht_match_str_value(ctx, "a", "eq", "10") == -1  # R9
    assert ht.sht_match_str_value(ctx, "a", "re", "^a") == 1  # R9b
    assert ht.sht_match_str_value(ctx, "a", "sw", "ab") == 1  # R9c
    assert ht.sht_match_name(ctx, "a", "re", "[[") == -1  # R9d
    assert ht.sht_has_name(ctx, "a", "sw", "k") == 1
    assert ht.sht_has_str_value(ctx, "a", "ne", "abc") == 1
    assert ht.sht_match_name(ctx, "a", "re", "^K") == 1  # S1
    assert ht.sht_match_name(ctx, "a", "sw", "K") == -1  # S2
    assert ht.sht_match_name(ctx, "a", "eq", "K1") == -1  # S3


def test_sht_setxs_setxi(ctx: Context, clock: FakeClock) -> None:
    assert ht.sht_setxs(ctx, "a", "sx", "val", 20) == 1  # R11
    assert (get(ctx, "sht", "a=>sx"), get(ctx, "shtex", "a=>sx")) == ("val", 20)
    assert ht.sht_setxs(ctx, "a", "z", "v", 0) == 1  # T1: 0 is the table's autoexpire
    assert get(ctx, "shtex", "a=>z") == 300
    assert ht.sht_setxs(ctx, "nosuch", "sx", "val", 20) == -1  # R11b
    # sht_setxi sets the item and returns 0: the script ends (measured)
    assert ht.sht_setxi(ctx, "a", "si", 7, 5) == 0
    assert (get(ctx, "sht", "a=>si"), get(ctx, "shtex", "a=>si")) == (7, 5)
    with pytest.raises(ScriptExit):
        ctx.action(ht.sht_setxi(ctx, "a", "si", 8, 5))
    assert get(ctx, "sht", "a=>si") == 8
    assert ht.sht_setxi(ctx, "nosuch", "si", 7, 5) == -1
    clock.t += 21
    assert get(ctx, "sht", "a=>sx") is None


def test_sht_reset(ctx: Context) -> None:
    put(ctx, "sht", "c=>x", 1)
    assert ht.sht_reset(ctx, "c") == 1  # R28
    assert get(ctx, "shtcn", "c=>**") == 0
    assert ht.sht_reset(ctx, "nosuch") == -1  # R29


def test_sht_lock_unlock(ctx: Context) -> None:
    tables = ctx.proc.htables
    assert ht.sht_lock(ctx, "a=>k1") == 1  # R12
    assert ht.sht_lock(ctx, "a=>k1") == 1  # re-entrant
    assert tables.held == {("a", "k1"): 2}
    assert ht.sht_unlock(ctx, "a=>k1") == 1  # R13
    assert ht.sht_unlock(ctx, "a=>k1") == 1
    assert tables.held == {}
    assert ht.sht_unlock(ctx, "c=>x") == 1  # S7: not held
    assert ht.sht_lock(ctx, "nosuch=>x") == -11  # S6
    assert ht.sht_unlock(ctx, "no-arrow") == -11


def test_sht_print(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    put(ctx, "sht", "a=>k", 10)
    put(ctx, "sht", "c=>s", "v")
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.htable"):
        assert ht.sht_print(ctx) == 1  # R30
    assert [r.getMessage() for r in caplog.records] == [
        "htable[a] slots: 16 items: 1 exp: 300",
        "\tcell: k expire: 1000300 v-i:10",
        "htable[b] slots: 16 items: 0 exp: 0",
        "htable[c] slots: 16 items: 1 exp: 0",
        "\tcell: s expire: 0 v-s:v",
    ]


def test_iterators(ctx: Context) -> None:
    put(ctx, "sht", "c=>x", 1)
    assert ht.sht_setxs(ctx, "c", "sx", "val", 20) == 1
    assert ht.sht_iterator_start(ctx, "i1", "nosuch") == -1  # R14
    assert ht.sht_iterator_next(ctx, "i9") == -1  # R15
    assert ht.sht_iterator_start(ctx, "i1", "c") == 1  # R16
    assert (get(ctx, "shtitkey", "i1"), get(ctx, "shtitval", "i1")) == (None, None)
    seen = []
    while ht.sht_iterator_next(ctx, "i1") == 1:  # R17
        seen.append((get(ctx, "shtitkey", "i1"), get(ctx, "shtitval", "i1")))
    assert seen == [("x", 1), ("sx", "val")]
    assert get(ctx, "shtitkey", "i1") is None  # R18
    assert ht.sht_iterator_sets(ctx, "i1", "zz") == -1  # R18b
    assert ht.sht_iterator_end(ctx, "i1") == 1  # R19
    assert ht.sht_iterator_end(ctx, "i7") == -1  # R19b

    assert ht.sht_iterator_start(ctx, "i2", "c") == 1
    assert ht.sht_iterator_next(ctx, "i2") == 1
    assert ht.sht_iterator_sets(ctx, "i2", "new") == 1  # R20
    assert (get(ctx, "shtitkey", "i2"), get(ctx, "shtitval", "i2")) == ("x", "new")
    assert ht.sht_iterator_seti(ctx, "i2", 42) == 1  # R21
    assert get(ctx, "shtitval", "i2") == 42
    assert ht.sht_iterator_setex(ctx, "i2", 42) == 1  # R21b
    assert ht.sht_iterator_rm(ctx, "i2") == 1  # R22
    assert get(ctx, "shtitkey", "i2") == "sx"
    assert ht.sht_iterator_rm(ctx, "i2") == -2  # R23
    assert get(ctx, "shtitkey", "i2") is None
    assert ht.sht_iterator_rm(ctx, "i2") == -1  # R24
    assert ht.sht_iterator_seti(ctx, "nope", 1) == -1
    assert get(ctx, "shtcn", "c=>**") == 0


def test_iterator_limit_and_restart(ctx: Context) -> None:
    put(ctx, "sht", "c=>x", 1)
    assert ht.sht_iterator_start(ctx, "i1", "c") == 1
    assert ht.sht_iterator_start(ctx, "i1", "c") == 1  # S10: restart
    for name in ("i2", "i3", "i4"):
        assert ht.sht_iterator_start(ctx, name, "c") == 1
    assert ht.sht_iterator_start(ctx, "i5", "c") == -1  # S11: at most 4
    assert ht.sht_iterator_end(ctx, "i4") == 1
    assert ht.sht_iterator_start(ctx, "i5", "c") == 1


def test_iterator_skips_items_removed_meanwhile(ctx: Context) -> None:
    for key in ("p", "q", "r"):
        put(ctx, "sht", f"c=>{key}", key)
    assert ht.sht_iterator_start(ctx, "i", "c") == 1
    put(ctx, "sht", "c=>q", None)
    keys = []
    while ht.sht_iterator_next(ctx, "i") == 1:
        keys.append(get(ctx, "shtitkey", "i"))
    assert keys == ["p", "r"]


def test_setex_through_iterator(ctx: Context) -> None:
    put(ctx, "sht", "a=>k", 1)
    assert ht.sht_iterator_start(ctx, "i", "a") == 1
    assert ht.sht_iterator_next(ctx, "i") == 1
    assert ht.sht_iterator_setex(ctx, "i", 42) == 1
    assert get(ctx, "shtex", "a=>k") == 42


# -- the router and a generated module -------------------------------------------------------


def test_router_builds_the_tables() -> None:
    config = Config(
        modules=("htable",),
        modparams=(
            ("htable", "htable", "a=>size=4;autoexpire=300;"),
            ("htable", "timer_interval", 10),
            ("htable", "htable", "b=>initval=5;"),
        ),
    )
    proc = Router(config=config).process(FakeEngine())
    assert list(proc.htables.tables) == ["a", "b"]
    assert proc.htables.tables["a"].spec.autoexpire == 300
    assert proc.htables.tables["b"].spec.initval == 5


def test_router_refuses_a_bad_definition() -> None:
    config = Config(modparams=(("htable", "htable", "a=>size=x;"),))
    with pytest.raises(HtableDefinitionError, match="size='x'"):
        Router(config=config).process(FakeEngine())


def test_kitchen_sink_golden_runs_its_sht_statements() -> None:
    golden = REPO / "golden" / "kitchen_sink.py"
    namespace: dict[str, object] = {"__name__": "golden_kitchen_sink"}
    exec(compile(golden.read_text(encoding="utf-8"), str(golden), "exec"), namespace)
    router = namespace["ROUTER"]
    assert isinstance(router, Router)
    proc = router.process(FakeEngine())
    init = router.event["htable:mod-init"]
    ctx = RequestContext(proc, make_ctx(OPTIONS).msg, make_ctx(OPTIONS).received)
    assert router.run(init, ctx).kind is OutcomeKind.RETURNED
    assert proc.htables.tables["ipban"].get("127.0.0.3") == 1
    assert proc.htables.tables["ipban"].expires_in("127.0.0.3") == 300
