"""kcc_runtime.sip: lazy header access, URIs, edits spliced into the original buffer,
and Content-Length stream framing. Every expected output is written out in full."""

from __future__ import annotations

import pytest
from kcc_runtime.sip import (
    AbsoluteUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    TelUri,
    parse_message,
    parse_uri,
)
from kcc_runtime.sip.headers import (
    parse_name_addr,
    parse_name_addr_general,
    parse_vias,
    parse_vias_general,
    split_list,
)
from kcc_runtime.sip.message import PackedSpans

from .corpus import CASES

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)

RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK3\r\n"
    b"To: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: x@y\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def request(data: bytes = INVITE) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_lazy_index_scans_only_as_far_as_needed() -> None:
    msg = request()
    assert msg._names == []  # nothing indexed by parse_message
    assert msg.via is not None and msg.via.host == "pc33.atlanta.example.com"
    assert msg._names == [b"via"]  # the top Via is the first line
    assert msg.header("Content-Type") == "application/sdp"
    assert len(msg._names) == 8
    assert msg.names[-1] == b"content-length"  # compact l expanded


def test_header_access_is_case_insensitive_and_compact_aware() -> None:
    msg = request()
    assert msg.header("CALL-ID") == msg.header("i") == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.header("content-length") == "4"
    assert msg.content_length == 4
    assert msg.header("Subject") is None
    assert msg.has_header("V") and not msg.has_header("Route")
    assert msg.body == b"v=0\n"
    assert msg.to is not None and (msg.to.display, msg.to.tag) == ("Bob", None)
    assert msg.from_ is not None and msg.from_.tag == "1928301774"
    assert msg.cseq is not None and msg.cseq[:2] == (314159, "INVITE")
    assert msg.cseq.text == "314159"
    assert msg.max_forwards == 70
    assert msg.method == "INVITE"
    via = msg.via
    assert via is not None
    assert (via.protocol, via.transport, via.port, via.branch, via.rport) == (
        "SIP/2.0",
        "UDP",
        None,
        "z9hG4bK776asdhds",
        "",
    )


def test_repeated_and_comma_joined_headers() -> None:
    msg = parse_message(RESPONSE)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert [v.branch for v in msg.vias] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
    assert msg.header_values("via") == [
        "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2",
        "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK3",
    ]
    routes = request(
        INVITE.replace(
            b"Max-Forwards: 70\r\n",
            b'Route: <sip:p1.example.com;lr>, "Proxy, two" <sip:p2.example.com;lr>\r\n'
            b"Route: <sip:p3.example.com;lr>\r\nMax-Forwards: 70\r\n",
        )
    ).routes
    assert [(r.display, r.uri_raw) for r in routes] == [
        (None, b"sip:p1.example.com;lr"),
        ("Proxy, two", b"sip:p2.example.com;lr"),
        (None, b"sip:p3.example.com;lr"),
    ]


