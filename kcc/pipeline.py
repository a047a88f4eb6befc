"""The compiler as a list of named stages (Cython's pipeline, cairo's pass manager).

    preprocess -> parse -> check -> build

Each stage reads and fills the :class:`CompileContext`. Stages report to
``ctx.sink`` and keep going so one run reports everything a stage can find; the
pipeline stops *between* stages once there are errors (a fatal error inside a stage,
such as a syntax error, stops it at once). ``stop_after`` ends the run after the named
stage, which is what ``kcc check --dump-after STAGE`` prints. ``build`` (code generation,
:mod:`kcc.codegen.emit`, then :func:`kcc.format.format_module`) runs only when asked
for (``stop_after="build"``): ``kcc check`` never generates code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from kcc import ast
from kcc.diagnostics import DiagnosticSink, FatalError
from kcc.parser import parse
from kcc.preprocess import Preprocessed, explain_skipped_define, preprocess
from kcc.sema import SemaContext, run_passes

__all__ = ["STAGES", "CompileContext", "StageName", "run_pipeline", "source_name"]

StageName = str


@dataclass
class CompileContext:
    path: Path
    defines: dict[str, str | None]
    sink: DiagnosticSink = field(default_factory=DiagnosticSink)
    preprocessed: Preprocessed | None = None
    config: ast.Config | None = None
    sema: SemaContext | None = None
    #: the parser dropped top-level text it could not parse (see kcc.parser.ParseResult)
    partial: bool = False
    lost_routes: set[tuple[str, str | None]] = field(default_factory=set)
    #: the generated module (``build``), formatted
    python: str | None = None
    #: the last stage that ran to completion
    completed: StageName | None = None


def _preprocess(ctx: CompileContext) -> None:
    ctx.preprocessed = preprocess(ctx.path, ctx.sink, defines=ctx.defines)
    ctx.sink.coalesce("E0103", "strings use typographic quotes")


def _parse(ctx: CompileContext) -> None:
    assert ctx.preprocessed is not None
    pre = ctx.preprocessed
    main = pre.files[0]
    eof = main.span(len(main.text), len(main.text))
    before = len(ctx.sink.diagnostics)
    parsed = parse(pre.tokens, ctx.sink, eof)
    if pre.skipped_defines:
        found = ctx.sink.diagnostics
        found[before:] = [explain_skipped_define(d, pre.skipped_defines) for d in found[before:]]
    ctx.config = parsed.config
    ctx.partial = parsed.partial
    ctx.lost_routes = parsed.lost_routes


def _check(ctx: CompileContext) -> None:
    assert ctx.config is not None
    assert ctx.preprocessed is not None
    ctx.sema = SemaContext(
        ctx.config,
        ctx.sink,
        defines=dict(ctx.preprocessed.defines),
        partial=ctx.partial,
        lost_routes=set(ctx.lost_routes),
        compat=ctx.preprocessed.compat,
    )
    run_passes(ctx.sema)


def source_name(path: Path) -> str:
    """The cfg path as the generated header names it: relative to the working directory
    when the cfg is under it (so the same tree built from anywhere with the same
    relative path is identical), else absolute (``/etc/kamailio/kamailio.cfg`` reads
    the same whatever directory it is built from)."""
    resolved = path.resolve()
    try:
        relative = os.path.relpath(resolved, Path.cwd().resolve())
    except ValueError:  # another drive: no relative path exists
        relative = str(resolved)
    if relative == ".." or relative.startswith(("../", "..\\")):
        relative = str(resolved)
    return PurePath(relative).as_posix()


def _build(ctx: CompileContext) -> None:
    import libcst as cst

    from kcc.codegen.emit import BuildError, CodeGenerator, input_hash, module_code
    from kcc.format import FormatStream
    from kcc.sema.databases import BUILD_CODE, CHECK_CODE

    assert ctx.sema is not None
    assert ctx.preprocessed is not None
    name = source_name(ctx.path)
    generator = CodeGenerator(ctx.sema, source=name, digest=input_hash(ctx.preprocessed.tokens))
    functions: dict[int, str] = {}

    def started(function: cst.FunctionDef) -> None:
        # black starts on each route function while the next one is generated
        functions[id(function)] = code = cst.Module(body=[function]).code
        stream.submit(code)

    with FormatStream() as stream:
        try:
            module = generator.generate(on_function=started)
        except BuildError as refused:
            if any(d.code == BUILD_CODE for d in refused.diagnostics):
                # the refusal replaces the check's warning of it (kcc.sema.databases)
                ctx.sink.diagnostics = [d for d in ctx.sink.diagnostics if d.code != CHECK_CODE]
            for diagnostic in refused.diagnostics:
                ctx.sink.emit(diagnostic)
            return
        ctx.python = stream.finish(module_code(module, functions), filename=f"<kcc build {name}>")


STAGES: tuple[tuple[StageName, Callable[[CompileContext], None]], ...] = (
    ("preprocess", _preprocess),
    ("parse", _parse),
    ("check", _check),
    ("build", _build),
)

#: lexical errors after which the token stream is exactly what the user meant, so
#: parsing on finds independent mistakes instead of a cascade (the book's configs
#: have typographic quotes *and* a missing parenthesis: both are reported)
RECOVERED_CODES = frozenset({"E0103", "E0105", "E0106"})


def _must_stop(sink: DiagnosticSink, stage: StageName) -> bool:
    errors = [d for d in sink.diagnostics if d.is_error]
    if stage == "preprocess":
        return any(d.code not in RECOVERED_CODES for d in errors)
    # the parser recovers (kcc.parser) and says what it dropped, so the semantic passes
    # still run on what was parsed and report independent mistakes
    return bool(errors) and stage != "parse"


STAGE_NAMES: tuple[StageName, ...] = tuple(name for name, _ in STAGES)


def run_pipeline(
    path: str | Path,
    *,
    defines: Mapping[str, str | None] | None = None,
    stop_after: StageName = "check",
) -> CompileContext:
    """Run the stages up to ``stop_after``; never raises for a bad config."""
    if stop_after not in STAGE_NAMES:
        raise ValueError(f"unknown stage {stop_after!r}; stages: {', '.join(STAGE_NAMES)}")
    ctx = CompileContext(Path(path), dict(defines or {}))
    for name, stage in STAGES:
        try:
            stage(ctx)
        except FatalError as fatal:
            ctx.sink.emit(fatal.diagnostic)
            return ctx
        if _must_stop(ctx.sink, name):
            return ctx
        ctx.completed = name
        if name == stop_after:
            break
    return ctx
