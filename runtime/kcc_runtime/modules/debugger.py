"""Config debugger: execution tracing, breakpoints, PV dumps and per-module
log levels.

Implemented: the config trace (``cfgtrace``, below). The functions
(``dbg_breakpoint``, ``dbg_pv_dump``, ``dbg_sip_msg``) have no ``impl`` yet, so
``kcc build`` refuses a cfg calling them (E0901).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from kcc_runtime import logs
from kcc_runtime.context import Context, Process
from kcc_runtime.exports import (
    ANY,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY

EXPORTS = ModuleExports(
    name="debugger",
    cmds=(
        Cmd("dbg_breakpoint", (ANY,), Route.ANY, const_args=True, fixup="fixup_dbg_breakpoint"),
        Cmd("dbg_pv_dump", (), Route.ANY, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_pv_dump", (ANY,), Route.ANY, const_args=True, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_pv_dump", (ANY, ANY), Route.ANY, const_args=True, fixup="fixup_dbg_pv_dump"),
        Cmd("dbg_sip_msg", (), REQ_REPLY, fixup="fixup_dbg_sip_msg"),
        Cmd("dbg_sip_msg", (ANY,), REQ_REPLY, const_args=True, fixup="fixup_dbg_sip_msg"),
        Cmd("dbg_sip_msg", (ANY, ANY), REQ_REPLY, const_args=True, fixup="fixup_dbg_sip_msg"),
    ),
    params=(
        ModParam("cfgtrace", int, 0),
        ModParam("cfgtrace_format", int, 0),
        ModParam("breakpoint", int, 0),
        ModParam("log_level", int, -1),
        ModParam("log_facility", str, None),
        ModParam("log_prefix", str, "*** cfgtrace:"),
        ModParam("log_level_name", str, None),
        ModParam("log_assign", int, 0),
        ModParam("step_usleep", int, 100000),
        ModParam("step_loops", int, 200),
        ModParam("mod_hash_size", int, 0),
        ModParam("mod_level_mode", int, 0),
        ModParam("mod_level", str, None, repeatable=True),
        ModParam("mod_facility_mode", int, 0),
        ModParam("mod_facility", str, None, repeatable=True),
        ModParam("reset_msgid", int, 0),
        ModParam("cfgpkgcheck", int, 0),
        ModParam("cfgtest", int, 0),
    ),
)


# -- cfgtrace ------------------------------------------------------------------------------
#
# With ``modparam("debugger", "cfgtrace", 1)`` Kamailio logs every action it runs, from
# the ``SREV_CFG_RUN_ACTION`` callback that ``run_actions`` fires before each action
# (``dbg_cfg_trace``), one line per action:
#
#     1(19410) exec: *** cfgtrace:dbg_cfg_trace(): request_route=[R] c=[/tmp/d.cfg] l=20 a=26 n=xlog
#
# that is ``<log_level_name or the level word>: <log_prefix>dbg_cfg_trace(): ``, the
# route *type* of the top route that runs (``get_current_route_type_name``: an event
# route prints ``request_route``, measured with ``event_route[core:worker-one-init]``),
# the *name of the block* the action is written in (``DEFAULT_ROUTE`` for
# request_route, ``DEFAULT_ONREPLY`` for the unnamed onreply_route, the name otherwise:
# ``request_route=[R]`` inside ``route[R]``), the cfg file, the line Kamailio's parser
# gave the action, the action type number (``route_struct.h``) and its name
# (``debugger_act.c``). All measured on Kamailio 5.6.3 with probe configs: see
# ``tests/runtime/test_debugger_cfgtrace.py``. Only ``cfgtrace`` equal to 1 turns the
# trace on (``dbg_init_mypid``). kcc knows the cfg at build time, so the generated code
# calls :func:`cfgtrace` only when the cfg turns it on (``docs/generated-code.md``).

#: the logger of the trace lines (its records carry their own level word)
LOGGER: Final = logging.getLogger("kcc_runtime.debugger")

#: Kamailio's ``route_type`` words, by the kind of the context that runs
_ROUTE_TYPE_NAMES: Final = {
    Route.REQUEST: "request_route",
    Route.FAILURE: "failure_route",
    Route.TM_ONREPLY: "onreply_route",
    Route.CORE_ONREPLY: "onreply_route",
    Route.BRANCH: "branch_route",
    Route.ONSEND: "onsend_route",
    Route.BRANCH_FAILURE: "branch_failure_route",
    # Kamailio's EVENT_ROUTE is REQUEST_ROUTE (measured: request_route=[core:...])
    Route.ONEVENT: "request_route",
}


@dataclass(frozen=True, slots=True)
class Site:
    """Where traced actions are written: the cfg file (as the cfg names it, made
    absolute when the proxy starts, as Kamailio prints the path of ``-f``) and the
    name of the route block (Kamailio's ``action->rname``)."""

    path: str
    route: str
    absolute: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "absolute", os.path.abspath(self.path))


