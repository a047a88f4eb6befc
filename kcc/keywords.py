"""Kamailio's global parameters (``children = 4``): spellings and accepted value kinds.

Read once from ``data/core_keywords.tsv`` (facts extracted from Kamailio's ``cfg.lex``
and ``cfg.y``). Core actions and module functions are not here: they live in the
runtime's export tables (``kcc_runtime/modules/core.py`` ...), the one source of truth.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["GlobalParamSpec", "Keywords", "keywords"]


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
class Keywords:
    #: every spelling (aliases included) -> its spec
    global_params: dict[str, GlobalParamSpec]


def _kinds(forms: str) -> frozenset[str]:
    if forms.startswith("LBRACE"):
        return frozenset({"socket"})
    if "id_lst" in forms or forms == "id-list":
        return frozenset({"id-list"})
    if "SSLv23" in forms:
        return frozenset({"id", "str"})
    return frozenset(part.strip() for part in forms.split("|") if part.strip())


@cache
def keywords() -> Keywords:
    params: dict[str, GlobalParamSpec] = {}
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
    return Keywords(params)
