"""Per-user speed-dial lists from a database table.

Kamailio 5.6's speeddial (``sdlookup.c``) over the DB layer
(:mod:`kcc_runtime.db`, SQLite), no cache: each ``sd_lookup`` queries the table
named in the call.

``sd_lookup(table[, owner])`` runs ``SELECT new_uri_column FROM table WHERE
user_column = <owner user> [AND domain_column = <owner host>] AND
sd_user_column = <R-URI user> [AND sd_domain_column = <R-URI host>]``. The owner
is the URI given as second argument (when it is not empty) or the From URI;
``use_domain`` 1 adds the owner's host, 2 adds the R-URI's host too; each host
loses ``domain_prefix`` when it starts with it (case-insensitively) and is
longer. The first row's ``new_uri`` replaces the whole R-URI, with ``sip:``
put before it unless it starts with exactly ``sip:`` (so ``sips:x@h`` becomes
``sip:sips:x@h``, as Kamailio does). Return codes: 1 rewritten; -1 when no row
matches, the owner or R-URI does not parse, or the query fails (an error line).

Measured on Kamailio 5.6.3 with ``db_sqlite`` (``domain_prefix "sip."``):
``sd_lookup("speed_dial")`` with use_domain 0 for ``sip:11@127.0.0.1`` from
``probe@127.0.0.1`` gives ``sip:target@t.net``, a ``new_uri`` of ``nosip@t.net``
gives ``sip:nosip@t.net``, ``sips:carl@t.net`` gives ``sip:sips:carl@t.net``;
with use_domain 1 an owner row for domain ``sip.h.net`` is not found from
``sip:probe@sip.h.net`` (the prefix is stripped from the owner's host too); with
use_domain 2 ``sip:14@sip.example.com`` finds the row with ``sd_domain``
``example.com``; an owner ``garbage`` is -1 ("bad owner SIP address!"); a
missing table is -1 after an error log.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Context
from kcc_runtime.db import DbError, open_database
from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.pv import current_ruri, set_ruri, split_uri

__all__ = ["EXPORTS", "sd_lookup"]

log = logging.getLogger("kcc_runtime.speeddial")

#: Kamailio's DEFAULT_RODB_URL; kcc cannot open it (not SQLite)
DEFAULT_DB_URL = "mysql://kamailioro:kamailioro@localhost/kamailio"


def _param(ctx: Context, name: str, default: str) -> str:
    value = ctx.proc.modparams.get(("speeddial", name), default)
    return value if isinstance(value, str) else default


def _strip_prefix(host: str, prefix: str) -> str:
    if prefix and len(prefix) < len(host) and host[: len(prefix)].lower() == prefix.lower():
        return host[len(prefix) :]
    return host


def sd_lookup(ctx: Context, table: str, owner: str | None = None) -> int:
    """``sd_lookup(table[, owner])``: replace the R-URI with the owner's speed-dial
    entry for the R-URI's user: 1, or -1 when there is none or on error."""
    if not table:
        log.error("invalid table parameter")
        return -1
    if owner:
        owner_parts = split_uri(owner)
        if owner_parts is None:
            log.error("bad owner SIP address!")
            return -1
    else:
        from_ = ctx.msg.from_
        owner_parts = (
            None if from_ is None else split_uri(from_.uri_raw.decode("utf-8", "surrogateescape"))
        )
        if owner_parts is None:
            log.error("failed to parse FROM header")
            return -1
    use_domain = ctx.proc.modparam_int("speeddial", "use_domain", 0)
    prefix = _param(ctx, "domain_prefix", "")
    where: list[tuple[str, object]] = [
        (_param(ctx, "user_column", "username"), owner_parts.user or "")
    ]
    if use_domain >= 1:
        where.append(
            (_param(ctx, "domain_column", "domain"), _strip_prefix(owner_parts.host, prefix))
        )
    ruri = current_ruri(ctx)
    ruri_parts = None if ruri is None else split_uri(ruri)
    if ruri_parts is None:
        log.error("failed to parsing Request-URI")
        return -1
    where.append((_param(ctx, "sd_user_column", "sd_username"), ruri_parts.user or ""))
    if use_domain >= 2:
        where.append(
            (_param(ctx, "sd_domain_column", "sd_domain"), _strip_prefix(ruri_parts.host, prefix))
        )
    column = _param(ctx, "new_uri_column", "new_uri")
    try:
        rows = open_database(_param(ctx, "db_url", DEFAULT_DB_URL)).select(table, (column,), where)
    except DbError as exc:
        log.error("failed to query database: %s", exc)
        return -1
    if not rows or rows[0][0] is None:
        return -1
    value = rows[0][0]
    uri = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    if not uri.startswith("sip:"):
        uri = "sip:" + uri
    if not set_ruri(ctx, uri):
        log.error("failed to replace the R-URI")
        return -1
    return 1


EXPORTS = ModuleExports(
    name="speeddial",
    cmds=(
        Cmd("sd_lookup", (STR,), Route.REQUEST, fixup="fixup_spve_null", impl=sd_lookup),
        Cmd("sd_lookup", (STR, STR), Route.REQUEST, fixup="fixup_spve_spve", impl=sd_lookup),
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