@dataclass(frozen=True, slots=True)
class TraceSettings:
    """The debugger's trace parameters of one process (README.debugger 3.1-3.7)."""

    enabled: bool
    #: the ``logging`` level of ``log_level`` (default -1, L_ERR)
    level: int
    #: ``log_level_name``, or the word of ``level`` when unset
    level_name: str
    prefix: str
    #: ``cfgtrace_format`` 1 leaves ``c=[file]`` out
    with_file: bool

    @classmethod
    def from_modparams(cls, modparams: Mapping[tuple[str, str], int | str]) -> TraceSettings:
        def number(name: str, default: int) -> int:
            value = modparams.get(("debugger", name), default)
            return value if isinstance(value, int) else default

        def text(name: str, default: str | None) -> str | None:
            value = modparams.get(("debugger", name), default)
            return value if isinstance(value, str) else default

        level = logs.parse_level(number("log_level", -1))
        assert level is not None  # an int always maps
        return cls(
            enabled=number("cfgtrace", 0) == 1,
            level=level,
            level_name=text("log_level_name", None) or logs.kamailio_level_name(level),
            prefix=text("log_prefix", "*** cfgtrace:") or "",
            with_file=number("cfgtrace_format", 0) != 1,
        )


#: settings per process (its modparams do not change while it runs), by ``id`` (a
#: ``Process`` is not hashable), with the process to tell a reused ``id`` apart
_SETTINGS: Final[dict[int, tuple[Process, TraceSettings]]] = {}

_C = TypeVar("_C", bound=Context)


def settings(proc: Process) -> TraceSettings:
    """The trace settings of ``proc``, read from its modparams once."""
    found = _SETTINGS.get(id(proc))
    if found is None or found[0] is not proc:
        found = (proc, TraceSettings.from_modparams(proc.modparams))
        _SETTINGS[id(proc)] = found
    return found[1]


def trace_line(ctx: Context, site: Site, line: int, action: int, name: str) -> str:
    """The text after Kamailio's ``<level>: <prefix>dbg_cfg_trace(): ``."""
    route_type = _ROUTE_TYPE_NAMES.get(ctx.kind, "unknown_route")
    where = f" c=[{site.absolute}]" if settings(ctx.proc).with_file else ""
    return f"{route_type}=[{site.route}]{where} l={line} a={action} n={name}"


def cfgtrace(ctx: _C, site: Site, line: int, action: int, name: str) -> _C:
    """Log one executed action (see above) and give ``ctx`` back, so the generated
    code can trace a call where its context argument is written:
    ``sl.sl_send_reply(debugger.cfgtrace(ctx, SITE_1, 12, 26, "sl_send_reply"), ...)``
    traces before the arguments are evaluated, as Kamailio does."""
    conf = settings(ctx.proc)
    if conf.enabled and LOGGER.isEnabledFor(conf.level):
        LOGGER.log(
            conf.level,
            "%sdbg_cfg_trace(): %s\n",
            conf.prefix,
            trace_line(ctx, site, line, action, name),
            extra={logs.LEVEL_WORD: conf.level_name, logs.BARE: True},
        )
    return ctx