def test_contact_star_and_bare_lf_messages() -> None:
    lf = INVITE.replace(b"\r\n", b"\n").replace(
        b"Contact: <sip:alice@pc33.atlanta.example.com>", b"Contact: *"
    )
    msg = request(lf)
    assert msg.eol == b"\n"
    assert msg.contact_star and msg.contacts == []
    assert msg.body == b"v=0\n"
    msg.add_header("X-Test", "1")
    assert msg.serialize() == lf.replace(b"l: 4\n\n", b"l: 4\nX-Test: 1\n\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"sip:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&x=",
            SipUri(
                "sip",
                "alice",
                "secret",
                "atlanta.example.com",
                5061,
                (("transport", "tcp"), ("lr", None)),
                (("subject", "project x"), ("x", "")),
                b"sip:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&x=",
            ),
        ),
        (
            b"SIPS:[2001:db8::1]:5071",
            SipUri("sips", None, None, "[2001:db8::1]", 5071, (), (), b"SIPS:[2001:db8::1]:5071"),
        ),
        (
            b"sip:%61lice@h;MAddr=10.0.0.1",
            SipUri(
                "sip",
                "alice",
                None,
                "h",
                None,
                (("maddr", "10.0.0.1"),),
                (),
                b"sip:%61lice@h;MAddr=10.0.0.1",
            ),
        ),
        (
            b"tel:+1-201-555-0123;ext=1234",
            TelUri("+1-201-555-0123", (("ext", "1234"),), b"tel:+1-201-555-0123;ext=1234"),
        ),
        (
            b"soap.beep://192.0.2.103:3002",
            AbsoluteUri("soap.beep", "//192.0.2.103:3002", b"soap.beep://192.0.2.103:3002"),
        ),
    ],
)
def test_parse_uri(raw: bytes, expected: object) -> None:
    assert parse_uri(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"sip:2001:db8::10",  # IPv6 without brackets (RFC 5118 §4.2)
        b"sip:user@host:99999",
        b"sip:us er@host",
        b"sip:user@",
        b"sip:user@host;=x",
        b"sip:user@host?noequals",
        b"<sip:user@host>",
        b"nocolon",
        b"tel:abc xyz",
    ],
)
def test_parse_uri_rejects(raw: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(raw)
    assert info.value.status == 400


# ---- edits: each expected output written out -------------------------------------


def test_no_edit_returns_the_buffer() -> None:
    msg = request()
    assert msg.serialize() is INVITE


def test_insert_via_and_set_received_rport() -> None:
    msg = request()
    msg.set_via_received("192.0.2.4", 5062)
    msg.insert_via("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnew")
    assert msg.serialize() == INVITE.replace(
        b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n",
        b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnew\r\n"
        b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport=5062"
        b";received=192.0.2.4\r\n",
    )


def test_set_received_replaces_existing_and_leaves_rport_alone_when_not_asked() -> None:
    data = INVITE.replace(b";rport\r\n", b";received=1.1.1.1 ;x=1\r\n")
    msg = request(data)
    msg.set_via_received("192.0.2.4", 5062)  # no rport in the Via: not added (RFC 3581 §4)
    assert msg.serialize() == data.replace(b"received=1.1.1.1", b"received=192.0.2.4")


def test_remove_top_via_from_a_comma_joined_line_and_a_single_line() -> None:
    msg = parse_message(RESPONSE)
    assert msg.remove_top_via()
    once = msg.serialize()
    assert once == RESPONSE.replace(b"SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, ", b"")
    again = parse_message(once)
    again.remove_top_via()
    twice = again.serialize()
    again2 = parse_message(twice)
    again2.remove_top_via()
    top_lines = RESPONSE.split(b"\r\n")[1:3]
    assert again2.serialize() == RESPONSE.replace(b"\r\n".join(top_lines) + b"\r\n", b"")
    assert not parse_message(again2.serialize()).remove_top_via()


def test_remove_then_insert_at_the_same_place() -> None:
    msg = request()
    msg.remove_top_via()
    msg.insert_via("SIP/2.0/TCP a.example.com;branch=z9hG4bKa")
    msg.set_via_received("9.9.9.9")  # lies in the removed line: dropped
    assert msg.serialize() == INVITE.replace(
        b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n",
        b"Via: SIP/2.0/TCP a.example.com;branch=z9hG4bKa\r\n",
    )


def test_set_uri_add_remove_header_record_route() -> None:
    msg = request()
    msg.set_uri("sip:bob@192.0.2.4:5060")
    msg.set_uri(b"sip:bob@192.0.2.5")  # the last assignment wins
    assert msg.uri_raw == b"sip:bob@192.0.2.5"
    uri = msg.uri
    assert isinstance(uri, SipUri) and uri.host == "192.0.2.5"
    msg.add_record_route("<sip:proxy.example.com;lr>")
    msg.add_header("X-Kcc", "yes")
    assert msg.remove_header("contact") == 1
    assert msg.remove_header("Route") == 0
    assert msg.serialize() == (
        b"INVITE sip:bob@192.0.2.5 SIP/2.0\r\n"
        b"Record-Route: <sip:proxy.example.com;lr>\r\n"
        b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Content-Type: application/sdp\r\n"
        b"l: 4\r\n"
        b"X-Kcc: yes\r\n"
        b"\r\n"
        b"v=0\n"
    )


def test_record_route_goes_above_existing_ones() -> None:
    data = INVITE.replace(b"CSeq:", b"Record-Route: <sip:old.example.com;lr>\r\nCSeq:")
    msg = request(data)
    msg.add_record_route("<sip:new.example.com;lr>")
    out = msg.serialize()
    assert out == data.replace(
        b"Record-Route: <sip:old",
        b"Record-Route: <sip:new.example.com;lr>\r\nRecord-Route: <sip:old",
    )
    assert [r.uri_raw for r in parse_message(out).record_routes] == [
        b"sip:new.example.com;lr",
        b"sip:old.example.com;lr",
    ]


def test_set_body_rewrites_content_length() -> None:
    msg = request()
    msg.set_body(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n")
    assert msg.serialize() == INVITE.replace(b"l: 4\r\n\r\nv=0\n", b"l: 31\r\n\r\n") + (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    )


def test_missing_content_length_is_added() -> None:
    data = INVITE.replace(b"l: 4\r\n", b"")
    msg = request(data)
    assert msg.content_length is None and msg.body == b"v=0\n"
    assert msg.serialize() == INVITE.replace(b"l: 4\r\n", b"Content-Length: 4\r\n")


def test_edits_reject_header_injection() -> None:
    msg = request()
    with pytest.raises(ValueError, match="CR, LF"):
        msg.add_header("X-Evil", "a\r\nVia: forged")
    with pytest.raises(ValueError, match="whitespace"):
        msg.set_uri("sip:a b")
    assert msg.serialize() is INVITE


# ---- stream framing -----------------------------------------------------------------


def test_framer_byte_by_byte_with_keepalives() -> None:
    framer = StreamFramer()
    stream = b"\r\n\r\n" + INVITE + RESPONSE + b"\r\n"
    got = []
    for i in range(len(stream)):
        got.extend(framer.feed(stream[i : i + 1]))
    assert [m.buf for m in got] == [INVITE, RESPONSE]
    assert framer.buffered == 0


def test_framer_several_messages_in_one_chunk_and_partial_body() -> None:
    framer = StreamFramer()
    first = framer.feed(INVITE + RESPONSE + INVITE[:-2])
    assert [type(m).__name__ for m in first] == ["Request", "Response"]
    assert framer.buffered == len(INVITE) - 2
    rest = framer.feed(INVITE[-2:])
    assert len(rest) == 1 and rest[0].body == b"v=0\n"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (INVITE.replace(b"l: 4\r\n", b""), 400),  # stream without Content-Length
        (INVITE.replace(b"l: 4", b"l: -4"), 400),
        (INVITE.replace(b"l: 4", b"l: 4\r\nContent-Length: 5"), 400),
        (INVITE.replace(b"l: 4", b"l: 99999999999"), 400),
        (INVITE.replace(b"l: 4", b"l: 70000"), 413),
    ],
)
def test_framer_rejects_bad_lengths(data: bytes, status: int) -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(data)
    assert info.value.status == status
    assert framer.broken
    with pytest.raises(SipParseError):
        framer.feed(INVITE)


