"""Export tables: what each runtime module offers to a config, next to its code.

This is Kamailio's ``cmd_export_t`` / ``param_export_t`` / ``pv_export_t`` pattern
(``src/core/sr_module.h``): every module file in :mod:`kcc_runtime.modules` ends with
an ``EXPORTS = ModuleExports(...)`` that lists its script functions (one :class:`Cmd`
per accepted arity, as Kamailio overloads by argument count), its parameters, its
pseudo-variable classes and its transformations. The compiler's checker reads these
tables and nothing else for the modules the runtime has: one source of truth.

A :class:`Cmd` whose ``impl`` is None is declared (the checker knows its signature)
but not implemented by the runtime yet; ``kcc build`` refuses to emit a call to it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

__all__ = [
    "Arg",
    "ArgKind",
    "Cmd",
    "FlagKind",
    "ModParam",
    "ModuleExports",
    "ModuleTimer",
    "PvExport",
    "Route",
    "TimerFactory",
]


class Route(enum.Flag):
    """Route kinds, with the bit values of Kamailio's ``src/core/route.h``."""

    REQUEST = 1 << 0
    FAILURE = 1 << 1
    TM_ONREPLY = 1 << 2
    BRANCH = 1 << 3
    ONSEND = 1 << 4
    ERROR = 1 << 5
    LOCAL = 1 << 6
    CORE_ONREPLY = 1 << 7
    BRANCH_FAILURE = 1 << 8
    ONEVENT = 1 << 9

    ONREPLY = TM_ONREPLY | CORE_ONREPLY
    EVENT = REQUEST | ONEVENT
    ANY = (
        REQUEST
        | FAILURE
        | TM_ONREPLY
        | BRANCH
        | ONSEND
        | ERROR
        | LOCAL
        | CORE_ONREPLY
        | BRANCH_FAILURE
        | ONEVENT
    )


class FlagKind(enum.Enum):
    """The three 32-bit flag sets a config manipulates."""

    MESSAGE = "message"  # setflag/isflagset, $mf, acc log_flag ... (kept in the transaction)
    BRANCH = "branch"  # setbflag/isbflagset, $bf, usrloc nat_bflag ... (per branch)
    SCRIPT = "script"  # setsflag/issflagset, $sf (per top-level route run)


class ArgKind(enum.Enum):
    """What a function does with an argument at load time (Kamailio's fixups)."""

    #: a string that may contain pseudo-variables, evaluated per message (``fixup_spve``)
    STR = "str"
    #: a constant string, used as written (``fixup_str``)
    STR_CONST = "str-const"
    #: an integer, or a pseudo-variable holding one (``fixup_igp``)
    INT = "int"
    #: a constant integer (``fixup_int``)
    INT_CONST = "int-const"
    #: a SIP reply code 100..699, or a pseudo-variable (``sl_send_reply``, ``t_reply``)
    REPLY_CODE = "reply-code"
    #: a pseudo-variable the function reads (``fixup_pvar`` on input)
    PV = "pv"
    #: a writable pseudo-variable the function stores into
    PV_WRITE = "pv-write"
    #: a POSIX extended regular expression, compiled at load time (``fixup_regexp``)
    REGEX = "regex"
    #: the name of a route block of ``Arg.route`` kind (``t_on_failure("RETRY")``)
    ROUTE = "route"
    #: a flag number 0..31 (or a define naming one) of ``Arg.flag`` kind
    FLAG = "flag"
    #: the name of a ``lock()``/``unlock()`` lock
    LOCK = "lock"
    #: ``host[:port]`` or ``[proto:]host[:port]`` of a next hop (``fixup_hostport2proxy``)
    HOSTPORT = "hostport"
    #: a module-specific fixup that kcc checks no further than "an expression"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a :class:`Cmd`."""

    kind: ArgKind
    #: for ``ArgKind.ROUTE``: the kind of block named
    route: Route | None = None
    #: for ``ArgKind.FLAG``: which flag set
    flag: FlagKind | None = None

    @classmethod
    def route_name(cls, kind: Route) -> Arg:
        return cls(ArgKind.ROUTE, route=kind)

    @classmethod
    def flag_of(cls, kind: FlagKind) -> Arg:
        return cls(ArgKind.FLAG, flag=kind)


