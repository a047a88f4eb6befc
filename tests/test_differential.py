"""kcc against `kamailio -c`: the same configs, the same verdicts, the same lines.

(a) ``tests/differential/*.cfg`` are broken configs, one realistic mistake each. Each
    one must be rejected by ``kamailio -c`` (asserted, with the reason Kamailio gives,
    so a case cannot pass for the wrong reason) and by ``kcc check`` at the line Kamailio
    reports: the first error kcc reports on that line must have the expected code (kcc
    may report more, and elsewhere).
(b) The stock ``/etc/kamailio/kamailio.cfg`` under a fixed, representative set of
    ``WITH_*`` combinations: where Kamailio accepts, kcc reports no error; where it
    rejects, kcc rejects at the same line.

Kamailio reports the place of an error as ``parse error in config file F, line L,
column C`` (or ``column C1-C2``), or ``from line L1, column C1 to line L2, column C2``
for a range (an error at the end of the file); that whole range counts as the line.
A few errors have no line at all (a preprocessor conditional left open, an include
file that does not exist); those cases say where kcc must point.

Kamailio runs as ``kamailio -c -E -l udp:127.0.0.1:5060 -Y <tmp> -f F``: the ``-l`` so it
looks at no interface but loopback (the stock config has no ``listen=``), ``-Y`` so its
runtime directory is the test's own. Tests run in a private network namespace
(``scripts/test.sh``). The module packages the stock config loads under WITH_MYSQL,
WITH_PRESENCE and WITH_TLS are installed by ``scripts/setup.sh``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from kcc.diagnostics import Diagnostic, render_plain
from kcc.pipeline import run_pipeline

from .conftest import REPO, STOCK_CFG

CASES_DIR = REPO / "tests" / "differential"
KAMAILIO = shutil.which("kamailio")

needs_kamailio = pytest.mark.skipif(
    KAMAILIO is None, reason="the kamailio package is not installed"
)

_PLACE = re.compile(
    r"parse error in config file (?P<file>.+?), "
    r"(?:line (?P<line>\d+)|from line (?P<first>\d+), column \d+ to line (?P<last>\d+))"
)
_MISSING_MODULE = re.compile(r"could not find module <([^>]+)>")


@dataclass(frozen=True, slots=True)
class Place:
    """Where Kamailio reports an error: a file and a range of lines."""

    file: str
    first: int
    last: int


def kamailio_place(log: str) -> Place | None:
    """The place of the first error in a `kamailio -c` log, if it gives one."""
    match = _PLACE.search(log)
    if match is None:
        return None
    if match["line"] is not None:
        line = int(match["line"])
        return Place(match["file"], line, line)
    return Place(match["file"], int(match["first"]), int(match["last"]))


def run_kamailio(
    cfg: Path, rundir: Path, defines: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    assert KAMAILIO is not None
    argv = [KAMAILIO, "-c", "-E", "-l", "udp:127.0.0.1:5060", "-Y", str(rundir), "-f", str(cfg)]
    for name in defines:
        argv += ["-A", name]
    return subprocess.run(
        argv,
        cwd=rundir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
        check=False,
    )


def kamailio_log(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def kcc_errors(cfg: Path, defines: Sequence[str] = ()) -> list[Diagnostic]:
    ctx = run_pipeline(cfg, defines={name: None for name in defines})
    return [d for d in ctx.sink.sorted() if d.is_error]


def errors_at(errors: list[Diagnostic], cfg: Path, first: int, last: int) -> list[Diagnostic]:
    """kcc's errors in ``cfg`` whose primary span touches lines ``first..last``."""
    found = []
    for diag in errors:
        if diag.span is None:
            continue
        site = diag.span.use_site()
        if Path(site.file.path).resolve() != cfg.resolve():
            continue
        if site.line <= last and site.end_line >= first:
            found.append(diag)
    return found


def rendered(errors: list[Diagnostic]) -> str:
    return "".join(render_plain(d) for d in errors) or "(no errors)\n"


