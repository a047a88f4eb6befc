"""auth, auth_db and the SQLite DB layer: digest vectors, nonces, return codes and
challenges.

Expected nonces, headers and codes were measured on Kamailio 5.6.3 with
``db_sqlite`` (``modparam("auth", "secret", "0123456789abcdef")``, a subscriber
``alice``/``secret1`` in realm 127.0.0.1, ``calculate_ha1`` 1, a Python UDP client);
the clock is injected so the same nonces come out here.
"""

from __future__ import annotations

import base64
import multiprocessing
import re
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from kcc_runtime import db, pv
from kcc_runtime.context import Context, RequestContext
from kcc_runtime.modules import auth, auth_db

from tests.runtime.fake_engine import FakeEngine, make_ctx

SECRET = "0123456789abcdef"
#: the time of the measured nonces (since), and the nonces Kamailio sent then
T0 = 1795698113
NONCE_T0 = "awgu7WsILcGl5jUFJuxu2YGVRtZi/Qhj"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock(T0)
    auth.reset_tables(now=c, secret=b"r" * 64)
    yield c
    auth.reset_tables()


@pytest.fixture
def dbfile(tmp_path: Path) -> str:
    path = str(tmp_path / "k.db")
    db.create_tables(path, ("subscriber", "address"))
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)",
        (
            "alice",
            "127.0.0.1",
            "secret1",
            auth.calc_ha1("MD5", "alice", "127.0.0.1", "secret1"),
            auth.calc_ha1("MD5", "alice@127.0.0.1", "127.0.0.1", "secret1"),
        ),
    )
    conn.commit()
    conn.close()
    return path


