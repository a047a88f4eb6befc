"""sipvicious ``svwar`` and ``svcrack`` against the stock config with ``WITH_MYSQL`` and
``WITH_AUTH`` over SQLite (issue 9, point 1): the cfg derived and its database made
exactly as in ``test_stock_auth.py`` (subscribers alice and bob, plain passwords), run in
Kamailio 5.6 (the oracle) and as the proxy ``kcc build`` makes of it, one worker each,
both at once, so that every scan can be run against the two and its outcome compared.
Every value asserted here was measured first against Kamailio 5.6.3.

**The scanners** (PyPI ``sipvicious`` 0.3.8). ``svcrack -u USER -d WORDLIST`` sends a
REGISTER, and answers each ``401``/``407`` challenge with the next word of the list as
the password (digest over the challenge's nonce); the first ``200`` ends the scan, and
the table ``| Extension | Password |`` names the user and the word (svcrack carries
them in its From tag, so they come back in the reply). ``svwar -d LIST -m METHOD``
sends one REGISTER (OPTIONS, INVITE) per name of the list, From and To both
``sip:<name>@<domain>``, after a sanity probe for a random numeric extension whose
answer becomes the "no such user" fingerprint; a name whose answer differs is listed
in the table ``| Extension | Authentication |`` (``reqauth`` for 401/403/407, ``noauth``
for 200). Both print their table on stdout and log to stderr (``LEVEL:logger:text``);
``found nothing`` means an empty table.

**What the stock cfg answers** (measured on Kamailio, and identical on kcc):

- route[REQINIT] drops every request whose User-Agent matches
  ``friendly|scanner|sipcli|sipvicious|...`` without a reply, and sipvicious always
  sends ``User-Agent: friendly-scanner``: as shipped, svcrack reports ``no server
  response`` (exit 30) and svwar ``socket error: timed out`` (exit 30). Everything
  else here runs the scanners with the User-Agent replaced (``kcc-scan-test``), as an
  attacker who read the cfg would.
- ``uri==myself`` needs the proxy's port: From and R-URI ``sip:x@127.0.0.1`` (the
  scanners' default domain, port 5060 implied) are not ``myself``, so an OPTIONS or
  INVITE gets ``403 Not relaying`` (route[AUTH]); with ``--domain 127.0.0.1:PORT`` the
  From is ``myself``, so every REGISTER gets ``401 Unauthorized`` and every OPTIONS and
  INVITE ``407 Proxy Authentication Required``: auth_check fails for want of
  credentials before any user is looked up, so whether the user exists makes no
  difference.
- svwar therefore can tell no name from another: its random probe already gets the
  challenge, so it stops (``SIP server replied with an authentication request for an
  unknown extension``); with ``--force`` that challenge is the "no such user"
  fingerprint, and the first name's identical answer is not one svwar knows as "not
  found" (``We got an unknown response``, ``Response: '<the challenge>'``), so it stops
  too. The table is empty for every method; the challenge each listed name gets (the
  same for alice and bob as for names nobody has) is checked here directly as well.
- svcrack 0.3.8 answers a challenge without ``qop`` (the stock cfg's ``auth_challenge``
  flags 0) with a response computed without qop but a ``qop=auth`` parameter added
  and no ``cnonce``/``nc``: Kamailio refuses it (a new 401), so svcrack as shipped
  finds nothing even with the right word in its list (checked: kcc refuses it too).
  The scans that must find the password run svcrack with that parameter dropped when
  the challenge had no qop (RFC 2617 §3.2.2: qop only with cnonce and nc); then the
  right word gets ``200 OK`` and svcrack prints it, and a list without it ends in
  ``found nothing``.

**How the scanners are run.** Through a small wrapper (``SCANNER``) that imports the
tool and patches, when asked, the User-Agent default of sipvicious' request builder
and the qop parameter; it always makes the scanner bind 127.0.0.1 (svwar and svcrack
0.3.8 accept ``-b`` but do not pass it on: they bind the wildcard address), ``-x
127.0.0.1`` puts that address in the Via and Contact, ``-P`` gives a free source port,
the target is ``127.0.0.1 -p PORT``. ``-t 0.05`` paces the requests (20/s at most),
``--maximumtime 5`` bounds a silent scan, and every run has an outer 120 s timeout,
with HOME moved into the test's directory (``isolated_env``). After every scan both
proxies must still be running and answer: an OPTIONS to the proxy's own address gets
route[REQINIT]'s ``200 Keepalive``, and a REGISTER the stock challenge.

The cracked REGISTER really registers alice (with the proxy's own address as contact,
svcrack's ``Contact: sip:alice@<domain>``); no other test depends on the location table,
since every request of these scans is challenged before any lookup.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import (
    IMPLS,
    STOCK_CFG,
    RunningProxy,
    Services,
    SipProbe,
    free_udp_ports,
    isolated_env,
    module_services,
    needs_sipp,
    needs_stock_cfg,
    start_proxy_cfg,
)
from tests.integration.test_stock_auth import (
    PASSWORDS,
    VARIANTS,
    Peer,
    check_challenge,
    make_database,
    peer,
    sqlite_cfg,
)

pytestmark = [needs_sipp, needs_stock_cfg]

#: what the scanners send as User-Agent instead of sipvicious' ``friendly-scanner``
DISGUISED_UA = "kcc-scan-test"
#: the subscriber svcrack attacks, and wrong words around its password (bob's too)
VICTIM = "alice"
WRONG_WORDS = ("123456", "password", "alice", PASSWORDS["bob"], "letmein")
#: the names svwar tries: the two subscribers, and names nobody has
EXTENSIONS = ("alice", "bob", "carol", "100", "1000")
SCAN_TIMEOUT = 120

#: runs ``sipvicious.<tool>.main()`` with argv ``UA QOP BIND TOOL ARGS...``: UA replaces
#: the request builder's User-Agent default unless empty; QOP ``fix-qop`` drops the
#: ``qop=auth`` svcrack adds to a digest answering a challenge without qop; the
#: scanner class binds BIND
SCANNER = """\
import importlib
import sys

