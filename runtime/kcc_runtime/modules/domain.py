"""Local domain lookups (``is_from_local``, ``is_domain_local``) from a
database table.

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

# route kinds the functions below may be used in
REQ_FAIL_BRANCH_LOCAL = Route.REQUEST | Route.FAILURE | Route.BRANCH | Route.LOCAL

EXPORTS = ModuleExports(
    name="domain",
    cmds=(
        Cmd("is_from_local", (), REQ_FAIL_BRANCH_LOCAL),
        Cmd("is_uri_host_local", (), REQ_FAIL_BRANCH_LOCAL),
        Cmd("is_domain_local", (STR,), REQ_FAIL_BRANCH_LOCAL, fixup="fixup_spve_null"),
        Cmd("lookup_domain", (STR,), REQ_FAIL_BRANCH_LOCAL, fixup="fixup_spve_null"),
        Cmd("lookup_domain", (STR, STR), REQ_FAIL_BRANCH_LOCAL, fixup="fixup_spve_spve"),
    ),
    params=(
        ModParam("db_url", str, "mysql://kamailioro:kamailioro@localhost/kamailio"),
        ModParam("domain_table", str, "domain"),
        ModParam("domain_attrs_table", str, "domain_attrs"),
        ModParam("did_col", str, "did"),
        ModParam("domain_col", str, "domain"),
        ModParam("name_col", str, "name"),
        ModParam("type_col", str, "type"),
        ModParam("value_col", str, "value"),
        ModParam("register_myself", int, 0),
    ),
)
