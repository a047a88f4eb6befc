"""The chapter's stateful balancers with real SIP traffic (issue 6 acceptance): SIPp
UAC -> proxy -> two SIPp UAS, in Kamailio 5.6 and in the proxy kcc builds from the
same config, with the same exact expectations (Kamailio is the oracle).

- ``stateful_rr``: full calls INVITE/100/180/200/ACK/BYE/200. The proxy record-routes
  (rr's ``record_route()`` adds ``Record-Route: <sip:IP:PORT;lr;ftag=FROMTAG>``), so the UAC sends
  the ACK and the BYE to the proxy with that Route set; ``loose_route()`` consumes the
  Route naming the proxy and relays them to the Request-URI (the UAS's Contact). The
  UAS must see them with the proxy's Via on top and no Route left. The shared
  ``$shv(i)`` makes the calls alternate between the backends, whichever worker takes
  them (``children=2`` with a source port per call, so kcc's workers all get traffic).
- CANCEL after the 180: the proxy answers the CANCEL 200 itself and relays it to the
  branch (tm), the backend answers 487, the UAC gets the 487, and nothing is
  re-routed: the other backend receives nothing (with ``failover_rr`` too, whose
  failure_route starts with ``if (t_is_canceled()) exit;``).
- ``failover_rr``: a backend that answers 500, or never answers (tm's ``fr_timer``
  fires and tm answers 408 locally; the test's cfg copy sets ``fr_timer`` and
  ``fr_inv_timer`` to 2 s), makes ``failure_route[MANAGE_FAILURE]`` send the INVITE to
  the other backend, where every call completes. When both fail, the caller gets the
  final reply of the second branch only (``failure_reply_mode`` 3). A caller outside
  127.0.0.0/24 and 127.0.1.0/24 gets ``403 Forbidden`` from sl and no backend sees it.
- An in-dialog request whose Route names the proxy ten times goes round the proxy ten
  times; when nothing answers at its Request-URI, the caller gets one 408 (each pass's
  late 408 is dropped by the pass before it, which has timed out too).
- A backend that answers 486 after ``fr_timer``, when the caller already has tm's 408:
  the 486 is ACKed hop by hop and goes no further.

Every test runs with ``children=1`` and ``children=2``; with two workers a UAC that
places several calls uses a source port per call (SIPp ``-t un``), so SO_REUSEPORT
hands kcc's workers different calls while the backends' replies come in on flows of
their own: replies, ACKs, BYEs and CANCELs must find their transaction whichever worker
reads them (Kamailio's workers all read one socket and share the transaction table).

The UAC never retransmits (SIPp ``-nr``): on loopback nothing is lost, and the counts
stay exact. The book's ACK trap (an ACK for a negative reply has a To-tag and no
Route, so ``route[WITHINDLG]`` drops it and tm keeps retransmitting the reply) is
left as written: the retransmitted 487/408/500 reach a UAC call that has ended and
SIPp discards them, which no assertion here depends on.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from tests.integration.conftest import (
    IMPLS,
    Services,
    Uas,
    free_udp_ports,
    needs_sipp,
    parse_sip,
    reply,
    run_uac,
    start_proxy,
    start_uas,
    stop_uas,
)
from tests.integration.conftest import request as sip_request

pytestmark = [
    needs_sipp,
    pytest.mark.parametrize("impl", IMPLS),
    pytest.mark.parametrize("children", [1, 2]),
]

#: the tm timers of the failure tests' cfg copies, in ms (fr_timer applies while no
#: provisional reply came, fr_inv_timer after one: set both)
FR_TIMER_MS = 2000
SHORT_TIMERS = (
    f'modparam("tm", "fr_timer", {FR_TIMER_MS})\nmodparam("tm", "fr_inv_timer", {FR_TIMER_MS})\n'
)


def short_timers(text: str) -> str:
    """The cfg with tm's final-response timers set to ``FR_TIMER_MS`` (added right after
    tm's ``loadmodule``; neither chapter cfg sets them)."""
    anchor = 'loadmodule "tm.so"\n'
    assert anchor in text
    return text.replace(anchor, anchor + SHORT_TIMERS)


