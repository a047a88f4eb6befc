"""kcc_runtime.router: Config helpers, worker state, and route runs that end in every
way (return, exit, drop, a function returning 0, an exception) without killing the
worker."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

import pytest
from kcc_runtime import (
    Config,
    FailureContext,
    Fmt,
    RequestContext,
    Router,
    ScriptDrop,
    ScriptExit,
    kw,
    pv,
    values,
)
from kcc_runtime.context import Received, RuntimeSettings
from kcc_runtime.router import Outcome, OutcomeKind
from kcc_runtime.sip import parse_message

from tests.runtime.fake_engine import FakeEngine

OPTIONS = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"Call-ID: abc\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


#: the tests never reach the engine (tests/runtime/fake_engine.py records calls)
ENGINE: Final = FakeEngine()


def make_ctx(router: Router) -> RequestContext:
    proc = router.process(ENGINE)
    received = Received("127.0.0.1", 5099, "127.0.0.1", 5060)
    return RequestContext(proc, parse_message(OPTIONS), received)


CONFIG = Config(
    globals=(
        ("children", 2),
        ("listen", "udp:127.0.0.1:5060"),
        ("max_while_loops", 5),
        ("max_while_loops", 7),
        ("max_recursive_level", "20"),
        ("alias", "example.com"),
    ),
    modules=("pv", "sl"),
    modparams=(("pv", "shvset", "n=i:12"), ("pv", "shvset", "bad"), ("tm", "fr_timer", 30000)),
    cfg_vars=(("pstn", "gw_ip", "10.0.0.101"),),
)


def test_config_helpers() -> None:
    assert CONFIG.global_value("children") == 2
    assert CONFIG.global_value("max_while_loops") == 7  # the last value wins
    assert CONFIG.global_value("nope", "dflt") == "dflt"
    assert CONFIG.global_values("listen") == ("udp:127.0.0.1:5060",)
    assert CONFIG.modparam_values("tm", "fr_timer") == (30000,)
    assert CONFIG.cfg_var("pstn", "gw_ip") == "10.0.0.101"
    assert CONFIG.cfg_var("pstn", "gw_port") is None
    assert CONFIG.settings() == RuntimeSettings(
        max_while_loops=7, max_recursive_level=20, max_branches=12
    )
    assert CONFIG.myself.sockets == (("127.0.0.1", 5060),)
    assert CONFIG.myself.aliases == (("example.com", 0),)


def test_shvset_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert CONFIG.shv_initial() == {"n": 12}
    assert "bad shvset value 'bad'" in caplog.text
    assert Config(modparams=(("pv", "shvset", "s=s:a:b"),)).shv_initial() == {"s": "a:b"}


def test_process_state() -> None:
    def route_relay(ctx: RequestContext) -> int:
        return 4

    router = Router(CONFIG, routes={"RELAY": route_relay})
    ctx = make_ctx(router)
    assert ctx.proc.settings.max_while_loops == 7
    assert ctx.proc.shared.get("n") == 12
    assert ctx.route_by_name("RELAY") == 4
    assert pv.select("cfg_get.pstn.gw_ip").get(ctx) == "10.0.0.101"
    assert kw.uri_is_myself(ctx, kw.uri(ctx)) == 1  # example.com is an alias


def test_run_outcomes() -> None:
    def returns(ctx: RequestContext) -> int:
        return ctx.route(inner)

    def inner(ctx: RequestContext) -> int:
        return 3

    def exits(ctx: RequestContext) -> int:
        ctx.rc = -5
        raise ScriptExit

    def action_zero(ctx: RequestContext) -> int:
        return ctx.action(0)

    def drops(ctx: RequestContext) -> int:
        ctx.rc = 2
        raise ScriptDrop

    router = Router(CONFIG, request=returns)
    assert router.run(returns, make_ctx(router)) == Outcome(OutcomeKind.RETURNED, 3)
    assert router.run(exits, make_ctx(router)) == Outcome(OutcomeKind.EXITED, -5)
    assert router.run(action_zero, make_ctx(router)) == Outcome(OutcomeKind.EXITED, 0)
    dropped = router.run(drops, make_ctx(router))
    assert dropped == Outcome(OutcomeKind.DROPPED, 2)
    assert dropped.dropped


GENERATED = """\
from kcc_runtime import RequestContext, pv

__kcc_source__ = "broken.cfg"
__kcc_routes__ = {"route_RELAY": "route[RELAY]"}


def request_route(ctx: RequestContext) -> int:  # broken.cfg:10
    return ctx.route(route_RELAY)  # broken.cfg:11


def route_RELAY(ctx: RequestContext) -> int:  # broken.cfg:20
    return {}["missing"]  # broken.cfg:21
"""


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_exceptions_are_contained_and_located(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kcc_router_broken.py"
    path.write_text(GENERATED, encoding="utf-8")
    module = _import(path, "kcc_router_broken")
    try:
        router = Router(CONFIG, request=module.request_route)
        ctx = make_ctx(router)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="kcc_runtime.router"):
            outcome = router.run(module.request_route, ctx)
    finally:
        del sys.modules["kcc_router_broken"]
    assert outcome == Outcome(OutcomeKind.ERROR, -1)
    assert caplog.messages == [
        "error while running the script:\n"
        "KeyError: 'missing'\n"
        "  in broken.cfg:21 (route[RELAY])\n"
        "  called from broken.cfg:11 (request_route)"
    ]


def test_eval_errors_and_recursion_do_not_escape() -> None:
    def divides(ctx: RequestContext) -> int:
        return values.div(1, 0)

    def recurses(ctx: RequestContext) -> int:
        return ctx.route(recurses)

    router = Router(CONFIG)
    assert router.run(divides, make_ctx(router)).kind is OutcomeKind.ERROR
    ctx = make_ctx(router)
    assert router.run(recurses, ctx) == Outcome(OutcomeKind.RETURNED, -1)  # the guard's -1


def test_public_names() -> None:
    import kcc_runtime

    names = (
        "Config Context RequestContext FailureContext ReplyContext BranchContext "
        "OnsendContext EventContext Router RouteFn FailureRouteFn BranchRouteFn "
        "ReplyRouteFn ScriptExit ScriptDrop Fmt kw pv values __version__"
    )
    for name in names.split():
        assert name in kcc_runtime.__all__
        assert hasattr(kcc_runtime, name)
    assert kcc_runtime.Fmt is Fmt
    assert FailureContext.kind.name == "FAILURE"
