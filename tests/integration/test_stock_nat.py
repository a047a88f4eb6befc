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

The call flows of points 2 and 3 and the registration checks are shared with
``test_nat.py`` (``nat_calls``: the two cfgs behave alike there, measured); this file
adds the detection flags case by case.

Two kcc bugs this file found (fixed, each with a unit test): ``check_route_param`` in
the branch route (NATMANAGE from MANAGE_BRANCH) did not see the request route's
``loose_route()`` (no rtpengine ``delete`` for a BYE; rr's ``_routed_params``), and
``is_first_hop()`` on a reply did not count the listen socket given on the command
line (no alias on bob's 180/200 with two workers; siputils).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.integration.conftest import (
    IMPL_CHILDREN,
    STOCK_CFG,
    NgTap,
    RtpEngine,
    RunningProxy,
    Ua,
    impl_children_id,
    needs_rtpengine,
    needs_sipp,
    needs_stock_cfg,
    stock_proxy,
)
from tests.integration.nat_calls import (
    PRIVATE,
    PRIVATE_HOST,
    PRIVATE_PORT,
    call_from_nated_user,
    call_to_nated_user,
    check_register_ok,
    check_rport_via,
    register,
    register_bob,
)

#: the stock cfg's rtpengine modparam (checked to be there, unchanged)
STOCK_NG = 'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")'
STOCK_NG_PORT = 2223
DEFINES = ("WITH_NAT", "WITH_RTPENGINE")

pytestmark = [needs_sipp, needs_stock_cfg, needs_rtpengine]


@pytest.fixture(scope="module")
def ng_tap(rtpengine: RtpEngine) -> Iterator[NgTap]:
    """The ng relay on the stock cfg's fixed ng socket, 127.0.0.1:2223."""
    with NgTap(rtpengine.port, STOCK_NG_PORT) as tap:
        yield tap


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def stock(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ng_tap: NgTap,
) -> Iterator[RunningProxy]:
    """The unmodified stock cfg with ``WITH_NAT WITH_RTPENGINE`` in ``impl``."""
    text = STOCK_CFG.read_text(encoding="utf-8")
    assert text.count(STOCK_NG) == 1, "the stock cfg no longer names udp:127.0.0.1:2223"
    yield from stock_proxy(request, tmp_path_factory, "stock-nat", DEFINES)


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
def test_register_detection_flags(stock: RunningProxy, bob: Ua, case: str, detected: bool) -> None:
    """Which of ``nat_uac_test("19")``'s flags fire on loopback: 2 (Via address) and
    16 (Via port) do, 1 (Contact in RFC 1918 space) does not for 127.0.0.77 (a
    Contact alone naming another address is not detected). Detected: the 200 lists
    the contact with ``received`` = the source (``fix_nated_register()``)."""
    user = f"u{case.replace('-', '')}{secrets.token_hex(3)}"
    source = f"127.0.0.1:{bob.port}"
    via, contact = {
        "via-and-contact": (PRIVATE, PRIVATE),
        "via-address": (f"{PRIVATE_HOST}:{bob.port}", source),
        "via-port": (f"127.0.0.1:{PRIVATE_PORT}", source),
        "contact-only": (source, PRIVATE),
        "no-nat": (source, source),
    }[case]
    ok = register(stock, bob, user, via=via, contact_host=contact)
    check_register_ok(ok, stock, user, contact_host=contact, received=source if detected else None)


def test_nated_register_reply_goes_to_the_source(stock: RunningProxy, bob: Ua) -> None:
    """force_rport (REQINIT): the 200 goes back to 127.0.0.1:X, not to the Via's
    127.0.0.77:5099, and the Via says so with ``rport`` and ``received``."""
    user = f"bob{secrets.token_hex(3)}"
    ok = register_bob(stock, bob, user)
    assert ok.source == stock.address
    check_rport_via(ok, bob)


# -- 2. a call to the user behind the NAT -----------------------------------------------------


def test_call_to_a_nated_user_reaches_its_source_with_media_through_rtpengine(
    stock: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    call_to_nated_user(stock, rtpengine, ng_tap, alice, bob)


# -- 3. a call from the user behind the NAT ------------------------------------------------


def test_call_from_a_nated_user_gets_its_contact_aliased(
    stock: RunningProxy, rtpengine: RtpEngine, ng_tap: NgTap, alice: Ua, bob: Ua
) -> None:
    """bob calls alice: NATDETECT (``FLT_NATS``, first hop) aliases his Contact, the
    branch route offers his SDP to rtpengine; alice's 200 reaches bob at his source
    (rport) with the answer rewritten; her BYE to the aliased Contact reaches him
    there too, and deletes the session."""
    call_from_nated_user(stock, rtpengine, ng_tap, alice, bob)
