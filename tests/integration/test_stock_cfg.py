"""The stock Kamailio config as a registrar and proxy (issue 7 acceptance, first
bullet): Debian's unmodified ``/etc/kamailio/kamailio.cfg`` (Kamailio 5.6), default
defines only (no ``WITH_*``: usrloc in memory, no auth, no NAT), run in real Kamailio and
as the proxy ``kcc build`` makes of it, with the same exact expectations (Kamailio is the
oracle; every value asserted here was first measured against Kamailio 5.6.3 by this
file's Kamailio parametrization).

The config is read from the installed package when the tests run (it is GPL: never
copied into the repository) and written unchanged into a directory of the test's own.
Nothing in it needs editing for loopback testing; what the sandbox needs is given on the
command line (``conftest.start_proxy_cfg``):

- the listen address: the cfg has no ``listen=`` (Kamailio binds every interface), so
  Kamailio gets ``-l udp:127.0.0.1:PORT`` and kcc ``--listen udp:127.0.0.1:PORT``;
- the runtime directory: jsonrpcs' FIFO and datagram socket and ctl's binrpc socket
  default to ``/run/kamailio``; ``-Y DIR`` alone puts all three
  (``kamailio_rpc.fifo``, ``kamailio_rpc.sock``, ``kamailio_ctl``) in ``DIR``
  (measured: Kamailio 5.6.3 starts with just ``-l`` and ``-Y`` as root in an
  ``unshare -n`` sandbox);
- the workers: ``-n`` / ``--children`` override ``children=8``; every test runs with 1
  and with 2.

The private directory matters for one line: ``import_file "kamailio-local.cfg"``, which
Kamailio looks up next to the cfg and in its working directory (measured: a
``kamailio-local.cfg`` in either is read). The test's directory has none, so the run has
the default defines whatever a machine keeps in ``/etc/kamailio``.

One proxy per (implementation, children) serves all the tests of this file (a
module-scoped fixture): only one test registers (alice and bob, once each) and the 404
test calls a user nobody registers, so the tests do not depend on each other's state.

What is checked, route by route of the stock cfg:

- ``route[REGISTRAR]``: alice and bob REGISTER from SIPp instances on ports of their
  own, each with ``Contact: <sip:USER@127.0.0.1:ITS_PORT>`` and ``Expires: 600``;
  ``save("location")`` answers ``200 OK`` listing that one contact with
  ``;expires=600``.
- ``route[LOCATION]`` + ``route[RELAY]`` + ``route[WITHINDLG]``: alice calls
  ``sip:bob@<proxy>``; ``lookup("location")`` rewrites the R-URI to bob's contact,
  ``record_route()`` adds ``Record-Route: <sip:127.0.0.1:PORT;lr>`` (rr's
  ``append_fromtag`` is 0 in the stock cfg: no ``ftag``), tm relays it and sends alice
  ``100 trying -- your call is important to us``. Bob's SIPp (a UAS started on the
  port bob registered from, after its REGISTER instance ended: SIPp cannot take an
  INVITE of another Call-ID in a client scenario) answers 180/200; alice sends ACK and
  BYE to the proxy with that Route, and ``loose_route()`` relays them to bob's Contact.
  ``force_rport()`` (REQINIT) makes Kamailio insert ``;rport=PORT`` into alice's Via
  before its ``branch`` in what it relays (measured), and append it in the replies it
  makes itself.
- ``route[LOCATION]`` with no registration: ``lookup`` returns -1, ``t_newtran()`` and
  ``send_reply("404", "Not Found")``: a stateful 404 (no 100 first, measured).
- ``route[REQINIT]``: ``OPTIONS sip:<proxy>`` gets ``200 Keepalive``; Max-Forwards 0
  gets ``483 Too Many Hops``; ``sanity_check("17895", "7")`` (checks 1+2+4+32+64+128+
  256+1024+16384, URIs R-URI/From/To) with ``autodrop`` 0 makes sanity send its own
  400 with the check's reason phrase (measured: ``CSeq method does not match request
  method``, ``CSeq number is illegal``, ``Content-Length mis-match`` both for a body
  longer and shorter than announced, ``Expires value is illegal``); the script goes on
  to its ``xlog("Malformed SIP request from $si:$sp\\n")`` (an ERROR line with
  ``<script>`` in the proxy's log, checked; the cfg's ``log_prefix`` before it is not
  required) and exits.

Replies the proxy makes itself are compared header by header: a probe asking
``;rport`` in its Via gets ``;rport=PORT;received=127.0.0.1`` appended (measured), To
gets a tag, and the header order is Kamailio's (Via, From, To, Call-ID, CSeq, Server,
Content-Length).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.conftest import (
    IMPL_CHILDREN,
    RunningProxy,
    Services,
    SipProbe,
    SipReply,
    TracedMessage,
    distinct,
    free_udp_ports,
    impl_children_id,
    needs_sipp,
    needs_stock_cfg,
    run_sipp,
    sipp_trace,
    start_uas,
    stock_proxy,
    stop_uas,
    wait_until,
)

pytestmark = [needs_sipp, needs_stock_cfg]

#: the header order of every reply the proxy makes itself (sl and tm, measured)
LOCAL_REPLY_HEADERS = ("via", "from", "to", "call-id", "cseq", "server", "content-length")
#: tm's automatic 100 for an INVITE it relays (tm's ``auto_inv_100_reason``)
TRYING = "trying -- your call is important to us"
#: the Expires the registering SIPp asks for (below registrar's max_expires 3600)
EXPIRES = 600


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def stock(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    """The unmodified stock cfg running in ``impl`` with ``children`` workers, shared by
    this file's tests."""
    yield from stock_proxy(request, tmp_path_factory, "stock")


