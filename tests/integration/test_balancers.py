"""The chapter's stateless balancers and its redirect server, with real SIP traffic
(issue 5 acceptance): SIPp UAC -> proxy -> two SIPp UAS, in Kamailio 5.6 and in the
proxy kcc builds from the same config, with the same exact expectations.

- ``stateless_rr_var``: ``$var(i)`` is private to each worker, so the alternation is per
  process. Run with one worker, the backends alternate call by call (with several,
  which worker takes a packet is the kernel's choice and the sequence is not fixed).
- ``stateless_rr_shv``: ``$shv(i)`` under ``lock("balancing")`` is one counter for the
  instance: with two workers, calls from one UAC alternate strictly, and 1000 calls
  from per-call source ports (``-t un``, so SO_REUSEPORT gives both kcc workers
  traffic; Kamailio's UDP workers all read one socket) split exactly 500/500.
- Every non-INVITE request gets ``404 Not Found`` from ``sl_send_reply``.
- ``redirect_rr``: each INVITE is answered ``302 Moved Temporarily`` whose Contact is the
  rewritten Request-URI, alternating between the two backends (sl adds the destination
  set as Contact to a 3xx; README.sl).

The rates are modest (a lone call at a time, or 250 calls/s) and the UAC never
retransmits (SIPp ``-nr``): a stateless proxy forwards a retransmitted INVITE as a new
request, which would move the counter and make the counts depend on timing.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.conftest import (
    IMPLS,
    Services,
    SipProbe,
    needs_sipp,
    run_uac,
    start_backends,
    start_proxy,
    stop_uas,
)

pytestmark = [needs_sipp, pytest.mark.parametrize("impl", IMPLS)]


def alternating(first: int, second: int, calls: int) -> tuple[int, ...]:
    return tuple(first if n % 2 == 0 else second for n in range(calls))


def test_var_balancer_alternates(impl: str, services: Services) -> None:
    uas1, uas2 = start_backends(services)
    proxy = start_proxy(services, impl, "stateless_rr_var", (uas1.port, uas2.port), children=1)
    result = run_uac(services, proxy.port, calls=10, rate=10)
    stop_uas(uas1, uas2)
    assert (result.returncode, result.successful, result.failed) == (0, 10, 0), result.output
    # $var(i) starts at 0 (modparam varset i=i:0): the first INVITE goes to 5081's stand-in
    assert result.backends == alternating(uas1.port, uas2.port, 10)
    assert (len(uas1.invites()), len(uas2.invites())) == (5, 5)


def test_shv_balancer_alternates_across_workers(impl: str, services: Services) -> None:
    uas1, uas2 = start_backends(services)
    proxy = start_proxy(services, impl, "stateless_rr_shv", (uas1.port, uas2.port), children=2)
    result = run_uac(services, proxy.port, calls=10, rate=10, socket_per_call=True)
    stop_uas(uas1, uas2)
    assert (result.returncode, result.successful, result.failed) == (0, 10, 0), result.output
    assert result.backends == alternating(uas1.port, uas2.port, 10)
    assert (len(uas1.invites()), len(uas2.invites())) == (5, 5)


def test_shv_balancer_splits_1000_calls_evenly(impl: str, services: Services) -> None:
    uas1, uas2 = start_backends(services)
    proxy = start_proxy(services, impl, "stateless_rr_shv", (uas1.port, uas2.port), children=2)
    result = run_uac(services, proxy.port, calls=1000, rate=250, socket_per_call=True)
    stop_uas(uas1, uas2)
    assert (result.returncode, result.successful, result.failed) == (0, 1000, 0), result.output
    first, second = uas1.invites(), uas2.invites()
    assert (len(first), len(second)) == (500, 500)
    assert len(set(first) | set(second)) == 1000  # each call reached exactly one backend
    assert Counter(result.backends) == {uas1.port: 500, uas2.port: 500}


@pytest.mark.parametrize("example", ["stateless_rr_var", "stateless_rr_shv", "redirect_rr"])
def test_non_invite_gets_404(impl: str, example: str, services: Services, probe: SipProbe) -> None:
    proxy = start_proxy(services, impl, example, (5081, 5082), children=1)
    for method, ruri in (
        ("OPTIONS", f"sip:bob@127.0.0.1:{proxy.port}"),
        ("REGISTER", f"sip:127.0.0.1:{proxy.port}"),
    ):
        data, call_id = probe.request(method, ruri, to="sip:alice@127.0.0.1")
        probe.send(data, proxy.port)
        reply = probe.receive(timeout=5.0)
        assert reply is not None, f"no reply to {method}"
        assert (reply.status, reply.reason) == (404, "Not Found")
        assert reply.one("call-id") == call_id
        assert reply.one("cseq") == f"1 {method}"
        to = reply.one("to")
        assert to is not None
        assert to.startswith("<sip:alice@127.0.0.1>;tag=")
        assert reply.all("contact") == []
        via = reply.one("via")
        assert via is not None
        # RFC 3581: the rport the request asked for is filled in with its source port
        assert f";rport={probe.port}" in via
        assert ";received=127.0.0.1" in via


def test_redirect_answers_302_alternating(impl: str, services: Services, probe: SipProbe) -> None:
    backends = (15081, 15082)  # never contacted: a redirect server sends nothing there
    proxy = start_proxy(services, impl, "redirect_rr", backends, children=2)
    ruri = f"sip:bob@127.0.0.1:{proxy.port}"
    contacts: list[str] = []
    for n in range(4):
        branch = f"z9hG4bKredirect{n}x{probe.port}"
        data, call_id = probe.request("INVITE", ruri, branch=branch)
        probe.send(data, proxy.port)
        reply = probe.receive(timeout=5.0)
        assert reply is not None, "no reply to INVITE"
        # a reply to the previous call's ACK would show up here instead
        assert (reply.status, reply.reason) == (302, "Moved Temporarily")
        assert reply.one("call-id") == call_id
        contacts += reply.all("contact")
        # RFC 3261 §17.1.1.3: the ACK for a non-2xx reuses the INVITE's branch and the
        # reply's To-tag; sl recognises its own tag and drops it, nothing answers it
        to = reply.one("to")
        assert to is not None
        assert ";tag=" in to
        ack, _ = probe.request(
            "ACK", ruri, call_id=call_id, branch=branch, to_tag=to.split(";tag=", 1)[1]
        )
        probe.send(ack, proxy.port)
    assert contacts == [
        "<sip:bob@127.0.0.1:15081>",
        "<sip:bob@127.0.0.1:15082>",
        "<sip:bob@127.0.0.1:15081>",
        "<sip:bob@127.0.0.1:15082>",
    ]
    # still serving after the ACKs, and the OPTIONS' 404 is the next thing received
    data, call_id = probe.request("OPTIONS", ruri)
    probe.send(data, proxy.port)
    reply = probe.receive(timeout=5.0)
    assert reply is not None
    assert (reply.status, reply.reason, reply.one("call-id")) == (404, "Not Found", call_id)
