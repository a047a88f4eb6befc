"""The module functions generated code calls: real message bytes in, exact return
codes, context state and serialized bytes out.

Expected values for the R-URI family, ``is_method``, ``record_route``,
``loose_route``, ``maxfwd`` and ``append_hf``/``remove_hf`` were measured on
Kamailio 5.6 on loopback (a config logging ``$ru``/``$du``/return codes and
forwarding to a local socket); the cases below repeat those inputs.
"""

from __future__ import annotations

import logging
import re
import typing
from pathlib import Path

import pytest
from kcc_runtime import values as v
from kcc_runtime.context import (
    BranchContext,
    Context,
    Engine,
    FailureContext,
    ReplyContext,
    RequestContext,
)
from kcc_runtime.modules import (
    MODULES,
    cfgutils,
    core,
    corex,
    kex,
    maxfwd,
    rr,
    siputils,
    sl,
    textops,
    tm,
    xhttp,
    xlog,
)
from kcc_runtime.sip import Request

from tests.runtime.fake_engine import FakeEngine, make_ctx

REPO = Path(__file__).resolve().parent.parent.parent


def request(
    ruri: str = "sip:u@h.example",
    method: str = "OPTIONS",
    extra: str = "",
    to_tag: str = "",
    cseq_method: str | None = None,
) -> bytes:
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1;rport\r\n"
        "From: <sip:a@example.com>;tag=ft1\r\n"
        f"To: <sip:b@example.com>{to_tag}\r\n"
        "Call-ID: c1\r\n"
        f"CSeq: 1 {cseq_method or method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


