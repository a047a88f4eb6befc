"""Mutated configs never get anything but diagnostics.

Hypothesis takes valid configs (the examples, the kitchen sink, the stock config),
drops, duplicates and swaps tokens and characters, inserts bytes, and runs the whole
pipeline on the result. Whatever comes out must be diagnostics with sane positions:
never an exception, never a hang. The long version (100,000 configs) is a script for
the hardening work; this one is sized for the test suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcc.diagnostics import DiagnosticSink, render_json, render_plain
from kcc.lexer import tokenize
from kcc.pipeline import run_pipeline
from kcc.source import SourceFile

from .conftest import REPO, STOCK_CFG

#: ``KCC_FUZZ_EXAMPLES=100000 pytest tests/test_fuzz_configs.py`` for a long run
EXAMPLES = int(os.environ.get("KCC_FUZZ_EXAMPLES", "150"))

SEEDS: list[Path] = sorted((REPO / "examples").glob("*.cfg"))
if STOCK_CFG.exists():
    SEEDS.append(STOCK_CFG)


def _token_bounds(text: str) -> list[tuple[int, int]]:
    tokens = tokenize(SourceFile("seed.cfg", text), DiagnosticSink())
    return [(t.span.start, t.span.end) for t in tokens]


SEED_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SEEDS}
SEED_BOUNDS = {name: _token_bounds(text) for name, text in SEED_TEXTS.items()}
JUNK = [
    "{", "}", "(", ")", ";", '"', "'", "$", "#!", "#!ifdef X\n", "#!endif\n", "/*",
    "\\", "\x00", "\xff", "“", "[", "]", "==", "=~", "route", "if", "\n", "$(", "@",
]  # fmt: skip


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(SEED_TEXTS)))
    text = SEED_TEXTS[name]
    bounds = SEED_BOUNDS[name]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "swap", "junk", "chardrop", "chardup"]))
        if not bounds or not text:
            break
        i = draw(st.integers(0, len(bounds) - 1))
        start, end = bounds[i]
        start, end = min(start, len(text)), min(end, len(text))
        if op == "drop":
            text = text[:start] + text[end:]
        elif op == "dup":
            text = text[:end] + " " + text[start:end] + text[end:]
        elif op == "swap":
            j = draw(st.integers(0, len(bounds) - 1))
            s2, e2 = bounds[j]
            s2, e2 = min(s2, len(text)), min(e2, len(text))
            if e2 <= start:
                text = text[:s2] + text[start:end] + text[e2:start] + text[s2:e2] + text[end:]
            elif s2 >= end:
                text = text[:start] + text[s2:e2] + text[end:s2] + text[start:end] + text[e2:]
        elif op == "junk":
            text = text[:start] + draw(st.sampled_from(JUNK)) + text[start:]
        else:
            pos = draw(st.integers(0, len(text) - 1))
            text = text[:pos] + (text[pos] * 2 if op == "chardup" else "") + text[pos + 1 :]
    return text


def _check_outcome(path: Path) -> None:
    ctx = run_pipeline(path)
    for diag in ctx.sink.diagnostics:
        render_plain(diag)  # rendering must not fail either
        if diag.span is not None:
            site = diag.span.use_site()
            assert 0 <= site.start <= site.end <= len(site.file.text)
    render_json(ctx.sink.diagnostics)
    if not ctx.sink.has_errors:
        assert ctx.config is not None


@pytest.mark.skipif(not SEEDS, reason="no seed configs")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=mutated_config())
def test_mutated_configs_only_give_diagnostics(text: str, tmp_path: Path) -> None:
    path = tmp_path / "mutated.cfg"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _check_outcome(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_only_give_diagnostics(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bytes.cfg"
    path.write_bytes(data)
    _check_outcome(path)


# ---------------------------------------------------------------------------
# The whole pipeline, build included: issue 9's include, define, nesting and
# long-line cases. Each input is run through ``check``, then through ``build``
# when the check is clean; the generated module must compile.
# ---------------------------------------------------------------------------

#: the new tests below scale with ``KCC_FUZZ_EXAMPLES`` too, from a smaller base
SMALL = max(10, EXAMPLES // 6)

HEAD = 'listen=udp:127.0.0.1:5060\nloadmodule "sl.so"\nloadmodule "pv.so"\nloadmodule "xlog.so"\n'
ROUTE = 'request_route {\n\t$var(a) = 1;\n\txlog("L_INFO", "a=$var(a)\\n");\n\texit;\n}\n'


def _built(path: Path) -> set[str]:
    """``_check_outcome`` plus the ``build`` stage when the check is clean; returns
    the diagnostic codes. The generated module must be valid Python."""
    _check_outcome(path)
    ctx = run_pipeline(path, stop_after="build")
    for diag in ctx.sink.diagnostics:
        render_plain(diag)
        if diag.span is not None:
            site = diag.span.use_site()
            assert 0 <= site.start <= site.end <= len(site.file.text)
    if ctx.sink.has_errors:
        assert ctx.python is None
    else:
        assert ctx.python is not None
        compile(ctx.python, "<generated>", "exec", dont_inherit=True)
    return {d.code for d in ctx.sink.diagnostics}


def _fuzz_settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# -- 1. includes ----------------------------------------------------------------------

INCLUDE_KEYWORDS = ["include_file", "import_file", "#!include_file", "#!import_file"]
#: what an included file holds: settings, a route, directives, nothing, bytes
FILE_BODIES = [
    "",
    "\n",
    "debug=2\n",
    "debug=3",  # no trailing newline
    ROUTE,
    'route[R] {\n\txlog("L_INFO", "r\\n");\n}\n',
    "#!define INCLUDED 1\n",
    "#!ifdef INCLUDED\ndebug=4\n#!endif\n",
    "#!ifdef NEVER\n",  # opens a block the includer closes (or not)
    "#!endif\n",
    "\x00\x01\xff\xfe",
    "request_route {\n",  # a block left open
    "}\n",
]


@st.composite
def include_tree(draw: st.DrawFn) -> dict[str, str | bytes | None]:
    """Files by relative name (None: a directory) whose main file is ``main.cfg``."""
    names = [f"f{i}.cfg" for i in range(draw(st.integers(1, 5)))] + ["sub/g.cfg", "sub"]
    files: dict[str, str | bytes | None] = {"sub": None}
    for name in names[:-1]:
        if draw(st.booleans()):
            files[name] = draw(st.sampled_from(FILE_BODIES))
        elif draw(st.integers(0, 9)) == 0:
            files[name] = draw(st.binary(max_size=64))
    targets = [*names, "main.cfg", "missing.cfg", ".", "..", "/", "sub/../f0.cfg", ""]

    def include_line() -> str:
        keyword = draw(st.sampled_from(INCLUDE_KEYWORDS))
        target = draw(st.sampled_from(targets))
        quote = draw(st.sampled_from(['"', '"', "'", ""]))
        line = f"{keyword} {quote}{target}{quote}"
        if draw(st.integers(0, 5)) == 0:
            line = f"#!ifdef {draw(st.sampled_from(['INCLUDED', 'KAMAILIO_5', 'NO']))}\n{line}\n"
            line += draw(st.sampled_from(["#!else\n", ""])) + "#!endif"
        return line + draw(st.sampled_from(["\n", "\r\n", ""]))

    for name in [n for n, body in files.items() if isinstance(body, str)]:
        lines = [include_line() for _ in range(draw(st.integers(0, 3)))]
        body = files[name]
        assert isinstance(body, str)
        files[name] = "".join(lines) + body if draw(st.booleans()) else body + "\n" + "".join(lines)
    main = [include_line() for _ in range(draw(st.integers(1, 4)))]
    files["main.cfg"] = HEAD + "".join(main) + draw(st.sampled_from(["", ROUTE]))
    return files


def _write_tree(root: Path, files: dict[str, str | bytes | None]) -> Path:
    for name, body in sorted(files.items(), key=lambda item: item[1] is not None):
        path = root / name
        if body is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8", errors="surrogateescape")
    return root / "main.cfg"


@_fuzz_settings(SMALL)
@given(files=include_tree())
def test_include_trees_only_give_diagnostics(
    files: dict[str, str | bytes | None], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("inc")
    _built(_write_tree(root, files))


@pytest.mark.parametrize("keyword", INCLUDE_KEYWORDS)
def test_include_edge_cases(keyword: str, tmp_path: Path) -> None:
    """Self-inclusion, a cycle, a directory, a missing file, binary and empty files,
    a chain of 200 includes and a file included twice: diagnostics, never a crash."""
    required = keyword.removeprefix("#!") == "include_file"
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty.cfg").write_text("")
    (tmp_path / "bin.cfg").write_bytes(bytes(range(256)))
    (tmp_path / "nonl.cfg").write_text("debug=2")
    (tmp_path / "a.cfg").write_text(f'{keyword} "b.cfg"\n')
    (tmp_path / "b.cfg").write_text(f'{keyword} "a.cfg"\n')
    (tmp_path / "twice.cfg").write_text("route[T] {\n\texit;\n}\n")
    chain = tmp_path / "chain"
    chain.mkdir()
    for i in range(200):
        (chain / f"c{i}.cfg").write_text(f'{keyword} "c{i + 1}.cfg"\n' if i < 199 else "")
    cases = {
        "self": (f'{keyword} "main.cfg"\n', {"E0117"}),
        "cycle": (f'{keyword} "a.cfg"\n', {"E0117"}),
        "dir": (f'{keyword} "dir"\n', {"E0112"} if required else set()),
        "missing": (f'{keyword} "missing.cfg"\n', {"E0112"} if required else set()),
        "empty": (f'{keyword} "empty.cfg"\n', set()),
        "nonl": (f'{keyword} "nonl.cfg"\n', set()),
        "deep": (f'{keyword} "chain/c0.cfg"\n', {"E0117"}),
        "twice": (f'{keyword} "twice.cfg"\n{keyword} "twice.cfg"\n', {"E0304"}),
        "binary": (f'{keyword} "bin.cfg"\n', None),
        "ifdef": (f'#!ifdef NOT_DEFINED\n{keyword} "missing.cfg"\n#!endif\n', set()),
    }
    for name, (line, expected) in cases.items():
        main = tmp_path / "main.cfg"
        main.write_text(HEAD + line + ROUTE)
        codes = _built(main)
        errors = {c for c in codes if c.startswith("E")}
        if expected is not None:
            assert errors == expected, (name, codes)
        else:
            assert errors, name


# -- 2. defines -----------------------------------------------------------------------

DEFINE_NAMES = ["A", "B", "C", "X", "KAMAILIO_5", "debug", "MOD_sl"]
DEFINE_BODIES = [
    "", "1", "A", "B", "A B", '"quoted"', '"', "'", "#!define", "#!endif", "$var(a)",
    "exit;", "request_route { exit; }", "{", "}", "(a) a", "\\\n 2", "1 \\\n+ 2 \\\n",
    "A \\\n", "include_file \"x.cfg\"", "/* open comment", "\x00", "\udcff",
]  # fmt: skip
DIRECTIVE_LINES = [
    "#!define {n} {b}", "#!trydef {n} {b}", "#!redefine {n} {b}", "#!undef {n}",
    "#!tryundef {n}", "#!defexp {n} {b}", "#!defexps {n} 1 + {b}", "#!defenv {n}=HOME",
    "#!defenv {n}=KCC_UNSET_VARIABLE", "#!trydefenv {n}", '#!substdef "/{n}/{b}/"',
    '#!subst "/{n}/{b}/g"', '#!subst "/(/x/"', "#!ifdef {n}", "#!ifndef {n}",
    "#!ifexp {n} > 1", "#!else", "#!endif", "#!define {n}({n}) {b}", "!!define {n} {b}",
    "#!define {n}-x 1", "#!KAMAILIO", "#!bogus {n}",
]  # fmt: skip
USES = [
    "$var(a) = {n};", 'xlog("L_INFO", "{n} $var(a)\\n");', "if ({n}) {{ exit; }}",
    "$var(s) = \"{n}\" + {n};", "{n}", "route({n});",
]  # fmt: skip


@st.composite
def define_config(draw: st.DrawFn) -> str:
    lines: list[str] = []
    depth = 0
    for _ in range(draw(st.integers(1, 25))):
        name = draw(st.sampled_from(DEFINE_NAMES))
        if draw(st.integers(0, 3)) == 0:
            use = draw(st.sampled_from(USES)).format(n=name)
            lines.append(f"request_route {{\n\t{use}\n\texit;\n}}")
            continue
        template = draw(st.sampled_from(DIRECTIVE_LINES))
        line = template.format(n=name, b=draw(st.sampled_from(DEFINE_BODIES)))
        depth += template.startswith(("#!ifdef", "#!ifndef", "#!ifexp"))
        depth -= template == "#!endif"
        lines.append(line)
    if draw(st.booleans()):  # balance the conditionals (or leave them unbalanced)
        lines.extend(["#!endif"] * max(0, depth))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return HEAD + ending.join(lines) + ending + draw(st.sampled_from(["", ROUTE]))


@_fuzz_settings(SMALL * 2)
@given(text=define_config())
def test_define_configs_only_give_diagnostics(text: str, tmp_path: Path) -> None:
    path = tmp_path / "defines.cfg"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _built(path)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["#!define A A", "request_route { $var(a) = A; }"], {"E0122"}),
        (["#!define A B", "#!define B A", "request_route { $var(a) = A; }"], {"E0122"}),
        (["#!define A 1 + \\", "    2 + \\", "    3", "request_route { $var(a) = A; }"], set()),
        (["#!define A \"x\\", "request_route { $var(a) = A; }"], None),
        (["#!define Q \"", 'request_route { $var(a) = Q; }"'], None),
        (["#!define D #!endif", "request_route { $var(a) = 1; D }"], None),
        (["#!define F(a) a", "request_route { $var(a) = F(1); }"], None),
        # a chain of 300 defines: past the expansion depth limit, a diagnostic
        ([*(f"#!define D{i} D{i + 1}" for i in range(300)), "#!define D300 1",
          "request_route { $var(a) = D0; }"], {"E0122"}),
        # one define that doubles 18 times: bounded by the expansion limit
        ([*(f"#!define E{i} E{i + 1} E{i + 1}" for i in range(18)), "#!define E18 1",
          "request_route { $var(a) = E0; }"], {"E0122"}),
        (["#!ifdef A"] * 500 + ["#!endif"] * 499, {"E0110"}),
        (["#!ifndef A"] * 500 + ["#!else"] * 500 + ["#!endif"] * 501, {"E0111"}),
        (['#!subst "/a/b/"', '#!subst "/b/a/"', 'request_route { $var(a) = "a"; }'], set()),
        (['#!substdef "/S/S S/"', "request_route { $var(a) = S; }"], {"E0122"}),
    ],
)  # fmt: skip
def test_define_edge_cases(lines: list[str], expected: set[str] | None, tmp_path: Path) -> None:
    path = tmp_path / "d.cfg"
    path.write_text(HEAD + "\n".join(lines) + "\n" + ROUTE)
    errors = {c for c in _built(path) if c.startswith("E")}
    if expected is not None:  # None: any outcome, as long as it is only diagnostics
        assert expected <= errors if expected else not errors, errors


# -- 3. deep nesting ------------------------------------------------------------------

NEST_OPEN = {
    "if": "if ($var(a) == 1) {\n",
    "else": "if ($var(a) == 1) { $var(b) = 2; } else {\n",
    "while": "while ($var(a) < 1) {\n",
    "switch": "switch ($var(a)) {\ncase 1:\n",
    "fallthrough": "switch ($var(a)) {\ncase 2:\n$var(c) = 1;\ncase 1:\n",
}
NEST_CLOSE = {"switch": "break;\n}\n", "fallthrough": "break;\n}\n"}
EXPRESSIONS = {
    "parens": lambda n: "(" * n + "1" + ")" * n,
    "plus": lambda n: " + ".join(["$var(a)"] * (n + 1)),
    "concat": lambda n: " + ".join(['"s"'] * (n + 1)),
    "and": lambda n: " && ".join(["$var(a) == 1"] * (n + 1)),
    "or": lambda n: " || ".join(["!$var(a)"] * (n + 1)),
    "neg": lambda n: "-" * n + "1",
    "not": lambda n: "!" * n + "$var(a)",
    "mixed": lambda n: "(" * n + "".join(f"{i} * (" for i in range(n)) + "1" + ")" * (2 * n),
}


def _nested(kinds: list[str], expr: str) -> str:
    opened = "".join(NEST_OPEN[k] for k in kinds)
    closed = "".join(NEST_CLOSE.get(k, "}\n") for k in reversed(kinds))
    return f"{HEAD}request_route {{\n{opened}$var(a) = {expr};\n{closed}exit;\n}}\n"


DEPTHS = st.one_of(st.integers(0, 30), st.integers(31, 150), st.integers(151, 4000))


@_fuzz_settings(SMALL)
@given(
    kinds=st.lists(st.sampled_from(sorted(NEST_OPEN)), max_size=1).flatmap(
        lambda first: st.tuples(st.just(first), DEPTHS)
    ),
    expr=st.sampled_from(sorted(EXPRESSIONS)),
    expr_depth=DEPTHS,
)
def test_deep_nesting_compiles_or_is_refused(
    kinds: tuple[list[str], int], expr: str, expr_depth: int, tmp_path: Path
) -> None:
    """Blocks and expressions nested from 1 to thousands of levels: the module builds
    and compiles, or kcc says the nesting is too deep (E0210, E0906)."""
    first, depth = kinds
    path = tmp_path / "deep.cfg"
    path.write_text(_nested(first * depth, EXPRESSIONS[expr](expr_depth)))
    codes = _built(path)
    assert {c for c in codes if c.startswith("E")} <= {"E0210", "E0906"}, codes


@pytest.mark.parametrize("kind", sorted(NEST_OPEN))
@pytest.mark.parametrize("depth", [1, 19, 20, 21, 50, 64, 98, 99, 100, 200, 3000])
def test_nested_blocks(kind: str, depth: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.cfg"
    path.write_text(_nested([kind] * depth, "1"))
    errors = {c for c in _built(path) if c.startswith("E")}
    assert errors <= {"E0210", "E0906"}
    if depth >= 100:  # past any limit
        assert errors
    if depth <= 19:
        assert not errors


@pytest.mark.parametrize("expr", sorted(EXPRESSIONS))
@pytest.mark.parametrize("depth", [1, 50, 100, 127, 128, 129, 1000, 5000])
def test_deep_expressions(expr: str, depth: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.cfg"
    path.write_text(_nested([], EXPRESSIONS[expr](depth)))
    errors = {c for c in _built(path) if c.startswith("E")}
    assert errors <= {"E0210"}
    assert bool(errors) == (depth >= 1000) or 100 <= depth < 1000


# -- 4. long lines, odd bytes -----------------------------------------------------------


def _long_inputs() -> dict[str, bytes]:
    body = ROUTE.encode()
    return {
        "1MB comment line": HEAD.encode() + b"# " + b"x" * 1_000_000 + b"\n" + body,
        "100k line of statements": HEAD.encode()
        + b"request_route { "
        + b"$var(a) = 1; " * 8_000
        + b"exit; }\n",
        "100k string": HEAD.encode()
        + b'request_route {\n\t$var(a) = "'
        + b"s" * 100_000
        + b'";\n\texit;\n}\n',
        "100k identifier": HEAD.encode() + b"request_route {\n\t" + b"i" * 100_000 + b";\n}\n",
        "100k define name": HEAD.encode() + b"#!define " + b"D" * 100_000 + b" 1\n" + body,
        "100k route name": HEAD.encode() + b"route[" + b"r" * 100_000 + b"] {\n\texit;\n}\n"
        + b"request_route {\n\troute(" + b"r" * 100_000 + b");\n}\n",
        "100k pv name": HEAD.encode() + b"request_route {\n\t$var(" + b"v" * 100_000
        + b") = 1;\n\texit;\n}\n",
        "NUL bytes": HEAD.encode() + b"request_route {\n\t$var(a) = \"a\x00b\";\x00\n}\n\x00",
        "BOM": b"\xef\xbb\xbf" + HEAD.encode() + body,
        "two BOMs": b"\xef\xbb\xbf\xef\xbb\xbf" + HEAD.encode() + body,
        "UTF-16 BOM": b"\xff\xfe" + (HEAD + ROUTE).encode("utf-16-le"),
        "CRLF": (HEAD + ROUTE).replace("\n", "\r\n").encode(),
        "CR": (HEAD + ROUTE).replace("\n", "\r").encode(),
        "mixed endings": (HEAD + ROUTE).replace("\n", "\r", 3).replace("\t", "\r\n\t").encode(),
        "invalid UTF-8": HEAD.encode() + b"request_route {\n\t$var(a) = \"\xc3\x28\xff\";\n"
        + b"\t\xed\xa0\x80xlog(\"L_INFO\", \"\xf8\x88\x80\x80\x80\");\n\texit;\n}\n",
        "only NULs": b"\x00" * 10_000,
        "line continuation at EOF": HEAD.encode() + b"#!define A 1 \\",
    }  # fmt: skip


LONG_INPUTS = _long_inputs()


@pytest.mark.parametrize("name", sorted(LONG_INPUTS))
def test_long_lines_and_odd_bytes(name: str, tmp_path: Path) -> None:
    path = tmp_path / "long.cfg"
    path.write_bytes(LONG_INPUTS[name])
    _built(path)


@_fuzz_settings(SMALL)
@given(
    name=st.sampled_from(sorted(LONG_INPUTS)),
    cut=st.integers(0, 2_000_000),
    insert=st.sampled_from([b"\x00", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\xff", b"\\\n", b'"']),
)
def test_odd_bytes_anywhere(name: str, cut: int, insert: bytes, tmp_path: Path) -> None:
    data = LONG_INPUTS[name]
    cut %= len(data) + 1
    path = tmp_path / "odd.cfg"
    path.write_bytes(data[:cut] + insert + data[cut:])
    _built(path)
