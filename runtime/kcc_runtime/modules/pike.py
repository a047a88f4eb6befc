"""Flood detection: counts requests per source IP and reports sources above
the configured rate (:mod:`kcc_runtime.pike` holds the tree and its semantics).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README
and ``pike.c`` (``pike_log_level`` is ``L_WARN``, 0, in the code; the README's "1 (L_WARN)"
is the level's old number).
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Context, Process
from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.pike import PikeTree, ip_bytes

__all__ = ["EXPORTS", "pike_check_ip", "pike_check_req", "pike_tree"]

log = logging.getLogger("kcc_runtime.pike")

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY


def pike_tree(proc: Process) -> PikeTree:
    """The worker's tree: the shared one the supervisor made, else (a process without
    a supervisor: tests, a bare router) one made now from the ``modparam`` values."""
    if proc.pike is None:
        proc.pike = PikeTree(
            max_hits=proc.modparam_int("pike", "reqs_density_per_unit", 30),
            time_unit=max(1, proc.modparam_int("pike", "sampling_time_unit", 2)),
            timeout=proc.modparam_int("pike", "remove_latency", 120),
            log_level=proc.modparam_int("pike", "pike_log_level", 0),
        )
    return proc.pike


def pike_check_req(ctx: Context) -> int:
    """``pike_check_req()``: one hit for the message's source address: 1 (not
    blocked), -1 (blocked), -2 (blocked from this request on: logged once)."""
    return pike_tree(ctx.proc).check(ctx.received.src_ip)


def pike_check_ip(ctx: Context, ipaddr: str) -> int:
    """``pike_check_ip(ip)``: as :func:`pike_check_req` for ``ip``; an empty value is
    -1, text that is not an address -1 with Kamailio's error line ("failed to parse
    ip address"). IPv4 and IPv6 are both accepted."""
    if not ipaddr:
        return -1
    if ip_bytes(ipaddr) is None:
        log.error("failed to parse ip address: %s", ipaddr)
        return -1
    return pike_tree(ctx.proc).check(ipaddr)


EXPORTS = ModuleExports(
    name="pike",
    cmds=(
        Cmd("pike_check_req", (), REQ_REPLY, impl=pike_check_req),
        Cmd("pike_check_ip", (STR,), REQ_REPLY, fixup="fixup_spve_null", impl=pike_check_ip),
    ),
    params=(
        ModParam("sampling_time_unit", int, 2),
        ModParam("reqs_density_per_unit", int, 30),
        ModParam("remove_latency", int, 120),
        ModParam("pike_log_level", int, 0),
    ),
)