# The argument kinds most tables use, as constants.
STR = Arg(ArgKind.STR)
STR_CONST = Arg(ArgKind.STR_CONST)
INT = Arg(ArgKind.INT)
INT_CONST = Arg(ArgKind.INT_CONST)
REPLY_CODE = Arg(ArgKind.REPLY_CODE)
PV = Arg(ArgKind.PV)
PV_WRITE = Arg(ArgKind.PV_WRITE)
REGEX = Arg(ArgKind.REGEX)
LOCK = Arg(ArgKind.LOCK)
HOSTPORT = Arg(ArgKind.HOSTPORT)
ANY = Arg(ArgKind.ANY)


@dataclass(frozen=True, slots=True)
class Cmd:
    """A script function for one arity (Kamailio's ``cmd_export_t`` row)."""

    name: str
    args: tuple[Arg, ...]
    #: route kinds the function may be used in (Kamailio's flags)
    routes: Route
    #: the implementation, called as ``impl(ctx, *args)``; None: not implemented yet
    impl: Callable[..., Any] | None = None
    #: Kamailio demands constant arguments (no pseudo-variable, no expression)
    const_args: bool = False
    #: Kamailio's fixup function, for reference and ``kcc explain``
    fixup: str = ""

    @property
    def arity(self) -> int:
        return len(self.args)


@dataclass(frozen=True, slots=True)
class ModParam:
    """A ``modparam("module", "name", value)`` parameter (``param_export_t``)."""

    name: str
    type: type[int] | type[str]
    default: int | str | None
    #: the value goes to a setter function, so the parameter may be given many times
    repeatable: bool = False
    #: for int parameters holding a flag number (acc ``log_flag``, usrloc ``nat_bflag``)
    flag: FlagKind | None = None
    #: False: the runtime does not do what setting it asks for (acc's ``db_flag``:
    #: accounting to a database), so ``kcc build`` refuses a cfg that sets it (E0905)
    #: rather than run without it
    implemented: bool = True


@dataclass(frozen=True, slots=True)
class PvExport:
    """A pseudo-variable class (``pv_export_t``): ``$ru``, ``$var(name)``, ``$T_reply_code``."""

    name: str
    #: ``$name(inner)`` needs an inner name
    inner: bool = False
    writable: bool = False
    #: ``$(name[index])`` is accepted
    index: bool = False
    #: only meaningful while a transaction exists (``$T_reply_code``, ``$avp`` in tm)
    transaction: bool = False


class ModuleTimer(Protocol):
    """Work a module does on the worker's timer (nathelper's keepalives)."""

    def on_timer(self, now: float) -> None: ...


#: builds a module's timer for one worker's engine (the proxy, passed as ``Any`` so
#: that this table does not depend on the engine), or None when there is nothing to
#: run in that worker
TimerFactory: TypeAlias = Callable[[Any], ModuleTimer | None]


@dataclass(frozen=True, slots=True)
class ModuleExports:
    """Everything a module exports to the config language."""

    name: str
    cmds: tuple[Cmd, ...] = ()
    params: tuple[ModParam, ...] = ()
    pvs: tuple[PvExport, ...] = ()
    #: transformation names, ``class.name`` (``s.len``, ``uri.user``)
    transformations: tuple[str, ...] = ()
    #: modules this one needs loaded first (``tmx`` needs ``tm``)
    depends: tuple[str, ...] = field(default=())
    #: what the module runs on each worker's timer (:class:`ModuleTimer` factories)
    timers: tuple[TimerFactory, ...] = ()

    def overloads(self, name: str) -> tuple[Cmd, ...]:
        return tuple(cmd for cmd in self.cmds if cmd.name == name)
