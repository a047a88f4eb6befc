"""siputils URI/number checks, the pv module's PV-state functions and textops'
string tests: real message bytes in, exact codes, R-URIs and serialized bytes out.

Every expected value below was measured on Kamailio 5.6.3 on loopback (cfgs
``/tmp/f1/su.cfg`` and ``/tmp/s5/f2/p.cfg``): the function called on a request
selected by an ``X-T`` header, the code and ``$ru`` logged with ``xlog`` and the
request forwarded to a local socket.
"""

from __future__ import annotations

import pytest
from kcc_runtime import pv
from kcc_runtime.context import Context, Process, Received
from kcc_runtime.exports import ModuleExports
from kcc_runtime.modules import pv as pvmod
from kcc_runtime.modules import siputils, textops
from kcc_runtime.router import Config
from kcc_runtime.sip import parse_message

from tests.runtime.fake_engine import FakeEngine, make_ctx


def invite(ruri: str = "sip:bob@h.example", vias: int = 1) -> bytes:
    extra = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2\r\n" * (vias - 1)
    return (
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:50612;branch=z9hG4bK1\r\n"
        f"{extra}"
        "From: <sip:+491234@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 INVITE\r\n"
        "X-N: +123456789012345\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def reply(rr: str | None) -> bytes:
    route = f"Record-Route: {rr}\r\n" if rr is not None else ""
    return (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:50611;branch=z9hG4bK1\r\n"
        f"{route}"
        "From: <sip:a@example.com>;tag=1\r\n"
        "To: <sip:b@example.com>;tag=2\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ruri_line(ctx: Context) -> bytes:
    return ctx.msg.serialize().split(b"\r\n", 1)[0]


# -- uri_param / add_uri_param ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ruri", "args", "code"),
    [
        ("sip:u@h.example;x=1;lr", ("x",), -1),
        ("sip:u@h.example;x=1;lr", ("x", "1"), 1),
        ("sip:u@h.example;x=1;lr", ("x", "2"), -1),
        ("sip:u@h.example;x=1;lr", ("lr",), 1),
        ("sip:u@h.example;x=1;lr", ("lr", ""), 1),
        ("sip:u@h.example;x=1;lr", ("X",), -1),
        ("sip:u@h.example;x=1;lr", ("nope",), -1),
        ("sip:bob@h.example;x=a;y=1", ("x", "A"), -1),
        ("sip:bob@h.example;x=a;y=1", ("y",), -1),
        ("sip:bob@h.example;x=a;y=1", ("y", ""), -1),
    ],
)
def test_uri_param_matches_kamailio(ruri: str, args: tuple[str, ...], code: int) -> None:
    assert siputils.uri_param(make_ctx(invite(ruri)), *args) == code


def test_uri_param_on_a_reply_is_false() -> None:
    assert siputils.uri_param(make_ctx(reply(None)), "lr") == -1


def test_add_uri_param_appends_and_serializes() -> None:
    ctx = make_ctx(invite("sip:bob@h.example;x=1"))
    assert siputils.add_uri_param(ctx, "nat=yes") == 1
    assert ctx.new_uri == "sip:bob@h.example;x=1;nat=yes"
    assert ruri_line(ctx) == b"INVITE sip:bob@h.example;x=1;nat=yes SIP/2.0"


def test_add_uri_param_empty_is_a_noop() -> None:
    ctx = make_ctx(invite("sip:bob@h.example;x=1"))
    assert siputils.add_uri_param(ctx, "") == 1
    assert ctx.new_uri is None
    assert ruri_line(ctx) == b"INVITE sip:bob@h.example;x=1 SIP/2.0"


def test_add_uri_param_works_on_the_rewritten_ruri() -> None:
    ctx = make_ctx(invite())
    pv.accessor("ru").set(ctx, "sip:new@n.example")
    assert siputils.add_uri_param(ctx, "p") == 1
    assert ctx.new_uri == "sip:new@n.example;p"


def test_add_uri_param_keeps_headers_last() -> None:
    # Kamailio 5.6.3 corrupts this R-URI (see add_uri_param's docstring); kcc inserts
    # the parameter before the headers.
    ctx = make_ctx(invite("sip:u@h.example;x=1?h=v"))
    assert siputils.add_uri_param(ctx, "nat=yes") == 1
    assert ruri_line(ctx) == b"INVITE sip:u@h.example;x=1;nat=yes?h=v SIP/2.0"


def test_add_uri_param_on_a_reply_fails() -> None:
    assert siputils.add_uri_param(make_ctx(reply(None)), "nat=yes") == -1


# -- tel2sip ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "host", "code", "out"),
    [
        ("tel:+1-23;x=y", "sip.example", 1, "sip:+123;x=y@sip.example;user=phone"),
        ("TEL:+1(2).3", "sip.example", 1, "sip:+123@sip.example;user=phone"),
        ("tel:+1-2;a=b;c", "h.example:5070", 1, "sip:+12;a=b;c@h.example:5070;user=phone"),
        ("sip:a@b", "sip.example", 2, "unset"),
        ("tel:", "sip.example", -1, "unset"),
    ],
)
def test_tel2sip_matches_kamailio(uri: str, host: str, code: int, out: str) -> None:
    ctx = make_ctx(invite())
    target = pv.accessor("var", "o")
    target.set(ctx, "unset")
    assert siputils.tel2sip(ctx, uri, host, target) == code
    assert target.get(ctx) == out