def request(
    method: str = "REGISTER",
    credentials: str | None = None,
    header: str = "Authorization",
    to_user: str = "alice",
    body: str = "",
) -> bytes:
    lines = [
        f"{method} sip:127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1",
        "From: <sip:alice@127.0.0.1>;tag=a",
        f"To: <sip:{to_user}@127.0.0.1>",
        "Call-ID: c1",
        f"CSeq: 1 {method}",
    ]
    if credentials is not None:
        lines.append(f"{header}: {credentials}")
    lines += [f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode()


def params(dbfile: str, **extra: int | str) -> dict[tuple[str, str], int | str]:
    out: dict[tuple[str, str], int | str] = {
        ("auth", "secret"): SECRET,
        ("auth_db", "db_url"): f"sqlite://{dbfile}",
        ("auth_db", "calculate_ha1"): 1,
        ("auth_db", "password_column"): "password",
    }
    for key, value in extra.items():
        module, _, name = key.partition("__")
        out[(module, name)] = value
    return out


def ctx_for(data: bytes, mp: dict[tuple[str, str], int | str]) -> tuple[Context, FakeEngine]:
    engine = FakeEngine()
    return make_ctx(data, RequestContext, engine, modparams=mp), engine


def digest(
    nonce: str,
    *,
    password: str = "secret1",
    method: str = "REGISTER",
    qop: str | None = None,
    nc: str = "00000001",
    algorithm: str = "MD5",
    user: str = "alice",
) -> str:
    ha1 = auth.calc_ha1(algorithm, user, "127.0.0.1", password)
    uri = "sip:127.0.0.1"
    response = auth.calc_response(
        algorithm,
        ha1,
        nonce=nonce,
        nc=nc if qop else "",
        cnonce="abc" if qop else "",
        qop=qop or "",
        method=method,
        uri=uri,
    )
    out = f'Digest username="{user}", realm="127.0.0.1", nonce="{nonce}", uri="{uri}", '
    out += f'response="{response}"'
    if qop:
        out += f', qop={qop}, nc={nc}, cnonce="abc"'
    return out


def challenge(
    mp: dict[tuple[str, str], int | str], method: str = "REGISTER", flags: int = 1
) -> str:
    ctx, _ = ctx_for(request(method), mp)
    assert auth.auth_challenge(ctx, "127.0.0.1", flags) == 1
    (line,) = ctx.reply_lumps
    found = re.search(r'nonce="([^"]+)"', line)
    assert found is not None
    return found.group(1)


# -- digest arithmetic -------------------------------------------------------------


def test_rfc2617_section_3_5_vector() -> None:
    ha1 = auth.calc_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert ha1 == "939e7578ed9e3c518a452acee763bce9"
    response = auth.calc_response(
        "MD5",
        ha1,
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc="00000001",
        cnonce="0a4f113b",
        qop="auth",
        method="GET",
        uri="/dir/index.html",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_vectors(algorithm: str, expected: str) -> None:
    ha1 = auth.calc_ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    response = auth.calc_response(
        algorithm,
        ha1,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        qop="auth",
        method="GET",
        uri="/dir/index.html",
    )
    assert response == expected


def test_parse_credentials() -> None:
    cred = auth.parse_credentials(
        'Digest username="bob@example.com",realm="r", nonce="n", uri="sip:x", '
        'response="abc", qop=auth, nc=00000001, cnonce="c\\"d", algorithm=MD5, opaque=""'
    )
    assert cred is not None
    assert (cred.user, cred.user_domain, cred.realm, cred.qop, cred.nc) == (
        "bob",
        "example.com",
        "r",
        "auth",
        "00000001",
    )
    assert cred.cnonce == 'c"d'
    assert cred.complete()
    assert auth.parse_credentials("Basic YWxhZGRpbjpvcGVuc2VzYW1l") is None
    with pytest.raises(ValueError, match="bad digest parameter"):
        auth.parse_credentials('Digest username="unterminated')


# -- nonces and challenges, as measured ------------------------------------------------


def test_challenge_header_and_nonce_are_kamailios(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile)
    ctx, engine = ctx_for(request(), mp)
    assert auth.auth_challenge(ctx, "127.0.0.1", 1) == 1
    assert ctx.reply_lumps == [
        f'WWW-Authenticate: Digest realm="127.0.0.1", nonce="{NONCE_T0}", qop="auth"\r\n'
    ]
    assert engine.calls == [("has_transaction",), ("send_reply", 401, "Unauthorized")]


def test_proxy_challenge_for_invite_and_stateful_reply(clock: Clock, dbfile: str) -> None:
    ctx, engine = ctx_for(request("INVITE"), params(dbfile))
    engine.transaction = True
    assert auth.auth_challenge(ctx, "127.0.0.1", 1) == 1
    assert ctx.reply_lumps[0].startswith('Proxy-Authenticate: Digest realm="127.0.0.1", nonce="')
    assert engine.calls[-1] == ("t_reply", 407, "Proxy Authentication Required")


@pytest.mark.parametrize(
    ("flags", "tail"),
    [
        (16, ", stale=true"),
        (2, ', qop="auth-int"'),
        (0, ""),
        (3, ', qop="auth-int"'),
        (4, ""),
        (17, ', qop="auth", stale=true'),
    ],
)
def test_challenge_flags(clock: Clock, dbfile: str, flags: int, tail: str) -> None:
    ctx, _ = ctx_for(request(), params(dbfile))
    assert auth.www_challenge(ctx, "127.0.0.1", flags) == 1
    assert ctx.reply_lumps == [
        f'WWW-Authenticate: Digest realm="127.0.0.1", nonce="{NONCE_T0}"{tail}\r\n'
    ]


def test_sha256_challenge_names_the_algorithm(clock: Clock, dbfile: str) -> None:
    clock.now = 1795698133
    ctx, _ = ctx_for(request(), params(dbfile, auth__algorithm="SHA-256"))
    assert auth.www_challenge(ctx, "127.0.0.1", 17) == 1
    assert ctx.reply_lumps == [
        'WWW-Authenticate: Digest realm="127.0.0.1", nonce="awgvAWsILdVSmtzEtGlxtW7Bo3ssgwHl", '
        'qop="auth", stale=true, algorithm=SHA-256\r\n'
    ]


def test_nonce_count_nonce_carries_id_and_flags(dbfile: str) -> None:
    # measured: nonce "awgu/WsILdFzB7poG00SQpo5qcjilYQ/d1ek3IA=" at 1795698129, id 0x7757a4dc
    auth.reset_tables(now=lambda: 1795698129, nid_start=0x7757A4DC - auth.NID_INC)
    try:
        mp = params(dbfile, auth__nonce_count=1, auth__qop="auth")
        assert challenge(mp) == "awgu/WsILdFzB7poG00SQpo5qcjilYQ/d1ek3IA="
    finally:
        auth.reset_tables()


def test_one_time_nonce_flag_byte(dbfile: str) -> None:
    auth.reset_tables(now=lambda: 1795698131, nid_start=0x2B806E4B - auth.NID_INC)
    try:
        mp = params(dbfile, auth__one_time_nonce=1)
        assert challenge(mp) == "awgu/2sILdO/8SX4XEEFn/Q/VaSTdO+jK4BuS0A="
    finally:
        auth.reset_tables()


def test_empty_realm_sends_500_unless_flag_4(clock: Clock, dbfile: str) -> None:
    ctx, engine = ctx_for(request(), params(dbfile))
    assert auth.www_challenge(ctx, "", 1) == -1
    assert engine.calls[-1] == ("send_reply", 500, "Internal Server Error")
    ctx, engine = ctx_for(request(), params(dbfile))
    assert auth.www_challenge(ctx, "", 4) == -1
    assert engine.calls == []


# -- auth_check return codes, as measured ----------------------------------------------


def test_auth_check_codes(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile)
    nonce = challenge(mp)

    def check(data: bytes) -> int:
        ctx, _ = ctx_for(data, mp)
        return auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1)

    assert check(request()) == auth.AUTH_NO_CREDENTIALS
    assert check(request(credentials=digest(nonce))) == auth.AUTH_OK
    assert check(request(credentials=digest(nonce, password="wrong"))) == -2
    assert check(request(credentials=digest(nonce, qop="auth"))) == 1
    carol = digest(nonce, user="carol", password="x")
    assert check(request(credentials=carol, to_user="alice")) == -3
    other = digest(nonce).replace('realm="127.0.0.1"', 'realm="other"')
    assert check(request(credentials=other)) == -5
    assert check(request(credentials=digest("garbage"))) == -1
    assert check(request(credentials='Digest username="alice", realm="127.0.0.1"')) == -1
    assert check(request(credentials=digest(nonce), to_user="bob")) == -8
    # INVITE: Proxy-Authorization is read, Authorization is not
    invite = digest(nonce, method="INVITE")
    assert check(request("INVITE", invite, header="Proxy-Authorization")) == 1
    assert check(request("INVITE", invite, header="Authorization")) == -5
    assert check(request("ACK")) == 1


def test_expired_and_pre_start_nonces_are_stale(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile)
    nonce = challenge(mp)
    clock.now = T0 + 300
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == 1
    clock.now = T0 + 301
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -4
    # a well-signed nonce made before the proxy started is stale too
    head = struct.pack(">II", T0 + 1000, T0 - 10)
    import hashlib

    old = base64.b64encode(head + hashlib.md5(head + SECRET.encode()).digest()).decode()
    ctx, _ = ctx_for(request(credentials=digest(old)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -4


def test_nonce_count_replay_is_stale(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth__nonce_count=1, auth__qop="auth")
    nonce = challenge(mp)
    codes = []
    for nc in ("00000001", "00000001", "00000002", "00000002", "000000ff", "00000100"):
        ctx, _ = ctx_for(request(credentials=digest(nonce, qop="auth", nc=nc)), mp)
        codes.append(auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1))
    assert codes == [1, -4, 1, -4, 1, -4]
    # without nc the nonce is checked like any other (measured: accepted, twice)
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == 1
    ctx, _ = ctx_for(request(credentials=digest(nonce, qop="auth", nc="0000000x")), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -1


def test_one_time_nonce_reuse(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth__one_time_nonce=1)
    nonce = challenge(mp)
    codes = []
    for _ in range(3):
        ctx, _ = ctx_for(request(credentials=digest(nonce, qop="auth")), mp)
        codes.append(auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1))
    assert codes == [1, -6, -6]


def _use_nonce(mp: dict[tuple[str, str], int | str], nonce: str, out: object) -> None:
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    out.put(auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1))  # type: ignore[attr-defined]


def test_one_time_nonce_is_shared_by_forked_workers(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth__one_time_nonce=1)
    nonce = challenge(mp)
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_use_nonce, args=(mp, nonce, queue))
    child.start()
    child.join(10)
    assert queue.get(timeout=5) == 1
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -6


