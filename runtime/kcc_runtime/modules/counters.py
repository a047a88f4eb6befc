"""Script-defined statistics counters (``cnt_inc``, ``cnt_add``, ``cnt_reset``),
readable over RPC (``kamcmd stats.get_statistics script:``, ``cnt.get``).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.

A counter is declared by ``modparam("counters", "script_counter",
"[group.]name[( |:)description]")`` (the group defaults to ``script_cnt_grp_name``,
itself ``script`` by default) and is the statistic ``group:name`` of the proxy's
counter table: :func:`script_counter_names` gives the names the supervisor adds to the
shared table before the fork (``kcc_runtime.serve``), so every worker writes its own
row and ``stats.get_statistics`` sums them. A function's argument is ``name`` or
``group.name``, resolved the same way.

Measured on Kamailio 5.6.3 (``script_counter`` ``"foo Foo counter"`` and ``"bar"``;
one request running ``cnt_inc("foo"); cnt_add("foo", 5); cnt_add("bar", 2)``, sent
twice, then once more with ``cnt_reset("foo")`` after the adds): ``kamcmd
stats.get_statistics script:`` printed ``script:bar = 4`` and ``script:foo = 12``,
then ``script:bar = 6`` and ``script:foo = 0``. ``cnt_inc("nope")`` of a counter never
declared makes Kamailio refuse to start (``cnt_fixup1(): counter script.nope does not
exist (forgot to define it?)``, exit 255). ``kcc check`` refuses a constant name that
is not declared (E0409); a name built at run time that is not declared logs that
same error when the call runs and returns -1 (the counter is not created).

``cnt_reset`` is the add-only reset of ``stats.reset_statistics``
(:mod:`kcc_runtime.rpc.modules`): the process adds minus the current total to its own
row, so the sum reads 0 and no other process's row is written.

Kamailio's ``$cnt(...)`` is not this module's: it is pv's count of the values of an
AVP or XAVP (``$cnt($avp(x))``); the counters are read over RPC.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

if TYPE_CHECKING:
    from kcc_runtime.router import Config

__all__ = [
    "EXPORTS",
    "cnt_add",
    "cnt_inc",
    "cnt_reset",
    "counter_name",
    "declared_names",
    "script_counter_names",
]

log = logging.getLogger("kcc_runtime.counters")

#: ``script_cnt_grp_name``'s default
DEFAULT_GROUP: Final = "script"
#: the end of a declaration's name: a blank or ``:`` starts its description
_NAME_END: Final = re.compile(r"[ :]")

#: the declared names of one config (``group:name``), by the config's identity
_declared: dict[int, tuple[Config, frozenset[str]]] = {}


def _group(config: Config | None, modparams: Mapping[tuple[str, str], int | str] | None) -> str:
    if config is not None:
        values = config.modparam_values("counters", "script_cnt_grp_name")
        if values and isinstance(values[-1], str) and values[-1]:
            return values[-1]
    elif modparams is not None:
        value = modparams.get(("counters", "script_cnt_grp_name"))
        if isinstance(value, str) and value:
            return value
    return DEFAULT_GROUP


def counter_name(text: str, group: str = DEFAULT_GROUP) -> str:
    """The statistic name of a counter as a declaration or a function argument
    writes it: ``foo`` -> ``script:foo``, ``test.bar`` -> ``test:bar``."""
    grp, dot, name = text.partition(".")
    return f"{grp}:{name}" if dot else f"{group}:{text}"


def declared_names(declarations: Iterable[str], group: str = DEFAULT_GROUP) -> tuple[str, ...]:
    """The statistics ``script_counter`` declarations create, in order, without
    repeats (``"baz example counter"`` -> ``script:baz``); the compiler's check of the
    functions' constant arguments uses it too."""
    names: list[str] = []
    for decl in declarations:
        head = _NAME_END.split(decl.strip(), maxsplit=1)[0]
        if head:
            names.append(counter_name(head, group))
    return tuple(dict.fromkeys(names))


def script_counter_names(config: Config) -> tuple[str, ...]:
    """The statistics the cfg's ``script_counter`` declarations create, in cfg
    order (``"baz example counter"`` -> ``script:baz``, ``"test.x:another"`` ->
    ``test:x``); none when the cfg does not load counters."""
    if "counters" not in config.modules:
        return ()
    decls = config.modparam_values("counters", "script_counter")
    return declared_names([d for d in decls if isinstance(d, str)], _group(config, None))


def _resolve(ctx: Context, text: str) -> str | None:
    """The declared statistic ``text`` names, or None (with Kamailio's error)."""
    config = ctx.proc.config
    group = _group(config, ctx.proc.modparams)
    name = counter_name(text, group)
    if config is None:
        return name  # a bare test process: no declarations to check against
    entry = _declared.get(id(config))
    if entry is None or entry[0] is not config:
        entry = (config, frozenset(script_counter_names(config)))
        _declared[id(config)] = entry
    if name not in entry[1]:
        log.error("counter %s does not exist (forgot to define it?)", name.replace(":", ".", 1))
        return None
    return name


def cnt_inc(ctx: Context, name: str) -> int:
    """``cnt_inc([group.]name)``: add 1 to the counter: 1; -1 for an undeclared one."""
    return cnt_add(ctx, name, 1)


def cnt_add(ctx: Context, name: str, number: int) -> int:
    """``cnt_add([group.]name, number)``: add ``number`` (may be negative): 1; -1 for
    an undeclared counter."""
    stat = _resolve(ctx, name)
    if stat is None:
        return -1
    ctx.proc.shared.counters.add(stat, number)
    return 1


def cnt_reset(ctx: Context, name: str) -> int:
    """``cnt_reset([group.]name)``: the counter reads 0 (see the module docstring): 1;
    -1 for an undeclared counter."""
    stat = _resolve(ctx, name)
    if stat is None:
        return -1
    counters = ctx.proc.shared.counters
    counters.add(stat, -counters.get(stat))
    return 1


# route kinds the functions below may be used in
REQ_FAIL_REPLY_SEND = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.ONSEND

EXPORTS = ModuleExports(
    name="counters",
    cmds=(
        Cmd(
            "cnt_inc",
            (STR_CONST,),
            REQ_FAIL_REPLY_SEND,
            impl=cnt_inc,
            const_args=True,
            fixup="cnt_fixup1",
        ),
        Cmd(
            "cnt_add",
            (STR_CONST, INT),
            REQ_FAIL_REPLY_SEND,
            impl=cnt_add,
            const_args=True,
            fixup="cnt_int_fixup",
        ),
        Cmd(
            "cnt_reset",
            (STR_CONST,),
            REQ_FAIL_REPLY_SEND,
            impl=cnt_reset,
            const_args=True,
            fixup="cnt_fixup1",
        ),
    ),
    params=(
        ModParam("script_cnt_grp_name", str, None),
        ModParam("script_counter", str, None, repeatable=True),
    ),
)