def alternating(first: int, second: int, calls: int) -> tuple[int, ...]:
    return tuple(first if n % 2 == 0 else second for n in range(calls))


# -- what a UAS received (SIPp -trace_msg) ------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A request as a SIPp UAS received it: request line and headers (names lowercased,
    in order), with SIPp's timestamp of its arrival."""

    at: datetime
    method: str
    ruri: str
    headers: tuple[tuple[str, str], ...]

    def all(self, name: str) -> list[str]:
        return [value for hname, value in self.headers if hname == name]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, f"{name}: {values} in {self.method} {self.ruri}"
        return values[0]


#: SIPp's -trace_msg block header: dashes, the local time, then the direction line
BLOCK = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d\t?\s*\d\d:\d\d:\d\d\.\d+)\s*\n"
    r"UDP message received \[\d+\] bytes :\n\n(.*?)(?=^-{10,} |\Z)",
    re.MULTILINE | re.DOTALL,
)


def received_requests(uas: Uas) -> list[Received]:
    """Every request ``uas`` received, in order (stop the UAS first: SIPp flushes its
    logs on exit). Retransmissions absorbed by SIPp are listed too."""
    assert uas.messages_log is not None
    try:
        text = uas.messages_log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    requests: list[Received] = []
    for match in BLOCK.finditer(text.replace("\r\n", "\n")):
        stamp = re.sub(r"\s+", " ", match.group(1))
        lines = match.group(2).strip("\n").split("\n")
        start = lines[0].split(" ")
        if len(start) != 3 or start[0] == "SIP/2.0":
            continue
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                break
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        requests.append(
            Received(
                datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f"),
                start[0],
                start[1],
                tuple(headers),
            )
        )
    return requests


def firsts(requests: list[Received], method: str) -> dict[str, Received]:
    """The first ``method`` request of each Call-ID (retransmissions left out)."""
    found: dict[str, Received] = {}
    for request in requests:
        if request.method == method:
            found.setdefault(request.one("call-id"), request)
    return found


def via_sent_bys(request: Received) -> list[str]:
    """``host:port`` of each Via, topmost first (a sender may put several Vias on one
    line, comma-separated, RFC 3261 §7.3.1)."""
    sent_bys: list[str] = []
    for line in request.all("via"):
        for via in line.split(","):
            match = re.match(r"SIP/2\.0/UDP ([^;\s]+)", via.strip())
            assert match is not None, via
            sent_bys.append(match.group(1))
    return sent_bys


def check_proxy_vias(request: Received, proxy_port: int, children: int) -> None:
    """``request`` came through the proxy: two Vias, the proxy's on top of the UAC's
    (the address in the From URI). With one worker the proxy's Via names its listen
    address, as Kamailio's always does; with several, kcc's workers each advertise a
    reply port of their own in Via (issue 6, item 5, docs/architecture.md), so only
    the host is compared."""
    proxy_via, uac_via = via_sent_bys(request)
    uac = re.search(r"<sip:[^@>]*@([^;>]+)>", request.one("from"))
    assert uac is not None
    assert uac_via == uac.group(1)
    if children == 1:
        assert proxy_via == f"127.0.0.1:{proxy_port}"
    else:
        assert proxy_via.startswith("127.0.0.1:")
        assert proxy_via != uac_via


def start_pair(services: Services, scenario: str) -> tuple[Uas, Uas]:
    """Two SIPp backends running ``scenario``, logging every message (-trace_msg)."""
    first, second = free_udp_ports(2)
    return (
        start_uas(services, first, scenario, trace_msg=True),
        start_uas(services, second, scenario, trace_msg=True),
    )


# -- stateful round robin ---------------------------------------------------------------


