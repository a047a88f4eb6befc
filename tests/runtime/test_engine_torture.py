"""The RFC 4475 / RFC 5118 torture corpus through the whole stateless core.

Each message goes to :meth:`Proxy.receive` as one UDP datagram from 127.0.0.1:5970,
routed by the chapter's stateless balancer (``golden/stateless_rr_var.py``: INVITEs
forwarded to 127.0.0.1:5081/5082, every other request answered 404) behind the
``--allow-dst 127.0.0.0/8,::1`` guard. Expected:

- a message the parser refuses (``OUTCOMES`` of ``test_sip_torture.py``) is answered
  with exactly that status when a reply can be built, else dropped and counted;
- a valid INVITE is forwarded with every header line but the Request-URI's and the
  previous top Via's byte-exact and the body unchanged; any other valid request gets
  the script's 404; a response is relayed by its second Via or refused by the guard
  (the corpus' Vias point outside loopback); nothing raises.

Kamailio 5.6.3 itself (measured, same cfg) never sends 400 on its own: it drops what
its parser refuses and routes the rest; the proxy follows RFC 4475's verdicts instead,
as Kamailio with ``sanity_check()`` would (see ``kcc_runtime.engine``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from kcc_runtime.engine import Proxy, Socket, forward_branch
from kcc_runtime.router import Router
from kcc_runtime.sip import Request, Response, parse_message

from .corpus import CASES, Case
from .test_sip_torture import OUTCOMES, fixed

REPO = Path(__file__).resolve().parent.parent.parent
CLIENT = ("127.0.0.1", 5970)
SOCKET = Socket("udp", "127.0.0.1", 5060)


def make_proxy() -> Proxy:
    path = REPO / "golden" / "stateless_rr_var.py"
    namespace: dict[str, Any] = {"__name__": "golden_stateless_rr_var"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    router = namespace["ROUTER"]
    assert isinstance(router, Router)
    nets = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    return Proxy(router, [SOCKET], allow_dst=nets)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_corpus_through_the_proxy(case: Case) -> None:
    p = make_proxy()
    data = fixed(case)
    out = p.receive(data, CLIENT, SOCKET)
    assert p.stats["errors"] == 0
    outcome = OUTCOMES.get(case.file)
    if outcome is not None:
        _stage, status, can_reply = outcome
        assert p.stats["dropped_bad"] == 1
        if can_reply:
            assert len(out) == 1
            assert out[0].data.startswith(b"SIP/2.0 %d " % status)
            assert out[0].dst == ("127.0.0.1", out[0].dst[1])
            reply = parse_message(out[0].data)
            assert isinstance(reply, Response) and reply.status == status
        else:
            assert out == []
        return
    msg = parse_message(data)
    assert p.stats["dropped_bad"] == 0
    if isinstance(msg, Response):
        assert p.stats["replies_relayed"] + p.stats["refused_dst"] + p.stats["dropped_replies"] == 1
        return
    assert isinstance(msg, Request)
    if msg.method == "INVITE":
        assert len(out) == 1
        sent = parse_message(out[0].data)
        assert isinstance(sent, Request)
        assert out[0].dst == ("127.0.0.1", 5081)
        assert sent.uri_raw.startswith(b"sip:") and b"@127.0.0.1:5081" in sent.uri_raw
        # our Via above the first Via line; everything else byte-exact but the old top
        # Via's received/rport and the R-URI (and a Content-Length the message lacked)
        our_via = b"Via: SIP/2.0/UDP 127.0.0.1;branch=%s" % forward_branch(msg).encode() + msg.eol
        first_via = msg.spans[msg.names.index(b"via")][0]
        assert out[0].data.find(our_via) == first_via - msg.uri_end + sent.uri_end
        rest = out[0].data[sent.uri_end :].replace(our_via, b"", 1)
        rest = rest.replace(b";received=127.0.0.1", b"", 1).replace(b"rport=5970", b"rport", 1)
        if not msg.has_content_length:
            rest = rest.replace(b"Content-Length: %d" % len(msg.body) + msg.eol, b"", 1)
        assert rest == msg.buf[msg.uri_end : msg.body_end]
    elif msg.method == "ACK":
        assert out == []
    else:
        assert len(out) == 1 and out[0].data.startswith(b"SIP/2.0 404 Not Found\r\n")
        assert out[0].dst[0] == "127.0.0.1"


def test_every_invalid_message_is_answered_or_dropped() -> None:
    invalid = [c for c in CASES if c.verdict == "invalid"]
    p = make_proxy()
    answered = dropped = 0
    for case in invalid:
        out = p.receive(fixed(case), CLIENT, SOCKET)
        if out:
            answered += 1
            assert out[0].data[:12] in (b"SIP/2.0 400 ", b"SIP/2.0 505 ")
        else:
            dropped += 1
    assert (answered, dropped) == (
        sum(1 for c in invalid if OUTCOMES[c.file][2]),
        sum(1 for c in invalid if not OUTCOMES[c.file][2]),
    )
    assert p.stats["dropped_bad"] == len(invalid)
    assert p.stats["errors"] == 0
