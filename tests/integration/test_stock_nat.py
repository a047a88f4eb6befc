"""The stock Kamailio config with ``WITH_NAT`` and ``WITH_RTPENGINE`` (issue 7
acceptance, "With WITH_NAT"): Debian's unmodified ``/etc/kamailio/kamailio.cfg``
(Kamailio 5.6) run in real Kamailio and as the proxy ``kcc build -DWITH_NAT
-DWITH_RTPENGINE`` makes of it, children 1 and 2, against the real ``rtpengine``
daemon, with the same exact expectations (Kamailio is the oracle: every value asserted
here was first measured against Kamailio 5.6.3 by this file's Kamailio
parametrization).

The config is read from the installed package at test time (GPL: never copied into the
repository) and run unchanged, as ``test_stock_cfg.py`` does (listen address and
runtime directory on the command line, ``conftest.start_proxy_cfg``; the switches as
``-A``/``-D``). It names rtpengine's ng socket ``udp:127.0.0.1:2223``
(``modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")``): the tests run in
a private network namespace (``scripts/test.sh``), so that fixed port is free, and the
ng relay of conftest (``NgTap``) listens there, in front of one rtpengine of the module
(``conftest.rtpengine``, ng on a free port), recording every command the proxy sends.

The user agents are raw UDP sockets (``conftest.Ua``; SIPp cannot name another address
in its Via than the one it sends from), all on loopback:

- bob, "behind NAT": sends from 127.0.0.1:X but names ``127.0.0.77:5099`` in his Via
  and Contact and 127.0.0.77 in his SDP (nothing listens there: a request sent to
  127.0.0.77:5099 would be lost);
- alice, the caller: sends from 127.0.0.1:Y and names that address everywhere.

What is checked, route by route of the stock cfg (``route[NATDETECT]``,
``route[NATMANAGE]``, ``route[DLGURI]``, and the REGISTRAR, RELAY, WITHINDLG,
MANAGE_BRANCH and MANAGE_REPLY routes that call them):

1. ``nat_uac_test("19")`` (flags 1: Contact in RFC 1918 space, 2: Via address is not
   the source, 16: Via port is not the source port). On loopback flag 1 never fires
   (127.0.0.0/8 is not a private range for nathelper), so a REGISTER whose Contact
   alone names 127.0.0.77:5099 is *not* detected; a Via naming another address (flag 2)
   or another port (flag 16) is. ``fix_nated_register()`` stores the source as the
   contact's ``received``, listed by the 200 OK
   (``;expires=600;received="sip:127.0.0.1:X"``); an undetected contact has none.
2. alice calls bob: ``lookup()`` sends the INVITE to bob's source; the branch route's
   NATMANAGE runs for bob's branch (usrloc's ``nat_bflag`` ``FLB_NATB`` came back with
   the contact), adds ``;nat=yes`` to the stock ``Record-Route`` and has rtpengine
   rewrite the SDP (``nat_uac_test("8")`` is false for 127.0.0.66: flags
   ``replace-origin replace-session-connection``); a ``query`` on rtpengine confirms
   the port. bob's 200 reaches alice with the answer rewritten and his Contact aliased
   (``set_contact_alias()`` in MANAGE_REPLY for the first hop); ACK and BYE to the
   aliased Contact are loose-routed to bob's source with the alias gone
   (``handle_ruri_alias()`` in DLGURI), and the BYE's branch route (``;nat=yes`` in
   its Route: ``check_route_param``) deletes the media session.
3. bob behind the NAT calls alice: NATDETECT aliases his Contact on the first hop and
   alice's BYE comes back to his source.

The ng commands are compared as ordered item lists (the bytes), same in both:
offer and answer carry ``replace [origin session-connection]`` and the delete none
(measured, as with ``examples/nat.cfg``). Values that differ run to run (rtpengine's
ports, branches, tags) are read from the messages and from rtpengine's ``query``;
with kcc and two workers the proxy's own Via and a relayed request's source name the
worker's reply socket (docs/architecture.md), so only the host is compared there.

Two kcc bugs this file found (fixed, each with a unit test): ``check_route_param`` in
the branch route (NATMANAGE from MANAGE_BRANCH) did not see the request route's
``loose_route()`` (no rtpengine ``delete`` for a BYE; rr's ``_routed_params``), and
``is_first_hop()`` on a reply did not count the listen socket given on the command
line (no alias on bob's 180/200 with two workers; siputils).
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import (
    IMPLS,
    RTP_MAX,
    RTP_MIN,
    NgTap,
    Proxy,
    RtpEngine,
    Services,
    Sip,
    Ua,
    expected_sdp,
    media_port,
    needs_sipp,
    reply,
    request,
    sdp,
    start_proxy_cfg,
    top_via_address,
)

STOCK_CFG = Path("/etc/kamailio/kamailio.cfg")
#: the stock cfg's rtpengine modparam (checked to be there, unchanged)
STOCK_NG = 'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")'
STOCK_NG_PORT = 2223
DEFINES = ("WITH_NAT", "WITH_RTPENGINE")

pytestmark = [
    needs_sipp,
    pytest.mark.skipif(
        not STOCK_CFG.is_file(), reason=f"{STOCK_CFG} (Debian's kamailio package) is needed"
    ),
    pytest.mark.skipif(
        shutil.which("rtpengine") is None, reason="rtpengine-daemon is needed (scripts/setup.sh)"
    ),
]

#: the address bob's NAT hides (named in his Via, Contact and SDP)
PRIVATE_HOST = "127.0.0.77"
PRIVATE_PORT = 5099
EXPIRES = 600
SERVER = "kamailio (5.6.3 (x86_64/linux))"


@pytest.fixture(scope="module")
def ng_tap(rtpengine: RtpEngine) -> Iterator[NgTap]:
    """The ng relay on the stock cfg's fixed ng socket, 127.0.0.1:2223."""
    tap = NgTap(rtpengine.port, STOCK_NG_PORT)
    try:
        yield tap
    finally:
        tap.close()


