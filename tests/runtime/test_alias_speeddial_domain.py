"""alias_db, speeddial and domain over SQLite.

Every expected value was measured on Kamailio 5.6.3 with ``db_sqlite`` and the rows
below (a probe cfg calling each function on INVITEs sent over loopback, the result
printed with ``xlog``): see the docstrings of :mod:`kcc_runtime.modules.alias_db`,
:mod:`kcc_runtime.modules.speeddial` and :mod:`kcc_runtime.modules.domain`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest
from kcc_runtime import db, kw, pv
from kcc_runtime.context import Branch, Context, FailureContext, RequestContext
from kcc_runtime.modules import alias_db, domain, speeddial

from tests.runtime.fake_engine import make_ctx

ALIASES = [
    ("al", "example.com", "alice", "127.0.0.1"),
    ("al", "example.com", "alice2", "other.net"),
    ("al", "example.org", "bob", "b.net"),
    ("x1", "", "xuser", "xdom"),
]
SPEED_DIALS = [
    ("probe", "127.0.0.1", "11", "", "sip:target@t.net"),
    ("probe", "sip.h.net", "12", "", "nosip@t.net"),
    ("carl", "", "13", "", "sips:carl@t.net"),
    ("probe", "127.0.0.1", "14", "example.com", "sip:dom14@t.net"),
]
DOMAINS = [("Example.COM", None), ("local.test", "d1"), ("alt.test", "d1")]
DOMAIN_ATTRS = [
    ("d1", "color", 2, "red"),
    ("d1", "color", 2, "blue"),
    ("d1", "num", 0, "42"),
    ("Example.COM", "color", 2, "green"),
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = str(tmp_path / "k.db")
    db.create_tables(path, ("dbaliases", "speed_dial", "domain", "domain_attrs"))
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES (?,?,?,?)",
        ALIASES,
    )
    conn.executemany(
        "INSERT INTO speed_dial (username, domain, sd_username, sd_domain, new_uri)"
        " VALUES (?,?,?,?,?)",
        SPEED_DIALS,
    )
    conn.executemany("INSERT INTO domain (domain, did) VALUES (?,?)", DOMAINS)
    conn.executemany(
        "INSERT INTO domain_attrs (did, name, type, value) VALUES (?,?,?,?)", DOMAIN_ATTRS
    )
    conn.commit()
    conn.close()
    return f"sqlite://{path}"


def invite(
    url: str,
    ruri: str,
    from_uri: str = "sip:probe@127.0.0.1:5080",
    *,
    cls: type[Context] = RequestContext,
    params: Mapping[str, int | str] | None = None,
) -> Context:
    """A context over an INVITE for ``ruri`` from ``from_uri``; ``params`` as
    ``{"module__name": value}``; the three modules' db_url set to ``url``."""
    data = (
        f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\n"
        f"From: <{from_uri}>;tag=a\r\nTo: <{ruri}>\r\nCall-ID: c\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    mp: dict[tuple[str, str], int | str] = {
        (module, "db_url"): url for module in ("alias_db", "speeddial", "domain")
    }
    for key, value in (params or {}).items():
        module, _, name = key.partition("__")
        mp[(module, name)] = value
    return make_ctx(data, cls, modparams=mp)


def ruri(ctx: Context) -> str | None:
    return pv.current_ruri(ctx)


# -- the schemas ----------------------------------------------------------------------------


def test_schemas_and_versions(url: str) -> None:
    conn = sqlite3.connect(db.sqlite_path(url))
    versions = dict(conn.execute("SELECT table_name, table_version FROM version"))
    columns = {
        table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        for table in ("dbaliases", "speed_dial", "domain", "domain_attrs")
    }
    conn.close()
    assert versions == {
        "version": 1,
        "dbaliases": 1,
        "speed_dial": 2,
        "domain": 2,
        "domain_attrs": 1,
    }
    assert columns == {
        "dbaliases": ["id", "alias_username", "alias_domain", "username", "domain"],
        "speed_dial": [
            "id",
            "username",
            "domain",
            "sd_username",
            "sd_domain",
            "new_uri",
            "fname",
            "lname",
            "description",
        ],
        "domain": ["id", "domain", "did", "last_modified"],
        "domain_attrs": ["id", "did", "name", "type", "value", "last_modified"],
    }


# -- alias_db -------------------------------------------------------------------------------

#: the measured cfg's parameters
ALIAS_PARAMS: dict[str, int | str] = {
    "alias_db__append_branches": 1,
    "alias_db__domain_prefix": "sip.",
}


