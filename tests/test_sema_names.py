"""Names at the top level and the route call graph: kcc.sema.resolve and kcc.sema.reach.

Each Kamailio behaviour asserted here was checked with ``kamailio -c`` (5.6); the
differential tests at the end run Kamailio again where it is installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kcc_runtime.exports import Route

from kcc import ast
from kcc.diagnostics import Diagnostic, render_plain
from kcc.pipeline import CompileContext, run_pipeline
from kcc.sema.context import SemaContext

from .conftest import REPO, STOCK_CFG
from .kamailio import agrees_with_kamailio, needs_kamailio

MY_CODES = {
    "E0301",
    "E0302",
    "E0303",
    "E0304",
    "W0305",
    "W0306",
    "E0312",
    "E0313",
    "E0314",
    "W0315",
}


def run(tmp_path: Path, text: str, name: str = "t.cfg") -> CompileContext:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return run_pipeline(path)


def found(ctx: CompileContext, codes: set[str] | None = None) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic (of ``codes``), in order."""
    return [
        (d.code, d.span.line if d.span else 0, d.span.column if d.span else 0)
        for d in ctx.sink.sorted()
        if codes is None or d.code in codes
    ]


def only(ctx: CompileContext, code: str) -> Diagnostic:
    matches = [d for d in ctx.sink.diagnostics if d.code == code]
    assert len(matches) == 1, [render_plain(d) for d in ctx.sink.diagnostics]
    return matches[0]


def sema(ctx: CompileContext) -> SemaContext:
    assert ctx.sema is not None
    return ctx.sema


def block(ctx: CompileContext, kind: ast.RouteKind, name: str | None) -> ast.Route:
    for route in sema(ctx).route_blocks():
        if route.kind is kind and route.name == name:
            return route
    raise AssertionError(f"no {kind.value}[{name}]")


# -- loadmodule ------------------------------------------------------------------------


def test_loaded_modules_in_load_order(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nloadmodule "/usr/lib/kamailio/modules/sl.so"\n'
        'loadmodule "rr"\nrequest_route { exit; }\n',
    )
    assert list(sema(ctx).loaded) == ["tm", "sl", "rr"]
    assert not ctx.sink.diagnostics


def test_unknown_module_with_did_you_mean(tmp_path: Path) -> None:
    ctx = run(tmp_path, 'loadmodule "textop.so"\nrequest_route { exit; }\n')
    diag = only(ctx, "E0302")
    assert diag.message == "unknown module `textop`"
    assert (diag.span.line, diag.span.column) == (1, 12)  # type: ignore[union-attr]
    assert diag.help == "a module with a similar name exists: `textops`"
    assert "textop" not in sema(ctx).loaded


def test_module_loaded_twice_points_at_both(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "sl.so"\nloadmodule "tm.so"\nloadmodule "/x/sl.so"\nrequest_route { exit; }\n',
    )
    diag = only(ctx, "E0303")
    assert diag.message == "module `sl` is loaded twice"
    assert diag.span is not None and diag.span.line == 3
    assert [lab.span.line for lab in diag.labels] == [1]
    assert list(sema(ctx).loaded) == ["sl", "tm"]


