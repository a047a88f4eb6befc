"""Function calls: resolution, arity, route kinds, argument kinds (kcc.sema.calls).

The route-kind rules follow Kamailio 5.6 as checked with ``kamailio -c``: a call is
checked against the kind of the block it is written in, a ``route[X]`` body as a
request route, and an ``event_route`` accepts exports with the REQUEST or ONEVENT bit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kcc_runtime.exports import Route

from kcc import ast
from kcc.diagnostics import Diagnostic, render_plain
from kcc.pipeline import CompileContext, run_pipeline
from kcc.sema.calls import allowed_in, describe_routes
from kcc.sema.context import iter_nodes

from .kamailio import agrees_with_kamailio, needs_kamailio


def run(tmp_path: Path, text: str) -> CompileContext:
    path = tmp_path / "t.cfg"
    path.write_text(text, encoding="utf-8")
    return run_pipeline(path)


def found(ctx: CompileContext) -> list[tuple[str, int, int]]:
    return [
        (d.code, d.span.line if d.span else 0, d.span.column if d.span else 0)
        for d in ctx.sink.sorted()
    ]


def only(ctx: CompileContext, code: str) -> Diagnostic:
    matches = [d for d in ctx.sink.diagnostics if d.code == code]
    assert len(matches) == 1, [render_plain(d) for d in ctx.sink.diagnostics]
    return matches[0]


def calls(ctx: CompileContext) -> list[ast.Call]:
    assert ctx.config is not None
    return [node for node in iter_nodes(ctx.config) if isinstance(node, ast.Call)]


MODULES = 'loadmodule "tm.so"\nloadmodule "sl.so"\nloadmodule "textops.so"\n'


# -- resolution ----------------------------------------------------------------------------


def test_resolved_calls_are_recorded(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        MODULES + 'request_route { if (is_method("INVITE")) { t_relay(); } forward(); }\n',
    )
    assert not ctx.sink.diagnostics
    assert ctx.sema is not None
    resolved = {call.name: ctx.sema.resolved[id(call)] for call in calls(ctx)}
    assert {name: info.module for name, info in resolved.items()} == {
        "is_method": "textops",
        "t_relay": "tm",
        "forward": "core",
    }
    assert resolved["t_relay"].cmd.arity == 0


def test_unknown_function_did_you_mean(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        MODULES + "request_route {\n"
        '    if (is_methd("INVITE")) { exit; }\n'
        "    frobnicate();\n"
        "    has_totagg();\n"
        "}\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0401"]
    assert [(d.span.line if d.span else 0, d.message, d.help) for d in diags] == [
        (5, "unknown function `is_methd`", "a function with a similar name exists: `is_method`"),
        (6, "unknown function `frobnicate`", None),
        (
            7,
            "unknown function `has_totagg`",
            "a function with a similar name exists: `has_totag` (module `siputils`)",
        ),
    ]
    assert diags[0].span is not None and diags[0].span.column == 9


def test_unknown_function_beside_an_unknown_module(tmp_path: Path) -> None:
    ctx = run(tmp_path, 'loadmodule "mymod.so"\nrequest_route { my_func(); }\n')
    assert found(ctx) == [("E0302", 1, 12), ("E0401", 2, 17)]
    assert only(ctx, "E0401").notes == (
        "module `mymod` is unknown to kcc: its functions cannot be checked",
    )


def test_function_of_a_module_not_loaded(tmp_path: Path) -> None:
    ctx = run(tmp_path, 'loadmodule "sl.so"\nrequest_route {\n    t_relay();\n}\n')
    diag = only(ctx, "E0403")
    assert diag.message == "`t_relay` is a function of module `tm`, which is not loaded"
    assert (diag.span.line, diag.span.column) == (3, 5)  # type: ignore[union-attr]
    assert diag.label == "`tm` is not loaded"
    assert diag.help == 'add `loadmodule "tm.so"`'


def test_function_exported_by_several_modules_not_loaded(tmp_path: Path) -> None:
    ctx = run(tmp_path, 'request_route { www_authorize("realm", "subscriber"); }\n')
    diag = only(ctx, "E0403")
    assert diag.message == (
        "`www_authorize` is exported by modules `auth_db` and `uid_auth_db`, "
        "none of which is loaded"
    )
    assert diag.help == (
        'load one of them: `loadmodule "auth_db.so"` or `loadmodule "uid_auth_db.so"`'
    )


def test_wrong_arity_lists_the_counts(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        MODULES + "request_route {\n"
        '    sl_send_reply("404");\n'
        '    t_relay("udp:127.0.0.1:5080");\n'
        '    forward("127.0.0.1", 5080, 1);\n'
        "}\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0404"]
    assert [(d.span.line if d.span else 0, d.message, d.label) for d in diags] == [
        (5, "`sl_send_reply` takes 2 arguments, not 1", "1 argument given"),
        (6, "`t_relay` takes 0 or 2 arguments, not 1", "1 argument given"),
        (7, "`forward` takes 0, 1 or 2 arguments, not 3", "3 arguments given"),
    ]


def test_wrong_arity_points_at_a_module_that_has_it(tmp_path: Path) -> None:
    # uid_domain's lookup_domain takes 2 arguments, domain's takes 1 or 2
    ctx = run(tmp_path, 'loadmodule "uid_domain.so"\nrequest_route { lookup_domain("$fd"); }\n')
    diag = only(ctx, "E0404")
    assert diag.message == "`lookup_domain` takes 2 arguments, not 1"
    assert diag.help == (
        "`lookup_domain` with 1 argument is a function of module `domain`: "
        'add `loadmodule "domain.so"`'
    )


def test_bare_module_call_and_too_many_arguments_are_syntax_errors_only(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "xlog.so"\nrequest_route {\n    xlog;\n'
        '    xlog("L_INFO", "a", "b", "c", "d", "e", "f");\n    force_rport;\n}\n',
    )
    assert [code for code, _, _ in found(ctx)] == ["E0201", "E0208"]


# -- route kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "kind", "allowed"),
    [
        (Route.REQUEST | Route.FAILURE, Route.FAILURE, True),
        (Route.REQUEST, Route.FAILURE, False),
        (Route.ANY, Route.ONSEND, True),
        (Route.REQUEST, Route.EVENT, True),  # an event route accepts REQUEST
        (Route.FAILURE | Route.EVENT, Route.EVENT, True),
        (Route.FAILURE, Route.EVENT, False),
        (Route.ONREPLY, Route.CORE_ONREPLY, True),
    ],
)
def test_allowed_in(routes: Route, kind: Route, allowed: bool) -> None:
    assert allowed_in(routes, kind) is allowed


def test_describe_routes() -> None:
    assert describe_routes(Route.ANY) == "any route"
    assert describe_routes(Route.REQUEST | Route.ONREPLY) == (
        "request_route, onreply_route[...], reply_route"
    )


def test_function_not_allowed_in_the_enclosing_block(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        MODULES + 'request_route { t_on_failure("F"); t_relay(); }\n'
        'failure_route[F] {\n    sl_send_reply("500", "Error");\n    route(DROP);\n}\n'
        "route[DROP] { t_drop_replies(); }\n"
        'onreply_route { t_on_failure("F"); }\n'
        'event_route[tm:local-request] { t_drop_replies(); sl_send_reply("500", "E"); }\n',
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0402"]
    assert [(d.span.line if d.span else 0, d.message, d.label) for d in diags] == [
        (
            6,
            "`sl_send_reply` cannot be used in `failure_route[F]`",
            "not allowed in a failure_route",
        ),
        (9, "`t_drop_replies` cannot be used in `route[DROP]`", "not allowed in a request_route"),
        (
            10,
            "`t_on_failure` cannot be used in `onreply_route`",
            "not allowed in the core reply route",
        ),
        (
            11,
            "`t_drop_replies` cannot be used in `event_route[tm:local-request]`",
            "not allowed in an event_route",
        ),
    ]
    assert diags[0].notes == ("`sl_send_reply` may be used in: request_route",)
    assert diags[0].help == "reply through the transaction instead: `t_reply` (module `tm`)"
    assert diags[1].help is None
    assert diags[1].notes[1] == (
        "Kamailio checks the body of a `route[...]` block as a request_route, "
        "wherever it is called from"
    )
    # no W0402 on top of the E0402 in route[DROP]
    assert not [d for d in ctx.sink.diagnostics if d.code == "W0402"]


GRAPH = """\
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "siputils.so"
request_route {
    t_on_branch("MANAGE_BRANCH");
    t_on_failure("MANAGE_FAILURE");
    route(NATMANAGE);
    t_relay();
}
route[NATMANAGE] {
    if (has_totag() && check_route_param("nat=yes")) {
        exit;
    }
}
branch_route[MANAGE_BRANCH] {
    route(NATMANAGE);
}
failure_route[MANAGE_FAILURE] {
    route(CHECK);
}
route[CHECK] {
    route(NATMANAGE);
}
"""


def test_route_reached_from_a_branch_route_is_a_warning(tmp_path: Path) -> None:
    ctx = run(tmp_path, GRAPH)
    diag = only(ctx, "W0402")
    assert not ctx.sink.has_errors
    assert diag.message == (
        "`check_route_param` runs in `branch_route[MANAGE_BRANCH]` and "
        "`failure_route[MANAGE_FAILURE]` through `route[NATMANAGE]`, where it is not allowed"
    )
    assert (diag.span.line, diag.span.column) == (12, 24)  # type: ignore[union-attr]
    assert diag.label == "not allowed in a branch_route or a failure_route"
    assert [(lab.span.line, lab.text) for lab in diag.labels] == [
        (17, "a branch_route calls it here"),
        (20, "a failure_route reaches it through here"),
    ]
    assert diag.notes[:2] == (
        "call path: `branch_route[MANAGE_BRANCH]` -> `route[NATMANAGE]`",
        "call path: `failure_route[MANAGE_FAILURE]` -> `route[CHECK]` -> `route[NATMANAGE]`",
    )
    # has_totag is allowed everywhere: no warning for it
    assert "has_totag" not in diag.message


GUARDED = """\
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "nathelper.so"
request_route {
    t_on_branch("MANAGE_BRANCH");
    t_on_reply("MANAGE_REPLY");
    t_on_failure("MANAGE_FAILURE");
    route(NATMANAGE);
    t_relay();
}
route[NATMANAGE] {
    if (is_request()) {
        if (has_totag() && check_route_param("nat=yes")) { setflag(1); }
        if (t_is_branch_route()) { add_rr_param(";nat=yes"); }
    }
    if (is_reply() && is_first_hop()) { set_contact_alias(); }
    if (!is_reply()) { add_rr_param(";x=1"); } else { set_contact_alias(); }
}
branch_route[MANAGE_BRANCH] { route(NATMANAGE); }
onreply_route[MANAGE_REPLY] { route(NATMANAGE); }
failure_route[MANAGE_FAILURE] { route(NATMANAGE); }
"""


def test_message_type_guards_rule_route_kinds_out(tmp_path: Path) -> None:
    # the stock config's route[NATMANAGE] (WITH_NAT): kamailio -c 5.6 accepts it, and
    # a call under `is_request()` never runs in the reply route, one under `is_reply()`
    # never in the branch or failure route (they work on the request). Only
    # check_route_param in branch/failure routes is left: written there directly,
    # Kamailio 5.6 rejects it ("misused command check_route_param"). Without the
    # guards, add_rr_param (reply route) and set_contact_alias (failure route) warn too.
    ctx = run(tmp_path, GUARDED)
    assert not ctx.sink.has_errors
    warnings = [d for d in ctx.sink.sorted() if d.code == "W0402"]
    assert [(d.span.line if d.span else 0, d.message) for d in warnings] == [
        (
            15,
            "`check_route_param` runs in `branch_route[MANAGE_BRANCH]` and "
            "`failure_route[MANAGE_FAILURE]` through `route[NATMANAGE]`, where it is not allowed",
        ),
    ]


def test_route_reached_from_an_event_route(tmp_path: Path) -> None:
    # an event route accepts REQUEST functions: no W0402 for sl_send_reply; a
    # FAILURE-only function is refused in route[R] (checked as a request route)
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nloadmodule "sl.so"\nevent_route[tm:local-request] { route(R); }\n'
        'route[R] { sl_send_reply("500", "E"); t_drop_replies(); }\nrequest_route { exit; }\n',
    )
    assert found(ctx) == [("E0402", 4, 39)]
    assert ctx.sema is not None
    block = next(r for r in ctx.sema.route_blocks() if r.name == "R")
    assert ctx.sema.reach[id(block)] == Route.EVENT


# -- arguments -----------------------------------------------------------------------------


def test_constant_arguments(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        MODULES + 'loadmodule "pv.so"\n#!define FR "F"\nrequest_route {\n'
        '    $var(m) = "INVITE";\n'
        "    if (is_method($var(m))) { exit; }\n"
        '    if (is_method("INV" + "ITE")) { exit; }\n'
        "    t_on_failure(FR);\n"
        "    t_on_failure(F);\n"
        "}\n"
        "failure_route[F] { exit; }\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0405"]
    assert [(d.span.line if d.span else 0, d.message, d.label) for d in diags] == [
        (8, "argument 1 of `is_method` must be a constant", "not a constant"),
        (11, "argument 1 of `t_on_failure` is a bare word", "not a value"),
    ]
    assert diags[0].notes == (
        'Kamailio stops with "parameter 1 is not constant": the value is read once, at start-up',
    )
    assert diags[1].help == 'quote it: `"F"`'


def test_core_actions_take_bare_words(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        "flags FLT_ACC:1;\nrequest_route {\n    setflag(FLT_ACC);\n    route(R);\n"
        "    forward(127.0.0.1);\n}\nroute[R] { if (isflagset(FLT_ACC)) { exit; } }\n",
    )
    assert [d for d in ctx.sink.diagnostics if d.code.startswith("E04")] == []


def test_pseudo_variable_to_store_into(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "pv.so"\nloadmodule "tcpops.so"\nrequest_route {\n'
        '    tcp_get_conid("127.0.0.1:5060", "conid");\n'
        '    tcp_get_conid("127.0.0.1:5060", $var(conid));\n'
        '    tcp_get_conid("127.0.0.1:5060", "$var(conid)");\n'
        '    tcp_get_conid("127.0.0.1:5060", 3);\n'
        "}\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0405"]
    assert [(d.span.line if d.span else 0, d.message) for d in diags] == [
        (4, "argument 2 of `tcp_get_conid` must be a pseudo-variable to store into"),
        (7, "argument 2 of `tcp_get_conid` must be a pseudo-variable to store into"),
    ]


def test_dynamic_route_name_is_accepted_for_route_only(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "pv.so"\nrequest_route { $var(r) = "R"; route($var(r)); }\n'
        "route[R] { exit; }\n",
    )
    assert found(ctx) == []


# -- Kamailio itself -----------------------------------------------------------------------


DIFFERENTIAL = [
    ('loadmodule "sl.so"\nfailure_route[F] {\nsl_send_reply("404", "x");\n}\n', "E0402"),
    (
        'loadmodule "tm.so"\nroute[R] {\nt_drop_replies();\n}\nfailure_route[F] { route(R); }\n',
        "E0402",
    ),
    ('loadmodule "tm.so"\nevent_route[tm:local-request] {\nt_drop_replies();\n}\n', "E0402"),
    ('loadmodule "sl.so"\nevent_route[tm:local-request] { sl_send_reply("404", "x"); }\n', None),
    ('loadmodule "tm.so"\nevent_route[tm:local-request] { t_branch_timeout(); }\n', None),
    ('loadmodule "sl.so"\nonsend_route {\nsl_send_reply("404", "x");\n}\n', "E0402"),
    (
        'loadmodule "tm.so"\nonreply_route {\nt_on_failure("F");\n}\nfailure_route[F] { exit; }\n',
        "E0402",
    ),
    ('loadmodule "sl.so"\nrequest_route {\nsl_send_reply("404");\n}\n', "E0404"),
    ('loadmodule "sl.so"\nrequest_route {\nt_relay();\n}\n', "E0403"),
    ('request_route {\nnosuchfn("404");\n}\n', "E0401"),
    ("request_route {\nappend_branch();\n}\n", "E0403"),  # corex in 5.6, not core
    (
        'loadmodule "tm.so"\nloadmodule "pv.so"\nrequest_route {\n$var(x) = "A";\n'
        "t_on_failure($var(x));\n}\nfailure_route[A] { exit; }\n",
        "E0405",
    ),
    (
        'loadmodule "textops.so"\nloadmodule "pv.so"\nrequest_route {\n$var(a) = "x";\n'
        "is_method($var(a));\n}\n",
        "E0405",
    ),
    (
        'loadmodule "tm.so"\nroute[R] { t_relay(); }\nbranch_route[B] { route(R); }\n'
        'request_route { t_on_branch("B"); route(R); }\n',
        None,
    ),
]


@needs_kamailio
@pytest.mark.parametrize(("text", "code"), DIFFERENTIAL)
def test_agrees_with_kamailio(tmp_path: Path, text: str, code: str | None) -> None:
    agrees_with_kamailio(tmp_path, text, code)


def test_bare_unknown_word_suggests_the_statement(tmp_path: Path) -> None:
    ctx = run(tmp_path, "request_route {\n    exti;\n}\n")
    diag = only(ctx, "E0401")
    assert diag.message == "unknown function `exti`"
    assert diag.help == "a statement with a similar name exists: `exit;`"
    assert [code for code, _, _ in found(ctx)] == ["E0401", "E0201"]
