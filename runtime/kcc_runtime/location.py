"""usrloc's storage: the location table, shared by every worker process.

Kamailio keeps registered contacts in shared memory (usrloc's ``udomain`` hash of
``urecord`` entries, each a list of ``ucontact``) and, with ``db_mode`` 1-3, writes
them through to a database table. kcc's workers are forked processes with no shared
heap, so the contacts live in one SQLite database that every worker opens (stdlib
:mod:`sqlite3`, WAL journal, a short busy timeout, one connection per process opened
after the fork, on first use). A REGISTER saved by one worker is found by a lookup in
any other.

**Schema.** Every table is Kamailio's ``location`` table (``location`` is the
``domain`` argument of ``save("location")``: Kamailio names a usrloc domain after its
table), version 9, with the columns, defaults and indexes of
``/usr/share/kamailio/mysql/usrloc-create.sql`` (Debian's kamailio 5.6 package)
written in SQLite's dialect, as kamdbctl's ``db_sqlite`` scripts write them:
``expires`` and ``last_modified`` are ``DATETIME`` text ``YYYY-MM-DD HH:MM:SS`` in
local time (what ``db_sqlite`` stores), ``q`` a float, ``methods`` the bit set of
Kamailio's ``METHOD_*`` values. So a ``kamailio.db`` created by kamdbctl (``db_mode``
with ``db_url`` ``sqlite:///path``) is read and written as is, and contacts survive a
restart.

**Where the file is.** ``db_mode`` 0 (Kamailio's default, memory only): a private
database in a temporary directory that lives as long as the proxy. The supervisor
creates it before forking (:func:`private_directory`, used by ``serve.run``) and
deletes it at exit, so all workers share it; a process without a supervisor (a test,
a single :class:`~kcc_runtime.context.Process`) gets its own temporary file, deleted
when the store is garbage collected. ``db_mode`` 1, 2 or 3 with ``db_url``
``sqlite:///path``: that file. :func:`store_for` chooses.

**Order.** Kamailio's urecord keeps its contacts sorted by q, highest first; a new
contact goes after those of equal q (``desc_time_order`` 0, measured on 5.6.3: three
REGISTERs without q are listed in the 200 OK oldest first, and ``lookup`` appends them
as branches in that order). Here that is ``ORDER BY q DESC, id``: ``id`` grows with
each insert, and an update that changes q re-inserts the row (a new ``id``), as
Kamailio moves the contact to the end of its new q group.

**Expiry.** Kamailio keeps an expired contact until its timer (``timer_interval``,
60 s) removes it, and every read filters on ``expires`` (``VALID_CONTACT``): reads
here do the same (:meth:`LocationStore.contacts` with ``valid_only``), and
:meth:`LocationStore.maybe_purge` deletes the expired rows of every table once per
``timer_interval`` (called on each write), so the table never grows without bound.
Contacts with ``expires`` 0 (permanent, ``ul.add`` with expires 0) never expire.

Sans-IO apart from SQLite; ``now`` (seconds since the epoch) is injectable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Final

from kcc_runtime.db import DbError, sqlite_path

__all__ = [
    "ALL_METHODS",
    "Contact",
    "LocationStore",
    "private_directory",
    "store_for",
]

log = logging.getLogger("kcc_runtime.usrloc")

#: Kamailio's ``ALL_METHODS``: a contact that gave no ``methods`` and no ``Allow``
ALL_METHODS: Final = 0xFFFFFFFF
#: the busy timeout of a connection (seconds): a writer waits this long for another
BUSY_TIMEOUT: Final = 2.0
#: the schema version Kamailio 5.6 expects (``version`` table)
TABLE_VERSION: Final = 9
#: a usrloc domain (table) name: Kamailio takes it as an SQL identifier
_TABLE_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
#: ``expires`` of a permanent contact as db_sqlite writes ``0``
_EPOCH_TEXT: Final = "1970-01-01 00:00:00"

#: the directory of the db_mode 0 database shared by the workers (set by the
#: supervisor before it forks: :func:`private_directory`), under key "dir"
_shared: Final[dict[str, str]] = {}


def _ddl(table: str) -> str:
    """Kamailio's ``location`` table (usrloc-create.sql, version 9) in SQLite."""
    return f"""
CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS {table} (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT {table}_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS {table}_account_contact_idx ON {table} (username, domain, contact);
CREATE INDEX IF NOT EXISTS {table}_expires_idx ON {table} (expires);
CREATE INDEX IF NOT EXISTS {table}_connection_idx ON {table} (server_id, connection_id);
"""


