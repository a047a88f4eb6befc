"""NAT traversal with media relay (issue 7 point 4 acceptance): ``examples/nat.cfg``
(a registrar + proxy in the stock config's NAT style, nathelper + rtpengine) run in
Kamailio 5.6 and as the proxy kcc builds, with children 1 and 2, against the real
``rtpengine`` daemon (userspace, ``--table=-1``), with the same exact expectations
(Kamailio is the oracle: every value asserted here was first measured against
Kamailio 5.6.3 by this file's Kamailio parametrization).

The user agents are raw UDP sockets (``conftest.Ua``; SIPp cannot put another address in
its Via than the one it sends from), all on loopback:

- bob, "behind NAT": sends from 127.0.0.1:X but names ``127.0.0.77:5099`` in its Via
  and Contact, and 127.0.0.77 in its SDP (nothing listens on 127.0.0.77:5099: a
  request sent there would be lost);
- alice, the caller: sends from 127.0.0.1:Y and names that address everywhere.

What is checked, in order:

1. bob's REGISTER: ``nat_uac_test("19")`` fires (the Via's address and port differ
   from the source: flags 2 and 16; 127.0.0.0/8 is not a private range for
   nathelper, so flag 1 never fires on loopback, measured), the proxy logs ``NAT
   detected``, ``fix_nated_register()`` stores the source as the contact's received
   address: the 200 OK lists ``<sip:bob@127.0.0.77:5099>;expires=600;
   received="sip:127.0.0.1:X"``.
2. alice's INVITE to bob: ``lookup()`` rewrites the R-URI to bob's Contact and sets
   ``$du`` to the received address, so bob gets the INVITE at 127.0.0.1:X, with
   ``Record-Route: <sip:127.0.0.1:P;lr;nat=yes>`` (``add_rr_param`` in the branch
   route, bob's contact carries usrloc's ``nat_bflag``), and an SDP whose ``o=``/
   ``c=`` name 127.0.0.1 and whose ``m=`` port is one of rtpengine's (the
   ``rtpengine_manage`` offer; ``query`` on the ng port confirms the port).
3. bob's 180 and 200 (SDP on 127.0.0.77): the 200 reaches alice with its SDP
   rewritten by the answer (rtpengine's other port) and bob's Contact aliased
   (``set_contact_alias()``: ``;alias=127.0.0.1~X~1``).
4. alice's ACK and BYE (to the aliased Contact, Route with ``;nat=yes``):
   ``loose_route()``, ``check_route_param("nat=yes")``, ``handle_ruri_alias()``
   sends them to 127.0.0.1:X with the alias gone from the R-URI; the BYE's branch
   route deletes the media session (rtpengine runs with ``--delete-delay=0``:
   ``query`` then answers ``Unknown call-id``).
5. The other way round, bob behind the NAT calls alice: his INVITE is detected and
   its Contact aliased (``;alias=127.0.0.1~X~1``) on the first hop, alice's 200
   reaches bob at his source (``rport``), her BYE to the aliased Contact too.
6. A client without NAT (Via and Contact name its source) is not detected: no
   ``received``, no log line.

The ng commands are compared too: the proxy talks to rtpengine through a relay
(``conftest.NgTap``) that records each command; the offer, answer and delete of a
call must be the same dictionaries, key order included, in Kamailio and kcc
(measured: Kamailio 5.6.3's delete carries no ``replace`` list, the offer and answer
do). Values that differ run to run (rtpengine's ports, the proxy's branches and
To-tags) are read from the messages and from rtpengine's ``query`` answer, never
assumed; with kcc and two workers the proxy's own Via names the worker's reply
socket (docs/architecture.md), so only its host is compared there.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.conftest import (
    EXAMPLES,
    IMPLS,
    RTP_MAX,
    RTP_MIN,
    UA_WAIT,
    NgTap,
    Proxy,
    RtpEngine,
    Services,
    Sip,
    Ua,
    expected_sdp,
    free_udp_ports,
    media_port,
    needs_sipp,
    reply,
    request,
    sdp,
    start_proxy_cfg,
    top_via_address,
    wait_until,
)

pytestmark = [
    needs_sipp,
    pytest.mark.skipif(
        shutil.which("rtpengine") is None, reason="rtpengine-daemon is needed (scripts/setup.sh)"
    ),
]

#: what the example cfg names, rewritten per run
EXAMPLE_LISTEN = "listen=udp:127.0.0.1:5060"
EXAMPLE_NG = '"rtpengine_sock", "udp:127.0.0.1:2223"'
#: the address bob's NAT hides (named in his Via, Contact and SDP)
PRIVATE_HOST = "127.0.0.77"
PRIVATE_PORT = 5099
EXPIRES = 600


@pytest.fixture(scope="module")
def ng_tap(rtpengine: RtpEngine) -> Iterator[NgTap]:
    tap = NgTap(rtpengine.port)
    try:
        yield tap
    finally:
        tap.close()


# -- the proxy ----------------------------------------------------------------------------


@dataclass
class NatProxy:
    impl: str
    children: int
    proxy: Proxy

    @property
    def port(self) -> int:
        return self.proxy.port

    def log_text(self) -> str:
        return self.proxy.service.log.read_text(encoding="utf-8", errors="replace")

    def log(self) -> str:
        return f"{self.impl} proxy log:\n{self.proxy.service.log_tail(60)}"


def nat_cfg(port: int, ng_port: int) -> str:
    """``examples/nat.cfg`` listening on ``port``, rtpengine's ng socket on
    ``ng_port``; nothing else changed."""
    text = (EXAMPLES / "nat.cfg").read_text(encoding="utf-8")
    assert EXAMPLE_LISTEN in text and EXAMPLE_NG in text
    text = text.replace(EXAMPLE_LISTEN, f"listen=udp:127.0.0.1:{port}")
    return text.replace(EXAMPLE_NG, f'"rtpengine_sock", "udp:127.0.0.1:{ng_port}"')


@pytest.fixture(
    scope="module",
    params=[(impl, children) for impl in IMPLS for children in (1, 2)],
    ids=lambda param: f"{param[0]}-children{param[1]}",
)
def nat(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ng_tap: NgTap,
) -> Iterator[NatProxy]:
    impl, children = request.param
    group = Services(tmp_path_factory.mktemp(f"nat-{impl}-{children}"))
    try:
        (port,) = free_udp_ports(1)
        text = nat_cfg(port, ng_tap.port)
        proxy = start_proxy_cfg(group, impl, "nat", text, children=children, port=port)
        yield NatProxy(impl, children, proxy)
    finally:
        group.stop_all()


def bob_contact_of(user: str) -> str:
    """bob's Contact as he writes it (the address his NAT hides)."""
    return f"<sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT}>"


