"""The stock Kamailio config's remaining switches (issue 7, build item 5): ``WITH_PSTN``,
``WITH_VOICEMAIL``, ``WITH_BLOCK3XX``, ``WITH_BLOCK401407``, and over SQLite
``WITH_ALIASDB``, ``WITH_SPEEDDIAL``, ``WITH_MULTIDOMAIN``; each run in real Kamailio
5.6 and as the proxy ``kcc build`` makes, with the same exact expectations (Kamailio is
the oracle: every value asserted here was measured by this file's Kamailio runs).

The config is read from the installed package at test time (GPL: never copied into the
repository). Two derived copies, each change asserted to happen exactly once:

- *media* (``WITH_PSTN WITH_VOICEMAIL WITH_BLOCK3XX WITH_BLOCK401407``): the custom cfg
  variables the stock file leaves empty "to avoid misrouting" get loopback values, as
  its header tells a user to do: ``pstn.gw_ip`` / ``pstn.gw_port`` name a capture
  socket of the test standing in for the PSTN gateway, ``voicemail.srv_ip`` /
  ``voicemail.srv_port`` another standing in for the voicemail server.
- *database* (``WITH_MYSQL WITH_ALIASDB WITH_SPEEDDIAL WITH_MULTIDOMAIN``): the two-line
  change of docs/stock-config.md, ``loadmodule "db_mysql.so"`` -> ``"db_sqlite.so"`` and
  ``DBURL`` -> ``"sqlite:///<tmp>/kamailio.db"``; the database is made before the proxy
  starts (Kamailio's domain module reads its tables at start) with Kamailio's schemas
  (:func:`kcc_runtime.db.create_tables`). Kamailio runs with ``-w /`` so that
  ``sqlite:///abs/path`` is that absolute file (measured). ``WITH_MULTIDOMAIN`` makes
  ``use_domain`` 1 for alias_db and speeddial (the R-URI's and the From's host are
  keys) and ``register_myself`` 1 (``uri==myself`` holds for a domain of the table).

Raw UDP sockets play every party (simpler than SIPp for one request each): the caller,
a callee that registers its own address and answers with a chosen status, and the
capture sockets (gateway, voicemail, a foreign host), which answer every INVITE with
``480 Probe Capture`` so that each transaction ends at once. One proxy per
(implementation, switch set), module-scoped; each test uses users and numbers of its own.

What is checked, per route of the stock cfg:

- ``route[PSTN]``: ``sip:0049301234@<proxy>`` from a local user (``from_uri==myself``)
  has its ``00`` replaced by ``+`` and goes to ``sip:+49301234@<gw_ip>:<gw_port>``; from
  a foreign domain it gets ``403 Not Allowed``.
- ``route[TOVOICEMAIL]``: a call to an unregistered user goes to
  ``sip:<user>@<srv_ip>:<srv_port>`` instead of 404; a callee answering 486 is
  replaced by the voicemail server in ``failure_route[MANAGE_FAILURE]``.
- ``WITH_BLOCK3XX`` / ``WITH_BLOCK401407``: a 302, 401 or 407 from the callee becomes
  ``404 Not found`` (``t_reply`` in MANAGE_FAILURE).
- ``WITH_SPEEDDIAL``: ``sip:11@example.com`` from ``alice@example.com`` becomes the
  entry's ``new_uri``; ``WITH_ALIASDB``: ``sip:al@example.com`` becomes
  ``sip:bob@<capture>``; both then leave through ``route[SIPOUT]`` (``P-Hint:
  outbound``). ``WITH_MULTIDOMAIN``: ``sip:carol@example.com`` (a table domain) is
  local: ``404 Not Found`` from ``route[LOCATION]``; a host that is not local gets ``403 Not
  relaying`` from ``route[AUTH]`` (no WITH_AUTH: the proxy relays to no foreign
  domain); the same host reached through an alias or a speed dial does go out.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kcc_runtime.db import create_tables

from tests.integration.conftest import (
    IMPLS,
    STOCK_CFG,
    ParsedHead,
    RunningProxy,
    header_fields,
    module_services,
    needs_sipp,
    needs_stock_cfg,
    start_proxy_cfg,
)

pytestmark = [needs_sipp, needs_stock_cfg]

#: what a capture socket answers to every INVITE
CAPTURE_STATUS = (480, "Probe Capture")
#: seconds to wait for a message
WAIT = 3.0


# -- a minimal UDP user agent -------------------------------------------------------------


@dataclass(frozen=True)
class Message(ParsedHead):
    """A SIP message as received: start line, headers (lowercased names, compact
    forms expanded) in order, and where it came from."""

    start: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes
    source: tuple[str, int]


def parse(data: bytes, source: tuple[str, int]) -> Message | None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    lines = head.split("\r\n")
    if not lines[0].startswith("SIP/2.0 ") and not lines[0].endswith(" SIP/2.0"):
        return None
    return Message(lines[0], header_fields(lines[1:]), data, source)


class Agent:
    """One UDP socket on 127.0.0.1 that sends requests and answers them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def receive(self, timeout: float = WAIT) -> Message | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                return None
            message = parse(data, source)
            if message is not None:
                return message
        return None

    def request(
        self,
        method: str,
        ruri: str,
        proxy_port: int,
        *,
        from_uri: str,
        to_uri: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> str:
        """Send one request to the proxy; returns its Call-ID."""
        call_id = f"{secrets.token_hex(8)}@127.0.0.1"
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.address};branch=z9hG4bK{secrets.token_hex(8)};rport",
            f"From: <{from_uri}>;tag={secrets.token_hex(4)}",
            f"To: <{to_uri or ruri}>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
            *(
                []
                if any(h.startswith("Contact:") for h in extra)
                else [f"Contact: <sip:agent@{self.address}>"]
            ),
            "Max-Forwards: 70",
            *extra,
            "Content-Length: 0",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        self.sock.sendto(data, ("127.0.0.1", proxy_port))
        return call_id

    def final_reply(self, call_id: str, timeout: float = WAIT) -> Message | None:
        """The first final reply for ``call_id`` (provisional ones skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                return None
            if (
                message.status is not None
                and message.status >= 200
                and message.all("call-id") == [call_id]
            ):
                return message
        return None

    def answer(self, request: Message, status: int, reason: str) -> None:
        """Reply to ``request`` where it came from (Vias, From, Call-ID, CSeq copied,
        a To-tag added)."""
        lines = [f"SIP/2.0 {status} {reason}"]
        for name, value in request.headers:
            if name in ("via", "from", "call-id", "cseq"):
                lines.append(f"{name.title()}: {value}")
            elif name == "to":
                lines.append(f"To: {value};tag={secrets.token_hex(4)}")
        if 300 <= status < 400:
            lines.append(f"Contact: <sip:moved@{self.address}>")
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), request.source)

    def no_invite(self, timeout: float = 0.3) -> bool:
        """No INVITE arrives within ``timeout`` (the ACKs of earlier calls' negative
        replies may)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                return True
            if message.method == "INVITE":
                return False
        return True

    def take_invite(self, status: int, reason: str) -> Message | None:
        """Wait for an INVITE, answer it, and return it (ACKs and retransmissions of
        earlier transactions are skipped)."""
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                return None
            if message.method == "INVITE":
                self.answer(message, status, reason)
                return message
        return None