# -- the route table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        # named duplicates: "duplicate route" at the second header
        ("route[X] { exit; }\nroute[X] { exit; }", [("E0304", 3, 7)]),
        ('route[X] { exit; }\nroute["X"] { exit; }', [("E0304", 3, 7)]),
        ("failure_route[F] { exit; }\nfailure_route[F] { exit; }", [("E0304", 3, 15)]),
        ("branch_route[B] { exit; }\nbranch_route[B] { exit; }", [("E0304", 3, 14)]),
        ("onreply_route[R] { exit; }\nonreply_route[R] { exit; }", [("E0304", 3, 15)]),
        ("onsend_route[S] { exit; }\nonsend_route[S] { exit; }", [("E0304", 3, 14)]),
        (
            "event_route[tm:local-request] { exit; }\nevent_route[tm:local-request] { exit; }",
            [("E0304", 3, 13)],
        ),
        # route[0] is the main route, failure_route[0] the unnamed failure route
        ("route[0] { exit; }", [("E0304", 2, 7)]),
        ("failure_route { exit; }\nfailure_route[0] { exit; }", [("E0304", 3, 15)]),
        # unnamed blocks are appended by Kamailio: no error
        ("request_route { exit; }", []),
        ("route { exit; }", []),
        ("reply_route { exit; }\nonreply_route { exit; }", []),
        ("onreply_route { exit; }\nonreply_route[0] { exit; }", []),
        ("onsend_route { exit; }\nonsend_route { exit; }", []),
        ("failure_route[0] { exit; }\nfailure_route { exit; }", []),
        # same name, different tables
        ("route[X] { exit; }\nfailure_route[X] { exit; }", []),
    ],
)
def test_duplicate_routes_as_kamailio(
    tmp_path: Path, blocks: str, expected: list[tuple[str, int, int]]
) -> None:
    ctx = run(tmp_path, f"request_route {{ exit; }}\n{blocks}\n")
    assert found(ctx, {"E0304"}) == expected


def test_duplicate_route_message_and_first_block_kept(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        "request_route { route(RELAY); }\nroute[RELAY] { exit; }\nroute[RELAY] { drop; }\n",
    )
    diag = only(ctx, "E0304")
    assert diag.message == "duplicate route block `route[RELAY]`"
    assert diag.label == "defined again here"
    assert [(lab.span.line, lab.text) for lab in diag.labels] == [
        (2, "`route[RELAY]` first defined here")
    ]
    first = sema(ctx).routes[(ast.RouteKind.ROUTE, "RELAY")]
    assert first.span.line == 2
    assert found(ctx) == [("E0304", 3, 7)]  # the duplicate is not "never called" too


# -- modparam ----------------------------------------------------------------------------

HEADER = 'loadmodule "tm.so"\nloadmodule "sl.so"\nloadmodule "rr.so"\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('modparam("tm", "fr_timer", 3000)', []),
        ('modparam("TM", "fr_timer", 3000)', []),  # case is ignored
        ('modparam("t.", "fr_timer", 3000)', []),  # a regex: matches tm only
        ('modparam("tm|rr", "fr_timer", 3000)', [("E0313", 4, 19)]),  # not an rr param
        ('modparam("usrloc", "db_mode", 0)', [("E0312", 4, 10)]),
        ('modparam("nomod|xmod", "x", 1)', [("E0312", 4, 10)]),
        ('modparam("tm", "fr_timeout", 3000)', [("E0313", 4, 16)]),
        ('modparam("tm", "fr_timer", "3000")', [("E0314", 4, 28)]),
        ('modparam("rr", "cookie_secret", 1)', [("E0313", 4, 16)]),
        ('modparam("rr", "enable_full_lr", "1")', [("E0314", 4, 34)]),
        ('modparam("t[m", "fr_timer", 3000)', [("E0407", 4, 10)]),
    ],
)
def test_modparam_as_kamailio(
    tmp_path: Path, line: str, expected: list[tuple[str, int, int]]
) -> None:
    ctx = run(tmp_path, f"{HEADER}{line}\nrequest_route {{ exit; }}\n")
    assert found(ctx) == expected


def test_modparam_unknown_parameter_did_you_mean(tmp_path: Path) -> None:
    ctx = run(tmp_path, f'{HEADER}modparam("tm", "fr_timeout", 3)\nrequest_route {{ exit; }}\n')
    diag = only(ctx, "E0313")
    assert diag.message == "module `tm` has no parameter `fr_timeout`"
    assert diag.help == "a parameter with a similar name exists: `fr_timer`"