@dataclass
class StockNat:
    impl: str
    children: int
    proxy: Proxy

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.proxy.port)

    def log(self) -> str:
        return f"{self.impl} proxy log:\n{self.proxy.service.log_tail(60)}"


@pytest.fixture(
    scope="module",
    params=[(impl, children) for impl in IMPLS for children in (1, 2)],
    ids=lambda param: f"{param[0]}-children{param[1]}",
)
def stock(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ng_tap: NgTap,
) -> Iterator[StockNat]:
    """The unmodified stock cfg with ``WITH_NAT WITH_RTPENGINE`` in ``impl``."""
    impl, children = request.param
    group = Services(tmp_path_factory.mktemp(f"stock-nat-{impl}-{children}"))
    try:
        text = STOCK_CFG.read_text(encoding="utf-8")
        assert text.count(STOCK_NG) == 1, "the stock cfg no longer names udp:127.0.0.1:2223"
        proxy = start_proxy_cfg(group, impl, "kamailio", text, children=children, defines=DEFINES)
        yield StockNat(impl, children, proxy)
    finally:
        group.stop_all()


# -- helpers --------------------------------------------------------------------------------


def register(stock: StockNat, ua: Ua, user: str, *, via: str, contact_host: str) -> Sip:
    """``user`` registers from ``ua`` naming ``via`` (host:port) in its Via and
    ``contact_host`` (host:port) in its Contact; returns the 200."""
    text = request(
        "REGISTER",
        f"sip:{stock.domain}",
        via=via,
        from_=f"<sip:{user}@{stock.domain}>;tag={secrets.token_hex(4)}",
        to=f"<sip:{user}@{stock.domain}>",
        call_id=f"reg-{secrets.token_hex(6)}",
        cseq=1,
        contact=f"<sip:{user}@{contact_host}>",
        extra=(f"Expires: {EXPIRES}",),
    )
    ua.send(text, stock.address)
    return ua.expect("200")


def register_bob(stock: StockNat, bob: Ua, user: str) -> Sip:
    """``user`` registers from behind the NAT (Via and Contact 127.0.0.77:5099)."""
    private = f"{PRIVATE_HOST}:{PRIVATE_PORT}"
    return register(stock, bob, user, via=private, contact_host=private)


def check_proxy_via(via: str, stock: StockNat) -> None:
    """The proxy's own Via: its listen address, except kcc with several workers,
    whose relays name the worker's reply socket (docs/architecture.md, issue 6)."""
    if stock.impl == "kcc" and stock.children > 1:
        assert re.fullmatch(r"SIP/2\.0/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK\S+", via), via
    else:
        assert re.fullmatch(rf"SIP/2\.0/UDP 127\.0\.0\.1:{stock.port};branch=z9hG4bK\S+", via), via


