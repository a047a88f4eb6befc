"""The debugger's cfgtrace line (``kcc_runtime.modules.debugger.cfgtrace``), as
Kamailio 5.6.3 prints it (measured with probe configs and ``kamailio -DD -E``):

    1(19410) exec: *** cfgtrace:dbg_cfg_trace(): request_route=[R] c=[/tmp/d.cfg] l=20 a=26 n=xlog

with ``log_level_name`` "exec", and ``ERROR: *** cfgtrace:...`` without it (the
default ``log_level`` -1); ``onreply_route=[DEFAULT_ONREPLY]`` in the unnamed
onreply_route, ``failure_route=[X]`` in a route[X] called from a failure route,
``request_route=[core:worker-one-init]`` in an event route.
"""

from __future__ import annotations

import logging
import os

import pytest
from kcc_runtime import logs
from kcc_runtime.context import Process, Received, ReplyContext, RequestContext
from kcc_runtime.exports import Route
from kcc_runtime.modules import debugger
from kcc_runtime.sip import parse_message

from .fake_engine import FakeEngine

REQUEST = (
    b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)
REPLY = (
    b"SIP/2.0 486 Busy\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
    b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
RECEIVED = Received("127.0.0.1", 5070, "127.0.0.1", 5060)


def proc(**params: int | str) -> Process:
    return Process(engine=FakeEngine(), modparams={("debugger", k): v for k, v in params.items()})


def formatted(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logs.KamailioFormatter()
    pid = os.getpid()
    return [
        formatter.format(r).replace(f"({pid})", "(PID)")
        for r in caplog.records
        if r.name == "kcc_runtime.debugger"
    ]


def test_line_with_level_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.debugger")
    ctx = RequestContext(proc(cfgtrace=1, log_level_name="exec"), parse_message(REQUEST), RECEIVED)
    site = debugger.Site("/tmp/k/dbg.cfg", "R")
    assert debugger.cfgtrace(ctx, site, 20, 26, "xlog") is ctx
    assert formatted(caplog) == [
        " 0(PID) exec: *** cfgtrace:dbg_cfg_trace(): request_route=[R] c=[/tmp/k/dbg.cfg]"
        " l=20 a=26 n=xlog\n"
    ]
    assert caplog.records[0].levelno == logging.ERROR


def test_default_level_word_and_reply_route(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.debugger")
    ctx = ReplyContext(proc(cfgtrace=1), parse_message(REPLY), RECEIVED)
    ctx.kind = Route.CORE_ONREPLY
    debugger.cfgtrace(ctx, debugger.Site("/tmp/k/p2.cfg", "DEFAULT_ONREPLY"), 39, 26, "xlog")
    assert formatted(caplog) == [
        " 0(PID) ERROR: *** cfgtrace:dbg_cfg_trace(): onreply_route=[DEFAULT_ONREPLY]"
        " c=[/tmp/k/p2.cfg] l=39 a=26 n=xlog\n"
    ]


def test_prefix_format_and_level(caplog: pytest.LogCaptureFixture) -> None:
    """``log_prefix`` replaces the prefix, ``cfgtrace_format`` 1 drops ``c=[...]``,
    ``log_level`` 2 logs at INFO; a relative path is made absolute."""
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.debugger")
    ctx = RequestContext(
        proc(cfgtrace=1, log_prefix="dbg:", cfgtrace_format=1, log_level=2),
        parse_message(REQUEST),
        RECEIVED,
    )
    ctx.kind = Route.FAILURE
    debugger.cfgtrace(ctx, debugger.Site("x.cfg", "X"), 47, 26, "xlog")
    assert formatted(caplog) == [
        " 0(PID) INFO: dbg:dbg_cfg_trace(): failure_route=[X] l=47 a=26 n=xlog\n"
    ]
    assert debugger.Site("x.cfg", "X").absolute == os.path.abspath("x.cfg")


@pytest.mark.parametrize("value", [0, 2])
def test_only_one_turns_it_on(caplog: pytest.LogCaptureFixture, value: int) -> None:
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.debugger")
    ctx = RequestContext(proc(cfgtrace=value), parse_message(REQUEST), RECEIVED)
    assert debugger.cfgtrace(ctx, debugger.Site("/a.cfg", "R"), 1, 63, "assign") is ctx
    assert formatted(caplog) == []


def test_event_route_prints_request_route(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kcc_runtime.debugger")
    ctx = RequestContext(proc(cfgtrace=1), parse_message(REQUEST), RECEIVED)
    ctx.kind = Route.ONEVENT
    site = debugger.Site("/a.cfg", "core:worker-one-init")
    assert debugger.trace_line(ctx, site, 50, 26, "xlog") == (
        "request_route=[core:worker-one-init] c=[/a.cfg] l=50 a=26 n=xlog"
    )