def test_modparam_wrong_type_messages(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        f'{HEADER}modparam("tm", "fr_timer", "30")\nmodparam("rr", "enable_full_lr", "yes")\n'
        'loadmodule "dispatcher.so"\nmodparam("dispatcher", "list_file", 7)\n'
        "request_route { exit; }\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "E0314"]
    assert [(d.message, d.help) for d in diags] == [
        (
            "parameter `fr_timer` of module `tm` takes an integer, not a string",
            "write the number without quotes: `30`",
        ),
        (
            "parameter `enable_full_lr` of module `rr` takes an integer, not a string",
            "write the number without quotes: `1`",
        ),
        (
            "parameter `list_file` of module `dispatcher` takes a string, not a number",
            'quote the value: `"7"`',
        ),
    ]


def test_modparam_before_its_loadmodule(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'modparam("tm", "fr_timer", 3)\nloadmodule "tm.so"\nrequest_route { exit; }\n',
    )
    diag = only(ctx, "E0312")
    assert diag.message == "`modparam` for module `tm`, which is not loaded"
    assert diag.label == "`tm` is loaded only further down"
    assert diag.help == 'move this `modparam` below `loadmodule "tm.so"`'
    assert [lab.span.line for lab in diag.labels] == [2]


def test_modparam_for_known_module_not_loaded(tmp_path: Path) -> None:
    ctx = run(tmp_path, f'{HEADER}modparam("usrloc", "db_mode", 0)\nrequest_route {{ exit; }}\n')
    assert only(ctx, "E0312").help == 'add `loadmodule "usrloc.so"` above this line'


def test_modparam_of_unknown_module_is_not_reported_again(tmp_path: Path) -> None:
    ctx = run(
        tmp_path, 'loadmodule "textop.so"\nmodparam("textop", "x", 1)\nrequest_route { exit; }\n'
    )
    assert found(ctx) == [("E0302", 1, 12)]


def test_modparam_set_twice(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        f'{HEADER}loadmodule "pv.so"\nmodparam("tm", "fr_timer", 1)\n'
        'modparam("pv", "shvset", "a=i:0")\nmodparam("pv", "shvset", "b=i:0")\n'
        'modparam("tm|sl", "fr_timer", 2)\nrequest_route { exit; }\n',
    )
    # shvset goes to a setter: repeatable; the regex line sets tm's fr_timer again
    # (and sl has no fr_timer: E0313)
    assert found(ctx) == [("E0313", 8, 19), ("W0315", 8, 19)]
    diag = only(ctx, "W0315")
    assert diag.message == "parameter `fr_timer` of module `tm` is set twice"
    assert [lab.span.line for lab in diag.labels] == [5]
    assert diag.help == "remove one of the two `modparam` lines"


# -- reach: route kinds through the call graph ---------------------------------------------

GRAPH_CFG = """\
loadmodule "tm.so"
request_route {
    t_on_branch("B");
    t_on_failure("F");
    route(A);
}
route[A] { route(SHARED); }
route[SHARED] { exit; }
route[NEVER] { route(SHARED); }
branch_route[B] { route(SHARED); }
failure_route[F] { route(A); }
event_route[tm:local-request] { route(EV); }
route[EV] { exit; }
onreply_route[R] { exit; }
"""


def test_route_kinds_flow_through_the_call_graph(tmp_path: Path) -> None:
    ctx = run(tmp_path, GRAPH_CFG)
    reach = sema(ctx).reach

    def kinds(kind: ast.RouteKind, name: str | None) -> Route:
        return reach[id(block(ctx, kind, name))]

    assert kinds(ast.RouteKind.REQUEST, None) == Route.REQUEST
    assert kinds(ast.RouteKind.ROUTE, "A") == Route.REQUEST | Route.FAILURE
    # reached from request_route (via A), failure_route (via A) and branch_route
    assert kinds(ast.RouteKind.ROUTE, "SHARED") == Route.REQUEST | Route.FAILURE | Route.BRANCH
    assert kinds(ast.RouteKind.BRANCH, "B") == Route.BRANCH
    assert kinds(ast.RouteKind.ROUTE, "EV") == Route.EVENT
    assert kinds(ast.RouteKind.ONREPLY, "R") == Route.TM_ONREPLY
    # nothing calls NEVER: it gets the kind Kamailio checks it as
    assert kinds(ast.RouteKind.ROUTE, "NEVER") == Route.REQUEST
    callees = sema(ctx).callees[id(block(ctx, ast.RouteKind.ROUTE, "A"))]
    assert [r.name for r in callees] == ["SHARED"]
    assert found(ctx) == [("W0305", 9, 7), ("W0305", 14, 15)]


def test_dynamic_route_call_reaches_every_subroute(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "pv.so"\nbranch_route[B] { $var(r) = "X"; route($var(r)); }\n'
        'request_route { t_on_branch("B"); }\nroute[X] { exit; }\nroute[Y] { exit; }\n'
        'loadmodule "tm.so"\n',
    )
    x = block(ctx, ast.RouteKind.ROUTE, "X")
    assert sema(ctx).reach[id(x)] == Route.BRANCH
    assert "W0305" not in {d.code for d in ctx.sink.diagnostics}


# -- E0301 -------------------------------------------------------------------------------


def test_unknown_route_call_did_you_mean(tmp_path: Path) -> None:
    ctx = run(tmp_path, "request_route { route(RELAYY); }\nroute[RELAY] { exit; }\n")
    diag = only(ctx, "E0301")
    assert diag.message == "unknown route `RELAYY`"
    assert (diag.span.line, diag.span.column) == (1, 23)  # type: ignore[union-attr]
    assert diag.label == "no `route[RELAYY]` block exists"
    assert diag.help == "a route with a similar name exists: `RELAY`"
    # the candidate is never called: shown, and not reported again as W0305
    assert [(lab.span.line, lab.text) for lab in diag.labels] == [
        (2, "`route[RELAY]` is never called")
    ]
    assert found(ctx) == [("E0301", 1, 23)]


def test_chapter_reroute_names_the_existing_failure_route(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nrequest_route {\n    t_on_failure("REROUTE");\n    t_relay();\n}\n'
        "failure_route[MANAGE_FAILURE] { exit; }\n",
    )
    diag = only(ctx, "E0301")
    assert diag.message == "unknown failure route `REROUTE`"
    assert (diag.span.line, diag.span.column) == (3, 18)  # type: ignore[union-attr]
    assert diag.help == "the only failure route is `MANAGE_FAILURE`: use its name"
    assert found(ctx) == [("E0301", 3, 18)]


def test_unknown_routes_of_every_arming_function(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nrequest_route {\n t_on_branch("NB");\n t_on_reply("NR");\n'
        ' t_on_branch_failure("NBF");\n t_on_failure("0");\n route(0);\n}\n'
        "failure_route[A] { exit; }\nfailure_route[B] { exit; }\n",
    )
    messages = [d.message for d in ctx.sink.sorted() if d.code == "E0301"]
    assert messages == [
        "unknown branch route `NB`",
        "unknown reply route `NR`",
        "unknown branch-failure event route `NBF`",
    ]
    # t_on_failure("0") disarms, route(0) is the main route: not unknown. With two
    # failure routes and no E0301 of that kind, both are reported unused.
    assert found(ctx, {"W0305"}) == [("W0305", 9, 15), ("W0305", 10, 15)]


def test_unknown_route_lists_the_existing_ones(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nrequest_route { t_on_failure("Z"); }\n'
        "failure_route[ALPHA] { exit; }\nfailure_route[BETA] { exit; }\n",
    )
    assert only(ctx, "E0301").help == "use the name of an existing failure route: `ALPHA`, `BETA`"


def test_unknown_route_with_header_in_a_comment(tmp_path: Path) -> None:
    ctx = run(tmp_path, "request_route { route(RELAY); }\n# route[RELAY] { exit; }\n")
    diag = only(ctx, "E0301")
    assert diag.notes == (
        f"`route[RELAY]` is written at {tmp_path / 't.cfg'}:2, but not as a block Kamailio "
        "reads (in a comment, or in a disabled `#!ifdef` section)",
    )
    assert diag.help == "define the block: `route[RELAY] { ... }`"


# -- W0305 and W0306 ---------------------------------------------------------------------


def test_unused_blocks(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nrequest_route { route(A); }\nroute[A] { route(A); }\n'
        "route[B] { exit; }\nfailure_route[F] { exit; }\nbranch_route[BR] { exit; }\n"
        "onreply_route[R] { exit; }\nonreply_route { exit; }\nfailure_route { exit; }\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "W0305"]
    assert [(d.span.line if d.span else 0, d.message, d.label) for d in diags] == [
        (4, "`route[B]` is never called", "no `route(B)` calls this block"),
        (5, "`failure_route[F]` is never armed", 'no `t_on_failure("F")` names this block'),
        (6, "`branch_route[BR]` is never armed", 'no `t_on_branch("BR")` names this block'),
        (7, "`onreply_route[R]` is never armed", 'no `t_on_reply("R")` names this block'),
    ]


def test_block_named_by_a_module_is_not_unused(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        'loadmodule "tm.so"\nloadmodule "rtimer.so"\nloadmodule "async.so"\n'
        'modparam("rtimer", "timer", "name=ta;interval=10;mode=1;")\n'
        'modparam("rtimer", "exec", "timer=ta;route=PING")\n'
        'modparam("tm", "on_sl_reply", "SLREPLY")\n'
        'request_route { async_route("LATER", 1); }\n'
        "route[PING] { exit; }\nroute[LATER] { exit; }\nonreply_route[SLREPLY] { exit; }\n",
    )
    assert "W0305" not in {d.code for d in ctx.sink.diagnostics}


def test_recursion(tmp_path: Path) -> None:
    ctx = run(
        tmp_path,
        "request_route { route(A); }\nroute[A] { route(B); }\nroute[B] { route(A); route(B); }\n",
    )
    diags = [d for d in ctx.sink.sorted() if d.code == "W0306"]
    assert [(d.span.line if d.span else 0, d.message) for d in diags] == [
        (3, "recursive route calls: `route[A]` -> `route[B]` -> `route[A]`"),
        (3, "`route[B]` calls itself"),
    ]
    assert [d.span.column for d in diags if d.span] == [12, 22]


def test_deep_call_chain_never_overflows(tmp_path: Path) -> None:
    count = 3000
    blocks = "".join(f"route[R{i}] {{ route(R{i + 1}); }}\n" for i in range(count))
    ctx = run(tmp_path, f"request_route {{ route(R0); }}\n{blocks}route[R{count}] {{ exit; }}\n")
    assert not ctx.sink.diagnostics
    last = block(ctx, ast.RouteKind.ROUTE, f"R{count}")
    assert sema(ctx).reach[id(last)] == Route.REQUEST


# -- the chapter and real configs ----------------------------------------------------------


def test_chapter_failover_as_printed() -> None:
    """Typographic quotes, the REROUTE/MANAGE_FAILURE mismatch, the route header eaten
    by a comment and the missing parenthesis; nothing else (no cascade of unknown
    `RELAY` routes, whose block the comment swallowed)."""
    ctx = run_pipeline(REPO / "tests" / "data" / "chapter" / "failover.cfg")
    assert found(ctx) == [("E0103", 1, 12), ("E0301", 36, 41), ("E0201", 39, 7), ("E0201", 58, 7)]
    assert only(ctx, "E0301").help == "the only failure route is `MANAGE_FAILURE`: use its name"


def test_chapter_failover_typos_fixed_keeps_the_failover_bug(tmp_path: Path) -> None:
    text = (REPO / "tests" / "data" / "chapter" / "failover.cfg").read_text(encoding="utf-8")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("wrapper route[RELAY] {", "wrapper\nroute[RELAY] {")
    text = text.replace('if(!t_check_status("408|500")', 'if(!t_check_status("408|500"))')
    ctx = run(tmp_path, text)
    errors = [(d.code, d.span.line if d.span else 0) for d in ctx.sink.sorted() if d.is_error]
    assert errors == [("E0301", 36)]
    assert not [d for d in ctx.sink.diagnostics if d.code in {"W0305", "E0304", "E0312"}]


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.cfg")), ids=lambda p: p.name)
def test_examples_have_no_name_errors(example: Path) -> None:
    ctx = run_pipeline(example)
    assert not [render_plain(d) for d in ctx.sink.diagnostics if d.code in MY_CODES]
    assert not ctx.sink.has_errors


# -- Kamailio itself -----------------------------------------------------------------------


#: (config, the kcc code expected at the line Kamailio reports, or None: both accept)
DIFFERENTIAL = [
    ('loadmodule "sl.so"\nloadmodule "sl.so"\nrequest_route { exit; }\n', "E0303"),
    ('loadmodule "nosuchmod.so"\nrequest_route { exit; }\n', "E0302"),
    ("request_route { exit; }\nroute[X] { exit; }\nroute[X] { exit; }\n", "E0304"),
    ("request_route { exit; }\nroute[0] { exit; }\n", "E0304"),
    ("request_route { exit; }\nrequest_route { exit; }\n", None),
    ("route[0] { exit; }\nrequest_route { exit; }\n", None),
    ("request_route { exit; }\nonreply_route { exit; }\nonreply_route[0] { exit; }\n", None),
    ('loadmodule "tm.so"\nmodparam("tm", "fr_timer", "3")\nrequest_route { exit; }\n', "E0314"),
    (
        'loadmodule "rr.so"\nmodparam("rr", "cookie_secret", 1)\nrequest_route { exit; }\n',
        "E0313",
    ),
    ('loadmodule "tm.so"\nmodparam("TM", "fr_timer", 3)\nrequest_route { exit; }\n', None),
    (
        'loadmodule "tm.so"\nloadmodule "rr.so"\nmodparam("tm|rr", "fr_timer", 3)\n'
        "request_route { exit; }\n",
        "E0313",
    ),
    ('modparam("tm", "fr_timer", 3)\nloadmodule "tm.so"\nrequest_route { exit; }\n', "E0312"),
    ('loadmodule "tm.so"\nmodparam("t[", "fr_timer", 3)\nrequest_route { exit; }\n', "E0407"),
    (
        'loadmodule "tm.so"\nmodparam("tm", "fr_timer", 3)\nmodparam("tm", "fr_timer", 4)\n'
        "request_route { exit; }\n",
        None,
    ),
]


@needs_kamailio
@pytest.mark.parametrize(("text", "code"), DIFFERENTIAL)
def test_agrees_with_kamailio(tmp_path: Path, text: str, code: str | None) -> None:
    agrees_with_kamailio(tmp_path, text, code)


@pytest.mark.skipif(not STOCK_CFG.exists(), reason="the kamailio package is not installed")
def test_stock_config_natmanage_is_a_warning() -> None:
    """route[NATMANAGE] is called from branch, reply and failure routes and uses the
    request-route `check_route_param`: Kamailio accepts it, kcc warns."""
    ctx = run_pipeline(STOCK_CFG, defines={"WITH_NAT": None})
    assert not ctx.sink.has_errors
    warnings = [d for d in ctx.sink.diagnostics if d.code == "W0402"]
    names = {d.message.split("`")[1] for d in warnings}
    assert "check_route_param" in names
    check = next(d for d in warnings if "`check_route_param`" in d.message)
    assert "`branch_route[MANAGE_BRANCH]`" in check.message
    assert "call path: `branch_route[MANAGE_BRANCH]` -> `route[NATMANAGE]`" in check.notes
