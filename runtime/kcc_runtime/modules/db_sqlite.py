"""SQLite database driver used by the DB-backed modules; no script
functions.

Exports from Kamailio's 6.x export table: the module is not installed here, so they
are not checked against 5.6; the 5.6 README is not installed either, so no defaults.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ModParam,
    ModuleExports,
)

EXPORTS = ModuleExports(
    name="db_sqlite",
    params=(
        ModParam("db_set_readonly", str, None, repeatable=True),
        ModParam("db_set_journal_mode", str, None, repeatable=True),
        ModParam("db_set_busy_timeout", str, None, repeatable=True),
    ),
)
