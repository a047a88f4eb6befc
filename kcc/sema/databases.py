"""Database URLs the kcc runtime cannot serve (W0904 in ``kcc check``, E0904 in
``kcc build``).

The runtime speaks one database, SQLite, through Kamailio's ``db_sqlite`` URL form
``sqlite:///path`` (:mod:`kcc_runtime.db`). A module parameter ending in ``db_url``
(auth_db, usrloc, permissions, acc, alias_db ...) that names another driver
(``mysql://``, ``postgres://`` ...) is fine for Kamailio but cannot run here.

``kcc check`` answers "does Kamailio accept this config" (``tests/test_differential.py``
holds it to ``kamailio -c``'s verdict: no error where Kamailio accepts), so there the
finding is a warning, W0904, that says what ``kcc build`` will refuse and what to
change: the stock ``kamailio.cfg`` with ``WITH_MYSQL`` is the common case, and its
user learns the two-line change from the check (docs/stock-config.md). ``kcc build``
refuses the config with the same finding as error E0904 (:mod:`kcc.codegen.emit`),
which replaces the warning (``kcc.pipeline``'s build stage drops W0904 once E0904 is
reported, so the build output names it once).

Each finding is one diagnostic per driver: the first ``db_url`` using it is the
primary span, every other one a secondary label, the driver's ``loadmodule`` (the
``db_mysql.so`` line that becomes ``db_sqlite.so``) another label, and the define
the URL came from a note (added from the span's origin).
"""

from __future__ import annotations

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.context import SemaContext
from kcc.source import Span

__all__ = ["BUILD_CODE", "CHECK_CODE", "HELP", "check", "unsupported_databases"]

#: the warning of ``kcc check`` and the refusal of ``kcc build``
CHECK_CODE = "W0904"
BUILD_CODE = "E0904"
HELP = "load `db_sqlite.so` and give a `sqlite:///path/to/kamailio.db` URL"


def _driver_module(item: ast.LoadModule) -> str:
    """``db_mysql`` for ``loadmodule "db_mysql.so"`` or ``".../db_mysql.so"``."""
    name = item.path.value.rpartition("/")[2]
    return name.removesuffix(".so")


def unsupported_databases(config: ast.Config, *, build: bool) -> list[Diagnostic]:
    """One diagnostic per database driver other than ``sqlite`` named by a
    ``*db_url`` modparam, in source order: errors E0904 for ``build``, else warnings
    W0904 saying that the build will refuse them."""
    found: dict[str, list[Span]] = {}
    loads: dict[str, Span] = {}
    for item in config.items:
        if isinstance(item, ast.LoadModule):
            loads.setdefault(_driver_module(item), item.path.span)
            continue
        if not isinstance(item, ast.ModParam) or not isinstance(item.value, ast.String):
            continue
        if not item.param.value.lower().endswith("db_url"):
            continue
        driver, sep, _ = item.value.value.partition("://")
        if sep and driver.lower() != "sqlite":
            found.setdefault(driver, []).append(item.value.span)
    diagnostics = []
    for driver, spans in found.items():
        first, *rest = spans
        labels = [Label(span, "also used here") for span in rest]
        load = loads.get(f"db_{driver.lower()}")
        if load is not None:
            labels.append(Label(load, "the driver module to replace with `db_sqlite.so`"))
        message = f"database driver `{driver}` is not supported by the kcc runtime"
        label = f"a `{driver}://` database URL"
        if build:
            diagnostics.append(
                Diagnostic.error(BUILD_CODE, message, first, label, labels=labels, help=HELP)
            )
        else:
            diagnostics.append(
                Diagnostic.warning(
                    CHECK_CODE,
                    message,
                    first,
                    label,
                    labels=labels,
                    notes=["Kamailio accepts it; `kcc build` refuses it (E0904)"],
                    help=HELP,
                )
            )
    return diagnostics


def check(ctx: SemaContext) -> None:
    for diagnostic in unsupported_databases(ctx.config, build=False):
        ctx.sink.emit(diagnostic)