import sipvicious.libs.svhelper as helper

_, ua, qop, bind, tool, *args = sys.argv
module = importlib.import_module("sipvicious." + tool)
if ua:
    defaults = list(helper.makeRequest.__defaults__)
    defaults[defaults.index("friendly-scanner")] = ua
    helper.makeRequest.__defaults__ = tuple(defaults)
if qop == "fix-qop":
    original = helper.challengeResponse

    def challenge_response(auth, method, uri):
        value = original(auth, method, uri)
        return value if auth["qop"] else value.replace(",qop=auth", "")

    helper.challengeResponse = challenge_response
scanner = module.TakeASip if tool == "svwar" else module.ASipOfRedWine
init = scanner.__init__


def bound_init(self, *positional, **named):
    named["bindingip"] = bind
    init(self, *positional, **named)


scanner.__init__ = bound_init
sys.argv = ["sipvicious_" + tool, *args]
sys.exit(module.main())
"""


# -- the two proxies --------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningProxy]]:
    """The derived stock cfg with ``WITH_MYSQL`` + ``WITH_AUTH`` (test_stock_auth's
    ``auth`` variant: its own database, the same two changed lines, Kamailio with ``-w
    /``) in Kamailio and in kcc, one worker each, both running for the whole file."""
    defines, _ = VARIANTS["auth"]
    running: dict[str, RunningProxy] = {}
    with contextlib.ExitStack() as stack:
        for impl in IMPLS:
            group = stack.enter_context(module_services(tmp_path_factory, f"sv-{impl[:3]}"))
            db_path = group.workdir / "kamailio.db"
            make_database(db_path, location=False)
            text = sqlite_cfg(STOCK_CFG.read_text(encoding="utf-8"), db_path)
            proxy = start_proxy_cfg(
                group,
                impl,
                "kamailio",
                text,
                children=1,
                defines=defines,
                kamailio_workdir=Path("/"),
            )
            running[impl] = RunningProxy(impl, 1, proxy)
        yield running


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """test_stock_auth's raw UDP clients made by a test, closed after it."""
    made: list[Peer] = []
    try:
        yield made
    finally:
        for one in made:
            one.close()


# -- running a scanner and reading its output ---------------------------------------------


@dataclass(frozen=True)
class Scan:
    """What a scanner run left: its exit code, its table's rows, and its log lines
    (``LEVEL:logger:text``; a logged reply reduced to its status line), as a set: how
    many replies a stopping scan still drains depends on timing."""

    returncode: int
    rows: frozenset[tuple[str, str]]
    log: frozenset[str]
    output: str

    def outcome(self) -> tuple[int, frozenset[tuple[str, str]], frozenset[str]]:
        return self.returncode, self.rows, self.log


#: a table row ``| name | value |`` (not the header)
ROW = re.compile(r"^\| (\S+) +\| (\S+) +\|$", re.MULTILINE)
#: a log line of the scanners (``logging.basicConfig``'s format)
LOG_LINE = re.compile(r"^(?:CRITICAL|ERROR|WARNING|INFO|DEBUG):\S*:.*$", re.MULTILINE)
#: svwar's ``Response: '<repr of the reply>'``
LOGGED_REPLY = re.compile(r"^(ERROR:TakeASip:Response: )'(SIP/2\.0 [^\\]*)\\r\\n.*$")


