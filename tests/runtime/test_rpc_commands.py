"""The RPC commands and the JSON-RPC layer: replies compared with what Kamailio
5.6.3 answered (over jsonrpcs' FIFO and datagram socket and kamcmd) for the same
requests on a cfg with ctl, jsonrpcs, cfg_rpc, tm, tmx, sl, usrloc and registrar."""

from __future__ import annotations

from pathlib import Path

import pytest
from kcc_runtime import location as loc
from kcc_runtime.router import Config
from kcc_runtime.rpc import jsonrpc
from kcc_runtime.rpc.commands import REGISTRY, RpcEnv, version_text
from kcc_runtime.rpc.registry import Array, Fault, Named, Params, Struct
from kcc_runtime.rpc.server import Endpoint, endpoints
from kcc_runtime.shared import SharedStore

NOW = 1795698100.0

CONFIG = Config(
    modules=("sl", "tm", "tmx", "usrloc", "registrar", "ctl", "jsonrpcs"),
    globals=(("debug", 2),),
    cfg_vars=(("pstn", "gw_ip", "1.2.3.4"), ("pstn", "gw_port", 5061)),
)


@pytest.fixture
def env(tmp_path: Path) -> RpcEnv:
    store = loc.LocationStore(str(tmp_path / "usrloc.db"), now=lambda: NOW)
    store.insert(
        "location",
        loc.Contact(
            ruid="uloc-6b082d54-4166-2",
            username="bob",
            domain=None,
            contact="sip:bob@127.0.0.1:41268",
            expires=NOW + 575,
            callid="reg-call-1@127.0.0.1",
            cseq=7,
            last_modified=1795698038,
            user_agent="regtest/1.0",
            socket="udp:127.0.0.1:5090",
            connection_id=-1,
        ),
    )
    return RpcEnv(
        config=CONFIG,
        shared=SharedStore(),
        started=NOW - 59,
        location=store,
        modules=CONFIG.modules,
        now=lambda: NOW,
        processes=lambda: [(16740, "main process - attendant"), (16742, "ctl handler")],
    )


def call(env: RpcEnv, method: str, *params: int | str) -> list[object]:
    return list(REGISTRY.call(env, method, Params(list(params))))


def fifo(env: RpcEnv, doc: str) -> str | None:
    return jsonrpc.handle(doc, lambda m, p: REGISTRY.call(env, m, p))[1]


# measured: jsonrpcs' reply to ul.dump (FIFO, pretty_format 1), with bob registered
UL_DUMP_JSON = (
    '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t{\n\t\t"Domains":\t[{\n\t\t\t\t"Domain":\t{\n'
    '\t\t\t\t\t"Domain":\t"location",\n\t\t\t\t\t"Size":\t1024,\n\t\t\t\t\t"AoRs":\t[{\n'
    '\t\t\t\t\t\t\t"Info":\t{\n\t\t\t\t\t\t\t\t"AoR":\t"bob",\n\t\t\t\t\t\t\t\t"HashID":\t7222211,\n'
    '\t\t\t\t\t\t\t\t"Contacts":\t[{\n\t\t\t\t\t\t\t\t\t\t"Contact":\t{\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Address":\t"sip:bob@127.0.0.1:41268",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Expires":\t575,\n\t\t\t\t\t\t\t\t\t\t\t"Q":\t-1,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Call-ID":\t"reg-call-1@127.0.0.1",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"CSeq":\t7,\n\t\t\t\t\t\t\t\t\t\t\t"User-Agent":\t"regtest/1.0",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Received":\t"[not set]",\n\t\t\t\t\t\t\t\t\t\t\t"Path":\t"[not set]",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"State":\t"CS_NEW",\n\t\t\t\t\t\t\t\t\t\t\t"Flags":\t0,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"CFlags":\t0,\n\t\t\t\t\t\t\t\t\t\t\t"Socket":\t"udp:127.0.0.1:5090",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Methods":\t4294967295,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Ruid":\t"uloc-6b082d54-4166-2",\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Instance":\t"[not set]",\n\t\t\t\t\t\t\t\t\t\t\t"Reg-Id":\t0,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Server-Id":\t0,\n\t\t\t\t\t\t\t\t\t\t\t"Tcpconn-Id":\t-1,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"Keepalive":\t0,\n\t\t\t\t\t\t\t\t\t\t\t"Last-Keepalive":\t1795698038,\n'
    '\t\t\t\t\t\t\t\t\t\t\t"KA-Roundtrip":\t0,\n\t\t\t\t\t\t\t\t\t\t\t"Last-Modified":\t1795698038\n'
    "\t\t\t\t\t\t\t\t\t\t}\n\t\t\t\t\t\t\t\t\t}]\n\t\t\t\t\t\t\t}\n\t\t\t\t\t\t}],\n"
    '\t\t\t\t\t"Stats":\t{\n\t\t\t\t\t\t"Records":\t1,\n\t\t\t\t\t\t"Max-Slots":\t1\n\t\t\t\t\t}\n'
    '\t\t\t\t}\n\t\t\t}]\n\t},\n\t"id":\t1\n}'
)