def _time_text(t: float) -> str:
    """A time as db_sqlite stores a DATETIME: local time, whole seconds."""
    if t <= 0:
        return _EPOCH_TEXT
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(t)))


def _text_time(text: object) -> float:
    """The inverse of :func:`_time_text`; 0 (permanent) for the epoch or bad text."""
    if not isinstance(text, str) or text <= "1970-01-02":
        return 0.0
    try:
        return float(time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S")))
    except ValueError:
        return 0.0


@dataclass(frozen=True, slots=True)
class Contact:
    """One row of the location table (Kamailio's ``ucontact``).

    ``expires`` and ``last_modified`` are seconds since the epoch (``expires`` 0: a
    permanent contact); ``q`` is Kamailio's ``qvalue_t``, 0..1000, -1 when the
    contact gave none (``Q_UNSPECIFIED``; stored as -0.001 so that it sorts below 0
    as Kamailio sorts it); ``id`` is 0 before the row is inserted."""

    ruid: str
    username: str
    domain: str | None
    contact: str
    expires: float
    q: int = -1
    callid: str = "Default-Call-ID"
    cseq: int = 1
    last_modified: float = 0.0
    received: str | None = None
    path: str | None = None
    flags: int = 0
    cflags: int = 0
    user_agent: str = ""
    socket: str | None = None
    methods: int | None = None
    instance: str | None = None
    reg_id: int = 0
    server_id: int = 0
    connection_id: int = 0
    keepalive: int = 0
    partition: int = 0
    id: int = 0

    def valid(self, now: float) -> bool:
        """Kamailio's ``VALID_CONTACT``: not expired, or permanent."""
        return self.expires == 0 or self.expires > now


_COLUMNS: Final = tuple(f.name for f in fields(Contact) if f.name != "id")


def _q_to_db(q: int) -> float:
    return q / 1000.0


def _q_from_db(value: object) -> int:
    if not isinstance(value, int | float):
        return -1
    return -1 if value < 0 else round(value * 1000)


class LocationStore:
    """One process's connection to the location database.

    Every method is safe to call with bad data: SQLite errors are logged and turn
    into an empty result or False (Kamailio's usrloc errors become the registrar's
    "usrloc ... failed" reply codes)."""

    def __init__(
        self,
        path: str,
        *,
        now: Callable[[], float] = time.time,
        purge_interval: float = 60.0,
    ) -> None:
        self.path = path
        self.now = now
        self.purge_interval = purge_interval
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._last_purge: float | None = None
        self._cleanup: weakref.finalize[..., object] | None = None

    # -- the connection -------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This process's connection (a connection inherited across ``fork`` is
        never used: the child opens its own)."""
        if self._conn is None or self._pid != os.getpid():
            self._pid = os.getpid()
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
            self._tables = set()
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def table(self, name: str) -> str:
        """The table for usrloc domain ``name``, created when missing (with its
        ``version`` row). ValueError for a name that is not an identifier."""
        if _TABLE_RE.match(name) is None:
            raise ValueError(f"bad usrloc domain name {name!r}")
        if name not in self._tables:
            conn = self.connection()
            # one statement at a time: executescript would commit an open transaction
            for statement in _ddl(name).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO version (table_name, table_version) VALUES (?, ?)",
                (name, TABLE_VERSION),
            )
            self._tables.add(name)
        return name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: one writer at a time over all
        processes (Kamailio's ``lock_udomain``), rolled back on an exception."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reads ----------------------------------------------------------------------

    @staticmethod
    def _row(row: sqlite3.Row | tuple[object, ...]) -> Contact:
        (
            id_,
            ruid,
            username,
            domain,
            contact,
            received,
            path,
            expires,
            q,
            callid,
            cseq,
            last_modified,
            flags,
            cflags,
            user_agent,
            socket,
            methods,
            instance,
            reg_id,
            server_id,
            connection_id,
            keepalive,
            partition,
        ) = row
        return Contact(
            ruid=str(ruid),
            username=str(username),
            domain=None if domain is None else str(domain),
            contact=str(contact),
            expires=_text_time(expires),
            q=_q_from_db(q),
            callid=str(callid),
            cseq=int(cseq) if isinstance(cseq, int) else 0,
            last_modified=_text_time(last_modified),
            received=None if received is None else str(received),
            path=None if path is None else str(path),
            flags=int(flags) if isinstance(flags, int) else 0,
            cflags=int(cflags) if isinstance(cflags, int) else 0,
            user_agent=str(user_agent),
            socket=None if socket is None else str(socket),
            methods=None if not isinstance(methods, int) else methods & ALL_METHODS,
            instance=None if instance is None else str(instance),
            reg_id=int(reg_id) if isinstance(reg_id, int) else 0,
            server_id=int(server_id) if isinstance(server_id, int) else 0,
            connection_id=int(connection_id) if isinstance(connection_id, int) else 0,
            keepalive=int(keepalive) if isinstance(keepalive, int) else 0,
            partition=int(partition) if isinstance(partition, int) else 0,
            id=int(id_) if isinstance(id_, int) else 0,
        )

    _SELECT: Final = (
        "SELECT id, ruid, username, domain, contact, received, path, expires, q, callid,"
        " cseq, last_modified, flags, cflags, user_agent, socket, methods, instance,"
        " reg_id, server_id, connection_id, keepalive, partition FROM "
    )

    def contacts(
        self, table: str, username: str, domain: str | None, *, valid_only: bool = True
    ) -> list[Contact]:
        """The contacts of one AoR in urecord order (q highest first, then oldest
        first); expired ones left out unless ``valid_only`` is False. ``domain`` None:
        any domain (usrloc ``use_domain`` 0 keys the record on the user alone)."""
        name = self.table(table)
        sql = self._SELECT + name + " WHERE username = ?"
        args: list[object] = [username]
        if domain is not None:
            sql += " AND domain = ?"
            args.append(domain)
        if valid_only:
            sql += " AND (expires > ? OR expires <= ?)"
            args += [_time_text(self.now()), "1970-01-02"]
        sql += " ORDER BY q DESC, id"
        return [self._row(r) for r in self.connection().execute(sql, args)]

    def by_ruid(self, table: str, ruid: str) -> Contact | None:
        name = self.table(table)
        row = self.connection().execute(self._SELECT + name + " WHERE ruid = ?", (ruid,)).fetchone()
        return None if row is None else self._row(row)

    def all_contacts(self, table: str, *, valid_only: bool = True) -> list[Contact]:
        """Every contact of the table (``ul.dump``), by AoR then urecord order."""
        name = self.table(table)
        sql = self._SELECT + name
        args: list[object] = []
        if valid_only:
            sql += " WHERE (expires > ? OR expires <= ?)"
            args += [_time_text(self.now()), "1970-01-02"]
        sql += " ORDER BY username, domain, q DESC, id"
        return [self._row(r) for r in self.connection().execute(sql, args)]

    def every_contact(self) -> list[Contact]:
        """The valid contacts of every location table in the database (the tables
        the ``version`` table lists), for nathelper's pinger, which walks all of
        usrloc's domains; empty when the database has none yet or on an error."""
        try:
            conn = self.connection()
            exists = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'version'"
            ).fetchone()
            if exists is None:
                return []
            names = [str(r[0]) for r in conn.execute("SELECT table_name FROM version")]
            out: list[Contact] = []
            for name in names:
                if _TABLE_RE.match(name) is not None:
                    out.extend(self.all_contacts(name))
            return out
        except sqlite3.Error as exc:
            log.error("usrloc: reading the contacts failed: %s", exc)
            return []

    # -- writes (inside transaction() or alone) ----------------------------------------

    def insert(self, table: str, contact: Contact) -> Contact:
        """Add a contact; returns it with its ``id``."""
        name = self.table(table)
        values = self._values(contact)
        cur = self.connection().execute(
            f"INSERT INTO {name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            values,
        )
        return replace(contact, id=int(cur.lastrowid or 0))

    def update(self, table: str, old: Contact, new: Contact) -> Contact:
        """Replace ``old`` (by id) with ``new``; a changed q moves the contact to
        the end of its new q group (a new id), as Kamailio's ``update_contact_pos``."""
        if new.q != old.q:
            self.delete(table, old)
            return self.insert(table, replace(new, id=0))
        name = self.table(table)
        sets = ", ".join(f"{c} = ?" for c in _COLUMNS)
        self.connection().execute(
            f"UPDATE {name} SET {sets} WHERE id = ?", (*self._values(new), old.id)
        )
        return replace(new, id=old.id)

    def delete(self, table: str, contact: Contact) -> None:
        name = self.table(table)
        self.connection().execute(f"DELETE FROM {name} WHERE id = ?", (contact.id,))

    def delete_aor(self, table: str, username: str, domain: str | None) -> int:
        """Remove every contact of an AoR (``*``, ``unregister``): how many."""
        name = self.table(table)
        if domain is None:
            cur = self.connection().execute(f"DELETE FROM {name} WHERE username = ?", (username,))
        else:
            cur = self.connection().execute(
                f"DELETE FROM {name} WHERE username = ? AND domain = ?", (username, domain)
            )
        return cur.rowcount

    def delete_ruid(self, table: str, ruid: str) -> int:
        name = self.table(table)
        return self.connection().execute(f"DELETE FROM {name} WHERE ruid = ?", (ruid,)).rowcount

    def purge(self) -> int:
        """Delete the expired contacts of every table this process uses (usrloc's
        timer): how many."""
        now = _time_text(self.now())
        removed = 0
        for name in sorted(self._tables):
            cur = self.connection().execute(
                f"DELETE FROM {name} WHERE expires <= ? AND expires > ?", (now, "1970-01-02")
            )
            removed += cur.rowcount
        self._last_purge = self.now()
        return removed

    def maybe_purge(self) -> int:
        """:meth:`purge` when ``purge_interval`` has passed since the last one."""
        if self._last_purge is not None and self.now() - self._last_purge < self.purge_interval:
            return 0
        return self.purge()

    @staticmethod
    def _values(c: Contact) -> tuple[object, ...]:
        return (
            c.ruid,
            c.username,
            c.domain,
            c.contact,
            _time_text(c.expires),
            -0.001 if c.q < 0 else _q_to_db(c.q),
            c.callid,
            c.cseq,
            _time_text(c.last_modified),
            c.received,
            c.path,
            c.flags,
            c.cflags,
            c.user_agent,
            c.socket,
            c.methods,
            c.instance,
            c.reg_id,
            c.server_id,
            c.connection_id,
            c.keepalive,
            c.partition,
        )


