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
