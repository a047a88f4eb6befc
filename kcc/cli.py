"""The ``kcc`` command: argument handling and output only, no compiler logic.

Exit codes: 0 clean (warnings allowed, unless ``--werror``), 1 errors in the config (or
warnings under ``--werror``), 2 usage (bad option, unreadable input file), 70 internal
compiler error (a bug in kcc, reported as such, never as a raw traceback).
"""

from __future__ import annotations

import enum
import sys
import traceback
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from kcc import __version__
from kcc.diagnostics import render_json, render_plain, render_rich, summary_line
from kcc.explain import all_codes, explain_page
from kcc.pipeline import STAGE_NAMES, CompileContext, run_pipeline

#: the stages `kcc check --dump-after` can stop after (`build` is `kcc build`'s)
CHECK_STAGES = tuple(name for name in STAGE_NAMES if name != "build")

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70

app = typer.Typer(
    name="kcc",
    help="Compile Kamailio routing configs into checked, typed Python SIP proxies.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


def _parse_defines(values: list[str]) -> dict[str, str | None]:
    defines: dict[str, str | None] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise typer.BadParameter(f"`{item}` is not NAME or NAME=VALUE", param_hint="-D")
        defines[name] = value if sep else None
    return defines


def _internal_error(stage: str, exc: BaseException) -> NoReturn:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    sys.stderr.write(
        f"internal compiler error: {type(exc).__name__}: {exc}\n"
        f"  = note: kcc {__version__}, while running stage `{stage}`, at {where}\n"
        "  = note: this is a bug in kcc, not in your config; please report it with the "
        "config that triggers it\n"
    )
    raise typer.Exit(EXIT_INTERNAL)


def _print_diagnostics(ctx: CompileContext, fmt: OutputFormat, *, werror: bool = False) -> None:
    diagnostics = ctx.sink.sorted()
    if fmt is OutputFormat.json:
        sys.stdout.write(render_json(diagnostics))
        return
    if fmt is OutputFormat.sarif:
        from kcc.sarif import render_sarif

        sys.stdout.write(render_sarif(diagnostics))
        return
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
        for diag in diagnostics:
            console.print(render_rich(diag))
    else:
        for diag in diagnostics:
            sys.stderr.write(render_plain(diag) + "\n")
    if diagnostics:
        summary = summary_line(ctx.sink)
        if werror and ctx.sink.warning_count:
            summary += " (warnings treated as errors: --werror)"
        sys.stderr.write(f"{ctx.path}: {summary}\n")


def _dump(ctx: CompileContext, stage: str) -> str:
    from kcc.dump import dump_ast
    from kcc.preprocess import dump_tokens

    if stage == "preprocess" and ctx.preprocessed is not None:
        return dump_tokens(ctx.preprocessed)
    if ctx.config is not None:
        return dump_ast(ctx.config)
    return ""


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="the config to check", show_default=False)],
    *,
    define: Annotated[
        list[str],
        typer.Option("-D", "--define", help="define NAME[=VALUE], like `kamailio -A`"),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="diagnostics as text, JSON or SARIF 2.1.0")
    ] = OutputFormat.text,
    werror: Annotated[
        bool, typer.Option("--werror", help="warnings count as errors for the exit code")
    ] = False,
    flags: Annotated[
        bool,
        typer.Option(
            "--flags", help="print the flag table: number, names, kind, where set, reset, tested"
        ),
    ] = False,
    dump_after: Annotated[
        str | None,
        typer.Option(
            "--dump-after",
            help=f"print the intermediate form after a stage: {', '.join(CHECK_STAGES)}",
            metavar="STAGE",
        ),
    ] = None,
) -> None:
    """Check a config: preprocessing, syntax and semantic errors, with no Kamailio installed."""
    defines = _parse_defines(define)
    if dump_after is not None and dump_after not in CHECK_STAGES:
        raise typer.BadParameter(
            f"unknown stage `{dump_after}`; stages: {', '.join(CHECK_STAGES)}",
            param_hint="--dump-after",
        )
    if not file.is_file():
        sys.stderr.write(f"error: cannot read `{file}`: no such file\n")
        raise typer.Exit(EXIT_USAGE)
    stage = dump_after or "check"
    try:
        ctx = run_pipeline(file, defines=defines, stop_after=stage)
        dump = _dump(ctx, stage) if dump_after is not None and ctx.completed == stage else None
    except Exception as exc:  # anything escaping the pipeline is a kcc bug
        _internal_error(stage, exc)
    if dump is not None:
        sys.stdout.write(dump)
    if flags and ctx.sema is not None:
        from kcc.sema.flags import build_flag_table, render_flag_table

        try:
            table = render_flag_table(build_flag_table(ctx.sema), main_file=str(file))
        except Exception as exc:  # a kcc bug, as above
            _internal_error("flags", exc)
        sys.stdout.write(table)
    _print_diagnostics(ctx, fmt, werror=werror)
    failed = ctx.sink.has_errors or (werror and ctx.sink.warning_count > 0)
    raise typer.Exit(EXIT_ERRORS if failed else EXIT_OK)


