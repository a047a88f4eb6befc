"""usrloc's store (:mod:`kcc_runtime.location`): the location table shared by
processes, expiry, urecord order, and the Kamailio schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from kcc_runtime import location as loc
from kcc_runtime.location import Contact, LocationStore

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def contact(uri: str, *, user: str = "alice", q: int = -1, expires: float = T0 + 3600) -> Contact:
    return Contact(
        ruid=f"ruid-{uri}",
        username=user,
        domain=None,
        contact=uri,
        expires=expires,
        q=q,
        callid="c1",
        cseq=1,
        last_modified=T0,
    )


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    """Two connections to one file (two workers) see each other's writes."""
    path = str(tmp_path / "usrloc.db")
    clock = Clock()
    worker1 = LocationStore(path, now=clock)
    worker2 = LocationStore(path, now=clock)
    with worker1.transaction():
        worker1.insert("location", contact("sip:alice@127.0.0.1:5091"))
    found = worker2.contacts("location", "alice", None)
    assert [c.contact for c in found] == ["sip:alice@127.0.0.1:5091"]
    assert found[0].expires == T0 + 3600
    assert found[0].ruid == "ruid-sip:alice@127.0.0.1:5091"
    with worker2.transaction():
        assert worker2.delete_aor("location", "alice", None) == 1
    assert worker1.contacts("location", "alice", None) == []


def test_expired_contacts_are_not_returned_and_purged(tmp_path: Path) -> None:
    clock = Clock()
    store = LocationStore(str(tmp_path / "u.db"), now=clock, purge_interval=60)
    store.insert("location", contact("sip:a@127.0.0.1:1", expires=T0 + 30))
    store.insert("location", contact("sip:a@127.0.0.1:2", expires=T0 + 300))
    clock.t = T0 + 31
    assert [c.contact for c in store.contacts("location", "alice", None)] == ["sip:a@127.0.0.1:2"]
    # still in the table (Kamailio keeps it until its timer runs) ...
    every = store.contacts("location", "alice", None, valid_only=False)
    assert len(every) == 2
    # ... until the purge, which runs at most once per interval
    assert store.maybe_purge() == 1
    assert store.contacts("location", "alice", None, valid_only=False)[0].contact == (
        "sip:a@127.0.0.1:2"
    )
    clock.t = T0 + 301
    assert store.contacts("location", "alice", None) == []
    clock.t = T0 + 60
    assert store.maybe_purge() == 0  # 29 s after the last purge
    clock.t = T0 + 400
    assert store.maybe_purge() == 1
    assert store.contacts("location", "alice", None, valid_only=False) == []


def test_q_order_then_oldest_first(tmp_path: Path) -> None:
    """urecord order (measured on Kamailio 5.6.3: q-less contacts oldest first,
    a q-less contact after a q=0 one)."""
    store = LocationStore(str(tmp_path / "u.db"), now=Clock())
    for uri, q in (("sip:a@h:1", -1), ("sip:a@h:2", -1), ("sip:a@h:3", 500), ("sip:a@h:4", 0)):
        store.insert("location", contact(uri, q=q))
    store.insert("location", contact("sip:a@h:5", q=1000))
    order = [(c.contact, c.q) for c in store.contacts("location", "alice", None)]
    assert order == [
        ("sip:a@h:5", 1000),
        ("sip:a@h:3", 500),
        ("sip:a@h:4", 0),
        ("sip:a@h:1", -1),
        ("sip:a@h:2", -1),
    ]


def test_update_keeps_place_unless_q_changes(tmp_path: Path) -> None:
    store = LocationStore(str(tmp_path / "u.db"), now=Clock())
    first = store.insert("location", contact("sip:a@h:1", q=500))
    store.insert("location", contact("sip:a@h:2", q=500))
    same_q = store.update("location", first, contact("sip:a@h:1", q=500, expires=T0 + 10))
    assert same_q.id == first.id
    order = [c.contact for c in store.contacts("location", "alice", None)]
    assert order == ["sip:a@h:1", "sip:a@h:2"]
    moved = store.update("location", same_q, contact("sip:a@h:1", q=400))
    assert moved.id != first.id
    store.update("location", moved, contact("sip:a@h:1", q=500))
    order = [c.contact for c in store.contacts("location", "alice", None)]
    assert order == ["sip:a@h:2", "sip:a@h:1"]


def test_schema_is_kamailios_location_table(tmp_path: Path) -> None:
    """Columns of usrloc-create.sql (version 9); times as db_sqlite writes them."""
    path = tmp_path / "kamailio.db"
    store = LocationStore(str(path), now=Clock())
    store.insert("location", contact("sip:a@h:1", q=500))
    store.close()
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(location)")]
    assert columns == [
        "id", "ruid", "username", "domain", "contact", "received", "path", "expires",
        "q", "callid", "cseq", "last_modified", "flags", "cflags", "user_agent", "socket",
        "methods", "instance", "reg_id", "server_id", "connection_id", "keepalive",
        "partition",
    ]  # fmt: skip
    assert conn.execute(
        "SELECT table_version FROM version WHERE table_name='location'"
    ).fetchone() == (9,)
    expires, q = conn.execute("SELECT expires, q FROM location").fetchone()
    assert len(expires) == 19 and expires[4] == "-" and expires[13] == ":"
    assert q == 0.5
    conn.close()


def test_contacts_survive_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    """db_mode over sqlite:///path: a restart (a new process) finds the contacts."""
    url = f"sqlite://{tmp_path}/kamailio.db"
    first = loc.store_for(2, url, 60, now=Clock())
    first.insert("location", contact("sip:a@h:1"))
    first.close()
    again = loc.store_for(2, url, 60, now=Clock())
    assert again.path == f"{tmp_path}/kamailio.db"
    assert [c.contact for c in again.contacts("location", "alice", None)] == ["sip:a@h:1"]


def test_db_mode_0_uses_the_supervisors_directory() -> None:
    with loc.private_directory() as directory:
        store = loc.store_for(0, "sqlite:///ignored.db", 60, now=Clock())
        assert store.path == f"{directory}/usrloc.db"
        other = loc.store_for(0, None, 60, now=Clock())
        assert other.path == store.path
        store.insert("location", contact("sip:a@h:1"))
        assert [c.contact for c in other.contacts("location", "alice", None)] == ["sip:a@h:1"]
        store.close()
        other.close()
    assert not Path(directory).exists()


def test_without_supervisor_each_store_is_private() -> None:
    a = loc.store_for(0, None, 60)
    b = loc.store_for(0, None, 60)
    assert a.path != b.path
    a.insert("location", contact("sip:a@h:1"))
    assert b.contacts("location", "alice", None) == []


def test_bad_table_name_is_refused(tmp_path: Path) -> None:
    store = LocationStore(str(tmp_path / "u.db"))
    with pytest.raises(ValueError, match="bad usrloc domain name"):
        store.table("location; DROP TABLE version")
