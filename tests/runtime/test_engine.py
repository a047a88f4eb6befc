"""The stateless core (:class:`kcc_runtime.engine.Proxy`) driven with bytes, no sockets.

Every expected message below was captured from Kamailio 5.6.3 on loopback running the
same routing logic (``listen=udp:127.0.0.1:5960`` / ``5961``, backends on loopback, a
Python UDP peer on 127.0.0.1:5970 sending the request and recording what came back);
backend ports in the captures were 5981/5982 where the goldens use 5081/5082, and are
substituted.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kcc_runtime import kw
from kcc_runtime.context import EventContext, RequestContext, ScriptExit
from kcc_runtime.engine import Outgoing, Proxy, Socket, _core_hash, forward_branch, sl_to_tag
from kcc_runtime.location import Contact, LocationStore
from kcc_runtime.modules import core, sanity, sl, textops
from kcc_runtime.pv import accessor
from kcc_runtime.router import Config, Router
from kcc_runtime.sip import Request, parse_message

REPO = Path(__file__).resolve().parent.parent.parent
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
CLIENT = ("127.0.0.1", 5970)


def golden_router(stem: str) -> Router:
    """``ROUTER`` of ``golden/<stem>.py``, loaded as tests/test_golden.py does."""
    path = REPO / "golden" / f"{stem}.py"
    namespace: dict[str, Any] = {"__name__": f"golden_{stem}"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    router = namespace["ROUTER"]
    assert isinstance(router, Router)
    return router


def proxy(router: Router, port: int = 5960, **kw: Any) -> Proxy:
    kw.setdefault("allow_dst", LOOPBACK)
    return Proxy(router, [Socket("udp", "127.0.0.1", port)], **kw)


OPTIONS = (
    b"OPTIONS sip:bob@127.0.0.1:5960 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-opt-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: opt-1@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)
#: Kamailio 5.6.3's answer to OPTIONS through the stateless balancer
OPTIONS_404 = (
    b"SIP/2.0 404 Not Found\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-opt-1;rport=5970;received=127.0.0.1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>;tag=60152b0ff5428aeebfc32cf4413dd50d.89d4dae9\r\n"
    b"Call-ID: opt-1@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
    b"Content-Length: 0\r\n\r\n"
)

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5960 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-inv-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: inv-1@example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5970>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
OUR_VIA = (
    b"Via: SIP/2.0/UDP 127.0.0.1:5960;branch=z9hG4bK8749.5b383c171a136eefb322c458fd094dec.0\r\n"
)


def forwarded_invite(backend: int) -> bytes:
    """What Kamailio 5.6.3 sent to the backend for ``INVITE``."""
    return (
        b"INVITE sip:bob@127.0.0.1:%d SIP/2.0\r\n" % backend
        + OUR_VIA
        + b"Via: SIP/2.0/UDP 127.0.0.1:5970;received=127.0.0.1;branch=z9hG4bK-inv-1;rport=5970\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: inv-1@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5970>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def reply(top: bytes, second: bytes, status: bytes = b"180 Ringing") -> bytes:
    return (
        b"SIP/2.0 " + status + b"\r\n" + top + second + b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=b1\r\n"
        b"Call-ID: inv-1@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


CLIENT_VIA = (
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;received=127.0.0.1;branch=z9hG4bK-inv-1;rport=5970\r\n"
)


# -- sl replies ---------------------------------------------------------------------------


def test_options_answered_like_kamailio() -> None:
    p = proxy(golden_router("stateless_rr_var"))
    sock = p.sockets[0]
    out = p.receive(OPTIONS, CLIENT, sock)
    assert out == [Outgoing(OPTIONS_404, "udp", ("127.0.0.1", 5970), sock)]
    assert p.stats["replied"] == 1
    assert p.stats["forwarded"] == 0


def test_reply_layout_compact_names_joined_vias_and_to_params() -> None:
    """Captured from Kamailio 5.6.3 (redirect cfg on 5961): compact names kept, the
    unknown header and ``l:`` left out, ``received`` appended at the end of the top
    Via *line*, the To-tag after the To's own parameters."""
    p = proxy(golden_router("redirect_rr"), port=5961)
    req = (
        b"OPTIONS sip:bob@127.0.0.1:5961 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.2:5970;rport;branch=z9hG4bK-o-1 , SIP/2.0/TCP 10.1.1.1\r\n"
        b"Via: SIP/2.0/UDP 10.2.2.2:5080;branch=z9hG4bK-o-0\r\n"
        b"f: <sip:alice@example.com>;tag=a1\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"i: o-1@example.com\r\n"
        b"X-Other: foo\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"l: 0\r\n\r\n"
    )
    out = p.receive(req, CLIENT, p.sockets[0])
    assert [o.data for o in out] == [
        b"SIP/2.0 404 Not Found\r\n"
        b"v: SIP/2.0/UDP 127.0.0.2:5970;rport=5970;branch=z9hG4bK-o-1 , SIP/2.0/TCP 10.1.1.1"
        b";received=127.0.0.1\r\n"
        b"Via: SIP/2.0/UDP 10.2.2.2:5080;branch=z9hG4bK-o-0\r\n"
        b"f: <sip:alice@example.com>;tag=a1\r\n"
        b"t: <sip:bob@example.com>;tag=2918e2a8edc461249d64e1e5a1d484ad.728749af\r\n"
        b"i: o-1@example.com\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    ]
    assert out[0].dst == ("127.0.0.1", 5970)


def test_reply_without_rport_goes_to_via_port_and_keeps_to_params() -> None:
    p = proxy(golden_router("redirect_rr"), port=5961)
    req = (
        b"OPTIONS sip:bob@127.0.0.1:5961 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.2:5970;branch=z9hG4bK-o-1\r\n"
        b"Record-Route: <sip:rr.example.com;lr>\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com> ; foo=bar \r\n"
        b"Call-ID: o-2@example.com\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    out = p.receive(req, ("127.0.0.1", 40000), p.sockets[0])
    assert [o.data for o in out] == [
        b"SIP/2.0 404 Not Found\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.2:5970;branch=z9hG4bK-o-1;received=127.0.0.1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com> ; foo=bar ;tag=2918e2a8edc461249d64e1e5a1d484ad.7287364f\r\n"
        b"Call-ID: o-2@example.com\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    ]
    # no rport: the source IP, the Via's port (Kamailio's reply_to_via=no)
    assert out[0].dst == ("127.0.0.1", 5970)


def _code_router(code: int, reason: str) -> Router:
    def request_route(ctx: RequestContext) -> int:
        return ctx.action(sl.sl_send_reply(ctx, code, reason))

    config = Config(globals=(("listen", "udp:127.0.0.1:5962"),), modules=("sl",))
    return Router(config=config, request=request_route)


RR_REQUEST = (
    b"OPTIONS sip:bob@127.0.0.1:5962 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-o-1\r\n"
    b"Record-Route: <sip:rr.example.com;lr>\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"Record-Route: <sip:rr2.example.com;lr>\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: o-2@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("code", "reason", "tagged", "rr"),
    [(100, "Trying", False, False), (180, "Ringing", True, True), (200, "OK", True, True)],
)
def test_to_tag_and_record_route_by_code(code: int, reason: str, tagged: bool, rr: bool) -> None:
    """Kamailio 5.6.3: a To-tag from 180 up; Record-Route copied, in place, for 180..299."""
    p = proxy(_code_router(code, reason), port=5962)
    out = p.receive(RR_REQUEST, CLIENT, p.sockets[0])
    tag = b";tag=ab84d7862e436303bea0c1ff706714f2.602e24e6" if tagged else b""
    rr1 = b"Record-Route: <sip:rr.example.com;lr>\r\n" if rr else b""
    rr2 = b"Record-Route: <sip:rr2.example.com;lr>\r\n" if rr else b""
    assert [o.data for o in out] == [
        b"SIP/2.0 %d %s\r\n" % (code, reason.encode())
        + b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-o-1\r\n"
        + rr1
        + b"From: <sip:alice@example.com>;tag=a1\r\n"
        + rr2
        + b"To: <sip:bob@example.com>"
        + tag
        + b"\r\nCall-ID: o-2@example.com\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    ]


def test_server_header_settings() -> None:
    def request_route(ctx: RequestContext) -> int:
        return ctx.action(sl.sl_send_reply(ctx, 404, "Not Found"))

    quiet = Router(config=Config(globals=(("server_signature", 0),)), request=request_route)
    out = proxy(quiet, port=5962).receive(RR_REQUEST, CLIENT, Socket("udp", "127.0.0.1", 5962))
    assert b"Server:" not in out[0].data
    named = Router(
        config=Config(globals=(("server_header", "Server: kcc"),)), request=request_route
    )
    out = proxy(named, port=5962).receive(RR_REQUEST, CLIENT, Socket("udp", "127.0.0.1", 5962))
    assert b"\r\nServer: kcc\r\nContent-Length: 0\r\n\r\n" in out[0].data


def test_sl_to_tag_matches_kamailio() -> None:
    msg = parse_message(OPTIONS.replace(b"opt-1;", b"opt-9;"))
    assert sl_to_tag("60152b0ff5428aeebfc32cf4413dd50d", msg) == (
        "60152b0ff5428aeebfc32cf4413dd50d.0d1cdae9"
    )


# -- redirect ---------------------------------------------------------------------------------

REDIRECT_INVITE = (
    b"INVITE sip:bob@127.0.0.1:5961;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5970;rport;branch=z9hG4bK-r-1\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
    b"To: Bob <sip:bob@example.com>\r\n"
    b"Call-ID: r-1@example.com\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5970>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def redirect_302(backend: int) -> bytes:
    return (
        b"SIP/2.0 302 Moved Temporarily\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5970;rport=5970;branch=z9hG4bK-r-1;received=127.0.0.1\r\n"
        b'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        b"To: Bob <sip:bob@example.com>;tag=2918e2a8edc461249d64e1e5a1d484ad.ce890b3f\r\n"
        b"Call-ID: r-1@example.com\r\n"
        b"CSeq: 7 INVITE\r\n"
        b"Contact: <sip:bob@127.0.0.1:%d;transport=udp>\r\n"
        % backend
        + b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_redirect_answers_302_with_the_next_backend() -> None:
    p = proxy(golden_router("redirect_rr"), port=5961)
    sock = p.sockets[0]
    assert p.receive(REDIRECT_INVITE, CLIENT, sock) == [
        Outgoing(redirect_302(5081), "udp", CLIENT, sock)
    ]
    assert [o.data for o in p.receive(REDIRECT_INVITE, CLIENT, sock)] == [redirect_302(5082)]
    assert p.process.shared.get("i") == 0


def test_ack_to_sl_reply_is_filtered_before_the_script() -> None:
    now = [1000.0]
    p = proxy(golden_router("redirect_rr"), port=5961, clock=lambda: now[0])
    sock = p.sockets[0]
    [out] = p.receive(REDIRECT_INVITE, CLIENT, sock)
    tag = out.data.split(b";tag=")[2].split(b"\r\n")[0]
    ack = (
        b"ACK sip:bob@127.0.0.1:5961;transport=udp SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5970;rport;branch=z9hG4bK-r-1\r\n"
        b'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        b"To: Bob <sip:bob@example.com>;tag=" + tag + b"\r\n"
        b"Call-ID: r-1@example.com\r\n"
        b"CSeq: 7 ACK\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert p.receive(ack, CLIENT, sock) == []
    assert p.stats["sl_filtered_acks"] == 1
    # after sl's 2 s window the ACK goes to the script, whose 404 is not sent to an ACK
    now[0] += 3
    assert p.receive(ack, CLIENT, sock) == []
    assert p.stats["sl_filtered_acks"] == 1
    assert p.stats["replied"] == 1


# -- stateless forwarding -------------------------------------------------------------------


def test_invites_alternate_between_backends_with_kamailio_bytes() -> None:
    p = proxy(golden_router("stateless_rr_var"))
    sock = p.sockets[0]
    first = p.receive(INVITE, CLIENT, sock)
    second = p.receive(INVITE, CLIENT, sock)
    third = p.receive(INVITE, CLIENT, sock)
    assert first == [Outgoing(forwarded_invite(5081), "udp", ("127.0.0.1", 5081), sock)]
    assert second == [Outgoing(forwarded_invite(5082), "udp", ("127.0.0.1", 5082), sock)]
    assert third[0].dst == ("127.0.0.1", 5081)
    assert p.stats["forwarded"] == 3


def test_retransmission_gets_the_same_branch_and_a_new_request_another() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    branch = "z9hG4bK8749.5b383c171a136eefb322c458fd094dec.0"
    assert forward_branch(msg) == branch
    # rport and the source port are not part of it (captured: same branch)
    no_rport = parse_message(INVITE.replace(b";rport", b""))
    assert isinstance(no_rport, Request)
    assert forward_branch(no_rport) == branch
    other = parse_message(INVITE.replace(b"127.0.0.1:5970;branch", b"client.example.com;branch"))
    assert isinstance(other, Request)
    assert forward_branch(other) == "z9hG4bK8749.1040a0d2d6a104359f6cd9eb95262991.0"


def test_forward_branch_is_computed_once_per_message() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    branch = forward_branch(msg)
    # a rewritten R-URI does not change it (the received one is hashed)
    msg.set_uri(b"sip:elsewhere@127.0.0.1:5099")
    assert forward_branch(msg) is branch


def _core_hash_reference(first: bytes, second: bytes, size: int) -> int:
    """Kamailio's ``core_hash`` transcribed byte by byte (signed chars)."""
    h = 0
    for data in (first, second):
        sb = [b - 256 if b > 127 else b for b in data]
        n = len(sb)
        i = 0
        while i <= n - 4:
            v = ((sb[i] << 24) + (sb[i + 1] << 16) + (sb[i + 2] << 8) + sb[i + 3]) & 0xFFFFFFFF
            h = (h + (v ^ (v >> 3))) & 0xFFFFFFFF
            i += 4
        v = 0
        while i < n:
            v = ((v << 8) + sb[i]) & 0xFFFFFFFF
            i += 1
        h = (h + (v ^ (v >> 3))) & 0xFFFFFFFF
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & 0xFFFFFFFF
    return h & (size - 1)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=12), st.sampled_from([0, 1 << 16, 1 << 10]))
def test_core_hash_matches_the_bytewise_transcription(
    first: bytes, second: bytes, size: int
) -> None:
    assert _core_hash(first, second, size) == _core_hash_reference(first, second, size)


def test_received_and_rport_on_the_forwarded_via() -> None:
    """Captured: no rport and the same IP: Via untouched; a name: received and rport
    right after the sent-by; force_rport(): ``;rport=..;received=..`` added there."""
    p = proxy(golden_router("stateless_rr_var"))
    sock = p.sockets[0]
    [out] = p.receive(INVITE.replace(b";rport", b""), ("127.0.0.1", 5971), sock)
    assert b"\r\nVia: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-inv-1\r\n" in out.data
    named = INVITE.replace(b"127.0.0.1:5970;branch", b"client.example.com;branch")
    [out] = p.receive(named, ("127.0.0.1", 5971), sock)
    assert out.data.startswith(
        b"INVITE sip:bob@127.0.0.1:5082 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5960;branch=z9hG4bK8749.1040a0d2d6a104359f6cd9eb95262991.0\r\n"
        b"Via: SIP/2.0/UDP client.example.com;received=127.0.0.1;branch=z9hG4bK-inv-1"
        b";rport=5971\r\n"
    )

    def forced(ctx: RequestContext) -> int:
        ctx.action(core.force_rport(ctx))
        ctx.action(core.rewritehostport(ctx, "127.0.0.1:5981"))
        return ctx.action(core.forward(ctx))

    p = proxy(Router(config=Config(), request=forced))
    register = (
        b"REGISTER sip:127.0.0.1:5960 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.2:5970;branch=z9hG4bK-reg-1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: reg-1@example.com\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    [out] = p.receive(register, CLIENT, p.sockets[0])
    assert out.data == (
        b"REGISTER sip:127.0.0.1:5981 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5960;branch=z9hG4bKb736.0e237d4af78ee72f604502abedc37647.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.2:5970;rport=5970;received=127.0.0.1;branch=z9hG4bK-reg-1\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: reg-1@example.com\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_via_port_left_out_on_5060_and_advertised_address() -> None:
    def route(ctx: RequestContext) -> int:
        ctx.action(core.set_advertised_address(ctx, "proxy.example.net"))
        return ctx.action(core.forward(ctx, "127.0.0.1", 5081))

    sock = Socket("udp", "127.0.0.1", 5060)
    p = Proxy(Router(config=Config(), request=route), [sock], allow_dst=LOOPBACK)
    [out] = p.receive(INVITE, CLIENT, sock)
    assert out.data.split(b"\r\n")[1].startswith(b"Via: SIP/2.0/UDP proxy.example.net;branch=")
    plain = Proxy(golden_router("stateless_rr_var"), [sock], allow_dst=LOOPBACK)
    [out] = plain.receive(INVITE, CLIENT, sock)
    assert out.data.split(b"\r\n")[1].startswith(b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")


def test_forward_twice_builds_two_independent_copies() -> None:
    def route(ctx: RequestContext) -> int:
        ctx.action(core.forward(ctx, "127.0.0.1", 5081))
        return ctx.action(core.forward(ctx, "127.0.0.2", 5082))

    p = proxy(Router(config=Config(), request=route))
    out = p.receive(INVITE, CLIENT, p.sockets[0])
    assert [o.dst for o in out] == [("127.0.0.1", 5081), ("127.0.0.2", 5082)]
    assert out[0].data == out[1].data
    assert out[0].data.count(b"Via: SIP/2.0/UDP 127.0.0.1:5960;") == 1


def test_unresolvable_host_fails_with_kamailio_log(caplog: pytest.LogCaptureFixture) -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        codes.append(core.forward(ctx, "backend.invalid", 5081))
        ctx.action(core.rewritehostport(ctx, "backend.example:5082"))
        codes.append(core.forward(ctx))
        return 1

    asked: list[str] = []

    def resolver(host: str) -> str | None:
        asked.append(host)
        return "127.0.0.9" if host == "backend.example" else None

    p = proxy(Router(config=Config(), request=route), resolver=resolver)
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.core"):
        out = p.receive(INVITE, CLIENT, p.sockets[0])
    assert codes == [-1, 1]
    assert asked == ["backend.invalid", "backend.example"]
    assert [o.dst for o in out] == [("127.0.0.9", 5082)]
    assert "bad host name backend.invalid, dropping packet" in caplog.text


def test_no_socket_for_the_protocol_fails() -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        codes.append(core.forward_tcp(ctx, "127.0.0.1", 5081))
        codes.append(core.forward_udp(ctx, "::1", 5081))
        return 1

    p = proxy(Router(config=Config(), request=route))
    assert p.receive(INVITE, CLIENT, p.sockets[0]) == []
    assert codes == [-1, -1]


# -- the outbound guard ----------------------------------------------------------------------


def test_refused_destination_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        codes.append(core.forward(ctx, "192.0.2.7", 5060))
        return 1

    p = proxy(Router(config=Config(), request=route))
    with caplog.at_level(logging.WARNING, logger="kcc_runtime.core"):
        assert p.receive(INVITE, CLIENT, p.sockets[0]) == []
        assert p.receive(INVITE, CLIENT, p.sockets[0]) == []
    assert codes == [-1, -1]
    assert p.stats["refused_dst"] == 2
    assert p.stats["forwarded"] == 0
    refusals = [r for r in caplog.records if "192.0.2.7:5060" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING


def test_refused_destinations_remembered_are_bounded() -> None:
    # the caller chooses the destination when the cfg relays to the R-URI: an
    # attacker sending to 20,000 distinct refused addresses must not grow the worker
    ports = iter(range(1, 20_001))

    def route(ctx: RequestContext) -> int:
        core.forward(ctx, "192.0.2.7", next(ports))
        return 1

    p = proxy(Router(config=Config(), request=route))
    for _ in range(20_000):
        p.receive(INVITE, CLIENT, p.sockets[0])
    assert p.stats["refused_dst"] == 20_000
    assert 0 < len(p._refused_logged) <= 4096


def test_guard_is_exact_for_ipv6() -> None:
    sock6 = Socket("udp", "::1", 5060)
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        codes.append(core.forward(ctx, "[::1]", 5081))
        codes.append(core.forward(ctx, "[::2]", 5081))
        return 1

    p = Proxy(Router(config=Config(), request=route), [sock6], allow_dst=LOOPBACK)
    out = p.receive(INVITE, ("::1", 5970), sock6)
    assert codes == [1, -1]
    assert [o.dst for o in out] == [("::1", 5081)]
    assert out[0].data.split(b"\r\n")[1].startswith(b"Via: SIP/2.0/UDP [::1];branch=")


# -- replies received ------------------------------------------------------------------------


def test_reply_relayed_to_the_caller_without_our_via() -> None:
    p = proxy(golden_router("stateless_rr_var"))
    sock = p.sockets[0]
    for status in (b"180 Ringing", b"200 OK"):
        out = p.receive(reply(OUR_VIA, CLIENT_VIA, status), ("127.0.0.1", 5081), sock)
        assert out == [Outgoing(reply(b"", CLIENT_VIA, status), "udp", CLIENT, sock)]
    assert p.stats["replies_relayed"] == 2


def test_reply_destination_from_the_second_via() -> None:
    """Captured: rport value wins; received with the Via's port; a joined line loses
    only its first via-parm."""
    p = proxy(golden_router("stateless_rr_var"))
    sock = p.sockets[0]
    via2 = b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-x;rport=5971\r\n"
    [out] = p.receive(reply(OUR_VIA, via2), ("127.0.0.1", 5081), sock)
    assert out.dst == ("127.0.0.1", 5971)
    via2 = b"Via: SIP/2.0/UDP 10.0.0.1:5971;branch=z9hG4bK-x;received=127.0.0.1\r\n"
    [out] = p.receive(reply(OUR_VIA, via2), ("127.0.0.1", 5081), sock)
    assert out.dst == ("127.0.0.1", 5971)
    joined = (
        OUR_VIA.rstrip(b"\r\n")
        + b", SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-inv-1;rport=5970\r\n"
    )
    [out] = p.receive(reply(joined, b""), ("127.0.0.1", 5081), sock)
    assert out.data == reply(
        b"Via: SIP/2.0/UDP 127.0.0.1:5970;branch=z9hG4bK-inv-1;rport=5970\r\n", b""
    )
    assert out.dst == CLIENT


def test_reply_with_one_via_is_dropped() -> None:
    p = proxy(golden_router("stateless_rr_var"))
    assert p.receive(reply(OUR_VIA, b""), ("127.0.0.1", 5081), p.sockets[0]) == []
    assert p.stats["dropped_replies"] == 1


def test_foreign_top_via_relayed_by_default_dropped_with_check_via() -> None:
    """Kamailio 5.6.3 relays a reply whose top Via is not its own unless
    ``check_via=yes`` (measured)."""
    foreign = OUR_VIA.replace(b"127.0.0.1:5960", b"127.0.0.2:5060")
    p = proxy(golden_router("stateless_rr_var"))
    out = p.receive(reply(foreign, CLIENT_VIA), ("127.0.0.1", 5081), p.sockets[0])
    assert [o.data for o in out] == [reply(b"", CLIENT_VIA)]

    strict = Router(config=Config(globals=(("check_via", 1),)))
    p = proxy(strict)
    assert p.receive(reply(foreign, CLIENT_VIA), ("127.0.0.1", 5081), p.sockets[0]) == []
    assert p.stats["dropped_replies"] == 1
    [relayed] = p.receive(reply(OUR_VIA, CLIENT_VIA), ("127.0.0.1", 5081), p.sockets[0])
    assert relayed.dst == CLIENT


def test_reply_route_drop_stops_the_relay() -> None:
    from kcc_runtime.context import ReplyContext, ScriptDrop

    seen: list[int] = []

    def reply_route(ctx: ReplyContext) -> int:
        seen.append(ctx.msg.status)
        if ctx.msg.status == 180:
            raise ScriptDrop
        return 1

    p = proxy(Router(config=Config(), reply=reply_route))
    sock = p.sockets[0]
    assert p.receive(reply(OUR_VIA, CLIENT_VIA), ("127.0.0.1", 5081), sock) == []
    out = p.receive(reply(OUR_VIA, CLIENT_VIA, b"200 OK"), ("127.0.0.1", 5081), sock)
    assert [o.dst for o in out] == [CLIENT]
    assert seen == [180, 200]


# -- the rest of the Engine protocol ---------------------------------------------------------


def test_myself_includes_the_proxy_sockets_and_cfg_aliases() -> None:
    config = Config(globals=(("alias", "proxy.example.net:5090"),))
    p = Proxy(Router(config=config), [Socket("udp", "127.0.0.1", 5960, ("203.0.113.5", 5060))])
    assert p.is_myself("127.0.0.1", 5960, "udp")
    assert not p.is_myself("127.0.0.1", None, "udp")
    assert p.is_myself("203.0.113.5", None, "udp")
    assert p.is_myself("PROXY.example.net", 5090, None)
    assert not p.is_myself("proxy.example.net", None, None)


def test_tm_functions_reach_the_transaction_layer() -> None:
    """The tm entry points are wired (behaviour in tests/runtime/test_tm.py)."""
    codes: list[int] = []

    def route(ctx: RequestContext) -> int:
        engine = ctx.proc.engine
        codes.append(engine.t_relay(ctx, None, None, None))
        codes.append(engine.t_newtran(ctx))  # exists already: -10 (E_SCRIPT), measured
        codes.append(1 if engine.has_transaction(ctx) else 0)
        return 1

    p = proxy(Router(config=Config(), request=route))
    out = p.receive(INVITE, CLIENT, p.sockets[0])
    assert [o.data.split(b"\r\n", 1)[0] for o in out] == [
        b"SIP/2.0 100 trying -- your call is important to us",
        b"INVITE sip:bob@127.0.0.1:5960 SIP/2.0",
    ]
    assert codes == [1, -10, 1]


def test_send_error_reply_is_500() -> None:
    def route(ctx: RequestContext) -> int:
        return ctx.action(sl.sl_reply_error(ctx))

    p = proxy(Router(config=Config(), request=route))
    [out] = p.receive(OPTIONS, CLIENT, p.sockets[0])
    assert out.data.startswith(b"SIP/2.0 500 I'm terribly sorry, server error occurred (1/SL)\r\n")


def test_route_exception_contained_and_nothing_sent() -> None:
    def route(ctx: RequestContext) -> int:
        raise RuntimeError("bug")

    p = proxy(Router(config=Config(), request=route))
    assert p.receive(INVITE, CLIENT, p.sockets[0]) == []
    assert p.stats["errors"] == 0  # contained by Router.run


def test_shared_store_is_the_one_given() -> None:
    from kcc_runtime.shared import SharedStore

    store = SharedStore({"i": 1})
    p = proxy(golden_router("redirect_rr"), port=5961, shared=store)
    assert p.process.shared is store
    [out] = p.receive(REDIRECT_INVITE, CLIENT, p.sockets[0])
    assert b"Contact: <sip:bob@127.0.0.1:5082;transport=udp>" in out.data
    assert store.get("i") == 0


def test_garbage_never_raises() -> None:
    p = proxy(golden_router("stateless_rr_var"))
    for data in (b"", b"\r\n", b"\x00\xff", b"INVITE", b"SIP/2.0 200 OK\r\n\r\n", OPTIONS[:40]):
        assert p.receive(data, CLIENT, p.sockets[0]) == []
    assert p.stats["dropped_bad"] == 6


def test_append_to_reply_headers_go_into_every_sl_reply() -> None:
    # Kamailio 5.6 puts the LUMP_RPL_HDR text after the copied headers, before Server,
    # and keeps it for every later reply to the same request
    def request_route(ctx: RequestContext) -> int:
        ctx.action(textops.append_to_reply(ctx, "X-Why: test\r\n"))
        ctx.action(sl.sl_send_reply(ctx, 299, "First"))
        return ctx.action(sl.sl_send_reply(ctx, 404, "Second"))

    config = Config(globals=(("listen", "udp:127.0.0.1:5962"),), modules=("sl", "textops"))
    p = proxy(Router(config=config, request=request_route))
    out = p.receive(OPTIONS, CLIENT, p.sockets[0])
    assert len(out) == 2
    for sent in out:
        head = sent.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[-3:] == [
            b"X-Why: test",
            b"Server: kamailio (5.6.3 (x86_64/linux))",
            b"Content-Length: 0",
        ]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (
            INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 OPTIONS"),
            b"CSeq method does not match request method",
        ),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: -1 INVITE"), b"CSeq number is illegal"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 4294967297 INVITE"), b"CSeq number is illegal"),
        (INVITE.replace(b"Content-Length: 0", b"Content-Length: 20"), b"Content-Length mis-match"),
    ],
    ids=["cseq-method", "cseq-negative", "cseq-too-large", "content-length-long"],
)
def test_a_cfg_with_sanity_gets_the_broken_request_in_its_script(
    broken: bytes, reason: bytes
) -> None:
    """Kamailio's core routes these (measured with the stock cfg): its script's
    sanity_check answers them. A cfg without sanity gets the core's RFC 4475 400."""
    seen: list[str | None] = []

    def route(ctx: RequestContext) -> int:
        seen.append(str(accessor("cs").get(ctx)))
        if sanity.sanity_check(ctx, 17895, 7) < 0:
            raise ScriptExit
        return 1

    loose = proxy(Router(config=Config(modules=("sl", "sanity")), request=route))
    [reply] = loose.receive(broken, CLIENT, loose.sockets[0])
    assert reply.data.startswith(b"SIP/2.0 400 " + reason + b"\r\n")
    assert len(seen) == 1 and loose.stats["dropped_bad"] == 0
    strict = proxy(Router(config=Config(modules=("sl",)), request=route))
    out = strict.receive(broken, CLIENT, strict.sockets[0])
    assert len(seen) == 1 and strict.stats["dropped_bad"] == 1
    assert [o.data.split(b"\r\n")[0][:12] for o in out] in ([], [b"SIP/2.0 400 "])


def test_htable_expired_event_route_reads_the_expired_item() -> None:
    """``event_route[htable:expired:t]`` runs for each item the timer expires, with
    ``$shtrecord(key)``/``$shtrecord(value)`` naming it."""
    seen: list[tuple[object, object]] = []

    def expired(ctx: EventContext) -> int:
        seen.append(
            (accessor("shtrecord", "key").get(ctx), accessor("shtrecord", "value").get(ctx))
        )
        return 1

    config = Config(
        modules=("htable",), modparams=(("htable", "htable", "t=>size=4;autoexpire=1;"),)
    )
    p = proxy(Router(config=config, event={"htable:expired:t": expired}))
    table = p.process.htables.table("t")
    assert table is not None
    table.set("caller", 7)
    p.on_timer(time.time() + 5)
    assert seen == [("caller", 7)]
    assert p.process.htables.expired_record is None


def test_module_timers_run_on_the_engine_timer() -> None:
    """A module's timer (``ModuleExports.timers``: nathelper's keepalives) is built
    for the engine and run from :meth:`Proxy.on_timer`, its sends through the guard."""
    config = Config(
        modules=("usrloc", "nathelper"),
        modparams=(("nathelper", "natping_interval", 30), ("usrloc", "nat_bflag", 5)),
    )
    p = proxy(Router(config=config))
    assert [type(t).__name__ for t in p.module_timers] == ["NatPinger"]
    store = LocationStore(":memory:")
    store.insert(
        "location", Contact("r1", "bob", None, "sip:bob@127.0.0.1:5099", 0.0, cflags=1 << 5)
    )
    store.insert(
        "location", Contact("r2", "eve", None, "sip:eve@10.9.9.9:5099", 0.0, cflags=1 << 5)
    )
    p.process.location = store
    now = time.time()
    assert p.on_timer(now) == []
    out = p.on_timer(now + 30)
    # the NATed contact (no sipping flag) gets the 4-byte keepalive
    assert [(o.data, o.dst) for o in out] == [(b"\0\0\0\0", ("127.0.0.1", 5099))]
    assert proxy(Router(config=Config(modules=("usrloc",)))).module_timers == []


def test_myself_knows_the_sockets_given_on_the_command_line() -> None:
    """A cfg without ``listen=`` (the stock one) run with ``--listen``: ``uri ==
    myself`` and ``src_ip == myself`` know that socket wherever the message came in
    (Kamailio's ``-l`` adds to its socket list too)."""
    seen: list[int] = []

    def route(ctx: RequestContext) -> int:
        seen.append(kw.uri_is_myself(ctx, "sip:alice@127.0.0.1:5960"))
        seen.append(kw.uri_is_myself(ctx, "sip:alice@127.0.0.1:5961"))
        seen.append(kw.ip_is_myself(ctx, "127.0.0.1"))
        return 1

    p = proxy(Router(config=Config(), request=route))
    reply_socket = Socket("udp", "127.0.0.2", 40001)
    p.receive(INVITE, CLIENT, reply_socket)  # not the listening socket
    assert seen == [1, 0, 1]
