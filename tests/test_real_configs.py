"""Real-world inputs: the stock Debian config in its variants, and Kamailio's examples.

Both are read from the installed ``kamailio`` package (GPL, never copied into this
repository); the test command installs the package, so these tests always run in CI.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kcc.diagnostics import render_plain
from kcc.explain import all_codes
from kcc.pipeline import run_pipeline

from .conftest import STOCK_CFG

EXAMPLES_DIR = Path("/usr/share/doc/kamailio/examples")

#: switches that read the database URL, so they need WITH_MYSQL (as the config says)
NEEDS_DB = {
    "WITH_AUTH",
    "WITH_IPAUTH",
    "WITH_USRLOCDB",
    "WITH_ACCDB",
    "WITH_ALIASDB",
    "WITH_SPEEDDIAL",
    "WITH_MULTIDOMAIN",
    "WITH_PRESENCE",
}
#: switches that only mean something on top of another one
DEPENDS = {
    "WITH_IPAUTH": {"WITH_AUTH"},
    "WITH_MSGREBUILD": {"WITH_PRESENCE"},
    "WITH_NATSIPPING": {"WITH_NAT"},
    "WITH_RTPENGINE": {"WITH_NAT"},
}


def stock_switches() -> list[str]:
    text = STOCK_CFG.read_text(encoding="utf-8")
    names = {
        line.split()[1]
        for line in text.splitlines()
        if line.startswith(("#!ifdef WITH_", "#!ifndef WITH_"))
    }
    return sorted(names)


def with_dependencies(*switches: str) -> dict[str, str | None]:
    wanted = set(switches)
    changed = True
    while changed:
        before = len(wanted)
        for name in list(wanted):
            wanted |= DEPENDS.get(name, set())
            if name in NEEDS_DB:
                wanted.add("WITH_MYSQL")
        changed = len(wanted) != before
    return dict.fromkeys(sorted(wanted))


def assert_clean(path: Path, defines: dict[str, str | None]) -> None:
    ctx = run_pipeline(path, defines=defines)
    errors = [d for d in ctx.sink.diagnostics if d.is_error]
    report = "".join(render_plain(d) for d in errors)
    assert not errors, f"{path} with {sorted(defines)}:\n{report}"
    assert ctx.completed == "check"
    assert ctx.config is not None


needs_stock = pytest.mark.skipif(
    not STOCK_CFG.exists(), reason="the kamailio package is not installed"
)


@needs_stock
def test_stock_switch_list_is_what_we_expect() -> None:
    switches = stock_switches()
    # the Debian 5.6 config: if a new package adds switches, the tests below pick them up
    assert {"WITH_MYSQL", "WITH_AUTH", "WITH_NAT", "WITH_TLS", "WITH_ANTIFLOOD"} <= set(switches)


@needs_stock
def test_stock_config_without_defines() -> None:
    assert_clean(STOCK_CFG, {})


@needs_stock
@pytest.mark.parametrize("switch", stock_switches() if STOCK_CFG.exists() else [])
def test_stock_config_each_switch(switch: str) -> None:
    assert_clean(STOCK_CFG, with_dependencies(switch))


@needs_stock
@pytest.mark.parametrize("switch", sorted(NEEDS_DB))
def test_stock_switch_without_its_database_says_which_define_is_missing(switch: str) -> None:
    """A database switch alone fails in Kamailio too (``DBURL`` is defined under
    ``WITH_MYSQL`` only); kcc points at the skipped define and names the ``-D``."""
    ctx = run_pipeline(
        STOCK_CFG, defines=dict.fromkeys(with_dependencies(switch).keys() - {"WITH_MYSQL"})
    )
    errors = [d for d in ctx.sink.diagnostics if d.is_error]
    assert errors, switch
    for error in errors:
        assert (error.code, error.message) == (
            "E0201",
            "expected a number, a string or a pseudo-variable, found `DBURL`",
        )
        assert error.help is not None and error.help.startswith(
            "define `WITH_MYSQL`: `-D WITH_MYSQL`"
        )
        assert [label.text for label in error.labels] == [
            "`DBURL` defined here, in a skipped block"
        ]
        assert error.notes[0].startswith("`DBURL` is defined only when `WITH_MYSQL` is defined")


@needs_stock
def test_stock_config_large_combination() -> None:
    everything = [s for s in stock_switches() if s not in {"WITH_RTPENGINE"}]
    assert_clean(STOCK_CFG, with_dependencies(*everything))
    assert_clean(STOCK_CFG, with_dependencies(*everything, "WITH_RTPENGINE"))


def doc_example_configs() -> list[Path]:
    if not EXAMPLES_DIR.exists():
        return []
    return sorted(p for p in EXAMPLES_DIR.rglob("*") if p.name.endswith((".cfg", ".cfg.gz")))


@pytest.mark.skipif(not EXAMPLES_DIR.exists(), reason="the kamailio package is not installed")
@pytest.mark.parametrize(
    "example", doc_example_configs(), ids=lambda p: str(p.relative_to(EXAMPLES_DIR))
)
def test_doc_examples_never_crash(example: Path, tmp_path: Path) -> None:
    """Every shipped example is read without an internal error, and every syntax error
    kcc reports is one of ``KNOWN_BROKEN_EXAMPLES``, each shown to be real below."""
    path = example
    if example.name.endswith(".gz"):
        path = tmp_path / example.name[:-3]
        path.write_bytes(gzip.decompress(example.read_bytes()))
    ctx = run_pipeline(path)
    # syntax and preprocessing errors; the semantic ones (modules of old releases,
    # functions whose module is not loaded ...) are compared with `kamailio -c` in
    # tests/test_differential.py
    errors = [d for d in ctx.sink.diagnostics if d.is_error and d.code in FRONT_END_CODES]
    rel = str(example.relative_to(EXAMPLES_DIR))
    expected = KNOWN_BROKEN_EXAMPLES.get(rel)
    if expected is None:
        report = "".join(render_plain(d) for d in errors)
        assert not errors, f"{rel}:\n{report}"
    else:
        assert [(d.code, d.span.line if d.span else 0) for d in errors][:1] == [expected]


#: codes of the preprocessor, the parser and the global settings (not module-level checks)
FRONT_END_CODES = frozenset(
    code for code in all_codes() if code.startswith(("E01", "E02")) or code in ("E0310", "E0311")
)

#: examples shipped by the package that really are broken, with the first error kcc
#: reports (code, line); each entry is explained next to it
KNOWN_BROKEN_EXAMPLES: dict[str, tuple[str, int]] = {
    # `if (method=="INVITE") route(1)` has no `;` before `else`; kamailio -c on the same
    # lines says "bad command: missing ';'?" (checked in test_missing_semicolon_agrees)
    "exec/exec_s5.cfg": ("E0201", 31),
    "exec/exec_s5b.cfg": ("E0201", 31),
    "kamailio/exec_s5.cfg": ("E0201", 34),
    # include `icscf.cfg` / `scscf.cfg`: the package ships only `*.cfg.sample`
    "ims/icscf/kamailio.cfg": ("E0112", 19),
    "ims/scscf/kamailio.cfg": ("E0112", 35),
    # includes /usr/local/etc/kamailio/kamailio-basic-kemi-native.cfg, not installed there
    "kemi/kamailio-basic-kemi.cfg": ("E0112", 414),
    # `fifo=` and `statistics=` are SER 0.9 parameters that Kamailio 5.6 no longer knows:
    # kamailio -c reports a syntax error at the same line and column
    "mixed/dbtext.cfg": ("E0310", 24),
    "mixed/flag_reply.cfg": ("E0310", 20),
    "mixed/nathelper.cfg": ("E0310", 36),
    "mixed/voicemail.cfg": ("E0310", 22),
    "mixed/welcome.cfg": ("E0310", 20),
    "mixed/snmp.cfg": ("E0310", 12),
    # one `#!endif` too many at the end of the TLS section (line 121)
    "pkg/sip-router-basic.cfg": ("E0111", 121),
    # `#!ifdef WITH_XMLRPC` (line 1718) is never closed: the file ends first
    "pkg/sip-router-oob.cfg": ("E0110", 1718),
}


def _kamailio_check(text: str, tmp_path: Path, name: str = "probe.cfg") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["kamailio", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stderr


needs_kamailio = pytest.mark.skipif(
    shutil.which("kamailio") is None, reason="the kamailio package is not installed"
)


@needs_kamailio
@pytest.mark.parametrize(
    "rel", sorted(k for k, v in KNOWN_BROKEN_EXAMPLES.items() if v[0] == "E0310")
)
def test_known_broken_unknown_parameter_agrees_with_kamailio(rel: str) -> None:
    """Kamailio reports a syntax error at the very line where kcc finds the parameter."""
    _, line = KNOWN_BROKEN_EXAMPLES[rel]
    result = subprocess.run(
        ["kamailio", "-c", "-f", str(EXAMPLES_DIR / rel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert re.search(
        rf"parse error in config file .*, line {line}, column [0-9-]+: syntax error", result.stderr
    )


@needs_kamailio
@pytest.mark.parametrize(
    "rel", sorted(k for k, v in KNOWN_BROKEN_EXAMPLES.items() if v[0] == "E0201")
)
def test_known_broken_missing_semicolon_agrees_with_kamailio(rel: str, tmp_path: Path) -> None:
    """The example's own lines, alone in a route, are rejected by Kamailio the same way."""
    _, line = KNOWN_BROKEN_EXAMPLES[rel]
    lines = (EXAMPLES_DIR / rel).read_text(encoding="utf-8").splitlines()
    snippet = "\n".join(lines[line - 2 : line])
    probe = f'loadmodule "sl.so"\nrequest_route {{\n{snippet}\n}}\nroute[1] {{ exit; }}\n'
    stderr = _kamailio_check(probe, tmp_path)
    assert re.search(r"line 4, column \d+-\d+: bad command: missing ';'\?", stderr), stderr
    ctx = run_pipeline(tmp_path / "probe.cfg")
    assert [(d.code, d.span.line if d.span else 0) for d in ctx.sink.diagnostics] == [("E0201", 4)]


