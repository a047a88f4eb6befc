"""The database layer of the DB-backed modules (auth_db, permissions): Kamailio's
``db_url`` parsing and an SQLite connection per worker process.

**URLs.** Kamailio parses every ``db_url`` the same way (``lib/srdb1/db_id.c``):
``driver://[user[:password]@]host[:port]/database``. kcc speaks one driver,
``db_sqlite`` (``sqlite://``): the *database* part is the path of the file.
Measured on Kamailio 5.6.3 with ``db_sqlite``: ``sqlite:///tmp/f7/k.db`` opens
``tmp/f7/k.db`` *relative to the working directory* (``-w``; "/" by default, so
the README's ``sqlite:///etc/kamailio/kamailio.db`` is the file
``/etc/kamailio/kamailio.db``). kcc's proxy has no ``-w`` and runs where it was
started, so it reads ``sqlite:///path`` as the absolute ``/path`` (what Kamailio
opens with its default working directory); ``sqlite:////path`` is the same file.
Any other driver (``mysql://``, ``postgres://``...) is refused by ``kcc build``
(E0904); at run time :func:`open_database` raises :class:`DbError` for it.

**Connections.** One :class:`Database` per URL per process (:func:`open_database`
caches them): the sqlite3 connection is opened on first use in the process that uses
it (a connection inherited across ``fork`` is never used, the worker opens its own),
with a short busy timeout so a worker waits briefly for another's write. Reads are
plain ``SELECT``s in autocommit mode.

**Schemas.** Kamailio's tables as Debian's kamailio 5.6 package defines them
(``/usr/share/kamailio/mysql/{standard,auth_db,permissions}-create.sql``, and the
same tables in SQLite's dialect in ``/usr/share/kamailio/db_sqlite/``): ``version``
(version 1), ``subscriber`` (version 7), ``address`` (version 6), and for alias_db,
speeddial and domain ``dbaliases`` (1), ``speed_dial`` (2), ``domain`` (2) and
``domain_attrs`` (1) (``{alias_db,speeddial,domain}-create.sql``). Kamailio never
creates tables (kamdbctl does); neither does the runtime: :func:`create_tables` is
for tests and for setting up a database by hand, and writes exactly those columns,
types, defaults and version rows, so a ``kamailio.db`` made by kamdbctl and one made
here are interchangeable.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BUSY_TIMEOUT",
    "SCHEMAS",
    "Database",
    "DbError",
    "DbUrl",
    "create_tables",
    "open_database",
    "parse_db_url",
    "sqlite_path",
]

log = logging.getLogger("kcc_runtime.db")

#: seconds a connection waits for another process's write lock
BUSY_TIMEOUT: Final = 2.0

#: table name -> (version, DDL in SQLite's dialect); columns and defaults of
#: standard-create.sql, auth_db-create.sql, permissions-create.sql,
#: alias_db-create.sql, speeddial-create.sql and domain-create.sql (Kamailio 5.6;
#: index and constraint names as in ``/usr/share/kamailio/db_sqlite/``)
SCHEMAS: Final[dict[str, tuple[int, str]]] = {
    "version": (
        1,
        "CREATE TABLE version ("
        " table_name VARCHAR(32) NOT NULL,"
        " table_version INTEGER DEFAULT 0 NOT NULL,"
        " CONSTRAINT version_table_name_idx UNIQUE (table_name))",
    ),
    "subscriber": (
        7,
        "CREATE TABLE subscriber ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " username VARCHAR(64) DEFAULT '' NOT NULL,"
        " domain VARCHAR(64) DEFAULT '' NOT NULL,"
        " password VARCHAR(64) DEFAULT '' NOT NULL,"
        " ha1 VARCHAR(128) DEFAULT '' NOT NULL,"
        " ha1b VARCHAR(128) DEFAULT '' NOT NULL,"
        " CONSTRAINT subscriber_account_idx UNIQUE (username, domain));"
        "CREATE INDEX subscriber_username_idx ON subscriber (username)",
    ),
    "address": (
        6,
        "CREATE TABLE address ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " grp INTEGER DEFAULT 1 NOT NULL,"
        " ip_addr VARCHAR(50) NOT NULL,"
        " mask INTEGER DEFAULT 32 NOT NULL,"
        " port SMALLINT DEFAULT 0 NOT NULL,"
        " tag VARCHAR(64))",
    ),
    # alias_db-create.sql, speeddial-create.sql, domain-create.sql
    "dbaliases": (
        1,
        "CREATE TABLE dbaliases ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " alias_username VARCHAR(64) DEFAULT '' NOT NULL,"
        " alias_domain VARCHAR(64) DEFAULT '' NOT NULL,"
        " username VARCHAR(64) DEFAULT '' NOT NULL,"
        " domain VARCHAR(64) DEFAULT '' NOT NULL);"
        "CREATE INDEX dbaliases_alias_user_idx ON dbaliases (alias_username);"
        "CREATE INDEX dbaliases_alias_idx ON dbaliases (alias_username, alias_domain);"
        "CREATE INDEX dbaliases_target_idx ON dbaliases (username, domain)",
    ),
    "speed_dial": (
        2,
        "CREATE TABLE speed_dial ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " username VARCHAR(64) DEFAULT '' NOT NULL,"
        " domain VARCHAR(64) DEFAULT '' NOT NULL,"
        " sd_username VARCHAR(64) DEFAULT '' NOT NULL,"
        " sd_domain VARCHAR(64) DEFAULT '' NOT NULL,"
        " new_uri VARCHAR(255) DEFAULT '' NOT NULL,"
        " fname VARCHAR(64) DEFAULT '' NOT NULL,"
        " lname VARCHAR(64) DEFAULT '' NOT NULL,"
        " description VARCHAR(64) DEFAULT '' NOT NULL,"
        " CONSTRAINT speed_dial_speed_dial_idx"
        " UNIQUE (username, domain, sd_domain, sd_username))",
    ),
    "domain": (
        2,
        "CREATE TABLE domain ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " domain VARCHAR(64) NOT NULL,"
        " did VARCHAR(64) DEFAULT NULL,"
        " last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,"
        " CONSTRAINT domain_domain_idx UNIQUE (domain))",
    ),
    "domain_attrs": (
        1,
        "CREATE TABLE domain_attrs ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " did VARCHAR(64) NOT NULL,"
        " name VARCHAR(32) NOT NULL,"
        " type INTEGER NOT NULL,"
        " value VARCHAR(255) NOT NULL,"
        " last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL);"
        "CREATE INDEX domain_attrs_domain_attrs_idx ON domain_attrs (did, name)",
    ),
}


class DbError(Exception):
    """A database URL kcc cannot use, or a failed query (the module logs it and
    returns Kamailio's error code)."""


@dataclass(frozen=True, slots=True)
class DbUrl:
    """A parsed ``driver://[user[:password]@]host[:port]/database`` URL."""

    driver: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    database: str


def parse_db_url(url: str) -> DbUrl:
    """Split a Kamailio DB URL; :class:`DbError` when it has no ``driver://`` or a
    bad port. For ``sqlite`` the database is everything after ``sqlite://`` up to
    the first ``/`` that ends the (empty) host part."""
    driver, sep, rest = url.partition("://")
    if not sep or not driver or not driver.replace("_", "").isalnum():
        raise DbError(f"invalid database URL {url!r}: expected driver://...")
    netloc, slash, database = rest.partition("/")
    if not slash:
        raise DbError(f"invalid database URL {url!r}: no /database part")
    user: str | None = None
    password: str | None = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        password = urllib.parse.unquote(pw) if colon else None
    host, colon, port_text = netloc.partition(":")
    port: int | None = None
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DbError(f"invalid database URL {url!r}: bad port {port_text!r}")
        port = int(port_text)
    return DbUrl(driver.lower(), user, password, host, port, database)


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:///path`` URL names (see the module docstring):
    ``/path``. :class:`DbError` for another driver or an empty path."""
    parsed = parse_db_url(url)
    if parsed.driver != "sqlite":
        raise DbError(
            f"database driver {parsed.driver!r} is not supported by the kcc runtime "
            "(use db_sqlite with a sqlite:///path URL)"
        )
    path = parsed.database
    if not path.strip("/"):
        raise DbError(f"invalid database URL {url!r}: no file name")
    return "/" + path.lstrip("/")


class Database:
    """One process's connection to one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (after the fork)."""
        if self._conn is None or self._pid != os.getpid():
            self._pid = os.getpid()
            # the file must exist: Kamailio's db_sqlite does not create databases
            uri = "file:" + urllib.parse.quote(self.path) + "?mode=rw"
            try:
                self._conn = sqlite3.connect(
                    uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None
                )
            except sqlite3.Error as exc:
                raise DbError(f"failed to open sqlite database {self.path!r}: {exc}") from exc
        return self._conn

    def select(
        self,
        table: str,
        columns: Sequence[str],
        where: Sequence[tuple[str, object]] = (),
        *,
        limit: int | None = None,
    ) -> list[tuple[object, ...]]:
        """``SELECT columns FROM table WHERE k1=v1 AND ...`` (Kamailio's
        ``db_query`` with equality keys). Table and column names come from the cfg
        and are quoted as identifiers; :class:`DbError` on any SQLite error."""
        cols = ", ".join(_ident(c) for c in columns)
        sql = f"SELECT {cols} FROM {_ident(table)}"
        if where:
            sql += " WHERE " + " AND ".join(f"{_ident(k)}=?" for k, _ in where)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            return list(self.connection().execute(sql, [v for _, v in where]))
        except sqlite3.Error as exc:
            raise DbError(f"query on table {table!r} failed: {exc}") from exc

    def table_version(self, table: str) -> int | None:
        """The ``version`` table's row for ``table`` (None when absent)."""
        rows = self.select("version", ("table_version",), (("table_name", table),), limit=1)
        if not rows:
            return None
        value = rows[0][0]
        return value if isinstance(value, int) else None

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


def _ident(name: str) -> str:
    """An SQL identifier, double-quoted (a name from the cfg is never SQL)."""
    return '"' + name.replace('"', '""') + '"'


#: per process: URL -> its database
_OPEN: Final[dict[str, Database]] = {}


def open_database(url: str) -> Database:
    """The process's :class:`Database` for ``url`` (cached; the connection itself is
    opened on first query). :class:`DbError` for a URL kcc cannot use."""
    db = _OPEN.get(url)
    if db is None:
        db = _OPEN[url] = Database(sqlite_path(url))
    return db


def create_tables(path: str, tables: Sequence[str] = ("subscriber", "address")) -> None:
    """Create ``version`` and ``tables`` (from :data:`SCHEMAS`) in the SQLite file
    ``path`` with their version rows, as kamdbctl would; existing tables are left
    alone. ValueError for a table kcc has no schema for."""
    for name in tables:
        if name not in SCHEMAS:
            raise ValueError(f"no schema for table {name!r}")
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
    try:
        existing = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        for name in ("version", *tables):
            version, ddl = SCHEMAS[name]
            if name not in existing:
                for statement in ddl.split(";"):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO version (table_name, table_version) VALUES (?, ?)",
                    (name, version),
                )
        conn.commit()
    finally:
        conn.close()