def test_framer_rejects_an_endless_header_section() -> None:
    framer = StreamFramer(max_message=1000)
    assert framer.feed(b"INVITE sip:a@b SIP/2.0\r\n") == []
    with pytest.raises(SipParseError) as info:
        framer.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("data", "status", "can_reply"),
    [
        (b"", 400, False),
        (b"\r\n\r\n", 400, False),
        (b"garbage", 400, False),
        (INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, True),
        (RESPONSE.replace(b"SIP/2.0 180", b"SIP/2.0 18"), 400, False),
        (RESPONSE.replace(b"SIP/2.0 180", b"SIP/2.0 099"), 400, False),
        (INVITE.split(b"\r\n\r\n")[0], 400, False),  # header section cut mid-line
        # no empty line: "v=0" is read as a header line without a colon, so the
        # header section is broken and no reply can be built
        (INVITE.replace(b"\r\n\r\n", b"\r\n"), 400, False),
        # a bad request line is answered only when the reply headers are usable
        (INVITE.replace(b"INVITE sip", b"INVITE  sip"), 400, True),
        (
            INVITE.replace(b"INVITE sip", b"INVITE  sip").replace(b"v: SIP/2.0/UDP", b"v: UDP"),
            400,
            False,
        ),
        (INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1).replace(b"To:", b"X-To:"), 505, False),
        (INVITE.replace(b"l: 4", b"l: 5"), 400, True),
        (INVITE.replace(b"l: 4", b"l: 5").replace(b"CSeq: 314159", b"CSeq: x"), 400, False),
    ],
)
def test_datagram_errors(data: bytes, status: int, can_reply: bool) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert (info.value.status, info.value.can_reply) == (status, can_reply)