def test_ul_dump_json_as_kamailio(env: RpcEnv) -> None:
    assert fifo(env, '{"jsonrpc": "2.0", "method": "ul.dump", "id": 1}') == UL_DUMP_JSON


def test_ul_lookup_and_rm(env: RpcEnv) -> None:
    (reply,) = call(env, "ul.lookup", "location", "bob@127.0.0.1")
    assert isinstance(reply, Struct)
    assert reply.items[0] == ("AoR", "bob")
    with pytest.raises(Fault) as info:
        call(env, "ul.lookup", "location", "alice@127.0.0.1")
    assert (info.value.code, info.value.message) == (500, "AOR not found in location table")
    with pytest.raises(Fault, match="Not enough parameters"):
        call(env, "ul.lookup", "location")
    with pytest.raises(Fault, match="Domain table not found"):
        call(env, "ul.lookup", "nosuch", "bob@127.0.0.1")
    assert call(env, "ul.rm", "location", "nobody@127.0.0.1") == []
    assert call(env, "ul.rm", "location", "bob@127.0.0.1") == []
    with pytest.raises(Fault):
        call(env, "ul.lookup", "location", "bob@127.0.0.1")
    (dump,) = call(env, "ul.dump", "brief")
    assert jsonrpc.dumps(dump, pretty=False) == (  # type: ignore[arg-type]
        '{"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[],'
        '"Stats":{"Records":0,"Max-Slots":0}}}]}'
    )


def test_core_commands(env: RpcEnv) -> None:
    assert call(env, "core.version") == [version_text()]
    assert version_text().startswith("kcc ") and version_text().endswith("/linux) ")
    (uptime,) = call(env, "core.uptime")
    assert isinstance(uptime, Struct)
    assert [n for n, _ in uptime.items] == ["now", "up_since", "uptime"]
    assert uptime.items[2] == ("uptime", 59)
    psx = call(env, "core.psx")
    assert psx == [
        Struct([("IDX", 0), ("PID", 16740), ("DSC", "main process - attendant")]),
        Struct([("IDX", 1), ("PID", 16742), ("DSC", "ctl handler")]),
    ]
    assert call(env, "core.echo", "a", 1) == ["a", "1"]
    assert fifo(env, '{"jsonrpc":"2.0","method":"core.echo","params":["a",1],"id":1}') == (
        '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t["a", "1"],\n\t"id":\t1\n}'
    )


def test_system_commands(env: RpcEnv) -> None:
    (methods,) = call(env, "system.listMethods")
    assert isinstance(methods, Array)
    assert methods.items == sorted(methods.items)
    assert {"core.version", "ul.dump", "cfg.seti", "stats.get_statistics"} <= set(methods.items)  # type: ignore[arg-type]
    assert call(env, "system.methodHelp", "core.echo") == ["Returns back its parameters."]
    with pytest.raises(Fault, match="command not found"):
        call(env, "system.methodHelp", "nosuch")
    with pytest.raises(Fault, match="Method Name Expected"):
        call(env, "system.methodHelp")