# ---------------------------------------------------------------------------------
# where the database is
# ---------------------------------------------------------------------------------


@contextlib.contextmanager
def private_directory() -> Iterator[str]:
    """The supervisor's db_mode 0 directory: created before the workers fork (they
    inherit its name), removed with its database when the proxy stops."""
    path = tempfile.mkdtemp(prefix="kcc-usrloc-")
    previous = _shared.get("dir")
    _shared["dir"] = path
    try:
        yield path
    finally:
        if previous is None:
            _shared.pop("dir", None)
        else:
            _shared["dir"] = previous
        shutil.rmtree(path, ignore_errors=True)


def store_for(
    db_mode: int,
    db_url: str | None,
    timer_interval: int,
    *,
    now: Callable[[], float] = time.time,
) -> LocationStore:
    """The store of a process, by usrloc's ``db_mode`` and ``db_url``: the
    ``sqlite:///path`` file for ``db_mode`` 1-3, else (db_mode 0, or a URL of a
    database kcc does not speak, logged) the proxy's private database: in the
    supervisor's :func:`private_directory`, or a temporary file of its own."""
    if db_mode != 0 and db_url is not None:
        try:
            path = sqlite_path(db_url)
        except DbError as exc:
            log.error("usrloc: %s; contacts are kept in memory only", exc)
        else:
            return LocationStore(path, now=now, purge_interval=float(timer_interval))
    shared = _shared.get("dir")
    if shared is not None:
        return LocationStore(
            os.path.join(shared, "usrloc.db"), now=now, purge_interval=float(timer_interval)
        )
    directory = tempfile.mkdtemp(prefix="kcc-usrloc-")
    store = LocationStore(
        os.path.join(directory, "usrloc.db"), now=now, purge_interval=float(timer_interval)
    )
    store._cleanup = weakref.finalize(store, shutil.rmtree, directory, True)
    return store