def test_stateful_rr_full_calls_are_loose_routed(
    impl: str, children: int, services: Services
) -> None:
    uas1, uas2 = start_pair(services, "uas_rr.xml")
    proxy = start_proxy(services, impl, "stateful_rr", (uas1.port, uas2.port), children=children)
    result = run_uac(
        services,
        proxy.port,
        calls=20,
        rate=10,
        scenario="uac_rr.xml",
        socket_per_call=children > 1,
    )
    stop_uas(uas1, uas2)
    assert (result.returncode, result.successful, result.failed) == (0, 20, 0), result.output
    # $shv(i) starts at 0 and is incremented first: the first INVITE goes to 5081's stand-in
    assert result.backends == alternating(uas1.port, uas2.port, 20)
    proxy_addr = f"127.0.0.1:{proxy.port}"
    for uas in (uas1, uas2):
        requests = received_requests(uas)
        invites, acks, byes = (firsts(requests, m) for m in ("INVITE", "ACK", "BYE"))
        assert len(invites) == 10
        assert set(acks) == set(invites)
        assert set(byes) == set(invites)
        assert Counter(r.method for r in requests) == {"INVITE": 10, "ACK": 10, "BYE": 10}
        for invite in invites.values():
            assert invite.ruri == f"sip:service@127.0.0.1:{uas.port}"
            # rr's append_fromtag (on by default) adds the From-tag as ftag
            from_tag = invite.one("from").split(";tag=", 1)[1]
            assert invite.all("record-route") == [f"<sip:{proxy_addr};lr;ftag={from_tag}>"]
            check_proxy_vias(invite, proxy.port, children)
            assert invite.all("route") == []
        for request in (*acks.values(), *byes.values()):
            # loose-routed: sent to the proxy with Route: <sip:proxy;lr>, which the
            # proxy consumed before relaying to the Request-URI (the UAS's Contact)
            assert request.ruri == f"sip:uas@127.0.0.1:{uas.port}"
            assert request.all("route") == []
            check_proxy_vias(request, proxy.port, children)


@pytest.mark.parametrize("example", ["stateful_rr", "failover_rr"])
def test_cancel_after_180_gets_487_and_no_reroute(
    impl: str, children: int, example: str, services: Services
) -> None:
    uas1, uas2 = start_pair(services, "uas_cancel.xml")
    proxy = start_proxy(services, impl, example, (uas1.port, uas2.port), children=children)
    result = run_uac(services, proxy.port, calls=1, rate=1, scenario="uac_cancel.xml")
    stop_uas(uas1, uas2)
    # the UAC got the 180, the 200 for its CANCEL and the 487 for its INVITE
    assert (result.returncode, result.successful, result.failed) == (0, 1, 0), result.output
    assert result.backends == (uas1.port,)
    requests = received_requests(uas1)
    (call_id,) = firsts(requests, "INVITE")
    assert list(firsts(requests, "CANCEL")) == [call_id]
    # the hop-by-hop ACK tm sends for the 487
    assert list(firsts(requests, "ACK")) == [call_id]
    assert [r.method for r in requests] == ["INVITE", "CANCEL", "ACK"]
    cancel = firsts(requests, "CANCEL")[call_id]
    assert cancel.one("cseq") == "1 CANCEL"
    # relayed hop by hop (RFC 3261 §9.1): one Via, the top Via of the INVITE it cancels,
    # branch included, so that the UAS matches it to its INVITE transaction
    invite = firsts(requests, "INVITE")[call_id]
    assert cancel.all("via") == [invite.all("via")[0].split(",")[0].strip()]
    assert cancel.ruri == invite.ruri
    check_proxy_vias(invite, proxy.port, children)
    # not re-routed: the other backend saw nothing
    assert received_requests(uas2) == []
    assert uas2.invites() == []


# -- failure routing ----------------------------------------------------------------------


def test_backend_500_calls_complete_on_the_other(
    impl: str, children: int, services: Services
) -> None:
    port1, port2 = free_udp_ports(2)
    failing = start_uas(services, port1, "uas_500.xml", trace_msg=True)
    working = start_uas(services, port2, "uas_rr.xml", trace_msg=True)
    proxy = start_proxy(services, impl, "failover_rr", (port1, port2), children=children)
    result = run_uac(
        services,
        proxy.port,
        calls=10,
        rate=10,
        scenario="uac_rr.xml",
        socket_per_call=children > 1,
    )
    stop_uas(failing, working)
    assert (result.returncode, result.successful, result.failed) == (0, 10, 0), result.output
    assert result.backends == (port2,) * 10
    failed = firsts(received_requests(failing), "INVITE")
    completed = firsts(received_requests(working), "INVITE")
    # odd calls went to 5081's stand-in first, answered 500, were re-routed
    assert len(failed) == 5
    assert len(completed) == 10
    assert set(failed) < set(completed)
    # tm ACKed every 500 hop by hop
    assert set(firsts(received_requests(failing), "ACK")) == set(failed)