def test_header_line_without_colon_is_found_when_indexed() -> None:
    msg = request(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"))
    assert msg.via is not None  # the top Via is read before the bad line
    with pytest.raises(SipParseError) as info:
        msg.validate()
    assert (info.value.status, info.value.can_reply) == (400, False)


VIA_VALUES = [
    b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport",
    b"SIP/2.0/tcp [2001:db8::1]:5071;received=10.0.0.1;rport=1;x",
    b" SIP/2.0/UDP host.example.com ",
    b"SIP/2.0/UDP h;branch=z9hG4bK1;received=[2001:db8::9:255]",
    b"SIP/2.0/UDP h:99999;branch=a",  # port too large: the general path refuses it
    b'SIP/2.0/UDP h;branch="quoted"',  # quoted value: general path
    b"SIP/2.0/UDP h;branch=a, SIP/2.0/TCP g;branch=b",  # a list of simple values
    b"SIP/2.0/UDP h;branch=a ,SIP/2.0/UDP g:5060;rport=1;received=127.0.0.1",
    b"SIP/2.0/UDP h;branch=a,\r\n SIP/2.0/TCP g;branch=b",  # folded list: general path
    b'SIP/2.0/UDP h;branch=a, SIP/2.0/TCP g;x="a,b"',  # quoted comma: general path
    b"SIP/2.0/UDP h;branch=a,",  # empty value after the comma: refused
    b"SIP/2.0/UDP h;branch=a,, SIP/2.0/UDP g",
]


@pytest.mark.parametrize("value", VIA_VALUES)
def test_simple_via_fast_path_agrees_with_the_general_parser(value: bytes) -> None:
    buf = b"Via: " + value + b"\r\n"
    try:
        general = parse_vias_general(buf, 4, len(buf) - 2)
    except SipParseError:
        with pytest.raises(SipParseError):
            parse_vias(buf, 4, len(buf) - 2)
        return
    assert parse_vias(buf, 4, len(buf) - 2) == general


def test_every_corpus_via_parses_the_same_on_both_paths() -> None:
    checked = 0
    for case in CASES:
        try:
            msg = parse_message(case.data)
            spans = [s for n, s in zip(msg.names, msg.spans, strict=True) if n == b"via"]
        except SipParseError:
            continue
        for _, vs, ve, _ in spans:
            try:
                general = parse_vias_general(msg.buf, vs, ve)
            except SipParseError:
                continue
            assert parse_vias(msg.buf, vs, ve) == general
            checked += 1
    assert checked >= 70


NAME_ADDR_VALUES = [
    b" sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001",
    b"<sip:127.0.0.1:5062;transport=UDP>",
    b" sip:sipp@127.0.0.1:5061",
    b"sip:a@b;tag=x;lr",
    b"Bob  Smith\t<sips:bob@[2001:db8::1]:5061>;received=[2001:db8::1] ",
    b"Bob<sip:bob@b>",  # tokens touching "<" (RFC 4475 §3.1.1.6)
    b'"Bob" <sip:bob@b>;tag=1',  # quoted display name: general path
    b"<sip:a@b> ;tag=x",  # LWS before ";": general path
    b"<sip:a@b>;tag=",  # empty value: refused
    b"<sip:a@b>;tag==x",
    b"sip:a@b?subject=x",  # addr-spec with "?": refused
    b"Bell, Alexander <sip:a.g.bell@bell-tel.com>",  # refused (RFC 4475 §3.1.2.15)
    b"<sip a@b>",
    b"<tel:+1-555>",
    b"noscheme",
    b"",
]


@pytest.mark.parametrize("value", NAME_ADDR_VALUES)
def test_simple_name_addr_fast_path_agrees_with_the_general_parser(value: bytes) -> None:
    buf = b"To:" + value + b"\r\n"
    end = len(buf) - 2
    try:
        general = parse_name_addr_general(buf, 3, end, "To")
    except SipParseError as exc:
        with pytest.raises(SipParseError) as info:
            parse_name_addr(buf, 3, end, "To")
        assert (info.value.reason, info.value.can_reply) == (exc.reason, exc.can_reply)
        return
    assert parse_name_addr(buf, 3, end, "To") == general


def test_every_corpus_name_addr_parses_the_same_on_both_paths() -> None:
    checked = 0
    for case in CASES:
        try:
            msg = parse_message(case.data)
            pairs = list(zip(msg.names, msg.spans, strict=True))
        except SipParseError:
            continue
        for name, (_, vs, ve, _) in pairs:
            if name not in (b"from", b"to", b"contact", b"route", b"record-route"):
                continue
            for start, end in split_list(msg.buf, vs, ve):
                try:
                    general = parse_name_addr_general(msg.buf, start, end, "X")
                except SipParseError:
                    with pytest.raises(SipParseError):
                        parse_name_addr(msg.buf, start, end, "X")
                    continue
                assert parse_name_addr(msg.buf, start, end, "X") == general
                checked += 1
    assert checked >= 120


def line_by_line(data: bytes) -> tuple[list[bytes], list[tuple[int, int, int, int]]]:
    """The header index as the exact line-by-line reader builds it."""
    msg = parse_message(data)
    while msg._scan_one():
        pass
    return msg._names, msg._spans


INDEX_VARIANTS = [
    INVITE,
    INVITE.replace(b"\r\n", b"\n"),  # bare-LF message
    INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards : 70"),  # LWS before the colon
    INVITE.replace(b"Call-ID: a84b", b"Call-ID:\r\n a84b"),  # folded
    INVITE.replace(b"CSeq: 314159", b"CSeq: 31\r4159"),  # a CR inside a value
    INVITE.replace(b"To: Bob", b"To: Bob\n X"),  # a bare LF in a CRLF message
    INVITE.replace(b"Max-Forwards", b"Max Forwards"),  # not a token
    # a line ended by a bare LF and a line without a token name: as many names as CRLFs
    INVITE.replace(b"To: Bob", b"X: y\nTo: Bob").replace(b"Max-Forwards", b"Max Forwards"),
    INVITE.replace(b"Content-Type: application/sdp\r\n", b"Content-Type: application/sdp\n"),
]


@pytest.mark.parametrize("data", INDEX_VARIANTS)
def test_one_pass_index_equals_the_line_by_line_one(data: bytes) -> None:
    msg = parse_message(data)
    assert (msg.names, msg.spans) == line_by_line(data)


def test_one_pass_index_equals_the_line_by_line_one_over_the_corpus() -> None:
    for case in CASES:
        try:
            expected = line_by_line(case.data)
        except SipParseError:
            continue
        msg = parse_message(case.data)
        assert (msg.names, msg.spans) == expected, case.file


def test_one_pass_index_stops_at_the_header_read() -> None:
    msg = request()
    assert msg.to is not None  # the first line alone, then the rest up to To
    assert msg._names == [b"via", b"max-forwards", b"to"]
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert len(msg._names) == 5
    assert msg.header("Subject") is None
    assert msg.names == line_by_line(INVITE)[0]


def test_a_bad_first_header_name_is_found_after_reading_it_alone() -> None:
    msg = request(INVITE.replace(b"v: SIP", b"v@: SIP"))
    assert msg.via is None  # the first line is read alone (named "v@")
    with pytest.raises(SipParseError) as info:
        msg.validate()
    assert (info.value.reason, info.value.can_reply) == ("Bad header name", True)


def test_via_branch_received_rport_are_the_first_occurrences() -> None:
    for via_line in (
        b"Via: SIP/2.0/UDP h;rport;BRANCH=a;branch=b;received=1.2.3.4;received=x;rport=9\r\n",
        b"Via: SIP/2.0/UDP h ; rport ; BRANCH = a ; branch=b;received=1.2.3.4;received=x\r\n",
    ):
        msg = parse_message(b"SIP/2.0 200 OK\r\n" + via_line + b"Content-Length: 0\r\n\r\n")
        (via,) = msg.vias
        assert (via.branch, via.received, via.rport) == ("a", "1.2.3.4", "")
        assert (via.branch, via.received, via.rport) == tuple(
            via.param(name) for name in ("branch", "received", "rport")
        )
    bare = parse_message(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:5060\r\nl: 0\r\n\r\n").via
    assert bare is not None and (bare.branch, bare.received, bare.rport) == (None, None, None)


def test_name_addr_tag_is_the_first_occurrence() -> None:
    for value in (b"<sip:a@b>;TAG=x;tag=y", b'"A" <sip:a@b> ; tag = x ; tag=y'):
        parsed = parse_name_addr(value, 0, len(value), "From")
        assert parsed.tag == parsed.param("tag") == "x"
    bare = parse_name_addr(b"sip:a@b;tag", 0, 11, "To")
    assert bare.tag == ""
    assert parse_name_addr(b"<sip:a@b>", 0, 9, "To").tag is None


@pytest.mark.parametrize(
    ("lines", "verdict"),
    [
        (b"Content-Length: 4\r\n", 4),
        (b"l\t : 4\r\n", 4),
        (b"CONTENT-length: 0\r\n  4\r\n", "Bad Content-Length"),  # folded: "0 4"
        (b"Content-Length:\r\n 4\r\n", 4),  # folded before the value
        (b"Content-Lengthy: 4\r\nContent-Length : 4\r\n", 4),
        (b"Content-Length: 4\r\nl: 4\r\n", 4),
        (b"Content-Length: 4\r\nl: 3\r\n", "Conflicting Content-Length values"),
        # the long spelling is judged first, whatever the order of the lines
        (
            b"l: x\r\nContent-Length: 4\r\nContent-Length: 3\r\n",
            "Conflicting Content-Length values",
        ),
        (b"Content-Length: 4\r\nl: 3\r\nContent-Length: x\r\n", "Bad Content-Length"),
    ],
)
def test_content_length_lines(lines: bytes, verdict: int | str) -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" + lines + b"\r\nbody"
    )
    if isinstance(verdict, int):
        msg = parse_message(data)
        assert msg.body == b"body"[:verdict]
    else:
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert info.value.reason == verdict


def test_parser_caches_keep_short_values_only() -> None:
    # a flood of long unique URIs (a fuzzer's, up to 64 KB) must not make the caches'
    # bounds in entries a quarter of a gigabyte in bytes
    from kcc_runtime.modules import core
    from kcc_runtime.sip import headers, uri

    long_uri = b"sip:" + b"a" * 5000 + b"@example.com"
    before = uri._parse_uri_cached.cache_info().currsize
    assert uri.parse_uri(long_uri) == uri.parse_uri(long_uri)
    assert uri._parse_uri_cached.cache_info().currsize == before
    long_cseq = b"1" + b" " * 400 + b"INVITE"
    before = headers._parse_cseq_cached.cache_info().currsize
    assert headers.parse_cseq(long_cseq).method == "INVITE"
    assert headers._parse_cseq_cached.cache_info().currsize == before
    before = core._split_uri.cache_info().currsize
    assert core.split_uri(long_uri.decode()) is not None
    assert core._split_uri.cache_info().currsize == before
    short = b"sip:bob@example.com"
    assert uri.parse_uri(short) is uri.parse_uri(short)  # short values are cached


def test_shed_packs_a_finished_long_index_that_reads_the_same() -> None:
    lines = b"".join(b"Route: <sip:127.0.0.1:%d;lr>\r\n" % (5060 + n) for n in range(199))
    data = INVITE.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\n" + lines)
    msg = parse_message(data)
    assert msg.shed() == 0
    assert isinstance(msg._spans, list)  # not packed before the index is finished
    names, spans = list(msg.names), list(msg.spans)
    assert len(names) == 208
    msg.shed()
    packed = msg.spans
    assert isinstance(packed, PackedSpans)
    assert msg.names == names
    assert list(packed) == spans
    assert len(packed) == len(spans)
    assert [packed[i] for i in range(len(spans))] == spans
    assert packed[-1] == spans[-1]
    assert packed[3:6] == spans[3:6]
    with pytest.raises(IndexError):
        packed[208]
    # every read and edit goes on from the packed index
    assert len(msg.routes) == 199
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.remove_header("Route") == 199
    assert b"Route:" not in msg.serialize()
    assert msg.serialize() == INVITE


def test_shed_leaves_a_short_index_a_list() -> None:
    msg = parse_message(INVITE)
    _ = msg.names
    msg.shed()
    assert isinstance(msg.spans, list)