def test_cfg_get_set(env: RpcEnv) -> None:
    assert call(env, "cfg.get", "pstn", "gw_ip") == ["1.2.3.4"]
    assert call(env, "cfg.get", "core", "debug") == [2]
    assert call(env, "cfg.seti", "pstn", "gw_port", 7000) == []
    assert call(env, "cfg.get", "pstn", "gw_port") == [7000]
    assert env.shared.cfg_override("pstn", "gw_port") == 7000
    # measured: an int into a string variable is its text; 99999999999 is truncated
    call(env, "cfg.seti", "pstn", "gw_ip", 3)
    call(env, "cfg.seti", "pstn", "gw_port", 99999999999)
    assert call(env, "cfg.get", "pstn") == [Struct([("gw_ip", "3"), ("gw_port", 1215752191)])]
    with pytest.raises(Fault, match="Failed to set the variable"):
        call(env, "cfg.sets", "pstn", "gw_port", "abc")
    with pytest.raises(Fault, match="Failed to get the variable"):
        call(env, "cfg.get", "nosuch", "x")
    with pytest.raises(Fault, match="error at parameter 2"):
        call(env, "cfg.seti", "pstn", "gw_port")


def test_statistics(env: RpcEnv) -> None:
    env.counters.add("core:rcv_requests", 3)
    env.counters.add("sl:200_replies", 3)
    (lines,) = call(env, "stats.get_statistics", "rcv_requests", "fwd_requests")
    assert lines == Array(["core:rcv_requests = 3", "core:fwd_requests = 0"])
    (everything,) = call(env, "stats.get_statistics", "all")
    assert isinstance(everything, Array)
    assert "usrloc:location_contacts = 1" in everything.items
    assert "usrloc:registered_users = 1" in everything.items
    assert "tmx:UAS_transactions = 0" in everything.items
    (sl_group,) = call(env, "stats.get_statistics", "sl:")
    assert isinstance(sl_group, Array) and len(sl_group.items) == 24
    assert call(env, "stats.get_statistics", "core:rcv_requests") == [Array()]  # measured: none
    with pytest.raises(Fault, match="Please provide"):
        call(env, "stats.get_statistics")
    (sl,) = call(env, "sl.stats")
    assert isinstance(sl, Struct) and sl.items[0] == ("200", 3) and len(sl.items) == 19
    (tm,) = call(env, "tm.stats")
    assert isinstance(tm, Struct)
    assert [n for n, _ in tm.items][:3] == ["current", "waiting", "total"]


def test_json_faults_and_edge_documents(env: RpcEnv) -> None:
    assert fifo(env, '{"jsonrpc": "2.0", "method": "no.such", "id": 1}') == (
        '{\n\t"jsonrpc":\t"2.0",\n\t"error":\t{\n\t\t"code":\t500,\n'
        '\t\t"message":\t"Method Not Found"\n\t},\n\t"id":\t1\n}'
    )
    # measured: no id -> no id; no method -> an empty result; not JSON -> no reply
    assert fifo(env, '{"jsonrpc":"2.0","method":"core.echo"}') == (
        '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t{\n\t}\n}'
    )
    assert fifo(env, '{"jsonrpc":"2.0","id":"x"}') == (
        '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t{\n\t},\n\t"id":\t"x"\n}'
    )
    assert fifo(env, "garbage") is None
    assert fifo(env, "[1, 2]") is None


def test_json_printer() -> None:
    value = Struct([("s", 'a"b\n\x01'), ("f", 0.1), ("n", Array([Named("x", 1), 2]))])
    assert jsonrpc.dumps(value, pretty=False) == '{"s":"a\\"b\\n\\u0001","f":0.1,"n":[{"x":1},2]}'
    assert jsonrpc.dumps(Array([]), pretty=True) == "[]"


def test_endpoints() -> None:
    values = {
        ("ctl", "binrpc"): ["unix:kamailio_ctl", "tcp:127.0.0.1:2046", "unixd:/tmp/x.sock"],
        ("jsonrpcs", "transport"): [6],
    }
    points = endpoints(lambda m, n: list(values.get((m, n), [])), ("ctl", "jsonrpcs"), "/run/k")
    assert points == [
        Endpoint("binrpc", "unix", "/run/k/kamailio_ctl", 0o600),
        Endpoint("binrpc", "tcp", ("127.0.0.1", 2046)),
        Endpoint("binrpc", "unixd", "/tmp/x.sock", 0o600),
        Endpoint("jsonrpc", "fifo", "/run/k/kamailio_rpc.fifo", 0o660),
        Endpoint("jsonrpc", "unixd", "/run/k/kamailio_rpc.sock", 0o660),
    ]
    assert endpoints(lambda m, n: [], ("ctl",), "/run/k") == [
        Endpoint("binrpc", "unix", "/run/k/kamailio_ctl", 0o600)
    ]
    assert endpoints(lambda m, n: [], ("sl",), "/run/k") == []
