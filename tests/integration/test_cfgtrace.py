"""The debugger's config trace (issue 7 point 1, the stock config's ``WITH_DEBUG``):
``examples/cfgtrace.cfg`` run by kcc and by Kamailio 5.6 logs the same
``*** cfgtrace:dbg_cfg_trace(): ...`` lines for one OPTIONS, in the same order: the
route type and block name, the line, Kamailio's action number and the action's name
of every action run (assignments, ``if``/``else if``, an int and a string ``switch``,
``while`` with ``break``, ``route()`` as a statement and as a value, ``return``,
flags and module functions in conditions and statements). The line after the
``<rank>(<pid>) `` prefix is compared, the ``c=[...]`` path reduced to its file name
(each implementation runs its own copy of the cfg).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.integration.conftest import EXAMPLES, IMPLS, Proxy, Services, SipProbe, start_proxy_cfg
from tests.kamailio import needs_kamailio

pytestmark = needs_kamailio

#: the example's ``listen`` line becomes a comment (the same line count): the proxy
#: listens where the command line says (``start_proxy_cfg``)
LISTEN = "listen=udp:127.0.0.1:5060"
_TRACE = re.compile(r"^\s*\d+\(\d+\) (exec: \*\*\* cfgtrace:dbg_cfg_trace\(\): .*)$")
_PATH = re.compile(r"c=\[[^\]]*/([^/\]]+)\]")

#: what Kamailio 5.6.3 printed for this request (measured with this test's first run)
EXPECTED_HEAD = [
    "exec: *** cfgtrace:dbg_cfg_trace(): request_route=[DEFAULT_ROUTE] c=[cfgtrace.cfg]"
    " l=25 a=63 n=assign",
    "exec: *** cfgtrace:dbg_cfg_trace(): request_route=[DEFAULT_ROUTE] c=[cfgtrace.cfg]"
    " l=29 a=16 n=if",
    "exec: *** cfgtrace:dbg_cfg_trace(): request_route=[DEFAULT_ROUTE] c=[cfgtrace.cfg]"
    " l=26 a=25 n=is_method",
]


def trace_lines(log: Path, offset: int) -> list[str]:
    """The cfgtrace lines written to ``log`` after byte ``offset``, normalised."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        found = _TRACE.match(line)
        if found:
            out.append(_PATH.sub(r"c=[\1]", found.group(1)))
    return out


def start(services: Services, impl: str) -> Proxy:
    text = (EXAMPLES / "cfgtrace.cfg").read_text(encoding="utf-8")
    assert LISTEN in text
    text = text.replace(LISTEN, "# listen: from the command line")
    return start_proxy_cfg(services, impl, "cfgtrace", text, children=1)


def one_request(proxy: Proxy) -> list[str]:
    """Send one OPTIONS (no retransmission), wait for its reply, return its trace."""
    log = proxy.service.log
    time.sleep(0.3)  # let the readiness probes' lines reach the log first
    offset = log.stat().st_size
    probe = SipProbe()
    try:
        data, call_id = probe.request("OPTIONS", f"sip:trace@127.0.0.1:{proxy.port}")
        probe.send(data, proxy.port)
        reply = probe.receive(5.0)
    finally:
        probe.close()
    assert reply is not None and reply.one("call-id") == call_id
    assert reply.status == 200 and reply.reason == "traced"
    time.sleep(0.3)  # the worker logs its last action (exit) after the reply
    return trace_lines(log, offset)


def test_kcc_traces_like_kamailio(services: Services) -> None:
    traces: dict[str, list[str]] = {}
    for impl in IMPLS:
        proxy = start(services, impl)
        traces[impl] = one_request(proxy)
    kamailio, kcc = traces["kamailio"], traces["kcc"]
    assert kamailio[:3] == EXPECTED_HEAD
    assert len(kamailio) > 30
    assert kcc == kamailio


@pytest.mark.parametrize("impl", IMPLS)
def test_sub_route_lines(services: Services, impl: str) -> None:
    """Inside ``route[CHECK]`` the block's own name is printed with the top route's
    type, and ``return`` is DROP_T (2) named ``return``."""
    proxy = start(services, impl)
    lines = one_request(proxy)
    tail = "exec: *** cfgtrace:dbg_cfg_trace(): request_route=[{}] c=[cfgtrace.cfg] {}"
    assert tail.format("DEFAULT_ROUTE", "l=56 a=5 n=route") in lines
    assert tail.format("CHECK", "l=65 a=26 n=xlog") in lines
    assert tail.format("CHECK", "l=67 a=2 n=return") in lines
    assert tail.format("VALUE", "l=73 a=2 n=return") in lines
    assert lines[-1] == tail.format("DEFAULT_ROUTE", "l=61 a=2 n=exit")
