"""The compiler's view of every Kamailio module: functions, parameters, PVs, transformations.

Two sources, never overlapping:

- the runtime's export tables (:mod:`kcc_runtime.modules`): one file per module the
  runtime implements or will implement, the single source of truth for those modules;
- ``kcc/data/reference_*.tsv``: the rows of Kamailio's own export tables for every other
  module (see ``kcc/data/README.md``), turned into the same :class:`ModuleExports` shape
  here, with argument kinds derived from the fixup names by :func:`args_from_fixup`.

So a config that loads a module the runtime does not know yet still checks fully.
:func:`registry` builds the merged view once per process.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import kcc_runtime.modules as runtime_modules
from kcc_runtime.exports import (
    ANY,
    HOSTPORT,
    INT,
    INT_CONST,
    PV,
    PV_WRITE,
    REGEX,
    STR,
    STR_CONST,
    Arg,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

__all__ = [
    "FunctionInfo",
    "Registry",
    "Resolution",
    "args_from_fixup",
    "registry",
    "routes_from_names",
]


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    module: str  # "core" for core actions
    cmd: Cmd
    #: the module has a runtime file (so kcc build can use it once cmd.impl exists)
    in_runtime: bool


@dataclass(frozen=True, slots=True)
class Resolution:
    """Result of looking a call up: exactly one of these shapes."""

    #: the overload that matches name + arity among loaded modules
    found: FunctionInfo | None
    #: loaded modules export the name, but not with that arity
    wrong_arity: tuple[FunctionInfo, ...]
    #: only modules that are NOT loaded export the name (any arity)
    not_loaded: tuple[FunctionInfo, ...]
    # all three empty/None: no module at all exports the name


# -- fixup names -> argument kinds -------------------------------------------------------

#: one letter of Kamailio's compact fixup names (``fixup_isi``, ``fixup_sssi``)
_LETTER_KIND = {"i": INT, "s": STR}

#: one part of a ``fixup_<part>_<part>`` name: the kind of the parameter it fixes
_PART_KIND: dict[str, Arg] = {
    "spve": STR,
    "str": STR_CONST,
    "igp": INT,
    "int": INT_CONST,
    "uint": INT_CONST,
    "regexp": REGEX,
    "regexpNL": REGEX,
    "pvar": PV,
    "none": STR_CONST,
}

#: ``fixup_var_<kind>_<params>``: an int, a string or a pseudo-variable holding one
_VAR_KIND: dict[str, Arg] = {"int": INT, "str": STR, "pve": STR}


def args_from_fixup(fixup: str, nargs: int) -> tuple[Arg, ...]:
    """Argument kinds of a function with ``nargs`` parameters and this C fixup.

    Follows Kamailio's naming conventions: ``fixup_spve*`` evaluates a string with
    pseudo-variables, ``fixup_igp*`` an integer or a PV, ``fixup_str*``/``fixup_int*``
    take constants, ``fixup_regexp*`` compiles a regex, ``fixup_pvar*`` takes a PV,
    ``fixup_var_int*`` an int or a PV, ``fixup_hostport2proxy`` a next hop, and the
    compact ``fixup_isi`` style spells one letter per parameter. ``_null`` ends the
    list, ``_none`` leaves a parameter as written, ``_all`` repeats the last kind. No
    fixup at all (``0``) passes the text as written. Any other name is a
    module-specific fixup: :data:`~kcc_runtime.exports.ANY`.
    """
    if nargs <= 0:
        return ()
    kinds = _fixup_kinds(fixup, nargs)
    if kinds is None:
        return (ANY,) * nargs
    # parameters the name does not mention get no fixup: used as written
    return tuple((kinds + [STR_CONST] * nargs)[:nargs])


def _fixup_kinds(fixup: str, nargs: int) -> list[Arg] | None:
    if fixup in ("", "0"):
        return []
    if fixup == "fixup_hostport2proxy":
        return [HOSTPORT, INT_CONST]
    if fixup == "fixup_proto_hostport2proxy":
        return [STR_CONST, HOSTPORT]
    body = fixup.removeprefix("fixup_")
    if body == fixup:
        return None
    if re.fullmatch(r"[is]{2,6}", body):
        return [_LETTER_KIND[c] for c in body]
    spve_n = re.fullmatch(r"spve(\d)_pvar", body)
    if spve_n:  # N strings, then the PV the result is stored into
        return [STR] * int(spve_n.group(1)) + [PV_WRITE]
    if body == "spve_pvar":
        return [STR, PV_WRITE]
    parts = body.split("_")
    if parts[0] == "var" and len(parts) >= 2:
        if parts[1:] == ["str", "int"]:
            return [STR, INT]
        kind = _VAR_KIND.get(parts[1])
        if kind is None:
            return None
        # fixup_var_int_12: the digits name the parameters the kind applies to
        which = parts[2] if len(parts) > 2 and parts[2].isdigit() else "123456"
        return [kind if str(i + 1) in which else STR_CONST for i in range(nargs)]
    if len(parts) == 2 and parts[0] in _PART_KIND and parts[1].isdigit():
        # fixup_int_12: the digits name the parameters the kind applies to
        return [_PART_KIND[parts[0]] if str(i + 1) in parts[1] else STR_CONST for i in range(nargs)]
    kinds: list[Arg] = []
    for part in parts:
        if part == "null":
            return kinds
        if part == "all":
            return kinds + [kinds[-1]] * nargs if kinds else None
        kind = _PART_KIND.get(part)
        if kind is None:
            return None
        kinds.append(kind)
    return kinds


#: route-kind names of the reference tables (``route_types`` column)
_ROUTE_NAMES: dict[str, Route] = {
    "REQUEST": Route.REQUEST,
    "FAILURE": Route.FAILURE,
    "TM_ONREPLY": Route.TM_ONREPLY,
    "CORE_ONREPLY": Route.CORE_ONREPLY,
    "ONREPLY": Route.ONREPLY,
    "BRANCH": Route.BRANCH,
    "ONSEND": Route.ONSEND,
    "ERROR": Route.ERROR,
    "LOCAL": Route.LOCAL,
    "BRANCH_FAILURE": Route.BRANCH_FAILURE,
    "ONEVENT": Route.ONEVENT,
    "EVENT": Route.EVENT,
    "ANY": Route.ANY,
}


def routes_from_names(text: str) -> Route:
    """``"REQUEST|FAILURE"`` -> ``Route.REQUEST | Route.FAILURE``; ``"0"`` -> no kind."""
    result = Route(0)
    for part in text.split("|"):
        name = part.strip()
        if name in ("", "0", "NONE"):
            continue
        result |= _ROUTE_NAMES[name]
    return result


# -- reference data ------------------------------------------------------------------------


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = resources.files("kcc").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


#: Kamailio 5.6 modules that export nothing to the routing script (no function, no
#: parameter, no PV), so they have no row in the reference tables; ``loadmodule`` of one
#: is valid. ``cdp_avp`` only exports a C binding (``NO_SCRIPT``) for the IMS modules;
#: ``stun`` (answers STUN on the SIP ports), ``kemix`` (KEMI only) and ``pua_rpc``
#: (RPC commands only) ship with 5.6 but are gone from the 6.x snapshot.
EXPORTLESS_MODULES = ("cdp_avp", "kemix", "pua_rpc", "stun")


def _reference_modules(skip: Iterable[str]) -> dict[str, ModuleExports]:
    skipped = set(skip)
    cmds: dict[str, list[Cmd]] = {}
    params: dict[str, list[ModParam]] = {}
    pvs: dict[str, list[PvExport]] = {}
    trans: dict[str, list[str]] = {}
    for row in _read_tsv("reference_functions.tsv"):
        module = row["module"]
        if module in skipped:
            continue
        routes = routes_from_names(row["route_types"])
        for nargs in range(int(row["min_args"]), int(row["max_args"]) + 1):
            cmd = Cmd(
                name=row["function"],
                args=args_from_fixup(row["fixup"], nargs),
                routes=routes,
                const_args=row["const_args_only"] == "Y",
                fixup="" if row["fixup"] == "0" else row["fixup"],
            )
            cmds.setdefault(module, []).append(cmd)
    for row in _read_tsv("reference_modparams.tsv"):
        if row["module"] in skipped:
            continue
        params.setdefault(row["module"], []).append(
            ModParam(
                name=row["param"],
                type=int if row["type"] == "int" else str,
                default=None,
                repeatable=row["use_func"] == "Y",
            )
        )
    for row in _read_tsv("reference_pvs.tsv"):
        if row["module"] in skipped:
            continue
        pvs.setdefault(row["module"], []).append(
            PvExport(
                name=row["pv"],
                inner=row["inner_name"] == "required",
                writable=row["writable"] == "Y",
                index=row["index_allowed"] == "Y",
            )
        )
    for row in _read_tsv("reference_transformations.tsv"):
        if row["module"] in skipped:
            continue
        trans.setdefault(row["module"], []).append(row["transformation"])
    names = set(cmds) | set(params) | set(pvs) | set(trans)
    names |= set(EXPORTLESS_MODULES) - skipped
    return {
        name: ModuleExports(
            name=name,
            cmds=tuple(cmds.get(name, ())),
            params=tuple(params.get(name, ())),
            pvs=tuple(pvs.get(name, ())),
            transformations=tuple(trans.get(name, ())),
        )
        for name in sorted(names)
    }


# -- the registry ---------------------------------------------------------------------------


class Registry:
    """Every module kcc knows, by name; ``"core"`` holds the core actions and PVs."""

    def __init__(self, runtime: dict[str, ModuleExports], reference: dict[str, ModuleExports]):
        self._runtime = dict(runtime)
        self._modules: dict[str, ModuleExports] = {**reference, **runtime}
        #: function name -> every (module, cmd) exporting it, modules in name order
        self._functions: dict[str, list[FunctionInfo]] = {}
        for name in sorted(self._modules):
            for cmd in self._modules[name].cmds:
                info = FunctionInfo(name, cmd, name in self._runtime)
                self._functions.setdefault(cmd.name, []).append(info)
        self._pvs: dict[str, tuple[str, PvExport]] = {}
        # core first, then runtime modules, then the reference: the first claim wins
        for name in ["core", *sorted(self._runtime), *sorted(self._modules)]:
            found = self._modules.get(name)
            for pv in found.pvs if found is not None else ():
                self._pvs.setdefault(pv.name, (name, pv))
        self._transformations: dict[str, str] = {}
        for name in [*sorted(self._runtime), *sorted(self._modules)]:
            for tr in self._modules[name].transformations:
                self._transformations.setdefault(tr, name)

    def module(self, name: str) -> ModuleExports | None:
        return self._modules.get(name)

    def is_module(self, name: str) -> bool:
        return name in self._modules and name != "core"

    def in_runtime(self, name: str) -> bool:
        return name in self._runtime

    def module_names(self) -> list[str]:
        """Every loadable module (``core`` is not one)."""
        return sorted(name for name in self._modules if name != "core")

    def function_names(self) -> list[str]:
        return sorted(self._functions)

    def resolve(self, name: str, arity: int, loaded: Sequence[str]) -> Resolution:
        """Look ``name(...)`` with ``arity`` arguments up among ``loaded`` modules.

        ``core`` is always loaded and searched first (a core keyword shadows a module
        function of the same name, as in Kamailio's grammar); among modules, the first
        loaded one that exports ``name`` with that arity wins, like Kamailio's
        ``find_export_record``.
        """
        infos = self._functions.get(name, [])
        if not infos:
            return Resolution(None, (), ())
        order = ["core", *(m for m in loaded if m != "core")]
        loaded_infos = [info for m in order for info in infos if info.module == m]
        for info in loaded_infos:
            if info.cmd.arity == arity:
                return Resolution(info, (), ())
        if loaded_infos:
            return Resolution(None, tuple(loaded_infos), ())
        return Resolution(None, (), tuple(infos))

    def param(self, module: str, name: str) -> ModParam | None:
        """The parameter ``name`` of ``module``; for the few that Kamailio exports twice
        with different types (jsonrpcs ``fifo_user`` ...) see :meth:`param_overloads`."""
        found = self.param_overloads(module, name)
        return found[0] if found else None

    def param_overloads(self, module: str, name: str) -> tuple[ModParam, ...]:
        """Every export of a parameter: Kamailio picks the one whose type matches the
        value, so a parameter exported as int and as str accepts both."""
        exports = self._modules.get(module)
        if exports is None:
            return ()
        return tuple(p for p in exports.params if p.name == name)

    def pv_class(self, name: str) -> tuple[str, PvExport] | None:
        return self._pvs.get(name)

    def pv_classes(self) -> list[str]:
        return sorted(self._pvs)

    def transformation(self, name: str) -> str | None:
        return self._transformations.get(name)


@cache
def registry() -> Registry:
    """The registry of every module, built once."""
    runtime = dict(runtime_modules.MODULES)
    return Registry(runtime, _reference_modules(runtime))
