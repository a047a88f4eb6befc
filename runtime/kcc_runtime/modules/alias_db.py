"""Database-backed aliases: rewrites the request URI (or any URI) to the
canonical user an alias stands for.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    PV,
    PV_WRITE,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE
REQ_FAIL_REPLY_BRANCH_LOCAL = (
    Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH | Route.LOCAL
)

EXPORTS = ModuleExports(
    name="alias_db",
    cmds=(
        Cmd("alias_db_lookup", (STR,), REQ_FAIL, const_args=True, fixup="lookup_fixup"),
        Cmd("alias_db_lookup", (STR, STR), REQ_FAIL, const_args=True, fixup="lookup_fixup"),
        Cmd(
            "alias_db_find",
            (STR, PV, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            const_args=True,
            fixup="find_fixup",
        ),
        Cmd(
            "alias_db_find",
            (STR, PV, PV_WRITE, STR_CONST),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            const_args=True,
            fixup="find_fixup",
        ),
    ),
    params=(
        ModParam("db_url", str, "mysql://kamailioro:kamailioro@localhost/kamailio"),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("alias_user_column", str, "alias_username"),
        ModParam("alias_domain_column", str, "alias_domain"),
        ModParam("use_domain", int, 0),
        ModParam("domain_prefix", str, None),
        ModParam("append_branches", int, 0),
    ),
)