def test_alias_lookup_by_user_with_branches(url: str) -> None:
    ctx = invite(url, "sip:al@example.com", params=ALIAS_PARAMS)
    assert alias_db.alias_db_lookup(ctx, "dbaliases") == 1
    assert ruri(ctx) == "sip:alice@127.0.0.1"
    assert ctx.ruri_new
    assert [(b.uri, b.q) for b in ctx.branches] == [
        ("sip:alice2@other.net", 0),
        ("sip:bob@b.net", 0),
    ]


def test_alias_lookup_flag_d_is_the_default_without_use_domain(url: str) -> None:
    ctx = invite(url, "sip:al@example.com", params=ALIAS_PARAMS)
    assert alias_db.alias_db_lookup(ctx, "dbaliases", "d") == 1
    assert [b.uri for b in ctx.branches] == ["sip:alice2@other.net", "sip:bob@b.net"]


def test_alias_lookup_with_domain_strips_the_prefix(url: str) -> None:
    ctx = invite(url, "sip:al@sip.example.com:5070;transport=udp", params=ALIAS_PARAMS)
    assert alias_db.alias_db_lookup(ctx, "dbaliases", "u") == 1
    assert ruri(ctx) == "sip:alice@127.0.0.1"
    assert [b.uri for b in ctx.branches] == ["sip:alice2@other.net"]
    # use_domain 1 makes the domain a key without a flag
    ctx = invite(url, "sip:al@example.org", params={"alias_db__use_domain": 1})
    assert alias_db.alias_db_lookup(ctx, "dbaliases") == 1
    assert ruri(ctx) == "sip:bob@b.net"
    assert ctx.branches == []  # append_branches 0


def test_alias_lookup_misses(url: str) -> None:
    for uri, flags in (
        ("sip:al@nowhere", "u"),
        ("sip:alice@other", "ru"),
        ("sip:AL@example.com", None),
    ):
        ctx = invite(url, uri, params=ALIAS_PARAMS)
        assert alias_db.alias_db_lookup(ctx, "dbaliases", flags) == -1
        assert ruri(ctx) == uri
        assert ctx.branches == []


def test_alias_reverse_lookup_and_empty_domain(url: str) -> None:
    ctx = invite(url, "sip:alice@127.0.0.1", params=ALIAS_PARAMS)
    assert alias_db.alias_db_lookup(ctx, "dbaliases", "r") == 1
    assert ruri(ctx) == "sip:al@example.com"
    ctx = invite(url, "sip:x1@anything", params=ALIAS_PARAMS)
    assert alias_db.alias_db_lookup(ctx, "dbaliases") == 1
    assert ruri(ctx) == "sip:xuser@xdom"


def test_alias_bad_table_is_an_error(url: str, caplog: pytest.LogCaptureFixture) -> None:
    ctx = invite(url, "sip:al@example.com", params=ALIAS_PARAMS)
    with caplog.at_level(logging.ERROR):
        assert alias_db.alias_db_lookup(ctx, "nosuchtable") == -1
    assert "failed to query database" in caplog.text
    assert ruri(ctx) == "sip:al@example.com"