def test_silent_backend_times_out_and_calls_are_rerouted(
    impl: str, children: int, services: Services
) -> None:
    port1, port2 = free_udp_ports(2)
    silent = start_uas(services, port1, "uas_silent.xml", trace_msg=True)
    working = start_uas(services, port2, "uas_rr.xml", trace_msg=True)
    proxy = start_proxy(
        services, impl, "failover_rr", (port1, port2), children=children, edit=short_timers
    )
    result = run_uac(
        services,
        proxy.port,
        calls=4,
        rate=10,
        scenario="uac_rr.xml",
        socket_per_call=children > 1,
    )
    stop_uas(silent, working)
    assert (result.returncode, result.successful, result.failed) == (0, 4, 0), result.output
    assert result.backends == (port2,) * 4
    timed_out = firsts(received_requests(silent), "INVITE")
    completed = firsts(received_requests(working), "INVITE")
    assert len(timed_out) == 2
    assert len(completed) == 4
    assert set(timed_out) < set(completed)
    for call_id, first in timed_out.items():
        # re-routed when fr_timer fired: not before it, and long before the next retry
        delay = (completed[call_id].at - first.at).total_seconds()
        assert FR_TIMER_MS / 1000 - 0.1 <= delay <= FR_TIMER_MS / 1000 + 1.5, delay


def test_both_backends_failing_relays_the_last_error(
    impl: str, children: int, services: Services
) -> None:
    port1, port2 = free_udp_ports(2)
    failing = start_uas(services, port1, "uas_500.xml", trace_msg=True)
    silent = start_uas(services, port2, "uas_silent.xml", trace_msg=True)
    proxy = start_proxy(
        services, impl, "failover_rr", (port1, port2), children=children, edit=short_timers
    )
    result = run_uac(
        services,
        proxy.port,
        calls=2,
        rate=10,
        scenario="uac_fail.xml",
        socket_per_call=children > 1,
    )
    stop_uas(failing, silent)
    assert (result.returncode, result.successful, result.failed) == (0, 2, 0), result.output
    # call 1: 500 from 5081's stand-in, re-routed, then the silent one times out: 408;
    # call 2: the silent one times out, re-routed, then 500. failure_reply_mode 3: only
    # the last branch's reply counts
    assert result.backends == (408, 500)
    assert len(firsts(received_requests(failing), "INVITE")) == 2
    assert len(firsts(received_requests(silent), "INVITE")) == 2


def test_caller_outside_allowed_subnets_gets_403(
    impl: str, children: int, services: Services
) -> None:
    uas1, uas2 = start_pair(services, "uas_rr.xml")
    proxy = start_proxy(services, impl, "failover_rr", (uas1.port, uas2.port), children=children)
    refused = run_uac(
        services,
        proxy.port,
        calls=2,
        rate=10,
        scenario="uac_fail.xml",
        local_ip="127.0.2.1",
        socket_per_call=children > 1,
    )
    # 127.0.1.0/24 is allowed: this call completes, on the first backend since the
    # refused INVITEs never reached the round robin
    allowed = run_uac(
        services, proxy.port, calls=1, rate=1, scenario="uac_rr.xml", local_ip="127.0.1.1"
    )
    stop_uas(uas1, uas2)
    assert (refused.returncode, refused.successful, refused.failed) == (0, 2, 0), refused.output
    assert refused.backends == (403, 403)
    assert (allowed.returncode, allowed.successful, allowed.failed) == (0, 1, 0), allowed.output
    assert allowed.backends == (uas1.port,)
    assert len(received_requests(uas1)) == 3  # the allowed call's INVITE, ACK and BYE
    assert received_requests(uas2) == []


