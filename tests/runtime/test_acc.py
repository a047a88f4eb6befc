"""acc to the log (:mod:`kcc_runtime.modules.acc`) through the real tm and engine,
bytes in and log lines out, with a fake clock.

Every expected line was measured on Kamailio 5.6.3 on loopback: a cfg with the stock
cfg's acc parameters (``log_flag`` 1, ``log_missed_flag`` 2,
``failed_transaction_flag`` 3 and its ``log_extra``), routes setting the flags from an
``X-Flags`` header and relaying to a Python UAS answering 180 then the code of an
``X-Code`` header (To-tag ``uastag1``), ``fr_timer`` 1 s; the lines Kamailio printed
(``acc [acc.c:287]: acc_log_request(): ACC: …``) are the expected text here after
the function name, with the caller's and UAS's ports of these tests and the timestamp
pinned.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from kcc_runtime import pv
from kcc_runtime.context import FailureContext, RequestContext
from kcc_runtime.engine import Proxy, Socket
from kcc_runtime.modules import acc, sl, tm
from kcc_runtime.router import Config, Router

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
CALLER = ("127.0.0.1", 5962)
UAS = ("127.0.0.1", 5961)
ME = Socket("udp", "127.0.0.1", 5960)
NOW = 1795699647.25
#: tm's local To-tag prefix for ME (md5("SER-TM/tags127.0.0.15960")), measured
TM_TAG = "e2dbfda3d6d97f01d4ce757e9c632344"
EXTRA = "src_user=alice;src_domain=example.com;src_ip=127.0.0.1;dst_ouser=bobby"

STOCK_ACC = (
    ("acc", "early_media", 0),
    ("acc", "report_ack", 0),
    ("acc", "report_cancels", 0),
    ("acc", "detect_direction", 0),
    ("acc", "log_flag", 1),
    ("acc", "log_missed_flag", 2),
    (
        "acc",
        "log_extra",
        "src_user=$fU;src_domain=$fd;src_ip=$si;dst_ouser=$tU;dst_user=$rU;dst_domain=$rd",
    ),
    ("acc", "failed_transaction_flag", 3),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def header(ctx: RequestContext | FailureContext, name: str) -> str:
    value = pv.accessor("hdr", name).get(ctx)
    return value if isinstance(value, str) else ""


def failure(ctx: FailureContext) -> int:
    """The probe's failure_route: ``X-FR`` ``set``/``reset``/``next``/``reply``."""
    what = header(ctx, "X-FR")
    if what == "set":
        ctx.flags |= 1 << 2
    elif what == "reset":
        ctx.flags &= ~(1 << 2)
    elif what == "next":
        ctx.flags |= 1 << 2
        pv.set_ruri(ctx, "sip:carol@127.0.0.1:5961")
        ctx.action(tm.t_relay(ctx))
    elif what == "reply":
        ctx.action(tm.t_reply(ctx, 503, "Mine"))
    return 1


def request(ctx: RequestContext) -> int:
    """The probe's request_route (see the module docstring)."""
    flags = header(ctx, "X-Flags")
    for letter, flag in (("a", 1), ("m", 2), ("f", 3)):
        if letter in flags:
            ctx.flags |= 1 << flag
    act = header(ctx, "X-Act")
    if act == "log":
        ctx.action(acc.acc_log_request(ctx, "403 Forbidden " + ctx.msg.method))
        ctx.action(acc.acc_log_request(ctx, "hello"))
        ctx.action(acc.acc_log_request(ctx, "12"))
        ctx.action(sl.sl_send_reply(ctx, 200, "ok"))
        return 1
    if act == "sreply":
        ctx.action(tm.t_newtran(ctx))
        ctx.action(sl.send_reply(ctx, 480, "Gone"))
        return 1
    if act == "late":
        ctx.action(tm.t_newtran(ctx))
        ctx.flags |= 1 << 3
        ctx.action(tm.t_reply(ctx, 404, "Nobody"))
        return 1
    if header(ctx, "X-FR"):
        ctx.action(tm.t_on_failure(ctx, failure))
    pv.set_ruri(ctx, f"sip:{pv.accessor('rU').get(ctx)}@127.0.0.1:5961")
    return ctx.action(tm.t_relay(ctx))


