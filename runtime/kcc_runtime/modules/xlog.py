"""Formatted logging with pseudo-variables: ``xlog()``, ``xdbg()`` and
friends, with per-level and per-facility variants.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
from typing import Final

from kcc_runtime import logs
from kcc_runtime.context import Context
from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.values import str_to_int

__all__ = [
    "EXPORTS",
    "xalert",
    "xbug",
    "xcrit",
    "xdbg",
    "xerr",
    "xinfo",
    "xlog",
    "xnotice",
    "xwarn",
]

#: the logger every xlog message goes to
log = logging.getLogger("kcc_runtime.xlog")

#: xlog's level names (``L_ALERT`` .. ``L_DBG``, Kamailio ``dprint.h``) as
#: ``logging`` levels; NOTICE sits between INFO and WARNING
LEVELS: Final = {
    "L_ALERT": logs.ALERT,
    "L_BUG": logs.BUG,
    "L_CRIT": logging.CRITICAL,
    "L_ERR": logging.ERROR,
    "L_WARN": logging.WARNING,
    "L_NOTICE": logging.INFO + 5,
    "L_INFO": logging.INFO,
    "L_DBG": logging.DEBUG,
}
#: Kamailio's numeric levels (a level given by a variable holding an int)
NUMERIC: Final = {
    -5: "L_ALERT",
    -4: "L_BUG",
    -3: "L_CRIT",
    -2: "L_CRIT",
    -1: "L_ERR",
    0: "L_WARN",
    1: "L_NOTICE",
    2: "L_INFO",
    3: "L_DBG",
}


def level_of(name: str) -> int:
    """The ``logging`` level of an xlog level: ``L_ERR`` ... or a number as text
    (``"-1"``); anything else logs at ERROR, xlog's default."""
    text = name.strip()
    level = LEVELS.get(text.upper())
    if level is not None:
        return level
    if text.lstrip("+-").isdigit():
        number = str_to_int(text)
        if number < -5:
            return logging.CRITICAL
        return LEVELS.get(NUMERIC.get(number, "L_DBG"), logging.DEBUG)
    return logging.ERROR


def xlog(ctx: Context, first: str, second: str | None = None, third: str | None = None) -> int:
    """``xlog(msg)`` (at L_ERR), ``xlog(level, msg)``, ``xlog(facility, level, msg)``
    (the facility is the syslog one; here the logger is the same): 1.

    The generator has already rendered the format string (pseudo-variables) into
    the message text, which is logged as is (no newline added or removed)."""
    if second is None:
        level, message = logging.ERROR, first
    elif third is None:
        level, message = level_of(first), second
    else:
        level, message = level_of(second), third
    log.log(level, "%s", message)
    return 1


def _at(level: int, message: str) -> int:
    log.log(level, "%s", message)
    return 1


def xdbg(ctx: Context, message: str) -> int:
    """``xdbg(msg)``: log at L_DBG: 1."""
    return _at(logging.DEBUG, message)


def xinfo(ctx: Context, message: str) -> int:
    """``xinfo(msg)``: log at L_INFO: 1."""
    return _at(logging.INFO, message)


def xnotice(ctx: Context, message: str) -> int:
    """``xnotice(msg)``: log at L_NOTICE: 1."""
    return _at(logging.INFO + 5, message)


def xwarn(ctx: Context, message: str) -> int:
    """``xwarn(msg)``: log at L_WARN: 1."""
    return _at(logging.WARNING, message)


def xerr(ctx: Context, message: str) -> int:
    """``xerr(msg)``: log at L_ERR: 1."""
    return _at(logging.ERROR, message)


def xbug(ctx: Context, message: str) -> int:
    """``xbug(msg)``: log at L_BUG: 1."""
    return _at(logging.CRITICAL, message)


def xcrit(ctx: Context, message: str) -> int:
    """``xcrit(msg)``: log at L_CRIT: 1."""
    return _at(logging.CRITICAL, message)


def xalert(ctx: Context, message: str) -> int:
    """``xalert(msg)``: log at L_ALERT: 1."""
    return _at(logging.CRITICAL, message)


EXPORTS = ModuleExports(
    name="xlog",
    cmds=(
        # log with a level (the first parameter) or at the default level
        Cmd("xlog", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xlog),
        Cmd("xlog", (STR, STR), Route.ANY, const_args=True, fixup="xlog_fixup", impl=xlog),
        Cmd("xlog", (STR, STR, STR), Route.ANY, const_args=True, fixup="xlog3_fixup", impl=xlog),
        Cmd("xlogm", (STR, STR), Route.ANY, const_args=True, fixup="xlog_fixup"),
        # one function per level
        Cmd("xdbg", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xdbg),
        Cmd("xinfo", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xinfo),
        Cmd("xnotice", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xnotice),
        Cmd("xwarn", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xwarn),
        Cmd("xerr", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xerr),
        Cmd("xbug", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xbug),
        Cmd("xcrit", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xcrit),
        Cmd("xalert", (STR,), Route.ANY, const_args=True, fixup="xdbg_fixup", impl=xalert),
        # with the config line prefix
        Cmd("xlogl", (STR,), Route.ANY, const_args=True, fixup="xdbgl_fixup"),
        Cmd("xlogl", (STR, STR), Route.ANY, const_args=True, fixup="xlogl_fixup"),
        Cmd("xlogl", (STR, STR, STR), Route.ANY, const_args=True, fixup="xlogl3_fixup"),
        Cmd("xdbgl", (STR,), Route.ANY, const_args=True, fixup="xdbgl_fixup"),
    ),
    params=(
        ModParam("buf_size", int, 4096),
        ModParam("force_color", int, 0),
        ModParam("long_format", int, 0),
        ModParam("prefix", str, "<script>: "),
        ModParam("log_facility", str, None),
        ModParam("log_colors", str, None, repeatable=True),
        ModParam("methods_filter", int, -1),
        ModParam("prefix_mode", int, 0),
    ),
    pvs=(PvExport("C", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``auto_newline``