REPLY = (
    b"SIP/2.0 486 Busy Here\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2\r\n"
    b"From: <sip:a@example.com>;tag=ft1\r\n"
    b"To: <sip:b@example.com>;tag=tt\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def ruri_after(ruri: str, fn: typing.Callable[[Context], int]) -> tuple[int, str | None, bytes]:
    """Run ``fn`` on a request to ``ruri``: its code, ``$ru`` and the first line."""
    ctx = make_ctx(request(ruri))
    rc = fn(ctx)
    first_line = ctx.msg.serialize().split(b"\r\n", 1)[0]
    return rc, core.current_ruri(ctx), first_line


# -- the R-URI family (measured on Kamailio 5.6) -------------------------------------

RURI_CASES = [
    ("sip:ab@h.example;x=1", lambda c: core.strip(c, 3), "sip:h.example;x=1"),
    ("sip:h.example", lambda c: core.strip(c, 3), "sip:h.example"),
    (
        "sip:abcdef:pw@h.example:5070;x=1?h=v",
        lambda c: core.strip(c, 3),
        "sip:def:pw@h.example:5070;x=1?h=v",
    ),
    ("sip:abcdef@h.example", lambda c: core.strip_tail(c, 3), "sip:abc@h.example"),
    ("sip:ab@h.example", lambda c: core.strip_tail(c, 3), "sip:h.example"),
    ("sip:h.example;u=1", lambda c: core.prefix(c, "99"), "sip:99@h.example;u=1"),
    ("sip:12@h.example", lambda c: core.prefix(c, "99"), "sip:9912@h.example"),
    ("tel:+1234;phone-context=x", lambda c: core.prefix(c, "99"), "tel:99+1234;phone-context=x"),
    (
        "sip:u:p@h.example:5070;transport=udp",
        lambda c: core.rewritehostport(c, "[2001:db8::1]:5080"),
        "sip:u:p@[2001:db8::1]:5080;transport=udp",
    ),
    (
        "sip:u@h.example:5070;transport=udp",
        lambda c: core.rewritehost(c, "[2001:db8::1]"),
        "sip:u@[2001:db8::1]:5070;transport=udp",
    ),
    (
        "tel:+1234;x=y",
        lambda c: core.sethost(c, "[2001:db8::1]"),
        "sip:+1234;x=y@[2001:db8::1];user=phone",
    ),
    (
        "sip:u@h.example:5070;transport=udp",
        lambda c: core.rewriteport(c, "5099"),
        "sip:u@h.example:5099;transport=udp",
    ),
    ("sip:u@[::1];transport=udp", lambda c: core.setp(c, "5099"), "sip:u@[::1]:5099;transport=udp"),
    (
        "sip:u@h.example:5070;transport=udp",
        lambda c: core.setport(c, ""),
        "sip:u@h.example;transport=udp",
    ),
    ("sip:u:pw@h.example:5070", lambda c: core.rewriteuser(c, "bob"), "sip:bob:pw@h.example:5070"),
    ("sip:h.example:5070", lambda c: core.setu(c, "bob"), "sip:bob@h.example:5070"),
    ("sip:u:pw@h.example:5070", lambda c: core.setup(c, "bob:pw"), "sip:bob:pw@h.example:5070"),
    ("sip:u:pw@h.example", lambda c: core.setuser(c, ""), "sip:h.example"),
    (
        "sip:u@h:1;a=b;transport=tcp;c=d",
        lambda c: core.sethostporttrans(c, "h.example:7000"),
        "sip:u@h.example:7000;a=b;c=d",
    ),
    (
        "sip:u@h:1;transport=tcp",
        lambda c: core.sethpt(c, "h.example:7000"),
        "sip:u@h.example:7000",
    ),
    ("sip:u@h:1", lambda c: core.seturi(c, "sip:x@y"), "sip:x@y"),
]


@pytest.mark.parametrize(("ruri", "fn", "expected"), RURI_CASES)
def test_ruri_family_matches_kamailio(
    ruri: str, fn: typing.Callable[[Context], int], expected: str
) -> None:
    rc, new, first_line = ruri_after(ruri, fn)
    assert (rc, new) == (1, expected)
    assert first_line == f"OPTIONS {expected} SIP/2.0".encode()


def test_rewriteport_on_tel_uri_is_an_error() -> None:
    assert ruri_after("tel:+1234", lambda c: core.rewriteport(c, "5099")) == (
        -1,
        "tel:+1234",
        b"OPTIONS tel:+1234 SIP/2.0",
    )


def test_revert_uri_restores_the_received_uri_and_bytes() -> None:
    ctx = make_ctx(request("sip:orig@h"))
    assert core.seturi(ctx, "sip:x@y") == 1
    assert core.revert_uri(ctx) == 1
    assert ctx.new_uri is None
    assert core.current_ruri(ctx) == "sip:orig@h"
    assert ctx.msg.serialize() == request("sip:orig@h")


def test_rewrite_of_an_unparsable_uri_fails() -> None:
    ctx = make_ctx(request("sip:orig@h"))
    assert core.seturi(ctx, "garbage") == 1
    assert core.rewritehost(ctx, "z") == -1
    assert core.current_ruri(ctx) == "garbage"
    assert core.seturi(ctx, "sip:a b") == -1
    assert core.current_ruri(ctx) == "garbage"


def test_ruri_functions_in_a_reply_fail() -> None:
    ctx = make_ctx(REPLY, ReplyContext)
    assert core.rewritehost(ctx, "x") == -1
    assert core.seturi(ctx, "sip:x") == -1
    assert core.uri_host(ctx) == ""


def test_uri_host_and_port() -> None:
    ctx = make_ctx(request("sip:u@h.example:5070;transport=tcp"))
    assert (core.uri_host(ctx), core.uri_port(ctx)) == ("h.example", 5070)
    ctx = make_ctx(request("sip:u@[2001:db8::1]"))
    assert (core.uri_host(ctx), core.uri_port(ctx)) == ("[2001:db8::1]", 0)


# -- flags ------------------------------------------------------------------------


def test_message_flags(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(request())
    assert core.setflag(ctx, 0) == 1
    assert core.setflag(ctx, 31) == 1
    assert ctx.flags == 0x80000001
    assert core.isflagset(ctx, 31) == 1
    assert core.isflagset(ctx, 5) == -1
    assert core.resetflag(ctx, 31) == 1
    assert ctx.flags == 1
    with caplog.at_level(logging.ERROR):
        assert core.setflag(ctx, 32) == -1
        assert core.isflagset(ctx, -1) == -1
        assert core.resetflag(ctx, 40) == -1
    assert ctx.flags == 1
    assert caplog.records[0].getMessage() == "flag 32 is out of range (0..31)"


def test_script_and_branch_flags() -> None:
    ctx = make_ctx(request())
    assert kex.setsflag(ctx, 3) == 1
    assert (ctx.sflags, kex.issflagset(ctx, 3), kex.issflagset(ctx, 4)) == (8, 1, -1)
    assert kex.resetsflag(ctx, 3) == 1
    assert ctx.sflags == 0
    assert kex.setsflag(ctx, 32) == -1
    assert kex.setbflag(ctx, 2) == 1
    assert ctx.bflags == 4
    assert kex.isbflagset(ctx, 2, 0) == 1
    assert kex.setbflag(ctx, 1, 1) == -1  # no branch 1 yet
    assert corex.append_branch(ctx, "sip:b1@x") == 1
    assert ctx.branches[0].bflags == 4  # copied from branch 0
    assert kex.setbflag(ctx, 7, 1) == 1
    assert ctx.branches[0].bflags == 0x84
    assert kex.isbflagset(ctx, 7, 1) == 1
    assert kex.isbflagset(ctx, 7) == -1
    assert kex.resetbflag(ctx, 2, 1) == 1
    assert ctx.branches[0].bflags == 0x80
    assert kex.resetbflag(ctx, 2) == 1
    assert ctx.bflags == 0
    assert kex.isbflagset(ctx, 32, 0) == -1
    assert kex.isbflagset(ctx, 1, 2) == -1


# -- core switches and forwarding --------------------------------------------------


def test_switches_and_sockets() -> None:
    ctx = make_ctx(request())
    assert core.force_rport(ctx) == 1
    assert core.add_rport(ctx) == 1
    assert core.set_forward_no_connect(ctx) == 1
    assert core.set_reply_no_connect(ctx) == 1
    assert core.set_forward_close(ctx) == 1
    assert core.set_reply_close(ctx) == 1
    assert ctx.msg_flags == {
        "force_rport",
        "set_forward_no_connect",
        "set_reply_no_connect",
        "set_forward_close",
        "set_reply_close",
    }
    assert core.set_advertised_address(ctx, "203.0.113.9") == 1
    assert core.set_advertised_port(ctx, 5080) == 1
    assert (ctx.advertised_address, ctx.advertised_port) == ("203.0.113.9", 5080)
    assert core.force_send_socket(ctx, "tcp:127.0.0.1:5070") == 1
    assert ctx.send_socket == ("tcp", "127.0.0.1", 5070)
    assert core.force_send_socket(ctx, "[::1]") == 1
    assert ctx.send_socket == ("udp", "::1", 5060)
    assert core.force_send_socket(ctx, "tls:h") == 1
    assert ctx.send_socket == ("tls", "h", 5061)
    assert core.force_send_socket(ctx, "udp:h:99999") == -1
    assert core.force_send_socket(ctx, "") == -1
    assert ctx.send_socket == ("tls", "h", 5061)


def test_forward_forms_reach_the_engine() -> None:
    engine = FakeEngine(codes={"forward": -1})
    ctx = make_ctx(request(), engine=engine)
    assert core.forward(ctx) == -1
    engine.codes.clear()
    assert core.forward(ctx, "10.0.0.1") == 1
    assert core.forward(ctx, "10.0.0.1", 5070) == 1
    assert core.forward_udp(ctx, "a") == 1
    assert core.forward_tcp(ctx, "b", 1) == 1
    assert core.forward_tls(ctx, "c") == 1
    assert core.forward_sctp(ctx, "d", 2) == 1
    assert engine.calls == [
        ("forward", None, None, None),
        ("forward", None, "10.0.0.1", None),
        ("forward", None, "10.0.0.1", 5070),
        ("forward", "udp", "a", None),
        ("forward", "tcp", "b", 1),
        ("forward", "tls", "c", None),
        ("forward", "sctp", "d", 2),
    ]


def test_log(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(request())
    with caplog.at_level(1, logger="kcc_runtime.log"):
        assert core.log(ctx, "quiet") == 1
        assert core.log(ctx, -1, "loud") == 1
        assert core.log(ctx, 1, "notice") == 1
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (5, "quiet"),
        (logging.ERROR, "loud"),
        (logging.INFO + 5, "notice"),
    ]


# -- sl and tm ------------------------------------------------------------------


def test_sl_replies() -> None:
    engine = FakeEngine()
    ctx = make_ctx(request(), RequestContext, engine)
    assert sl.sl_send_reply(ctx, 404, "Not Here") == 1
    assert sl.sl_reply(ctx, 200, "OK") == 1
    assert sl.sl_send_reply(ctx, 99, "bad") == -1
    assert sl.sl_reply_error(ctx) == 1
    assert sl.send_reply(ctx, 486, "Busy") == 1
    engine.transaction = True
    assert sl.send_reply(ctx, 487, "Gone") == 1
    assert engine.calls == [
        ("send_reply", 404, "Not Here"),
        ("send_reply", 200, "OK"),
        ("send_error_reply",),
        ("has_transaction",),
        ("send_reply", 486, "Busy"),
        ("has_transaction",),
        ("t_reply", 487, "Gone"),
    ]


def test_tm_functions_reach_the_engine() -> None:
    engine = FakeEngine(codes={"t_relay": 0, "t_check_trans": -1, "t_is_canceled": -1})
    ctx = make_ctx(request(), RequestContext, engine)
    assert tm.t_relay(ctx) == 0
    assert tm.t_relay(ctx, "10.0.0.2", 5080) == 0
    assert tm.t_relay_to_udp(ctx) == 0
    assert tm.t_relay_to_tcp(ctx, "h", 1) == 0
    assert tm.t_relay_to_tls(ctx) == 0
    assert tm.t_relay_to_sctp(ctx) == 0
    assert tm.t_newtran(ctx) == 1
    assert tm.t_check_trans(ctx) == -1
    assert tm.t_reply(ctx, 500, "Oops") == 1
    assert tm.t_reply(ctx, 700, "no") == -1
    assert tm.t_is_canceled(ctx) == -1
    assert tm.t_branch_timeout(ctx) == 1
    assert tm.t_any_timeout(ctx) == 1
    assert tm.t_set_fr(ctx, 10000) == 1
    assert tm.t_set_fr(ctx, 10000, 2000) == 1
    assert tm.t_set_fr(ctx, -1) == -1
    assert engine.calls == [
        ("t_relay", None, None, None),
        ("t_relay", None, "10.0.0.2", 5080),
        ("t_relay", "udp", None, None),
        ("t_relay", "tcp", "h", 1),
        ("t_relay", "tls", None, None),
        ("t_relay", "sctp", None, None),
        ("t_newtran",),
        ("t_check_trans",),
        ("t_reply", 500, "Oops"),
        ("t_is_canceled",),
        ("t_branch_timeout",),
        ("t_any_timeout",),
        ("t_set_fr", 10000, 0),
        ("t_set_fr", 10000, 2000),
    ]


def test_t_on_routes_are_armed_on_the_context() -> None:
    def failure_route_RETRY(ctx: FailureContext) -> int:
        return 1

    def branch_route_B(ctx: BranchContext) -> int:
        return 1

    def onreply_route_R(ctx: ReplyContext) -> int:
        return 1

    ctx = make_ctx(request(), RequestContext)
    assert tm.t_on_failure(ctx, failure_route_RETRY) == 1
    assert tm.t_on_branch(ctx, branch_route_B) == 1
    assert tm.t_on_reply(ctx, onreply_route_R) == 1
    assert (ctx.on_failure, ctx.on_branch, ctx.on_reply) == (
        failure_route_RETRY,
        branch_route_B,
        onreply_route_R,
    )


def test_t_check_status_in_failure_route() -> None:
    engine = FakeEngine(status=408)
    ctx = make_ctx(request("sip:u@h", "INVITE"), FailureContext, engine)
    assert tm.t_check_status(ctx, v.compile_posix_ere("^(408|5[0-9][0-9])$")) == 1
    assert tm.t_check_status(ctx, v.compile_posix_ere("0")) == 1  # unanchored search
    assert tm.t_check_status(ctx, v.compile_posix_ere("^486$")) == -1
    engine.status = None
    assert tm.t_check_status(ctx, v.compile_posix_ere(".")) == -1


def test_t_check_status_in_reply_route_uses_the_reply() -> None:
    engine = FakeEngine(status=0)
    ctx = make_ctx(REPLY, ReplyContext, engine)
    assert tm.t_check_status(ctx, v.compile_posix_ere("^486$")) == 1
    assert tm.t_check_status(ctx, v.compile_posix_ere("^0$")) == -1


# -- rr -------------------------------------------------------------------------


def test_record_route_as_kamailio_writes_it() -> None:
    ctx = make_ctx(request(method="INVITE"))
    assert rr.record_route(ctx) == 1
    out = ctx.msg.serialize()
    assert out.split(b"\r\n")[1] == b"Record-Route: <sip:127.0.0.1:5060;lr;ftag=ft1>"
    assert rr.record_route(ctx) == -1  # a second attempt is an error


def test_record_route_params_transport_and_modparams() -> None:
    from kcc_runtime.context import Received

    ctx = make_ctx(
        request(method="INVITE", extra="Record-Route: <sip:p1;lr>\r\n"),
        received=Received("192.0.2.1", 5062, "2001:db8::5", 5070, "tcp"),
        modparams={("rr", "append_fromtag"): 0, ("rr", "enable_full_lr"): 1},
    )
    assert rr.record_route(ctx, ";foo=bar") == 1
    lines = ctx.msg.serialize().split(b"\r\n")
    assert lines[6:8] == [
        b"Record-Route: <sip:[2001:db8::5]:5070;transport=tcp;lr=on;foo=bar>",
        b"Record-Route: <sip:p1;lr>",
    ]


def lr_ctx(ruri: str, routes: str, to_tag: str = ";tag=tt") -> tuple[Context, FakeEngine]:
    engine = FakeEngine(myself={("127.0.0.1", 5060), ("127.0.0.1", None)})
    extra = "".join(f"Route: {r}\r\n" for r in routes.split("\n") if r)
    ctx = make_ctx(request(ruri, "BYE", extra, to_tag), RequestContext, engine)
    return ctx, engine


def routes_of(ctx: Context) -> list[bytes]:
    return [line for line in ctx.msg.serialize().split(b"\r\n") if line.startswith(b"Route:")]


LOOSE_CASES = [
    # (R-URI, Route lines, To tag, code, $du, $ru, Route lines after): Kamailio 5.6
    ("sip:u@h.example", "", ";tag=tt", -1, None, "sip:u@h.example", []),
    ("sip:u@h.example", "<sip:127.0.0.1:5060;lr>", "", -3, None, "sip:u@h.example", []),
    ("sip:u@h.example", "<sip:127.0.0.1:5060;lr>", ";tag=tt", 1, None, "sip:u@h.example", []),
    (
        "sip:u@h.example",
        "<sip:127.0.0.1:5060;lr>, <sip:p2.example;lr>\n<sip:p3.example;lr>",
        ";tag=tt",
        1,
        "sip:p2.example;lr",
        "sip:u@h.example",
        [b"Route: <sip:p2.example;lr>", b"Route: <sip:p3.example;lr>"],
    ),
    (
        "sip:u@h.example",
        "<sip:p2.example;lr>",
        "",
        1,
        "sip:p2.example;lr",
        "sip:u@h.example",
        [b"Route: <sip:p2.example;lr>"],
    ),
    (
        "sip:127.0.0.1:5060",
        "<sip:p2.example;lr>, <sip:last@p9.example>",
        ";tag=tt",
        1,
        "sip:p2.example;lr",
        "sip:last@p9.example",
        [b"Route: <sip:p2.example;lr>"],
    ),
    (
        "sip:127.0.0.1:5060",
        "<sip:p2.example;lr>\n<sip:last@p9.example>",
        ";tag=tt",
        1,
        "sip:p2.example;lr",
        "sip:last@p9.example",
        [b"Route: <sip:p2.example;lr>"],
    ),
    (
        "sip:u@h.example",
        "<sip:127.0.0.1:5060;lr;r2=on>,<sip:127.0.0.1;lr;r2=on>, <sip:p4;lr>",
        ";tag=tt",
        1,
        "sip:p4;lr",
        "sip:u@h.example",
        [b"Route: <sip:p4;lr>"],
    ),
    (
        "sip:u@h.example",
        "<sip:127.0.0.1:5060;lr>\n<sip:p2.example>",
        ";tag=tt",
        1,
        None,
        "sip:p2.example",
        [b"Route: <sip:u@h.example>"],
    ),
    (
        "sip:u@h.example",
        "<sip:127.0.0.1:5060;lr>,<sip:p2.example>,<sip:p3;lr>",
        ";tag=tt",
        1,
        None,
        "sip:p2.example",
        [b"Route: <sip:p3;lr>", b"Route: <sip:u@h.example>"],
    ),
]


@pytest.mark.parametrize(("ruri", "routes", "tag", "code", "du", "ru", "after"), LOOSE_CASES)
def test_loose_route_matches_kamailio(
    ruri: str, routes: str, tag: str, code: int, du: str | None, ru: str, after: list[bytes]
) -> None:
    ctx, _ = lr_ctx(ruri, routes, tag)
    assert rr.loose_route(ctx) == code
    assert (ctx.dst_uri, core.current_ruri(ctx), routes_of(ctx)) == (du, ru, after)


def test_loose_route_bad_route_header() -> None:
    ctx, _ = lr_ctx("sip:u@h", "<sip:127.0.0.1:5060;lr")
    assert rr.loose_route(ctx) == -1
    assert ctx.dst_uri is None


# -- siputils, textops ------------------------------------------------------------


def test_siputils() -> None:
    ctx = make_ctx(request(to_tag=";tag=x"))
    assert (siputils.has_totag(ctx), siputils.is_request(ctx), siputils.is_reply(ctx)) == (
        1,
        1,
        -1,
    )
    ctx = make_ctx(request())
    assert siputils.has_totag(ctx) == -1
    ctx = make_ctx(REPLY, ReplyContext)
    assert (siputils.has_totag(ctx), siputils.is_request(ctx), siputils.is_reply(ctx)) == (
        1,
        -1,
        1,
    )


@pytest.mark.parametrize(
    ("method", "methods", "code"),
    [
        ("INVITE", "INVITE|ack|Bye", 1),
        ("ACK", "INVITE|ack|Bye", 1),
        ("bye", "INVITE|ack|Bye", 1),
        ("Invite", "INVITE|ack|Bye", 1),
        ("OPTIONS", "INVITE|ack|Bye", -1),
        ("FOO", "foo", 1),
        ("Foo", "foo", 1),
        ("PUBLISH", "PUBLISH", 1),
        ("PUBLISH", "PUBLISHX", -1),
    ],
)
def test_is_method(method: str, methods: str, code: int) -> None:
    assert textops.is_method(make_ctx(request(method=method)), methods) == code


def test_is_method_on_reply_uses_cseq() -> None:
    ctx = make_ctx(REPLY, ReplyContext)
    assert textops.is_method(ctx, "INVITE") == 1
    assert textops.is_method(ctx, "BYE|CANCEL") == -1


def test_header_edits_as_kamailio_does_them() -> None:
    ctx = make_ctx(request(extra="x-a: 0\r\nX-Case: ahf\r\n"))
    assert textops.append_hf(ctx, "X-A: 1\r\n") == 1
    assert textops.append_hf(ctx, "X-B: 2\r\n", "CSeq") == 1
    assert textops.insert_hf(ctx, "X-C: 3\r\n") == 1
    assert textops.insert_hf(ctx, "X-D: 4\r\n", "call-id") == 1
    assert textops.append_hf(ctx, "X-E: 5\r\n", "X-None") == -1
    assert textops.remove_hf(ctx, "X-Case") == 1
    assert textops.remove_hf(ctx, "X-A") == 1
    assert textops.remove_hf(ctx, "X-Missing") == -1
    assert ctx.msg.serialize() == (
        b"OPTIONS sip:u@h.example SIP/2.0\r\n"
        b"X-C: 3\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1;rport\r\n"
        b"From: <sip:a@example.com>;tag=ft1\r\n"
        b"To: <sip:b@example.com>\r\n"
        b"X-D: 4\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"X-B: 2\r\n"
        b"Content-Length: 0\r\n"
        b"X-A: 1\r\n"
        b"\r\n"
    )
    assert textops.is_present_hf(ctx, "x-case") == 1  # reads the received message
    assert textops.is_present_hf(ctx, "f") == 1  # compact form of From
    assert textops.is_present_hf(ctx, "X-C") == -1


def test_search_has_line_anchors() -> None:
    ctx = make_ctx(request(extra="X-Thing: yes\r\n"))
    assert textops.search(ctx, v.compile_posix_ere("^x-thing: YES")) == 1
    assert textops.search(ctx, v.compile_posix_ere("YES\r$")) == 1
    assert textops.search(ctx, v.compile_posix_ere("YES$")) == -1  # the CR comes first
    assert textops.search(ctx, v.compile_posix_ere("\\\\A")) == -1
    assert textops.search(ctx, v.compile_posix_ere("^OPTIONS sip:")) == 1
    assert textops.search(ctx, v.compile_posix_ere("yes.Content")) == -1
    assert textops.search(ctx, v.compile_posix_ere("^Nothing")) == -1


# -- xlog, cfgutils, corex, xhttp, maxfwd -----------------------------------------


def test_xlog_levels(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(request())
    with caplog.at_level(logging.DEBUG, logger="kcc_runtime.xlog"):
        assert xlog.xlog(ctx, "plain\n") == 1
        assert xlog.xlog(ctx, "L_INFO", "info") == 1
        assert xlog.xlog(ctx, "L_LOCAL0", "L_WARN", "facility") == 1
        assert xlog.xlog(ctx, "2", "numeric info") == 1
        assert xlog.xlog(ctx, "L_NOPE", "unknown level") == 1
        assert xlog.xdbg(ctx, "d") == 1
        assert xlog.xinfo(ctx, "i") == 1
        assert xlog.xnotice(ctx, "n") == 1
        assert xlog.xwarn(ctx, "w") == 1
        assert xlog.xerr(ctx, "e") == 1
        assert xlog.xbug(ctx, "b") == 1
        assert xlog.xcrit(ctx, "c") == 1
        assert xlog.xalert(ctx, "a") == 1
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "plain\n"),
        (logging.INFO, "info"),
        (logging.WARNING, "facility"),
        (logging.INFO, "numeric info"),
        (logging.ERROR, "unknown level"),
        (logging.DEBUG, "d"),
        (logging.INFO, "i"),
        (logging.INFO + 5, "n"),
        (logging.WARNING, "w"),
        (logging.ERROR, "e"),
        (logging.CRITICAL, "b"),
        (logging.CRITICAL, "c"),
        (logging.CRITICAL, "a"),
    ]


def test_locks() -> None:
    ctx = make_ctx(request())
    assert cfgutils.lock(ctx, "x") == 1
    assert cfgutils.lock(ctx, "x") == 1
    assert cfgutils.unlock(ctx, "x") == 1
    assert ctx.proc.shared.held("x")
    assert cfgutils.unlock(ctx, "x") == 1
    assert not ctx.proc.shared.held("x")
    assert cfgutils.unlock(ctx, "x") == 1  # Kamailio does not check either


def test_append_branch() -> None:
    ctx = make_ctx(request("sip:r@h"))
    ctx.dst_uri = "sip:proxy"
    ctx.bflags = 6
    assert corex.append_branch(ctx, "sip:b1@x", "0.5") == 1
    assert corex.append_branch(ctx) == 1
    assert [(b.uri, b.dst_uri, b.q, b.bflags) for b in ctx.branches] == [
        ("sip:b1@x", "sip:proxy", 500, 6),
        ("sip:r@h", "sip:proxy", -1, 6),
    ]
    after: tuple[str | None, int] = (ctx.dst_uri, ctx.bflags)
    assert after == (None, 0)
    assert corex.append_branch(ctx, "sip:b2@x", "1.5") == -1
    assert len(ctx.branches) == 2
    for _ in range(9):
        assert corex.append_branch(ctx, "sip:more@x") == 1
    assert corex.append_branch(ctx, "sip:one-too-many@x") == -1
    assert len(ctx.branches) == 11


@pytest.mark.parametrize(
    ("text", "q"),
    [("0", 0), ("1", 1000), ("0.5", 500), ("0.123", 123), ("1.000", 1000), ("0.", 0)],
)
def test_str2q(text: str, q: int) -> None:
    assert corex.str2q(text) == q


@pytest.mark.parametrize("text", ["", "2", "0.1234", "1.5", "x", "0.a", "-0"])
def test_str2q_rejects(text: str) -> None:
    assert corex.str2q(text) is None


def test_xhttp_reply() -> None:
    engine = FakeEngine()
    ctx = make_ctx(request(), engine=engine)
    assert xhttp.xhttp_reply(ctx, 200, "OK", "text/plain", "hi") == 1
    assert engine.calls == [("xhttp_reply", 200, "OK", "text/plain", "hi")]


def mf_ctx(header: str) -> Context:
    return make_ctx(request(extra=header + "\r\n" if header else ""))


@pytest.mark.parametrize(
    ("header", "code", "line", "lt9"),
    [
        ("Max-Forwards: 10", 1, b"Max-Forwards:  9", -1),
        ("Max-Forwards: 200", 1, b"Max-Forwards:  70", -1),
        ("Max-Forwards: 0", -1, b"Max-Forwards: 0", 1),
        ("Max-Forwards: 1", 1, b"Max-Forwards: 0", 1),
        ("", 2, b"Max-Forwards: 10", -2),
        ("Max-Forwards: x", -2, b"Max-Forwards: x", -3),
    ],
)
def test_maxfwd_matches_kamailio(header: str, code: int, line: bytes, lt9: int) -> None:
    ctx = mf_ctx(header)
    assert maxfwd.mf_process_maxfwd_header(ctx, 10) == code
    lines = ctx.msg.serialize().split(b"\r\n")
    assert line in lines
    if not header:
        assert lines[1] == line  # inserted first
    assert maxfwd.is_maxfwd_lt(ctx, 9) == lt9
    assert maxfwd.maxfwd_at_least(ctx, 9) == lt9


def test_maxfwd_aliases_and_limits() -> None:
    ctx = mf_ctx("Max-Forwards: 70")
    assert maxfwd.maxfwd_process(ctx, 10) == 1
    assert b"Max-Forwards: 69" in ctx.msg.serialize()
    ctx = make_ctx(request(extra="Max-Forwards: 30\r\n"), modparams={("maxfwd", "max_limit"): 16})
    assert maxfwd.process_maxfwd(ctx, 10) == 1
    assert b"Max-Forwards: 16" in ctx.msg.serialize()
    assert maxfwd.process_maxfwd(ctx, 256) == -1


# -- the tables -------------------------------------------------------------------


def example_calls() -> set[str]:
    names: set[str] = set()
    for cfg in sorted((REPO / "examples").glob("*.cfg")):
        names |= set(re.findall(r"\b([a-z_0-9]+)\(", cfg.read_text(encoding="utf-8")))
    return names


def test_every_function_the_examples_call_is_implemented() -> None:
    called = example_calls()
    found: set[str] = set()
    for exports in MODULES.values():
        for cmd in exports.cmds:
            if cmd.name in called and cmd.name != "route":
                found.add(cmd.name)
                assert cmd.impl is not None, f"{exports.name}.{cmd.name}"
    assert {"t_relay", "sl_send_reply", "rewritehostport", "xlog", "lock", "loose_route"} <= found


def test_impls_resolve_and_are_named_for_the_generator() -> None:
    checked = 0
    for exports in MODULES.values():
        for cmd in exports.cmds:
            impl = cmd.impl
            if impl is None:
                continue
            hints = typing.get_type_hints(impl)
            assert hints["return"] is int
            assert impl.__name__ in (cmd.name, cmd.name + "_")
            module = __import__(f"kcc_runtime.modules.{exports.name}", fromlist=["x"])
            assert getattr(module, impl.__name__) is impl
            params = list(hints)[:-1]
            first = hints[params[0]]
            assert isinstance(first, type)
            assert issubclass(first, Context)
            assert len(params) - 1 >= cmd.arity
            checked += 1
    assert checked > 100


def test_fake_engine_is_an_engine() -> None:
    engine: Engine = FakeEngine()
    assert isinstance(make_ctx(request(), engine=engine).msg, Request)  # type: ignore[arg-type]
