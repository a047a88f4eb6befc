"""nathelper against the bytes Kamailio 5.6.3 produced on loopback (see the module
docstring: each request sent from 127.0.0.1:25080 through a cfg calling the function
and ``forward``-ing to a capture socket)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kcc_runtime.context import Received, RequestContext
from kcc_runtime.location import Contact
from kcc_runtime.modules import nathelper as nh

from tests.runtime.fake_engine import make_ctx

SRC = Received("127.0.0.1", 25080, "127.0.0.1", 25060, "udp")
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 10.0.0.5\r\n"
)


def request(
    contact: str = "<sip:alice@127.0.0.77:5099>",
    via: str = "SIP/2.0/UDP 127.0.0.77:5099;branch=z9hG4bK1;rport",
    ruri: str = "sip:bob@127.0.0.1",
    body: bytes = b"",
    modparams: dict[tuple[str, str], int | str] | None = None,
) -> RequestContext:
    head = (
        f"INVITE {ruri} SIP/2.0\r\nVia: {via}\r\nFrom: <sip:alice@a.example>;tag=1\r\n"
        f"To: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n"
    ).encode()
    if body:
        head += b"Content-Type: application/sdp\r\n"
    data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    ctx = make_ctx(data, RequestContext, received=SRC, modparams=modparams)
    assert isinstance(ctx, RequestContext)
    return ctx


def contact_line(ctx: RequestContext) -> bytes:
    out: bytes = ctx.msg.serialize()
    return next(line for line in out.split(b"\r\n") if line.startswith(b"Contact:"))


def body_of(ctx: RequestContext) -> bytes:
    out: bytes = ctx.msg.serialize()
    return out.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    ("kwargs", "true_flags"),
    [
        ({}, {2, 16, 128}),
        (
            {
                "contact": "<sip:alice@10.0.0.5:5060>",
                "via": "SIP/2.0/UDP 192.168.1.2:5080;branch=z",
            },
            {1, 2, 4, 16, 128},
        ),
        (
            {
                "contact": "<sip:alice@127.0.0.1:25080>",
                "via": "SIP/2.0/UDP 127.0.0.1:25080;branch=z",
            },
            set(),
        ),
        ({"contact": "<sip:alice@127.0.0.1>", "via": "SIP/2.0/UDP 127.0.0.1;branch=z"}, {16, 128}),
        ({"body": SDP}, {2, 8, 16, 128, 256}),
        # all on loopback (measured again for tests/integration/test_nat.py): 127.0.0.0/8
        # is private for none of 1, 4, 8, 32; the comparing flags 2, 16, 128, 256 fire
        ({"body": SDP.replace(b"10.0.0.5", b"127.0.0.77")}, {2, 16, 128, 256}),
    ],
)
def test_nat_uac_test_each_flag_as_measured(
    kwargs: dict[str, object], true_flags: set[int]
) -> None:
    ctx = request(**kwargs)  # type: ignore[arg-type]
    got = {1 << i for i in range(10) if nh.nat_uac_test(ctx, 1 << i) == 1}
    assert got == true_flags
    assert nh.nat_uac_test(ctx, 19) == (1 if true_flags & {1, 2, 16} else -1)


def test_nat_uac_test_512_compares_du_with_ruri() -> None:
    ctx = request(contact="<sip:a@127.0.0.1:25080>", via="SIP/2.0/UDP 127.0.0.1:25080;branch=z")
    assert nh.nat_uac_test(ctx, 512) == -1
    ctx.dst_uri = "sip:127.0.0.9:5070"
    assert nh.nat_uac_test(ctx, 512) == 1
    ctx.dst_uri = "sip:127.0.0.1"
    assert nh.nat_uac_test(ctx, 512) == -1


@pytest.mark.parametrize(
    ("contact", "fixed"),
    [
        ("<sip:alice@127.0.0.77:5099>", b"Contact: <sip:alice@127.0.0.1:25080>"),
        (
            '"A" <sip:alice@127.0.0.77:5099;transport=udp>;expires=30',
            b'Contact: "A" <sip:alice@127.0.0.1:25080;transport=udp>;expires=30',
        ),
        ("sip:alice@127.0.0.77", b"Contact: sip:alice@127.0.0.1:25080"),
        ("<sip:127.0.0.77:5099;ob>", b"Contact: <sip:127.0.0.1:25080;ob>"),
    ],
)
def test_fix_nated_contact(contact: str, fixed: bytes) -> None:
    ctx = request(contact=contact)
    assert nh.fix_nated_contact(ctx) == 1
    assert contact_line(ctx) == fixed
    assert ctx.msg.contacts[0].uri_raw != b"sip:alice@127.0.0.1:25080"  # $ct unchanged


def test_fix_nated_contact_without_contact_is_minus_one() -> None:
    ctx = make_ctx(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z\r\n\r\n")
    assert nh.fix_nated_contact(ctx) == -1


@pytest.mark.parametrize(
    ("contact", "rc", "line"),
    [
        ("<sip:alice@127.0.0.77:5099>", 1, b"<sip:alice@127.0.0.77:5099;alias=127.0.0.1~25080~1>"),
        ("<sip:alice@127.0.0.1:25080>", 1, b"<sip:alice@127.0.0.1:25080;alias=127.0.0.1~25080~1>"),
        (
            "<sip:alice@127.0.0.1:25080;transport=tcp>",
            1,
            b"<sip:alice@127.0.0.1:25080;alias=127.0.0.1~25080~1;transport=tcp>",
        ),
        (
            "<sip:alice@127.0.0.1:25080;transport=udp>",
            2,
            b"<sip:alice@127.0.0.1:25080;transport=udp>",
        ),
    ],
)
def test_add_contact_alias(contact: str, rc: int, line: bytes) -> None:
    ctx = request(contact=contact)
    assert nh.add_contact_alias(ctx) == rc
    assert contact_line(ctx) == b"Contact: " + line


def test_add_contact_alias_with_arguments() -> None:
    ctx = request()
    assert nh.add_contact_alias(ctx, "10.1.2.3", "7000", "tcp") == 1
    assert contact_line(ctx) == b"Contact: <sip:alice@127.0.0.77:5099;alias=10.1.2.3~7000~2>"
    assert nh.add_contact_alias(request(), "nope", "7000", "tcp") == -1
    assert nh.add_contact_alias(request(), "10.1.2.3", "x", "tcp") == -1


def test_set_contact_alias_appends_and_trims() -> None:
    ctx = request()
    assert nh.set_contact_alias(ctx) == 1
    assert contact_line(ctx) == b"Contact: <sip:alice@127.0.0.77:5099;alias=127.0.0.1~25080~1>"
    old = "<sip:alice@127.0.0.77:5099;alias=1.2.3.4~5~1;x=y>"
    ctx = request(contact=old)
    assert nh.set_contact_alias(ctx, 1) == 1
    assert contact_line(ctx) == (
        b"Contact: <sip:alice@127.0.0.77:5099;x=y;alias=127.0.0.1~25080~1>"
    )
    ctx = request(contact=old)
    assert nh.set_contact_alias(ctx) == 1
    assert contact_line(ctx) == (
        b"Contact: <sip:alice@127.0.0.77:5099;alias=1.2.3.4~5~1;x=y;alias=127.0.0.1~25080~1>"
    )


@pytest.mark.parametrize(
    ("ruri", "rc", "new_ruri", "du"),
    [
        (
            "sip:bob@127.0.0.77:5099;alias=127.0.0.1~25080~1",
            1,
            "sip:bob@127.0.0.77:5099",
            "sip:127.0.0.1:25080",
        ),
        (
            "sip:bob@127.0.0.77:5099;x=1;alias=127.0.0.1~25080~2;y=2",
            1,
            "sip:bob@127.0.0.77:5099;x=1;y=2",
            "sip:127.0.0.1:25080;transport=tcp",
        ),
        (
            "sip:bob@127.0.0.77:5099;alias=127.0.0.1~25080~1;alias=127.0.0.2~5~1",
            1,
            "sip:bob@127.0.0.77:5099;alias=127.0.0.2~5~1",
            "sip:127.0.0.1:25080",
        ),
        (
            "sip:bob@127.0.0.77:5099;alias=127.0.0.1~25080~5",
            1,
            "sip:bob@127.0.0.77:5099",
            "sip:127.0.0.1:25080;transport=ws",
        ),
        (
            "sip:bob@127.0.0.77:5099;alias=127.0.0.1~x~1",
            1,
            "sip:bob@127.0.0.77:5099",
            "sip:127.0.0.1:x",
        ),
        ("sip:bob@127.0.0.77:5099", 2, None, None),
        ("sip:bob@127.0.0.77:5099;alias=bad", 2, None, None),
        ("sip:bob@127.0.0.77:5099;ALIAS=127.0.0.1~25080~1", 2, None, None),
        ("sip:bob@127.0.0.77:5099;xalias=127.0.0.1~25080~1", 2, None, None),
        ("sip:bob@127.0.0.77:5099;alias=127.0.0.1~25080~9", -1, None, None),
    ],
)
def test_handle_ruri_alias(ruri: str, rc: int, new_ruri: str | None, du: str | None) -> None:
    ctx = request(ruri=ruri)
    assert nh.handle_ruri_alias(ctx) == rc
    assert ctx.new_uri == new_ruri
    assert ctx.dst_uri == du


def test_fix_nated_register_and_add_rcv_param() -> None:
    params: dict[tuple[str, str], int | str] = {("nathelper", "received_avp"): "$avp(RECEIVED)"}
    ctx = request(modparams=params)
    assert nh.fix_nated_register(ctx) == 1
    assert ctx.avps["RECEIVED"] == ["sip:127.0.0.1:25080"]
    assert nh.fix_nated_register(request()) == -1
    ctx = request()
    assert nh.add_rcv_param(ctx) == 1
    assert (
        contact_line(ctx) == b'Contact: <sip:alice@127.0.0.77:5099>;received="sip:127.0.0.1:25080"'
    )
    ctx = request()
    assert nh.add_rcv_param(ctx, 1) == 1
    assert contact_line(ctx) == b"Contact: <sip:alice@127.0.0.77:5099;received=sip:127.0.0.1:25080>"


@pytest.mark.parametrize(
    ("ip", "rc"),
    [
        ("10.1.1.1", 1),
        ("100.64.0.1", 1),
        ("192.0.0.5", 1),
        ("192.0.0.200", 1),
        ("172.20.0.1", 1),
        ("192.168.3.3", 1),
        ("127.0.0.1", -1),
        ("fd00::1", -1),
        ("bogus", -1),
    ],
)
def test_is_rfc1918(ip: str, rc: int) -> None:
    assert nh.is_rfc1918(request(), ip) == rc


def test_is_rfc1918_mode_0_keeps_only_192_0_0_0_29() -> None:
    ctx = request(modparams={("nathelper", "nat_addr_mode"): 0})
    assert nh.is_rfc1918(ctx, "192.0.0.5") == 1
    assert nh.is_rfc1918(ctx, "192.0.0.200") == -1


OLD3 = b"a=oldmediaip:10.0.0.5\r\n"


@pytest.mark.parametrize(
    ("flags", "ip", "rc", "body"),
    [
        (1, None, 2, SDP + b"a=direction:active\r\n"),
        (4, None, 2, SDP + b"a=nortpproxy:yes\r\n"),
        (
            2,
            None,
            1,
            SDP.replace(b"c=IN IP4 10.0.0.5", b"c=IN IP4 127.0.0.1").replace(
                b"rtcp:4001 IN IP4 10.0.0.5", b"rtcp:4001 IN IP4 127.0.0.1"
            )
            + OLD3 * 2,
        ),
        (
            8,
            None,
            1,
            SDP.replace(b"o=- 1 1 IN IP4 10.0.0.5", b"o=- 1 1 IN IP4 127.0.0.1").replace(
                b"rtcp:4001 IN IP4 10.0.0.5", b"rtcp:4001 IN IP4 127.0.0.1"
            )
            + OLD3 * 2,
        ),
        (
            15,
            None,
            1,
            SDP.replace(b"10.0.0.5", b"127.0.0.1")
            + b"a=direction:active\r\na=nortpproxy:yes\r\n"
            + OLD3 * 3,
        ),
        (10, "10.9.9.9", 1, SDP.replace(b"10.0.0.5", b"10.9.9.9") + OLD3 * 3),
    ],
)
def test_fix_nated_sdp_as_measured(flags: int, ip: str | None, rc: int, body: bytes) -> None:
    ctx = request(body=SDP)
    assert nh.fix_nated_sdp(ctx, flags, ip) == rc
    assert body_of(ctx) == body
    assert b"Content-Length: %d\r\n" % len(body) in ctx.msg.serialize()


def test_fix_nated_sdp_media_level_lines_and_ipv6() -> None:
    sdp = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        b"c=IN IP4 10.0.0.6\r\nm=video 4002 RTP/AVP 31\r\nc=IN IP4 10.0.0.7\r\na=sendrecv\r\n"
    )
    ctx = request(body=sdp)
    assert nh.fix_nated_sdp(ctx, 2) == 1
    assert body_of(ctx) == (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        b"c=IN IP4 127.0.0.1\r\nm=video 4002 RTP/AVP 31\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\n"
        b"a=oldmediaip:10.0.0.6\r\na=oldmediaip:10.0.0.7\r\n"
    )
    v6 = (
        b"v=0\r\no=- 1 1 IN IP6 fd00::1\r\ns=-\r\nc=IN IP6 fd00::1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0\r\n"
    )
    ctx = request(body=v6)
    assert nh.fix_nated_sdp(ctx, 2) == 1
    assert body_of(ctx) == v6.replace(b"c=IN IP6 fd00::1", b"c=IN IP6 127.0.0.1") + (
        b"a=oldmediaip6:fd00::1\r\n"
    )


def test_fix_nated_sdp_same_address_and_no_body() -> None:
    same = SDP.replace(b"10.0.0.5", b"127.0.0.1")
    ctx = request(body=same)
    assert nh.fix_nated_sdp(ctx, 2) == 2
    assert body_of(ctx) == same
    assert nh.fix_nated_sdp(request(), 2) == -1


def _contact(
    cflags: int, contact: str = "sip:alice@127.0.0.77:5099", received: str | None = None
) -> Contact:
    return Contact("r1", "alice", None, contact, 0.0, cflags=cflags, received=received)


def _recorder(
    sent: list[tuple[bytes, tuple[str, int]]],
) -> Callable[[bytes, tuple[str, int]], bool]:
    def send(data: bytes, dst: tuple[str, int]) -> bool:
        sent.append((data, dst))
        return True

    return send


def test_pinger_sends_options_to_flagged_contacts_once_per_interval() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    contacts = [
        _contact(1 << 7 | 1 << 5, received="sip:127.0.0.1:25080"),
        _contact(1 << 5),  # NATed, no sipping flag: the 4-byte UDP keepalive
        _contact(0),  # not NATed: skipped with ping_nated_only
    ]
    pinger = nh.NatPinger(
        30.0,
        _recorder(sent),
        lambda: contacts,
        {"ping_nated_only": 1, "sipping_bflag": 7, "sipping_from": "sip:pinger@kcc.test"},
        ("127.0.0.1", 5060),
        nat_bflag=5,
    )
    pinger.on_timer(100.0)
    assert sent == []
    pinger.on_timer(129.0)
    assert sent == []
    pinger.on_timer(130.0)
    assert [dst for _, dst in sent] == [("127.0.0.1", 25080), ("127.0.0.77", 5099)]
    options = sent[0][0].split(b"\r\n")
    assert options[0] == b"OPTIONS sip:alice@127.0.0.77:5099 SIP/2.0"
    assert options[1] == b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=0"
    assert options[2].startswith(b"From: sip:pinger@kcc.test;tag=")
    assert options[3] == b"To: sip:alice@127.0.0.77:5099"
    assert options[5:] == [b"CSeq: 1 OPTIONS", b"Content-Length: 0", b"", b""]
    assert sent[1][0] == b"\0\0\0\0"
    pinger.on_timer(131.0)
    assert len(sent) == 2


def test_pinger_disable_flag_and_no_interval() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    pinger = nh.NatPinger(
        10.0,
        _recorder(sent),
        lambda: [_contact(1 << 3)],
        {"natping_disable_bflag": 3},
        ("127.0.0.1", 5060),
    )
    assert pinger.ping(_contact(1 << 3)) is False
    assert pinger.ping(_contact(0)) is True
    assert sent == [(b"\0\0\0\0", ("127.0.0.77", 5099))]
    assert nh.pinger_for({}, lambda d, _: True, list, ("127.0.0.1", 5060)) is None
