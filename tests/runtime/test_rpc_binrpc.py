"""binrpc codec: packets captured between kamcmd and Kamailio 5.6.3's ctl socket
(a relay on the unix socket wrote both directions to files) are parsed and
re-encoded byte for byte; bad input gives the measured faults."""

from __future__ import annotations

import pytest
from kcc_runtime.rpc import binrpc
from kcc_runtime.rpc.registry import Array, Named, Struct

# (request, reply) as captured
UL_LOOKUP = (
    "a103297ef1c945910a756c2e6c6f6f6b75700091096c6f636174696f6e0091106361726f6c403132372e302e302e3100",
    "a11701bd7ef1c9450345416f5200616361726f6c009509436f6e746163747300039508436f6e7461637400039508"
    "4164647265737300911a7369703a6361726f6c403132372e302e302e313a33373834350095084578706972657300"
    "2001b62551002201f4950843616c6c2d49440091157265672d63616c6c2d32403132372e302e302e310055435365"
    "71001007950b557365722d4167656e7400910c726567746573742f312e30009509526563656976656400910a5b6e"
    "6f74207365745d00555061746800910a5b6e6f74207365745d00655374617465007143535f4e45570065466c6167"
    "7300007543466c616773000075536f636b65740091137564703a3132372e302e302e313a35303930009508"
    "4d6574686f64730040ffffffff5552756964009115756c6f632d36623038326435342d343136372d3200950949"
    "6e7374616e636500910a5b6e6f74207365745d00755265672d49640000950a5365727665722d49640000950b5463"
    "70636f6e6e2d49640040ffffffff950a4b656570616c6976650000950f4c6173742d4b656570616c6976650040"
    "6b082d9f950d4b412d526f756e64747269700000950e4c6173742d4d6f64696669656400406b082d9f838383",
)
TM_STATS_REPLY = (
    "a1139d5ba6ffe103950863757272656e740000950877616974696e67000065746f74616c0000950c746f74616c5f"
    "6c6f63616c0000950d72706c5f72656365697665640000950e72706c5f67656e6572617465640000950972706c5f"
    "73656e740000453678780000453578780000453478780000453378780000453278780000950863726561746564"
    "00006566726565640000950d64656c617965645f66726565000083"
)
FAULT_NO_SUCH = (
    "a1030a36b8be4191086e6f2e7375636800",
    "a1331f36b8be412001f4911a636f6d6d616e64206e6f2e73756368206e6f7420666f756e6400",
)
STATS = (
    "a10335526ee533911573746174732e6765745f7374617469737469637300910d7263765f726571756573747300"
    "910d6677645f726571756573747300",
    "a11330526ee5339116636f72653a7263765f7265717565737473203d2034009116636f72653a6677645f72657175"
    "65737473203d203000",
)
ECHO = (
    "a103140a5f7ec3910a636f72652e6563686f002161001001216200",
    "a113090a5f7ec3216100213100216200",
)
EMPTY_REPLY = "a11300659bcf7c"


def test_request_parsed() -> None:
    request, used = binrpc.parse_request(bytes.fromhex(UL_LOOKUP[0]))
    assert request == binrpc.Request("ul.lookup", ["location", "carol@127.0.0.1"], 0x7EF1C945)
    assert used == len(bytes.fromhex(UL_LOOKUP[0]))
    echo, _ = binrpc.parse_request(bytes.fromhex(ECHO[0]))
    assert echo == binrpc.Request("core.echo", ["a", 1, "b"], 0x0A5F7EC3)


def test_ul_lookup_reply_roundtrip() -> None:
    data = bytes.fromhex(UL_LOOKUP[1])
    header = binrpc.parse_header(data)
    assert header == binrpc.Header(binrpc.REPL, 0x1BD, 0x7EF1C945, 8)
    values = binrpc.decode_values(data[header.size :])
    top = values[0]
    assert isinstance(top, Struct)
    contacts = top.items[1][1]
    assert isinstance(contacts, Struct)
    contact = dict(contacts.items[0][1].items)  # type: ignore[union-attr]
    assert contact["Q"] == 0.5
    assert contact["Methods"] == -1
    assert contact["Tcpconn-Id"] == -1
    assert contact["Expires"] == 438
    # the same value model, as the commands build it (contacts as an array of named
    # members), encodes to the captured bytes
    rebuilt = Struct(
        [("AoR", "carol"), ("Contacts", Array([Named("Contact", contacts.items[0][1])]))]
    )
    assert binrpc.encode_reply([rebuilt], header.cookie) == data