# -- E.164 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("+12", 1),
        ("+123456789012345", 1),
        ("+1234567890123456", -1),
        ("+1", -1),
        ("12345", -1),
        ("+12a", -1),
        (12345, -1),
        (None, -1),
    ],
)
def test_is_e164(value: str | int | None, code: int) -> None:
    ctx = make_ctx(invite())
    if value is not None:
        pv.accessor("var", "x").set(ctx, value)
    target = pv.accessor("var", "x") if value is not None else pv.accessor("avp", "nope")
    assert siputils.is_e164(ctx, target) == code


def test_is_e164_reads_the_ruri_user_and_a_header() -> None:
    ctx = make_ctx(invite("sip:+12@h.example"))
    assert siputils.is_e164(ctx, pv.accessor("rU")) == 1
    assert siputils.is_e164(ctx, pv.accessor("hdr", "X-N")) == 1


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("sip:+1234567@h.example", 1),
        ("sip:+491234@example.com", 1),
        ("sip:bob@h.example", -1),
        ("tel:+1234567", -1),
        ("sip:+1234567:pw@h", -1),
        ("+1234567@h", -1),
    ],
)
def test_is_uri_user_e164(uri: str, code: int) -> None:
    ctx = make_ctx(invite())
    pv.accessor("var", "x").set(ctx, uri)
    assert siputils.is_uri_user_e164(ctx, pv.accessor("var", "x")) == code


def test_is_uri_user_e164_of_from() -> None:
    assert siputils.is_uri_user_e164(make_ctx(invite()), pv.accessor("fu")) == 1


# -- cmp_uri / cmp_aor -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "code"),
    [
        ("sip:A@h.example;transport=udp", "sip:A@H.example;Transport=UDP", 1),
        ("sip:a@h.example", "sip:A@h.example", -1),
        ("sip:a@h.example", "sip:a@h.example:5060", -1),
        ("sip:a@h.example;x=1", "sip:a@h.example", 1),
        ("sip:a@h.example;user=phone", "sip:a@h.example", -1),
        ("garbage", "sip:a@h.example", -2),
        ("sip:a@h.example;ttl=1", "sip:a@h.example", -1),
        ("sip:a@h;transport=tcp", "sip:a@h", 1),
        ("sip:a@h;x=A", "sip:a@h;x=a", 1),
        ("sip:a@h;X=a", "sip:a@h;x=a", 1),
        ("sip:a@h", "sips:a@h", -1),
        ("sip:a:p@h", "sip:a@h", -1),
        ("sip:a@h;maddr=x", "sip:a@h;y=1", 1),
        ("sip:a@h;x=1;y", "sip:a@h;y;x=1", 1),
        ("sip:a@h;method=INVITE", "sip:a@h;lr", 1),
        ("sip:a@h", "sip:a@h?X=1", 1),
        ("sip:a@h;x=1", "sip:a@h;x=2", -1),
    ],
)
def test_cmp_uri_matches_kamailio(a: str, b: str, code: int) -> None:
    assert siputils.cmp_uri(make_ctx(invite()), a, b) == code