@app.command()
def build(
    file: Annotated[Path, typer.Argument(help="the config to compile", show_default=False)],
    *,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="write the module here (default: stdout)"),
    ] = None,
    define: Annotated[
        list[str],
        typer.Option("-D", "--define", help="define NAME[=VALUE], like `kamailio -A`"),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    check_only: Annotated[
        bool,
        typer.Option(
            "--check",
            help="write nothing; exit 1 with a diff when OUTPUT is not what kcc would generate",
        ),
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="diagnostics as text, JSON or SARIF 2.1.0")
    ] = OutputFormat.text,
) -> None:
    """Compile a config into a Python module (a proxy's routing logic, on kcc_runtime)."""
    defines = _parse_defines(define)
    if not file.is_file():
        sys.stderr.write(f"error: cannot read `{file}`: no such file\n")
        raise typer.Exit(EXIT_USAGE)
    if check_only and output is None:
        raise typer.BadParameter("`--check` compares with an output file: give `-o FILE`")
    try:
        ctx = run_pipeline(file, defines=defines, stop_after="build")
    except Exception as exc:  # anything escaping the pipeline is a kcc bug
        _internal_error("build", exc)
    _print_diagnostics(ctx, fmt)
    if ctx.sink.has_errors or ctx.python is None:
        raise typer.Exit(EXIT_ERRORS)
    if output is None:
        sys.stdout.write(ctx.python)
        raise typer.Exit(EXIT_OK)
    if check_only:
        raise typer.Exit(_check_output(output, ctx.python))
    try:
        output.write_text(ctx.python, encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"error: cannot write `{output}`: {exc.strerror or exc}\n")
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(EXIT_OK)


def _check_output(output: Path, expected: str) -> int:
    """``--check``: 0 when ``output`` holds exactly ``expected``, else 1 and a diff."""
    import difflib

    try:
        current = output.read_text(encoding="utf-8")
    except FileNotFoundError:
        sys.stderr.write(f"{output}: missing; run `kcc build` to create it\n")
        return EXIT_ERRORS
    except (OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"error: cannot read `{output}`: {exc}\n")
        return EXIT_ERRORS
    if current == expected:
        return EXIT_OK
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=str(output),
        tofile=f"{output} (kcc build)",
    )
    sys.stdout.write("".join(diff))
    sys.stderr.write(f"{output}: out of date; run `kcc build` to regenerate it\n")
    return EXIT_ERRORS


def _cache_root() -> Path:
    """Where ``kcc run`` keeps built proxies: ``$KCC_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kcc``, else ``~/.cache/kcc``."""
    import os

    explicit = os.environ.get("KCC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kcc"


def _input_key(file: Path, defines: dict[str, str | None]) -> str | None:
    """The cache key of a build: kcc's version, the defines and the text of every file
    the preprocessor read (the main file and its includes); None when preprocessing
    fails (the full build then reports why)."""
    import hashlib

    ctx = run_pipeline(file, defines=defines, stop_after="preprocess")
    if ctx.sink.has_errors or ctx.preprocessed is None:
        return None
    digest = hashlib.sha256(f"kcc {__version__}\0".encode())
    for name, value in sorted(defines.items()):
        digest.update(f"-D{name}={value}\0".encode())
    for source in ctx.preprocessed.files:
        digest.update(f"{source.path}\0{len(source.text)}\0".encode())
        digest.update(source.text.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="the config to run", show_default=False)],
    *,
    define: Annotated[
        list[str],
        typer.Option("-D", "--define", help="define NAME[=VALUE], like `kamailio -A`"),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Build a config (cached by its input) and run it as a SIP proxy.

    Every option after FILE that kcc does not know goes to the proxy: --listen,
    --children, --log-level, --allow-dst, --rcvbuf, --sndbuf, --stop-timeout."""
    import os

    defines = _parse_defines(define)
    if not file.is_file():
        sys.stderr.write(f"error: cannot read `{file}`: no such file\n")
        raise typer.Exit(EXIT_USAGE)
    try:
        key = _input_key(file, defines)
    except Exception as exc:  # anything escaping the pipeline is a kcc bug
        _internal_error("preprocess", exc)
    target = _cache_root() / "run" / (key or "none")[:32] / f"{file.stem}.py"
    if key is None or not target.is_file():
        try:
            built = run_pipeline(file, defines=defines, stop_after="build")
        except Exception as exc:  # a kcc bug, as above
            _internal_error("build", exc)
        _print_diagnostics(built, OutputFormat.text)
        if built.sink.has_errors or built.python is None:
            raise typer.Exit(EXIT_ERRORS)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(built.python, encoding="utf-8")
            partial.replace(target)
        except OSError as exc:
            sys.stderr.write(f"error: cannot write `{target}`: {exc.strerror or exc}\n")
            raise typer.Exit(EXIT_USAGE) from None
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, str(target), *ctx.args]
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        sys.stderr.write(f"error: cannot start the proxy: {exc.strerror or exc}\n")
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def explain(
    code: Annotated[
        str | None, typer.Argument(help="a diagnostic code such as E0103", show_default=False)
    ] = None,
) -> None:
    """Explain a diagnostic code at length, with examples (no code: list them all)."""
    if code is None:
        for known, title in all_codes().items():
            sys.stdout.write(f"{known}  {title}\n")
        return
    page = explain_page(code.upper())
    if page is None:
        sys.stderr.write(f"error: no diagnostic has the code `{code}` (`kcc explain` lists them)\n")
        raise typer.Exit(EXIT_USAGE)
    sys.stdout.write(page)


@app.command()
def version() -> None:
    """Print kcc's version."""
    sys.stdout.write(f"kcc {__version__}\n")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