@pytest.mark.parametrize(
    "rel", sorted(k for k, v in KNOWN_BROKEN_EXAMPLES.items() if v[0] == "E0112")
)
def test_known_broken_include_is_really_missing(rel: str) -> None:
    _, line = KNOWN_BROKEN_EXAMPLES[rel]
    path = EXAMPLES_DIR / rel
    directive = path.read_text(encoding="utf-8").splitlines()[line - 1]
    target = Path(directive.split('"')[1])
    assert not target.exists()
    assert not (path.parent / target).exists()


@needs_kamailio
@pytest.mark.parametrize(
    "rel", sorted(k for k, v in KNOWN_BROKEN_EXAMPLES.items() if v[0] in {"E0110", "E0111"})
)
def test_known_broken_directives_agree_with_kamailio(rel: str, tmp_path: Path) -> None:
    """With everything but the directives blanked, Kamailio's preprocessor counts the
    same imbalance (it cannot say where; kcc names the line)."""
    code, _ = KNOWN_BROKEN_EXAMPLES[rel]
    lines = (EXAMPLES_DIR / rel).read_text(encoding="utf-8").splitlines()
    skeleton = "\n".join(x if x.lstrip().startswith("#!") else "" for x in lines)
    stderr = _kamailio_check(skeleton + "\nrequest_route { exit; }\n", tmp_path)
    expected = "1 more #!endif as #!if[n]def" if code == "E0111" else "1 more #!if[n]def as #!endif"
    assert f"different number of preprocessor directives: {expected}" in stderr
