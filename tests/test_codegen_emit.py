"""The code generator (``kcc.codegen.emit``): statement and expression forms, Kamailio
semantics checked by running the generated code, determinism, hostile strings, and the
mapping of runtime errors back to cfg lines."""

from __future__ import annotations

import ast as pyast
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import libcst as cst
import pytest
from kcc_runtime.context import Process, Received, RequestContext
from kcc_runtime.debug import format_cfg_report
from kcc_runtime.sip import parse_message

from kcc import CompileFailed, ast, compile_file
from kcc.codegen.emit import CodeGenerator, module_code
from kcc.pipeline import run_pipeline

from . import kamailio_eval
from .conftest import REPO

HEAD = 'listen=udp:127.0.0.1:5060\nloadmodule "sl.so"\nloadmodule "pv.so"\nloadmodule "xlog.so"\n'
OPTIONS = (
    b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


class FakeEngine:
    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.forwards: list[tuple[str | None, str | None, int | None]] = []

    def send_reply(self, ctx: Any, code: int, reason: str) -> int:
        self.replies.append((code, reason))
        return 1

    def forward(self, ctx: Any, proto: str | None, host: str | None, port: int | None) -> int:
        self.forwards.append((proto, host, port))
        return 1


def fake_engine() -> Any:
    """A :class:`FakeEngine` (only the methods these routes call)."""
    return FakeEngine()


def build(tmp_path: Path, body: str, *, name: str = "t.cfg", head: str = HEAD) -> str:
    path = tmp_path / name
    path.write_bytes((head + body).encode("utf-8", "surrogateescape"))
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        return compile_file(name)
    finally:
        os.chdir(cwd)


def load(tmp_path: Path, source: str, stem: str = "gen") -> ModuleType:
    path = tmp_path / f"{stem}.py"
    path.write_text(source, encoding="utf-8")
    module = ModuleType(stem)
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def run(module: ModuleType, proc: Process | None = None) -> tuple[RequestContext, Process]:
    proc = proc or Process(engine=fake_engine())
    ctx = RequestContext(
        proc, parse_message(OPTIONS), Received("127.0.0.1", 5070, "127.0.0.1", 5060)
    )
    module.request_route(ctx)
    return ctx, proc


def route_source(source: str, name: str = "request_route") -> str:
    """The text of one generated function, markers included."""
    start = source.index(f"def {name}(")
    end = source.find("\n\n\n", start)
    return source[start : end if end != -1 else None]


# -- whole configs ---------------------------------------------------------------------


def test_kitchen_sink_builds_every_form() -> None:
    ctx = run_pipeline(REPO / "examples" / "kitchen_sink.cfg", stop_after="build")
    assert not ctx.sink.has_errors
    assert ctx.python is not None
    tree = pyast.parse(ctx.python)
    functions = [n.name for n in tree.body if isinstance(n, pyast.FunctionDef)]
    assert functions == [
        "request_route",
        "route_RELAY",
        "route_CHECK",
        "route_QUOTED",
        "route_7",
        "failure_route_MISSED",
        "branch_route_EACH",
        "onreply_route_REPLY",
        "reply_route",
        "onsend_route",
        "event_route_xhttp__request",
        "event_route_htable__mod_x2dinit",
    ]


def test_every_statement_line_has_a_marker(tmp_path: Path) -> None:
    source = (REPO / "golden" / "kitchen_sink.py").read_text(encoding="utf-8")
    tree = pyast.parse(source)
    lines = source.splitlines()
    for fn in tree.body:
        if not isinstance(fn, pyast.FunctionDef):
            continue
        for node in pyast.walk(fn):
            if isinstance(node, pyast.stmt):
                end = node.body[0].lineno - 1 if hasattr(node, "body") else node.end_lineno
                text = "\n".join(lines[node.lineno - 1 : end])
                assert "# kitchen_sink.cfg:" in text, text


def test_same_bytes_from_another_cwd(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(REPO / "examples" / "stateful_rr.cfg", tmp_path / sub / "p.cfg")
    first = build_in(tmp_path / "a")
    assert first == build_in(tmp_path / "b")
    assert first == build_in(tmp_path / "a")


def build_in(directory: Path) -> str:
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        return compile_file("p.cfg")
    finally:
        os.chdir(cwd)


def test_compile_file_reports_errors(tmp_path: Path) -> None:
    with pytest.raises(CompileFailed) as failed:
        build(tmp_path, "request_route { exit }\n")
    assert "error[E02" in failed.value.diagnostics


# -- statement forms ---------------------------------------------------------------------


def test_stateless_reply_runs(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n\tif (method == "OPTIONS") {\n\t\tsl_send_reply("200", "Alive");\n'
        "\t\texit;\n\t}\n\tdrop;\n}\n",
    )
    assert route_source(source) == (
        "def request_route(ctx: RequestContext) -> int:  # t.cfg:5\n"
        '    if kw.method_eq(ctx, "OPTIONS"):  # t.cfg:6\n'
        '        ctx.action(sl.sl_send_reply(ctx, 200, "Alive"))  # t.cfg:7\n'
        "        raise ScriptExit  # t.cfg:8\n"
        "    raise ScriptDrop  # t.cfg:10"
    )
    module = load(tmp_path, source)
    proc = Process(engine=fake_engine())
    with pytest.raises(module.ScriptExit):
        run(module, proc)
    assert proc.engine.replies == [(200, "Alive")]  # type: ignore[attr-defined]


def test_tail_values_and_returns(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        "request_route {\n\t$var(r) = route(A);\n\t$var(s) = route(B);\n}\n"
        "route[A] {\n\tif ($var(x) > 1) return 5;\n\treturn($var(x) - 3);\n}\n"
        'route[B] {\n\tif ($var(x) > 100) {\n\t\txlog("L_INFO", "big\\n");\n\t}\n}\n',
    )
    assert route_source(source, "route_A") == (
        "def route_A(ctx: RequestContext) -> int:  # t.cfg:9\n"
        "    if v.gt(PV_var_x.get(ctx), 1):  # t.cfg:10\n"
        "        return 5  # t.cfg:10\n"
        "    return ctx.returns(v.sub(PV_var_x.get(ctx), 3))  # t.cfg:11"
    )
    assert route_source(source, "route_B") == (
        "def route_B(ctx: RequestContext) -> int:  # t.cfg:13\n"
        "    if v.gt(PV_var_x.get(ctx), 100):  # t.cfg:14\n"
        '        return ctx.action(xlog.xlog(ctx, "L_INFO", "big\\n"))  # t.cfg:15\n'
        "    return 1  # t.cfg:14"
    )
    module = load(tmp_path, source)
    proc = Process(engine=fake_engine(), vars={"x": 0})
    run(module, proc)
    # route(A) returned -3, stored raw (the whole value of the assignment, as Kamailio
    # does: see CALL_VALUES); route(B) fell off its end: 1
    assert proc.vars["r"] == -3
    assert proc.vars["s"] == 1


def test_while_switch_and_break(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n\t$var(i) = 0;\n\t$var(log) = "";\n'
        "\twhile ($var(i) < 4) {\n\t\tswitch ($var(i)) {\n"
        '\t\t\tcase 0:\n\t\t\t\t$var(log) = $var(log) + "z";\n'
        '\t\t\tcase 1:\n\t\t\t\t$var(log) = $var(log) + "o";\n\t\t\t\tbreak;\n'
        '\t\t\tdefault:\n\t\t\t\t$var(log) = $var(log) + "d";\n\t\t}\n'
        "\t\t$var(i) = $var(i) + 1;\n\t}\n}\n",
    )
    assert "while True:  # t.cfg:9" in source  # fall-through: the case-index form
    assert "_t1 = ctx.loop_guard()  # t.cfg:8" in source
    module = load(tmp_path, source)
    _, proc = run(module)
    # i=0: "z" then falls into case 1: "o"; i=1: "o"; i=2, i=3: default
    assert proc.vars["log"] == "zoodd"


def test_switch_as_if_chain(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n\tswitch ($rU) {\n\t\tcase "alice":\n\t\tcase "bob":\n'
        '\t\t\t$var(k) = 1;\n\t\t\tbreak;\n\t\tcase /"^\\+49":\n\t\t\t$var(k) = 2;\n'
        "\t\t\tbreak;\n\t\tdefault:\n\t\t\t$var(k) = 3;\n\t}\n}\n",
    )
    assert (
        "    _t1 = v.to_str(PV_rU.get(ctx))  # t.cfg:6\n"
        '    if _t1 in ("alice", "bob"):  # t.cfg:7\n'
        "        PV_var_k.set(ctx, 1)  # t.cfg:9\n"
        "    elif v.match_compiled(_t1, RE_1):  # t.cfg:11\n"
        "        PV_var_k.set(ctx, 2)  # t.cfg:12\n"
        "    else:  # t.cfg:14\n"
        "        PV_var_k.set(ctx, 3)  # t.cfg:15\n"
    ) in source


def test_switch_cases_sharing_a_body_test_membership(tmp_path: Path) -> None:
    """The stock config's LOCATION route: ``case -1: case -3:`` then ``case -2:``
    (ruff's PLR1714 refuses ``x == -1 or x == -3``)."""
    source = build(
        tmp_path,
        "request_route {\n\tswitch ($var(rc)) {\n\t\tcase -1:\n\t\tcase -3:\n"
        "\t\t\t$var(k) = 404;\n\t\t\tbreak;\n\t\tcase -2:\n\t\t\t$var(k) = 405;\n"
        "\t\t\tbreak;\n\t\tdefault:\n\t\t\t$var(k) = 200;\n\t}\n}\n",
    )
    assert "    if _t1 in (-1, -3):  # t.cfg:7\n" in source
    assert "    elif _t1 == -2:  # t.cfg:11\n" in source
    module = load(tmp_path, source)
    for rc, expected in ((-1, 404), (-3, 404), (-2, 405), (1, 200), (0, 200)):
        _, proc = run(module, Process(engine=fake_engine(), vars={"rc": rc}))
        assert proc.vars["k"] == expected, rc


def test_runaway_while_is_stopped(tmp_path: Path) -> None:
    source = build(tmp_path, "request_route {\n\twhile (1) {\n\t\t$var(n) = $var(n) + 1;\n\t}\n}\n")
    module = load(tmp_path, source)
    _, proc = run(module, Process(engine=fake_engine(), vars={"n": 0}))
    assert proc.vars["n"] == 100  # max_while_loops


def test_failing_expressions_are_wrapped(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        "request_route {\n\t$var(a) = 7;\n\t$var(a) = 1 / $var(z);\n"
        "\tif ($var(a) / $var(z) == 0 || 1) $var(t) = 1;\n"
        "\tif (!($var(a) mod $var(z))) $var(u) = 1; else $var(u) = 2;\n}\n",
    )
    assert "    except v.EvalError:  # t.cfg:7\n        pass  # t.cfg:7\n" in source
    module = load(tmp_path, source)
    _, proc = run(module, Process(engine=fake_engine(), vars={"z": 0}))
    assert proc.vars["a"] == 7  # the assignment was skipped
    assert proc.vars["t"] == 1  # `x || 1` is 1 without evaluating x (Kamailio's optimizer)
    assert proc.vars["u"] == 2  # a failed condition is false, even under `!`


def test_block_and_assignment_as_values(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n\tif ({ $var(b) = 4; xlog("L_INFO", "x\\n"); }) $var(c) = 1;\n'
        "\t$var(d) = ($var(e) = 6);\n}\n",
    )
    assert "    def _t1() -> int:  # t.cfg:6\n" in source
    module = load(tmp_path, source)
    _, proc = run(module)
    assert (proc.vars["b"], proc.vars["c"], proc.vars["d"], proc.vars["e"]) == (4, 1, 6, 6)


#: ``$var(NAME) = EXPR;`` on an OPTIONS request, and what Kamailio 5.6.3 stored (one
#: OPTIONS through the same lines, values logged with xlog): a call's raw code is kept
#: when the call is the whole value (also after the optimizer removed an identity
#: operator around it), and normalised to 0/1 when it is an operand
CALL_VALUES = [
    ('is_method("INVITE")', -1),
    ('is_method("OPTIONS")', 1),
    ("route(W)", 7),
    ("(route(W))", 7),
    ('!is_method("INVITE")', 1),
    ('is_method("INVITE") + 0', -1),
    ('0 + is_method("INVITE")', -1),
    ('is_method("INVITE") - 0', -1),
    ('is_method("INVITE") * 1', -1),
    ('1 * is_method("INVITE")', -1),
    ('is_method("INVITE") / 1', -1),
    ('is_method("INVITE") | 0', -1),
    ('is_method("INVITE") && 1', -1),
    ('is_method("INVITE") ^ 0', 0),
    ('is_method("INVITE") + 1', 1),
    ('is_method("INVITE") && 3', 0),
    ('(is_method("INVITE") == -1)', 0),
    ('-is_method("INVITE")', 0),
    ('(int)is_method("INVITE")', 0),
    ("route(W) + 0", 7),
    ("(route(W)) * 1", 7),
    ('{ is_method("INVITE"); }', -1),
    ('selval(is_method("INVITE"), "y", "n")', "n"),
]


def test_call_values_as_measured(tmp_path: Path) -> None:
    lines = "".join(f"\t$var(r{i}) = {text};\n" for i, (text, _) in enumerate(CALL_VALUES))
    source = build(
        tmp_path,
        f"request_route {{\n{lines}}}\nroute[W] {{\n\treturn 7;\n}}\n",
        head=HEAD + 'loadmodule "textops.so"\n',
    )
    _, proc = run(load(tmp_path, source))
    got = [proc.vars[f"r{i}"] for i in range(len(CALL_VALUES))]
    assert got == [expected for _, expected in CALL_VALUES]


def test_dynamic_route(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n\t$var(n) = "X";\n\troute($var(n));\n\t$var(r) = $rc;\n}\n'
        "route[X] {\n\treturn 3;\n}\n",
    )
    assert "ctx.route_by_name(v.to_str(PV_var_n.get(ctx)))  # t.cfg:7" in source
    module = load(tmp_path, source)
    proc = module.ROUTER.process(FakeEngine())
    run(module, proc)
    assert proc.vars["r"] == 3


# -- expressions against the reference evaluator ----------------------------------------

EXPRESSIONS = [
    "$var(a) + $var(b) * 3",
    "$var(s) + $var(a)",
    "$var(a) + $var(s)",
    "$var(a) && 1",
    "1 && $var(a)",
    "$var(a) && 3",
    "$var(n) || 0",
    "0 || $var(n)",
    "$var(n) || $var(a)",
    "!$var(n) && !$var(s)",
    '$var(a) - 10 > 0 || $var(s) == "x5"',
    "$var(a) << 31 >> 4",
    "$var(a) ^ 6 & 3 | 8",
    "-$var(a) mod 3",
    "$var(n) / 2",
    "(int)$var(s) + (str)$var(a)",
    '$var(s) eq "x5" && $var(a) ieq "5"',
    '$var(s) =~ "^X[0-9]$"',
    "strlen($var(s)) + strempty($var(e))",
    'selval($var(n), "neg", "pos")',
    "defined $var(a) + ($var(e) == $null)",
    "$var(a) == $var(t)",
    "~$var(a) != -6",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_expression_matches_reference(tmp_path: Path, text: str) -> None:
    body = (
        f"request_route {{\n\t$var(r) = {text};\n\tif ({text}) $var(c) = 1; else $var(c) = 0;\n}}\n"
    )
    env: dict[str, kamailio_eval.RefValue] = {
        "a": 5,
        "b": -2,
        "n": -3,
        "s": "x5",
        "e": "",
        "t": "5",
    }
    source = build(tmp_path, body)
    module = load(tmp_path, source)
    _, proc = run(module, Process(engine=fake_engine(), vars=dict(env)))
    cfg = run_pipeline(tmp_path / "t.cfg")
    assert cfg.config is not None
    route = next(i for i in cfg.config.items if isinstance(i, ast.Route))
    assign = route.body.stmts[0]
    assert isinstance(assign, ast.AssignStmt)
    expected = kamailio_eval.evaluate(assign.value, env)
    assert proc.vars["r"] == (0 if expected is None else expected)
    assert proc.vars["c"] == (1 if kamailio_eval.as_int(expected) > 0 else 0)


# -- safety -----------------------------------------------------------------------------

HOSTILE = [
    'quote " and backslash \\\\ end',
    'triple """ and \\x00 text',
    "bidi \u202e reversed \u2066 isolate",
    "line\u2028separator",
    "tab\there",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_stay_inert(tmp_path: Path, value: str) -> None:
    cfg_text = value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    source = build(tmp_path, f'request_route {{\n\t$var(h) = "{cfg_text}";\n}}\n')
    tree = pyast.parse(source)
    literals = [n.value for n in pyast.walk(tree) if isinstance(n, pyast.Constant)]
    assert value in literals
    assert not any(
        isinstance(n, pyast.Call) and getattr(n.func, "id", "") in ("eval", "exec")
        for n in pyast.walk(tree)
    )
    module = load(tmp_path, source)
    _, proc = run(module)
    assert proc.vars["h"] == value


def test_non_utf8_bytes_survive(tmp_path: Path) -> None:
    source = build(tmp_path, 'request_route {\n\t$var(h) = "caf\udce9 \udcff";\n}\n')
    module = load(tmp_path, source)
    _, proc = run(module)
    assert proc.vars["h"] == "caf\udce9 \udcff"
    assert str(proc.vars["h"]).encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"


def test_hostile_file_name_stays_in_comment(tmp_path: Path) -> None:
    source = build(tmp_path, "request_route {\n\texit;\n}\n", name="a\nb.cfg")
    assert "# Generated by kcc from a\\nb.cfg." in source
    assert "raise ScriptExit  # a\\nb.cfg:6" in source
    compile(source, "gen", "exec")


# -- runtime errors map back to the cfg --------------------------------------------------


def test_traceback_maps_to_cfg_line(tmp_path: Path) -> None:
    source = build(tmp_path, 'request_route {\n\txlog("L_INFO", "hi\\n");\n\t$var(x) = $ru;\n}\n')
    module = load(tmp_path, source)

    class Broken:
        def get(self, ctx: object) -> object:
            raise RuntimeError("broken accessor")

    setattr(module, "PV_ru", Broken())  # reading $ru now fails inside the route  # noqa: B010
    with pytest.raises(RuntimeError) as raised:
        run(module)
    report = format_cfg_report(raised.value)
    assert "t.cfg:7" in report
    assert "request_route" in report


def test_switch_subject_without_value_runs_default(tmp_path: Path) -> None:
    # Kamailio 5.6: `switch ($var(a) / $var(z))` with z=0 runs the default case, for
    # int and for string/regex cases alike, and the script goes on
    source = build(
        tmp_path,
        "request_route {\n\t$var(z) = 0;\n"
        '\tswitch (5 / $var(z)) {\n\t\tcase 0: $var(i) = "zero"; break;\n'
        '\t\tdefault: $var(i) = "default";\n\t}\n'
        '\tswitch ("x" + (5 / $var(z))) {\n\t\tcase /"^$": $var(s) = "empty"; break;\n'
        '\t\tcase "x": $var(s) = "x"; break;\n\t\tdefault: $var(s) = "default";\n\t}\n'
        "\t$var(after) = 1;\n}\n",
    )
    _, proc = run(load(tmp_path, source))
    assert (proc.vars["i"], proc.vars["s"], proc.vars["after"]) == ("default", "default", 1)


@pytest.mark.parametrize("cfg", sorted((REPO / "examples").glob("*.cfg")), ids=lambda p: p.stem)
def test_module_code_reuses_function_text(cfg: Path) -> None:
    """The build stage's text assembled from per-function code is ``module.code``."""
    ctx = run_pipeline(str(cfg), stop_after="check")
    assert ctx.sema is not None
    codes: dict[int, str] = {}

    def keep(function: cst.FunctionDef) -> None:
        codes[id(function)] = cst.Module(body=[function]).code

    module = CodeGenerator(ctx.sema, source=str(cfg), digest="0").generate(on_function=keep)
    assert codes
    assert module_code(module, codes) == module.code


def test_config_without_route_blocks_is_typed(tmp_path: Path) -> None:
    """An include-style cfg (globals only, like Kamailio's IMS samples) builds, and its
    empty tables keep their types (mypy --strict cannot infer ``{}``)."""
    source = build(tmp_path, "alias=ims.localhost\n")
    assert "__kcc_routes__: Final[dict[str, str]] = {}" in source
    assert "request=None," in source
    module = load(tmp_path, source)
    assert module.__kcc_routes__ == {}


# -- tm: branch-failure routes and transaction pseudo-variables ------------------------

TM_HEAD = HEAD + 'loadmodule "tm.so"\nloadmodule "tmx.so"\nloadmodule "rr.so"\n'


def test_branch_failure_route_is_armed_by_reference_and_typed_failure(tmp_path: Path) -> None:
    source = build(
        tmp_path,
        'request_route {\n  t_on_branch_failure("BF");\n  t_relay();\n}\n'
        "event_route[tm:branch-failure:BF] {\n  route(SUB);\n}\n"
        'route[SUB] {\n  xlog("L_INFO", "$T_reply_code $T_req($hdr(X-A))\\n");\n}\n',
        head=TM_HEAD,
    )
    assert "tm.t_on_branch_failure(ctx, event_route_tm__branch_x2dfailure__BF)" in source
    assert "def event_route_tm__branch_x2dfailure__BF(ctx: FailureContext) -> int:" in source
    # the sub-route runs for request_route's kinds and for the branch-failure route
    assert "def route_SUB(ctx: RequestContext | FailureContext | EventContext) -> int:" in source
    assert 'pv.accessor("T_req", Fmt(pv.accessor("hdr", "X-A")))' in source
    assert '"tm:branch-failure:BF": event_route_tm__branch_x2dfailure__BF' in source
    module = load(tmp_path, source)
    assert (
        module.ROUTER.event["tm:branch-failure:BF"] is module.event_route_tm__branch_x2dfailure__BF
    )


def test_unknown_transaction_attribute_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompileFailed) as failed:
        build(
            tmp_path,
            'request_route {\n  xlog("L_INFO", "$T(reply_reason) $T(id_label)\\n");\n}\n',
            head=TM_HEAD,
        )
    text = failed.value.diagnostics
    assert "error[E0903]: the pseudo-variable `$T(reply_reason)` is not supported" in text
    assert text.count("error[") == 1  # $T(id_label) is known


# -- debugger's cfgtrace ----------------------------------------------------------------

TRACE_HEAD = HEAD + 'loadmodule "textops.so"\nloadmodule "debugger.so"\n'
TRACE_BODY = """request_route {
\t$var(x) = 1;
\tif (is_method("OPTIONS"))
\t\txlog("L_INFO", "o\\n");
\tswitch ($var(x)) {
\t\tcase 0: $var(a) = 0;
\t\tcase 1: $var(a) = 1;
\t\tcase 2: $var(a) = 2;
\t\tcase 3: break;
\t}
\troute(R);
\texit;
}
route[R] {
\treturn;
}
"""


@pytest.mark.parametrize("value", ["0", "2"])
def test_cfgtrace_off_emits_nothing(tmp_path: Path, value: str) -> None:
    """Only cfgtrace 1 turns the trace on (Kamailio's ``dbg_init_mypid``); otherwise
    the code is the same as without the debugger."""
    head = TRACE_HEAD + f'modparam("debugger", "cfgtrace", {value})\n'
    source = build(tmp_path, TRACE_BODY, head=head)
    assert "debugger.cfgtrace(" not in source and "SITE_" not in source
    assert "from kcc_runtime.modules import textops, xlog\n" in source
    plain = build(tmp_path, TRACE_BODY, name="p.cfg", head=TRACE_HEAD + "# plain\n")
    assert route_source(source) == route_source(plain).replace("p.cfg", "t.cfg")


def test_cfgtrace_calls_carry_kamailio_numbers(tmp_path: Path) -> None:
    head = TRACE_HEAD + 'modparam("debugger", "cfgtrace", 1)\n'
    source = build(tmp_path, TRACE_BODY, head=head)
    assert 'SITE_1: Final = debugger.Site("t.cfg", "DEFAULT_ROUTE")' in source
    assert 'SITE_2: Final = debugger.Site("t.cfg", "R")' in source
    calls = [
        line.split("debugger.cfgtrace(ctx, ")[1].split(")")[0]
        for line in source.splitlines()
        if "debugger.cfgtrace(" in line
    ]
    # head is 7 lines: request_route is line 8; the if's line is the next token's
    # (the switch, line 12); cases 0..3 make a jump table (20); break is DROP_T "exit"
    assert calls == [
        'SITE_1, 9, 63, "assign"',
        'SITE_1, 12, 16, "if"',
        'SITE_1, 10, 25, "is_method"',
        'SITE_1, 11, 26, "xlog"',
        'SITE_1, 17, 20, "switch"',
        'SITE_1, 13, 63, "assign"',
        'SITE_1, 14, 63, "assign"',
        'SITE_1, 15, 63, "assign"',
        'SITE_1, 16, 2, "exit"',
        'SITE_1, 18, 5, "route"',
        'SITE_1, 19, 2, "exit"',
        'SITE_2, 22, 2, "return"',
    ]


def test_cfgtrace_runs_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    head = TRACE_HEAD + 'modparam("debugger", "cfgtrace", 1)\n'
    module = load(tmp_path, build(tmp_path, TRACE_BODY, head=head))
    proc = Process(engine=fake_engine(), modparams={("debugger", "cfgtrace"): 1})
    caplog.set_level("DEBUG", logger="kcc_runtime.debugger")
    with pytest.raises(Exception) as raised:
        run(module, proc)
    assert type(raised.value).__name__ == "ScriptExit"
    path = os.path.abspath("t.cfg")
    lines = [r.getMessage() for r in caplog.records if r.name == "kcc_runtime.debugger"]
    assert lines[0] == (
        "*** cfgtrace:dbg_cfg_trace(): request_route=[DEFAULT_ROUTE]"
        f" c=[{path}] l=9 a=63 n=assign\n"
    )
    assert [line.rsplit(" l=", 1)[1] for line in lines] == [
        "9 a=63 n=assign\n",
        "12 a=16 n=if\n",
        "10 a=25 n=is_method\n",
        "11 a=26 n=xlog\n",
        "17 a=20 n=switch\n",
        "14 a=63 n=assign\n",
        "15 a=63 n=assign\n",
        "16 a=2 n=exit\n",
        "18 a=5 n=route\n",
        "22 a=2 n=return\n",
        "19 a=2 n=exit\n",
    ]