def parse_scan(done: subprocess.CompletedProcess[str]) -> Scan:
    rows = frozenset(
        (name, value)
        for name, value in ROW.findall(done.stdout)
        if (name, value) not in {("Extension", "Password"), ("Extension", "Authentication")}
    )
    log = frozenset(LOGGED_REPLY.sub(r"\1\2", line) for line in LOG_LINE.findall(done.stderr))
    return Scan(done.returncode, rows, log, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")


def scan(
    services: Services,
    proxy: RunningProxy,
    tool: str,
    args: Sequence[str],
    *,
    ua: str = DISGUISED_UA,
    fix_qop: bool = False,
    domain: bool = True,
) -> Scan:
    """One bounded run of ``tool`` (``svwar``, ``svcrack``) at the proxy, from a free
    port of 127.0.0.1, with ``ua`` as User-Agent (empty: sipvicious' own), svcrack's
    qop parameter fixed if ``fix_qop``, and ``--domain 127.0.0.1:PORT`` if ``domain``."""
    (local_port,) = free_udp_ports(1)
    argv = [
        sys.executable,
        "-c",
        SCANNER,
        ua,
        "fix-qop" if fix_qop else "as-shipped",
        "127.0.0.1",
        tool,
        "-b",
        "127.0.0.1",
        "-x",
        "127.0.0.1",
        "-P",
        str(local_port),
        "-p",
        str(proxy.port),
        "-t",
        "0.05",
        "--maximumtime",
        "5",
        *(["--domain", proxy.domain] if domain else []),
        *args,
        "127.0.0.1",
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=isolated_env(services.workdir),
        cwd=services.workdir,
        timeout=SCAN_TIMEOUT,
        check=False,
    )
    return parse_scan(done)


def wordlist(services: Services, name: str, words: Sequence[str]) -> Path:
    path = services.workdir / name
    path.write_text("".join(f"{word}\n" for word in words), encoding="utf-8")
    return path


def check_serving(proxy: RunningProxy, peers: list[Peer]) -> None:
    """The proxy still runs and answers: route[REQINIT]'s keepalive to an OPTIONS for
    its own address, and the stock challenge to a REGISTER."""
    assert proxy.proxy.service.alive(), proxy.log()
    probe = SipProbe()
    try:
        reply = probe.ask("OPTIONS", f"sip:{proxy.domain}", proxy.port, timeout=5.0)
    finally:
        probe.close()
    assert reply is not None, f"the proxy stopped answering after the scan\n{proxy.log()}"
    assert (reply.status, reply.reason) == (200, "Keepalive"), reply.raw
    check_challenge(peer(peers, proxy, "bob").ask("REGISTER"), register=True)


def each_impl(proxies: dict[str, RunningProxy]) -> list[RunningProxy]:
    return [proxies[impl] for impl in IMPLS]


# -- sipvicious as shipped: silently dropped ----------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_sipvicious_user_agent_is_dropped_without_a_reply(
    impl: str, proxies: dict[str, RunningProxy], services: Services, peers: list[Peer]
) -> None:
    proxy = proxies[impl]
    words = wordlist(services, "words", (*WRONG_WORDS, PASSWORDS[VICTIM]))
    crack = scan(services, proxy, "svcrack", ["-u", VICTIM, "-d", str(words)], ua="")
    assert crack.outcome() == (
        30,
        frozenset(),
        {"ERROR:ASipOfRedWine:no server response", "WARNING:root:found nothing"},
    ), crack.output
    names = wordlist(services, "names", EXTENSIONS)
    war = scan(services, proxy, "svwar", ["-d", str(names)], ua="")
    assert war.outcome() == (
        30,
        frozenset(),
        {"ERROR:TakeASip:socket error: timed out", "WARNING:root:found nothing"},
    ), war.output
    check_serving(proxy, peers)


# -- svcrack --------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_svcrack_finds_exactly_the_password(
    impl: str, proxies: dict[str, RunningProxy], services: Services, peers: list[Peer]
) -> None:
    """Wrong words (bob's password among them) before and after alice's: svcrack stops
    at the 200 for hers (exit 40: something found) and names only it."""
    proxy = proxies[impl]
    words = wordlist(services, "words", (*WRONG_WORDS[:3], PASSWORDS[VICTIM], *WRONG_WORDS[3:]))
    crack = scan(services, proxy, "svcrack", ["-u", VICTIM, "-d", str(words)], fix_qop=True)
    assert crack.outcome() == (40, {(VICTIM, PASSWORDS[VICTIM])}, frozenset()), crack.output
    check_serving(proxy, peers)