def test_sha256_response_length(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth__algorithm="SHA-256")
    nonce = challenge(mp)
    ctx, _ = ctx_for(request(credentials=digest(nonce, algorithm="SHA-256")), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == 1
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -1


def test_stored_ha1_columns(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile)
    del mp[("auth_db", "calculate_ha1")]
    del mp[("auth_db", "password_column")]
    nonce = challenge(mp)
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.www_authorize(ctx, "127.0.0.1", "subscriber") == 1
    # username with @domain: ha1b, computed over the whole username
    with_domain = digest(nonce, user="alice@127.0.0.1")
    ctx, _ = ctx_for(request(credentials=with_domain), mp)
    assert auth_db.www_authorize(ctx, "127.0.0.1", "subscriber") == 1


def test_load_credentials_and_consume(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth_db__load_credentials="$avp(i:7)=ha1;domain")
    nonce = challenge(mp)
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == 1
    assert ctx.avps[7] == [auth.calc_ha1("MD5", "alice", "127.0.0.1", "secret1")]
    assert ctx.avps["domain"] == ["127.0.0.1"]
    assert auth.has_credentials(ctx, "127.0.0.1") == 1
    assert auth.has_credentials(ctx, "elsewhere") == -1
    assert auth.consume_credentials(ctx) == 1
    assert b"Authorization" not in ctx.msg.serialize()
    assert auth.consume_credentials(ctx) == -1


def test_pv_authenticate_and_challenge_avp(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile)
    nonce = challenge(mp)
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth.pv_www_authenticate(ctx, "127.0.0.1", "secret1", 0) == 1
    ctx, _ = ctx_for(request(credentials=digest(nonce, password="bad")), mp)
    assert auth.pv_www_authenticate(ctx, "127.0.0.1", "secret1", 4) == -2
    assert ctx.avps["digest_challenge"] == [
        f'WWW-Authenticate: Digest realm="127.0.0.1", nonce="{NONCE_T0}", qop="auth"\r\n'
    ]
    ha1 = auth.calc_ha1("MD5", "alice", "127.0.0.1", "secret1")
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth.pv_auth_check(ctx, "127.0.0.1", ha1, 1, 1) == 1
    ctx, _ = ctx_for(request(credentials=digest(nonce), to_user="bob"), mp)
    assert auth.pv_auth_check(ctx, "127.0.0.1", ha1, 1, 1) == -8


def test_auth_get_www_authenticate(clock: Clock, dbfile: str) -> None:
    ctx, _ = ctx_for(request(), params(dbfile))
    acc = pv.accessor("var", "h")
    assert auth.auth_get_www_authenticate(ctx, "127.0.0.1", 0, acc) == 1
    assert acc.get(ctx) == f'WWW-Authenticate: Digest realm="127.0.0.1", nonce="{NONCE_T0}"\r\n'


def test_is_subscriber(clock: Clock, dbfile: str) -> None:
    mp = params(dbfile, auth_db__load_credentials="password")
    ctx, _ = ctx_for(request(), mp)
    assert auth_db.is_subscriber(ctx, "sip:alice@127.0.0.1", "subscriber", 1) == 1
    assert ctx.avps["password"] == ["secret1"]
    assert auth_db.is_subscriber(ctx, "sip:alice@other", "subscriber", 1) == -1
    assert auth_db.is_subscriber(ctx, "sip:alice@other", "subscriber", 2) == 1
    assert auth_db.is_subscriber(ctx, "not a uri", "subscriber", 0) == -1


def test_database_errors_are_minus_one(clock: Clock, tmp_path: Path) -> None:
    mp = params(str(tmp_path / "missing.db"))
    nonce = challenge(mp)
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "subscriber", 1) == -1
    ctx, _ = ctx_for(request(credentials=digest(nonce)), mp)
    assert auth_db.auth_check(ctx, "127.0.0.1", "no_such_table", 1) == -1