def register(agent: Agent, proxy_port: int, user: str) -> None:
    """``user`` registers the agent's own address as its contact (the stock cfg has no
    auth without WITH_AUTH: ``save("location")`` answers 200)."""
    domain = f"127.0.0.1:{proxy_port}"
    call_id = agent.request(
        "REGISTER",
        f"sip:{domain}",
        proxy_port,
        from_uri=f"sip:{user}@{domain}",
        to_uri=f"sip:{user}@{domain}",
        extra=(f"Contact: <sip:{user}@{agent.address}>", "Expires: 600"),
    )
    reply = agent.final_reply(call_id)
    assert reply is not None and reply.status == 200, reply


# -- the proxies ----------------------------------------------------------------------------


def derive(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each key replaced by its value, each found exactly once."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the stock cfg no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Running(RunningProxy):
    #: capture sockets by role: gateway, voicemail, foreign
    captures: dict[str, Agent]


@contextlib.contextmanager
def capture_agents(*roles: str) -> Iterator[dict[str, Agent]]:
    """A capture socket per role, closed at the end."""
    agents = {role: Agent() for role in roles}
    try:
        yield agents
    finally:
        for agent in agents.values():
            agent.close()


@pytest.fixture(scope="module", params=IMPLS)
def media(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The stock cfg with WITH_PSTN, WITH_VOICEMAIL, WITH_BLOCK3XX, WITH_BLOCK401407."""
    impl = request.param
    with (
        capture_agents("gateway", "voicemail") as captures,
        module_services(tmp_path_factory, f"switch-media-{impl}") as group,
    ):
        gw, vm = captures["gateway"], captures["voicemail"]
        text = derive(
            STOCK_CFG.read_text(encoding="utf-8"),
            {
                'pstn.gw_ip = "" desc': 'pstn.gw_ip = "127.0.0.1" desc',
                'pstn.gw_port = "" desc': f'pstn.gw_port = "{gw.port}" desc',
                'voicemail.srv_ip = "" desc': 'voicemail.srv_ip = "127.0.0.1" desc',
                'voicemail.srv_port = "5060" desc': f'voicemail.srv_port = "{vm.port}" desc',
            },
        )
        proxy = start_proxy_cfg(
            group,
            impl,
            "kamailio",
            text,
            children=1,
            defines=("WITH_PSTN", "WITH_VOICEMAIL", "WITH_BLOCK3XX", "WITH_BLOCK401407"),
        )
        yield Running(impl, 1, proxy, captures)


@pytest.fixture(scope="module", params=IMPLS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The stock cfg over SQLite with WITH_ALIASDB, WITH_SPEEDDIAL, WITH_MULTIDOMAIN."""
    impl = request.param
    with (
        capture_agents("foreign") as captures,
        module_services(tmp_path_factory, f"switch-db-{impl}") as group,
    ):
        workdir = group.workdir
        foreign = captures["foreign"].address
        db_path = workdir / "kamailio.db"
        create_tables(str(db_path), ("dbaliases", "speed_dial", "domain", "domain_attrs"))
        with sqlite3.connect(db_path) as conn:
            conn.execute(
                "INSERT INTO dbaliases (alias_username, alias_domain, username, domain)"
                " VALUES ('al', 'example.com', 'bob', ?), ('al', 'other.org', 'eve', ?)",
                (foreign, foreign),
            )
            conn.execute(
                "INSERT INTO speed_dial (username, domain, sd_username, sd_domain, new_uri)"
                " VALUES ('alice', 'example.com', '11', '', ?),"
                " ('alice', 'other.org', '12', '', 'sip:nobody@127.0.0.9')",
                (f"sip:carol@{foreign};transport=udp",),
            )
            conn.execute("INSERT INTO domain (domain, did) VALUES ('example.com', NULL)")
        conn.close()
        text = derive(
            STOCK_CFG.read_text(encoding="utf-8"),
            {
                'loadmodule "db_mysql.so"': 'loadmodule "db_sqlite.so"',
                '#!trydef DBURL "mysql://kamailio:kamailiorw@localhost/kamailio"': (
                    f'#!trydef DBURL "sqlite://{db_path}"'
                ),
            },
        )
        proxy = start_proxy_cfg(
            group,
            impl,
            "kamailio",
            text,
            children=1,
            defines=("WITH_MYSQL", "WITH_ALIASDB", "WITH_SPEEDDIAL", "WITH_MULTIDOMAIN"),
            kamailio_workdir=Path("/"),
        )
        yield Running(impl, 1, proxy, captures)


@pytest.fixture
def agent() -> Iterator[Agent]:
    ua = Agent()
    try:
        yield ua
    finally:
        ua.close()


def call_to_capture(
    running: Running, caller: Agent, capture: str, ruri: str, from_uri: str
) -> tuple[Message, Message]:
    """The caller sends INVITE ``ruri``; the capture socket ``capture`` receives it
    and answers ``CAPTURE_STATUS``; returns (what the capture got, the caller's
    final reply)."""
    call_id = caller.request("INVITE", ruri, running.port, from_uri=from_uri)
    got = running.captures[capture].take_invite(*CAPTURE_STATUS)
    assert got is not None, f"no INVITE at the {capture}\n{running.log()}"
    final = caller.final_reply(call_id)
    assert final is not None, f"no final reply\n{running.log()}"
    return got, final


def final_reply(caller: Agent, running: Running, ruri: str, from_uri: str) -> Message:
    """The caller sends INVITE ``ruri``; returns its final reply (one the proxy makes
    itself when no capture socket takes the INVITE)."""
    call_id = caller.request("INVITE", ruri, running.port, from_uri=from_uri)
    final = caller.final_reply(call_id)
    assert final is not None, running.log()
    return final


def check_forwarded(got: Message, running: Running, final: Message) -> None:
    """Relayed by tm after record_route: the proxy's Record-Route and Via on top,
    Max-Forwards decremented; the capture's reply relayed back to the caller."""
    assert got.all("record-route") == [f"<sip:{running.domain};lr>"]
    assert got.one("max-forwards") == "69"
    assert len(got.all("via")) == 2 or "," in got.all("via")[0]
    assert (final.status, final.reason) == CAPTURE_STATUS


# -- WITH_PSTN ----------------------------------------------------------------------------


def test_pstn_number_goes_to_the_gateway(media: Running, agent: Agent) -> None:
    gw = media.captures["gateway"]
    got, final = call_to_capture(
        media,
        agent,
        "gateway",
        f"sip:0049301234@{media.domain}",
        f"sip:alice@{media.domain}",
    )
    # route[PSTN]: 00 -> + (strip(2); prefix("+")), then sip:$rU@gw_ip:gw_port
    assert got.ruri == f"sip:+49301234@{gw.address}"
    assert got.one("to") == f"<sip:0049301234@{media.domain}>"
    check_forwarded(got, media, final)


def test_pstn_call_from_a_foreign_domain_is_refused(media: Running, agent: Agent) -> None:
    final = final_reply(agent, media, f"sip:+4930555@{media.domain}", "sip:mallory@evil.example")
    assert (final.status, final.reason) == (403, "Not Allowed")
    assert media.captures["gateway"].no_invite()


# -- WITH_VOICEMAIL -----------------------------------------------------------------------


def test_unregistered_user_goes_to_voicemail(media: Running, agent: Agent) -> None:
    vm = media.captures["voicemail"]
    got, final = call_to_capture(
        media, agent, "voicemail", f"sip:nobody@{media.domain}", f"sip:alice@{media.domain}"
    )
    # route[LOCATION]: lookup fails, route(TOVOICEMAIL): sip:$avp(oexten)@srv_ip:srv_port
    assert got.ruri == f"sip:nobody@{vm.address}"
    check_forwarded(got, media, final)


def test_busy_callee_is_replaced_by_voicemail(media: Running, agent: Agent) -> None:
    callee = Agent()
    try:
        register(callee, media.port, "busyuser")
        call_id = agent.request(
            "INVITE",
            f"sip:busyuser@{media.domain}",
            media.port,
            from_uri=f"sip:alice@{media.domain}",
        )
        first = callee.take_invite(486, "Busy Here")
        assert first is not None, media.log()
        assert first.ruri == f"sip:busyuser@{callee.address}"
        got = media.captures["voicemail"].take_invite(*CAPTURE_STATUS)
        assert got is not None, media.log()
        final = agent.final_reply(call_id)
    finally:
        callee.close()
    # failure_route[MANAGE_FAILURE]: t_check_status("486|408") -> route(TOVOICEMAIL)
    # with the user looked up (oexten), then the voicemail's own reply goes back
    assert got.ruri == f"sip:busyuser@{media.captures['voicemail'].address}"
    assert final is not None, media.log()
    assert (final.status, final.reason) == CAPTURE_STATUS


# -- WITH_BLOCK3XX, WITH_BLOCK401407 --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(302, "Moved Temporarily"), (401, "Unauthorized"), (407, "Proxy Authentication Required")],
)
def test_redirect_and_auth_challenge_become_404(
    media: Running, agent: Agent, status: int, reason: str
) -> None:
    callee = Agent()
    user = f"callee{status}"
    try:
        register(callee, media.port, user)
        call_id = agent.request(
            "INVITE", f"sip:{user}@{media.domain}", media.port, from_uri=f"sip:alice@{media.domain}"
        )
        got = callee.take_invite(status, reason)
        assert got is not None, media.log()
        final = agent.final_reply(call_id)
    finally:
        callee.close()
    assert final is not None, media.log()
    # MANAGE_FAILURE: t_reply("404", "Not found"), a reply tm makes itself
    assert (final.status, final.reason) == (404, "Not found")
    assert final.all("contact") == []
    assert media.captures["voicemail"].no_invite()


# -- WITH_ALIASDB, WITH_SPEEDDIAL, WITH_MULTIDOMAIN -------------------------------------------


def test_speed_dial_entry_rewrites_the_ruri(database: Running, agent: Agent) -> None:
    foreign = database.captures["foreign"]
    got, final = call_to_capture(
        database, agent, "foreign", "sip:11@example.com", "sip:alice@example.com"
    )
    # sd_lookup("speed_dial") with use_domain 1 (the From's host is a key): new_uri as
    # the whole R-URI, then route(SIPOUT)
    assert got.ruri == f"sip:carol@{foreign.address};transport=udp"
    assert got.all("p-hint") == ["outbound"]
    check_forwarded(got, database, final)


def test_speed_dial_of_another_domain_is_not_used(database: Running, agent: Agent) -> None:
    """Entry 12 belongs to alice@other.org: from alice@example.com it is no speed dial,
    and ``12`` is then looked up as a user (no alias, not registered): 404."""
    final = final_reply(agent, database, "sip:12@example.com", "sip:alice@example.com")
    assert (final.status, final.reason) == (404, "Not Found")


def test_alias_rewrites_the_ruri(database: Running, agent: Agent) -> None:
    foreign = database.captures["foreign"]
    got, final = call_to_capture(
        database, agent, "foreign", "sip:al@example.com", "sip:alice@example.com"
    )
    # alias_db_lookup("dbaliases") with use_domain 1: the row of al@example.com only,
    # sip:<username>@<domain> as the R-URI, then route(SIPOUT)
    assert got.ruri == f"sip:bob@{foreign.address}"
    assert got.all("p-hint") == ["outbound"]
    check_forwarded(got, database, final)


def test_local_domain_of_the_table_is_myself(database: Running, agent: Agent) -> None:
    """``register_myself``: example.com is local, so carol@example.com is looked up in
    the location table (nobody registered): 404 from route[LOCATION]."""
    final = final_reply(agent, database, "sip:carol@example.com", "sip:alice@example.com")
    assert (final.status, final.reason) == (404, "Not Found")
    assert database.captures["foreign"].no_invite()


def test_non_local_domain_is_not_relayed(database: Running, agent: Agent) -> None:
    """A host neither listened on nor in the domain table: without WITH_AUTH,
    route[AUTH] refuses to relay to a foreign domain (``uri!=myself``)."""
    foreign = database.captures["foreign"]
    final = final_reply(agent, database, f"sip:al@{foreign.address}", "sip:alice@example.com")
    assert (final.status, final.reason) == (403, "Not relaying")
    assert foreign.no_invite()
