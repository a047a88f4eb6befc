"""Authentication on the stock Kamailio config over SQLite (issue 7, point 3's acceptance):
Debian's ``/etc/kamailio/kamailio.cfg`` (Kamailio 5.6) with ``WITH_MYSQL`` and
``WITH_AUTH`` (and a second run adding ``WITH_IPAUTH`` and ``WITH_USRLOCDB``), run in
real Kamailio and as the proxy ``kcc build`` makes of it, children 1 and 2, with the
same exact expectations (Kamailio is the oracle: every value asserted here was first
measured against Kamailio 5.6.3 by this file's Kamailio parametrization, or by hand with
the same cfg and a Python UDP client).

**The config.** The stock file is GPL and never copied into the repository: each test
run derives its copy from the installed file, changing exactly the two lines
docs/stock-config.md tells users to change (:func:`sqlite_cfg`): ``loadmodule
"db_mysql.so"`` becomes ``loadmodule "db_sqlite.so"`` and the ``DBURL`` define's value
becomes ``"sqlite:///<test dir>/kamailio.db"``. The switches are given on the command
line (``-A NAME`` to Kamailio, ``-D NAME`` to ``kcc build``). Kamailio's db_sqlite
opens ``sqlite:///path`` relative to its working directory, so Kamailio runs with
``-w /`` (measured); kcc reads the same URL as the absolute path.

**The database** (:func:`make_database`) is made as kamdbctl would
(``kcc_runtime.db.create_tables``; the ``location`` table by usrloc's own store, used
with ``WITH_USRLOCDB``): ``subscriber`` rows for alice and bob with plain passwords in
the ``password`` column (the stock cfg sets ``calculate_ha1`` and ``password_column
"password"``) and domain ``127.0.0.1``, and one ``address`` row, 127.0.0.2/32 in group
1, for ``WITH_IPAUTH``'s ``allow_source_address()``.

**What route[AUTH] does** (stock cfg): for a REGISTER, or a request whose From is
``myself``, ``auth_check("$fd", "subscriber", "1")``; on failure
``auth_challenge("$fd", "0")`` and exit; after success ``consume_credentials()``
(not for REGISTER). Measured on Kamailio 5.6.3:

- the realm is ``$fd``, the From host: ``127.0.0.1`` (no port); flags 0: no qop;
- the challenge is statelessly sent (no transaction yet), the header after CSeq:
  ``WWW-Authenticate: Digest realm="127.0.0.1", nonce="<32 base64 chars>"`` on
  ``401 Unauthorized`` for a REGISTER, ``Proxy-Authenticate`` on ``407 Proxy
  Authentication Required`` for an INVITE; the nonce is ``expire since MD5`` with
  ``expire - since`` = 300 (auth's default ``nonce_expire``);
- a wrong password (auth_check -2) and an unknown user (-3) are challenged again: a
  new 401;
- the stock cfg sets neither ``nonce_count`` nor ``one_time_nonce``, so a nonce may be
  used again while it has not expired: the same ``Authorization`` sent twice is
  accepted twice (200, 200). Replay refusal is therefore tested on a variant of the
  derived cfg with one more line, ``modparam("auth", "one_time_nonce", 1)``: the nonce
  grows to 40 characters (a nonce id and the flags byte 0x40 follow the MD5), the
  first use gets 200 and the second a fresh 401 (auth_check -6, then route[AUTH]'s
  challenge);
- with ``WITH_IPAUTH``, a non-REGISTER request from a source in the ``address`` table
  (127.0.0.2) skips authentication (an INVITE to a user nobody registered gets the
  stateful 404 of route[LOCATION]); a REGISTER from it is still challenged.

SIPp's ``[authentication]`` (``-au``/``-ap``) answers the challenges: alice and bob
register (401 then 200), alice calls bob (407, ACK, INVITE with
``Proxy-Authorization``), and bob receives the INVITE without the credentials
(``consume_credentials``), with the proxy's Record-Route.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kcc_runtime.db import create_tables
from kcc_runtime.location import LocationStore

from tests.integration.conftest import (
    IMPL_CHILDREN,
    STOCK_CFG,
    RunningProxy,
    Services,
    SipReply,
    distinct,
    free_udp_ports,
    impl_children_id,
    module_services,
    needs_sipp,
    needs_stock_cfg,
    parse_reply,
    run_sipp,
    sipp_trace,
    start_proxy_cfg,
    start_uas,
    stop_uas,
)

pytestmark = [needs_sipp, needs_stock_cfg]

PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
#: the realm route[AUTH] uses: $fd, the From URI's host
REALM = "127.0.0.1"
#: the source address the address table trusts (WITH_IPAUTH)
TRUSTED_IP = "127.0.0.2"
#: auth's default nonce_expire (the stock cfg does not set it)
NONCE_EXPIRE = 300
#: the header order of the challenges (sl's stateless reply, the auth header lump
#: after CSeq; measured)
CHALLENGE_HEADERS = (
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "{auth}",
    "server",
    "content-length",
)
#: the line the one-time-nonce variant adds after the stock cfg's auth_db modparams
ONE_TIME_NONCE = 'modparam("auth", "one_time_nonce", 1)\n'
EXPIRES = 600


# -- the derived cfg and its database ---------------------------------------------------


def sqlite_cfg(text: str, db_path: Path) -> str:
    """The stock cfg with the two lines docs/stock-config.md names changed: the
    db_mysql ``loadmodule`` and the ``DBURL`` define (each found by pattern, each
    exactly once), nothing else."""
    text, loads = re.subn(
        r'^loadmodule "db_mysql\.so"$', 'loadmodule "db_sqlite.so"', text, flags=re.MULTILINE
    )
    assert loads == 1, f"{loads} db_mysql loadmodule lines in {STOCK_CFG}"
    text, urls = re.subn(
        r'^(#!(?:trydef|define) DBURL )"mysql://[^"]*"$',
        lambda match: f'{match.group(1)}"sqlite://{db_path}"',
        text,
        flags=re.MULTILINE,
    )
    assert urls == 1, f"{urls} DBURL defines in {STOCK_CFG}"
    return text


def with_one_time_nonce(text: str) -> str:
    """The derived cfg plus ``one_time_nonce`` after the auth_db modparams."""
    anchor = 'modparam("auth_db", "use_domain", MULTIDOMAIN)\n'
    assert text.count(anchor) == 1
    return text.replace(anchor, anchor + ONE_TIME_NONCE)


def make_database(path: Path, *, location: bool) -> None:
    """Kamailio's tables in a new SQLite file: subscribers alice and bob, the trusted
    address, and with ``location`` usrloc's table (version 9)."""
    create_tables(str(path), ("subscriber", "address"))
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
            [(user, REALM, password) for user, password in PASSWORDS.items()],
        )
        conn.execute(
            "INSERT INTO address (grp, ip_addr, mask, port) VALUES (1, ?, 32, 0)", (TRUSTED_IP,)
        )
        conn.commit()
    finally:
        conn.close()
    if location:
        store = LocationStore(str(path))
        store.table("location")
        store.close()