def register_bob(nat: NatProxy, bob: Ua, user: str) -> Sip:
    """``user`` registers from behind the NAT: Via and Contact name
    127.0.0.77:5099, the packet comes from 127.0.0.1:bob.port."""
    domain = f"127.0.0.1:{nat.port}"
    text = request(
        "REGISTER",
        f"sip:{domain}",
        via=f"{PRIVATE_HOST}:{PRIVATE_PORT}",
        from_=f"<sip:{user}@{domain}>;tag={secrets.token_hex(4)}",
        to=f"<sip:{user}@{domain}>",
        call_id=f"reg-{secrets.token_hex(6)}",
        cseq=1,
        contact=f"<sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT}>",
        extra=(f"Expires: {EXPIRES}",),
    )
    bob.send(text, ("127.0.0.1", nat.port))
    return bob.expect("200")


# -- tests ----------------------------------------------------------------------------------


def log_lines(nat: NatProxy, marker: str) -> list[str]:
    """The script's log lines containing ``marker`` (the text after ``<script>: ``)."""
    return [
        line.split("<script>: ", 1)[1]
        for line in nat.log_text().splitlines()
        if "<script>: " in line and marker in line
    ]


def test_nated_register_is_detected_and_saved_with_its_source(nat: NatProxy, bob: Ua) -> None:
    """Via and Contact name 127.0.0.77:5099, the packet comes from 127.0.0.1:X:
    ``nat_uac_test("19")`` fires and the contact is saved with ``received``."""
    user = f"bob{secrets.token_hex(3)}"
    domain = f"127.0.0.1:{nat.port}"
    ok = register_bob(nat, bob, user)
    assert ok.source == ("127.0.0.1", nat.port)
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
    # force_rport + the source: the reply goes back to 127.0.0.1:X, not to the Via
    assert re.fullmatch(
        rf"SIP/2\.0/UDP {PRIVATE_HOST}:{PRIVATE_PORT};branch=z9hG4bK[0-9a-f]+;"
        rf"rport={bob.port};received=127\.0\.0\.1",
        ok.one("via"),
    ), ok.one("via")
    assert ok.one("contact") == (
        f"<sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT}>;expires={EXPIRES};"
        f'received="sip:127.0.0.1:{bob.port}"'
    )
    assert re.fullmatch(rf"<sip:{user}@{re.escape(domain)}>;tag=\S+", ok.one("to"))
    assert ok.one("server") == "kamailio (5.6.3 (x86_64/linux))"
    expected = (
        f"NAT detected: REGISTER from 127.0.0.1:{bob.port}, "
        f"Contact <sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT}>"
    )
    assert wait_until(lambda: expected in log_lines(nat, user), UA_WAIT), nat.log()