def looping_bye(ruri: str, via: str, call: str, proxy_port: int) -> bytes:
    """An in-dialog BYE to ``ruri`` whose Route names the proxy ten times (as
    ``bench/soak.py``'s fuzzer duplicates header lines)."""
    return (
        f"BYE {ruri} SIP/2.0\r\n{via}\r\n"
        + f"Route: <sip:127.0.0.1:{proxy_port};lr>\r\n" * 10
        + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
        f"To: <sip:bob@example.com>;tag=b1\r\nCall-ID: {call}@example.com\r\n"
        "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_request_routed_back_to_the_proxy_goes_round_once_per_route(
    impl: str, children: int, services: Services
) -> None:
    # bench/soak.py's fuzzer duplicates header lines: an in-dialog request whose
    # Route names the proxy, ten times. loose_route() consumes one Route a pass and
    # the cfg checks no Max-Forwards, so the request goes round the proxy ten times,
    # a Via and a transaction each time, then to its Request-URI
    proxy = start_proxy(services, impl, "stateful_rr", free_udp_ports(2), children=children)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
    ):
        target.bind(("127.0.0.1", 0))
        target.settimeout(10.0)
        caller.bind(("127.0.0.1", 0))
        ruri = f"sip:bob@127.0.0.1:{target.getsockname()[1]}"
        port = caller.getsockname()[1]
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-round;rport"
        caller.sendto(looping_bye(ruri, via, "round", proxy.port), ("127.0.0.1", proxy.port))
        data, _ = target.recvfrom(65535)
    lines = data.decode().split("\r\n")
    assert lines[0] == f"BYE {ruri} SIP/2.0"
    vias = [line for line in lines if line.startswith("Via:")]
    assert len(vias) == 11
    assert all(v.startswith("Via: SIP/2.0/UDP 127.0.0.1:") for v in vias[:10])
    # the caller's, with received and rport filled in at the first pass
    assert vias[10] == via.replace(";branch", ";received=127.0.0.1;branch") + f"={port}"
    assert [line for line in lines if line.startswith("Route:")] == []
    assert "Max-Forwards: 70" in lines


def test_a_loop_nothing_answers_ends_in_one_408(
    impl: str, children: int, services: Services
) -> None:
    # the same loop with nobody at its Request-URI and fr_timer at FR_TIMER_MS: every
    # pass times out and sends 408 to the pass before it, which has timed out too and
    # drops it (Kamailio keeps a timed-out branch for its wait timer). The caller gets
    # one 408; relayed again by their Vias, the late ones once made N^2/2 relays
    proxy = start_proxy(
        services,
        impl,
        "stateful_rr",
        free_udp_ports(2),
        children=children,
        edit=short_timers,
    )
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
    ):
        target.bind(("127.0.0.1", 0))
        caller.bind(("127.0.0.1", 0))
        ruri = f"sip:bob@127.0.0.1:{target.getsockname()[1]}"
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{caller.getsockname()[1]};branch=z9hG4bK-silent;rport"
        caller.sendto(looping_bye(ruri, via, "silent", proxy.port), ("127.0.0.1", proxy.port))
        statuses = replies_until(caller, None, FR_TIMER_MS / 1000 + 4.0)
    assert statuses == ["408"]


def test_a_late_final_after_fr_timer_is_acked_and_dropped(
    impl: str, children: int, services: Services
) -> None:
    # a backend that answers 486 after fr_timer: tm has answered the caller 408 and
    # keeps the branch for its wait timer, so the 486 is ACKed hop by hop and goes no
    # further (relayed upstream by the stateless path, it reached the caller after the
    # 408 and was never ACKed)
    with raw_backends_and_caller() as (first, second, caller):
        backends = (first.getsockname()[1], second.getsockname()[1])
        proxy = start_proxy(
            services, impl, "stateful_rr", backends, children=children, edit=short_timers
        )
        port = caller.getsockname()[1]
        invite = sip_request(
            "INVITE",
            "sip:bob@127.0.0.1",
            via=f"127.0.0.1:{port}",
            from_="<sip:alice@127.0.0.1>;tag=a1",
            to="<sip:bob@127.0.0.1>",
            call_id="late@127.0.0.1",
            cseq=1,
            contact=f"<sip:alice@127.0.0.1:{port}>",
        )
        caller.sendto(invite.encode(), ("127.0.0.1", proxy.port))
        ready, _, _ = select.select([first, second], [], [], 10.0)
        assert ready, "no backend received the INVITE"
        backend = ready[0]
        data, proxy_addr = backend.recvfrom(65535)
        relayed = parse_sip(data)
        assert relayed is not None and relayed.method == "INVITE", data
        statuses = replies_until(caller, "408", FR_TIMER_MS / 1000 + 5.0)
        assert statuses[-1:] == ["408"], statuses
        busy = reply(relayed, 486, "Busy Here", to_tag="b1", contact="<sip:bob@127.0.0.1>")
        backend.sendto(busy.encode(), proxy_addr)
        acks = [parse_sip(ack) for ack in requests_within(backend, "ACK", 3.0)]
        statuses += replies_until(caller, None, 1.0)
    # Kamailio and kcc alike: the ACK has the INVITE's branch and the 486's To tag
    assert len(acks) == 1, acks
    (ack,) = acks
    assert ack is not None
    assert ack.all("via")[0] == relayed.all("via")[0]
    assert ack.one("to") == "<sip:bob@127.0.0.1>;tag=b1"
    assert ack.one("cseq") == "1 ACK"
    # the caller saw 100 and 408 (the 408 again until the cfg's unmatched ACK times
    # out), never the 486
    assert set(statuses) == {"100", "408"}, statuses