# -- registration and a call between registered users -----------------------------------


def register(services: Services, stock: RunningProxy, user: str, port: int) -> TracedMessage:
    """``user`` registers from a SIPp on 127.0.0.1:``port``; returns the 200 it got,
    after checking it lists exactly that contact with ``;expires=600``."""
    run = run_sipp(services, "stock_register.xml", stock.port, local_port=port, service=user)
    assert (run.returncode, run.successful, run.failed) == (0, 1, 0), f"{run.output}\n{stock.log()}"
    (ok,) = run.received()
    assert (ok.status, ok.reason) == (200, "OK")
    assert ok.all("contact") == [f"<sip:{user}@127.0.0.1:{port}>;expires={EXPIRES}"]
    # a locally made reply: force_rport's rport appended to the Via (no received=: the
    # Via's host is the source address)
    assert re.fullmatch(
        rf"SIP/2\.0/UDP 127\.0\.0\.1:{port};branch=z9hG4bK-\d+-1-0;rport={port}", ok.one("via")
    ), ok.one("via")
    assert ok.one("from").startswith(f"<sip:{user}@{stock.domain}>;tag=")
    assert re.fullmatch(rf"<sip:{user}@{re.escape(stock.domain)}>;tag=\S+", ok.one("to"))
    assert ok.one("cseq") == "1 REGISTER"
    return ok


def via_parts(message: TracedMessage) -> list[str]:
    """Every Via of ``message``, topmost first (comma-separated ones split)."""
    return [via.strip() for line in message.all("via") for via in line.split(",")]


def check_relayed(
    request: TracedMessage, stock: RunningProxy, alice_port: int, *, branch_suffix: str
) -> None:
    """``request`` came from alice (SIPp on ``alice_port``) through the proxy: the
    proxy's Via on top, then alice's with ``;rport=PORT`` inserted before the branch
    (force_rport, measured); Max-Forwards decremented from 70; no Route left.

    With one worker the proxy's Via names its listen address, as Kamailio's always does;
    with several, kcc's workers each advertise a reply port of their own in Via (issue
    6, item 5, docs/architecture.md), so only the host is compared."""
    proxy_via, alice_via = via_parts(request)
    sent_by = re.match(r"SIP/2\.0/UDP ([^;\s]+);branch=z9hG4bK\S+$", proxy_via)
    assert sent_by is not None, proxy_via
    if stock.children == 1:
        assert sent_by.group(1) == stock.domain
    else:
        assert sent_by.group(1).startswith("127.0.0.1:")
    assert re.fullmatch(
        rf"SIP/2\.0/UDP 127\.0\.0\.1:{alice_port};rport={alice_port}"
        rf";branch=z9hG4bK-\d+-1-{branch_suffix}",
        alice_via,
    ), alice_via
    assert request.one("max-forwards") == "69"
    assert request.all("route") == []
    assert request.one("from").startswith(f"<sip:alice@{stock.domain}>;tag=")