@pytest.mark.parametrize(
    ("a", "b", "code"),
    [
        ("sip:a@h.example;x=1", "sip:a@H.example:5060", 1),
        ("sip:a@h.example", "sip:A@h.example", -1),
        ("sip:a@h.example", "sips:a@h.example", 1),
        ("sips:a@h", "sip:a@h:5061", -1),
        ("sips:a@h", "sips:a@h:5060", 1),
        ("garbage", "sip:a@h", -2),
        ("sip:a:p@h", "sip:a@h", 1),
        ("sip:h", "sip:h:5060", 1),
        ("tel:+12", "tel:+12", 1),
    ],
)
def test_cmp_aor_matches_kamailio(a: str, b: str, code: int) -> None:
    assert siputils.cmp_aor(make_ctx(invite()), a, b) == code


# -- is_first_hop ----------------------------------------------------------------------


def test_is_first_hop_request_counts_vias() -> None:
    assert siputils.is_first_hop(make_ctx(invite())) == 1
    assert siputils.is_first_hop(make_ctx(invite(vias=2))) == -1


def test_is_first_hop_counts_comma_joined_vias() -> None:
    data = invite().replace(
        b"branch=z9hG4bK1\r\n", b"branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"
    )
    assert siputils.is_first_hop(make_ctx(data)) == -1


def _reply_ctx(rr: str | None, src: str = "192.0.2.7", port: int = 5060) -> Context:
    config = Config(globals=(("listen", "udp:127.0.0.1:50611"), ("alias", "proxy.example")))
    proc = Process(engine=FakeEngine(), config=config)
    return Context(proc, parse_message(reply(rr)), Received(src, port, "127.0.0.1", 50611))


@pytest.mark.parametrize(
    ("rr", "src", "mode", "code"),
    [
        (None, "192.0.2.7", 0, 1),
        ("<sip:127.0.0.1:50611;lr>", "192.0.2.7", 0, 1),
        # the same IP from another port is no loop (measured on 5.6.3, test_nat.py)
        ("<sip:127.0.0.1:50611;lr>", "127.0.0.1", 0, 1),
        ("<sip:127.0.0.1:50611;lr>", "127.0.0.1", 1, 1),
        ("<sip:proxy.example;lr>", "192.0.2.7", 0, -1),
        ("<sip:proxy.example;lr>", "192.0.2.7", 1, 1),
        ("<sip:10.9.9.9;lr>", "192.0.2.7", 1, -1),
        ("<sip:127.0.0.1;lr>", "192.0.2.7", 0, -1),
    ],
)
def test_is_first_hop_reply(rr: str | None, src: str, mode: int, code: int) -> None:
    assert siputils.is_first_hop(_reply_ctx(rr, src), mode) == code


def test_is_first_hop_reply_from_the_record_route_address_is_a_loop() -> None:
    """Kamailio's loop test: the reply's source IP, port and protocol all equal the
    top Record-Route URI's (port 5060 and UDP when the URI names none)."""
    assert siputils.is_first_hop(_reply_ctx("<sip:127.0.0.1:50611;lr>", "127.0.0.1", 50611)) == -1
    assert siputils.is_first_hop(_reply_ctx("<sip:127.0.0.1:50611;lr>", "127.0.0.1", 50611), 1) == 1


def test_is_first_hop_reply_knows_the_engines_listen_sockets() -> None:
    """A cfg without ``listen=`` (the stock one: the socket comes from the command
    line) and a reply received on a worker's reply socket (several workers): the top
    Record-Route names the listen socket, which only the engine knows. Kamailio
    (one socket, its cfg's or its ``-l``) calls that a first hop: measured with the
    stock cfg, WITH_NAT, ``-l udp:127.0.0.1:PORT``, tests/integration/test_stock_nat.py
    (bob's 180 and 200 get ``set_contact_alias()``)."""
    proc = Process(engine=FakeEngine(myself={("127.0.0.1", 50611)}), config=Config())
    ctx = Context(
        proc,
        parse_message(reply("<sip:127.0.0.1:50611;lr;nat=yes>")),
        Received("127.0.0.1", 41234, "127.0.0.1", 40000),
    )
    assert siputils.is_first_hop(ctx) == 1
    other = Process(engine=FakeEngine(myself={("127.0.0.1", 50612)}), config=Config())
    ctx = Context(
        other,
        parse_message(reply("<sip:127.0.0.1:50611;lr;nat=yes>")),
        Received("127.0.0.1", 41234, "127.0.0.1", 40000),
    )
    assert siputils.is_first_hop(ctx) == -1


# -- pv module -------------------------------------------------------------------------


def test_pv_unset_var_reads_zero_and_stays_set() -> None:
    ctx = make_ctx(invite())
    x = pv.accessor("var", "x")
    x.set(ctx, 5)
    assert pvmod.pv_isset(ctx, x) == 1
    assert pvmod.pv_unset(ctx, x) == 1
    assert x.get(ctx) == 0
    assert pvmod.pv_isset(ctx, x) == 1


