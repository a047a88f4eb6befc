"""Local domain lookups (``is_from_local``, ``is_uri_host_local``,
``is_domain_local``, ``lookup_domain``) from the ``domain`` and ``domain_attrs``
tables, and ``myself`` extended with those domains (``register_myself``).

Kamailio 5.6's domain module (``domain.c``, ``hash.c``, ``domain_mod.c``) over the
DB layer (:mod:`kcc_runtime.db`, SQLite).

**The cache.** Kamailio reads both tables into shared memory when it starts and
again on the RPC command ``domain.reload``; lookups never touch the database. kcc
reads them into each worker's memory on the worker's first lookup and keeps them
until :func:`reload_domains` (``domain.reload``) bumps a generation counter in a
shared mapping made at import, which the supervisor does before it forks (every
generated proxy imports :mod:`kcc_runtime.modules`); each worker re-reads the
tables when it sees the counter change. A reload that fails keeps the table
already loaded (Kamailio switches to the new hash table only when the reload
succeeds). Where kcc differs: Kamailio refuses to start when the tables cannot be
read or have the wrong version (``domain`` 2, ``domain_attrs`` 1); kcc logs the
error on the first lookup and every check is -1 until a reload succeeds.

**Rows.** ``domain`` gives ``(domain, did)``; a NULL ``did`` is the domain
itself. ``domain_attrs`` gives ``(did, name, type, value)`` with type 0 (an
integer value) or 2 (a string). A row Kamailio refuses (empty or NULL domain,
did or name, another type, a type-0 value that is not an integer) fails the
whole load, with Kamailio's error text.

**Matching.** A domain matches a table entry of the same length
case-insensitively (``strncasecmp``); nothing is stripped (``example.com:5060``
is not ``example.com``).

- ``is_from_local()``: the From URI's host; -2 when the From header or its URI
  does not parse.
- ``is_uri_host_local()``: the R-URI's host in request, branch and local routes;
  in a failure route the host of the first branch of the destination set
  (``append_branch``), -1 with "branch is missing, error in script" when there is
  none.
- ``is_domain_local(domain)``: the given string.
- ``lookup_domain(domain[, prefix])``: when local, adds the domain's attributes
  as AVPs named ``prefix + name`` (integers for type 0) and ``prefix + "did"``
  with the did. For a name given several times, ``$(avp(name)[0])`` is the
  first row's value, as in Kamailio.
- ``register_myself`` 1: ``uri == myself``, ``from_uri == myself`` and
  ``src_ip == myself`` also hold for a host in the table, whatever the port
  (Kamailio's ``domain_check_self``, registered with
  :func:`kcc_runtime.kw.register_check_self`).

Measured on Kamailio 5.6.3 with ``db_sqlite`` (domains ``Example.COM`` (did
NULL), ``local.test`` and ``alt.test`` (did ``d1``); attributes ``d1 color 2
red``, ``d1 color 2 blue``, ``d1 num 0 42``, ``Example.COM color 2 green``):
``is_from_local()`` 1 from ``sip:a@EXAMPLE.com``, -1 from ``nolocal.net``;
``is_uri_host_local()`` 1 for ``sip:u@LOCAL.test:9999``; ``is_domain_local``
1 for ``alt.test``, -1 for ``alt.test:5060``; ``lookup_domain("local.test")``
sets ``$avp(did)`` d1, ``$(avp(color)[0])`` red, ``[1]`` blue, ``$avp(num)``
42; ``lookup_domain("ALT.test", "p_")`` sets ``$avp(p_did)`` d1 and
``$avp(p_color)`` red; ``lookup_domain("example.com")`` sets ``$avp(did)``
``Example.COM`` and ``$avp(color)`` green; with ``register_myself`` 1
``sip:u@example.com:7777`` and a From at ``local.test`` are myself,
``sip:u@nope.test`` is not.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import mmap
import struct
from dataclasses import dataclass, field
from typing import Final

from kcc_runtime import kw
from kcc_runtime.context import Context
from kcc_runtime.db import DbError, open_database
from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.pv import avp_key, current_ruri, split_uri
from kcc_runtime.values import Value

__all__ = [
    "EXPORTS",
    "DomainError",
    "DomainTable",
    "check_self",
    "is_domain_local",
    "is_from_local",
    "is_uri_host_local",
    "load_domains",
    "lookup_domain",
    "reload_domains",
]

log = logging.getLogger("kcc_runtime.domain")

DEFAULT_DB_URL = "mysql://kamailioro:kamailioro@localhost/kamailio"


class DomainError(Exception):
    """A row of the domain tables Kamailio refuses to load."""


@dataclass(frozen=True, slots=True)
class Attr:
    """One ``domain_attrs`` row: its name and value (int for type 0)."""

    name: str
    value: int | str


@dataclass(slots=True)
class DomainTable:
    """One worker's copy of the ``domain`` and ``domain_attrs`` tables."""

    #: lower-cased domain -> (did, that did's attributes in row order)
    domains: dict[str, tuple[str, tuple[Attr, ...]]] = field(default_factory=dict)
    generation: int = -1

    def lookup(self, domain: str) -> tuple[str, tuple[Attr, ...]] | None:
        """The did and attributes of ``domain`` (matched case-insensitively)."""
        return self.domains.get(domain.lower())


