"""Digest authentication against credentials stored in a database table
(``www_authorize``, ``proxy_authorize``, ``auth_check``, ``is_subscriber``).

Kamailio 5.6's auth_db (``authorize.c``) over :mod:`kcc_runtime.db` (SQLite only):
the user is looked up by ``user_column`` = the user part of the digest
``username`` (and, with ``use_domain``, ``domain_column`` = the username's domain or
else the realm); the HA1 is ``password_column`` as stored, or
``password_column_2`` when the username carries ``@domain``, or with
``calculate_ha1`` H(username:realm:password) over ``password_column`` (realm being
the function's argument). ``load_credentials`` columns are copied into AVPs after a
successful check (always with ``force_generate_avps``). The digest steps, nonces and
return codes are the auth module's (:mod:`kcc_runtime.modules.auth`); measured on
Kamailio 5.6.3 with ``db_sqlite``: unknown user -3, wrong password -2, From/To user
differing from the auth user with flag 1: -8.

A database that cannot be opened or queried (missing file, missing table) is an
error log line and -1, as Kamailio returns for a failed query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from kcc_runtime import pv
from kcc_runtime.context import Context
from kcc_runtime.db import Database, DbError, open_database
from kcc_runtime.exports import (
    INT,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.modules import auth
from kcc_runtime.pv import split_uri

__all__ = [
    "EXPORTS",
    "auth_check",
    "is_subscriber",
    "parse_load_credentials",
    "proxy_authenticate",
    "proxy_authorize",
    "www_authenticate",
    "www_authorize",
]

log = logging.getLogger("kcc_runtime.auth_db")

#: auth_db's default ``db_url`` (the module README)
DEFAULT_DB_URL: Final = "mysql://kamailioro:kamailioro@localhost/kamailio"


@dataclass(frozen=True, slots=True)
class _Columns:
    user: str
    domain: str
    password: str
    password_2: str
    calc_ha1: bool
    use_domain: bool
    force_avps: bool
    credentials: tuple[tuple[str | int, str], ...]


def parse_load_credentials(text: str) -> tuple[tuple[str | int, str], ...]:
    """``load_credentials``: ``$avp(i:1)=col;col2`` -> ((1, "col"), ("col2", "col2"));
    a column without an AVP goes to the AVP of its own name. ValueError for an AVP
    spec that is not ``$avp(...)``."""
    out: list[tuple[str | int, str]] = []
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        spec, eq, column = item.partition("=")
        if not eq:
            out.append((item, item))
            continue
        spec = spec.strip()
        if not (spec.startswith("$avp(") and spec.endswith(")")):
            raise ValueError(f"load_credentials: {spec!r} is not an $avp(...)")
        out.append((pv.avp_key(spec[5:-1]), column.strip()))
    return tuple(out)


def _columns(ctx: Context) -> _Columns:
    mp = ctx.proc.modparams

    def text(name: str, default: str) -> str:
        value = mp.get(("auth_db", name))
        return value if isinstance(value, str) and value else default

    creds = mp.get(("auth_db", "load_credentials"))
    try:
        parsed = parse_load_credentials(creds) if isinstance(creds, str) else ()
    except ValueError as exc:
        log.error("%s", exc)
        parsed = ()
    return _Columns(
        user=text("user_column", "username"),
        domain=text("domain_column", "domain"),
        password=text("password_column", "ha1"),
        password_2=text("password_column_2", "ha1b"),
        calc_ha1=bool(ctx.proc.modparam_int("auth_db", "calculate_ha1", 0)),
        use_domain=bool(ctx.proc.modparam_int("auth_db", "use_domain", 0)),
        force_avps=bool(ctx.proc.modparam_int("auth_db", "force_generate_avps", 0)),
        credentials=parsed,
    )


def _database(ctx: Context) -> Database:
    url = ctx.proc.modparams.get(("auth_db", "db_url"), DEFAULT_DB_URL)
    return open_database(str(url))


def _set_avps(ctx: Context, cols: _Columns, row: tuple[object, ...]) -> None:
    for (key, _), value in zip(cols.credentials, row, strict=False):
        if isinstance(value, int | str):
            ctx.avps.setdefault(key, []).insert(0, value)
        elif isinstance(value, float):
            ctx.avps.setdefault(key, []).insert(0, int(value))


def _digest(
    ctx: Context, realm: str, table: str, kind: str, method: str
) -> tuple[int, auth.Credentials | None]:
    """auth_db's ``digest_authenticate_hdr``."""
    if not realm:
        log.error("invalid realm parameter - empty value")
        return auth.AUTH_ERROR, None
    cols = _columns(ctx)
    st = auth.settings(ctx)
    row: list[tuple[object, ...]] = []

    def ha1_of(cred: auth.Credentials, stripped: str) -> str | int:
        domain = cred.user_domain
        column = cols.password_2 if domain and not cols.calc_ha1 else cols.password
        where: list[tuple[str, object]] = [(cols.user, cred.user)]
        if cols.use_domain:
            where.append((cols.domain, domain or stripped))
        try:
            rows = _database(ctx).select(
                table, (column, *(c for _, c in cols.credentials)), where, limit=1
            )
        except DbError as exc:
            log.error("%s", exc)
            return auth.AUTH_ERROR
        if not rows:
            return auth.AUTH_USER_UNKNOWN
        row.append(rows[0][1:])
        value = rows[0][0]
        secret = "" if value is None else str(value)
        if cols.force_avps:
            _set_avps(ctx, cols, rows[0][1:])
        if cols.calc_ha1:
            return auth.calc_ha1(st.algorithm, cred.username or "", stripped, secret)
        return secret

    code, cred = auth.authenticate(ctx, realm, kind, method=method, ha1_of=ha1_of, st=st)
    if code == auth.AUTH_OK and row and not cols.force_avps:
        _set_avps(ctx, cols, row[0])
    return code, cred


