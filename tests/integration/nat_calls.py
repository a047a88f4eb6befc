"""The NAT call flows that ``test_nat.py`` (``examples/nat.cfg``) and
``test_stock_nat.py`` (the stock cfg with ``WITH_NAT WITH_RTPENGINE``) both run, with
the same exact expectations: both cfgs detect NAT with ``nat_uac_test("19")``, fix
registrations with ``fix_nated_register()``, add ``;nat=yes`` to their Record-Route for
a NATed branch, alias a NATed Contact with ``set_contact_alias()`` and relay media
through rtpengine with ``replace-origin replace-session-connection`` (every value
measured against Kamailio 5.6.3 by each file's Kamailio parametrization).

Each file keeps what is specific to its cfg: the fixtures that start it, and the checks
of what only one cfg does (``examples/nat.cfg`` logs ``NAT detected`` and ``INVITE
to``; the stock cfg's detection flags are tested case by case). The flows return the
names they made up (users, Call-ID) so that a file can check more afterwards.

The user agents are raw UDP sockets (``conftest.Ua``): bob, "behind NAT", sends from
127.0.0.1:X but names ``127.0.0.77:5099`` in his Via and Contact and 127.0.0.77 in his
SDP (nothing listens there); alice sends from 127.0.0.1:Y and names that address
everywhere.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from tests.integration.conftest import (
    RTP_MAX,
    RTP_MIN,
    NgTap,
    RtpEngine,
    RunningProxy,
    Sip,
    Ua,
    expected_sdp,
    media_port,
    reply,
    request,
    sdp,
    top_via_address,
)

#: the address bob's NAT hides (named in his Via, Contact and SDP)
PRIVATE_HOST = "127.0.0.77"
PRIVATE_PORT = 5099
PRIVATE = f"{PRIVATE_HOST}:{PRIVATE_PORT}"
EXPIRES = 600
#: the Server header of the replies both proxies make themselves (measured)
SERVER = "kamailio (5.6.3 (x86_64/linux))"
#: the header order of a registrar's 200 OK (measured)
REGISTER_OK_HEADERS = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Server",
    "Content-Length",
]
#: rtpengine's answer to a query for a call whose session was deleted
DELETED = {"result": b"error", "error-reason": b"Unknown call-id"}


# -- registration -----------------------------------------------------------------------------


def register(running: RunningProxy, ua: Ua, user: str, *, via: str, contact_host: str) -> Sip:
    """``user`` registers from ``ua`` naming ``via`` (host:port) in its Via and
    ``contact_host`` (host:port) in its Contact; returns the 200."""
    text = request(
        "REGISTER",
        f"sip:{running.domain}",
        via=via,
        from_=f"<sip:{user}@{running.domain}>;tag={secrets.token_hex(4)}",
        to=f"<sip:{user}@{running.domain}>",
        call_id=f"reg-{secrets.token_hex(6)}",
        cseq=1,
        contact=f"<sip:{user}@{contact_host}>",
        extra=(f"Expires: {EXPIRES}",),
    )
    ua.send(text, running.address)
    return ua.expect("200")


def register_bob(running: RunningProxy, bob: Ua, user: str) -> Sip:
    """``user`` registers from behind the NAT (Via and Contact 127.0.0.77:5099, the
    packet from 127.0.0.1:bob.port)."""
    return register(running, bob, user, via=PRIVATE, contact_host=PRIVATE)


def check_register_ok(
    ok: Sip, running: RunningProxy, user: str, *, contact_host: str, received: str | None
) -> None:
    """The registrar's 200 from the proxy's address, in Kamailio's header order, with
    its Server, the contact saved with ``;expires=600`` and, when NAT was detected,
    ``;received="sip:<received>"`` (``fix_nated_register()``), and a To-tag added."""
    assert ok.source == running.address
    assert ok.names() == REGISTER_OK_HEADERS
    assert ok.one("server") == SERVER
    received_param = f';received="sip:{received}"' if received is not None else ""
    assert ok.one("contact") == f"<sip:{user}@{contact_host}>;expires={EXPIRES}{received_param}"
    assert re.fullmatch(rf"<sip:{user}@{re.escape(running.domain)}>;tag=\S+", ok.one("to"))


def check_rport_via(ok: Sip, bob: Ua) -> None:
    """force_rport: a reply to bob's request names his source in ``rport`` and
    ``received`` (it went back to 127.0.0.1:X, not to the Via's 127.0.0.77:5099)."""
    assert re.fullmatch(
        rf"SIP/2\.0/UDP {PRIVATE_HOST}:{PRIVATE_PORT};branch=z9hG4bK[0-9a-f]+;"
        rf"rport={bob.port};received=127\.0\.0\.1",
        ok.one("via"),
    ), ok.one("via")


# -- the proxy's own marks on what it relays --------------------------------------------------


def several_kcc_workers(running: RunningProxy) -> bool:
    """kcc with several workers relays from each worker's own reply socket and names it
    in its Via (docs/architecture.md, issue 6): only the host is then compared."""
    return running.impl == "kcc" and running.children > 1


def check_proxy_via(via: str, running: RunningProxy) -> None:
    """The proxy's own Via: its listen address (kcc with several workers: any port)."""
    port = r"\d+" if several_kcc_workers(running) else str(running.port)
    assert re.fullmatch(rf"SIP/2\.0/UDP 127\.0\.0\.1:{port};branch=z9hG4bK\S+", via), via


def check_proxy_source(message: Sip, running: RunningProxy) -> None:
    """Where a relayed request comes from: the listen socket (kcc with several workers:
    the worker's reply socket, on the same host)."""
    if several_kcc_workers(running):
        assert message.source[0] == "127.0.0.1", message.source
    else:
        assert message.source == running.address, message.source


def received_via(host: str, port: int, branch: str) -> str:
    """A user agent's Via as the proxy relays it: ``received`` and ``rport`` filled in
    (the UA sent from 127.0.0.1:``port``)."""
    return f"SIP/2.0/UDP {host};received=127.0.0.1;branch={branch};rport={port}"


# -- calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NatCall:
    """What a call flow made up, for a file's own checks afterwards."""

    #: the callee's user name (alice's when bob calls, bob's when alice calls)
    callee: str
    #: the caller's user name
    caller: str
    call_id: str


def call_to_nated_user(
    running: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> NatCall:
    """bob registers from behind the NAT and alice calls him: ``lookup()`` sends the
    INVITE to bob's source with ``;nat=yes`` in the Record-Route and the offer through
    rtpengine; bob's 180/200 reach alice with his Contact aliased and the answer
    through rtpengine; ACK and BYE to the aliased Contact are loose-routed to bob's
    source with the alias gone, and the BYE deletes the media session. The ng commands
    are compared as ordered item lists (the bytes)."""
    user = f"bob{secrets.token_hex(3)}"
    domain = running.domain
    register_bob(running, bob, user)
    proxy = running.address
    record_route = f"<sip:127.0.0.1:{running.port};lr;nat=yes>"
    bob_contact = f"<sip:{user}@{PRIVATE}>"
    aliased = f"<sip:{user}@{PRIVATE};alias=127.0.0.1~{bob.port}~1>"
    call_id = f"call-{secrets.token_hex(6)}"
    from_tag = f"a{secrets.token_hex(4)}"
    from_ = f"<sip:alice@{domain}>;tag={from_tag}"
    alice_host = f"127.0.0.1:{alice.port}"
    offer = sdp("127.0.0.66", 6000, 111)
    answer = sdp(PRIVATE_HOST, 7000, 222)

    # -- INVITE: to bob's source, record-routed with nat=yes, SDP through rtpengine
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    alice.send(
        request(
            "INVITE",
            f"sip:{user}@{domain}",
            via=alice_host,
            from_=from_,
            to=f"<sip:{user}@{domain}>",
            call_id=call_id,
            cseq=1,
            contact=f"<sip:alice@{alice_host}>",
            body=offer,
            branch=branch,
        ),
        proxy,
    )
    trying = alice.expect("100")
    assert trying.start == "SIP/2.0 100 trying -- your call is important to us"
    invite = bob.expect("INVITE")
    check_proxy_source(invite, running)
    assert invite.start == f"INVITE sip:{user}@{PRIVATE} SIP/2.0"
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
    check_proxy_via(proxy_via, running)
    alice_received = received_via(alice_host, alice.port, branch)
    assert alice_via == alice_received
    assert invite.one("max-forwards") == "69"
    assert invite.one("contact") == f"<sip:alice@{alice_host}>"
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
    target = f"sip:{user}@{PRIVATE};alias=127.0.0.1~{bob.port}~1"
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        branch = f"z9hG4bK{secrets.token_hex(6)}"
        alice.send(
            request(
                method,
                target,
                via=alice_host,
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
        check_proxy_source(got, running)
        assert got.start == f"{method} sip:{user}@{PRIVATE} SIP/2.0"
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
        check_proxy_via(proxy_via, running)
        assert alice_via == received_via(alice_host, alice.port, branch)
        assert got.one("cseq") == f"{cseq} {method}"
        if method == "BYE":
            bob.send(reply(got, 200, "OK", to_tag="b1", contact=bob_contact), top_via_address(got))
            bye_ok = alice.expect("200")
            assert bye_ok.one("cseq") == "2 BYE"

    # -- rtpengine: offer (alice's SDP), answer (bob's), delete (the BYE's branch),
    # compared as item lists: the order of the dictionary is part of the bytes
    # (measured: Kamailio 5.6.3's delete carries no replace list)
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
    assert rtpengine.query(call_id) == DELETED
    return NatCall(callee=user, caller="alice", call_id=call_id)


def call_from_nated_user(
    running: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> NatCall:
    """bob, behind the NAT, calls alice (registered without NAT): the INVITE is
    detected (``FLT_NATS``), its Contact aliased to bob's source
    (``set_contact_alias()`` on the first hop), its SDP offered to rtpengine in the
    branch route; alice's 200 reaches bob at his source (rport) with the answer
    rewritten; her BYE to the aliased Contact reaches him there too, and deletes the
    session (the BYE comes from the callee: its From tag is alice's)."""
    caller = f"bob{secrets.token_hex(3)}"
    callee = f"alice{secrets.token_hex(3)}"
    domain = running.domain
    proxy = running.address
    record_route = f"<sip:127.0.0.1:{running.port};lr;nat=yes>"
    alice_host = f"127.0.0.1:{alice.port}"
    register(running, alice, callee, via=alice_host, contact_host=alice_host)
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
            via=PRIVATE,
            from_=from_,
            to=f"<sip:{callee}@{domain}>",
            call_id=call_id,
            cseq=1,
            contact=f"<sip:{caller}@{PRIVATE}>",
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
    assert invite.one("contact") == f"<sip:{caller}@{PRIVATE};alias=127.0.0.1~{bob.port}~1>"
    bob_received = received_via(PRIVATE, bob.port, branch)
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
            f"sip:{caller}@{PRIVATE};alias=127.0.0.1~{bob.port}~1",
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
    assert bye.start == f"BYE sip:{caller}@{PRIVATE} SIP/2.0"
    assert bye.all("route") == []
    bob.send(
        reply(bye, 200, "OK", to_tag=from_tag, contact=f"<sip:{caller}@{PRIVATE}>"),
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
    assert rtpengine.query(call_id) == DELETED
    return NatCall(callee=callee, caller=caller, call_id=call_id)
