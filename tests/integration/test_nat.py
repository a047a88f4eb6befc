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

The flows of points 1 to 5 are shared with ``test_stock_nat.py`` (``nat_calls``): this
file adds what only ``examples/nat.cfg`` does, its ``NAT detected`` and ``INVITE to``
log lines, and point 6.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.integration.conftest import (
    EXAMPLES,
    IMPL_CHILDREN,
    UA_WAIT,
    NgTap,
    RtpEngine,
    RunningProxy,
    Ua,
    free_udp_ports,
    impl_children_id,
    module_services,
    needs_rtpengine,
    needs_sipp,
    start_proxy_cfg,
    wait_until,
)
from tests.integration.nat_calls import (
    EXPIRES,
    PRIVATE,
    call_from_nated_user,
    call_to_nated_user,
    check_register_ok,
    check_rport_via,
    register,
    register_bob,
)

pytestmark = [needs_sipp, needs_rtpengine]

#: what the example cfg names, rewritten per run
EXAMPLE_LISTEN = "listen=udp:127.0.0.1:5060"
EXAMPLE_NG = '"rtpengine_sock", "udp:127.0.0.1:2223"'


@pytest.fixture(scope="module")
def ng_tap(rtpengine: RtpEngine) -> Iterator[NgTap]:
    with NgTap(rtpengine.port) as tap:
        yield tap


# -- the proxy ----------------------------------------------------------------------------


def nat_cfg(port: int, ng_port: int) -> str:
    """``examples/nat.cfg`` listening on ``port``, rtpengine's ng socket on
    ``ng_port``; nothing else changed."""
    text = (EXAMPLES / "nat.cfg").read_text(encoding="utf-8")
    assert EXAMPLE_LISTEN in text and EXAMPLE_NG in text
    text = text.replace(EXAMPLE_LISTEN, f"listen=udp:127.0.0.1:{port}")
    return text.replace(EXAMPLE_NG, f'"rtpengine_sock", "udp:127.0.0.1:{ng_port}"')


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def nat(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ng_tap: NgTap,
) -> Iterator[RunningProxy]:
    impl, children = request.param
    with module_services(tmp_path_factory, f"nat-{impl}-{children}") as group:
        (port,) = free_udp_ports(1)
        text = nat_cfg(port, ng_tap.port)
        proxy = start_proxy_cfg(group, impl, "nat", text, children=children, port=port)
        yield RunningProxy(impl, children, proxy)


def logged(nat: RunningProxy, line: str, marker: str) -> None:
    """The script logs ``line`` (found among its lines containing ``marker``)."""
    assert wait_until(lambda: line in nat.script_lines(marker), UA_WAIT), nat.log(60)


# -- tests ----------------------------------------------------------------------------------


def test_nated_register_is_detected_and_saved_with_its_source(nat: RunningProxy, bob: Ua) -> None:
    """Via and Contact name 127.0.0.77:5099, the packet comes from 127.0.0.1:X:
    ``nat_uac_test("19")`` fires and the contact is saved with ``received``; the
    reply goes back to 127.0.0.1:X, not to the Via (force_rport + the source)."""
    user = f"bob{secrets.token_hex(3)}"
    ok = register_bob(nat, bob, user)
    check_register_ok(ok, nat, user, contact_host=PRIVATE, received=f"127.0.0.1:{bob.port}")
    check_rport_via(ok, bob)
    logged(
        nat,
        f"NAT detected: REGISTER from 127.0.0.1:{bob.port}, Contact <sip:{user}@{PRIVATE}>",
        user,
    )


def test_register_without_nat_is_saved_as_is(nat: RunningProxy, alice: Ua, bob: Ua) -> None:
    """A client whose Via and Contact name its source is not detected: no log
    line, no ``received`` (and flag 1 does not fire on 127.0.0.0/8)."""
    user = f"carol{secrets.token_hex(3)}"
    alice_host = f"127.0.0.1:{alice.port}"
    ok = register(nat, alice, user, via=alice_host, contact_host=alice_host)
    assert ok.one("contact") == f"<sip:{user}@{alice_host}>;expires={EXPIRES}"
    # a later line proves the earlier REGISTER was fully handled
    probe = register_bob(nat, bob, f"{user}x")
    assert probe.status == 200
    assert wait_until(lambda: bool(nat.script_lines(f"{user}x")), UA_WAIT), nat.log(60)
    assert [line for line in nat.script_lines(f"<sip:{user}@")] == []


def test_call_to_a_nated_user_reaches_its_source_with_media_through_rtpengine(
    nat: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    call = call_to_nated_user(nat, rtpengine, ng_tap, alice, bob)
    # the cfg's xlog in its branch route: lookup()'s R-URI and $du (bob's source)
    user = call.callee
    logged(nat, f"INVITE to {user}: sip:{user}@{PRIVATE} via sip:127.0.0.1:{bob.port}", "INVITE to")


def test_call_from_a_nated_user_gets_its_contact_aliased(
    nat: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    call = call_from_nated_user(nat, rtpengine, ng_tap, alice, bob)
    caller = call.caller
    logged(
        nat,
        f"NAT detected: INVITE from 127.0.0.1:{bob.port}, Contact <sip:{caller}@{PRIVATE}>",
        caller,
    )
