"""rtpengine (the real daemon, started on loopback by PID) and rtpproxy (the test
peer of ``tests/rtpproxy_peer.py``) driven through the module functions."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kcc_runtime import bencode
from kcc_runtime.context import Received, RequestContext
from kcc_runtime.modules import rtpengine, rtpproxy

from tests.rtpproxy_peer import RtpproxyPeer
from tests.runtime.fake_engine import make_ctx

SRC = Received("127.0.0.1", 25080, "127.0.0.1", 25060, "udp")
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
)


def message(
    method: str = "INVITE", body: bytes = SDP, to_tag: str | None = None, call_id: str = "c1"
) -> bytes:
    to = "<sip:bob@b.example>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:25080;branch=z9hG4bK1\r\n"
        f"From: <sip:alice@a.example>;tag=1\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\nContact: <sip:alice@127.0.0.77:5099>\r\n"
    ).encode()
    if body:
        head += b"Content-Type: application/sdp\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def ctx_for(data: bytes, params: dict[tuple[str, str], int | str]) -> RequestContext:
    ctx = make_ctx(data, RequestContext, received=SRC, modparams=params)
    assert isinstance(ctx, RequestContext)
    return ctx


def body_of(ctx: RequestContext) -> bytes:
    out: bytes = ctx.msg.serialize()
    return out.split(b"\r\n\r\n", 1)[1]


def test_bencode_round_trip_keeps_order() -> None:
    value = {"supports": ["load limit"], "sdp": b"v=0\r\n", "n": -3, "command": "offer"}
    data = bencode.encode(value)
    assert data == b"d8:supportsl10:load limite3:sdp5:v=0\r\n1:ni-3e7:command5:offere"
    assert bencode.decode(data) == {
        "supports": [b"load limit"],
        "sdp": b"v=0\r\n",
        "n": -3,
        "command": b"offer",
    }
    for bad in (b"", b"d3:abc", b"i12", b"5:ab", b"x", b"i1ei2e", b"l" * 100 + b"e" * 100):
        with pytest.raises(bencode.BencodeError):
            bencode.decode(bad)


def test_ng_offer_command_as_kamailio_builds_it() -> None:
    """Kamailio 5.6.3's ``rtpengine_manage("co")`` and ``rtpengine_offer(...)``,
    captured on loopback (the module docstring)."""
    ctx = ctx_for(message(), {})
    cmd = rtpengine.build_command(ctx, "offer", "co", SDP)
    assert cmd is not None
    assert bencode.encode(cmd) == (
        b"d8:supportsl10:load limite3:sdp%d:%s5:flagsl2:coe7:call-id2:c1"
        b"13:received-froml3:IP49:127.0.0.1e8:from-tag1:17:command5:offere" % (len(SDP), SDP)
    )
    flags = (
        "replace-origin replace-session-connection trust-address ICE=remove RTP/AVP "
        "direction=a direction=b foo=bar baz"
    )
    cmd = rtpengine.build_command(ctx, "offer", flags, SDP)
    assert cmd is not None
    assert bencode.encode(cmd) == (
        b"d8:supportsl10:load limite3:sdp%d:%s3:ICE6:remove3:foo3:bar9:directionl1:a1:be"
        b"5:flagsl13:trust-address3:baze7:replacel6:origin18:session-connectione"
        b"18:transport-protocol7:RTP/AVP7:call-id2:c113:received-froml3:IP49:127.0.0.1e"
        b"8:from-tag1:17:command5:offere" % (len(SDP), SDP)
    )
    delete = rtpengine.build_command(ctx_for(message("BYE", b"", "9"), {}), "delete", "", None)
    assert delete is not None and "to-tag" not in delete and delete["command"] == "delete"


def test_ng_delete_drops_the_list_flags() -> None:
    """Kamailio 5.6.3's delete from ``rtpengine_manage("replace-origin
    replace-session-connection")`` on a BYE, captured on loopback
    (tests/integration/test_nat.py): no ``replace``; list words (``flags``,
    ``direction``, ``rtcp-mux``) exist only for offer and answer, while
    ``key=value`` items and the transport stay."""
    ctx = ctx_for(message("BYE", b"", "9"), {})
    flags = "replace-origin trust-address direction=a internal rtcp-mux-demux ICE=remove RTP/AVP"
    cmd = rtpengine.build_command(ctx, "delete", flags, None)
    assert cmd == {
        "supports": ["load limit"],
        "ICE": "remove",
        "transport-protocol": "RTP/AVP",
        "call-id": "c1",
        "received-from": ["IP4", "127.0.0.1"],
        "from-tag": "1",
        "command": "delete",
    }
    forced = rtpengine.build_command(ctx, "delete", "to-tag", None)
    assert forced is not None and forced["to-tag"] == "9"


def test_ng_answer_in_a_request_swaps_the_tags() -> None:
    """An ACK carrying the answer (the 200 made the offer) and a reply carrying an
    offer name the offerer, the To side, as ``from-tag`` (Kamailio's
    ``rtpp_function_call``); without a To tag nothing is sent."""
    ack = ctx_for(message("ACK", SDP, "t9"), {})
    cmd = rtpengine.build_command(ack, "answer", "", SDP)
    assert cmd is not None
    assert (cmd["from-tag"], cmd["to-tag"]) == ("t9", "1")
    offer = rtpengine.build_command(ctx_for(message(), {}), "offer", "", SDP)
    assert offer is not None and (offer["from-tag"], "to-tag" in offer) == ("1", False)
    assert rtpengine.build_command(ctx_for(message("ACK", SDP), {}), "answer", "", SDP) is None


def test_ng_special_words() -> None:
    ctx = ctx_for(message(), {})
    cmd = rtpengine.build_command(
        ctx, "offer", "SRTP AVPF TOS=184x repacketize=20 delete-delay=5 via-branch=1", SDP
    )
    assert cmd is not None
    assert cmd["transport-protocol"] == "RTP/SAVPF"
    assert (cmd["TOS"], cmd["repacketize"], cmd["delete delay"]) == (184, 20, 5)
    assert cmd["delete-delay"] == "5"
    assert cmd["via-branch"] == "z9hG4bK1"
    # force-answer turns the offer into an answer: in a request the tags swap
    reinvite = ctx_for(message(to_tag="t3"), {})
    answer = rtpengine.build_command(reinvite, "offer", "force-answer", SDP)
    assert answer is not None
    assert (answer["command"], answer["from-tag"], answer["to-tag"]) == ("answer", "t3", "1")
    assert rtpengine.build_command(ctx, "delete", "force-answer", None) is None
    for bad in ("call-id", "from-tag", "repacketize=x", "via-branch", "via-branch=next"):
        assert rtpengine.build_command(ctx, "offer", bad, SDP) is None, bad


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def rtpengine_daemon(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("rtpengine")
    if binary is None:
        pytest.skip("rtpengine-daemon is not installed")
    port = _free_udp_port()
    log = (tmp_path / "rtpengine.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--foreground",
            "--table=-1",
            "--interface=127.0.0.1",
            f"--listen-ng=127.0.0.1:{port}",
            "--port-min=40000",
            "--port-max=40100",
            "--log-stderr",
            f"--pidfile={tmp_path / 'rtpengine.pid'}",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        client = rtpengine.NgClient("127.0.0.1", port, timeout=0.2, retries=0)
        for _ in range(50):
            if client.request({"command": "ping"}) == {"result": b"pong"}:
                break
            time.sleep(0.1)
        else:
            pytest.fail("rtpengine did not answer ping")
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_rtpengine_offer_answer_delete_through_the_daemon(rtpengine_daemon: int) -> None:
    params: dict[tuple[str, str], int | str] = {
        ("rtpengine", "rtpengine_sock"): f"udp:127.0.0.1:{rtpengine_daemon}"
    }
    call = f"kcc-{time.time()}"
    offer = ctx_for(message(call_id=call), params)
    assert rtpengine.rtpengine_manage(offer, "replace-origin replace-session-connection") == 1
    sdp = body_of(offer)
    assert b"c=IN IP4 127.0.0.1\r\n" in sdp
    assert b"o=- 1 1 IN IP4 127.0.0.1\r\n" in sdp
    port = int(sdp.split(b"m=audio ", 1)[1].split(b" ", 1)[0])
    assert 40000 <= port <= 40100
    assert b"Content-Length: %d\r\n" % len(sdp) in offer.msg.serialize()
    answer_sdp = SDP.replace(b"4000", b"5000").replace(b"10.0.0.5", b"127.0.0.66")
    ack = ctx_for(message("ACK", answer_sdp, "t9", call), params)
    assert rtpengine.rtpengine_manage(ack) == 1
    assert b"c=IN IP4 127.0.0.1\r\n" in body_of(ack)
    bye = ctx_for(message("BYE", b"", "t9", call), params)
    assert rtpengine.rtpengine_manage(bye) == 1


def test_rtpengine_unreachable_is_minus_one() -> None:
    params: dict[tuple[str, str], int | str] = {
        ("rtpengine", "rtpengine_sock"): f"udp:127.0.0.1:{_free_udp_port()}",
        ("rtpengine", "rtpengine_tout_ms"): 50,
        ("rtpengine", "rtpengine_retr"): 1,
    }
    ctx = ctx_for(message(), params)
    assert rtpengine.rtpengine_offer(ctx) == -1
    assert body_of(ctx) == SDP
    assert rtpengine.rtpengine_offer(ctx_for(message(), {})) == -1


def test_rtpproxy_manage_as_kamailio() -> None:
    with RtpproxyPeer(address="127.0.0.8") as peer:
        params: dict[tuple[str, str], int | str] = {
            ("rtpproxy", "rtpproxy_sock"): f"udp:127.0.0.1:{peer.port}"
        }
        ctx = ctx_for(message(call_id="cp1"), params)
        assert rtpproxy.rtpproxy_manage(ctx, "co") == 1
        assert body_of(ctx) == (
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.8\r\ns=-\r\nc=IN IP4 127.0.0.8\r\nt=0 0\r\n"
            b"m=audio 35000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=nortpproxy:yes\r\n"
        )
        # an answer needs a To tag: nothing sent without one
        assert rtpproxy.rtpproxy_answer(ctx_for(message(call_id="cp1"), params), "co") == -1
        reply = ctx_for(message("ACK", SDP.replace(b"4000", b"6000"), "t2", "cp1"), params)
        assert rtpproxy.rtpproxy_manage(reply) == 1
        assert b"m=audio 35002 RTP/AVP 0 8\r\n" in body_of(reply)
        assert rtpproxy.rtpproxy_manage(ctx_for(message("BYE", b"", "t2", "cp1"), params)) == 1
        assert rtpproxy.rtpproxy_manage(ctx_for(message("CANCEL", b"", None, "cp1"), params)) == 1
        assert peer.commands == [
            "Uc0,8 cp1 127.0.0.1 4000 1;1",
            "Lc0,8 cp1 127.0.0.1 6000 t2;1 1;1",
            "D cp1 1 t2",
            "D cp1 1",
        ]