def make(modparams: tuple[tuple[str, str, int | str], ...] = STOCK_ACC) -> tuple[Proxy, Clock]:
    clock = Clock()
    config = Config(
        modules=("tm", "sl", "pv", "acc"),
        modparams=(("tm", "fr_timer", 1000), ("tm", "fr_inv_timer", 1500), *modparams),
    )
    router = Router(config=config, request=request)
    return Proxy(router, [ME], clock=clock, allow_dst=LOOPBACK), clock


def send(p: Proxy, method: str, cid: str, flags: str, *extra: str, to_tag: str = "") -> list[bytes]:
    hdrs = "".join(h + "\r\n" for h in extra)
    to = "<sip:bobby@example.org>" + (f";tag={to_tag}" if to_tag else "")
    msg = (
        f"{method} sip:bob@127.0.0.1:5960 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5962;branch=z9hG4bK{cid}\r\n"
        f'From: "Alice" <sip:alice@example.com>;tag=ftag1\r\nTo: {to}\r\n'
        f"Call-ID: {cid}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nX-Flags: {flags}\r\n"
        f"{hdrs}Contact: <sip:alice@127.0.0.1:5962>\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    return [o.data for o in p.receive(msg, CALLER, ME)]


def uas_answer(req: bytes, code: int, reason: str) -> bytes:
    """The probe's UAS: Via, From, To (with ``tag=uastag1``), Call-ID, CSeq."""
    out = [f"SIP/2.0 {code} {reason}"]
    for line in req.decode().split("\r\n")[1:]:
        name = line.split(":", 1)[0].lower()
        if name in ("via", "from", "call-id", "cseq"):
            out.append(line)
        elif name == "to":
            out.append(line + ";tag=uastag1")
    return ("\r\n".join(out) + "\r\nContent-Length: 0\r\n\r\n").encode()


def answer(p: Proxy, forwarded: list[bytes], *codes: tuple[int, str]) -> list[bytes]:
    """The UAS answers the INVITE/BYE the proxy sent (the last request among
    ``forwarded``) with 180 (INVITE only) and then each code."""
    req = [d for d in forwarded if not d.startswith(b"SIP/2.0")][-1]
    sent: list[bytes] = []
    if req.startswith(b"INVITE"):
        sent += [o.data for o in p.receive(uas_answer(req, 180, "Ringing"), UAS, ME)]
    for code, reason in codes:
        sent += [o.data for o in p.receive(uas_answer(req, code, reason), UAS, ME)]
    return sent


@pytest.fixture
def lines(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[str]]:
    """The acc records logged so far, as ``LEVEL funcName: text``."""
    monkeypatch.setattr(acc.time, "time", lambda: NOW)
    monkeypatch.setitem(acc._env, "to_tag", "")
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.acc")

    def get() -> list[str]:
        return [
            f"{logging.getLevelName(r.levelno)} {r.funcName}: {r.getMessage()}"
            for r in caplog.records
            if r.name == "kcc_runtime.acc"
        ]

    return get


def rec(head: str, cid: str, code: int | str, reason: str, **kw: Any) -> str:
    method = kw.get("method", "INVITE")
    to_tag = kw.get("to_tag", "uastag1")
    user = kw.get("user", "bob")
    return (
        f"Level 25 acc_log_request: ACC: {head}: timestamp=1795699647;method={method};"
        f"from_tag=ftag1;to_tag={to_tag};call_id={cid};code={code};reason={reason};"
        f"{EXTRA};dst_user={user};dst_domain=127.0.0.1\n"
    )


def local_tag(p: Proxy, data: bytes) -> str:
    found = re.search(rb"^To: .*;tag=([^;\r]+)", data, re.M)
    assert found is not None
    tag = found.group(1).decode()
    assert p.tm.tag_prefix == TM_TAG
    return tag


def test_answered_invite_logs_transaction_answered(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    fwd = send(p, "INVITE", "c-ans", "a", "X-Code: 200")
    answer(p, fwd, (200, "OK"))
    assert lines() == [rec("transaction answered", "c-ans", 200, "OK")]


def test_failed_invite_with_acc_flag_only_logs_nothing(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    answer(p, send(p, "INVITE", "c-busy-a", "a"), (486, "Busy Here"))
    answer(p, send(p, "BYE", "c-bye-f", "f", to_tag="x"), (404, "Not Found"))
    assert lines() == []


def test_missed_and_failed_flags(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    answer(p, send(p, "INVITE", "c-busy-am", "am"), (486, "Busy Here"))
    answer(p, send(p, "INVITE", "c-busy-amf", "amf"), (486, "Busy Here"))
    answer(p, send(p, "INVITE", "c-busy-af", "af"), (486, "Busy Here"))
    answer(p, send(p, "BYE", "c-bye-af", "af"), (404, "Not Found"))
    assert lines() == [
        rec("call missed", "c-busy-am", 486, "Busy Here"),
        rec("call missed", "c-busy-amf", 486, "Busy Here"),
        rec("transaction answered", "c-busy-amf", 486, "Busy Here"),
        rec("transaction answered", "c-busy-af", 486, "Busy Here"),
        rec("transaction answered", "c-bye-af", 404, "Not Found", method="BYE"),
    ]


def test_missed_flag_is_cleared_before_the_failure_route(
    lines: Callable[[], list[str]],
) -> None:
    seen: list[int] = []

    def watch(ctx: FailureContext) -> int:
        seen.append(ctx.flags)
        return failure(ctx)

    p, _ = make()
    p.router = Router(config=p.router.config, request=_with_failure(watch))
    answer(p, send(p, "INVITE", "c-fr-am", "am", "X-FR: 1"), (486, "Busy Here"))
    # measured: "failure route 486 flags=2" after the missed line, nothing after
    assert seen == [2]
    assert lines() == [rec("call missed", "c-fr-am", 486, "Busy Here")]


def _with_failure(fn: Callable[[FailureContext], int]) -> Callable[[RequestContext], int]:
    def route(ctx: RequestContext) -> int:
        ctx.flags |= (1 << 1) | (1 << 2)
        ctx.action(tm.t_on_failure(ctx, fn))
        pv.set_ruri(ctx, "sip:bob@127.0.0.1:5961")
        return ctx.action(tm.t_relay(ctx))

    return route


def test_failure_route_flags_go_back_to_the_transaction(
    lines: Callable[[], list[str]],
) -> None:
    p, _ = make()
    answer(p, send(p, "INVITE", "c-fr-set", "am", "X-FR: set"), (486, "Busy Here"))
    answer(p, send(p, "INVITE", "c-fr-reset", "amf", "X-FR: reset"), (486, "Busy Here"))
    assert lines() == [
        rec("call missed", "c-fr-set", 486, "Busy Here"),
        rec("call missed", "c-fr-set", 486, "Busy Here"),
        rec("call missed", "c-fr-reset", 486, "Busy Here"),
        rec("transaction answered", "c-fr-reset", 486, "Busy Here"),
    ]


def test_serial_forking_logs_the_new_branch_uri(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    fwd = send(p, "INVITE", "c-fr-next", "am", "X-FR: next")
    sent = answer(p, fwd, (486, "Busy Here"))
    assert lines() == [rec("call missed", "c-fr-next", 486, "Busy Here")]
    answer(p, sent, (486, "Busy Here"))
    assert lines()[1:] == [rec("call missed", "c-fr-next", 486, "Busy Here", user="carol")]


def test_reply_from_the_failure_route_sees_the_earlier_flags(
    lines: Callable[[], list[str]],
) -> None:
    p, _ = make()
    sent = answer(p, send(p, "INVITE", "c-fr-reply", "amf", "X-FR: reply"), (486, "Busy Here"))
    tag = local_tag(p, next(d for d in sent if d.startswith(b"SIP/2.0 503")))
    assert tag == TM_TAG + "-d7e52b9b"  # measured
    assert lines() == [
        rec("call missed", "c-fr-reply", 486, "Busy Here"),
        rec("call missed", "c-fr-reply", 503, "Service Unavailable", to_tag=tag),
        rec("transaction answered", "c-fr-reply", 503, "Service Unavailable", to_tag=tag),
    ]


def test_remapped_503_logs_the_local_500(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    sent = answer(p, send(p, "INVITE", "c-fr-503", "amf"), (503, "Whatever"))
    tag = local_tag(p, next(d for d in sent if d.startswith(b"SIP/2.0 500")))
    assert tag == TM_TAG + "-d475af38"  # measured
    assert lines() == [
        rec("call missed", "c-fr-503", 503, "Whatever"),
        rec("transaction answered", "c-fr-503", 500, "Server Internal Error", to_tag=tag),
    ]


def test_timeout_logs_408_with_tm_tag(lines: Callable[[], list[str]]) -> None:
    p, clock = make()
    send(p, "INVITE", "c-timeout", "amf")
    clock.now += 1.1
    sent = [o.data for o in p.on_timer(clock.now)]
    replies = [d for d in sent if d.startswith(b"SIP/2.0")]
    assert [d.split(b"\r\n", 1)[0] for d in replies] == [b"SIP/2.0 408 Request Timeout"]
    tag = local_tag(p, replies[0])
    assert tag == TM_TAG + "-c2e7ccfb"  # measured
    assert lines() == [
        rec("call missed", "c-timeout", 408, "Request Timeout", to_tag=tag),
        rec("transaction answered", "c-timeout", 408, "Request Timeout", to_tag=tag),
    ]


def test_stateful_send_reply_logs_the_standard_reason(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    out = send(p, "INVITE", "c-sreply", "amf", "X-Act: sreply")
    assert out[0].startswith(b"SIP/2.0 480 Gone\r\n")
    tag = local_tag(p, out[0])
    assert tag == TM_TAG + "-7da506e8"  # measured
    assert lines() == [
        rec("call missed", "c-sreply", 480, "Temporarily Unavailable", to_tag=tag),
        rec("transaction answered", "c-sreply", 480, "Temporarily Unavailable", to_tag=tag),
    ]


def test_flags_set_after_the_transaction_exists_do_not_count(
    lines: Callable[[], list[str]],
) -> None:
    p, _ = make()
    out = send(p, "INVITE", "late-a", "a", "X-Act: late")
    assert out[0].startswith(b"SIP/2.0 404 Nobody\r\n")
    assert lines() == []


def test_acc_log_request_splits_the_code(lines: Callable[[], list[str]]) -> None:
    p, _ = make()
    send(p, "OPTIONS", "c-log", "", "X-Act: log")
    assert lines() == [
        rec("request accounted", "c-log", 403, "Forbidden OPTIONS", method="OPTIONS", to_tag=""),
        rec("request accounted", "c-log", "", "hello", method="OPTIONS", to_tag=""),
        rec("request accounted", "c-log", "", "12", method="OPTIONS", to_tag=""),
    ]


def test_acc_log_request_uses_the_last_local_tag_when_to_has_none(
    lines: Callable[[], list[str]],
) -> None:
    p, _ = make()
    out = send(p, "INVITE", "c-sreply", "amf", "X-Act: sreply")
    tag = local_tag(p, out[0])
    send(p, "OPTIONS", "c-log", "", "X-Act: log")
    assert lines()[2] == rec(
        "request accounted", "c-log", 403, "Forbidden OPTIONS", method="OPTIONS", to_tag=tag
    )


def test_log_level_and_time_mode(lines: Callable[[], list[str]]) -> None:
    p, _ = make((*STOCK_ACC, ("acc", "log_level", 2), ("acc", "time_mode", 2)))
    answer(p, send(p, "INVITE", "c-ans", "a"), (200, "OK"))
    [line] = lines()
    assert line.startswith(
        "INFO acc_log_request: ACC: transaction answered: timestamp=1795699647;"
        "time_attr=1795699647.250;method=INVITE;"
    )


def test_error_text_fallbacks() -> None:
    assert acc.error_text(480) == "Temporarily Unavailable"
    assert acc.error_text(499) == "Request Failure"
    assert acc.error_text(699) == "Global Failure"
    assert acc.error_text(99) == "Unspecified"


def test_parse_extra_keeps_order_and_reports_bad_entries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="kcc_runtime.acc"):
        extra = acc.parse_extra(" ua = $hdr(User-Agent) ; x=$nosuch; y=text")
    assert [(n, a is not None) for n, a in extra] == [("ua", True), ("x", False), ("y", False)]
    assert "bad extra" in caplog.text
