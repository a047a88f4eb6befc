"""Database-backed aliases: rewrites the request URI (or any URI) to the
canonical user an alias stands for.

Kamailio 5.6's alias_db (``alookup.c``) over the DB layer (:mod:`kcc_runtime.db`,
SQLite). There is no cache: every call queries the table named in the call, as
Kamailio does ("always uses the database for search").

**The query.** Forward lookup (alias -> user): ``SELECT user_column,
domain_column FROM table WHERE alias_user_column = <user> [AND
alias_domain_column = <host>]``; reverse lookup (flag ``r``, user -> alias): the
key and result columns swap. The user and host are the raw parts of the URI (no
unescaping, compared case-sensitively as SQLite's ``=`` does); the host is a key
only with the domain flag: module parameter ``use_domain`` by default, ``u``
sets it, ``d`` clears it. ``domain_prefix`` is stripped from the host (compared
case-insensitively, only when the host is longer).

**The result.** Each row gives ``sip:<user>@<domain>`` (whatever the lookup
URI's scheme, port or parameters were). For ``alias_db_lookup`` the first row
replaces the whole R-URI; with ``append_branches`` 1 every further row is
appended as a branch with q 0 (Kamailio's ``MIN_Q``). For ``alias_db_find`` the
first row is assigned to the output PV and, with ``append_branches``, each
further row too (an AVP collects them, newest first; a ``$var`` keeps the last).

Return codes: 1 found and set; -1 when nothing matches, the URI does not parse,
or the query fails (an error line, as Kamailio's ``failed to query database``).

Measured on Kamailio 5.6.3 with ``db_sqlite`` (rows ``al@example.com ->
alice@127.0.0.1``, ``al@example.com -> alice2@other.net``, ``al@example.org ->
bob@b.net``; ``append_branches`` 1, ``domain_prefix "sip."``):
``alias_db_lookup("dbaliases")`` on ``sip:al@example.com`` gives R-URI
``sip:alice@127.0.0.1`` and branches ``sip:alice2@other.net``, ``sip:bob@b.net``
with q 0; with ``"u"`` on ``sip:al@sip.example.com:5070;transport=udp`` the
R-URI ``sip:alice@127.0.0.1`` and one branch; ``"r"`` on
``sip:alice@127.0.0.1`` gives ``sip:al@example.com``; ``sip:AL@example.com``
matches nothing (-1); a missing table is -1 after an error log;
``alias_db_find("dbaliases", "$fu", "$avp(x)")`` leaves ``$(avp(x)[0])`` =
``sip:bob@b.net`` and ``[1]`` = ``sip:alice2@other.net``, into ``$var(x)`` the
last row.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kcc_runtime.context import Branch, Context
from kcc_runtime.db import DbError, open_database
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
from kcc_runtime.pv import Accessor, PvError, current_ruri, set_ruri, split_uri
from kcc_runtime.values import Value, to_str

__all__ = [
    "EXPORTS",
    "AliasQuery",
    "alias_db_find",
    "alias_db_lookup",
    "query_aliases",
]

log = logging.getLogger("kcc_runtime.alias_db")

#: the default db_url (the README's); kcc cannot open it (not SQLite)
DEFAULT_DB_URL = "mysql://kamailioro:kamailioro@localhost/kamailio"
#: Kamailio's MIN_Q: the q-value of the branches ``append_branches`` adds
MIN_Q = 0


@dataclass(frozen=True, slots=True)
class AliasQuery:
    """The module parameters a lookup uses."""

    db_url: str
    user_column: str = "username"
    domain_column: str = "domain"
    alias_user_column: str = "alias_username"
    alias_domain_column: str = "alias_domain"
    use_domain: bool = False
    domain_prefix: str | None = None
    append_branches: bool = False

    @classmethod
    def from_ctx(cls, ctx: Context) -> AliasQuery:
        mp = ctx.proc.modparams

        def text(name: str, default: str) -> str:
            value = mp.get(("alias_db", name), default)
            return value if isinstance(value, str) else default

        prefix = mp.get(("alias_db", "domain_prefix"))
        return cls(
            db_url=text("db_url", DEFAULT_DB_URL),
            user_column=text("user_column", "username"),
            domain_column=text("domain_column", "domain"),
            alias_user_column=text("alias_user_column", "alias_username"),
            alias_domain_column=text("alias_domain_column", "alias_domain"),
            use_domain=bool(ctx.proc.modparam_int("alias_db", "use_domain", 0)),
            domain_prefix=prefix if isinstance(prefix, str) and prefix else None,
            append_branches=bool(ctx.proc.modparam_int("alias_db", "append_branches", 0)),
        )


def parse_flags(flags: str | None, use_domain: bool) -> tuple[bool, bool]:
    """``(use the domain, reverse)`` from the flag letters: ``d`` no domain, ``u``
    the domain, ``r`` reverse; other letters are ignored (Kamailio's
    ``fixup_flags``, which skips unknown characters). Later letters win."""
    domain, reverse = use_domain, False
    for letter in flags or "":
        if letter == "d":
            domain = False
        elif letter == "u":
            domain = True
        elif letter == "r":
            reverse = True
    return domain, reverse


def _strip_prefix(host: str, prefix: str | None) -> str:
    if prefix and len(prefix) < len(host) and host[: len(prefix)].lower() == prefix.lower():
        return host[len(prefix) :]
    return host


def query_aliases(
    params: AliasQuery, table: str, user: str, host: str, *, domain: bool, reverse: bool
) -> list[str]:
    """The ``sip:user@domain`` URIs the table maps ``user`` (and ``host`` when
    ``domain``) to, in row order; [] when none. :class:`DbError` when the query
    fails. A row whose first column is NULL ends the search (Kamailio tests the
    first row's for NULL); other NULLs give empty parts."""
    if reverse:
        keys = (params.user_column, params.domain_column)
        cols = (params.alias_user_column, params.alias_domain_column)
    else:
        keys = (params.alias_user_column, params.alias_domain_column)
        cols = (params.user_column, params.domain_column)
    where: list[tuple[str, object]] = [(keys[0], user)]
    if domain:
        where.append((keys[1], _strip_prefix(host, params.domain_prefix)))
    rows = open_database(params.db_url).select(table, cols, where)
    if not rows or rows[0][0] is None:
        return []
    return [f"sip:{_text(row[0])}@{_text(row[1])}" for row in rows]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _lookup(
    ctx: Context, params: AliasQuery, table: str, uri: str, flags: str | None
) -> list[str] | None:
    """The aliases of ``uri`` (None after an error, logged)."""
    parts = split_uri(uri)
    if parts is None:
        log.error("failed to parse uri %s", uri)
        return None
    domain, reverse = parse_flags(flags, params.use_domain)
    try:
        return query_aliases(
            params, table, parts.user or "", parts.host, domain=domain, reverse=reverse
        )
    except DbError as exc:
        log.error("failed to query database: %s", exc)
        return None


def alias_db_lookup(ctx: Context, table: str, flags: str | None = None) -> int:
    """``alias_db_lookup(table[, flags])``: replace the R-URI with the user the
    alias maps to (the further ones as branches with ``append_branches``): 1, or
    -1 when nothing matches or on error."""
    ruri = current_ruri(ctx)
    if ruri is None:
        return -1
    params = AliasQuery.from_ctx(ctx)
    found = _lookup(ctx, params, table, ruri, flags)
    if not found:
        return -1
    first, *rest = found
    if not set_ruri(ctx, first):
        log.error("cannot replace the R-URI")
        return -1
    if params.append_branches:
        for uri in rest:
            if len(ctx.branches) + 1 >= ctx.proc.settings.max_branches:
                log.error("error while appending branches")
                return -1
            ctx.branches.append(Branch(uri, None, MIN_Q, 0))
    return 1


def alias_db_find(
    ctx: Context, table: str, source: Accessor, out: Accessor, flags: str | None = None
) -> int:
    """``alias_db_find(table, input, output[, flags])``: look up the URI held by
    ``input`` and assign the result to ``output`` (each further row too with
    ``append_branches``): 1, or -1 when nothing matches or on error."""
    value: Value = source.get(ctx)
    if value is None or isinstance(value, int):
        log.error("PV vals is not string")
        return -1
    params = AliasQuery.from_ctx(ctx)
    found = _lookup(ctx, params, table, to_str(value), flags)
    if not found:
        return -1
    for uri in found if params.append_branches else found[:1]:
        try:
            out.set(ctx, uri)
        except PvError as exc:
            log.error("setting PV AVP failed: %s", exc)
            return -1
    return 1


# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE
REQ_FAIL_REPLY_BRANCH_LOCAL = (
    Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH | Route.LOCAL
)

EXPORTS = ModuleExports(
    name="alias_db",
    cmds=(
        Cmd(
            "alias_db_lookup",
            (STR,),
            REQ_FAIL,
            const_args=True,
            fixup="lookup_fixup",
            impl=alias_db_lookup,
        ),
        Cmd(
            "alias_db_lookup",
            (STR, STR),
            REQ_FAIL,
            const_args=True,
            fixup="lookup_fixup",
            impl=alias_db_lookup,
        ),
        Cmd(
            "alias_db_find",
            (STR, PV, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            const_args=True,
            fixup="find_fixup",
            impl=alias_db_find,
        ),
        Cmd(
            "alias_db_find",
            (STR, PV, PV_WRITE, STR_CONST),
            REQ_FAIL_REPLY_BRANCH_LOCAL,
            const_args=True,
            fixup="find_fixup",
            impl=alias_db_find,
        ),
    ),
    params=(
        ModParam("db_url", str, DEFAULT_DB_URL),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("alias_user_column", str, "alias_username"),
        ModParam("alias_domain_column", str, "alias_domain"),
        ModParam("use_domain", int, 0),
        ModParam("domain_prefix", str, None),
        ModParam("append_branches", int, 0),
    ),
)
