"""kcc_runtime.kw: condition keywords and ``myself``, with Kamailio 5.6.3's answers.

The ``myself`` cases were measured with this cfg (``$ru = $var(u); if (uri == myself)``)::

    auto_aliases=no
    listen=udp:127.0.0.1:5070
    listen=tcp:127.0.0.1:5060      # only in the second run
    alias=proxy.example.net:5090
    alias=other.example
"""

from __future__ import annotations

from typing import Final

import pytest
from kcc_runtime import kw
from kcc_runtime.context import Context, Process, Received, ReplyContext, RequestContext
from kcc_runtime.router import Config, Router
from kcc_runtime.sip import parse_message

from tests.runtime.fake_engine import FakeEngine

OPTIONS = (
    b"OPTIONS sip:bob@[2001:db8::1] SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds;rport\r\n"
    b"To: <sip:bob@biloxi.example.com;user=phone>;tag=xyz\r\n"
    b"From: sip:alice@atlanta.example.com;tag=1928301774\r\n"
    b"Call-ID: abc\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
REPLY = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: x@y\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


#: the tests never reach the engine (tests/runtime/fake_engine.py records calls)
ENGINE: Final = FakeEngine()


LOOPBACK: Final = Received("127.0.0.1", 5099, "127.0.0.1", 5070, "udp")


def make_ctx(
    listens: tuple[str, ...] = ("udp:127.0.0.1:5070",),
    aliases: tuple[str, ...] = ("proxy.example.net:5090", "other.example"),
    received: Received = LOOPBACK,
    data: bytes = OPTIONS,
) -> RequestContext:
    config = Config(globals=(*(("listen", x) for x in listens), *(("alias", a) for a in aliases)))
    proc = Router(config).process(ENGINE)
    return RequestContext(proc, parse_message(data), received)


def myself(ctx: Context, uri: str) -> int:
    return kw.uri_is_myself(ctx, uri)


@pytest.mark.parametrize(
    ("uri", "only_5070", "with_tcp_5060"),
    [
        ("sip:127.0.0.1", 0, 1),
        ("sip:127.0.0.1:5070", 1, 1),
        ("sip:127.0.0.1:5060", 0, 1),
        ("sip:127.0.0.1:5071", 0, 0),
        ("sip:127.0.0.1;transport=tcp", 0, 1),
        ("sip:proxy.example.net", 0, 0),
        ("sip:PROXY.example.net:5090", 1, 1),
        ("sip:proxy.example.net:5070", 0, 0),
        ("sip:other.example:1234", 1, 1),
        ("sip:other.example", 1, 1),
        ("sip:Other.Example", 1, 1),
        ("sips:127.0.0.1", 0, 1),
        ("sips:127.0.0.1:5070", 1, 1),
        ("sip:localhost:5070", 0, 0),
        ("sip:[::ffff:127.0.0.1]:5070", 0, 0),
        ("tel:+123", 0, 0),
    ],
)
def test_uri_is_myself(uri: str, only_5070: int, with_tcp_5060: int) -> None:
    assert myself(make_ctx(), uri) == only_5070
    listens = ("udp:127.0.0.1:5070", "tcp:127.0.0.1:5060")
    assert myself(make_ctx(listens), uri) == with_tcp_5060


def test_myself_ipv6_and_advertise() -> None:
    ctx = make_ctx(
        listens=("udp:[2001:db8::1]:5060", "udp:10.0.0.1:5060 advertise 198.51.100.7:5080"),
        aliases=(),
        received=Received("2001:db8::9", 5060, "2001:db8::1", 5060, "udp"),
    )
    assert myself(ctx, "sip:bob@[2001:db8:0::1]") == 1  # compared as addresses
    assert myself(ctx, "sip:bob@[2001:db8::2]") == 0
    assert myself(ctx, "sip:198.51.100.7:5080") == 1
    assert myself(ctx, "sip:10.0.0.1") == 1
    assert kw.uri_is_myself(ctx, kw.uri(ctx)) == 1
    assert kw.uri_is_myself(ctx, None) == 0
    assert kw.ip_is_myself(ctx, "2001:db8::1") == 1
    assert kw.ip_is_myself(ctx, kw.src_ip(ctx)) == 0
    assert kw.af(ctx) == kw.AF_INET6


def test_received_socket_is_myself_without_listen() -> None:
    ctx = make_ctx(listens=(), aliases=())
    assert myself(ctx, "sip:x@127.0.0.1:5070") == 1
    assert myself(ctx, "sip:x@127.0.0.1") == 0
    assert kw.ip_is_myself(ctx, "127.0.0.1") == 1
    assert kw.ip_is_myself(ctx, "127.0.0.2") == 0
    assert kw.ip_is_myself(ctx, None) == 0


def _check_reference(
    me: kw.Myself, host: str, port: int | None, extra: tuple[str, int] | None
) -> bool:
    """``Myself.check`` as first written: every pair compared, addresses parsed."""

    def same(a: str, b: str) -> bool:
        left, right = kw.parse_ip(a), kw.parse_ip(b)
        if left is not None or right is not None:
            return left is not None and left == right
        return a.lower() == b.lower()

    sockets = me.sockets if extra is None else (*me.sockets, extra)
    if any((port is None or port == p) and same(host, h) for h, p in sockets):
        return True
    return any((port is None or p in (0, port)) and same(host, h) for h, p in me.aliases)


def test_myself_check_agrees_with_pairwise_comparison() -> None:
    hosts = ["127.0.0.1", "::1", "[::1]", "0:0::1", "Example.COM", "example.com", "[x.org]", ""]
    hosts += ["::ffff:127.0.0.1", "fe80::1", "[FE80::1%eth0]", "fe80::1%ETH0"]
    ports = [None, 0, 5060, 5090]
    me = kw.Myself(
        (("127.0.0.1", 5060), ("::1", 5090), ("example.com", 0), ("fe80::1%eth0", 5060)),
        (("x.org", 0), ("[x.org]", 5060), ("0.0.0.1", 5090)),
    )
    for host in hosts:
        for port in ports:
            for extra in (None, ("127.0.0.1", 5090), ("::1", 0)):
                expected = _check_reference(me, host, port, extra)
                assert me.check(host, port, extra) == expected, (host, port, extra)


def test_message_keywords() -> None:
    ctx = make_ctx()
    assert kw.method(ctx) == "OPTIONS"
    assert kw.method_eq(ctx, "options") == 1  # measured: case-insensitive
    assert kw.method_eq(ctx, "INVITE") == 0
    assert kw.uri(ctx) == "sip:bob@[2001:db8::1]"
    assert kw.from_uri(ctx) == "sip:alice@atlanta.example.com"
    assert kw.to_uri(ctx) == "sip:bob@biloxi.example.com;user=phone"
    assert kw.status(ctx) is None
    assert kw.str_ieq(kw.uri(ctx), "SIP:BOB@[2001:db8::1]") == 1
    assert kw.str_ieq(kw.status(ctx), "") == 0
    assert (kw.src_ip(ctx), kw.src_port(ctx), kw.dst_ip(ctx), kw.dst_port(ctx)) == (
        "127.0.0.1",
        5099,
        "127.0.0.1",
        5070,
    )
    assert kw.proto(ctx) == kw.PROTO_UDP
    assert kw.af(ctx) == kw.AF_INET
    assert kw.msg_len(ctx) == len(OPTIONS)
    ctx.new_uri = "sip:x@y"
    assert kw.uri(ctx) == "sip:x@y"


def test_reply_keywords() -> None:
    proc = Process(engine=ENGINE)
    received = Received("127.0.0.1", 5099, "127.0.0.1", 5070, "tls")
    ctx = ReplyContext(proc, parse_message(REPLY), received)
    assert kw.status(ctx) == "200"
    assert kw.str_ieq(kw.status(ctx), "200") == 1
    assert kw.method(ctx) == "INVITE"
    assert kw.uri(ctx) is None
    assert kw.proto(ctx) == kw.PROTO_TLS


def test_protocol_constants() -> None:
    assert (kw.PROTO_UDP, kw.PROTO_TCP, kw.PROTO_TLS, kw.PROTO_SCTP, kw.PROTO_WS, kw.PROTO_WSS) == (
        1,
        2,
        3,
        4,
        5,
        6,
    )
    assert (kw.AF_INET, kw.AF_INET6) == (2, 10)


def test_networks() -> None:
    net = kw.network("127.0.0.0", 8)
    assert kw.ip_in("127.1.2.3", net) == 1
    assert kw.ip_in("128.0.0.1", net) == 0
    assert kw.ip_in("::ffff:127.0.0.1", net) == 0  # IPv4-mapped IPv6 is not IPv4
    assert kw.ip_in("not an ip", net) == 0
    assert kw.ip_in(None, net) == 0
    assert kw.ip_in("10.1.2.3", kw.network("10.1.2.99", 24)) == 1  # host bits masked
    net6 = kw.network("2001:db8::", 32)
    assert kw.ip_in("2001:db8:ffff::1", net6) == 1
    assert kw.ip_in("2001:db9::1", net6) == 0
    assert kw.ip_in("10.0.0.1", net6) == 0
    assert kw.ip_in("[2001:db8::1]", kw.network("[2001:db8::1]", 128)) == 1


def test_ip_eq_str() -> None:
    assert kw.ip_eq_str("127.0.0.1", "127.0.0.1") == 1
    assert kw.ip_eq_str("2001:db8::1", "2001:DB8:0:0::1") == 1
    assert kw.ip_eq_str("2001:db8::1", "[2001:db8::1]") == 1
    assert kw.ip_eq_str("127.0.0.1", "::ffff:127.0.0.1") == 0
    assert kw.ip_eq_str("127.0.0.1", "localhost") == 0
    assert kw.ip_eq_str(None, "127.0.0.1") == 0


def test_onsend_keywords() -> None:
    ctx = make_ctx()
    assert (kw.snd_ip(ctx), kw.snd_port(ctx), kw.snd_proto(ctx), kw.snd_af(ctx)) == (None, 0, 0, 0)
    assert (kw.to_ip(ctx), kw.to_port(ctx)) == (None, 0)
    ctx.send_socket = ("tcp", "10.0.0.1", 5060)
    ctx.send_to = ("tcp", "2001:db8::5", 5062)  # type: ignore[attr-defined]
    assert (kw.snd_ip(ctx), kw.snd_port(ctx), kw.snd_proto(ctx), kw.snd_af(ctx)) == (
        "10.0.0.1",
        5060,
        kw.PROTO_TCP,
        kw.AF_INET,
    )
    assert (kw.to_ip(ctx), kw.to_port(ctx)) == ("2001:db8::5", 5062)


def test_parse_socket() -> None:
    assert kw.parse_socket("udp:127.0.0.1:5060") == ("udp", "127.0.0.1", 5060)
    assert kw.parse_socket("127.0.0.1") == (None, "127.0.0.1", None)
    assert kw.parse_socket("tls:[::1]:5061") == ("tls", "::1", 5061)
    assert kw.parse_socket("::1") == (None, "::1", None)
    assert kw.parse_socket("host.example:5080 advertise 1.2.3.4") == (None, "host.example", 5080)
    assert kw.parse_socket("") == (None, "", None)
