"""The compiled cfg as data (:class:`Config`) and the table of its route blocks
(:class:`Router`), which runs one block on one message and contains every failure.

A generated module ends with ``CONFIG = Config(...)`` (the cfg's global settings,
modules and ``modparam``s, in cfg order) and ``ROUTER = Router(config=CONFIG,
request=request_route, ...)``. The proxy builds a worker's state with
:meth:`Router.process` and, per message, a context and :meth:`Router.run`:

- ``exit`` (and a function returning 0) ends the script: :class:`ScriptExit`, outcome
  ``exited``; ``drop``: :class:`ScriptDrop`, outcome ``dropped``; a block that
  returns gives ``returned`` with its value;
- any other exception is a bug (in kcc or in a module) or a message the runtime could
  not handle: it is logged with the cfg place it came from
  (:func:`kcc_runtime.debug.format_cfg_report`) and the outcome is ``error``. Kamailio
  never lets a message kill a worker, and neither does the router.

``Process.config`` does not exist in ``context.py`` (owned elsewhere); :meth:`process`
sets it as an attribute so ``@cfg_get`` selects and ``myself`` find the config.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from kcc_runtime.context import Process, RouteFn, RuntimeSettings, ScriptDrop, ScriptExit
from kcc_runtime.debug import format_cfg_report
from kcc_runtime.kw import Myself
from kcc_runtime.shared import SharedStore
from kcc_runtime.shtable import ModuleMemory, worker_state
from kcc_runtime.values import Value, str_to_int

if TYPE_CHECKING:
    from kcc_runtime.context import Context, Engine

__all__ = ["Config", "Outcome", "OutcomeKind", "Router"]

log = logging.getLogger("kcc_runtime.router")


@dataclass(frozen=True)
class Config:
    """The cfg's settings: global parameters, loaded modules, ``modparam`` values and
    custom cfg variables (``group.var = value``), each in cfg order."""

    globals: tuple[tuple[str, int | str], ...] = ()
    modules: tuple[str, ...] = ()
    modparams: tuple[tuple[str, str, int | str], ...] = ()
    cfg_vars: tuple[tuple[str, str, int | str], ...] = ()

    def global_value(self, name: str, default: int | str | None = None) -> int | str | None:
        """The last value given to a global parameter (Kamailio keeps the last one)."""
        found = default
        for key, value in self.globals:
            if key == name:
                found = value
        return found

    def global_values(self, name: str) -> tuple[int | str, ...]:
        """Every value of a repeatable global (``listen``, ``alias``), in cfg order."""
        return tuple(value for key, value in self.globals if key == name)

    def modparam_values(self, module: str, name: str) -> tuple[int | str, ...]:
        """Every value of ``modparam(module, name, ...)``, in cfg order."""
        return tuple(v for m, n, v in self.modparams if m == module and n == name)

    def cfg_var(self, group: str, name: str) -> Value:
        """``@cfg_get.group.name``; None when the cfg does not declare it."""
        found: Value = None
        for g, n, value in self.cfg_vars:
            if g == group and n == name:
                found = value
        return found

    @cached_property
    def myself(self) -> Myself:
        """The listen addresses and aliases ``myself`` matches."""
        return Myself.from_cfg(
            tuple(str(v) for v in self.global_values("listen")),
            tuple(str(v) for v in self.global_values("alias")),
        )

    def settings(self) -> RuntimeSettings:
        """The script-execution settings (Kamailio's defaults where not set)."""
        base = RuntimeSettings()

        def number(name: str, default: int) -> int:
            value = self.global_value(name, default)
            return value if isinstance(value, int) else str_to_int(str(value))

        return RuntimeSettings(
            max_while_loops=number("max_while_loops", base.max_while_loops),
            max_recursive_level=number("max_recursive_level", base.max_recursive_level),
            max_branches=number("max_branches", base.max_branches),
        )

    def shv_initial(self) -> dict[str, Value]:
        """``modparam("pv", "shvset", "name=i:1")`` / ``"name=s:text"`` values.

        A malformed item is logged and left out (Kamailio refuses to start; the
        compiler checks it first)."""
        out: dict[str, Value] = {}
        for item in self.modparam_values("pv", "shvset"):
            name, sep, rest = str(item).partition("=")
            kind, colon, text = rest.partition(":")
            if not sep or not colon or kind not in ("i", "s") or not name.strip():
                log.error("bad shvset value %r", item)
                continue
            out[name.strip()] = str_to_int(text) if kind == "i" else text
        return out


class OutcomeKind(enum.Enum):
    """How a route run ended."""

    RETURNED = "returned"
    EXITED = "exited"
    DROPPED = "dropped"
    ERROR = "error"


class Outcome(NamedTuple):
    """The end of one route run: how, and the code (the block's value, or ``$rc`` at
    ``exit``/``drop``; -1 after an error). A ``NamedTuple``: built for every run."""

    kind: OutcomeKind
    rc: int

    @property
    def dropped(self) -> bool:
        return self.kind is OutcomeKind.DROPPED


@dataclass(frozen=True)
class Router:
    """Every route block of the compiled cfg, by kind and name."""

    config: Config
    request: RouteFn | None = None
    failure: Mapping[str, RouteFn] = field(default_factory=dict)
    branch: Mapping[str, RouteFn] = field(default_factory=dict)
    onreply: Mapping[str, RouteFn] = field(default_factory=dict)
    reply: RouteFn | None = None
    onsend: RouteFn | None = None
    event: Mapping[str, RouteFn] = field(default_factory=dict)
    routes: Mapping[str, RouteFn] = field(default_factory=dict)
    #: htable's tables and pike's tree in shared memory, set by the supervisor
    #: before it forks (:func:`kcc_runtime.serve.run`); None: process-local ones
    module_memory: ModuleMemory | None = None

    def process(self, engine: Engine, shared: SharedStore | None = None) -> Process:
        """A worker's state for this cfg: settings, ``$shv`` initial values, the
        ``route($var(x))`` table, ``modparam`` values by (module, name) (the last one
        given wins), the config (for ``@cfg_get`` and ``myself``), and the htable
        tables of ``modparam("htable", "htable", ...)``: a bad definition raises
        :class:`~kcc_runtime.htable.HtableDefinitionError`, the worker does not start
        (as Kamailio does not). ``shared`` replaces the single-process ``$shv``/lock
        store (the multi-process proxy passes its shared-memory store, which the
        supervisor filled with the ``shvset`` values). The htable tables and pike's
        tree are the shared ones of :attr:`module_memory` when the supervisor set
        it (:func:`kcc_runtime.shtable.worker_state`)."""
        htables, pike = worker_state(self.config, self.module_memory, time.time)
        proc = Process(
            engine=engine,
            settings=self.config.settings(),
            shared=SharedStore(self.config.shv_initial()) if shared is None else shared,
            htables=htables,
            routes=dict(self.routes),
            modparams={(m, n): v for m, n, v in self.config.modparams},
            config=self.config,
            pike=pike,
        )
        return proc

    def run(self, route: RouteFn, ctx: Context) -> Outcome:
        """Run one block on ``ctx``; never raises for anything the block does."""
        try:
            rc = route(ctx)
        except ScriptExit:
            return Outcome(OutcomeKind.EXITED, ctx.rc)
        except ScriptDrop:
            return Outcome(OutcomeKind.DROPPED, ctx.rc)
        except Exception as exc:  # a bad message must not kill a worker
            log.error("error while running the script:\n%s", format_cfg_report(exc).rstrip())
            return Outcome(OutcomeKind.ERROR, -1)
        return Outcome(OutcomeKind.RETURNED, rc if isinstance(rc, int) else 1)