# -- the DB layer ----------------------------------------------------------------------


def test_parse_db_url() -> None:
    url = db.parse_db_url("mysql://kamailio:kamailiorw@localhost:3306/kamailio")
    assert url == db.DbUrl("mysql", "kamailio", "kamailiorw", "localhost", 3306, "kamailio")
    assert db.parse_db_url("sqlite:///etc/kamailio/kamailio.db").database == (
        "etc/kamailio/kamailio.db"
    )
    assert db.sqlite_path("sqlite:///etc/kamailio/kamailio.db") == "/etc/kamailio/kamailio.db"
    assert db.sqlite_path("sqlite:////var/k.db") == "/var/k.db"
    for bad in ("nothing", "sqlite://", "mysql://h:99999/db"):
        with pytest.raises(db.DbError):
            db.parse_db_url(bad) if bad != "sqlite://" else db.sqlite_path(bad)
    with pytest.raises(db.DbError, match="use db_sqlite"):
        db.sqlite_path("mysql://kamailio@localhost/kamailio")


def test_create_tables_matches_kamailio_versions(tmp_path: Path) -> None:
    path = str(tmp_path / "k.db")
    db.create_tables(path)
    db.create_tables(path)  # idempotent
    conn = sqlite3.connect(path)
    versions = dict(conn.execute("SELECT table_name, table_version FROM version"))
    assert versions == {"version": 1, "subscriber": 7, "address": 6}
    cols = [row[1] for row in conn.execute("PRAGMA table_info(subscriber)")]
    assert cols == ["id", "username", "domain", "password", "ha1", "ha1b"]
    cols = [row[1] for row in conn.execute("PRAGMA table_info(address)")]
    assert cols == ["id", "grp", "ip_addr", "mask", "port", "tag"]
    conn.close()
    database = db.open_database(f"sqlite://{path}")
    assert database.table_version("subscriber") == 7
    with pytest.raises(ValueError, match="no schema"):
        db.create_tables(path, ("location_attrs",))
