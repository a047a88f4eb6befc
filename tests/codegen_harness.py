"""Compile a cfg snippet with kcc, import the generated module, run a route on a message.

The tests of generated code go through the real compiler and the real runtime: the cfg
text is written to a file, ``run_pipeline(..., stop_after="build")`` turns it into
Python (generation, black, ``compile()``), the text is written next to it and imported
under a fresh module name (so two builds never share state), and a route function is
called on a :class:`~kcc_runtime.RequestContext` built from a small SIP request, with
``$var`` values preset in ``ctx.proc.vars``. Nothing is mocked but the engine (the
part that would put bytes on the network).

    built = build_cfg(CFG_TEXT, tmp_path)
    run = run_route(built, "request_route", variables={"a": 1})
    assert run.vars["r"] == 2 and run.outcome == "returned"
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final, Literal, cast

from kcc_runtime import values as v
from kcc_runtime.context import (
    Context,
    Engine,
    Process,
    Received,
    RequestContext,
    ScriptDrop,
    ScriptExit,
)
from kcc_runtime.sip import parse_message

from kcc import ast
from kcc.diagnostics import render_plain
from kcc.pipeline import CompileContext, run_pipeline

__all__ = [
    "OPTIONS",
    "Built",
    "RouteRun",
    "assignments",
    "build_cfg",
    "new_context",
    "run_route",
]

#: the request every route runs on unless a test gives another
OPTIONS: Final = (
    b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=1\r\n"
    b"Call-ID: harness\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

_counter = itertools.count(1)


class _NoNetwork:
    """The engine of a harness run: routes of these tests never reach the network, so
    a call that tries to is a test failure."""

    def send_reply(self, ctx: Context, code: int, reason: str) -> int:
        raise AssertionError(f"unexpected reply {code} {reason}")

    def forward(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        raise AssertionError(f"unexpected forward to {host}:{port}")


@dataclass(frozen=True)
class Built:
    """One compiled cfg: the pipeline's context, the Python text and its module."""

    compiled: CompileContext
    python: str
    module: ModuleType

    def route(self, name: str) -> object:
        """A generated function by Python name (``request_route``, ``route_SUB``)."""
        return getattr(self.module, name)


@dataclass(frozen=True)
class RouteRun:
    """What running one route did: how it ended, its value, ``$rc`` and ``$var``."""

    outcome: Literal["returned", "exited", "dropped"]
    value: int | None
    rc: int
    vars: dict[str, v.Value]


def build_cfg(text: str, directory: Path, name: str = "snippet.cfg") -> Built:
    """Compile ``text`` with kcc up to ``build`` and import the result.

    Raises AssertionError (with the rendered diagnostics) when kcc reports an error.
    """
    cfg = directory / name
    cfg.write_text(text, encoding="utf-8")
    compiled = run_pipeline(cfg, stop_after="build")
    errors = [d for d in compiled.sink.diagnostics if d.is_error]
    python = getattr(compiled, "python", None)
    if errors or not isinstance(python, str):
        rendered = "\n".join(render_plain(d) for d in errors) or "no Python generated"
        raise AssertionError(f"kcc build failed:\n{rendered}")
    module_name = f"_kcc_harness_{next(_counter)}"
    target = directory / f"{module_name}.py"
    target.write_text(python, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_name, target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[module_name]
    return Built(compiled, python, module)


def new_context(
    built: Built, variables: dict[str, v.Value] | None = None, message: bytes = OPTIONS
) -> RequestContext:
    """A request context for ``built``'s router, ``$var`` preset from ``variables``."""
    router = getattr(built.module, "ROUTER", None)
    engine = cast("Engine", _NoNetwork())
    proc = router.process(engine) if router is not None else Process(engine=engine)
    proc.vars.update(variables or {})
    received = Received("127.0.0.1", 5099, "127.0.0.1", 5060)
    request = parse_message(message)
    return RequestContext(proc, request, received)


def run_route(
    built: Built,
    route: str = "request_route",
    *,
    variables: dict[str, v.Value] | None = None,
    message: bytes = OPTIONS,
) -> RouteRun:
    """Run one generated route function on a fresh context; ``exit`` and ``drop`` are
    outcomes, any other exception propagates (it is a kcc or runtime bug)."""
    ctx = new_context(built, variables, message)
    fn = built.route(route)
    assert callable(fn), route
    try:
        value = fn(ctx)
    except ScriptExit:
        return RouteRun("exited", None, ctx.rc, dict(ctx.proc.vars))
    except ScriptDrop:
        return RouteRun("dropped", None, ctx.rc, dict(ctx.proc.vars))
    assert isinstance(value, int), value
    return RouteRun("returned", value, ctx.rc, dict(ctx.proc.vars))


def assignments(built: Built, route: ast.RouteKind | None = None) -> dict[str, ast.Expr]:
    """The right-hand side of every ``$var(NAME) = expr;`` at the top level of the
    first route block (of kind ``route`` when given), by NAME, parsed by kcc itself."""
    config = built.compiled.config
    assert config is not None
    found: dict[str, ast.Expr] = {}
    for item in config.items:
        if not isinstance(item, ast.Route) or (route is not None and item.kind != route):
            continue
        for stmt in item.body.stmts:
            if (
                isinstance(stmt, ast.AssignStmt)
                and isinstance(stmt.target, ast.PVar)
                and stmt.target.name == "var"
                and stmt.target.inner_text is not None
            ):
                found[stmt.target.inner_text] = stmt.value
        break
    return found
