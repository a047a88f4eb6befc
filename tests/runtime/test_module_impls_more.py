"""sanity, the textops substitution family, kex's destination-URI helpers: real
message bytes in, exact codes, replies and serialized bytes out.

Every expected value below was measured on Kamailio 5.6.3 on loopback: a cfg calling
the function on a request selected by an ``X-T`` header, logging the code with
``xlog`` and forwarding the result to a local socket (or capturing the reply).
"""

from __future__ import annotations

import pytest
from kcc_runtime import values as v
from kcc_runtime.context import Context, Process, Received
from kcc_runtime.modules import MODULES, core, kex, sanity, textops
from kcc_runtime.router import Config
from kcc_runtime.sip import parse_message

from tests.runtime.fake_engine import FakeEngine, make_ctx

BODY = b"v=0\r\no=alice 1 1 IN IP4 1.2.3.4\r\ns=-\r\nb=AS:64\r\n"


def invite(ruri: str = "sip:bob@h.example", body: bytes = BODY, extra: str = "") -> bytes:
    head = (
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:50612;branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@Example.com>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 INVITE\r\n"
        f"{extra}"
        "X-T: a\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def options(extra: str = "", cseq: str = "1 OPTIONS", method: str = "OPTIONS") -> bytes:
    return (
        f"{method} sip:u@h.example SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:50612;branch=z9hG4bK1\r\n"
        "From: <sip:a@example.com>;tag=1\r\n"
        "To: <sip:b@example.com>\r\n"
        "Call-ID: ok1\r\n"
        f"CSeq: {cseq}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


# -- sanity_check ----------------------------------------------------------------------

SANITY_CASES = [
    # (message, checks (None: defaults), uri checks, reply sent or None)
    (options(), None, None, None),
    (options(cseq="1 INVITE"), None, None, (400, "CSeq method does not match request method")),
    (options(cseq="1 options"), None, None, (400, "CSeq method does not match request method")),
    (options(cseq="99999999999 OPTIONS"), None, None, (400, "CSeq number is illegal")),
    (options(cseq="4294967296 OPTIONS"), None, None, None),
    (options("Expires: abc\r\n"), None, None, (400, "Expires value is illegal")),
    (options("Expires: 99999999999\r\n"), None, None, (400, "Expires value is illegal")),
    (options("Expires: 3600\r\nExpires: x\r\n"), None, None, None),
    (options("Proxy-Require: foo, baz\r\n"), None, None, (420, "Bad Proxy Require Extension")),
    (options("Proxy-Require: bar,foo\r\n"), None, None, None),
    (options("Proxy-Require: FOO\r\n"), None, None, (420, "Bad Proxy Require Extension")),
    (options("Proxy-Require: foo\r\nProxy-Require: zz\r\n"), None, None, None),
    (options("Authorization: Basic abc\r\n"), None, None, "no reply"),
    (
        options(
            'Authorization: Digest username="", realm="r", nonce="n", uri="sip:u@h", '
            'response="0123"\r\n'
        ),
        None,
        None,
        (400, "Auth Empty User"),
    ),
    (
        options(
            'Authorization: Digest username="u", realm="r", nonce="", uri="sip:u@h", '
            'response="0123"\r\n'
        ),
        None,
        None,
        (400, "Auth Empty Nonce"),
    ),
    (
        options(
            'Authorization: Digest username="u", realm="r", nonce="n", uri="sip:u@h", '
            'response="0123"\r\n'
        ),
        None,
        None,
        None,
    ),
    (options(cseq="1 INVITE", method="ACK"), None, None, "no reply"),
    (options("Contact: <sip:a@[::1>\r\n"), 1024, 15, (400, "Bad Contact URI")),
    (
        options().replace(b"To: <sip:b@example.com>", b"To: <sip:b@example.com>;tag=1;tag=2"),
        4096,
        None,
        (400, "Many To Tag Params"),
    ),
    (
        options().replace(b"OPTIONS sip:u@h.example", b"OPTIONS http://u@h.example"),
        None,
        None,
        (400, "Bad Request URI"),
    ),
    (
        options().replace(b"OPTIONS sip:u@h.example", b"OPTIONS tel:+12345"),
        None,
        None,
        None,
    ),
]


@pytest.mark.parametrize(("data", "checks", "uri_checks", "reply"), SANITY_CASES)
@pytest.mark.parametrize("autodrop", [1, 0])
def test_sanity_check_matches_kamailio(
    data: bytes,
    checks: int | None,
    uri_checks: int | None,
    reply: tuple[int, str] | str | None,
    autodrop: int,
) -> None:
    engine = FakeEngine()
    params: dict[tuple[str, str], int | str] = {
        ("sanity", "proxy_require"): "foo, bar",
        ("sanity", "autodrop"): autodrop,
    }
    ctx = make_ctx(data, engine=engine, modparams=params)
    args = [a for a in (checks, uri_checks) if a is not None]
    rc = sanity.sanity_check(ctx, *args)
    if reply is None:
        assert (rc, engine.calls) == (1, [])
        return
    assert rc == (0 if autodrop else -1)
    if reply == "no reply":
        assert engine.calls == []
    else:
        assert engine.calls == [("send_reply", *reply)]


def test_sanity_420_carries_unsupported_for_every_reply() -> None:
    ctx = make_ctx(
        options("Proxy-Require: foo, baz\r\n"),
        modparams={("sanity", "proxy_require"): "foo, bar"},
    )
    assert sanity.sanity_check(ctx) == 0
    assert textops.reply_lumps(ctx) == ["Unsupported: baz\r\n"]
    assert ctx.reply_lumps == ["Unsupported: baz\r\n"]  # type: ignore[attr-defined]


def test_sanity_content_length_against_the_datagram() -> None:
    data = options().replace(b"Content-Length: 0", b"Content-Length: 2") + b"hello"
    engine = FakeEngine()
    ctx = make_ctx(data, engine=engine)
    assert sanity.sanity_check(ctx) == 0
    assert engine.calls == [("send_reply", 400, "Content-Length mis-match")]


@pytest.mark.parametrize(("checks", "uri_checks"), [(0, 7), (32768, 7), (16384, 16)])
def test_sanity_check_ranges(checks: int, uri_checks: int) -> None:
    engine = FakeEngine()
    ctx = make_ctx(options(), engine=engine)
    assert sanity.sanity_check(ctx, checks, uri_checks) == -1
    assert engine.calls == []


def test_sanity_noreply_keeps_the_reply_for_sanity_reply() -> None:
    engine = FakeEngine()
    params: dict[tuple[str, str], int | str] = {("sanity", "noreply"): 1}
    ctx = make_ctx(options(cseq="1 INVITE"), engine=engine, modparams=params)
    assert sanity.sanity_check(ctx) == 0
    assert engine.calls == []
    assert sanity.sanity_reply(ctx) == 1
    assert engine.calls == [("send_reply", 400, "CSeq method does not match request method")]
    clean = make_ctx(options(), engine=engine, modparams=params)
    assert sanity.sanity_reply(clean) == 1
    assert engine.calls[-1] == ("send_reply", 500, "Server Sanity Failure")


# -- subst family ---------------------------------------------------------------------


def after(data: bytes, fn: object, *args: object) -> tuple[int, bytes]:
    ctx = make_ctx(data)
    rc = fn(ctx, *args)  # type: ignore[operator]
    return rc, ctx.msg.serialize()


def test_subst_on_headers_with_groups_and_flags() -> None:
    rc, out = after(invite(), textops.subst, r"/^(To|From):(.*)example\.com(.*)$/\1:\2EX.ORG\3/ig")
    assert rc == 1
    assert out == invite().replace(b"alice@example.com", b"alice@EX.ORG").replace(
        b"bob@Example.com", b"bob@EX.ORG"
    )


def test_subst_first_match_only_and_not_the_request_line() -> None:
    rc, out = after(invite(), textops.subst, "/example/EXA/")
    assert (rc, out) == (1, invite().replace(b"alice@example", b"alice@EXA"))


@pytest.mark.parametrize("expr", ["/nomatch/x/", "/x*/y/", "/HELLO/bye/gi", "ab", "/a/b/q"])
def test_subst_failures(expr: str) -> None:
    assert after(invite(), textops.subst, expr) == (-1, invite())


def test_subst_replacement_escapes_pvs_and_content_length() -> None:
    rc, out = after(invite(), textops.subst, r"/b=(.*)$/b=[\u][$rU][\0]\$x\n/")
    assert rc == 1
    # POSIX ``.`` matches the CR and ``$`` (REG_NEWLINE) stops before the LF
    new_body = BODY.replace(b"b=AS:64\r", b"b=[sip:bob@h.example][bob][b=AS:64\r]$x\n")
    assert out == invite(body=new_body)
    assert b"Content-Length: 78\r\n" in out


def test_subst_body_global() -> None:
    rc, out = after(invite(), textops.subst_body, "/a/AA/g")
    assert (rc, out) == (1, invite(body=BODY.replace(b"alice", b"AAlice")))
    assert after(invite(body=b""), textops.subst_body, "/a/b/") == (-1, invite(body=b""))
    rc, out = after(invite(), textops.subst_body, "/^o=(.*) /o=$fU /")
    assert (rc, out) == (1, invite(body=BODY.replace(b"alice 1 1 IN IP4 ", b"alice ")))


@pytest.mark.parametrize(
    ("ruri", "fn", "expr", "code", "new"),
    [
        (
            "sip:123@h.example;x=1",
            textops.subst_uri,
            r"/^sip:([0-9]+)@(.*)$/sip:3463\1@\2;orig=\0/i",
            1,
            "sip:3463123@h.example;x=1;orig=sip:123@h.example;x=1",
        ),
        ("tel:+1234", textops.subst_uri, "/^tel:(.*)$/x/", 1, "x"),
        (
            "sip:13642@h.example",
            textops.subst_user,
            r"/(.*)3642$/99\13642/",
            1,
            "sip:9913642@h.example",
        ),
        ("sip:h.example", textops.subst_user, "/^$/abc/", -1, "sip:h.example"),
        ("sip:1222@h.example", textops.subst_user, "/2/X/g", 1, "sip:1XXX@h.example"),
    ],
)
def test_subst_uri_and_user(ruri: str, fn: object, expr: str, code: int, new: str) -> None:
    ctx = make_ctx(invite(ruri))
    assert fn(ctx, expr) == code  # type: ignore[operator]
    assert core.current_ruri(ctx) == new
    assert ctx.msg.serialize().split(b"\r\n", 1)[0] == f"INVITE {new} SIP/2.0".encode()


def test_replace_family() -> None:
    assert after(invite(), textops.replace, v.compile_posix_ere("example"), "EX") == (
        1,
        invite().replace(b"alice@example", b"alice@EX"),
    )
    assert after(invite(), textops.replace_all, v.compile_posix_ere("EXAMPLE"), "e") == (
        1,
        invite().replace(b"@example.com", b"@e.com").replace(b"@Example.com", b"@e.com"),
    )
    assert after(invite(), textops.replace, v.compile_posix_ere("^To"), "T") == (
        1,
        invite().replace(b"\r\nTo:", b"\r\nT:"),
    )
    assert after(invite(), textops.replace, v.compile_posix_ere("zzz"), "T") == (-1, invite())
    assert after(invite(), textops.search_append, v.compile_posix_ere("Call-ID: c"), "XX") == (
        1,
        invite().replace(b"Call-ID: c1", b"Call-ID: cXX1"),
    )


def test_search_body_and_has_body() -> None:
    ctx = make_ctx(invite())
    assert textops.search_body(ctx, v.compile_posix_ere("^o=al")) == 1
    assert textops.search_body(ctx, v.compile_posix_ere("^v=1")) == -1
    assert textops.has_body(ctx) == 1
    assert textops.has_body(ctx, "application/sdp") == 1
    assert textops.has_body(ctx, "text/plain") == -1
    empty = make_ctx(invite(body=b""))
    assert (textops.has_body(empty), textops.search_body(empty, v.compile_posix_ere("."))) == (
        -1,
        -1,
    )


def test_header_names_by_regex() -> None:
    data = invite(extra="X-Other: 1\r\n")
    rc, out = after(data, textops.remove_hf_re, v.compile_posix_ere("^X-"))
    assert (rc, out) == (1, data.replace(b"X-Other: 1\r\n", b"").replace(b"X-T: a\r\n", b""))
    assert after(data, textops.remove_hf_re, v.compile_posix_ere("^Nope")) == (-1, data)
    assert after(data, textops.remove_hf_re, v.compile_posix_ere("-ID")) == (
        1,
        data.replace(b"Call-ID: c1\r\n", b""),
    )
    ctx = make_ctx(data)
    assert textops.is_present_hf_re(ctx, v.compile_posix_ere("^x-t")) == 1
    assert textops.is_present_hf_re(ctx, v.compile_posix_ere("ll-I")) == 1
    assert textops.is_present_hf_re(ctx, v.compile_posix_ere("^Nope")) == -1


def test_append_to_reply() -> None:
    ctx = make_ctx(invite())
    assert textops.append_to_reply(ctx, "X-A: 1\r\n") == 1
    assert textops.append_to_reply(ctx, "X-B: bob\r\n") == 1
    assert textops.reply_lumps(ctx) == ["X-A: 1\r\n", "X-B: bob\r\n"]
    assert textops.append_to_reply(ctx, "") == -1


# -- kex ------------------------------------------------------------------------------


def test_dst_uri_functions() -> None:
    ctx = make_ctx(invite())
    assert kex.isdsturiset(ctx) == -1
    assert kex.setdsturi(ctx, "sip:127.0.0.1:50613") == 1
    assert (kex.isdsturiset(ctx), ctx.dst_uri) == (1, "sip:127.0.0.1:50613")
    assert kex.resetdsturi(ctx) == 1
    assert (kex.isdsturiset(ctx), ctx.dst_uri) == (-1, None)
    assert (kex.setdsturi(ctx, "garbage"), ctx.dst_uri) == (1, "garbage")
    assert (kex.setdsturi(ctx, ""), ctx.dst_uri) == (1, None)


def test_pv_printf() -> None:
    from kcc_runtime import pv

    ctx = make_ctx(invite())
    assert kex.pv_printf(ctx, pv.accessor("var", "z"), "u=bob m=INVITE") == 1
    assert ctx.proc.vars["z"] == "u=bob m=INVITE"


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("sip:proxy.example", 1),
        ("sip:other.example", -1),
        ("sip:127.0.0.1:50611", 1),
        ("127.0.0.1", 1),
        ("sip:127.0.0.1:5999", -1),
        ("proxy.example:5060", -1),
    ],
)
def test_is_myself_matches_kamailio(uri: str, code: int) -> None:
    config = Config(globals=(("listen", "udp:127.0.0.1:50611"), ("alias", "proxy.example:5060")))
    proc = Process(engine=FakeEngine(), config=config)
    ctx = Context(proc, parse_message(invite()), Received("127.0.0.1", 50612, "127.0.0.1", 50611))
    assert kex.is_myself(ctx, uri) == code


def test_is_myself_without_config_asks_the_engine() -> None:
    engine = FakeEngine(myself={("h.example", 5070)})
    ctx = make_ctx(invite(), engine=engine)
    assert kex.is_myself(ctx, "sip:h.example:5070;transport=tcp") == 1
    assert engine.calls == [("is_myself", "h.example", 5070, "tcp")]


def test_new_impls_are_registered() -> None:
    wanted = {
        "sanity": {"sanity_check", "sanity_reply"},
        "textops": {
            "subst",
            "subst_uri",
            "subst_user",
            "subst_body",
            "replace",
            "replace_all",
            "search_body",
            "search_append",
            "has_body",
            "remove_hf_re",
            "is_present_hf_re",
            "append_to_reply",
        },
        "kex": {"setdsturi", "resetdsturi", "isdsturiset", "pv_printf", "is_myself"},
    }
    for module, names in wanted.items():
        for cmd in MODULES[module].cmds:
            if cmd.name in names:
                assert cmd.impl is not None, f"{module}.{cmd.name}"
