"""kcc_runtime.pv: every pseudo-variable, transformation, format and select, checked
with exact values. The expected values were measured on Kamailio 5.6.3 on loopback
(``xlog`` of each PV on the same request bytes); the cfg snippet is quoted where a
value is surprising."""

from __future__ import annotations

from typing import Final

import pytest
from kcc_runtime import Fmt, RequestContext, pv
from kcc_runtime.context import Branch, Context, Process, Received, ReplyContext
from kcc_runtime.pv import PvError, accessor, select, split_uri, transformation
from kcc_runtime.router import Config, Router
from kcc_runtime.sip import parse_message
from kcc_runtime.values import Value

from tests.runtime.fake_engine import FakeEngine

INVITE = (
    b"INVITE sip:%41lice:pw@Example.COM:5080;transport=tcp;lr SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.2:5062;branch=z9hG4bK2\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice Smith" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"X-Foo: one\r\n"
    b"X-Foo: two, three\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\n"
    b"User-Agent: tester/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\r\n"  # the bytes Kamailio measured: a 4-byte body and one trailing byte
)

OPTIONS = (
    b"OPTIONS sip:bob@[2001:db8::1] SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bob@biloxi.example.com;user=phone>;tag=xyz\r\n"
    b"From: sip:alice@atlanta.example.com;tag=1928301774\r\n"
    b"Call-ID: abc\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

REPLY = (
    b"SIP/2.0 486 Busy Here\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: x@y\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

RECEIVED = Received("127.0.0.1", 5099, "127.0.0.1", 5070, "udp")


#: the tests never reach the engine (tests/runtime/fake_engine.py records calls)
ENGINE: Final = FakeEngine()


def make_ctx(data: bytes = INVITE, proc: Process | None = None) -> RequestContext:
    proc = proc or Process(engine=ENGINE)
    return RequestContext(proc, parse_message(data), RECEIVED)


def get(ctx: Context, name: str, inner: str | None = None, index: int | str | None = None) -> Value:
    return accessor(name, inner, index).get(ctx)


def tr(value: Value, name: str, *params: str | int) -> Value:
    """Apply one transformation to ``$var(t)`` holding ``value``."""
    ctx = make_ctx()
    accessor("var", "t").set(ctx, value)
    return accessor("var", "t", transformations=(transformation(name, *params),)).get(ctx)


# -- message PVs ------------------------------------------------------------------------


def test_request_uri_parts_are_raw() -> None:
    # xlog "$ru $rU $rd $rp $rz" on INVITE: sip:%41lice:pw@Example.COM:5080;... %41lice ...
    ctx = make_ctx()
    assert get(ctx, "ru") == "sip:%41lice:pw@Example.COM:5080;transport=tcp;lr"
    assert get(ctx, "rU") == "%41lice"
    assert get(ctx, "rd") == "Example.COM"
    assert get(ctx, "rp") == 5080
    assert get(ctx, "rz") == "sip"
    assert get(ctx, "rm") == "INVITE"
    assert get(ctx, "rv") == "SIP/2.0"


def test_request_uri_defaults() -> None:
    ctx = make_ctx(OPTIONS)
    assert get(ctx, "rd") == "[2001:db8::1]"
    assert get(ctx, "rp") == 5060  # measured: no port reads 5060


def test_from_to() -> None:
    ctx = make_ctx()
    assert get(ctx, "fu") == "sip:alice@atlanta.example.com"
    assert get(ctx, "fU") == "alice"
    assert get(ctx, "fd") == "atlanta.example.com"
    assert get(ctx, "fn") == '"Alice Smith"'  # measured: the quotes are kept
    assert get(ctx, "ft") == "1928301774"
    assert get(ctx, "tu") == "sip:bob@biloxi.example.com"
    assert get(ctx, "tU") == "bob"
    assert get(ctx, "td") == "biloxi.example.com"
    assert get(ctx, "tn") == "Bob"
    assert get(ctx, "tt") is None  # measured: <null>
    other = make_ctx(OPTIONS)
    assert get(other, "fn") is None
    assert get(other, "tn") is None
    assert get(other, "tt") == "xyz"
    assert get(other, "tu") == "sip:bob@biloxi.example.com;user=phone"


def test_other_message_pvs() -> None:
    ctx = make_ctx()
    assert get(ctx, "ci") == "a84b4c76e66710@pc33"
    assert get(ctx, "cs") == "314159"
    assert get(ctx, "rs") is None
    assert get(ctx, "rr") is None
    assert get(ctx, "si") == "127.0.0.1"
    assert get(ctx, "sp") == 5099
    assert get(ctx, "Ri") == "127.0.0.1"
    assert get(ctx, "Rp") == 5070
    assert get(ctx, "pr") == "udp"
    assert get(ctx, "proto") == "udp"
    assert get(ctx, "ua") == "tester/1.0"
    assert get(ctx, "ml") == 549  # measured: $ml and $msg(len) are 549 for these bytes
    assert get(ctx, "msg", "len") == 549
    assert get(ctx, "mb") == INVITE.decode()
    assert get(ctx, "msg", "body") == "v=0\r"
    assert (
        get(ctx, "msg", "fline")
        == "INVITE sip:%41lice:pw@Example.COM:5080;transport=tcp;lr SIP/2.0"
    )
    assert get(ctx, "msg", "nope") is None
    assert get(ctx, "du") is None
    assert get(ctx, "null") is None
    assert get(ctx, "rc") == 1
    ctx.rc = -2
    assert get(ctx, "?") == -2
    assert get(ctx, "retcode") == -2


def test_reply_pvs() -> None:
    msg = parse_message(REPLY)
    ctx = ReplyContext(Process(engine=ENGINE), msg, RECEIVED)
    assert get(ctx, "rs") == 486
    assert get(ctx, "rr") == "Busy Here"
    assert get(ctx, "rm") == "INVITE"  # a reply's method is its CSeq method
    assert get(ctx, "ru") is None
    assert get(ctx, "rU") is None


def test_transaction_pvs_without_a_transaction() -> None:
    """Measured on Kamailio 5.6.3 in request_route before ``t_relay``: ``$T_reply_code``
    is 0 and ``$T_branch_idx`` the number of branches ``append_branch`` added (the
    route kinds with a transaction are in ``test_tm_extras.py``)."""
    ctx = make_ctx()
    assert get(ctx, "T_reply_code") == 0
    assert get(ctx, "T_branch_idx") == 0
    ctx.branches.append(Branch("sip:second@127.0.0.1:5383"))
    assert get(ctx, "T_branch_idx") == 1


def test_bad_header_reads_null() -> None:
    data = INVITE.replace(b'From: "Alice Smith" <sip:alice@atlanta.example.com>', b"From: <<<")
    ctx = make_ctx(data)
    assert get(ctx, "fu") is None
    assert get(ctx, "fU") is None


# -- headers ------------------------------------------------------------------------------


def test_hdr_indexes() -> None:
    ctx = make_ctx()
    # measured: hdr=[one] hdr1=[two, three] hdrm1=[two, three] hdrstar=[one,two, three]
    assert get(ctx, "hdr", "X-Foo") == "one"
    assert get(ctx, "hdr", "x-foo", 0) == "one"
    assert get(ctx, "hdr", "X-Foo", 1) == "two, three"
    assert get(ctx, "hdr", "X-Foo", -1) == "two, three"
    assert get(ctx, "hdr", "X-Foo", -2) == "one"
    assert get(ctx, "hdr", "X-Foo", 2) is None
    assert get(ctx, "hdr", "X-Foo", "*") == "one,two, three"
    assert get(ctx, "hdr", "X-None") is None
    assert get(ctx, "hdr", "X-None", "*") is None
    via = "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds;rport"
    assert get(ctx, "hdr", "v") == via  # compact name
    assert get(ctx, "hdr", "Via") == via
    assert get(ctx, "hdr", "c") == "application/sdp"


def test_hdr_dynamic_name_and_index() -> None:
    ctx = make_ctx()
    accessor("var", "h").set(ctx, "X-Foo")
    accessor("var", "i").set(ctx, 1)
    name = Fmt(accessor("var", "h"))
    assert accessor("hdr", name, accessor("var", "i")).get(ctx) == "two, three"


# -- script variables -----------------------------------------------------------------------


def test_var() -> None:
    ctx = make_ctx()
    var = accessor("var", "x")
    assert var.get(ctx) == 0  # measured: an unset $var reads the int 0
    assert var.set(ctx, "abc") == "abc"
    assert var.get(ctx) == "abc"
    assert var.set(ctx, None) is None
    assert var.get(ctx) == 0  # measured: $var(x) = $null leaves 0
    assert ctx.proc.vars == {"x": 0}


def test_var_survives_messages_of_one_process() -> None:
    proc = Process(engine=ENGINE)
    accessor("var", "x").set(make_ctx(proc=proc), 7)
    assert accessor("var", "x").get(make_ctx(proc=proc)) == 7


def test_shv() -> None:
    proc = Router(
        Config(modparams=(("pv", "shvset", "sa=i:7"), ("pv", "shvset", "sb=s:hello")))
    ).process(ENGINE)
    ctx = make_ctx(proc=proc)
    assert get(ctx, "shv", "sa") == 7
    assert get(ctx, "shv", "sb") == "hello"
    assert get(ctx, "shv", "u") == 0
    accessor("shv", "sa").set(ctx, None)
    assert get(ctx, "shv", "sa") == 0


def test_avp_stack() -> None:
    ctx = make_ctx()
    a = accessor("avp", "a")
    assert a.get(ctx) is None
    for value in (1, "two", 3):
        a.set(ctx, value)
    # measured: avp=[3] a0=[3] a1=[two] a2=[1] am1=[<null>] a3=[<null>] astar=[3, two, 1]
    assert a.get(ctx) == 3
    assert get(ctx, "avp", "a", 0) == 3
    assert get(ctx, "avp", "a", 1) == "two"
    assert get(ctx, "avp", "a", 2) == 1
    assert get(ctx, "avp", "a", -1) is None
    assert get(ctx, "avp", "a", 3) is None
    assert get(ctx, "avp", "a", "*") == "3, two, 1"
    a.set(ctx, None)  # measured: deletes only the newest value
    assert get(ctx, "avp", "a", "*") == "two, 1"


def test_avp_names_and_index_assignment() -> None:
    ctx = make_ctx()
    accessor("avp", "s:b").set(ctx, "x")
    accessor("avp", "i:5").set(ctx, 9)
    assert get(ctx, "avp", "b") == "x"
    assert get(ctx, "avp", "i:5") == 9
    assert ctx.avps == {"b": ["x"], 5: [9]}
    # measured: $(avp(c)[*])="z"; $avp(c)="y"; $(avp(c)[0])="q" -> q, y, z;
    # $(avp(c)[1])=$null -> y, z; $(avp(c)[*])=$null -> <null>
    accessor("avp", "c", "*").set(ctx, "z")
    accessor("avp", "c").set(ctx, "y")
    accessor("avp", "c", 0).set(ctx, "q")
    assert get(ctx, "avp", "c", "*") == "q, y, z"
    accessor("avp", "c", 1).set(ctx, None)
    assert get(ctx, "avp", "c", "*") == "y, z"
    accessor("avp", "c", "*").set(ctx, "w")
    assert ctx.avps["c"] == ["w"]
    accessor("avp", "c", "*").set(ctx, None)
    assert get(ctx, "avp", "c", "*") is None
    assert "c" not in ctx.avps


def test_xavp() -> None:
    ctx = make_ctx()
    # measured: $xavp(r=>f)="v1"; $xavp(r[0]=>g)=2; $xavp(r=>f)="v2";
    # -> f=[v2] f0=[v2] f1=[<null>] g=[<null>] none=[<null>]
    accessor("xavp", "r=>f").set(ctx, "v1")
    accessor("xavp", "r[0]=>g").set(ctx, 2)
    accessor("xavp", "r=>f").set(ctx, "v2")
    assert get(ctx, "xavp", "r=>f") == "v2"
    assert get(ctx, "xavp", "r[0]=>f") == "v2"
    assert get(ctx, "xavp", "r[0]=>f[1]") is None
    assert get(ctx, "xavp", "r=>g") is None
    assert get(ctx, "xavp", "r[1]=>g") == 2
    assert get(ctx, "xavp", "r[1]=>f") == "v1"
    assert get(ctx, "xavp", "q=>f") is None
    root = get(ctx, "xavp", "r")
    assert isinstance(root, str) and root.startswith("<<xavp:0x")
    accessor("xavp", "s").set(ctx, "root")
    assert get(ctx, "xavp", "s") == "root"
    accessor("xavp", "r[1]=>f").set(ctx, "v0")
    assert get(ctx, "xavp", "r[1]=>f") == "v0"
    assert get(ctx, "xavp", "r[1]=>f[1]") == "v1"
    accessor("xavp", "r[1]=>f").set(ctx, None)
    assert get(ctx, "xavp", "r[1]=>f") == "v1"
    accessor("xavp", "r[0]").set(ctx, None)
    assert get(ctx, "xavp", "r=>f") == "v1"
    accessor("xavp", "r[*]").set(ctx, None)
    assert get(ctx, "xavp", "r=>f") is None
    accessor("xavp", "r[3]=>f").set(ctx, "nowhere")  # no such root: logged, nothing added
    assert get(ctx, "xavp", "r=>f") is None
    assert get(ctx, "xavp", "bad name!") is None


# -- URI and flag writes ------------------------------------------------------------------


def test_ruri_writes_follow_rewrite_actions() -> None:
    ctx = make_ctx(OPTIONS)
    accessor("rU").set(ctx, "carol")
    # measured: $rU = "carol" -> sip:carol@[2001:db8::1]
    assert get(ctx, "ru") == "sip:carol@[2001:db8::1]"
    accessor("rd").set(ctx, "example.org")
    accessor("rp").set(ctx, 5062)
    assert get(ctx, "ru") == "sip:carol@example.org:5062"
    accessor("rp").set(ctx, 0)
    assert get(ctx, "ru") == "sip:carol@example.org:0"
    assert get(ctx, "rp") == 0
    accessor("rU").set(ctx, None)
    assert get(ctx, "ru") == "sip:example.org:0"
    assert get(ctx, "rU") is None
    accessor("ru").set(ctx, "sip:dave@h.example.com:7000;x=1")
    assert (get(ctx, "rU"), get(ctx, "rd"), get(ctx, "rp")) == ("dave", "h.example.com", 7000)
    accessor("rd").set(ctx, "new.example")
    assert get(ctx, "ru") == "sip:dave@new.example:7000;x=1"
    assert ctx.new_uri == "sip:dave@new.example:7000;x=1"
    # the request line carries it, as the rewrite actions do: it is what is sent
    assert ctx.msg.serialize() == OPTIONS.replace(
        b"sip:bob@[2001:db8::1]", b"sip:dave@new.example:7000;x=1", 1
    )


def test_ruri_bad_writes_are_ignored() -> None:
    ctx = make_ctx()
    accessor("ru").set(ctx, None)
    accessor("ru").set(ctx, "sip:a b")
    accessor("rd").set(ctx, "")
    assert ctx.new_uri is None
    ctx.new_uri = "not a uri"
    accessor("rU").set(ctx, "x")
    assert ctx.new_uri == "not a uri"
    assert get(ctx, "rU") is None


def test_ruri_user_keeps_password() -> None:
    ctx = make_ctx()
    accessor("rU").set(ctx, "bob")
    assert get(ctx, "ru") == "sip:bob:pw@Example.COM:5080;transport=tcp;lr"


def test_du() -> None:
    ctx = make_ctx()
    du = accessor("du")
    du.set(ctx, "sip:10.0.0.1:5080")
    assert du.get(ctx) == "sip:10.0.0.1:5080"
    assert ctx.dst_uri == "sip:10.0.0.1:5080"
    du.set(ctx, None)
    assert du.get(ctx) is None
    assert ctx.dst_uri is None


def test_flags() -> None:
    ctx = make_ctx()
    ctx.flags = (1 << 31) | 1
    assert get(ctx, "mf") == 2147483649  # measured: setflag(31); setflag(0); -> 2147483649
    accessor("mf").set(ctx, 5)
    assert ctx.flags == 5
    accessor("mf").set(ctx, -1)
    assert get(ctx, "mf") == 4294967295
    accessor("sf").set(ctx, "3")
    accessor("bf").set(ctx, 8)
    assert (ctx.sflags, ctx.bflags, get(ctx, "sf"), get(ctx, "bf")) == (3, 8, 3, 8)


def test_read_only_pvs_refuse_assignment() -> None:
    ctx = make_ctx()
    for name in ("si", "rm", "hdr", "rc", "ml"):
        with pytest.raises(PvError, match="cannot be assigned"):
            accessor(name, "X").set(ctx, "x")
    with pytest.raises(PvError):
        accessor("var", "x", transformations=(transformation("s.len"),)).set(ctx, 1)
    with pytest.raises(PvError, match="not supported"):
        accessor("nosuch")
    assert "ru" in pv.WRITABLE and "si" not in pv.WRITABLE
    assert {"ru", "var", "avp", "xavp", "hdr", "shv"} <= pv.PVS


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCC_TEST_ENV", "yes")
    monkeypatch.delenv("KCC_TEST_NOPE", raising=False)
    ctx = make_ctx()
    assert get(ctx, "env", "KCC_TEST_ENV") == "yes"
    assert get(ctx, "env", "KCC_TEST_NOPE") is None


# -- formats and selects ------------------------------------------------------------------------


def test_fmt_renders_null_as_kamailio() -> None:
    ctx = make_ctx()
    fmt = Fmt("m=", accessor("rm"), " a=[", accessor("avp", "u"), "] n=", accessor("sp"), "\n")
    assert fmt.render(ctx) == "m=INVITE a=[<null>] n=5099\n"
    assert Fmt().render(ctx) == ""


def test_select() -> None:
    router = Router(Config(cfg_vars=(("mygroup", "myvar", 42), ("mygroup", "mystr", "hello"))))
    ctx = make_ctx(proc=router.process(ENGINE))
    # measured: $sel(cfg_get.mygroup.myvar) -> 42 with `mygroup.myvar = 42 desc "x"`
    assert select("cfg_get.mygroup.myvar").get(ctx) == 42
    assert select("@cfg_get.mygroup.mystr").get(ctx) == "hello"
    assert select("cfg_get.mygroup.none").get(ctx) is None
    assert accessor("sel", "cfg_get.mygroup.myvar").get(ctx) == 42
    assert select("ruri").get(ctx) == "sip:%41lice:pw@Example.COM:5080;transport=tcp;lr"
    assert select("from.uri").get(ctx) == "sip:alice@atlanta.example.com"
    assert select("to.uri").get(ctx) == "sip:bob@biloxi.example.com"
    assert select("via[1].host").get(ctx) == "127.0.0.1"
    assert select("via[2].host").get(ctx) == "10.0.0.2"
    assert select("via[3].host").get(ctx) is None
    assert select("cfg_get.a.b").get(make_ctx()) is None  # a process without a config
    with pytest.raises(PvError, match="not supported"):
        select("nope.nothing")


# -- transformations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "params", "expected"),
    [
        # measured on Kamailio 5.6.3 with $var(s) = "Hello,World,Foo" etc.
        ("Hello,World,Foo", "s.len", (), 15),
        (42, "s.len", (), 2),
        ("", "s.len", (), 0),
        (" 12 ", "s.int", (), None),
        ("12abc", "s.int", (), None),
        ("-12", "s.int", (), -12),
        (42, "s.int", (), 42),
        ("Hello,World,Foo", "s.tolower", (), "hello,world,foo"),
        ("Hello,World,Foo", "s.toupper", (), "HELLO,WORLD,FOO"),
        (42, "s.tolower", (), 42),
        ("Hello,World,Foo", "s.substr", (1, 3), "ell"),
        ("Hello,World,Foo", "s.substr", (-3, 2), "Fo"),
        ("Hello,World,Foo", "s.substr", (6, 0), "World,Foo"),
        ("Hello,World,Foo", "s.substr", (20, 2), None),
        ("Hello,World,Foo", "s.substr", (-20, 2), None),
        ("Hello,World,Foo", "s.substr", (10, 10), "d,Foo"),
        (42, "s.substr", (0, 1), "4"),
        ("Hello,World,Foo", "s.select", (0, ","), "Hello"),
        ("Hello,World,Foo", "s.select", (1, ","), "World"),
        ("Hello,World,Foo", "s.select", (-1, ","), "Foo"),
        ("Hello,World,Foo", "s.select", (5, ","), ""),
        ("Hello,World,Foo", "s.select", (-5, ","), ""),
        (" 12 ", "s.select", (1, " "), "12"),
        ("Hello,World,Foo", "s.strip", (2,), "llo,World,Foo"),
        ("Hello,World,Foo", "s.strip", (0,), "Hello,World,Foo"),
        ("Hello,World,Foo", "s.strip", (99,), ""),
        ("Hello,World,Foo", "s.strip", (-2,), "Hello,World,Foo"),
        ("Hello,World,Foo", "s.striptail", (3,), "Hello,World,"),
        ("Hello,World,Foo", "s.striptail", (99,), ""),
        ("Hello,World,Foo", "s.md5", (), "c4b69d715ec6d1f740caef13578274a7"),
        ("", "s.md5", (), "d41d8cd98f00b204e9800998ecf8427e"),
        ("Hello,World,Foo", "s.encode.base64", (), "SGVsbG8sV29ybGQsRm9v"),
        ("SGVsbG8=", "s.decode.base64", (), "Hello"),
        (42, "s.prefixes", (), "4,42"),
        (42, "s.prefixes.quoted", (), "'4','42'"),
        (42, "s.encode.hexa", (), "3432"),
        ("3432", "s.decode.hexa", (), "42"),
        ("zz", "s.decode.hexa", (), None),
        ("  a b  ", "s.trim", (), "a b"),
        ("  a b  ", "s.rtrim", (), "  a b"),
        ("  a b  ", "s.ltrim", (), "a b  "),
        ("  a b  ", "s.rmws", (), "ab"),
        ('"Bob B" <sip:bob:pw@example.com:5062;x>', "s.numeric", (), "5062"),
        (1000000000, "s.ftime", ("%Y-%m-%d %H:%M:%S",), "2001-09-09 01:46:40"),
        ("a=1;b=2;c;d=", "param.value", ("a",), "1"),
        ("a=1;b=2;c;d=", "param.value", ("b",), "2"),
        ("a=1;b=2;c;d=", "param.value", ("c",), ""),
        ("a=1;b=2;c;d=", "param.value", ("x",), ""),
        ("a=1&b=2", "param.value", ("b", "&"), "2"),
        ("a=1;b=2;c;d=", "param.count", (), 4),
        ("a=1;b=2;c;d=", "param.name", (1,), "b"),
        ("a=1;b=2;c;d=", "param.valueat", (1,), "2"),
        ("a=1;b=2;c;d=", "param.in", ("c",), 1),
        ("a=1;b=2;c;d=", "param.in", ("x",), 0),
        ("a\nb\n", "line.count", (), 2),
    ],
)
def test_string_transformations(
    value: Value, name: str, params: tuple[str | int, ...], expected: Value
) -> None:
    assert tr(value, name, *params) == expected


URI = "sip:bob:pw@example.com:5062;transport=TCP;lr;ttl=5;maddr=1.2.3.4;user=phone?X=y"
NAMEADDR = f'"Bob B" <{URI}>;tag=abc;q=0.5'


@pytest.mark.parametrize(
    ("value", "name", "params", "expected"),
    [
        # measured: $var(u) = NAMEADDR, $(var(u){nameaddr.uri}{uri.*})
        (URI, "uri.user", (), "bob"),
        (URI, "uri.host", (), "example.com"),
        (URI, "uri.domain", (), "example.com"),
        (URI, "uri.port", (), "5062"),
        (URI, "uri.passwd", (), "pw"),
        (URI, "uri.params", (), "transport=TCP;lr;ttl=5;maddr=1.2.3.4;user=phone"),
        (URI, "uri.transport", (), "TCP"),
        (URI, "uri.ttl", (), "5"),
        (URI, "uri.maddr", (), "1.2.3.4"),
        (URI, "uri.uparam", (), "phone"),
        (URI, "uri.lr", (), ""),
        (URI, "uri.headers", (), "X=y"),
        (URI, "uri.param", ("lr",), ""),
        (URI, "uri.param", ("nope",), ""),
        (URI, "uri.param", ("TTL",), "5"),
        (URI, "uri.scheme", (), "sip"),
        ("sip:alice@example.com", "uri.port", (), ""),
        ("sip:alice@example.com", "uri.transport", (), ""),
        ("sip:alice@example.com", "uri.params", (), ""),
        ("sip:example.com:99", "uri.user", (), ""),
        ("sip:example.com:99", "uri.port", (), "99"),
        ("Hello,World,Foo", "uri.user", (), None),  # "invalid uri": the transformation fails
        (NAMEADDR, "nameaddr.name", (), '"Bob B" '),
        (NAMEADDR, "nameaddr.uri", (), URI),
        (NAMEADDR, "nameaddr.len", (), 89),
        ("sip:alice@example.com", "nameaddr.name", (), ""),
        ("sip:alice@example.com", "nameaddr.uri", (), "sip:alice@example.com"),
        (NAMEADDR, "tobody.tag", (), "abc"),
        (NAMEADDR, "tobody.display", (), '"Bob B"'),
        (NAMEADDR, "tobody.params", (), "tag=abc;q=0.5"),
        (NAMEADDR, "tobody.uri", (), URI),
        (NAMEADDR, "tobody.user", (), "bob"),
        (NAMEADDR, "tobody.host", (), "example.com"),
    ],
)
def test_uri_transformations(
    value: Value, name: str, params: tuple[str | int, ...], expected: Value
) -> None:
    assert tr(value, name, *params) == expected


def test_transformation_chains_and_null() -> None:
    ctx = make_ctx()
    accessor("var", "s").set(ctx, "Hello,World,Foo")
    chain = (
        transformation("s.select", 1, ","),
        transformation("s.tolower"),
        transformation("s.len"),
    )
    assert accessor("var", "s", transformations=chain).get(ctx) == 5
    # measured: $(fn{s.len}) with no display name, $(avp(none){s.len}) -> nothing
    assert accessor("avp", "none", transformations=(transformation("s.len"),)).get(ctx) is None
    assert accessor("rU", transformations=(transformation("s.len"),)).get(ctx) == 7
    ru_user = accessor("ru", transformations=(transformation("uri.user"),))
    assert ru_user.get(ctx) == "%41lice"


def test_transformation_params_per_message() -> None:
    ctx = make_ctx()
    accessor("var", "s").set(ctx, "Hello,World,Foo")
    accessor("var", "n").set(ctx, 2)
    sub = transformation("s.substr", accessor("var", "n"), Fmt("3"))
    assert accessor("var", "s", transformations=(sub,)).get(ctx) == "llo"


def test_unknown_transformations_are_refused() -> None:
    with pytest.raises(PvError, match="not supported"):
        transformation("s.nope")
    with pytest.raises(PvError, match="parameters"):
        transformation("s.substr", 1)
    with pytest.raises(PvError, match="not supported"):
        pv.Transformation("s.nope").apply(make_ctx(), "x")
    assert {"s.len", "s.substr", "uri.user", "param.value"} <= pv.TRANSFORMATIONS


def test_split_uri() -> None:
    parts = split_uri("SIPS:u@[::1]:5061;a=b?h=v")
    assert parts is not None
    assert (parts.scheme, parts.user, parts.host, parts.port) == ("sips", "u", "[::1]", "5061")
    assert parts.build() == "sips:u@[::1]:5061;a=b?h=v"
    tel = split_uri("tel:+123;phone-context=x")
    assert tel is not None and tel.user == "+123" and tel.params == "phone-context=x"
    assert split_uri("mailto:a@b") is None
    assert split_uri("sip:") is None
