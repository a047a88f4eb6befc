"""registrar ``save``/``lookup``/``registered``/``unregister`` over usrloc's store.

Expected bytes and codes were measured on Kamailio 5.6.3 on loopback: a cfg with
``save("location")`` / ``lookup("location")`` (the routes of examples/registrar.cfg,
``max_expires`` 3600, ``method_filtering`` 1, ``use_path`` 1, ``path_mode`` 0,
``received_avp`` ``$avp(RECEIVED)``, ``nat_bflag`` 6), listening on udp:127.0.0.1:5070,
REGISTERs sent from 127.0.0.1:5090 by a Python UDP socket, the replies captured and
``$rc``/``$ru``/``$du``/``$bF``/``$branch(...)`` logged with xlog.
"""

from __future__ import annotations

from kcc_runtime.context import Branch, Context, FailureContext, Process, Received
from kcc_runtime.engine import Proxy, Socket
from kcc_runtime.location import LocationStore, store_for
from kcc_runtime.modules import registrar
from kcc_runtime.sip import parse_message

from .fake_engine import FakeEngine
from .test_engine import LOOPBACK, golden_router

T0 = 1_700_000_000.0
KAMAILIO = "127.0.0.1", 5090
SERVER = b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
TAG = b"df673b98c9e0bd9172cfc0d849035098"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def register(
    n: int, extra: str, callid: str, *, cseq: int = 1, to: str = "sip:alice@127.0.0.1"
) -> bytes:
    """The REGISTER the probe sent (branch and From tag numbered ``n``)."""
    return (
        f"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{n}x\r\n"
        f"From: <sip:alice@127.0.0.1>;tag=ft{n}\r\n"
        f"To: <{to}>\r\n"
        f"Call-ID: {callid}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Max-Forwards: 70\r\n{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def head(status: bytes, n: int, tag: bytes, callid: bytes, cseq: int = 1) -> bytes:
    return (
        b"SIP/2.0 " + status + b"\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-%dx\r\n"
        % n
        + b"From: <sip:alice@127.0.0.1>;tag=ft%d\r\n" % n
        + b"To: <sip:alice@127.0.0.1>;tag="
        + TAG
        + b"."
        + tag
        + b"\r\n"
        b"Call-ID: " + callid + b"\r\n"
        b"CSeq: %d REGISTER\r\n" % cseq
    )


def proxy(clock: Clock) -> Proxy:
    p = Proxy(golden_router("registrar"), [Socket("udp", "127.0.0.1", 5070)], allow_dst=LOOPBACK)
    p.process.location = store_for(0, None, 60, now=clock)
    return p


def send(p: Proxy, data: bytes) -> list[bytes]:
    return [o.data for o in p.receive(data, KAMAILIO, p.sockets[0])]


def test_replies_are_kamailios_bytes() -> None:
    clock = Clock()
    p = proxy(clock)
    reg1 = send(p, register(1, "Contact: <sip:alice@127.0.0.1:5091>\r\nUser-Agent: UA1\r\n", "c1"))
    assert reg1 == [
        head(b"200 OK", 1, b"8268ed29", b"c1")
        + b"Contact: <sip:alice@127.0.0.1:5091>;expires=3600\r\n"
        + SERVER
        + b"Content-Length: 0\r\n\r\n"
    ]
    two = (
        "Contact: <sip:alice@127.0.0.1:5092>;q=0.5;expires=120, "
        "<sip:alice@127.0.0.1:5093;transport=udp>;q=0.9\r\nExpires: 300\r\n"
    )
    assert send(p, register(2, two, "c2")) == [
        head(b"200 OK", 2, b"04ca540a", b"c2")
        + b"Contact: <sip:alice@127.0.0.1:5093;transport=udp>;q=0.9;expires=300, "
        b"<sip:alice@127.0.0.1:5092>;q=0.5;expires=120, "
        b"<sip:alice@127.0.0.1:5091>;expires=3600\r\n" + SERVER + b"Content-Length: 0\r\n\r\n"
    ]
    clock.t += 1
    # an older CSeq for the same Call-ID: save's 400, then the cfg's sl_reply_error()
    # 500, both with the reply lumps (Contact and P-Registrar-Error)
    old = send(p, register(6, "Contact: <sip:alice@127.0.0.1:5091>\r\n", "c1", cseq=0))
    lumps = (
        b"Contact: <sip:alice@127.0.0.1:5093;transport=udp>;q=0.9;expires=299, "
        b"<sip:alice@127.0.0.1:5092>;q=0.5;expires=119, <sip:alice@127.0.0.1:5091>;expires=3599\r\n"
        b"P-Registrar-Error: Invalid CSeq number\r\n" + SERVER + b"Content-Length: 0\r\n\r\n"
    )
    assert old == [
        head(b"400 Bad Request", 6, b"02bced29", b"c1", 0) + lumps,
        head(b"500 I'm terribly sorry, server error occurred (1/SL)", 6, b"02bced29", b"c1", 0)
        + lumps,
    ]


def test_star_and_its_error() -> None:
    clock = Clock()
    p = proxy(clock)
    send(p, register(1, "Contact: <sip:alice@127.0.0.1:5091>\r\n", "c1"))
    assert send(p, register(9, "Contact: *\r\nExpires: 0\r\n", "c7")) == [
        head(b"200 OK", 9, b"8e848e7f", b"c7") + SERVER + b"Content-Length: 0\r\n\r\n"
    ]
    lumps = b"P-Registrar-Error: * used in contact and expires is not zero\r\n" + SERVER
    assert send(p, register(11, "Contact: *\r\n", "c8")) == [
        head(b"400 Bad Request", 11, b"5033f1f0", b"c8") + lumps + b"Content-Length: 0\r\n\r\n",
        head(b"500 I'm terribly sorry, server error occurred (1/SL)", 11, b"5033f1f0", b"c8")
        + lumps
        + b"Content-Length: 0\r\n\r\n",
    ]


# -- save and lookup through the fake engine ----------------------------------------

MODPARAMS: dict[tuple[str, str], int | str] = {
    ("registrar", "method_filtering"): 1,
    ("registrar", "max_expires"): 3600,
    ("registrar", "use_path"): 1,
    ("registrar", "path_mode"): 0,
    ("registrar", "received_avp"): "$avp(RECEIVED)",
    ("usrloc", "nat_bflag"): 6,
}


def process(
    clock: Clock, store: LocationStore | None = None, **extra: int | str
) -> tuple[Process, FakeEngine]:
    engine = FakeEngine()
    params = dict(MODPARAMS)
    for key, value in extra.items():
        params[tuple(key.split("__"))] = value  # type: ignore[index]
    proc = Process(engine=engine, modparams=params)
    proc.location = store or store_for(0, None, 60, now=clock)
    return proc, engine


def request(
    proc: Process, method: str, ruri: str, extra: str = "", cls: type[Context] = Context
) -> Context:
    data = (
        f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-1\r\n"
        f"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: q1\r\n"
        f"CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()
    return cls(proc, parse_message(data), Received("127.0.0.1", 5090, "127.0.0.1", 5070))


def reg_ctx(proc: Process, data: bytes) -> Context:
    return Context(proc, parse_message(data), Received("127.0.0.1", 5090, "127.0.0.1", 5070))


def test_save_codes_and_lookup_order() -> None:
    clock = Clock()
    proc, engine = process(clock)
    for n, port in enumerate((5091, 5092), 1):
        ctx = reg_ctx(proc, register(n, f"Contact: <sip:alice@127.0.0.1:{port}>\r\n", f"a{n}"))
        assert registrar.save(ctx, "location") == 1
        clock.t += 1
    ctx = reg_ctx(proc, register(3, "Contact: <sip:alice@127.0.0.1:5093>;q=0.5\r\n", "a3"))
    assert registrar.save(ctx, "location") == 1
    both = (
        "Contact: <sip:alice@127.0.0.1:5094>;expires=10, "
        "<sip:alice@127.0.0.1:5095>;expires=99999;q=1.0\r\n"
    )
    ctx = reg_ctx(proc, register(4, both, "a4"))
    assert registrar.save(ctx, "location") == 1
    assert ctx.reply_lumps == [
        "Contact: <sip:alice@127.0.0.1:5095>;q=1;expires=3600, "
        "<sip:alice@127.0.0.1:5093>;q=0.5;expires=3600, <sip:alice@127.0.0.1:5091>;expires=3598, "
        "<sip:alice@127.0.0.1:5092>;expires=3599, <sip:alice@127.0.0.1:5094>;expires=60\r\n"
    ]
    assert engine.calls[-2:] == [("has_transaction",), ("send_reply", 200, "OK")]
    look = request(proc, "OPTIONS", "sip:alice@127.0.0.1")
    assert registrar.lookup(look, "location") == 1
    assert look.new_uri == "sip:alice@127.0.0.1:5095"
    assert look.dst_uri is None
    assert look.branches == [
        Branch("sip:alice@127.0.0.1:5093", None, 500, 0),
        Branch("sip:alice@127.0.0.1:5091", None, -1, 0),
        Branch("sip:alice@127.0.0.1:5092", None, -1, 0),
        Branch("sip:alice@127.0.0.1:5094", None, -1, 0),
    ]
    # delete (3), refresh (2), no Contact (4)
    ctx = reg_ctx(
        proc, register(5, "Contact: <sip:alice@127.0.0.1:5091>;expires=0\r\n", "a1", cseq=2)
    )
    assert registrar.save(ctx, "location") == 3
    ctx = reg_ctx(proc, register(6, "Contact: <sip:alice@127.0.0.1:5092>\r\n", "a2", cseq=2))
    assert registrar.save(ctx, "location") == 2
    ctx = reg_ctx(proc, register(7, "", "a7"))
    assert registrar.save(ctx, "location") == 4
    assert ctx.reply_lumps == [
        "Contact: <sip:alice@127.0.0.1:5095>;q=1;expires=3600, "
        "<sip:alice@127.0.0.1:5093>;q=0.5;expires=3600, <sip:alice@127.0.0.1:5092>;expires=3600, "
        "<sip:alice@127.0.0.1:5094>;expires=60\r\n"
    ]


def test_retransmission_is_absorbed_and_bad_q_refused() -> None:
    clock = Clock()
    proc, engine = process(clock)
    data = register(1, "Contact: <sip:alice@127.0.0.1:5091>\r\n", "c1")
    assert registrar.save(reg_ctx(proc, data), "location") == 1
    clock.t += 5
    again = reg_ctx(proc, data)
    assert registrar.save(again, "location") == 1  # same CSeq within cseq_delay
    assert again.reply_lumps == ["Contact: <sip:alice@127.0.0.1:5091>;expires=3595\r\n"]
    bad = reg_ctx(proc, register(2, "Contact: <sip:alice@127.0.0.1:5099>;q=2\r\n", "c2"))
    assert registrar.save(bad, "location") == -1
    assert bad.reply_lumps == [
        "Contact: <sip:alice@127.0.0.1:5091>;expires=3595\r\n",
        "P-Registrar-Error: Invalid q param in contact\r\n",
    ]
    assert engine.calls[-1] == ("send_reply", 400, "Bad Request")
    broken = reg_ctx(proc, register(3, "Contact: <sip:eve@127.0.0.1:5099\r\n", "c3"))
    assert registrar.save(broken, "location") == -1
    assert broken.reply_lumps == ["P-Registrar-Error: Contact parse error\r\n"]


def test_max_contacts_is_503_and_minus_2() -> None:
    clock = Clock()
    proc, engine = process(clock, registrar__max_contacts=1)
    ok = reg_ctx(proc, register(1, "Contact: <sip:alice@127.0.0.1:5091>\r\n", "c1"))
    assert registrar.save(ok, "location") == 1
    more = reg_ctx(proc, register(2, "Contact: <sip:alice@127.0.0.1:5092>\r\n", "c2"))
    assert registrar.save(more, "location") == -2
    assert more.reply_lumps == [
        "Contact: <sip:alice@127.0.0.1:5091>;expires=3600\r\n",
        "P-Registrar-Error: Too many registered contacts\r\n",
    ]
    assert engine.calls[-1] == ("send_reply", 503, "Service Unavailable")
    fresh = reg_ctx(
        proc,
        register(3, "Contact: <sip:b@h:1>, <sip:b@h:2>\r\n", "c3", to="sip:bob@127.0.0.1"),
    )
    assert registrar.save(fresh, "location") == -2
    # the new record is removed again (insert_contacts' delete_urecord)
    assert registrar.registered(request(proc, "OPTIONS", "sip:bob@127.0.0.1"), "location") == -1


def test_no_reply_flag_and_failure_route() -> None:
    clock = Clock()
    proc, engine = process(clock)
    ctx = reg_ctx(
        proc, register(1, "Contact: <sip:dave@127.0.0.1:5099>\r\n", "d1", to="sip:dave@127.0.0.1")
    )
    assert registrar.save(ctx, "location", 0x02) == 1
    assert engine.calls == [] and ctx.reply_lumps == []
    prepared = reg_ctx(proc, register(2, "", "d2", to="sip:dave@127.0.0.1"))
    assert registrar.save(prepared, "location", 0x12) == 4
    assert prepared.reply_lumps == ["Contact: <sip:dave@127.0.0.1:5099>;expires=3600\r\n"]
    assert engine.calls == []
    failed = FailureContext(
        proc,
        parse_message(register(3, "Contact: *\r\n", "d3")),
        Received("127.0.0.1", 5090, "127.0.0.1", 5070),
    )
    assert registrar.save(failed, "location") == -1
    assert engine.calls == []  # errors are replied in request_route only


def test_nat_path_and_branch_flags_restored() -> None:
    """Measured: ``$du`` is the Path hop (it wins over received), ``$bF`` 0x48."""
    clock = Clock()
    proc, _ = process(clock)
    data = register(
        12,
        "Contact: <sip:bob@127.0.0.1:5099>;expires=60\r\nPath: <sip:p1@127.0.0.1;lr>\r\n",
        "b1",
        to="sip:bob@127.0.0.1",
    )
    ctx = reg_ctx(proc, data)
    ctx.bflags = (1 << 6) | (1 << 3)
    ctx.avps["RECEIVED"] = ["sip:127.0.0.1:5090"]
    assert registrar.save(ctx, "location") == 1
    assert ctx.reply_lumps == [
        'Contact: <sip:bob@127.0.0.1:5099>;expires=60;received="sip:127.0.0.1:5090"\r\n'
    ]
    look = request(proc, "INVITE", "sip:bob@127.0.0.1")
    assert registrar.lookup(look, "location") == 1
    assert (look.new_uri, look.dst_uri, look.bflags) == (
        "sip:bob@127.0.0.1:5099",
        "sip:p1@127.0.0.1;lr",
        0x48,
    )
    assert look.path_vec == "<sip:p1@127.0.0.1;lr>"
    row = proc.location.contacts("location", "bob", None)[0]  # type: ignore[union-attr]
    assert (row.received, row.path, row.cflags, row.socket) == (
        "sip:127.0.0.1:5090",
        "<sip:p1@127.0.0.1;lr>",
        0x48,
        "udp:127.0.0.1:5070",
    )


def test_method_filtering_registered_unregister() -> None:
    clock = Clock()
    proc, _ = process(clock)
    carol = register(
        15,
        'Contact: <sip:carol@127.0.0.1:5099>;methods="INVITE,ACK"\r\n',
        "ca1",
        to="sip:carol@127.0.0.1",
    )
    assert registrar.save(reg_ctx(proc, carol), "location") == 1
    sub = request(proc, "SUBSCRIBE", "sip:carol@127.0.0.1")
    assert registrar.lookup(sub, "location") == -2
    assert sub.new_uri is None
    assert registrar.lookup(request(proc, "INVITE", "sip:carol@127.0.0.1"), "location") == 1
    assert registrar.lookup(request(proc, "INVITE", "sip:nobody@127.0.0.1"), "location") == -1
    assert registrar.lookup(request(proc, "INVITE", "sip:x@127.0.0.1"), "location", "bad") == -3
    assert registrar.registered(request(proc, "OPTIONS", "sip:carol@127.0.0.1"), "location") == 1
    assert registrar.registered(request(proc, "OPTIONS", "sip:nobody@127.0.0.1"), "location") == -1
    opts = request(proc, "OPTIONS", "sip:carol@127.0.0.1")
    assert registrar.unregister(opts, "location", "sip:carol@127.0.0.1") == 1
    assert registrar.unregister(opts, "location", "sip:carol@127.0.0.1") == 1
    assert registrar.registered(opts, "location") == -1
    assert registrar.unregister(opts, "location", "sip:carol@127.0.0.1", "no-such-ruid") == -3


def test_expired_contact_not_found_and_case_insensitive_aor() -> None:
    clock = Clock()
    proc, _ = process(clock)
    data = register(
        1, "Contact: <sip:Alice@127.0.0.1:5091>;expires=60\r\n", "c1", to="sip:ALICE@127.0.0.1"
    )
    assert registrar.save(reg_ctx(proc, data), "location") == 1
    assert registrar.lookup(request(proc, "INVITE", "sip:alice@127.0.0.1"), "location") == 1
    clock.t += 61
    assert registrar.lookup(request(proc, "INVITE", "sip:alice@127.0.0.1"), "location") == -1


def test_two_workers_share_registrations(tmp_path: object) -> None:
    """A REGISTER saved by one worker is found by a lookup in another."""
    clock = Clock()
    path = f"{tmp_path}/usrloc.db"
    proc1, _ = process(clock, LocationStore(path, now=clock))
    proc2, _ = process(clock, LocationStore(path, now=clock))
    data = register(1, "Contact: <sip:alice@127.0.0.1:5091>\r\n", "c1")
    assert registrar.save(reg_ctx(proc1, data), "location") == 1
    look = request(proc2, "INVITE", "sip:alice@127.0.0.1")
    assert registrar.lookup(look, "location") == 1
    assert look.new_uri == "sip:alice@127.0.0.1:5091"


def test_lookup_to_dset_keeps_the_ruri() -> None:
    clock = Clock()
    proc, _ = process(clock)
    data = register(
        1, "Contact: <sip:alice@127.0.0.1:5091>, <sip:alice@127.0.0.1:5092>;q=0.1\r\n", "c1"
    )
    assert registrar.save(reg_ctx(proc, data), "location") == 1
    ctx = request(proc, "INVITE", "sip:alice@127.0.0.1")
    assert registrar.lookup_to_dset(ctx, "location") == 1
    assert ctx.new_uri is None
    assert [b.uri for b in ctx.branches] == ["sip:alice@127.0.0.1:5092", "sip:alice@127.0.0.1:5091"]


def test_path_of_the_contact_becomes_the_route_of_the_forwarded_request() -> None:
    """``use_path`` 1, ``path_mode`` 0: the REGISTER's Path is stored; ``lookup``
    sends to its first hop and the forwarded INVITE carries it as one Route header
    after our Via (bytes measured on Kamailio 5.6.3 with examples/registrar.cfg)."""
    clock = Clock()
    p = proxy(clock)
    ua = ("127.0.0.1", 5172)
    reg = (
        b"REGISTER sip:127.0.0.1:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5172;branch=z9hG4bK-r1;rport\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: reg1@x\r\nCSeq: 1 REGISTER\r\n"
        b"Path: <sip:edge@127.0.0.1:5999;lr>, <sip:edge2@127.0.0.1:5998;lr>\r\n"
        b"Contact: <sip:bob@127.0.0.1:5173>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
    )
    [ok] = p.receive(reg, ua, p.sockets[0])
    assert ok.data.startswith(b"SIP/2.0 200 OK\r\n")
    assert b"Contact: <sip:bob@127.0.0.1:5173>;expires=300\r\n" in ok.data
    invite = (
        b"INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5172;branch=z9hG4bK-i1;rport\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: inv1@x\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5172>\r\nContent-Length: 0\r\n\r\n"
    )
    out = p.receive(invite, ua, p.sockets[0])
    [fwd] = [o for o in out if o.data.startswith(b"INVITE")]
    assert fwd.dst == ("127.0.0.1", 5999)
    assert fwd.data == (
        b"INVITE sip:bob@127.0.0.1:5173 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKd0da.eaf067f469521816f526c41e26232cce.0\r\n"
        b"Route: <sip:edge@127.0.0.1:5999;lr>, <sip:edge2@127.0.0.1:5998;lr>\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5172;received=127.0.0.1;branch=z9hG4bK-i1;rport=5172\r\n"
        b"Max-Forwards: 69\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: inv1@x\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5172>\r\nContent-Length: 0\r\n\r\n"
    )


def test_two_contacts_fork_in_parallel_as_kamailio_does() -> None:
    """Two contacts registered a second apart: ``lookup`` + ``t_relay`` sends one
    INVITE to each, the older first (bytes measured on Kamailio 5.6.3 with
    examples/registrar.cfg)."""
    clock = Clock()
    p = proxy(clock)
    ua = ("127.0.0.1", 5172)

    def reg(n: int, contact: bytes) -> bytes:
        return (
            b"REGISTER sip:127.0.0.1:5070 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5172;branch=z9hG4bK-r%d;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b%d\r\n"
            b"To: <sip:bob@127.0.0.1>\r\nCall-ID: reg%d@x\r\nCSeq: 1 REGISTER\r\n"
            b"Contact: <%s>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n" % (n, n, n, contact)
        )

    p.receive(reg(1, b"sip:bob@127.0.0.1:5173"), ua, p.sockets[0])
    clock.t += 1.1
    [ok] = p.receive(reg(2, b"sip:bob@127.0.0.1:5174"), ua, p.sockets[0])
    assert (
        b"Contact: <sip:bob@127.0.0.1:5173>;expires=299, <sip:bob@127.0.0.1:5174>;expires=300\r\n"
        in ok.data
    )
    invite = (
        b"INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5172;branch=z9hG4bK-i1;rport\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: inv1@x\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5172>\r\nContent-Length: 0\r\n\r\n"
    )
    out = p.receive(invite, ua, p.sockets[0])
    sent = [(o.dst, o.data) for o in out if o.data.startswith(b"INVITE")]

    def fwd(port: int, index: int) -> bytes:
        return (
            b"INVITE sip:bob@127.0.0.1:%d SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5070"
            b";branch=z9hG4bKd0da.eaf067f469521816f526c41e26232cce.%d\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5172;received=127.0.0.1;branch=z9hG4bK-i1;rport=5172\r\n"
            b"Max-Forwards: 69\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
            b"Call-ID: inv1@x\r\nCSeq: 1 INVITE\r\n"
            b"Contact: <sip:alice@127.0.0.1:5172>\r\nContent-Length: 0\r\n\r\n" % (port, index)
        )

    assert sent == [(("127.0.0.1", 5173), fwd(5173, 0)), (("127.0.0.1", 5174), fwd(5174, 1))]