def test_two_users_register_and_one_calls_the_other(
    stock: RunningProxy, services: Services
) -> None:
    """alice and bob register (each 200 lists just its own contact: nobody else
    registers these AORs on this proxy), then alice calls bob through the proxy."""
    alice_port, bob_port = free_udp_ports(2)
    register(services, stock, "alice", alice_port)
    register(services, stock, "bob", bob_port)
    # kamcmd ul.dump lists both (issue 7 acceptance), each with its contact, and so
    # does kamctl over the JSON-RPC FIFO
    dump = stock.kamcmd("ul.dump")
    shown = stock.kamctl("ul", "show")
    for user, port in (("alice", alice_port), ("bob", bob_port)):
        assert re.search(rf"AoR: {user}\b", dump), dump
        assert f"Address: sip:{user}@127.0.0.1:{port}" in dump, dump
        assert re.search(rf'"AoR":\s+"{user}"', shown), shown
        assert re.search(rf'"Address":\s+"sip:{user}@127\.0\.0\.1:{port}"', shown), shown
    # bob's phone: a SIPp UAS on the address bob registered as his Contact
    bob = start_uas(services, bob_port, "stock_uas.xml", trace_msg=True)
    call = run_sipp(services, "stock_call.xml", stock.port, local_port=alice_port, service="bob")
    stop_uas(bob)
    assert (call.returncode, call.successful, call.failed) == (0, 1, 0), (
        f"{call.output}\n{stock.log()}"
    )
    record_route = f"<sip:{stock.domain};lr>"
    bob_contact = f"sip:bob@127.0.0.1:{bob_port}"

    # what bob received: the INVITE with its R-URI rewritten by lookup("location") and
    # the proxy's Record-Route, then ACK and BYE loose-routed to his Contact
    assert bob.messages_log is not None
    at_bob = distinct([m for m in sipp_trace(bob.messages_log) if not m.sent])
    assert [m.method for m in at_bob] == ["INVITE", "ACK", "BYE"]
    invite, ack, bye = at_bob
    assert invite.ruri == bob_contact
    assert invite.all("record-route") == [record_route]
    assert invite.one("to") == f"<sip:bob@{stock.domain}>"
    check_relayed(invite, stock, alice_port, branch_suffix="0")
    for request, cseq in ((ack, "1 ACK"), (bye, "2 BYE")):
        assert request.ruri == bob_contact
        assert request.all("record-route") == []
        assert request.one("cseq") == cseq
        assert request.one("call-id") == invite.one("call-id")
        assert request.one("to").startswith(f"<sip:bob@{stock.domain}>;tag=")
    # SIPp numbers the branches of a call's messages by scenario step (ACK 4, BYE 5)
    check_relayed(ack, stock, alice_port, branch_suffix="4")
    check_relayed(bye, stock, alice_port, branch_suffix="5")

    # what alice received: tm's 100, bob's 180 and 200 with the Record-Route, the 200
    # for the BYE
    at_alice = distinct(call.received())
    assert [(m.status, m.reason, m.one("cseq")) for m in at_alice] == [
        (100, TRYING, "1 INVITE"),
        (180, "Ringing", "1 INVITE"),
        (200, "OK", "1 INVITE"),
        (200, "OK", "2 BYE"),
    ]
    trying, ringing, ok, bye_ok = at_alice
    assert [name for name, _ in trying.headers] == list(LOCAL_REPLY_HEADERS)
    assert re.fullmatch(
        rf"SIP/2\.0/UDP 127\.0\.0\.1:{alice_port};branch=z9hG4bK-\d+-1-0;rport={alice_port}",
        trying.one("via"),
    ), trying.one("via")
    assert trying.one("to") == f"<sip:bob@{stock.domain}>"
    for reply in (ringing, ok):
        assert reply.all("record-route") == [record_route]
        assert reply.one("contact") == f"<{bob_contact}>"
        # the Via bob copied from the relayed INVITE, the proxy's own removed
        assert via_parts(reply) == [via_parts(invite)[1]]
    assert bye_ok.all("record-route") == []
    assert via_parts(bye_ok) == [via_parts(bye)[1]]
    check_acc_lines(stock, invite, ok)