# ---------------------------------------------------------------------------------
# (a) broken configs
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    #: the code of the first error kcc reports on Kamailio's line
    code: str
    #: what Kamailio's log says (a substring): proof it rejects for the intended reason
    kamailio_says: str
    #: for an error Kamailio reports without a line: the line kcc must report
    line: int | None = None


CASES: dict[str, Case] = {
    # names and calls (kcc: kcc/sema)
    "unknown_function": Case("E0401", "failed to find command sl_send_replyy (params 2)"),
    "function_module_not_loaded": Case("E0403", "failed to find command t_relay (params 0)"),
    "function_module_not_loaded_siputils": Case(
        "E0403", "failed to find command has_totag (params 0)"
    ),
    "wrong_arg_count": Case("E0404", "failed to find command sl_send_reply (params 1)"),
    "route_kind_onreply": Case("E0402", "misused command t_relay"),
    "route_kind_branch": Case("E0402", "misused command t_reply"),
    "route_kind_failure": Case("E0402", "misused command t_newtran"),
    # Kamailio reports a duplicate route where the block ends: the second block of the
    # case is a one-liner, so its name and its end are on the same line
    "duplicate_route": Case("E0304", "duplicate route"),
    "module_loaded_twice": Case("E0303", "attempting to load the same module twice"),
    "unknown_module": Case("E0302", "could not find module <textop>"),
    "modparam_module_not_loaded": Case("E0312", "No module matching <usrloc> found"),
    "unknown_modparam": Case("E0313", "parameter <fr_timeout> of type <2:int> not found"),
    "modparam_wrong_type": Case("E0314", "parameter <fr_timer> of type <1:string> not found"),
    "unknown_global_parameter": Case("E0310", "unknown config variable"),
    "readonly_pv": Case("E0603", "read only pvar in assignment left side"),
    "flag_out_of_range": Case("E0501", "message flag 32 too high"),
    "unknown_pv": Case("E0601", 'error searching pvar "fuu"'),
    "unknown_transformation": Case("E0604", "unknown transformation: lenght"),
    # syntax (kcc: lexer, parser, AST builder)
    "missing_semicolon": Case("E0201", "bad command: missing ';'?"),
    "missing_closing_brace": Case("E0202", "syntax error"),
    "missing_parenthesis": Case("E0201", "syntax error"),
    # kcc first says `exti` is no function (the typo), then E0201 for the missing `()`,
    # which is Kamailio's complaint
    "bare_word": Case("E0401", "'('')' expected (function call)"),
    "route_missing_bracket": Case("E0201", "invalid  route  statement"),
    "else_without_if": Case("E0201", "syntax error"),
    "plus_equals": Case("E0203", "bad command"),
    "empty_block": Case("E0205", "syntax error"),
    "bad_subnet": Case("E0204", "invalid bit number in netmask"),
    "typographic_quotes": Case("E0103", "syntax error"),
    "unterminated_string": Case("E0101", "unexpected EOF in unclosed string"),
    "newer_loadmodule_form": Case("E0209", "string expected"),
    # preprocessor (kcc: kcc/preprocess.py)
    "define_twice": Case("E0113", "already defined: DBURL"),
    # no line from Kamailio: kcc points at the `#!ifdef` left open / the include line
    "unclosed_ifdef": Case("E0110", "1 more #!if[n]def as #!endif", line=10),
    "include_not_found": Case("E0112", "cannot open included file: routing-local.cfg", line=10),
}


def test_every_case_file_has_an_expectation() -> None:
    files = {path.stem for path in CASES_DIR.glob("*.cfg")}
    assert files == set(CASES)
    assert len(CASES) >= 20


