"""htable/pike/permissions RPC commands, ``stats.reset_statistics`` and
``jsonrpc_dispatch`` (shapes measured on Kamailio 5.6.3: ``kcc_runtime.rpc.modules``)."""

from __future__ import annotations

import time

import pytest
from kcc_runtime.context import EventContext, Process, Received
from kcc_runtime.htable import HashTables
from kcc_runtime.http import parse_request
from kcc_runtime.modules.jsonrpcs import jsonrpc_dispatch
from kcc_runtime.pike import PikeTree
from kcc_runtime.router import Config
from kcc_runtime.rpc.commands import REGISTRY, RpcEnv
from kcc_runtime.rpc.registry import Array, Fault, Params, Struct
from kcc_runtime.shared import SharedStore
from kcc_runtime.shm import SharedCounters

from tests.runtime.fake_engine import FakeEngine

NOW = 1_795_698_100


def _env(**kw: object) -> RpcEnv:
    tables = HashTables.from_modparams(["ipban=>size=8;autoexpire=300;"], lambda: NOW)
    return RpcEnv(config=None, shared=SharedStore(), htables=tables, now=lambda: NOW, **kw)  # type: ignore[arg-type]


def call(env: RpcEnv, method: str, *params: int | str) -> list[object]:
    return list(REGISTRY.call(env, method, Params(list(params))))


def test_htable_commands() -> None:
    env = _env()
    assert call(env, "htable.seti", "ipban", "127.0.0.9", 1) == ["Ok. Key set to new value."]
    assert call(env, "htable.sets", "ipban", "1.2.3.4", "x") == ["Ok. Key set to new value."]
    assert call(env, "htable.dump", "ipban") == [
        Array(
            [
                Struct([("entry", 30), ("size", 1), ("slot", Array([Struct(
                    [("name", "127.0.0.9"), ("value", 1), ("type", "int")])]))]),
                Struct([("entry", 253), ("size", 1), ("slot", Array([Struct(
                    [("name", "1.2.3.4"), ("value", "x"), ("type", "str")])]))]),
            ]
        )
    ]  # fmt: skip
    expire = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW + 300))
    assert call(env, "htable.get", "ipban", "127.0.0.9") == [
        Struct(
            [
                ("item", Struct(
                    [("name", "127.0.0.9"), ("value", 1), ("flags", 0), ("expire", expire)])),
            ]
        )
    ]  # fmt: skip
    assert call(env, "htable.delete", "ipban", "1.2.3.4") == ["Ok. Key deleted."]
    for method, params, code, text in (
        ("htable.delete", ("ipban", "1.2.3.4"), 404, "Key not found in htable."),
        ("htable.get", ("ipban", "nokey"), 500, "Key name doesn't exist in htable."),
        ("htable.dump", ("nope",), 500, "No such htable"),
        ("htable.reload", ("ipban",), 500, "No htable db_url"),
    ):
        with pytest.raises(Fault) as info:
            call(env, method, *params)
        assert (info.value.code, info.value.message) == (code, text)
    call(env, "htable.delete", "ipban", "127.0.0.9")
    assert call(env, "htable.dump", "ipban") == [Array([])]


def test_pike_top() -> None:
    clock = [float(NOW)]
    tree = PikeTree(max_hits=16, clock=lambda: clock[0])
    env = _env(pike=tree)
    empty = call(env, "pike.top")
    assert empty == [Struct([("max_hits", 16), ("list", Array([])), ("number_of_rows", 0)])]
    for _ in range(40):
        tree.check("127.0.0.2")
    (top,) = call(env, "pike.top", "all")
    assert isinstance(top, Struct)
    rows = dict(top.items)["list"]
    assert isinstance(rows, Array) and len(rows.items) == 1
    row = rows.items[0]
    assert isinstance(row, Struct)
    assert [name for name, _ in row.items] == [
        "ip_addr", "leaf_hits_prev", "leaf_hits_curr", "expires", "status",
    ]  # fmt: skip
    assert dict(row.items)["ip_addr"] == "127.0.0.2"
    assert dict(row.items)["status"] == "HOT"
    with pytest.raises(Fault) as info:
        call(env, "pike.top", "COLD")
    assert info.value.message == "Bad argument. Select: ALL, HOT or WARM"


def test_address_reload_calls_the_hook() -> None:
    calls: list[int] = []
    env = _env(reload_addresses=lambda: calls.append(1))
    assert call(env, "permissions.addressReload") == ["Reload OK"]
    assert calls == [1]
    with pytest.raises(Fault):
        call(_env(), "permissions.addressReload")


def test_reset_statistics_on_add_only_shared_counters() -> None:
    counters = SharedCounters(["sl:200_replies", "sl:404_replies", "tmx:active_transactions"], 3)
    store = SharedStore()
    store.counters = counters
    env = RpcEnv(config=None, shared=store, modules=("sl", "tmx"), now=lambda: NOW)
    counters.use_row(1)
    counters.add("sl:200_replies", 5)
    counters.add("tmx:active_transactions", 2)
    counters.use_row(2)
    counters.add("sl:404_replies", 3)
    assert call(env, "stats.reset_statistics", "sl:", "active_transactions") == []
    assert counters.get("sl:200_replies") == 0
    assert counters.get("sl:404_replies") == 0
    assert counters.get("tmx:active_transactions") == 2  # STAT_NO_RESET
    counters.use_row(1)
    counters.add("sl:200_replies")  # a later increment still counts
    assert counters.get("sl:200_replies") == 1
    with pytest.raises(Fault) as info:
        call(env, "stats.reset_statistics")
    assert (info.value.code, info.value.message) == (400, "Please provide stats name")


def _http_ctx(body: bytes, engine: FakeEngine) -> EventContext:
    data = b"POST /RPC HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    req = parse_request(data, ("127.0.0.1", 4000))
    assert req is not None
    proc = Process(engine=engine, config=Config(modules=("jsonrpcs", "xhttp")))
    return EventContext(proc, req, Received("127.0.0.1", 4000, "127.0.0.1", 5060, "tcp"))


def test_jsonrpc_dispatch_replies_over_http() -> None:
    engine = FakeEngine()
    ctx = _http_ctx(b'{"jsonrpc":"2.0","method":"core.echo","params":["a",1],"id":1}', engine)
    assert jsonrpc_dispatch(ctx) == 1
    assert engine.calls == [
        (
            "xhttp_reply",
            200,
            "OK",
            "application/json",
            '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t["a", "1"],\n\t"id":\t1\n}',
        )
    ]
    engine = FakeEngine()
    ctx = _http_ctx(b'{"jsonrpc":"2.0","method":"nope","id":7}', engine)
    assert jsonrpc_dispatch(ctx) == 1
    assert engine.calls[0][1:3] == (500, "Method Not Found")
    engine = FakeEngine()
    assert jsonrpc_dispatch(_http_ctx(b"notjson", engine)) == -1
    assert engine.calls == []  # measured: no reply at all