def check_proxy_source(message: Sip, stock: StockNat) -> None:
    """Where a relayed request comes from: the listen socket, except kcc with several
    workers, which send from the worker's reply socket (docs/architecture.md)."""
    if stock.impl == "kcc" and stock.children > 1:
        assert message.source[0] == "127.0.0.1", message.source
    else:
        assert message.source == stock.address, message.source


# -- 1. detection and registration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "detected"),
    [
        ("via-and-contact", True),
        ("via-address", True),
        ("via-port", True),
        ("contact-only", False),
        ("no-nat", False),
    ],
)
def test_register_detection_flags(stock: StockNat, bob: Ua, case: str, detected: bool) -> None:
    """Which of ``nat_uac_test("19")``'s flags fire on loopback: 2 (Via address) and
    16 (Via port) do, 1 (Contact in RFC 1918 space) does not for 127.0.0.77 (a
    Contact alone naming another address is not detected). Detected: the 200 lists
    the contact with ``received`` = the source (``fix_nated_register()``)."""
    user = f"u{case.replace('-', '')}{secrets.token_hex(3)}"
    source = f"127.0.0.1:{bob.port}"
    private = f"{PRIVATE_HOST}:{PRIVATE_PORT}"
    via, contact = {
        "via-and-contact": (private, private),
        "via-address": (f"{PRIVATE_HOST}:{bob.port}", source),
        "via-port": (f"127.0.0.1:{PRIVATE_PORT}", source),
        "contact-only": (source, private),
        "no-nat": (source, source),
    }[case]
    ok = register(stock, bob, user, via=via, contact_host=contact)
    assert ok.source == stock.address
    assert ok.names() == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Server",
        "Content-Length",
    ]
    assert ok.one("server") == SERVER
    received = f';received="sip:{source}"' if detected else ""
    assert ok.one("contact") == f"<sip:{user}@{contact}>;expires={EXPIRES}{received}"
    assert re.fullmatch(rf"<sip:{user}@{re.escape(stock.domain)}>;tag=\S+", ok.one("to"))


def test_nated_register_reply_goes_to_the_source(stock: StockNat, bob: Ua) -> None:
    """force_rport (REQINIT): the 200 goes back to 127.0.0.1:X, not to the Via's
    127.0.0.77:5099, and the Via says so with ``rport`` and ``received``."""
    user = f"bob{secrets.token_hex(3)}"
    ok = register_bob(stock, bob, user)
    assert ok.source == stock.address
    assert re.fullmatch(
        rf"SIP/2\.0/UDP {PRIVATE_HOST}:{PRIVATE_PORT};branch=z9hG4bK[0-9a-f]+;"
        rf"rport={bob.port};received=127\.0\.0\.1",
        ok.one("via"),
    ), ok.one("via")


# -- 2. a call to the user behind the NAT -----------------------------------------------------