def test_pv_unset_avp_makes_it_null() -> None:
    ctx = make_ctx(invite())
    a = pv.accessor("avp", "a")
    a.set(ctx, 1)
    assert pvmod.pv_unset(ctx, a) == 1
    assert a.get(ctx) is None
    assert pvmod.pv_isset(ctx, a) == -1


def test_pv_unset_ruri_fails_and_keeps_it() -> None:
    ctx = make_ctx(invite())
    assert pvmod.pv_unset(ctx, pv.accessor("ru")) == -1
    assert pv.accessor("ru").get(ctx) == "sip:bob@h.example"


def test_pv_isset_message_pvs() -> None:
    ctx = make_ctx(invite())
    assert pvmod.pv_isset(ctx, pv.accessor("ru")) == 1
    assert pvmod.pv_isset(ctx, pv.accessor("hdr", "Nope")) == -1


@pytest.mark.parametrize(
    ("value", "is_int", "int_", "str_", "null", "not_empty"),
    [
        (5, 1, 1, -1, -1, -1),
        (0, 1, 1, -1, -1, -1),
        ("5", -1, -1, 1, -1, 1),
        ("a", -1, -1, 1, -1, 1),
        ("", -1, -1, 1, -1, -1),
        (None, -1, -1, -1, 1, -1),
    ],
)
def test_pv_type_checks(
    value: int | str | None, is_int: int, int_: int, str_: int, null: int, not_empty: int
) -> None:
    ctx = make_ctx(invite())
    target = pv.accessor("avp", "v")
    if value is not None:
        target.set(ctx, value)
    assert pvmod.is_int(ctx, target) == is_int
    assert pvmod.typeof(ctx, target, "int") == int_
    assert pvmod.typeof(ctx, target, "str") == str_
    assert pvmod.typeof(ctx, target, "STR") == str_
    assert pvmod.typeof(ctx, target, "null") == null
    assert pvmod.typeof(ctx, target, "xyz") == -1
    assert pvmod.not_empty(ctx, target) == not_empty


def test_typeof_unassigned_var_is_int_and_ruri_is_str() -> None:
    ctx = make_ctx(invite("sip:123@h.example"))
    assert pvmod.typeof(ctx, pv.accessor("var", "nope"), "int") == 1
    assert pvmod.typeof(ctx, pv.accessor("ru"), "str") == 1
    assert pvmod.is_int(ctx, pv.accessor("rU")) == -1


# -- textops strings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "a", "b", "code"),
    [
        (textops.starts_with, "sip:bob@h.example;x=1", "sip:bob", 1),
        (textops.starts_with, "sip:bob@h.example;x=1", "SIP:bob", -1),
        (textops.starts_with, "abc", "", 1),
        (textops.starts_with, "", "", 1),
        (textops.ends_with, "abc", "bc", 1),
        (textops.ends_with, "bc", "abc", -1),
        (textops.str_find, "abcabc", "ca", 3),
        (textops.str_ifind, "abcabc", "CA", 3),
        (textops.str_find, "abc", "x", -1),
        (textops.str_find, "abc", "", 4),
        (textops.cmp_str, "abc", "abd", -2),
        (textops.cmp_str, "abd", "abc", -1),
        (textops.cmp_str, "abc", "abc", 1),
        (textops.cmp_str, "ab", "abc", -2),
        (textops.cmp_istr, "abc", "ABC", 1),
    ],
)
def test_textops_strings_match_kamailio(fn: object, a: str, b: str, code: int) -> None:
    assert callable(fn)
    assert fn(make_ctx(invite()), a, b) == code


def test_impls_are_registered() -> None:
    def implemented(exports: ModuleExports) -> set[str]:
        return {c.name for c in exports.cmds if c.impl is not None}

    assert {
        "uri_param",
        "add_uri_param",
        "tel2sip",
        "is_e164",
        "is_uri_user_e164",
        "cmp_uri",
        "cmp_aor",
        "is_first_hop",
    } <= implemented(siputils.EXPORTS)
    assert {"pv_isset", "pv_unset", "is_int", "typeof", "not_empty"} <= implemented(pvmod.EXPORTS)
    assert {"starts_with", "ends_with", "str_find", "str_ifind", "cmp_str"} <= implemented(
        textops.EXPORTS
    )