@dataclass(frozen=True, slots=True)
class Columns:
    """The table and column names of the module parameters."""

    domain_table: str = "domain"
    domain_attrs_table: str = "domain_attrs"
    did_col: str = "did"
    domain_col: str = "domain"
    name_col: str = "name"
    type_col: str = "type"
    value_col: str = "value"

    @classmethod
    def from_ctx(cls, ctx: Context) -> Columns:
        mp = ctx.proc.modparams
        values: dict[str, str] = {}
        for name in cls.__dataclass_fields__:
            value = mp.get(("domain", name))
            if isinstance(value, str) and value:
                values[name] = value
        return cls(**values)


def _string(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None


def load_domains(url: str, cols: Columns = Columns()) -> DomainTable:
    """Read both tables (Kamailio's ``reload_tables``): :class:`DbError` when the
    database cannot be read, :class:`DomainError` for a row Kamailio refuses."""
    db = open_database(url)
    attr_rows = db.select(
        cols.domain_attrs_table, (cols.did_col, cols.name_col, cols.type_col, cols.value_col)
    )
    attrs: dict[str, list[Attr]] = {}
    for i, (did_v, name_v, type_v, value_v) in enumerate(attr_rows):
        did = _string(did_v)
        if did is None:
            raise DomainError(f"did at row <{i}> is null or not string")
        if not did:
            raise DomainError(f"did at row <{i}> is empty string")
        name = _string(name_v)
        if name is None:
            raise DomainError(f"name at row <{i}> is null or not string")
        if not name:
            raise DomainError(f"name at row <{i}> is empty string")
        if not isinstance(type_v, int):
            raise DomainError(f"type at row <{i}> is null or not int")
        if type_v not in (0, 2):
            raise DomainError(f"unknown type <{type_v}> at row <{i}>")
        text = _string(value_v)
        if text is None:
            raise DomainError(f"value at row <{i}> is null or not string")
        value: int | str = text
        if type_v == 0:
            try:
                value = int(text)
            except ValueError:
                raise DomainError(f"value at row <{i}> is invalid int") from None
        attrs.setdefault(did.lower(), []).append(Attr(name, value))
    table = DomainTable()
    for i, (domain_v, did_v) in enumerate(
        db.select(cols.domain_table, (cols.domain_col, cols.did_col))
    ):
        domain = _string(domain_v)
        if domain is None:
            raise DomainError(f"domain at row <{i}> is null or not string")
        if not domain:
            raise DomainError(f"domain at row <{i}> is empty string")
        if did_v is None:
            did = domain
        else:
            text = _string(did_v)
            if text is None:
                raise DomainError(f"did at row <{i}> is not null or string")
            if not text:
                raise DomainError(f"did at row <{i}> is empty string")
            did = text
        # Kamailio's hash chains are searched newest first: a duplicate (only
        # possible without the UNIQUE constraint) is found as the last row
        table.domains[domain.lower()] = (did, tuple(attrs.get(did.lower(), ())))
    return table


# -- the shared reload counter and this worker's table ----------------------------------

_GENERATION: Final = mmap.mmap(-1, 8)
_TABLES: Final[dict[tuple[str, Columns], DomainTable]] = {}


def _generation() -> int:
    return int(struct.unpack_from("<Q", _GENERATION, 0)[0])


def reload_domains() -> None:
    """``domain.reload``: every worker re-reads the tables before its next lookup."""
    struct.pack_into("<Q", _GENERATION, 0, _generation() + 1)


def _table(ctx: Context) -> DomainTable | None:
    value = ctx.proc.modparams.get(("domain", "db_url"), DEFAULT_DB_URL)
    url = value if isinstance(value, str) else DEFAULT_DB_URL
    cols = Columns.from_ctx(ctx)
    key = (url, cols)
    current = _TABLES.get(key)
    generation = _generation()
    if current is not None and current.generation == generation:
        return current
    try:
        fresh = load_domains(url, cols)
    except (DbError, DomainError) as exc:
        log.error("domain reload failed: %s", exc)
        if current is not None:
            current.generation = generation  # keep the old table, as Kamailio does
        return current
    fresh.generation = generation
    _TABLES[key] = fresh
    return fresh


def _lookup(ctx: Context, domain: str) -> tuple[str, tuple[Attr, ...]] | None:
    table = _table(ctx)
    return None if table is None else table.lookup(domain)


# -- the script functions -----------------------------------------------------------------


def is_domain_local(ctx: Context, domain: str) -> int:
    """``is_domain_local(domain)``: 1 when ``domain`` is in the table, else -1."""
    return 1 if _lookup(ctx, domain) is not None else -1


def is_from_local(ctx: Context) -> int:
    """``is_from_local()``: 1 when the From URI's host is local, -1 when not, -2
    when the From URI does not parse."""
    from_ = ctx.msg.from_
    parts = None if from_ is None else split_uri(from_.uri_raw.decode("utf-8", "surrogateescape"))
    if parts is None:
        log.error("Error while parsing From header")
        return -2
    return is_domain_local(ctx, parts.host)


def is_uri_host_local(ctx: Context) -> int:
    """``is_uri_host_local()``: 1 when the R-URI's host (in a failure route: the
    first branch's) is local, else -1."""
    if ctx.kind & Route.FAILURE:
        if not ctx.branches:
            log.error("branch is missing, error in script")
            return -1
        uri: str | None = ctx.branches[0].uri
        what = "branch URI"
    else:
        uri = current_ruri(ctx)
        what = "R-URI"
    parts = None if uri is None else split_uri(uri)
    if parts is None:
        log.error("error while parsing %s", what)
        return -1
    return is_domain_local(ctx, parts.host)


def lookup_domain(ctx: Context, domain: str, prefix: str | None = None) -> int:
    """``lookup_domain(domain[, prefix])``: when ``domain`` is local, its
    attributes and did as AVPs (names prefixed): 1, else -1."""
    found = _lookup(ctx, domain)
    if found is None:
        return -1
    did, attrs = found
    head = prefix or ""
    # Kamailio keeps a did's attributes newest row first and adds each as an AVP
    # (which goes on top): the first row ends up on top
    for attr in reversed(attrs):
        _add_avp(ctx, head + attr.name, attr.value)
    _add_avp(ctx, head + "did", did)
    return 1


def _add_avp(ctx: Context, name: str, value: Value) -> None:
    ctx.avps.setdefault(avp_key(name), []).insert(0, value)


def check_self(ctx: Context, host: str, port: int | None) -> bool:
    """Kamailio's ``domain_check_self``: with ``register_myself`` set, a host in
    the table is ``myself`` (any port)."""
    if not ctx.proc.modparam_int("domain", "register_myself", 0):
        return False
    config = ctx.proc.config
    if config is not None and "domain" not in config.modules:
        return False
    return _lookup(ctx, host) is not None


kw.register_check_self(check_self)


# route kinds the functions below may be used in
REQ_FAIL_BRANCH_LOCAL = Route.REQUEST | Route.FAILURE | Route.BRANCH | Route.LOCAL

EXPORTS = ModuleExports(
    name="domain",
    cmds=(
        Cmd("is_from_local", (), REQ_FAIL_BRANCH_LOCAL, impl=is_from_local),
        Cmd("is_uri_host_local", (), REQ_FAIL_BRANCH_LOCAL, impl=is_uri_host_local),
        Cmd(
            "is_domain_local",
            (STR,),
            REQ_FAIL_BRANCH_LOCAL,
            fixup="fixup_spve_null",
            impl=is_domain_local,
        ),
        Cmd(
            "lookup_domain",
            (STR,),
            REQ_FAIL_BRANCH_LOCAL,
            fixup="fixup_spve_null",
            impl=lookup_domain,
        ),
        Cmd(
            "lookup_domain",
            (STR, STR),
            REQ_FAIL_BRANCH_LOCAL,
            fixup="fixup_spve_spve",
            impl=lookup_domain,
        ),
    ),
    params=(
        ModParam("db_url", str, DEFAULT_DB_URL),
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