def test_call_to_a_nated_user_reaches_its_source_with_media_through_rtpengine(
    stock: StockNat, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    user = f"bob{secrets.token_hex(3)}"
    domain = stock.domain
    register_bob(stock, bob, user)
    proxy = stock.address
    record_route = f"<sip:127.0.0.1:{stock.port};lr;nat=yes>"
    bob_contact = f"<sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT}>"
    aliased = f"<sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT};alias=127.0.0.1~{bob.port}~1>"
    call_id = f"call-{secrets.token_hex(6)}"
    from_tag = f"a{secrets.token_hex(4)}"
    from_ = f"<sip:alice@{domain}>;tag={from_tag}"
    offer = sdp("127.0.0.66", 6000, 111)
    answer = sdp(PRIVATE_HOST, 7000, 222)

    # -- INVITE: to bob's source, record-routed with nat=yes, SDP through rtpengine
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    alice.send(
        request(
            "INVITE",
            f"sip:{user}@{domain}",
            via=f"127.0.0.1:{alice.port}",
            from_=from_,
            to=f"<sip:{user}@{domain}>",
            call_id=call_id,
            cseq=1,
            contact=f"<sip:alice@127.0.0.1:{alice.port}>",
            body=offer,
            branch=branch,
        ),
        proxy,
    )
    trying = alice.expect("100")
    assert trying.start == "SIP/2.0 100 trying -- your call is important to us"
    invite = bob.expect("INVITE")
    check_proxy_source(invite, stock)
    assert invite.start == f"INVITE sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT} SIP/2.0"
    assert invite.names() == [
        "Record-Route",
        "Via",
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Type",
        "Content-Length",
    ]
    assert invite.one("record-route") == record_route
    proxy_via, alice_via = invite.all("via")
    check_proxy_via(proxy_via, stock)
    alice_received = (
        f"SIP/2.0/UDP 127.0.0.1:{alice.port};received=127.0.0.1;branch={branch};rport={alice.port}"
    )
    assert alice_via == alice_received
    assert invite.one("max-forwards") == "69"
    assert invite.one("contact") == f"<sip:alice@127.0.0.1:{alice.port}>"
    offered = media_port(invite)
    assert invite.body == expected_sdp(111, offered)
    assert invite.one("content-length") == str(len(invite.body))
    assert RTP_MIN <= offered <= RTP_MAX
    assert offered in rtpengine.local_ports(call_id)

    # -- 180 and 200 from behind the NAT: Contact aliased, answer through rtpengine
    back = top_via_address(invite)
    bob.send(reply(invite, 180, "Ringing", to_tag="b1", contact=bob_contact), back)
    ringing = alice.expect("180")
    bob.send(reply(invite, 200, "OK", to_tag="b1", contact=bob_contact, body=answer), back)
    ok = alice.expect("200")
    for got in (ringing, ok):
        assert got.source == proxy
        assert got.names()[:8] == [
            "Via",
            "Record-Route",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            *(["Content-Type"] if got is ok else ["Content-Length"]),
        ]
        assert got.one("via") == alice_received
        assert got.one("record-route") == record_route
        assert got.one("to") == f"<sip:{user}@{domain}>;tag=b1"
        assert got.one("contact") == aliased
    assert ringing.body == ""
    answered = media_port(ok)
    assert ok.body == expected_sdp(222, answered)
    assert answered != offered
    assert {offered, answered} <= rtpengine.local_ports(call_id)

    # -- ACK and BYE: loose-routed to the alias, i.e. bob's source, alias removed
    target = f"sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT};alias=127.0.0.1~{bob.port}~1"
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        branch = f"z9hG4bK{secrets.token_hex(6)}"
        alice.send(
            request(
                method,
                target,
                via=f"127.0.0.1:{alice.port}",
                from_=from_,
                to=f"<sip:{user}@{domain}>;tag=b1",
                call_id=call_id,
                cseq=cseq,
                route=record_route,
                branch=branch,
            ),
            proxy,
        )
        got = bob.expect(method)
        check_proxy_source(got, stock)
        assert got.start == f"{method} sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT} SIP/2.0"
        assert got.names() == [
            "Via",
            "Via",
            "Max-Forwards",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Content-Length",
        ]
        proxy_via, alice_via = got.all("via")
        check_proxy_via(proxy_via, stock)
        assert alice_via == (
            f"SIP/2.0/UDP 127.0.0.1:{alice.port};received=127.0.0.1;branch={branch};"
            f"rport={alice.port}"
        )
        assert got.one("cseq") == f"{cseq} {method}"
        if method == "BYE":
            bob.send(reply(got, 200, "OK", to_tag="b1", contact=bob_contact), top_via_address(got))
            bye_ok = alice.expect("200")
            assert bye_ok.one("cseq") == "2 BYE"

    # -- rtpengine: offer (alice's SDP), answer (bob's), delete (the BYE's branch)
    received_from = ("received-from", [b"IP4", b"127.0.0.1"])
    replace = ("replace", [b"origin", b"session-connection"])
    supports = ("supports", [b"load limit"])
    tags = ("from-tag", from_tag.encode())
    call = ("call-id", call_id.encode())
    assert [list(command.items()) for command in ng_tap.for_call(call_id)] == [
        [
            supports,
            ("sdp", offer.encode()),
            replace,
            call,
            received_from,
            tags,
            ("command", b"offer"),
        ],
        [
            supports,
            ("sdp", answer.encode()),
            replace,
            call,
            received_from,
            tags,
            ("to-tag", b"b1"),
            ("command", b"answer"),
        ],
        [supports, call, received_from, tags, ("command", b"delete")],
    ]
    assert rtpengine.query(call_id) == {"result": b"error", "error-reason": b"Unknown call-id"}


# -- 3. a call from the user behind the NAT ------------------------------------------------


def test_call_from_a_nated_user_gets_its_contact_aliased(
    stock: StockNat, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    """bob calls alice: NATDETECT (``FLT_NATS``, first hop) aliases his Contact, the
    branch route offers his SDP to rtpengine; alice's 200 reaches bob at his source
    (rport) with the answer rewritten; her BYE to the aliased Contact reaches him
    there too, and deletes the session."""
    caller = f"bob{secrets.token_hex(3)}"
    callee = f"alice{secrets.token_hex(3)}"
    domain = stock.domain
    proxy = stock.address
    record_route = f"<sip:127.0.0.1:{stock.port};lr;nat=yes>"
    alice_host = f"127.0.0.1:{alice.port}"
    register(stock, alice, callee, via=alice_host, contact_host=alice_host)
    call_id = f"call-{secrets.token_hex(6)}"
    from_tag = f"b{secrets.token_hex(4)}"
    from_ = f"<sip:{caller}@{domain}>;tag={from_tag}"
    offer = sdp(PRIVATE_HOST, 7000, 333)
    answer = sdp("127.0.0.66", 6000, 444)
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    bob.send(
        request(
            "INVITE",
            f"sip:{callee}@{domain}",
            via=f"{PRIVATE_HOST}:{PRIVATE_PORT}",
            from_=from_,
            to=f"<sip:{callee}@{domain}>",
            call_id=call_id,
            cseq=1,
            contact=f"<sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT}>",
            body=offer,
            branch=branch,
        ),
        proxy,
    )
    trying = bob.expect("100")
    assert trying.source == proxy
    invite = alice.expect("INVITE")
    assert invite.start == f"INVITE sip:{callee}@{alice_host} SIP/2.0"
    assert invite.one("record-route") == record_route
    assert invite.one("contact") == (
        f"<sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT};alias=127.0.0.1~{bob.port}~1>"
    )
    bob_received = (
        f"SIP/2.0/UDP {PRIVATE_HOST}:{PRIVATE_PORT};received=127.0.0.1;branch={branch};"
        f"rport={bob.port}"
    )
    assert invite.all("via")[1] == bob_received
    offered = media_port(invite)
    assert invite.body == expected_sdp(333, offered)

    alice_contact = f"<sip:{callee}@{alice_host}>"
    alice.send(
        reply(invite, 200, "OK", to_tag="a1", contact=alice_contact, body=answer),
        top_via_address(invite),
    )
    ok = bob.expect("200")
    assert ok.source == proxy
    assert ok.one("via") == bob_received
    assert ok.one("contact") == alice_contact
    answered = media_port(ok)
    assert ok.body == expected_sdp(444, answered)
    assert {offered, answered} <= rtpengine.local_ports(call_id)

    # alice hangs up: her BYE goes to bob's aliased Contact, i.e. his source
    alice.send(
        request(
            "BYE",
            f"sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT};alias=127.0.0.1~{bob.port}~1",
            via=alice_host,
            from_=f"<sip:{callee}@{domain}>;tag=a1",
            to=from_,
            call_id=call_id,
            cseq=1,
            route=record_route,
        ),
        proxy,
    )
    bye = bob.expect("BYE")
    assert bye.start == f"BYE sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT} SIP/2.0"
    assert bye.all("route") == []
    bob.send(
        reply(bye, 200, "OK", to_tag=from_tag, contact=f"<sip:{caller}@{PRIVATE_HOST}>"),
        top_via_address(bye),
    )
    assert alice.expect("200").one("cseq") == "1 BYE"
    commands = ng_tap.for_call(call_id)
    assert [c.get("command") for c in commands] == [b"offer", b"answer", b"delete"]
    assert [(c.get("from-tag"), c.get("to-tag")) for c in commands] == [
        (from_tag.encode(), None),
        (from_tag.encode(), b"a1"),
        (b"a1", None),
    ]
    assert rtpengine.query(call_id) == {"result": b"error", "error-reason": b"Unknown call-id"}