#: acc's record as both proxies log it: Kamailio ``acc [acc.c:287]:``, kcc
#: ``acc [acc.py:N]:``, the same text after the function name (the cfg's
#: ``log_prefix`` ``{$mt $hdr(CSeq) $ci} `` before the module, measured on Kamailio:
#: not required here)
ACC_LINE = re.compile(
    r"NOTICE: (?:\{[^}\n]*\} )?acc \[acc\.(?:c|py):\d+\]: acc_log_request\(\): "
    r"ACC: transaction answered: timestamp=\d+;(.*)$",
    re.M,
)


def check_acc_lines(stock: RunningProxy, invite: TracedMessage, ok: TracedMessage) -> None:
    """The stock cfg sets ``FLT_ACC`` on the INVITE and ``FLT_ACC`` +
    ``FLT_ACCFAILED`` on the BYE: one ``transaction answered`` record each when the
    200 goes back to alice, with the cfg's ``log_extra`` (``$rU``/``$rd`` of the
    R-URI lookup and loose_route gave: bob's contact). Only the timestamp varies."""
    tag = re.escape(";tag=")
    from_tag = re.split(tag, invite.one("from"))[1]
    to_tag = re.split(tag, ok.one("to"))[1]
    call_id = invite.one("call-id")
    rest = (
        f";from_tag={from_tag};to_tag={to_tag};call_id={call_id};code=200;reason=OK;"
        "src_user=alice;src_domain=127.0.0.1;src_ip=127.0.0.1;dst_ouser=bob;"
        "dst_user=bob;dst_domain=127.0.0.1"
    )
    expected = [f"method=INVITE{rest}", f"method=BYE{rest}"]

    def found() -> list[str]:
        return [m.group(1) for m in ACC_LINE.finditer(stock.log_text()) if call_id in m.group(1)]

    wait_until(lambda: len(found()) >= 2, 2.0)
    assert found() == expected, stock.log()


# -- replies the stock cfg makes itself (raw UDP probes) --------------------------------


@dataclass(frozen=True)
class Probe:
    """A request as sent by the probe, with what its reply must echo."""

    data: bytes
    call_id: str
    via: str
    from_: str
    to: str
    cseq: str


def build_request(
    sip: SipProbe,
    method: str,
    ruri: str,
    *,
    max_forwards: str = "70",
    cseq: str | None = None,
    extra: tuple[str, ...] = (),
    body: str = "",
    content_length: int | None = None,
) -> Probe:
    """A request from the probe's socket, valid (RFC 3261 §8.1.1) unless an argument
    breaks it: ``cseq`` replaces ``1 METHOD``, ``extra`` headers go before
    Content-Length, which is ``content_length`` if given, else the body's length."""
    call_id = f"{secrets.token_hex(8)}@127.0.0.1"
    via = f"SIP/2.0/UDP 127.0.0.1:{sip.port};branch=z9hG4bK{secrets.token_hex(8)};rport"
    from_ = f"<sip:probe@127.0.0.1:{sip.port}>;tag=probe{sip.port}"
    to = f"<{ruri}>"
    cseq = cseq if cseq is not None else f"1 {method}"
    length = len(body.encode("utf-8")) if content_length is None else content_length
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: {via}",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq}",
        f"Contact: <sip:probe@127.0.0.1:{sip.port}>",
        f"Max-Forwards: {max_forwards}",
        "User-Agent: kcc-integration-probe",
        *extra,
        f"Content-Length: {length}",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
    return Probe(data, call_id, via, from_, to, cseq)


