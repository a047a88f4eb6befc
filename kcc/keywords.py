"""Kamailio's core vocabulary: global parameters, core actions, condition keywords.

Read once from ``data/core_keywords.tsv`` (facts extracted from Kamailio's ``cfg.lex``
and ``cfg.y``: spellings, aliases, accepted value kinds). Module functions are not
here: they live in the runtime's module registry.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["CoreAction", "GlobalParamSpec", "Keywords", "keywords"]


@dataclass(frozen=True, slots=True)
class GlobalParamSpec:
    """A global parameter (``children = 8``): its spelling and accepted value kinds."""

    name: str
    aliases: tuple[str, ...]
    #: value kinds as listed by Kamailio's grammar: ``int``, ``str``, ``id``, ``host``,
    #: ``ip``, ``ipv4``, ``proto``, ``id-list`` (listen/alias), ``socket`` ...
    kinds: frozenset[str]
    #: the raw grammar forms, shown in `kcc explain` and help lines
    forms: str


@dataclass(frozen=True, slots=True)
class CoreAction:
    """A core action written like a function (``forward``, ``setflag`` ...)."""

    name: str
    aliases: tuple[str, ...]
    #: accepted argument counts; ``-1`` marks ``return expr``-style forms
    arities: frozenset[int]
    bare: bool
    forms: str
    onsend: bool


@dataclass(frozen=True, slots=True)
class Keywords:
    #: every spelling (aliases included) -> its spec
    global_params: dict[str, GlobalParamSpec]
    #: every spelling (aliases included) -> its spec
    actions: dict[str, CoreAction]
    #: every spelling -> canonical name (``status`` -> ``uri``)
    condition_keywords: dict[str, str]

    def canonical_param_names(self) -> list[str]:
        return sorted({spec.name for spec in self.global_params.values()})


def _kinds(forms: str) -> frozenset[str]:
    if forms.startswith("LBRACE"):
        return frozenset({"socket"})
    if "id_lst" in forms or forms == "id-list":
        return frozenset({"id-list"})
    if "SSLv23" in forms:
        return frozenset({"id", "str"})
    return frozenset(part.strip() for part in forms.split("|") if part.strip())


def _arities(nargs: str, forms: str) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    for raw in nargs.split(","):
        part = raw.strip()
        if part.isdigit():
            values.add(int(part))
        elif part == "expr":
            values.add(1)
    bare = "bare" in forms
    return frozenset(values), bare


@cache
def keywords() -> Keywords:
    params: dict[str, GlobalParamSpec] = {}
    actions: dict[str, CoreAction] = {}
    conditions: dict[str, str] = {}
    text = resources.files("kcc").joinpath("data/core_keywords.tsv").read_text("utf-8")
    for row in csv.DictReader(text.splitlines(), delimiter="\t"):
        kind, name = row["kind"], row["keyword"]
        aliases = tuple(a.strip() for a in row["aliases"].split(",") if a.strip())
        if kind == "global_param":
            spec = GlobalParamSpec(
                name, aliases, _kinds(row["forms_or_value_type"]), row["forms_or_value_type"]
            )
            for spelling in (name, *aliases):
                params[spelling] = spec
        elif kind == "action":
            arities, bare = _arities(row["nargs"], row["forms_or_value_type"])
            action = CoreAction(
                name,
                aliases,
                arities,
                bare,
                row["forms_or_value_type"],
                row["route_restriction"].startswith("allowed"),
            )
            for spelling in (name, *aliases):
                actions[spelling] = action
        elif kind == "condition_keyword":
            for spelling in (name, *aliases):
                conditions[spelling] = name
    return Keywords(params, actions, conditions)
