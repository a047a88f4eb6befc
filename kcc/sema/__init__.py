"""Semantic passes over the AST, in order; each reports to the sink and keeps going.

Every pass is ``fn(ctx: SemaContext) -> None``. Later passes read what earlier ones
recorded in the context (loaded modules, route table, route kinds reaching each
block, resolved calls); see :mod:`kcc.sema.context`.
"""

from __future__ import annotations

from collections.abc import Callable

from kcc.sema import (
    calls,
    constants,
    databases,
    flags,
    flow,
    globals_check,
    locks,
    pvs,
    reach,
    resolve,
)
from kcc.sema.context import SemaContext

__all__ = ["PASSES", "SemaContext", "run_passes"]


def _globals(ctx: SemaContext) -> None:
    globals_check.check(ctx.config, ctx.sink)


PASSES: list[tuple[str, Callable[[SemaContext], None]]] = [
    ("globals", _globals),
    ("resolve", resolve.check),
    ("reach", reach.check),
    ("calls", calls.check),
    # these read what resolve, reach and calls record: keep them after those passes
    ("flags", flags.check),
    ("pvs", pvs.check),
    ("constants", constants.check),
    ("locks", locks.check),
    ("flow", flow.check),
    # E0904: a db_url kcc cannot serve (kcc check tells the stock cfg's users)
    ("databases", databases.check),
]


def run_passes(ctx: SemaContext) -> None:
    for _name, run in PASSES:
        run(ctx)