def test_alias_unusable_db_url(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = invite("mysql://u:p@localhost/k", "sip:al@example.com")
    with caplog.at_level(logging.ERROR):
        assert alias_db.alias_db_lookup(ctx, "dbaliases") == -1
    assert "not supported" in caplog.text


def test_alias_find_into_avp_and_var(url: str) -> None:
    ctx = invite(url, "sip:zz@h", "sip:al@example.com", params=ALIAS_PARAMS)
    fu = pv.accessor("fu")
    assert alias_db.alias_db_find(ctx, "dbaliases", fu, pv.accessor("avp", "x")) == 1
    assert ctx.avps["x"] == ["sip:bob@b.net", "sip:alice2@other.net", "sip:alice@127.0.0.1"]
    assert ruri(ctx) == "sip:zz@h"
    assert alias_db.alias_db_find(ctx, "dbaliases", fu, pv.accessor("var", "x"), "u") == 1
    assert ctx.proc.vars["x"] == "sip:alice2@other.net"
    ctx = invite(url, "sip:zz@h", "sip:alice@127.0.0.1", params=ALIAS_PARAMS)
    assert alias_db.alias_db_find(ctx, "dbaliases", fu, pv.accessor("avp", "y"), "r") == 1
    assert ctx.avps["y"] == ["sip:al@example.com"]
    ctx = invite(url, "sip:zz@h", "sip:nobody@example.com", params=ALIAS_PARAMS)
    assert alias_db.alias_db_find(ctx, "dbaliases", fu, pv.accessor("avp", "z")) == -1
    assert "z" not in ctx.avps


def test_alias_find_without_append_branches_sets_one(url: str) -> None:
    ctx = invite(url, "sip:zz@h", "sip:al@example.com")
    assert alias_db.alias_db_find(ctx, "dbaliases", pv.accessor("fu"), pv.accessor("avp", "x")) == 1
    assert ctx.avps["x"] == ["sip:alice@127.0.0.1"]


def test_alias_find_of_a_non_uri(url: str) -> None:
    ctx = invite(url, "sip:zz@h")
    ctx.proc.vars["in"] = "not a uri"
    out = pv.accessor("avp", "x")
    assert alias_db.alias_db_find(ctx, "dbaliases", pv.accessor("var", "in"), out) == -1
    ctx.proc.vars["in"] = 5
    assert alias_db.alias_db_find(ctx, "dbaliases", pv.accessor("var", "in"), out) == -1


def test_alias_flags() -> None:
    assert alias_db.parse_flags(None, False) == (False, False)
    assert alias_db.parse_flags(None, True) == (True, False)
    assert alias_db.parse_flags("d", True) == (False, False)
    assert alias_db.parse_flags("ru", False) == (True, True)
    assert alias_db.parse_flags("ud", False) == (False, False)


# -- speeddial ------------------------------------------------------------------------------


def sd_ctx(url: str, uri: str, from_uri: str = "sip:probe@127.0.0.1:5080", use: int = 0) -> Context:
    return invite(
        url,
        uri,
        from_uri,
        params={"speeddial__use_domain": use, "speeddial__domain_prefix": "sip."},
    )


def test_sd_lookup_without_domain(url: str) -> None:
    cases = [
        ("sip:11@127.0.0.1", "sip:probe@127.0.0.1:5080", "sip:target@t.net"),
        ("sip:12@x", "sip:probe@sip.h.net", "sip:nosip@t.net"),
        ("sip:12@x", "sip:probe@h.net", "sip:nosip@t.net"),
        ("sip:14@sip.example.com", "sip:probe@127.0.0.1", "sip:dom14@t.net"),
    ]
    for uri, from_uri, expected in cases:
        ctx = sd_ctx(url, uri, from_uri)
        assert speeddial.sd_lookup(ctx, "speed_dial") == 1, uri
        assert ruri(ctx) == expected
    ctx = sd_ctx(url, "sip:13@x")
    assert speeddial.sd_lookup(ctx, "speed_dial", "sip:carl@whatever") == 1
    assert ruri(ctx) == "sip:sips:carl@t.net"
    ctx = sd_ctx(url, "sip:99@x")
    assert speeddial.sd_lookup(ctx, "speed_dial") == -1
    assert ruri(ctx) == "sip:99@x"


def test_sd_lookup_with_owner_domain(url: str) -> None:
    # the prefix is stripped from the owner's host: sip.h.net matches no row
    for from_uri in ("sip:probe@sip.h.net", "sip:probe@h.net"):
        ctx = sd_ctx(url, "sip:12@x", from_uri, use=1)
        assert speeddial.sd_lookup(ctx, "speed_dial") == -1
    ctx = sd_ctx(url, "sip:13@x", use=1)
    assert speeddial.sd_lookup(ctx, "speed_dial", "sip:carl@whatever") == -1
    ctx = sd_ctx(url, "sip:11@x", use=1)
    assert speeddial.sd_lookup(ctx, "speed_dial") == 1
    assert ruri(ctx) == "sip:target@t.net"


def test_sd_lookup_with_both_domains(url: str) -> None:
    ctx = sd_ctx(url, "sip:11@127.0.0.1", use=2)
    assert speeddial.sd_lookup(ctx, "speed_dial") == -1
    ctx = sd_ctx(url, "sip:14@sip.example.com", use=2)
    assert speeddial.sd_lookup(ctx, "speed_dial") == 1
    assert ruri(ctx) == "sip:dom14@t.net"


def test_sd_lookup_errors(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        ctx = sd_ctx(url, "sip:13@x")
        assert speeddial.sd_lookup(ctx, "speed_dial", "garbage") == -1
        assert "bad owner SIP address!" in caplog.text
        assert speeddial.sd_lookup(ctx, "nosuchtable") == -1
        assert "failed to query database" in caplog.text
        assert speeddial.sd_lookup(ctx, "") == -1
        assert "invalid table parameter" in caplog.text
    assert ruri(ctx) == "sip:13@x"


# -- domain ---------------------------------------------------------------------------------


def test_domain_checks(url: str) -> None:
    ctx = invite(url, "sip:u@LOCAL.test:9999", "sip:a@EXAMPLE.com")
    assert domain.is_from_local(ctx) == 1
    assert domain.is_uri_host_local(ctx) == 1
    assert domain.is_domain_local(ctx, "alt.test") == 1
    assert domain.is_domain_local(ctx, "alt.test:5060") == -1
    ctx = invite(url, "sip:u@x.test", "sip:a@nolocal.net")
    assert domain.is_from_local(ctx) == -1
    assert domain.is_uri_host_local(ctx) == -1


def test_is_uri_host_local_in_failure_route_uses_the_first_branch(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = invite(url, "sip:u@local.test", cls=FailureContext)
    with caplog.at_level(logging.ERROR):
        assert domain.is_uri_host_local(ctx) == -1
    assert "branch is missing, error in script" in caplog.text
    ctx.branches.append(Branch("sip:v@x.test"))
    assert domain.is_uri_host_local(ctx) == -1
    ctx.branches.insert(0, Branch("sip:v@alt.test"))
    assert domain.is_uri_host_local(ctx) == 1


def test_lookup_domain_sets_attributes(url: str) -> None:
    ctx = invite(url, "sip:u@x.test")
    assert domain.lookup_domain(ctx, "local.test") == 1
    assert ctx.avps == {"did": ["d1"], "color": ["red", "blue"], "num": [42]}
    ctx = invite(url, "sip:u@x.test")
    assert domain.lookup_domain(ctx, "ALT.test", "p_") == 1
    assert ctx.avps == {"p_did": ["d1"], "p_color": ["red", "blue"], "p_num": [42]}
    ctx = invite(url, "sip:u@x.test")
    assert domain.lookup_domain(ctx, "example.com") == 1
    assert ctx.avps == {"did": ["Example.COM"], "color": ["green"]}
    ctx = invite(url, "sip:u@x.test")
    assert domain.lookup_domain(ctx, "nope.test") == -1
    assert ctx.avps == {}


def test_register_myself(url: str) -> None:
    ctx = invite(
        url, "sip:u@example.com:7777", "sip:a@local.test", params={"domain__register_myself": 1}
    )
    assert kw.uri_is_myself(ctx, "sip:u@example.com:7777") == 1
    assert kw.uri_is_myself(ctx, kw.from_uri(ctx)) == 1
    assert kw.uri_is_myself(ctx, "sip:u@nope.test") == 0
    # the received socket is myself whatever the table
    assert kw.uri_is_myself(ctx, "sip:u@127.0.0.1:5060") == 1
    # without register_myself the table is not consulted
    ctx = invite(url, "sip:u@example.com", "sip:a@local.test")
    assert kw.uri_is_myself(ctx, "sip:u@example.com") == 0
    assert kw.ip_is_myself(ctx, "example.com") == 0


def test_the_table_is_cached_until_reload(url: str) -> None:
    ctx = invite(url, "sip:u@x.test")
    assert domain.is_domain_local(ctx, "new.test") == -1
    conn = sqlite3.connect(db.sqlite_path(url))
    conn.execute("INSERT INTO domain (domain, did) VALUES ('new.test', NULL)")
    conn.commit()
    assert domain.is_domain_local(ctx, "new.test") == -1
    domain.reload_domains()
    assert domain.is_domain_local(ctx, "new.test") == 1
    # a reload that fails keeps the table loaded before
    conn.execute("INSERT INTO domain (domain, did) VALUES ('', NULL)")
    conn.commit()
    conn.close()
    domain.reload_domains()
    assert domain.is_domain_local(ctx, "new.test") == 1


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (("d2", "", 2, "x"), "name at row <0> is empty string"),
        (("d2", "n", 1, "x"), "unknown type <1> at row <0>"),
        (("d2", "n", 0, "4x"), "value at row <0> is invalid int"),
        (("", "n", 2, "x"), "did at row <0> is empty string"),
    ],
)
def test_bad_attribute_rows_fail_the_load(
    tmp_path: Path, row: tuple[str, str, int, str], error: str
) -> None:
    path = str(tmp_path / "bad.db")
    db.create_tables(path, ("domain", "domain_attrs"))
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO domain_attrs (did, name, type, value) VALUES (?,?,?,?)", row)
    conn.commit()
    conn.close()
    with pytest.raises(domain.DomainError, match=error):
        domain.load_domains(f"sqlite://{path}")


def test_no_database_makes_every_check_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = invite(f"sqlite://{tmp_path}/missing.db", "sip:u@example.com", "sip:a@example.com")
    with caplog.at_level(logging.ERROR):
        assert domain.is_domain_local(ctx, "example.com") == -1
        assert domain.is_from_local(ctx) == -1
    assert "domain reload failed" in caplog.text