def ask(stock: RunningProxy, sip: SipProbe, request: Probe) -> SipReply:
    """Send ``request`` to the proxy; its reply, checked as one the proxy made itself:
    Kamailio's header order, the Via echoed with ``;rport=PORT;received=127.0.0.1``
    appended (the probe asks ``;rport``), From, Call-ID and CSeq echoed, a To-tag added,
    no body."""
    reply = sip.exchange(request.data, request.call_id, stock.port)
    assert reply is not None, f"no reply\n{stock.log()}"
    assert [name for name, _ in reply.headers] == list(LOCAL_REPLY_HEADERS), reply.raw
    assert reply.one("via") == f"{request.via}={sip.port};received=127.0.0.1"
    assert reply.one("from") == request.from_
    to = reply.one("to")
    assert to is not None
    assert re.fullmatch(rf"{re.escape(request.to)};tag=\S+", to), to
    assert reply.one("call-id") == request.call_id
    assert reply.one("cseq") == request.cseq
    server = reply.one("server")
    assert server is not None
    assert server.startswith("kamailio (5.6"), server
    assert reply.one("content-length") == "0"
    return reply


def test_call_to_unregistered_user_gets_404(stock: RunningProxy, probe: SipProbe) -> None:
    request = build_request(probe, "INVITE", f"sip:carol@{stock.domain}")
    reply = ask(stock, probe, request)
    assert (reply.status, reply.reason) == (404, "Not Found")


def test_options_to_the_proxy_gets_200_keepalive(stock: RunningProxy, probe: SipProbe) -> None:
    reply = ask(stock, probe, build_request(probe, "OPTIONS", f"sip:{stock.domain}"))
    assert (reply.status, reply.reason) == (200, "Keepalive")


def test_max_forwards_0_gets_483(stock: RunningProxy, probe: SipProbe) -> None:
    request = build_request(probe, "INVITE", f"sip:carol@{stock.domain}", max_forwards="0")
    reply = ask(stock, probe, request)
    assert (reply.status, reply.reason) == (483, "Too Many Hops")


#: requests that fail one of the stock cfg's sanity checks: (the INVITE's changes, the
#: 400's reason phrase Kamailio 5.6.3 sends)
SANITY_FAILURES: dict[str, tuple[dict[str, str], str]] = {
    "cseq-method": ({"cseq": "1 BYE"}, "CSeq method does not match request method"),
    "cseq-value": ({"cseq": "-1 INVITE"}, "CSeq number is illegal"),
    "content-length-short": ({"content_length": "2"}, "Content-Length mis-match"),
    "content-length-long": ({"content_length": "20"}, "Content-Length mis-match"),
    "expires-value": ({"expires": "abc"}, "Expires value is illegal"),
}


@pytest.mark.parametrize("case", list(SANITY_FAILURES))
def test_request_failing_sanity_gets_400(stock: RunningProxy, probe: SipProbe, case: str) -> None:
    changes, reason = SANITY_FAILURES[case]
    request = build_request(
        probe,
        "INVITE",
        f"sip:carol@{stock.domain}",
        cseq=changes.get("cseq"),
        # a 5-byte body, announced as 2 or 20 bytes for the Content-Length cases
        body="v=0\r\n" if "content_length" in changes else "",
        content_length=int(changes["content_length"]) if "content_length" in changes else None,
        extra=(f"Expires: {changes['expires']}",) if "expires" in changes else (),
    )
    reply = ask(stock, probe, request)
    assert (reply.status, reply.reason) == (400, reason)
    # sanity replied and returned -1 to the script, whose xlog then ran (Kamailio's core
    # accepts all these requests: the 400 is sanity's, not a parse error's)
    line = re.compile(
        rf"^ *\d+\(\d+\) ERROR: (\{{[^}}\n]*\}} )?<script>: "
        rf"Malformed SIP request from 127\.0\.0\.1:{probe.port}$",
        re.MULTILINE,
    )
    assert wait_until(lambda: line.search(stock.log_text()) is not None, 2.0), stock.log()