def test_register_without_nat_is_saved_as_is(nat: NatProxy, alice: Ua, bob: Ua) -> None:
    """A client whose Via and Contact name its source is not detected: no log
    line, no ``received`` (and flag 1 does not fire on 127.0.0.0/8)."""
    user = f"carol{secrets.token_hex(3)}"
    domain = f"127.0.0.1:{nat.port}"
    text = request(
        "REGISTER",
        f"sip:{domain}",
        via=f"127.0.0.1:{alice.port}",
        from_=f"<sip:{user}@{domain}>;tag=c1",
        to=f"<sip:{user}@{domain}>",
        call_id=f"reg-{secrets.token_hex(6)}",
        cseq=1,
        contact=f"<sip:{user}@127.0.0.1:{alice.port}>",
        extra=(f"Expires: {EXPIRES}",),
    )
    alice.send(text, ("127.0.0.1", nat.port))
    ok = alice.expect("200")
    assert ok.one("contact") == f"<sip:{user}@127.0.0.1:{alice.port}>;expires={EXPIRES}"
    # a later line proves the earlier REGISTER was fully handled
    probe = register_bob(nat, bob, f"{user}x")
    assert probe.status == 200
    assert wait_until(lambda: bool(log_lines(nat, f"{user}x")), UA_WAIT), nat.log()
    assert [line for line in log_lines(nat, f"<sip:{user}@")] == []


def check_proxy_via(via: str, nat: NatProxy) -> None:
    """The proxy's own Via: its listen address, except kcc with several workers,
    whose relays name the worker's reply socket (docs/architecture.md, issue 6)."""
    if nat.impl == "kcc" and nat.children > 1:
        assert re.fullmatch(r"SIP/2\.0/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK\S+", via), via
    else:
        assert re.fullmatch(rf"SIP/2\.0/UDP 127\.0\.0\.1:{nat.port};branch=z9hG4bK\S+", via), via