@pytest.mark.parametrize("impl", IMPLS)
def test_svcrack_without_the_password_finds_nothing(
    impl: str, proxies: dict[str, RunningProxy], services: Services, peers: list[Peer]
) -> None:
    """Every word is answered with a new challenge; svcrack runs out of words."""
    proxy = proxies[impl]
    words = wordlist(services, "words", WRONG_WORDS)
    crack = scan(services, proxy, "svcrack", ["-u", VICTIM, "-d", str(words)], fix_qop=True)
    assert crack.outcome() == (0, frozenset(), {"WARNING:root:found nothing"}), crack.output
    check_serving(proxy, peers)


@pytest.mark.parametrize("impl", IMPLS)
def test_svcrack_digest_with_qop_but_no_cnonce_is_refused(
    impl: str, proxies: dict[str, RunningProxy], services: Services, peers: list[Peer]
) -> None:
    """svcrack 0.3.8's own digest (``qop=auth`` without ``cnonce``/``nc``, response
    computed without qop) is refused even for the right word: found nothing."""
    proxy = proxies[impl]
    words = wordlist(services, "words", (*WRONG_WORDS[:2], PASSWORDS[VICTIM]))
    crack = scan(services, proxy, "svcrack", ["-u", VICTIM, "-d", str(words)])
    assert crack.outcome() == (0, frozenset(), {"WARNING:root:found nothing"}), crack.output
    check_serving(proxy, peers)


# -- svwar ----------------------------------------------------------------------------------

INVITE_WARNING = (
    "WARNING:TakeASip:using an INVITE scan on an endpoint (i.e. SIP phone) may cause it"
    " to ring and wake up people in the middle of the night"
)
AUTH_FOR_UNKNOWN = (
    "ERROR:TakeASip:SIP server replied with an authentication request for an unknown"
    " extension. Set --force to force a scan."
)
CHALLENGE = {
    "REGISTER": (401, "Unauthorized"),
    "OPTIONS": (407, "Proxy Authentication Required"),
    "INVITE": (407, "Proxy Authentication Required"),
}


def expected_svwar_log(method: str, force: bool, domain: bool) -> set[str]:
    """svwar's log lines for the stock cfg's uniform answer (module docstring)."""
    status, reason = CHALLENGE[method] if domain or method == "REGISTER" else (403, "Not relaying")
    lines = {"WARNING:root:found nothing"}
    if method == "INVITE":
        lines.add(INVITE_WARNING)
    if not force:
        return lines | {AUTH_FOR_UNKNOWN}
    if status == 401:
        lines.add(f"WARNING:TakeASip:Bad user = SIP/2.0 {status}  - svwar will probably not work!")
    return lines | {
        "WARNING:TakeASip:We got an unknown response",
        f"ERROR:TakeASip:Response: SIP/2.0 {status} {reason}",
    }


#: (method, --force, --domain 127.0.0.1:PORT) of each svwar scan
SVWAR_SCANS = [
    ("REGISTER", False, True),
    ("REGISTER", True, True),
    ("OPTIONS", False, True),
    ("OPTIONS", True, True),
    ("INVITE", False, True),
    ("INVITE", True, True),
    ("OPTIONS", True, False),
    ("INVITE", False, False),
]


def svwar_scan_id(method: str, force: bool, domain: bool) -> str:
    return "-".join([method, *(["force"] if force else []), "domain" if domain else "no-domain"])


@pytest.mark.parametrize(
    ("method", "force", "domain"),
    [pytest.param(*case, id=svwar_scan_id(*case)) for case in SVWAR_SCANS],
)
def test_svwar_enumerates_nothing_and_alike(
    method: str,
    force: bool,
    domain: bool,
    proxies: dict[str, RunningProxy],
    services: Services,
    peers: list[Peer],
) -> None:
    """svwar over alice, bob and names nobody has, against both proxies: the same exit
    code, rows (none) and log lines from each, those the stock cfg's uniform answer
    gives (module docstring); and with ``--domain``, each listed name gets the same
    challenge as a user that does not exist, which is why svwar finds nothing."""
    names = wordlist(services, "names", EXTENSIONS)
    args = ["-m", method, "-d", str(names), *(["--force"] if force else [])]
    outcomes = {
        proxy.impl: scan(services, proxy, "svwar", args, domain=domain)
        for proxy in each_impl(proxies)
    }
    kamailio, kcc = outcomes["kamailio"], outcomes["kcc"]
    assert kcc.outcome() == kamailio.outcome(), f"kamailio {kamailio.output}\nkcc {kcc.output}"
    assert kamailio.outcome() == (0, frozenset(), expected_svwar_log(method, force, domain)), (
        kamailio.output
    )
    for proxy in each_impl(proxies):
        if domain:
            for name in EXTENSIONS:
                reply = peer(peers, proxy, name).ask(method)
                assert (reply.status, reply.reason) == CHALLENGE[method], (name, reply.raw)
                check_challenge(reply, register=method == "REGISTER")
        check_serving(proxy, peers)
