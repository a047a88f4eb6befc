"""Max-Forwards handling: adds or decrements the header and detects loops.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.sip import Request, SipParseError

__all__ = [
    "EXPORTS",
    "is_maxfwd_lt",
    "maxfwd_at_least",
    "maxfwd_process",
    "mf_process_maxfwd_header",
    "process_maxfwd",
]

log = logging.getLogger("kcc_runtime.maxfwd")

#: RFC 3261 §20.22 allows 0..255; maxfwd refuses larger values
MAX_VALUE = 255


def _value(msg: Request) -> int | None:
    """The received Max-Forwards value; None when absent; -2 semantics by raising."""
    value = msg.max_forwards
    if value is not None and value > MAX_VALUE:
        raise SipParseError(400, "Bad Max-Forwards header")
    return value


def maxfwd_process(ctx: Context, limit: int) -> int:
    """``maxfwd_process(n)`` (maxfwd ``process_maxfwd_header``), as measured
    against Kamailio 5.6:

    - no Max-Forwards: ``Max-Forwards: n`` is inserted as the first header: 2;
    - value 0: -1 (the script answers 483);
    - else the value is decremented in place, the digits right-aligned in the
      original width and padded with spaces (``10`` -> `` 9``), after capping it
      at the ``max_limit`` parameter (default 70: ``200`` -> `` 70``): 1;
    - a bad value (not digits, above 255) or ``n`` outside 0..255: -2 / -1.
    """
    if not 0 <= limit <= MAX_VALUE:
        log.error("invalid param value: %d", limit)
        return -1
    msg = ctx.msg
    if not isinstance(msg, Request):
        return -2
    try:
        value = _value(msg)
    except SipParseError:
        log.error("unable to parse the max forwards number")
        return -2
    if value is None:
        msg.insert_header_first("Max-Forwards", str(limit))
        return 2
    if value == 0:
        return -1
    max_limit = ctx.proc.modparam_int("maxfwd", "max_limit", 70)
    if value > max_limit:
        value = max_limit + 1
    i = msg.names.index(b"max-forwards")
    _, vs, ve, _ = msg.spans[i]
    raw = msg.buf[vs:ve]
    start = vs + (len(raw) - len(raw.lstrip(b" \t\r\n")))
    end = ve - (len(raw) - len(raw.rstrip(b" \t\r\n")))
    digits = str(value - 1).encode("ascii")
    width = end - start
    msg._splice(start, end, digits.rjust(width, b" ")[-width:] if width else digits)
    return 1


def mf_process_maxfwd_header(ctx: Context, limit: int) -> int:
    """Same as :func:`maxfwd_process`."""
    return maxfwd_process(ctx, limit)


def process_maxfwd(ctx: Context, limit: int) -> int:
    """Same as :func:`maxfwd_process`."""
    return maxfwd_process(ctx, limit)


def is_maxfwd_lt(ctx: Context, limit: int) -> int:
    """``is_maxfwd_lt(n)``: 1 when the received Max-Forwards value is below ``n``,
    -1 when not, -2 when there is no header (also after ``maxfwd_process`` added
    one: measured against Kamailio 5.6), -3 when it does not parse."""
    msg = ctx.msg
    if not isinstance(msg, Request):
        return -3
    try:
        value = _value(msg)
    except SipParseError:
        return -3
    if value is None:
        return -2
    return 1 if value < limit else -1


def maxfwd_at_least(ctx: Context, limit: int) -> int:
    """Same as :func:`is_maxfwd_lt` (the maxfwd README says so)."""
    return is_maxfwd_lt(ctx, limit)


# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH

EXPORTS = ModuleExports(
    name="maxfwd",
    cmds=(
        Cmd("maxfwd_process", (INT,), Route.REQUEST, fixup="fixup_var_int_1", impl=maxfwd_process),
        Cmd(
            "mf_process_maxfwd_header",
            (INT,),
            Route.REQUEST,
            fixup="fixup_var_int_1",
            impl=mf_process_maxfwd_header,
        ),
        Cmd("process_maxfwd", (INT,), Route.REQUEST, fixup="fixup_var_int_1", impl=process_maxfwd),
        Cmd("is_maxfwd_lt", (INT,), REQ_FAIL_BRANCH, fixup="fixup_var_int_1", impl=is_maxfwd_lt),
        Cmd(
            "maxfwd_at_least",
            (INT,),
            REQ_FAIL_BRANCH,
            fixup="fixup_var_int_1",
            impl=maxfwd_at_least,
        ),
        Cmd("mf_lowlimit", (INT,), REQ_FAIL_BRANCH, fixup="fixup_var_int_1"),
    ),
    params=(ModParam("max_limit", int, 70),),
)