def test_call_to_a_nated_user_reaches_its_source_with_media_through_rtpengine(
    nat: NatProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    user = f"bob{secrets.token_hex(3)}"
    domain = f"127.0.0.1:{nat.port}"
    register_bob(nat, bob, user)
    proxy = ("127.0.0.1", nat.port)
    record_route = f"<sip:127.0.0.1:{nat.port};lr;nat=yes>"
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
    alice.expect("100")
    invite = bob.expect("INVITE")
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
    check_proxy_via(proxy_via, nat)
    alice_received = (
        f"SIP/2.0/UDP 127.0.0.1:{alice.port};received=127.0.0.1;branch={branch};rport={alice.port}"
    )
    assert alice_via == alice_received
    offered = media_port(invite)
    assert invite.body == expected_sdp(111, offered)
    assert invite.one("content-length") == str(len(invite.body))
    assert RTP_MIN <= offered <= RTP_MAX
    assert offered in rtpengine.local_ports(call_id)
    log = f"INVITE to {user}: sip:{user}@{PRIVATE_HOST}:{PRIVATE_PORT} via sip:127.0.0.1:{bob.port}"
    assert wait_until(lambda: log in log_lines(nat, "INVITE to"), UA_WAIT), nat.log()

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
        check_proxy_via(proxy_via, nat)
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
    # compared as item lists: the order of the dictionary is part of the bytes
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


def test_call_from_a_nated_user_gets_its_contact_aliased(
    nat: NatProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    """bob, behind the NAT, calls alice (registered without NAT): the INVITE is
    detected (``FLT_NATS``), its Contact aliased to bob's source
    (``set_contact_alias()`` on the first hop), its SDP offered to rtpengine in the
    branch route; alice's 200 reaches bob at his source (rport) with the answer
    rewritten; alice's BYE to the aliased Contact reaches bob at his source."""
    caller = f"bob{secrets.token_hex(3)}"
    callee = f"alice{secrets.token_hex(3)}"
    domain = f"127.0.0.1:{nat.port}"
    proxy = ("127.0.0.1", nat.port)
    record_route = f"<sip:127.0.0.1:{nat.port};lr;nat=yes>"
    alice.send(
        request(
            "REGISTER",
            f"sip:{domain}",
            via=f"127.0.0.1:{alice.port}",
            from_=f"<sip:{callee}@{domain}>;tag=r1",
            to=f"<sip:{callee}@{domain}>",
            call_id=f"reg-{secrets.token_hex(6)}",
            cseq=1,
            contact=f"<sip:{callee}@127.0.0.1:{alice.port}>",
            extra=(f"Expires: {EXPIRES}",),
        ),
        proxy,
    )
    alice.expect("200")
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
    assert invite.start == f"INVITE sip:{callee}@127.0.0.1:{alice.port} SIP/2.0"
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
    detected = (
        f"NAT detected: INVITE from 127.0.0.1:{bob.port}, "
        f"Contact <sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT}>"
    )
    assert wait_until(lambda: detected in log_lines(nat, caller), UA_WAIT), nat.log()

    alice_contact = f"<sip:{callee}@127.0.0.1:{alice.port}>"
    back = top_via_address(invite)
    alice.send(reply(invite, 200, "OK", to_tag="a1", contact=alice_contact, body=answer), back)
    ok = bob.expect("200")
    assert ok.source == proxy
    assert ok.one("via") == bob_received
    assert ok.one("contact") == alice_contact
    answered = media_port(ok)
    assert ok.body == expected_sdp(444, answered)
    assert {offered, answered} <= rtpengine.local_ports(call_id)

    # alice hangs up: her BYE goes to bob's aliased Contact, i.e. his source
    bye_branch = f"z9hG4bK{secrets.token_hex(6)}"
    alice.send(
        request(
            "BYE",
            f"sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT};alias=127.0.0.1~{bob.port}~1",
            via=f"127.0.0.1:{alice.port}",
            from_=f"<sip:{callee}@{domain}>;tag=a1",
            to=from_,
            call_id=call_id,
            cseq=1,
            route=record_route,
            branch=bye_branch,
        ),
        proxy,
    )
    bye = bob.expect("BYE")
    assert bye.start == f"BYE sip:{caller}@{PRIVATE_HOST}:{PRIVATE_PORT} SIP/2.0"
    assert bye.all("route") == []
    bob.send(
        reply(bye, 200, "OK", to_tag=from_tag, contact=bob_contact_of(caller)), top_via_address(bye)
    )
    assert alice.expect("200").one("cseq") == "1 BYE"
    commands = ng_tap.for_call(call_id)
    assert [c.get("command") for c in commands] == [b"offer", b"answer", b"delete"]
    # the BYE comes from the callee: its From tag is alice's
    assert [(c.get("from-tag"), c.get("to-tag")) for c in commands] == [
        (from_tag.encode(), None),
        (from_tag.encode(), b"a1"),
        (b"a1", None),
    ]
    assert rtpengine.query(call_id) == {"result": b"error", "error-reason": b"Unknown call-id"}