#: variant -> (switches, one_time_nonce line added)
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "auth": (("WITH_MYSQL", "WITH_AUTH"), False),
    "ipauth-usrlocdb": (("WITH_MYSQL", "WITH_AUTH", "WITH_IPAUTH", "WITH_USRLOCDB"), False),
    "one-time-nonce": (("WITH_MYSQL", "WITH_AUTH"), True),
}


def start_variant(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, variant: str
) -> Iterator[RunningProxy]:
    impl, children = request.param
    defines, one_time = VARIANTS[variant]
    # a short directory name: Kamailio's RPC socket paths under it must stay below the
    # 108 bytes of a unix socket address (jsonrpcs refuses to start otherwise, measured)
    short = "".join(word[0] for word in variant.split("-"))
    with module_services(factory, f"auth-{short}-{impl[:3]}{children}") as group:
        db_path = group.workdir / "kamailio.db"
        make_database(db_path, location="WITH_USRLOCDB" in defines)
        text = sqlite_cfg(STOCK_CFG.read_text(encoding="utf-8"), db_path)
        if one_time:
            text = with_one_time_nonce(text)
        proxy = start_proxy_cfg(
            group,
            impl,
            "kamailio",
            text,
            children=children,
            defines=defines,
            kamailio_workdir=Path("/"),
        )
        yield RunningProxy(impl, children, proxy)


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def auth(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    """``WITH_MYSQL`` + ``WITH_AUTH`` on the derived cfg."""
    yield from start_variant(request, tmp_path_factory, "auth")


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def ipauth(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    """``WITH_IPAUTH`` and ``WITH_USRLOCDB`` too."""
    yield from start_variant(request, tmp_path_factory, "ipauth-usrlocdb")


@pytest.fixture(scope="module", params=IMPL_CHILDREN, ids=impl_children_id)
def one_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    """``WITH_MYSQL`` + ``WITH_AUTH`` with ``one_time_nonce`` on."""
    yield from start_variant(request, tmp_path_factory, "one-time-nonce")


# -- a raw UDP client computing digests ------------------------------------------------


class Peer:
    """A user agent on its own UDP socket (any 127/8 address) sending requests from
    ``user`` and reading the replies."""

    def __init__(self, proxy: RunningProxy, user: str, ip: str = "127.0.0.1") -> None:
        self.proxy = proxy
        self.user = user
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = int(self.sock.getsockname()[1])
        self.call_id = f"{secrets.token_hex(8)}@{ip}"
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(
        self, method: str, ruri: str, *, to_user: str, authorization: tuple[str, str] | None
    ) -> tuple[bytes, str]:
        """The bytes of a request of this peer's call (CSeq counting up) and its CSeq."""
        self.cseq += 1
        cseq = f"{self.cseq} {method}"
        auth = [f"{authorization[0]}: {authorization[1]}"] if authorization else []
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            f"From: <sip:{self.user}@{self.proxy.domain}>;tag=peer{self.port}",
            f"To: <sip:{to_user}@{self.proxy.domain}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq}",
            f"Contact: <sip:{self.user}@{self.ip}:{self.port}>",
            *auth,
            f"Expires: {EXPIRES}" if method == "REGISTER" else "Subject: kcc auth probe",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"), cseq

    def ask(
        self,
        method: str,
        *,
        to_user: str | None = None,
        authorization: tuple[str, str] | None = None,
    ) -> SipReply:
        """Send one request (REGISTER to the proxy's domain, others to ``to_user``) and
        return its final reply (a 100 is skipped), retransmitted every 0.5 s for up to
        3 s."""
        to_user = to_user or self.user
        ruri = (
            f"sip:{self.proxy.domain}"
            if method == "REGISTER"
            else f"sip:{to_user}@{self.proxy.domain}"
        )
        data, cseq = self.request(method, ruri, to_user=to_user, authorization=authorization)
        for _ in range(6):
            self.sock.sendto(data, ("127.0.0.1", self.proxy.port))
            self.sock.settimeout(0.5)
            try:
                while True:
                    reply = parse_reply(self.sock.recv(65535))
                    if reply is None or reply.one("cseq") != cseq or reply.status < 200:
                        continue
                    return reply
            except TimeoutError:
                continue
        raise AssertionError(f"no final reply to {method} ({cseq})\n{self.proxy.log()}")


@dataclass(frozen=True)
class Challenge:
    header: str
    realm: str
    nonce: str


def challenge_of(reply: SipReply, header: str) -> Challenge:
    """The digest challenge in ``header``, checked to have the stock cfg's shape: realm
    and nonce only (auth_challenge flags 0: no qop, no stale, MD5 unnamed)."""
    value = reply.one(header)
    assert value is not None, reply.raw
    match = re.fullmatch(r'Digest realm="([^"]*)", nonce="([A-Za-z0-9+/=]+)"', value)
    assert match is not None, value
    return Challenge(header, match.group(1), match.group(2))


def credentials(
    challenge: Challenge, user: str, password: str, method: str, uri: str
) -> tuple[str, str]:
    """The ``Authorization``/``Proxy-Authorization`` answering ``challenge`` (RFC 2617
    without qop: response = MD5(HA1:nonce:HA2)), computed here independently of the
    runtime."""
    ha1 = hashlib.md5(f"{user}:{challenge.realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{challenge.nonce}:{ha2}".encode()).hexdigest()
    name = "Proxy-Authorization" if challenge.header == "proxy-authenticate" else "Authorization"
    value = (
        f'Digest username="{user}", realm="{challenge.realm}", nonce="{challenge.nonce}", '
        f'uri="{uri}", response="{response}", algorithm=MD5'
    )
    return name, value


def check_challenge(reply: SipReply, *, register: bool, nonce_bytes: int = 24) -> Challenge:
    """A 401 (REGISTER) or 407 with the measured shape; the nonce decoded: ``expire``
    is ``since`` + 300, ``nonce_bytes`` long (24: times and MD5; 29 with a one-time
    nonce's id and flags byte)."""
    header = "www-authenticate" if register else "proxy-authenticate"
    if register:
        assert (reply.status, reply.reason) == (401, "Unauthorized"), reply.raw
    else:
        assert (reply.status, reply.reason) == (407, "Proxy Authentication Required"), reply.raw
    names = [name for name, _ in reply.headers]
    assert names == [n.format(auth=header) for n in CHALLENGE_HEADERS], names
    challenge = challenge_of(reply, header)
    assert challenge.realm == REALM
    raw = base64.b64decode(challenge.nonce, validate=True)
    assert len(raw) == nonce_bytes, challenge.nonce
    expire, since = struct.unpack(">II", raw[:8])
    assert expire - since == NONCE_EXPIRE
    return challenge


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    try:
        yield made
    finally:
        for peer in made:
            peer.close()


def peer(peers: list[Peer], proxy: RunningProxy, user: str, ip: str = "127.0.0.1") -> Peer:
    made = Peer(proxy, user, ip)
    peers.append(made)
    return made


# -- challenges -------------------------------------------------------------------------


def test_unauthenticated_register_gets_401(auth: RunningProxy, peers: list[Peer]) -> None:
    alice = peer(peers, auth, "alice")
    reply = alice.ask("REGISTER")
    check_challenge(reply, register=True)
    # the Via echoed with rport's value and received appended (a reply made here)
    assert re.fullmatch(
        rf"SIP/2\.0/UDP 127\.0\.0\.1:{alice.port};branch=z9hG4bK[0-9a-f]{{16}};"
        rf"rport={alice.port};received=127\.0\.0\.1",
        reply.one("via") or "",
    ), reply.one("via")
    assert reply.one("from") == f"<sip:alice@{auth.domain}>;tag=peer{alice.port}"
    assert re.fullmatch(rf"<sip:alice@{re.escape(auth.domain)}>;tag=\S+", reply.one("to") or "")


def test_unauthenticated_invite_gets_407(auth: RunningProxy, peers: list[Peer]) -> None:
    reply = peer(peers, auth, "alice").ask("INVITE", to_user="bob")
    check_challenge(reply, register=False)


def test_authenticated_register_then_wrong_password_and_unknown_user(
    auth: RunningProxy, peers: list[Peer]
) -> None:
    """The digest computed here is accepted (200 with the contact); the same with a
    wrong password gets a new challenge (auth_check -2), and so does a user the
    subscriber table does not have (-3)."""
    alice = peer(peers, auth, "alice")
    challenge = check_challenge(alice.ask("REGISTER"), register=True)
    uri = f"sip:{auth.domain}"
    good = credentials(challenge, "alice", PASSWORDS["alice"], "REGISTER", uri)
    ok = alice.ask("REGISTER", authorization=good)
    assert (ok.status, ok.reason) == (200, "OK"), ok.raw
    assert ok.all("contact") == [f"<sip:alice@127.0.0.1:{alice.port}>;expires={EXPIRES}"]
    wrong = credentials(challenge, "alice", "not-the-password", "REGISTER", uri)
    again = check_challenge(alice.ask("REGISTER", authorization=wrong), register=True)
    assert again.realm == REALM
    carol = peer(peers, auth, "carol")
    unknown = credentials(challenge, "carol", "whatever", "REGISTER", uri)
    check_challenge(carol.ask("REGISTER", authorization=unknown), register=True)


def test_nonce_reused_within_nonce_expire_is_accepted(
    auth: RunningProxy, peers: list[Peer]
) -> None:
    """The stock cfg has neither ``nonce_count`` nor ``one_time_nonce``: Kamailio
    accepts the same credentials again while the nonce has not expired (measured)."""
    alice = peer(peers, auth, "alice")
    challenge = check_challenge(alice.ask("REGISTER"), register=True)
    good = credentials(challenge, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{auth.domain}")
    assert alice.ask("REGISTER", authorization=good).status == 200
    assert alice.ask("REGISTER", authorization=good).status == 200


# -- SIPp's [authentication] ------------------------------------------------------------


def sipp_auth(user: str, password: str) -> list[str]:
    return ["-au", user, "-ap", password]


def register_with_sipp(services: Services, proxy: RunningProxy, user: str, port: int) -> None:
    """``user`` registers from SIPp on ``port``: 401, then 200 with its contact."""
    run = run_sipp(
        services,
        "stock_auth_register.xml",
        proxy.port,
        local_port=port,
        service=user,
        extra=sipp_auth(user, PASSWORDS[user]),
    )
    assert (run.returncode, run.successful, run.failed) == (0, 1, 0), f"{run.output}\n{proxy.log()}"
    challenge, ok = run.received()
    assert (challenge.status, challenge.one("cseq")) == (401, "1 REGISTER")
    assert re.fullmatch(
        rf'Digest realm="{REALM}", nonce="[A-Za-z0-9+/=]+"', challenge.one("www-authenticate")
    )
    assert (ok.status, ok.reason, ok.one("cseq")) == (200, "OK", "2 REGISTER")
    # the 200 lists every contact of the AOR (other tests of the proxy register alice
    # from other ports): the newest, this one, last
    (contacts,) = ok.all("contact")
    assert contacts.split(", ")[-1] == f"<sip:{user}@127.0.0.1:{port}>;expires={EXPIRES}"
    (sent,) = [m for m in run.messages if m.sent and m.one("cseq") == "2 REGISTER"]
    assert sent.one("authorization").startswith(f'Digest username="{user}",'), sent.headers


def register_and_call(proxy: RunningProxy, services: Services) -> None:
    """alice and bob register with SIPp's [authentication]; alice calls bob: 407, then
    the INVITE with Proxy-Authorization reaches bob without it (consume_credentials),
    with the proxy's Record-Route; ACK and BYE are loose-routed without a challenge."""
    alice_port, bob_port = free_udp_ports(2)
    register_with_sipp(services, proxy, "alice", alice_port)
    register_with_sipp(services, proxy, "bob", bob_port)
    bob = start_uas(services, bob_port, "stock_uas.xml", trace_msg=True)
    call = run_sipp(
        services,
        "stock_auth_call.xml",
        proxy.port,
        local_port=alice_port,
        service="bob",
        extra=sipp_auth("alice", PASSWORDS["alice"]),
    )
    stop_uas(bob)
    assert (call.returncode, call.successful, call.failed) == (0, 1, 0), (
        f"{call.output}\n{proxy.log()}"
    )
    at_alice = distinct(call.received())
    assert [(m.status, m.one("cseq")) for m in at_alice] == [
        (407, "1 INVITE"),
        (100, "2 INVITE"),
        (180, "2 INVITE"),
        (200, "2 INVITE"),
        (200, "3 BYE"),
    ]
    assert at_alice[0].reason == "Proxy Authentication Required"
    sent_invite = next(m for m in call.messages if m.sent and m.one("cseq") == "2 INVITE")
    assert sent_invite.one("proxy-authorization").startswith('Digest username="alice",')

    assert bob.messages_log is not None
    at_bob = distinct([m for m in sipp_trace(bob.messages_log) if not m.sent])
    assert [(m.method, m.one("cseq")) for m in at_bob] == [
        ("INVITE", "2 INVITE"),
        ("ACK", "2 ACK"),
        ("BYE", "3 BYE"),
    ]
    invite = at_bob[0]
    assert invite.ruri == f"sip:bob@127.0.0.1:{bob_port}"
    assert invite.all("record-route") == [f"<sip:{proxy.domain};lr>"]
    assert invite.all("proxy-authorization") == []
    assert invite.all("authorization") == []


def test_sipp_users_register_and_call_with_authentication(
    auth: RunningProxy, services: Services
) -> None:
    register_and_call(auth, services)


def test_sipp_wrong_password_is_challenged_again(auth: RunningProxy, services: Services) -> None:
    (port,) = free_udp_ports(1)
    run = run_sipp(
        services,
        "stock_auth_register_refused.xml",
        auth.port,
        local_port=port,
        service="alice",
        extra=sipp_auth("alice", "not-the-password"),
    )
    assert (run.returncode, run.successful, run.failed) == (0, 1, 0), f"{run.output}\n{auth.log()}"
    first, second = run.received()
    assert [(m.status, m.one("cseq")) for m in (first, second)] == [
        (401, "1 REGISTER"),
        (401, "2 REGISTER"),
    ]
    # a fresh challenge each time: without nonce_count/one_time_nonce the nonce is
    # the same within one second, so only the shape is compared
    for reply in (first, second):
        assert re.fullmatch(
            rf'Digest realm="{REALM}", nonce="[A-Za-z0-9+/]{{32}}"', reply.one("www-authenticate")
        )


# -- replay refusal (one_time_nonce) ----------------------------------------------------


def test_replayed_one_time_nonce_is_refused(one_time: RunningProxy, peers: list[Peer]) -> None:
    alice = peer(peers, one_time, "alice")
    challenge = check_challenge(alice.ask("REGISTER"), register=True, nonce_bytes=29)
    # the flags byte: one-time nonce (0x40), pool 0
    assert base64.b64decode(challenge.nonce)[-1] == 0x40
    good = credentials(challenge, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{one_time.domain}")
    assert alice.ask("REGISTER", authorization=good).status == 200
    replayed = check_challenge(
        alice.ask("REGISTER", authorization=good), register=True, nonce_bytes=29
    )
    assert replayed.nonce != challenge.nonce
    # an INVITE replaying its nonce too: 407 again
    invite = check_challenge(alice.ask("INVITE", to_user="carol"), register=False, nonce_bytes=29)
    answer = credentials(
        invite, "alice", PASSWORDS["alice"], "INVITE", f"sip:carol@{one_time.domain}"
    )
    first = alice.ask("INVITE", to_user="carol", authorization=answer)
    assert (first.status, first.reason) == (404, "Not Found"), first.raw
    check_challenge(
        alice.ask("INVITE", to_user="carol", authorization=answer), register=False, nonce_bytes=29
    )


def test_sipp_register_with_one_time_nonce(one_time: RunningProxy, services: Services) -> None:
    (port,) = free_udp_ports(1)
    register_with_sipp(services, one_time, "alice", port)


# -- WITH_IPAUTH and WITH_USRLOCDB ------------------------------------------------------


def test_ipauth_usrlocdb_register_and_call(ipauth: RunningProxy, services: Services) -> None:
    register_and_call(ipauth, services)


def test_trusted_address_skips_authentication(ipauth: RunningProxy, peers: list[Peer]) -> None:
    """``allow_source_address()`` (group 1): an INVITE from 127.0.0.2 is not
    challenged (carol is not registered: 404), one from 127.0.0.1 is; a REGISTER is
    challenged whatever its source."""
    trusted = peer(peers, ipauth, "alice", TRUSTED_IP)
    reply = trusted.ask("INVITE", to_user="carol")
    assert (reply.status, reply.reason) == (404, "Not Found"), reply.raw
    check_challenge(trusted.ask("REGISTER"), register=True)
    other = peer(peers, ipauth, "alice")
    check_challenge(other.ask("INVITE", to_user="carol"), register=False)


# -- kcc check and kcc build on the unmodified file ------------------------------------


def kcc(command: str, cfg: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    """``kcc COMMAND cfg ARGS --format json``: the exit code and the diagnostics (an
    exit other than 0 and 1, a crash or a usage error, fails the test with stderr)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kcc")), command, str(cfg), "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout) if done.stdout.strip() else []
    return done.returncode, found


def check_database_finding(finding: dict[str, Any]) -> None:
    """The finding names the driver, the fix (db_sqlite and the URL form) and points at
    the two lines to change: the URL's define (a note: the primary span is its use in
    auth_db's modparam) and the driver's loadmodule (a label)."""
    assert finding["message"] == "database driver `mysql` is not supported by the kcc runtime"
    assert finding["help"] == "load `db_sqlite.so` and give a `sqlite:///path/to/kamailio.db` URL"
    text = STOCK_CFG.read_text(encoding="utf-8").splitlines()
    assert text[finding["line"] - 1] == 'modparam("auth_db", "db_url", DBURL)'
    (define,) = [n for n in finding["notes"] if n.startswith("expanded from")]
    where = re.fullmatch(rf"expanded from `DBURL`, defined at {STOCK_CFG}:(\d+):10", define)
    assert where is not None, define
    assert text[int(where.group(1)) - 1].startswith('#!trydef DBURL "mysql://')
    (label,) = finding["labels"]
    assert label["text"] == "the driver module to replace with `db_sqlite.so`"
    assert text[label["line"] - 1] == 'loadmodule "db_mysql.so"'


def test_kcc_check_tells_the_unmodified_file_what_to_change(tmp_path: Path) -> None:
    """``kcc check`` answers as ``kamailio -c`` does (the config is valid: exit 0, no
    error) and warns W0904 with the fix; ``kcc build`` refuses it with E0904, the same
    finding as an error (the warning replaced); the derived copy is clean."""
    defines = ("-DWITH_MYSQL", "-DWITH_AUTH")
    code, diagnostics = kcc("check", STOCK_CFG, *defines)
    assert code == 0
    assert [(d["code"], d["severity"]) for d in diagnostics] == [("W0904", "warning")]
    (warning,) = diagnostics
    check_database_finding(warning)
    assert "Kamailio accepts it; `kcc build` refuses it (E0904)" in warning["notes"]

    code, diagnostics = kcc("build", STOCK_CFG, *defines, "-o", str(tmp_path / "stock.py"))
    assert code == 1
    assert [(d["code"], d["severity"]) for d in diagnostics] == [("E0904", "error")]
    check_database_finding(diagnostics[0])
    assert not (tmp_path / "stock.py").exists()

    derived = tmp_path / "kamailio.cfg"
    derived.write_text(
        sqlite_cfg(STOCK_CFG.read_text(encoding="utf-8"), tmp_path / "kamailio.db"), "utf-8"
    )
    everything = (*defines, "-DWITH_IPAUTH", "-DWITH_USRLOCDB")
    assert kcc("check", derived, *everything) == (0, [])