def test_tm_stats_and_empty_and_strings() -> None:
    data = bytes.fromhex(TM_STATS_REPLY)
    values = binrpc.decode_values(data[7:])
    assert binrpc.encode_reply(values, 0x5BA6FFE1) == data
    assert binrpc.encode_reply([], 0x659BCF7C) == bytes.fromhex(EMPTY_REPLY)
    assert binrpc.encode_reply(["a", "1", "b"], 0x0A5F7EC3) == bytes.fromhex(ECHO[1])
    # a top-level array is its items one after another
    lines = Array(["core:rcv_requests = 4", "core:fwd_requests = 0"])
    assert binrpc.encode_reply([lines], 0x526EE533) == bytes.fromhex(STATS[1])


def test_fault_encoding() -> None:
    assert binrpc.encode_fault(500, "command no.such not found", 0x36B8BE41) == bytes.fromhex(
        FAULT_NO_SUCH[1]
    )


def test_doubles_and_ints() -> None:
    # q -1: 8 bytes, the size spilling into the S bit (0x82), as measured
    assert binrpc.encode_body([-1.0]) == bytes.fromhex("82fffffffffffffc18")
    assert binrpc.encode_body([0.5]) == bytes.fromhex("2201f4")
    assert binrpc.decode_values(bytes.fromhex("82fffffffffffffc18")) == [-1.0]
    assert binrpc.encode_body([0, 7, -1, 99999999999]) == bytes.fromhex(
        "0010074" + "0ffffffff404876e7ff"
    )


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        # measured: garbage -> 400 corrupted packet with cookie 0
        (
            b"garbage\n",
            "a1302300200190911e62616420726571756573743a20636f72727570746564207061636b657400",
        ),
        # measured: an empty body
        (
            bytes.fromhex("a1030000000001"),
            "a130330120019091" + "2e" + b"bad request method: end of packet encountered\0".hex(),
        ),
        # measured: a reply sent as a request
        (
            bytes.fromhex("a1130000000001"),
            "a1302301200190911e62616420726571756573743a20636f72727570746564207061636b657400",
        ),
    ],
)
def test_bad_packets_faults(data: bytes, fault: str) -> None:
    with pytest.raises(binrpc.BinrpcError) as info:
        binrpc.parse_request(data)
    exc = info.value
    assert binrpc.encode_fault(exc.code, exc.message, exc.cookie) == bytes.fromhex(fault)


def test_incomplete_waits() -> None:
    whole = bytes.fromhex(UL_LOOKUP[0])
    for cut in range(len(whole)):
        assert binrpc.parse_request(whole[:cut]) == (None, 0)


@pytest.mark.parametrize(
    "body",
    [
        b"\x91\x0acore.echo\x00\x83",  # an end without a start
        b"\x91\x0acore.echo\x00\x03",  # a start without an end
        b"\x91\x0acore.echo\x00\x97",  # an unknown type
        b"\x91\x0acore.echo\x00\x91\x40ab",  # a length past the end
        b"\x91\x0acore.echo\x00" + b"\x03" * 40 + b"\x83" * 40,  # nested too deep
        b"\x10\x05",  # the method is not a string
    ],
)
def test_corrupted_bodies_raise(body: bytes) -> None:
    packet = binrpc.encode_header(binrpc.REQ, len(body), 9) + body
    with pytest.raises(binrpc.BinrpcError) as info:
        binrpc.parse_request(packet)
    assert info.value.code == 400
    assert info.value.cookie == 9


def test_too_big_request() -> None:
    header = binrpc.encode_header(binrpc.REQ, binrpc.MAX_REQUEST_BODY + 1, 1)
    with pytest.raises(binrpc.BinrpcError, match="too big"):
        binrpc.parse_request(header)


def test_reply_too_big_is_a_fault() -> None:
    reply = binrpc.encode_reply(["x" * 100], 3, max_body=50)
    assert reply == binrpc.encode_fault(500, "reply too big", 3)


def test_request_roundtrip_and_struct_params_skipped() -> None:
    packet = binrpc.encode_request("core.echo", ["a", Struct([("x", 1)]), 2], 77)
    request, _ = binrpc.parse_request(packet)
    assert request == binrpc.Request("core.echo", ["a", 2], 77)
