"""The parser: grammar coverage, tree shapes, spans and syntax error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kcc import ast
from kcc import parser as kparser
from kcc.build_ast import PRECEDENCE
from kcc.diagnostics import Diagnostic, DiagnosticSink, render_plain
from kcc.lexer import tokenize
from kcc.parser import ParseResult, describe_expected, parse_text, parse_tokens
from kcc.preprocess import preprocess
from kcc.source import SourceFile

from .conftest import REPO, STOCK_CFG

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def parse(text: str, path: str = "t.cfg") -> ast.Config:
    """Parse with no diagnostic, except E0209: the grammar also reads forms of newer
    Kamailio releases, and that 5.6 rejects them is tested on its own."""
    sink = DiagnosticSink()
    config = parse_text(text, path, sink)
    left = [d for d in sink.diagnostics if d.code != "E0209"]
    assert not left, [render_plain(d) for d in left]
    return config


def diagnostics(text: str) -> list[Diagnostic]:
    """Non-fatal diagnostics reported while building the tree."""
    sink = DiagnosticSink()
    parse_text(text, "t.cfg", sink)
    return sink.diagnostics


def fatal(text: str) -> str:
    """The first syntax error (the parser reports it and recovers)."""
    sink = DiagnosticSink()
    parse_text(text, "t.cfg", sink)
    errors = [d for d in sink.diagnostics if d.is_error]
    assert errors, "no syntax error reported"
    return render_plain(errors[0])


def body(text: str) -> tuple[ast.Stmt, ...]:
    """The statements of ``request_route { text }``."""
    route = parse(f"request_route {{\n{text}\n}}\n").items[0]
    assert isinstance(route, ast.Route)
    return route.body.stmts


def expr(text: str) -> ast.Expr:
    stmt = body(f"if ({text}) drop;")[0]
    assert isinstance(stmt, ast.IfStmt)
    return stmt.cond


def sx(node: object) -> object:
    """A compact s-expression of an expression tree."""
    match node:
        case ast.BinOp(op=op, left=left, right=right):
            return (op, sx(left), sx(right))
        case ast.UnaryOp(op=op, operand=operand):
            return (op, sx(operand))
        case ast.Defined(operand=operand):
            return ("defined", sx(operand))
        case ast.Cast(to=to, operand=operand):
            return (f"({to})", sx(operand))
        case ast.Name(name=name) | ast.Host(name=name):
            return name
        case ast.Number(value=value):
            return value
        case ast.String(value=value):
            return repr(value)
        case ast.PVar():
            return node.span.text
        case ast.IPAddr(address=address):
            return address
        case ast.Subnet(address=address, prefix=prefix):
            return f"{address.address}/{prefix}"
        case ast.Call(name=name, args=args):
            return (name + "()", *map(sx, args))
        case ast.AssignExpr(target=target, value=value):
            return ("=", target.span.text, sx(value))
    return type(node).__name__


# ---------------------------------------------------------------------------
# precedence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("a & b ^ c", ("&", "a", ("^", "b", "c"))),  # ^ binds tighter than & (not C)
        ("a ^ b & c", ("&", ("^", "a", "b"), "c")),
        ("a << b == c", ("<<", "a", ("==", "b", "c"))),  # << below comparisons
        ("a << b >> c", ("<<", "a", (">>", "b", "c"))),  # << below >>
        ("a >> b << c", ("<<", (">>", "a", "b"), "c")),
        ("a == b < c", ("==", "a", ("<", "b", "c"))),  # < below ==... binds tighter
        ("!a && b", ("&&", ("!", "a"), "b")),
        ("a + b * c", ("+", "a", ("*", "b", "c"))),
        ("$x - 1 - 2", ("-", ("-", "$x", 1), 2)),
        ("a || b && c", ("||", "a", ("&&", "b", "c"))),
        ("a or b and not c", ("||", "a", ("&&", "b", ("!", "c")))),
        ("a | b & c", ("|", "a", ("&", "b", "c"))),
        ("a + b mod c", ("+", "a", ("mod", "b", "c"))),
        ("a eq b ne c", ("ne", ("eq", "a", "b"), "c")),
        ("a ieq 1 && b ine 2", ("&&", ("ieq", "a", 1), ("ine", "b", 2))),
        ('$ua =~ "x" || $rU != $null', ("||", ("=~", "$ua", "'x'"), ("!=", "$rU", "$null"))),
        ("(a + b) * c", ("*", ("+", "a", "b"), "c")),
        ("-a * b", ("*", ("-", "a"), "b")),
        ("~a + 1", ("+", ("~", "a"), 1)),
        ("!defined $x", ("!", ("defined", "$x"))),
        ("defined $x && $y", ("&&", ("defined", "$x"), "$y")),
        ("(int)$x + 1", ("+", ("(int)", "$x"), 1)),
        ("(str)-1", ("(str)", -1)),
        ("$a = 1 && 2", ("=", "$a", ("&&", 1, 2))),
        ("a >= 1 <= 2 > 3 < 4", ("<", (">", ("<=", (">=", "a", 1), 2), 3), 4)),
    ],
)
def test_precedence(source: str, tree: object) -> None:
    assert sx(expr(source)) == tree


def test_precedence_table_matches_reference_levels() -> None:
    # kamailio-language.md §6, binary levels 2..12
    levels = [
        ["OP_OR"],
        ["OP_AND"],
        ["VBAR"],
        ["AMP"],
        ["CARET"],
        ["LSHIFT"],
        ["RSHIFT"],
        ["EQEQ", "NOTEQ", "MATCH", "OP_STREQ", "OP_STRNE", "OP_INTEQ", "OP_INTNE"],
        ["LT", "GT", "LTE", "GTE"],
        ["PLUS", "MINUS"],
        ["STAR", "SLASH", "OP_MOD"],
    ]
    for level, ops in enumerate(levels, start=2):
        for op in ops:
            assert PRECEDENCE[op] == level


def test_binop_spans_include_parentheses() -> None:
    node = expr("(a + b) * c")
    assert isinstance(node, ast.BinOp)
    assert node.span.text == "(a + b) * c"
    assert node.op_span.text == "*"
    assert node.left.span.text == "a + b"


# ---------------------------------------------------------------------------
# literals and primaries
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("10", 10),
        ("0x1F", 31),
        ("017", 15),
        ("101b", 5),
        ("yes", 1),
        ("no", 0),
        ("on", 1),
        ("off", 0),
        ("true", 1),
        ("false", 0),
        ("enable", 1),
        ("disable", 0),
        ("-5", -5),
    ],
)
def test_numbers(source: str, value: int) -> None:
    node = expr(source)
    assert isinstance(node, ast.Number)
    assert node.value == value
    assert node.text == source


def test_strings() -> None:
    node = expr('"a\\tb\\x41\\101\\"\\\\"')
    assert isinstance(node, ast.String) and node.value == 'a\tbAA"\\'
    node = expr("'no $escapes\\n here'")
    assert isinstance(node, ast.String) and node.value == "no $escapes\\n here"
    node = expr('"a" "b"\n  "c"')
    assert isinstance(node, ast.String) and node.value == "abc"
    assert node.span.text == '"a" "b"\n  "c"'


def test_string_format_parts_across_concatenation() -> None:
    node = expr('"x=$var(x) " "y=$var(y)"')
    assert isinstance(node, ast.String)
    assert [p if isinstance(p, str) else p.span.text for p in node.parts] == [
        "x=",
        "$var(x)",
        " y=",
        "$var(y)",
    ]


@pytest.mark.parametrize(
    ("source", "address", "version"),
    [
        ("127.0.0.1", "127.0.0.1", 4),
        ("::1", "::1", 6),
        ("[::1]", "::1", 6),
        ("fe80::1", "fe80::1", 6),
    ],
)
def test_ip_addresses(source: str, address: str, version: int) -> None:
    node = expr(f"src_ip == {source}")
    assert isinstance(node, ast.BinOp)
    assert isinstance(node.right, ast.IPAddr)
    assert (node.right.address, node.right.version) == (address, version)


@pytest.mark.parametrize(
    ("source", "prefix"),
    [("10.0.0.0/8", 8), ("10.0.0.0 / 8", 8), ("10.0.0.0/255.255.0.0", 16), ("fe80::/10", 10)],
)
def test_subnets(source: str, prefix: int) -> None:
    node = expr(f"src_ip == {source}")
    assert isinstance(node, ast.BinOp)
    assert isinstance(node.right, ast.Subnet)
    assert node.right.prefix == prefix
    assert node.right.span.text == source


def test_names_hosts_selects() -> None:
    assert sx(expr("uri == myself")) == ("==", "uri", "myself")
    assert sx(expr("msg:len > 100")) == (">", "msg:len", 100)
    assert sx(expr("src_ip == gw.example.com")) == ("==", "src_ip", "gw.example.com")
    assert sx(expr("proto == udp || af == inet")) == (
        "||",
        ("==", "proto", "udp"),
        ("==", "af", "inet"),
    )
    node = expr("@cfg_get.pstn.gw_ip")
    assert isinstance(node, ast.Select)
    assert [p.name for p in node.parts] == ["cfg_get", "pstn", "gw_ip"]


def test_builtin_functions() -> None:
    node = expr("strlen($rU) > 3 && strempty($fU)")
    assert isinstance(node, ast.BinOp)
    assert isinstance(node.left, ast.BinOp) and isinstance(node.left.left, ast.StrLen)
    assert isinstance(node.right, ast.StrEmpty)
    (stmt,) = body('$var(x) = selval($a > 1, "a", "b");')
    assert isinstance(stmt, ast.AssignStmt)
    assert isinstance(stmt.value, ast.SelVal)
    assert sx(stmt.value.cond) == (">", "$a", 1)


def test_block_and_route_as_values() -> None:
    assert isinstance(expr("{ f(); }"), ast.BlockExpr)
    assert sx(expr("route(CHECK)")) == ("route()", "CHECK")


# ---------------------------------------------------------------------------
# statements
# ---------------------------------------------------------------------------


def test_if_else_chain() -> None:
    (stmt,) = body("if (a) drop; else if (b) exit; else { return; }")
    assert isinstance(stmt, ast.IfStmt)
    assert isinstance(stmt.then, ast.DropStmt)
    assert isinstance(stmt.else_, ast.IfStmt)
    assert isinstance(stmt.else_.then, ast.ExitStmt)
    assert isinstance(stmt.else_.else_, ast.Block)


def test_dangling_else_binds_to_nearest_if() -> None:
    (stmt,) = body("if (a) if (b) drop; else exit;")
    assert isinstance(stmt, ast.IfStmt) and stmt.else_ is None
    assert isinstance(stmt.then, ast.IfStmt) and isinstance(stmt.then.else_, ast.ExitStmt)


def test_if_without_parentheses() -> None:
    (stmt,) = body('if method == "INVITE" { drop; }')
    assert isinstance(stmt, ast.IfStmt)
    assert sx(stmt.cond) == ("==", "method", "'INVITE'")


def test_switch() -> None:
    (stmt,) = body(
        "switch ($var(rc)) {\n"
        "  case -1:\n  case 1: drop; break;\n"
        '  case "s": exit;\n'
        '  case /"^a": ;\n'
        "  default: return;\n}"
    )
    assert isinstance(stmt, ast.SwitchStmt)
    values = [(sx(c.value) if c.value else None, c.is_regex, len(c.body)) for c in stmt.cases]
    assert values == [
        (-1, False, 0),
        (1, False, 2),
        ("'s'", False, 1),
        ("'^a'", True, 1),
        (None, False, 1),
    ]


def test_empty_switch_is_accepted() -> None:
    (stmt,) = body("switch ($x) { }")
    assert isinstance(stmt, ast.SwitchStmt) and stmt.cases == ()


def test_while() -> None:
    (stmt,) = body("while ($var(i) < 3) $var(i) = $var(i) + 1;")
    assert isinstance(stmt, ast.WhileStmt)
    assert isinstance(stmt.body, ast.AssignStmt)


@pytest.mark.parametrize(
    ("source", "cls", "value"),
    [
        ("return;", ast.ReturnStmt, None),
        ("return();", ast.ReturnStmt, None),
        ("return(1);", ast.ReturnStmt, 1),
        ("return -1;", ast.ReturnStmt, -1),
        ("return 1 + 2;", ast.ReturnStmt, ("+", 1, 2)),
        ("exit;", ast.ExitStmt, None),
        ("exit();", ast.ExitStmt, None),
        ("exit(0);", ast.ExitStmt, 0),
        ("exit 2;", ast.ExitStmt, 2),
        ("drop;", ast.DropStmt, None),
        ("drop();", ast.DropStmt, None),
        ("drop 1;", ast.DropStmt, 1),
    ],
)
def test_return_exit_drop(source: str, cls: type, value: object) -> None:
    (stmt,) = body(source)
    assert isinstance(stmt, cls)
    assert isinstance(stmt, ast.ReturnStmt | ast.ExitStmt | ast.DropStmt)
    assert (sx(stmt.value) if stmt.value is not None else None) == value


def test_simple_statements() -> None:
    stmts = body("; break; force_rport; f(); $x = 1; { drop; }")
    assert [type(s).__name__ for s in stmts] == [
        "EmptyStmt",
        "BreakStmt",
        "ExprStmt",
        "ExprStmt",
        "AssignStmt",
        "Block",
    ]
    bare = stmts[2]
    assert isinstance(bare, ast.ExprStmt) and bare.call.bare and bare.call.name == "force_rport"


def test_assignment_forms() -> None:
    stmts = body("$var(a) = 1; $avp(s:x) = $null; $x = ($y = 2);")
    assert all(isinstance(s, ast.AssignStmt) for s in stmts)
    last = stmts[2]
    assert isinstance(last, ast.AssignStmt) and isinstance(last.value, ast.AssignExpr)


def test_call_arguments() -> None:
    stmts = body(
        "forward(sip.example.com, 5060);"
        "forward(uri:host, uri:port);"
        "force_send_socket(udp:127.0.0.1:5060);"
        "force_send_socket(tcp:[::1]:5061);"
        "force_send_socket(127.0.0.1:5062);"
        "set_advertised_address(my-host.example.com);"
        "setflag(FLAG_A);"
        "route(RELAY);"
        't_set_fr($var(n) + 2, "x" "y");'
    )
    calls = [s.call for s in stmts if isinstance(s, ast.ExprStmt)]
    assert sx(calls[0]) == ("forward()", "sip.example.com", 5060)
    assert sx(calls[1]) == ("forward()", "uri:host", "uri:port")
    sock = calls[2].args[0]
    assert isinstance(sock, ast.SocketAddr)
    assert sock.proto == "udp"
    assert isinstance(sock.host, ast.IPAddr) and sock.host.address == "127.0.0.1"
    assert isinstance(sock.port, ast.Number) and sock.port.value == 5060
    sock = calls[3].args[0]
    assert isinstance(sock, ast.SocketAddr) and sock.proto == "tcp"
    assert isinstance(sock.host, ast.IPAddr) and sock.host.version == 6
    sock = calls[4].args[0]
    assert isinstance(sock, ast.SocketAddr) and sock.proto is None
    assert sx(calls[5]) == ("set_advertised_address()", "my-host.example.com")
    assert sx(calls[6]) == ("setflag()", "FLAG_A")
    assert sx(calls[7]) == ("route()", "RELAY")
    assert sx(calls[8]) == ("t_set_fr()", ("+", "$var(n)", 2), "'xy'")


def test_spaced_minus_in_arguments_stays_subtraction() -> None:
    (stmt,) = body("f(a - b);")
    assert isinstance(stmt, ast.ExprStmt)
    assert sx(stmt.call.args[0]) == ("-", "a", "b")


# ---------------------------------------------------------------------------
# top level
# ---------------------------------------------------------------------------


def test_global_params() -> None:
    config = parse(
        "debug=3\n"
        "log_stderror=no\n"
        "log_facility=LOG_LOCAL0\n"
        'log_prefix="{$mt} "\n'
        "debug=-1\n"
        'server_header="a" "b"\n'
        "advertised_address=a.b-c.d\n"
        "alias=a.example.com b.example.com:5060\n"
        "children=4\n"
    )
    values = [item.value for item in config.items if isinstance(item, ast.GlobalParam)]
    assert [type(v).__name__ for v in values] == [
        "Number",
        "Number",
        "Name",
        "String",
        "Number",
        "String",
        "Host",
        "ValueList",
        "Number",
    ]
    alias = values[7]
    assert isinstance(alias, ast.ValueList)
    assert isinstance(alias.items[1], ast.SocketAddr)
    assert isinstance(alias.items[1].host, ast.Host) and alias.items[1].host.name == "b.example.com"


@pytest.mark.parametrize(
    ("source", "proto", "host", "port"),
    [
        ("udp:127.0.0.1:5060", "udp", "127.0.0.1", 5060),
        ("127.0.0.1:5060", None, "127.0.0.1", 5060),
        ("udp:[::1]:5060", "udp", "::1", 5060),
        ("tcp:my-host.example.com", "tcp", "my-host.example.com", None),
        ("udp:lo:5060", "udp", "lo", 5060),
        ('udp:"127.0.0.1":5060', "udp", "127.0.0.1", 5060),
        ("UDP:127.0.0.1:5061", "udp", "127.0.0.1", 5061),
    ],
)
def test_listen_addresses(source: str, proto: str | None, host: str, port: int | None) -> None:
    (item,) = parse(f"listen={source}\n").items
    assert isinstance(item, ast.GlobalParam)
    value = item.value
    assert isinstance(value, ast.SocketAddr)
    assert value.proto == proto
    assert getattr(value.host, "address", getattr(value.host, "name", None)) == host
    assert (value.port.value if isinstance(value.port, ast.Number) else None) == port


def test_listen_options_and_special_forms() -> None:
    config = parse(
        'listen=tcp:127.0.0.1:5060 advertise 1.2.3.4:5080 name "lo" virtual\n'
        "listen=udp:127.0.0.1:* udp:*:5062\n"
        "listen=sctp:(127.0.0.1, 127.0.0.2):5063\n"
        "listen=udp:127.0.0.1:5070-5079\n"
    )
    first = config.items[0]
    assert isinstance(first, ast.GlobalParam) and isinstance(first.value, ast.Listen)
    listen = first.value
    assert listen.advertise is not None and listen.advertise.port is not None
    assert listen.name is not None and listen.name.value == "lo"
    assert listen.virtual
    second = config.items[1]
    assert isinstance(second, ast.GlobalParam) and isinstance(second.value, ast.ValueList)
    wild = second.value.items[0]
    assert isinstance(wild, ast.SocketAddr) and isinstance(wild.port, ast.Wildcard)
    third = config.items[2]
    assert isinstance(third, ast.GlobalParam) and isinstance(third.value, ast.SocketAddr)
    assert isinstance(third.value.host, ast.MultiHomed) and len(third.value.host.addrs) == 2
    fourth = config.items[3]
    assert isinstance(fourth, ast.GlobalParam) and isinstance(fourth.value, ast.SocketAddr)
    assert fourth.value.port_end is not None and fourth.value.port_end.value == 5079


def test_cfg_vars() -> None:
    config = parse(
        'pstn.gw_ip = "" desc "PSTN GW Address"\n'
        'pstn.gw_port = 5060 descr "port"\n'
        "grp[2].v = 1\n"
        'kemi.request_route_callback = "ksr_request_route"\n'
        'session_timer.default = "1800"\n'
    )
    items = [i for i in config.items if isinstance(i, ast.CfgVar)]
    assert [(i.group, i.index, i.name) for i in items] == [
        ("pstn", None, "gw_ip"),
        ("pstn", None, "gw_port"),
        ("grp", 2, "v"),
        ("kemi", None, "request_route_callback"),
        ("session_timer", None, "default"),
    ]
    assert items[0].desc is not None and items[0].desc.value == "PSTN GW Address"


def test_socket_block() -> None:
    (item,) = parse(
        'socket = {\n  bind = udp:127.0.0.1:5060;\n  advertise = 1.2.3.4:5060;\n  name = "s1";\n}\n'
    ).items
    assert isinstance(item, ast.SocketBlock)
    assert [a.name for a in item.attrs] == ["bind", "advertise", "name"]


def test_modules() -> None:
    config = parse(
        'loadpath "/usr/lib"\n'
        'mpath="/usr/lib"\n'
        'loadmodule "tm.so"\n'
        'loadmodule("pv")\n'
        'loadmodule("xlog.so", "opts")\n'
        'loadmodulex "kex"\n'
        'modparam("tm", "fr_timer", 30000)\n'
        'modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")\n'
        'modparam("acc", "log_extra", "a=$fU;" "b=$tU")\n'
        'modparam("tm", "x", -1);\n'
        'modparamx("pv", "shvset", $var(x))\n'
        'cfgengine "native"\n'
        "flags FLAG_A, FLAG_B : 5\n"
        "avpflags AF1, AF2\n"
    )
    kinds = [type(i).__name__ for i in config.items]
    assert kinds == [
        "LoadPath",
        "LoadPath",
        "LoadModule",
        "LoadModule",
        "LoadModule",
        "LoadModule",
        "ModParam",
        "ModParam",
        "ModParam",
        "ModParam",
        "ModParam",
        "CfgEngine",
        "FlagsDecl",
        "AvpFlagsDecl",
    ]
    lm = config.items[4]
    assert isinstance(lm, ast.LoadModule) and lm.opts is not None and not lm.expand
    lmx = config.items[5]
    assert isinstance(lmx, ast.LoadModule) and lmx.expand
    acc = config.items[8]
    assert isinstance(acc, ast.ModParam) and isinstance(acc.value, ast.String)
    assert isinstance(acc.value, ast.String) and acc.value.value == "a=$fU;b=$tU"
    neg = config.items[9]
    assert isinstance(neg, ast.ModParam) and isinstance(neg.value, ast.Number)
    assert neg.value.value == -1
    mpx = config.items[10]
    assert isinstance(mpx, ast.ModParam) and mpx.expand and isinstance(mpx.value, ast.PVar)
    flags = config.items[12]
    assert isinstance(flags, ast.FlagsDecl)
    assert [(f.name, f.bit) for f in flags.flags] == [("FLAG_A", None), ("FLAG_B", 5)]


@pytest.mark.parametrize(
    ("source", "kind", "name"),
    [
        ("request_route", ast.RouteKind.REQUEST, None),
        ("route", ast.RouteKind.ROUTE, None),
        ("route[0]", ast.RouteKind.ROUTE, "0"),
        ("route[RELAY]", ast.RouteKind.ROUTE, "RELAY"),
        ('route["x y"]', ast.RouteKind.ROUTE, "x y"),
        ("route[1a]", ast.RouteKind.ROUTE, "1a"),
        ("failure_route[F]", ast.RouteKind.FAILURE, "F"),
        ("failure_route", ast.RouteKind.FAILURE, None),
        ("branch_route[B]", ast.RouteKind.BRANCH, "B"),
        ("onreply_route", ast.RouteKind.ONREPLY, None),
        ("onreply_route[R]", ast.RouteKind.ONREPLY, "R"),
        ("reply_route", ast.RouteKind.REPLY, None),
        ("onsend_route", ast.RouteKind.ONSEND, None),
        ("event_route[xhttp:request]", ast.RouteKind.EVENT, "xhttp:request"),
        ("event_route[tm:branch-failure:X]", ast.RouteKind.EVENT, "tm:branch-failure:X"),
        ('event_route["htable:mod-init"]', ast.RouteKind.EVENT, "htable:mod-init"),
    ],
)
def test_route_kinds(source: str, kind: ast.RouteKind, name: str | None) -> None:
    (route,) = parse(f"{source} {{ drop; }}\n").items
    assert isinstance(route, ast.Route)
    assert (route.kind, route.name) == (kind, name)


def test_top_level_semicolons_are_ignored() -> None:
    config = parse('loadmodule "tm.so";\ndebug=3;\nrequest_route { drop; };\n')
    assert [type(i).__name__ for i in config.items] == ["LoadModule", "GlobalParam", "Route"]


def test_empty_config() -> None:
    config = parse("# nothing\n")
    assert config.items == ()


# ---------------------------------------------------------------------------
# spans
# ---------------------------------------------------------------------------


def test_spans() -> None:
    text = 'debug=3\nrequest_route {\n\tif ($rU == "x") {\n\t\txlog("a");\n\t}\n}\n'
    config = parse(text)
    param, route = config.items
    assert isinstance(param, ast.GlobalParam)
    assert (param.span.line, param.span.column, param.span.end_column) == (1, 1, 8)
    assert param.name_span.text == "debug"
    assert isinstance(route, ast.Route)
    assert (route.span.line, route.span.end_line) == (2, 6)
    (stmt,) = route.body.stmts
    assert isinstance(stmt, ast.IfStmt)
    assert (stmt.span.line, stmt.span.column) == (3, 2)
    assert stmt.cond.span.text == '$rU == "x"'
    assert isinstance(stmt.then, ast.Block)
    (call_stmt,) = stmt.then.stmts
    assert isinstance(call_stmt, ast.ExprStmt)
    assert call_stmt.span.text == 'xlog("a");'
    assert call_stmt.call.span.text == 'xlog("a")'
    assert call_stmt.call.name_span.text == "xlog"
    assert (call_stmt.call.name_span.line, call_stmt.call.name_span.column) == (4, 3)


def test_route_name_span() -> None:
    (route,) = parse("failure_route[RETRY] { drop; }\n").items
    assert isinstance(route, ast.Route) and route.name_span is not None
    assert route.name_span.text == "RETRY"


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_missing_rpar_names_the_unclosed_parenthesis() -> None:
    text = 'failure_route[F] {\n\tif(!t_check_status("408|500")\n\t\texit;\n}\n'
    assert fatal(text) == (
        "error[E0201]: expected `)`, found `exit`\n"
        " --> t.cfg:3:3\n"
        "  |\n"
        '2 |     if(!t_check_status("408|500")\n'
        "  |       - this `(` is never closed\n"
        "3 |         exit;\n"
        "  |         ^^^^ expected `)` before this\n"
    )


def test_missing_semicolon() -> None:
    text = "request_route {\n\tif (a) route(R)\n\telse drop;\n}\n"
    assert fatal(text).splitlines()[0] == "error[E0201]: expected `;`, found `else`"
    text = "request_route {\n\tf()\n\tg();\n}\n"
    assert fatal(text).splitlines()[0] == "error[E0201]: expected `;`, found `g`"


def test_plus_equal() -> None:
    assert fatal("request_route {\n\t$var(x) += 1;\n}\n") == (
        "error[E0203]: Kamailio has no `+=` operator\n"
        " --> t.cfg:2:10\n"
        "  |\n"
        "2 |     $var(x) += 1;\n"
        "  |             ^^ only `=` assigns\n"
        "  |\n"
        "  = help: write `$var(x) = $var(x) + ...`\n"
    )


def test_unexpected_end_of_file() -> None:
    assert fatal("request_route {\n\tdrop;\n") == (
        "error[E0202]: unexpected end of file\n"
        " --> t.cfg:3:1\n"
        "  |\n"
        "1 | request_route {\n"
        "  |               - this `{` is never closed\n"
        ". |\n"
        "3 |\n"
        "  | ^ expected a statement or `}`\n"
    )


@pytest.mark.parametrize(
    ("text", "first_line"),
    [
        ("request_route {\n if ($x == ) drop;\n}", "expected an expression, found `)`"),
        ("request_route {\n drop;\n else exit;\n}", "expected a statement or `}`, found `else`"),
        ("request_route {\n $a = $b = 1;\n}", "expected `;`, found `=`"),
        ("route[] { drop; }", "expected a name, a number, a string or an event name"),
        ("debug=3\n}\n", "expected a route block or a global setting, found `}`"),
        ("request_route {\n f(a b);\n}", "expected `,` or `)`, found `b`"),
        ('modparam("tm", "x", abc)', "expected a number, a string or a pseudo-variable, found"),
    ],
)
def test_error_wording(text: str, first_line: str) -> None:
    assert fatal(text).splitlines()[0].startswith(f"error[E0201]: {first_line}")


def test_describe_expected_hides_lark_names() -> None:
    assert describe_expected({"RPAR"}) == "`)`"
    assert describe_expected({"COMMA", "RPAR", "COLON", "PLUS", "STAR", "EQEQ"}) == "`,` or `)`"
    words = describe_expected({"SEMICOLON", "RPAR", "RBRACE", "RSQB", "COMMA", "COLON", "DOT"})
    assert words.endswith("...") and "RPAR" not in words


def codes(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.span.text if d.span else "") for d in diagnostics(text)]


def test_empty_blocks() -> None:
    assert codes("request_route { }") == [("E0205", "{ }")]
    assert codes("request_route { if (a) { } else { drop; } }") == [("E0205", "{ }")]
    assert codes("request_route { while (a) {} }") == [("E0205", "{}")]
    assert codes("request_route { ; switch ($x) { case 1: default: } }") == []


def test_route_naming_rules() -> None:
    assert codes("reply_route[R] { drop; }") == [("E0207", "R")]
    assert codes("request_route[R] { drop; }") == [("E0207", "R")]
    assert codes("event_route { drop; }") == [("E0207", "event_route")]
    assert codes("event_route[foo] { drop; }") == [("E0207", "foo")]
    assert codes("onsend_route[X] { drop; }") == []


def test_bad_subnets_and_sockets() -> None:
    assert codes("request_route { if (src_ip == 1.2.3.0/33) drop; }") == [("E0204", "33")]
    assert codes("request_route { if (src_ip == ::1/129) drop; }") == [("E0204", "129")]
    assert codes("request_route { if (src_ip == 1.2.3.0/255.0.255.0) drop; }") == [
        ("E0204", "255.0.255.0")
    ]
    assert codes("request_route { force_send_socket(udp:1.2.3.4:1:2); }") == [("E0204", "2")]


def test_malformed_pvar_is_reported_in_place() -> None:
    (diag,) = diagnostics("request_route { $x = $(ru{s.len); }")
    assert diag.code == "E0206"
    assert diag.span is not None and diag.span.text == "{"


def test_too_many_arguments() -> None:
    (diag,) = diagnostics('request_route { f(1, 2, 3, 4, 5, 6, "seven", 8); }')
    assert diag.code == "E0208"
    assert diag.span is not None and diag.span.text == '"seven", 8'
    assert not diagnostics("request_route { f(1, 2, 3, 4, 5, 6); }")
    (diag,) = diagnostics("request_route { $x = strlen(1, 2); }")
    assert diag.message == "`strlen` takes 1 argument, 2 given"


def test_bare_call_of_a_module_function() -> None:
    (diag,) = diagnostics("request_route { xlog; }")
    assert diag.message == "expected `(`, found `;`"
    assert diag.help == "write `xlog()`"


def test_modparam_with_pvar_needs_modparamx() -> None:
    (diag,) = diagnostics('modparam("pv", "x", $var(y))')
    assert diag.code == "E0201"
    assert diag.help is not None and "modparamx" in diag.help


# ---------------------------------------------------------------------------
# real inputs
# ---------------------------------------------------------------------------

STOCK_VARIANTS = [
    {},
    {"WITH_DEBUG": None, "WITH_NAT": None, "WITH_TLS": None, "WITH_JSONRPC": None},
    {
        "WITH_MYSQL": None,
        "WITH_AUTH": None,
        "WITH_IPAUTH": None,
        "WITH_USRLOCDB": None,
        "WITH_PRESENCE": None,
        "WITH_NAT": None,
        "WITH_RTPENGINE": None,
        "WITH_ANTIFLOOD": None,
        "WITH_ACCDB": None,
        "WITH_PSTN": None,
        "WITH_VOICEMAIL": None,
        "WITH_BLOCK3XX": None,
        "WITH_BLOCK401407": None,
    },
]


def parse_file(path: Path, defines: dict[str, str | None]) -> tuple[ast.Config, DiagnosticSink]:
    sink = DiagnosticSink()
    pre = preprocess(path, sink, defines=defines)
    main = pre.files[0]
    config = parse_tokens(pre.tokens, sink, main.span(len(main.text), len(main.text)))
    return config, sink


@pytest.mark.skipif(not STOCK_CFG.exists(), reason="kamailio package not installed")
@pytest.mark.parametrize("defines", STOCK_VARIANTS, ids=["default", "nat-tls", "full"])
def test_stock_config_parses_cleanly(defines: dict[str, str | None]) -> None:
    config, sink = parse_file(STOCK_CFG, defines)
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    routes = [i for i in config.items if isinstance(i, ast.Route)]
    assert len(routes) >= 15


def test_kitchen_sink_parses_cleanly() -> None:
    config, sink = parse_file(REPO / "examples" / "kitchen_sink.cfg", {})
    assert not sink.diagnostics, [render_plain(d) for d in sink.diagnostics]
    kinds = {i.kind for i in config.items if isinstance(i, ast.Route)}
    assert kinds == set(ast.RouteKind)
    top = {type(i).__name__ for i in config.items}
    assert top >= {
        "GlobalParam",
        "CfgVar",
        "LoadPath",
        "LoadModule",
        "ModParam",
        "CfgEngine",
        "FlagsDecl",
        "AvpFlagsDecl",
        "Route",
    }


def test_single_quoted_strings_are_not_joined() -> None:
    """Kamailio 5.6 joins `"a" "b"` but rejects `'a' 'b'` (checked with kamailio -c)."""
    sink = DiagnosticSink()
    config = parse_text(
        "request_route { $var(x) = 'a' 'b'; $var(y) = \"a\" \"b\"; }\n", "t.cfg", sink
    )
    assert [(d.code, d.span.column if d.span else 0) for d in sink.diagnostics] == [("E0201", 27)]
    route = config.items[0]
    assert isinstance(route, ast.Route)
    second = route.body.stmts[1]
    assert isinstance(second, ast.AssignStmt)
    assert isinstance(second.value, ast.String)
    assert second.value.value == "ab"


def test_ser_style_avp() -> None:
    sink = DiagnosticSink()
    config = parse_text('request_route { if (%sub_status == "pending") exit; }\n', "t.cfg", sink)
    assert not sink.diagnostics
    route = config.items[0]
    assert isinstance(route, ast.Route)
    cond = route.body.stmts[0]
    assert isinstance(cond, ast.IfStmt)
    assert isinstance(cond.cond, ast.BinOp)
    left = cond.cond.left
    assert isinstance(left, ast.PVar)
    assert (left.name, left.inner_text) == ("avp", "sub_status")


# ---------------------------------------------------------------------------
# Recovery: one error per cause, the rest of the file still parsed
# ---------------------------------------------------------------------------


def recover(text: str) -> tuple[ParseResult, list[Diagnostic]]:
    sink = DiagnosticSink()
    file_tokens = [t for t in tokenize(SourceFile("t.cfg", text), sink) if t.kind != "DIRECTIVE"]
    eof = SourceFile("t.cfg", text).span(len(text), len(text))
    result = kparser.parse(file_tokens, sink, eof)
    return result, [d for d in sink.diagnostics if d.is_error]


def route_names(result: ParseResult) -> list[tuple[str, str | None]]:
    return [
        (item.kind.value, item.name) for item in result.config.items if isinstance(item, ast.Route)
    ]


def test_statements_after_a_commented_out_header() -> None:
    text = (
        "request_route {\n    route(RELAY);\n}\n"
        "# generic wrapper route[RELAY] {\n"
        "if (!t_relay()) {\n    sl_reply_error();\n}\n}\n"
        "route[NEXT] {\n    exit;\n}\n"
    )
    result, errors = recover(text)
    assert [(d.code, d.span.line if d.span else 0) for d in errors] == [("E0201", 5)]
    assert errors[0].message == "statements outside any route block"
    assert errors[0].help == "put `route[RELAY] {` on its own line, after the comment"
    assert [label.span.line for label in errors[0].labels] == [4]
    assert route_names(result) == [("request_route", None), ("route", "NEXT")]
    assert result.lost_routes == {("route", "RELAY")}


def test_missing_parenthesis_is_inserted_and_the_block_kept() -> None:
    text = (
        'failure_route[F] {\n    if(!t_check_status("408|500")\n        exit;\n'
        '    rewritehostport("127.0.0.1:5082");\n}\n'
    )
    result, errors = recover(text)
    assert [(d.code, d.message) for d in errors] == [("E0201", "expected `)`, found `exit`")]
    assert not result.partial
    (route,) = result.config.items
    assert isinstance(route, ast.Route)
    first, second = route.body.stmts
    assert isinstance(first, ast.IfStmt)
    assert isinstance(first.then, ast.ExitStmt)
    assert isinstance(second, ast.ExprStmt)
    assert second.call.name == "rewritehostport"


def test_missing_semicolon_is_inserted() -> None:
    result, errors = recover('request_route {\n    xlog("a")\n    xlog("b");\n}\n')
    assert [(d.code, d.span.line if d.span else 0) for d in errors] == [("E0201", 3)]
    (route,) = result.config.items
    assert isinstance(route, ast.Route)
    assert len(route.body.stmts) == 2


def test_unclosed_block_ends_at_the_next_route() -> None:
    text = "request_route {\n    if (1) {\n        exit;\n}\nfailure_route[F] {\n    exit;\n}\n"
    result, errors = recover(text)
    assert [(d.code, d.span.line if d.span else 0) for d in errors] == [("E0201", 5)]
    assert errors[0].message == "expected `}`, found `failure_route`"
    assert [label.span.line for label in errors[0].labels] == [1]
    assert route_names(result) == [("failure_route", "F")]
    assert result.partial
    assert ("request_route", None) in result.lost_routes


def test_independent_errors_are_all_reported_once() -> None:
    text = (
        "route[A] {\n    $var(x) += 1;\n}\n"
        "route[B] {\n    if ($var(x) == ) exit;\n}\n"
        "route[C] {\n    exit;\n}\n"
    )
    result, errors = recover(text)
    assert [(d.code, d.span.line if d.span else 0) for d in errors] == [
        ("E0203", 2),
        ("E0201", 5),
    ]
    assert route_names(result) == [("route", "C")]
    assert result.lost_routes == {("route", "A"), ("route", "B")}


@pytest.mark.parametrize(
    ("text", "what", "line", "column"),
    [
        ('loadmodule("sl.so")\n', "`loadmodule(...)` with parentheses", 1, 1),
        ("socket = { bind = udp:127.0.0.1:5070; }\n", "a `socket = { ... }` block", 1, 1),
        ("route[1a] {\n    exit;\n}\n", "the route name `1a`", 1, 7),
        ("request_route {\n    route(1a);\n}\n", "the route name `1a`", 2, 11),
        ("request_route {\n    $var(v) = $hdr(Via)[1];\n}\n", "an index outside `$(...)`", 2, 15),
        (
            "request_route {\n    {\n        exit;\n    }\n}\n",
            "a block `{ ... }` used as a statement",
            2,
            5,
        ),
    ],
)
def test_forms_of_newer_kamailio_are_reported(text: str, what: str, line: int, column: int) -> None:
    """Each form here makes `kamailio -c` 5.6 fail (checked by hand; see E0209.md)."""
    sink = DiagnosticSink()
    parse_text(text, "t.cfg", sink)
    assert [(d.code, d.message) for d in sink.diagnostics] == [
        ("E0209", f"{what} is not supported by Kamailio 5.6")
    ]
    span = sink.diagnostics[0].span
    assert span is not None and (span.line, span.column) == (line, column)
