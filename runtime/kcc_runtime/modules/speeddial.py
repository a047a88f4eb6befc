"""Per-user speed-dial lists from a database table.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

EXPORTS = ModuleExports(
    name="speeddial",
    cmds=(
        Cmd("sd_lookup", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
        Cmd("sd_lookup", (STR, STR), Route.REQUEST, fixup="fixup_spve_spve"),
    ),
    params=(
        ModParam("db_url", str, "DEFAULT_RODB_URL"),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("sd_user_column", str, "sd_username"),
        ModParam("sd_domain_column", str, "sd_domain"),
        ModParam("new_uri_column", str, "new_uri"),
        ModParam("use_domain", int, 0),
        ModParam("domain_prefix", str, None),
    ),
)