def test_invites_reusing_one_branch_are_two_transactions(
    impl: str, children: int, services: Services
) -> None:
    # a UA that reuses one branch for two calls (a SIPp scenario with a fixed branch,
    # a broken phone, a fuzzer): Kamailio looks a request up in the hash bucket of
    # its Call-ID and CSeq number, so each INVITE is a transaction of its own, both are
    # relayed and each caller gets its 100 (matched on branch, sent-by and method
    # alone, the second was absorbed as a retransmission of the first)
    with raw_backends_and_caller() as (first, second, caller):
        backends = (first.getsockname()[1], second.getsockname()[1])
        proxy = start_proxy(services, impl, "stateful_rr", backends, children=children)
        port = caller.getsockname()[1]
        for call in ("one", "two"):
            invite = sip_request(
                "INVITE",
                "sip:bob@127.0.0.1",
                via=f"127.0.0.1:{port}",
                from_=f"<sip:alice@127.0.0.1>;tag={call}",
                to="<sip:bob@127.0.0.1>",
                call_id=f"{call}@127.0.0.1",
                cseq=1,
                contact=f"<sip:alice@127.0.0.1:{port}>",
                branch="z9hG4bK-reused",
            )
            caller.sendto(invite.encode(), ("127.0.0.1", proxy.port))
        trying = [parse_sip(data) for data in datagrams(caller, 2.0)]
        # tm retransmits to the silent backends: each INVITE counts once
        relayed = [
            parse_sip(data)
            for backend in (first, second)
            for data in requests_within(backend, "INVITE", 1.0)
        ]
    assert {msg.one("call-id") for msg in relayed if msg is not None} == {
        "one@127.0.0.1",
        "two@127.0.0.1",
    }
    assert sorted(msg.one("call-id") for msg in trying if msg is not None) == [
        "one@127.0.0.1",
        "two@127.0.0.1",
    ]


@contextlib.contextmanager
def raw_backends_and_caller() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """Three UDP sockets on free loopback ports: two backends the test answers from
    by hand, and a caller."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
    ):
        for sock in (first, second, caller):
            sock.bind(("127.0.0.1", 0))
        yield first, second, caller


def datagrams(sock: socket.socket, timeout: float) -> Iterator[bytes]:
    """What ``sock`` receives until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return
        yield data


def replies_until(sock: socket.socket, status: str | None, timeout: float) -> list[str]:
    """The status codes ``sock`` receives until one is ``status`` or ``timeout`` ends."""
    statuses: list[str] = []
    for data in datagrams(sock, timeout):
        statuses.append(data.split(b" ", 2)[1].decode())
        if statuses[-1] == status:
            break
    return statuses


def requests_within(sock: socket.socket, method: str, timeout: float) -> list[bytes]:
    """The ``method`` requests ``sock`` receives in ``timeout`` seconds (others, such
    as the proxy's retransmissions, are read and left out)."""
    start = method.encode() + b" "
    return [data for data in datagrams(sock, timeout) if data.startswith(start)]