@needs_kamailio
@pytest.mark.parametrize("name", sorted(CASES))
def test_kamailio_and_kcc_reject_at_the_same_line(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    cfg = CASES_DIR / f"{name}.cfg"

    proc = run_kamailio(cfg, tmp_path)
    log = kamailio_log(proc)
    assert proc.returncode != 0, f"kamailio -c accepts {cfg.name}:\n{log}"
    assert "config file ok" not in log
    assert case.kamailio_says in log, f"kamailio -c rejects {cfg.name} for another reason:\n{log}"
    place = kamailio_place(log)
    if case.line is None:
        assert place is not None, f"no line in kamailio's log:\n{log}"
        assert Path(place.file).resolve() == cfg.resolve()
        first, last = place.first, place.last
    else:
        assert place is None, f"kamailio now reports a line ({place}): drop `line=`"
        first = last = case.line

    errors = kcc_errors(cfg)
    assert errors, f"kcc accepts {cfg.name}, kamailio -c rejects it at line {first}"
    here = errors_at(errors, cfg, first, last)
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    assert here, f"kcc reports no error at {where} (kamailio's):\n{rendered(errors)}"
    assert here[0].code == case.code, rendered(here)


def test_kamailio_place_parsing() -> None:
    log = (
        " 0(1) CRITICAL: <core> [core/cfg.y:3790]: yyerror_at(): parse error in config file "
        "/tmp/a b.cfg, line 11, column 30: invalid bit number in netmask\n"
        " 0(1) CRITICAL: <core> [core/cfg.y:3790]: yyerror_at(): parse error in config file "
        "/tmp/a b.cfg, line 12, column 2: bad command\n"
    )
    assert kamailio_place(log) == Place("/tmp/a b.cfg", 11, 11)
    ranged = "parse error in config file x.cfg, from line 14, column 2 to line 15, column 0: e"
    assert kamailio_place(ranged) == Place("x.cfg", 14, 15)
    columns = "parse error in config file x.cfg, line 12, column 13-14: syntax error"
    assert kamailio_place(columns) == Place("x.cfg", 12, 12)
    assert kamailio_place("ERROR: bad config file (0 errors) (parsing code: 0)") is None


# ---------------------------------------------------------------------------------
# (b) the stock config under WITH_* combinations
# ---------------------------------------------------------------------------------

ALL_SWITCHES = (
    "WITH_DEBUG",
    "WITH_MYSQL",
    "WITH_AUTH",
    "WITH_IPAUTH",
    "WITH_USRLOCDB",
    "WITH_PRESENCE",
    "WITH_MSGREBUILD",
    "WITH_NAT",
    "WITH_NATSIPPING",
    "WITH_RTPENGINE",
    "WITH_PSTN",
    "WITH_ALIASDB",
    "WITH_SPEEDDIAL",
    "WITH_MULTIDOMAIN",
    "WITH_TLS",
    "WITH_JSONRPC",
    "WITH_ANTIFLOOD",
    "WITH_BLOCK3XX",
    "WITH_BLOCK401407",
    "WITH_VOICEMAIL",
    "WITH_ACCDB",
)

#: each switch alone with what it depends on (the config's header says which), a few
#: deployments, and everything at once
ACCEPTED_COMBOS: tuple[tuple[str, ...], ...] = (
    (),
    ("WITH_DEBUG",),
    ("WITH_MYSQL",),
    ("WITH_MYSQL", "WITH_AUTH"),
    ("WITH_MYSQL", "WITH_AUTH", "WITH_IPAUTH"),
    ("WITH_MYSQL", "WITH_USRLOCDB"),
    ("WITH_MYSQL", "WITH_PRESENCE"),
    ("WITH_MYSQL", "WITH_PRESENCE", "WITH_MSGREBUILD"),
    ("WITH_NAT",),
    ("WITH_NAT", "WITH_NATSIPPING"),
    ("WITH_NAT", "WITH_RTPENGINE"),
    ("WITH_PSTN",),
    ("WITH_MYSQL", "WITH_ALIASDB"),
    ("WITH_MYSQL", "WITH_SPEEDDIAL"),
    ("WITH_MYSQL", "WITH_MULTIDOMAIN"),
    ("WITH_TLS",),
    ("WITH_JSONRPC",),
    ("WITH_ANTIFLOOD",),
    ("WITH_BLOCK3XX",),
    ("WITH_BLOCK401407",),
    ("WITH_VOICEMAIL",),
    ("WITH_MYSQL", "WITH_ACCDB"),
    # switches whose dependency is missing but that change nothing on their own
    ("WITH_IPAUTH",),
    ("WITH_MSGREBUILD",),
    ("WITH_RTPENGINE",),
    ("WITH_NATSIPPING",),
    # a registrar with everything in the database
    (
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_IPAUTH",
        "WITH_USRLOCDB",
        "WITH_ACCDB",
        "WITH_ALIASDB",
        "WITH_SPEEDDIAL",
        "WITH_MULTIDOMAIN",
    ),
    # an edge proxy
    ("WITH_NAT", "WITH_RTPENGINE", "WITH_NATSIPPING", "WITH_TLS", "WITH_ANTIFLOOD"),
    # a small PBX
    (
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_NAT",
        "WITH_PSTN",
        "WITH_VOICEMAIL",
        "WITH_BLOCK3XX",
        "WITH_BLOCK401407",
    ),
    # presence with the management interface, in debug mode
    ("WITH_MYSQL", "WITH_AUTH", "WITH_PRESENCE", "WITH_MSGREBUILD", "WITH_JSONRPC", "WITH_DEBUG"),
    ALL_SWITCHES,
)

#: switches that use the `DBURL` define without WITH_MYSQL, which defines it: Kamailio
#: and kcc both stop at the first `DBURL` (a bare word where a value must be)
REJECTED_COMBOS: tuple[tuple[str, ...], ...] = (
    ("WITH_AUTH",),
    ("WITH_USRLOCDB",),
    ("WITH_PRESENCE",),
    ("WITH_ALIASDB",),
    ("WITH_SPEEDDIAL",),
    ("WITH_MULTIDOMAIN",),
    ("WITH_ACCDB",),
    tuple(s for s in ALL_SWITCHES if s != "WITH_MYSQL"),
)

needs_stock = pytest.mark.skipif(
    not STOCK_CFG.is_file(), reason="the kamailio package is not installed"
)


def _combo_id(combo: tuple[str, ...]) -> str:
    if combo == ALL_SWITCHES:
        return "all"
    if len(combo) == len(ALL_SWITCHES) - 1:
        missing = set(ALL_SWITCHES) - set(combo)
        return "all-but-" + "-".join(sorted(m.removeprefix("WITH_") for m in missing))
    return "+".join(s.removeprefix("WITH_") for s in combo) or "none"


def _kamailio_verdict(combo: tuple[str, ...], rundir: Path) -> tuple[bool, str]:
    proc = run_kamailio(STOCK_CFG, rundir, combo)
    log = kamailio_log(proc)
    missing = _MISSING_MODULE.findall(log)
    # a module that is not installed is the machine's problem, not the config's: fail
    # with the fix rather than compare verdicts that mean nothing
    assert not missing, (
        f"kamailio -c cannot find module(s) {', '.join(missing)}: "
        "install their packages (bash scripts/setup.sh)"
    )
    return proc.returncode == 0, log


@needs_kamailio
@needs_stock
@pytest.mark.parametrize("combo", ACCEPTED_COMBOS, ids=_combo_id)
def test_stock_config_accepted_by_both(combo: tuple[str, ...], tmp_path: Path) -> None:
    accepted, log = _kamailio_verdict(combo, tmp_path)
    assert accepted, f"kamailio -c rejects the stock config with {combo}:\n{log}"
    errors = kcc_errors(STOCK_CFG, combo)
    assert errors == [], rendered(errors)


@needs_kamailio
@needs_stock
@pytest.mark.parametrize("combo", REJECTED_COMBOS, ids=_combo_id)
def test_stock_config_rejected_by_both_at_the_same_line(
    combo: tuple[str, ...], tmp_path: Path
) -> None:
    accepted, log = _kamailio_verdict(combo, tmp_path)
    assert not accepted, f"kamailio -c now accepts the stock config with {combo}"
    place = kamailio_place(log)
    assert place is not None, log
    assert Path(place.file).resolve() == STOCK_CFG.resolve()
    stock_lines = STOCK_CFG.read_text("utf-8").splitlines()
    assert "DBURL" in stock_lines[place.first - 1], "rejected for another reason than DBURL"
    errors = kcc_errors(STOCK_CFG, combo)
    here = errors_at(errors, STOCK_CFG, place.first, place.last)
    assert here, f"kcc reports no error at line {place.first}:\n{rendered(errors)}"
    assert "`DBURL`" in here[0].message, rendered(here)