def www_authenticate(ctx: Context, realm: str, table: str, method: str | None = None) -> int:
    """``www_authenticate(realm, table[, method])`` / ``www_authorize``: check the
    ``Authorization`` credentials for ``realm`` against ``table``."""
    if method is not None and not method:
        log.error("invalid method parameter - empty value")
        return auth.AUTH_ERROR
    return _digest(ctx, realm, table, auth.WWW, method or auth.request_method(ctx))[0]


def www_authorize(ctx: Context, realm: str, table: str) -> int:
    """``www_authorize(realm, table)``: the old name of :func:`www_authenticate`."""
    return www_authenticate(ctx, realm, table)


def proxy_authenticate(ctx: Context, realm: str, table: str) -> int:
    """``proxy_authenticate(realm, table)`` / ``proxy_authorize``: the
    ``Proxy-Authorization`` credentials."""
    return _digest(ctx, realm, table, auth.PROXY, auth.request_method(ctx))[0]


def proxy_authorize(ctx: Context, realm: str, table: str) -> int:
    """``proxy_authorize(realm, table)``: the old name of :func:`proxy_authenticate`."""
    return proxy_authenticate(ctx, realm, table)


def auth_check(ctx: Context, realm: str, table: str, flags: int) -> int:
    """``auth_check(realm, table, flags)``: www for REGISTER, proxy otherwise (1 for
    ACK and CANCEL); flag 1 checks the auth user against From/To (and the R-URI for
    PUBLISH), flag 2 skips that for INVITE, BYE, PRACK, UPDATE and MESSAGE."""
    method = auth.request_method(ctx)
    if method in ("ACK", "CANCEL"):
        return auth.AUTH_OK
    if not realm:
        log.error("invalid realm parameter - empty value")
        return auth.AUTH_ERROR
    if not table:
        log.error("invalid table parameter - empty value")
        return auth.AUTH_ERROR
    kind = auth.WWW if method == "REGISTER" else auth.PROXY
    code, cred = _digest(ctx, realm, table, kind, method)
    if code == auth.AUTH_OK and cred is not None and flags & 1:
        use_domain = bool(ctx.proc.modparam_int("auth_db", "use_domain", 0))
        return auth.user_matches(ctx, cred, use_domain=use_domain, skip_fwd=bool(flags & 2))
    return code


def is_subscriber(ctx: Context, uri: str, table: str, flags: int) -> int:
    """``is_subscriber(uri, table, flags)``: 1 when ``table`` has the URI's user
    (and with flag 1 its host as domain); the ``load_credentials`` columns go to
    AVPs unless flag 2. -1 when absent, the URI is bad or the query fails."""
    parts = split_uri(uri)
    if parts is None or not parts.user:
        log.error("invalid uri parameter %r", uri)
        return -1
    cols = _columns(ctx)
    where: list[tuple[str, object]] = [(cols.user, parts.user)]
    if flags & 1:
        where.append((cols.domain, parts.host))
    columns = (
        (cols.user,) if flags & 2 or not cols.credentials else tuple(c for _, c in cols.credentials)
    )
    try:
        rows = _database(ctx).select(table, columns, where, limit=1)
    except DbError as exc:
        log.error("%s", exc)
        return -1
    if not rows:
        return -1
    if not flags & 2 and cols.credentials:
        _set_avps(ctx, cols, rows[0])
    return 1


EXPORTS = ModuleExports(
    name="auth_db",
    cmds=(
        Cmd(
            "www_authorize",
            (STR, STR_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
            impl=www_authorize,
        ),
        Cmd(
            "www_authenticate",
            (STR, STR_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
            impl=www_authenticate,
        ),
        Cmd(
            "www_authenticate",
            (STR, STR_CONST, STR),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
            impl=www_authenticate,
        ),
        Cmd(
            "proxy_authorize",
            (STR, STR_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
            impl=proxy_authorize,
        ),
        Cmd(
            "proxy_authenticate",
            (STR, STR_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
            impl=proxy_authenticate,
        ),
        Cmd(
            "auth_check",
            (STR, STR_CONST, INT),
            Route.REQUEST,
            const_args=True,
            fixup="auth_check_fixup",
            impl=auth_check,
        ),
        Cmd(
            "is_subscriber",
            (STR, STR_CONST, INT),
            Route.ANY,
            const_args=True,
            fixup="auth_check_fixup",
            impl=is_subscriber,
        ),
    ),
    params=(
        ModParam("db_url", str, DEFAULT_DB_URL),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("password_column", str, "ha1"),
        ModParam("password_column_2", str, "ha1b"),
        ModParam("calculate_ha1", int, 0),
        ModParam("use_domain", int, 0),
        ModParam("load_credentials", str, None),
        ModParam("version_table", int, 1),
        ModParam("force_generate_avps", int, 0),
    ),
    depends=("auth",),
)
