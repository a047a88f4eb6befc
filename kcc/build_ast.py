"""Lark parse tree -> :mod:`kcc.ast`.

One method per grammar rule (or alias), named like the rule; ``__default__`` raises,
so a rule without a method fails loudly instead of leaking a lark ``Tree``.
Terminals reach the methods as ``lark.Token`` whose ``start_pos`` is the index of
the kcc :class:`~kcc.lexer.Token` in the parsed list: :meth:`AstBuilder.span` is the
only place a lark position becomes a :class:`~kcc.source.Span`.

Problems that the grammar accepts but Kamailio rejects (an empty block, a route
name where none is allowed, a bad subnet, a malformed pseudo-variable, too many
arguments) are reported to the sink here, and building goes on, so one run shows
all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from lark import Token as LarkToken
from lark import Transformer
from lark.tree import Meta, Tree

from kcc import ast
from kcc.diagnostics import Diagnostic, DiagnosticSink, Label
from kcc.lexer import TYPOGRAPHIC_DOUBLE, TYPOGRAPHIC_SINGLE, Token, decode_dq_string
from kcc.pv import PvSyntaxError, parse_pvar, parse_select, pvar_error, split_format
from kcc.source import Span

__all__ = ["BARE_ACTIONS", "MAX_ARGS", "PRECEDENCE", "AstBuilder"]

#: Kamailio passes at most this many arguments to a function (MAX_ACTIONS - 2)
MAX_ARGS = 6

#: core actions that may be written without parentheses (``force_rport;``)
BARE_ACTIONS = frozenset(
    {
        "force_rport",
        "add_rport",
        "add_local_rport",
        "force_tcp_alias",
        "add_tcp_alias",
        "revert_uri",
        "set_forward_no_connect",
        "set_reply_no_connect",
        "set_forward_close",
        "set_reply_close",
    }
)

#: transport names accepted before the first `:` of a socket address
PROTOCOLS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss", "any"})

_OPS = {
    "OP_OR": "||",
    "OP_AND": "&&",
    "VBAR": "|",
    "AMP": "&",
    "CARET": "^",
    "LSHIFT": "<<",
    "RSHIFT": ">>",
    "EQEQ": "==",
    "NOTEQ": "!=",
    "MATCH": "=~",
    "OP_STREQ": "eq",
    "OP_STRNE": "ne",
    "OP_INTEQ": "ieq",
    "OP_INTNE": "ine",
    "LT": "<",
    "GT": ">",
    "LTE": "<=",
    "GTE": ">=",
    "PLUS": "+",
    "MINUS": "-",
    "STAR": "*",
    "SLASH": "/",
    "OP_MOD": "mod",
    "OP_NOT": "!",
    "TILDE": "~",
}

_ROUTE_KINDS = {
    "ROUTE": ast.RouteKind.ROUTE,
    "REQUEST_ROUTE": ast.RouteKind.REQUEST,
    "FAILURE_ROUTE": ast.RouteKind.FAILURE,
    "BRANCH_ROUTE": ast.RouteKind.BRANCH,
    "ONREPLY_ROUTE": ast.RouteKind.ONREPLY,
    "REPLY_ROUTE": ast.RouteKind.REPLY,
    "ONSEND_ROUTE": ast.RouteKind.ONSEND,
    "EVENT_ROUTE": ast.RouteKind.EVENT,
}

#: binary operator precedence, Kamailio's cfg.y `%left` lines (higher binds tighter);
#: all binary operators are left-associative. Note `^` above `&`, and `<<`/`>>` below
#: the comparisons, unlike C.
PRECEDENCE = {
    "OP_OR": 2,
    "OP_AND": 3,
    "VBAR": 4,
    "AMP": 5,
    "CARET": 6,
    "LSHIFT": 7,
    "RSHIFT": 8,
    "EQEQ": 9,
    "NOTEQ": 9,
    "MATCH": 9,
    "OP_STREQ": 9,
    "OP_STRNE": 9,
    "OP_INTEQ": 9,
    "OP_INTNE": 9,
    "LT": 10,
    "GT": 10,
    "LTE": 10,
    "GTE": 10,
    "PLUS": 11,
    "MINUS": 11,
    "STAR": 12,
    "SLASH": 12,
    "OP_MOD": 12,
}

_EVENT_NAME = re.compile(r"[A-Za-z][0-9A-Za-z_-]*(?::[A-Za-z][0-9A-Za-z_-]*)+")
_PORT_RANGE = re.compile(r"([0-9]+)-([0-9]+)")

_BUILTINS_ARITY = {"strlen": 1, "strempty": 1, "selval": 3}


def _nodes(children: Sequence[Any]) -> list[Any]:
    """The children that are AST nodes (terminals dropped)."""
    return [c for c in children if not isinstance(c, LarkToken)]


def _terminals(children: Sequence[Any]) -> list[LarkToken]:
    return [c for c in children if isinstance(c, LarkToken)]


class AstBuilder(Transformer[LarkToken, ast.Config]):
    """Builds the AST of one parse; ``tokens`` is the list the parser consumed."""

    def __init__(self, tokens: Sequence[Token], sink: DiagnosticSink, eof_span: Span) -> None:
        super().__init__(visit_tokens=False)
        self.tokens = tokens
        self.sink = sink
        self.eof_span = eof_span
        #: spans of parenthesised expressions, parentheses included (by node id)
        self._parens: dict[int, Span] = {}
        self._methods: dict[str, Callable[[Meta, list[Any]], Any]] = {}

    # -- positions -------------------------------------------------------------

    def span(self, meta: Meta) -> Span:
        """The source span of a rule: from its first token to its last."""
        if getattr(meta, "empty", True):
            return self.eof_span
        return self.tokens[meta.start_pos].span.to(self.tokens[meta.end_pos - 1].span)

    def tok(self, terminal: LarkToken) -> Token:
        """The kcc token behind a lark terminal."""
        index = terminal.start_pos
        assert index is not None
        return self.tokens[index]

    def tspan(self, terminal: LarkToken) -> Span:
        return self.tok(terminal).span

    def error(
        self,
        code: str,
        message: str,
        span: Span,
        label: str = "",
        *,
        help: str | None = None,
        notes: Sequence[str] = (),
        labels: Sequence[Label] = (),
    ) -> None:
        self.sink.emit(
            Diagnostic.error(code, message, span, label, help=help, notes=notes, labels=labels)
        )

    def __default__(self, data: Any, children: Any, meta: Any) -> NoReturn:
        raise TypeError(f"no AST builder for grammar rule `{data}`")

    def _call_userfunc(self, tree: Tree[LarkToken], new_children: list[Any] | None = None) -> Any:
        """Call ``self.<rule>(meta, children)``; bound methods are cached per rule
        (lark's ``v_args`` builds a wrapper on every call, a third of the time)."""
        children = new_children if new_children is not None else tree.children
        method = self._methods.get(tree.data)
        if method is None:
            method = getattr(self, tree.data, None)
            if method is None:
                self.__default__(tree.data, children, tree.meta)
            self._methods[tree.data] = method
        return method(tree.meta, children)

    # -- top level -------------------------------------------------------------

    def config(self, meta: Meta, children: list[Any]) -> ast.Config:
        return ast.Config(tuple(_nodes(children)), self.span(meta))

    def global_param(self, meta: Meta, children: list[Any]) -> ast.GlobalParam:
        name = children[0]
        return ast.GlobalParam(str(name), self.tspan(name), children[2], self.span(meta))

    def cfg_var(self, meta: Meta, children: list[Any]) -> ast.CfgVar:
        terms = _terminals(children)
        nodes = _nodes(children)
        group = str(terms[0])
        index = None
        names = [t for t in terms[1:] if t.type in ("ID", "NUMBER")]
        if names[0].type == "NUMBER":
            index = int(self.tok(names[0]).value)
        desc = nodes[1] if len(nodes) > 1 else None
        return ast.CfgVar(group, index, str(names[-1]), nodes[0], desc, self.span(meta))

    def not_in_56(self, what: str, span: Span, help: str) -> None:
        """E0209: a form newer Kamailio reads but 5.6, the release kcc follows, rejects."""
        self.error(
            "E0209",
            f"{what} is not supported by Kamailio 5.6",
            span,
            "newer Kamailio syntax: `kamailio -c` 5.6 rejects it",
            help=help,
        )

    def socket_block(self, meta: Meta, children: list[Any]) -> ast.SocketBlock:
        name = children[0]
        if str(name) == "socket":
            self.not_in_56(
                "a `socket = { ... }` block",
                self.span(meta),
                'write `listen=proto:address:port` (with `advertise ...` and `name "..."`)',
            )
        else:
            brace = children[2]
            self.error(
                "E0201",
                "expected a value, found `{`",
                self.tspan(brace),
                "only `socket` takes a `{ ... }` block",
                labels=[Label(self.tspan(name), f"`{name}` is a single-value setting")],
            )
        return ast.SocketBlock(tuple(_nodes(children)), self.span(meta))

    def socket_attr(self, meta: Meta, children: list[Any]) -> ast.SocketAttr:
        name = children[0]
        return ast.SocketAttr(str(name), self.tspan(name), children[2], self.span(meta))

    def neg_number(self, meta: Meta, children: list[Any]) -> ast.Number:
        number = self.tok(children[1])
        return ast.Number(-int(number.value), "-" + number.text, self.span(meta))

    def value_list(self, meta: Meta, children: list[Any]) -> ast.ParamValue:
        if len(children) == 1:
            item: ast.ParamValue = children[0]
            return item
        return ast.ValueList(tuple(children), self.span(meta))

    def listen_item(self, meta: Meta, children: list[Any]) -> ast.ParamValue:
        if len(children) == 1:
            only: ast.ParamValue = children[0]
            return only
        addr = self._as_socket(children[0])
        advertise: ast.SocketAddr | None = None
        name: ast.String | None = None
        virtual = False
        rest = children[1:]
        i = 0
        while i < len(rest):
            word = rest[i]
            if word.type == "LISTEN_ADVERTISE":
                advertise = self._as_socket(rest[i + 1])
                i += 2
            elif word.type == "LISTEN_NAME":
                name = rest[i + 1]
                i += 2
            else:
                virtual = True
                i += 1
        return ast.Listen(addr, advertise, name, virtual, self.span(meta))

    def _as_socket(self, value: Any) -> ast.SocketAddr:
        if isinstance(value, ast.SocketAddr):
            return value
        return ast.SocketAddr(None, value, None, None, value.span)

    def sock_addr(self, meta: Meta, children: list[Any]) -> Any:
        parts = _nodes(children)
        if len(parts) == 1:
            return parts[0]
        return self._socket(parts, self.span(meta))

    def sock_arg(self, meta: Meta, children: list[Any]) -> ast.SocketAddr:
        parts = _nodes(children)
        return self._socket(parts, self.span(meta))

    def _socket(self, parts: list[Any], span: Span) -> ast.SocketAddr:
        """Interpret ``a:b[:c]``: ``proto:host[:port]`` or ``host:port``."""
        proto: str | None = None
        if len(parts) > 3:
            self._bad_socket(parts[3].span, "too many `:` in a socket address")
            parts = parts[:3]
        first = parts[0]
        if len(parts) == 3 or (
            len(parts) == 2 and isinstance(first, ast.Name) and first.name.lower() in PROTOCOLS
        ):
            if isinstance(first, ast.Name):
                proto = first.name.lower()
            else:
                self._bad_socket(first.span, "expected a protocol such as `udp` or `tcp`")
            parts = parts[1:]
        host = parts[0]
        if not isinstance(
            host, ast.Host | ast.Name | ast.IPAddr | ast.Wildcard | ast.MultiHomed | ast.Number
        ):
            self._bad_socket(host.span, "expected a host name or an IP address")
        port: ast.Number | ast.Wildcard | None = None
        port_end: ast.Number | None = None
        if len(parts) >= 2:
            raw = parts[1]
            if isinstance(raw, ast.Number | ast.Wildcard):
                port = raw
            elif isinstance(raw, ast.Host) and (m := _PORT_RANGE.fullmatch(raw.name)):
                port = ast.Number(int(m.group(1)), m.group(1), raw.span)
                port_end = ast.Number(int(m.group(2)), m.group(2), raw.span)
            else:
                self._bad_socket(raw.span, "expected a port number")
        return ast.SocketAddr(proto, host, port, port_end, span)

    def _bad_socket(self, span: Span, label: str) -> None:
        self.error(
            "E0204",
            "malformed socket address",
            span,
            label,
            notes=("a socket address is written `[proto:]host[:port]`, e.g. `udp:127.0.0.1:5060`",),
        )

    def quoted_host(self, meta: Meta, children: list[Any]) -> ast.Host:
        """``udp:"127.0.0.1":5060`` (the string often comes from a define)."""
        token = self.tok(children[0])
        return ast.Host(str(token.value), token.span)

    def wildcard(self, meta: Meta, children: list[Any]) -> ast.Wildcard:
        return ast.Wildcard(self.span(meta))

    def multi_homed(self, meta: Meta, children: list[Any]) -> ast.MultiHomed:
        return ast.MultiHomed(tuple(_nodes(children)), self.span(meta))

    def param_host(self, meta: Meta, children: list[Any]) -> ast.Host | ast.Name | ast.Number:
        span = self.span(meta)
        if len(children) == 1:
            only = self.tok(children[0])
            if only.kind == "NUMBER":
                return ast.Number(int(only.value), only.text, span)
            return ast.Name(only.text, span)
        return ast.Host("".join(self.tok(c).text for c in children), span)

    def ip_addr(self, meta: Meta, children: list[Any]) -> ast.IPAddr:
        token = self.tok(next(c for c in children if c.type in ("IPV4", "IPV6")))
        address = str(token.value)
        return ast.IPAddr(address, 4 if token.kind == "IPV4" else 6, self.span(meta))

    # -- modules and declarations ----------------------------------------------

    def load_path(self, meta: Meta, children: list[Any]) -> ast.LoadPath:
        return ast.LoadPath(_nodes(children)[0], self.span(meta))

    def load_module(self, meta: Meta, children: list[Any]) -> ast.LoadModule:
        strings = _nodes(children)
        if any(isinstance(c, LarkToken) and c.type == "LPAR" for c in children):
            self.not_in_56(
                f"`{children[0]}(...)` with parentheses",
                self.span(meta),
                f'write `{children[0]} "{strings[0].value}"`',
            )
        opts = strings[1] if len(strings) > 1 else None
        expand = children[0].type == "LOADMODULEX"
        return ast.LoadModule(strings[0], opts, expand, self.span(meta))

    def mod_param(self, meta: Meta, children: list[Any]) -> ast.ModParam:
        module, param, value = _nodes(children)
        expand = children[0].type == "MODPARAMX"
        if isinstance(value, ast.PVar) and not expand:
            self.error(
                "E0201",
                f"expected a string or a number, found `{value.span.text}`",
                value.span,
                "`modparam` takes a constant value",
                help="`modparamx` evaluates a pseudo-variable when the config is loaded",
            )
        return ast.ModParam(module, param, value, expand, self.span(meta))

    def cfg_engine(self, meta: Meta, children: list[Any]) -> ast.CfgEngine:
        return ast.CfgEngine(_nodes(children)[0], self.span(meta))

    def flags_decl(self, meta: Meta, children: list[Any]) -> ast.FlagsDecl:
        return ast.FlagsDecl(tuple(_nodes(children)), self.span(meta))

    def flag_def(self, meta: Meta, children: list[Any]) -> ast.FlagDef:
        bit = int(self.tok(children[2]).value) if len(children) == 3 else None
        return ast.FlagDef(str(children[0]), bit, self.span(meta))

    def avp_flags_decl(self, meta: Meta, children: list[Any]) -> ast.AvpFlagsDecl:
        names = tuple(ast.Name(str(t), self.tspan(t)) for t in children[1:] if t.type == "ID")
        return ast.AvpFlagsDecl(names, self.span(meta))

    # -- routes ------------------------------------------------------------------

    def route(self, meta: Meta, children: list[Any]) -> ast.Route:
        keyword = children[0]
        kind = _ROUTE_KINDS[keyword.type]
        body = children[-1]
        name: str | None = None
        name_span: Span | None = None
        if len(children) > 2:
            raw = children[2]
            if isinstance(raw, ast.String):
                name, name_span = raw.value, raw.span
            else:
                name, name_span = str(raw), self.tspan(raw)
                self._check_digit_name(name, name_span)
            self._check_route_name(kind, raw, name, name_span)
        elif kind is ast.RouteKind.EVENT:
            self.error(
                "E0207",
                "`event_route` needs a name",
                self.tspan(keyword),
                "the event this block handles is missing",
                help="name the event: `event_route[module:event] { ... }`",
            )
        return ast.Route(kind, name, name_span, body, self.span(meta))

    def _check_digit_name(self, name: str, span: Span) -> None:
        """``route[1a]``: 5.6 takes numbers or names starting with a letter, not both."""
        if name[:1].isdigit() and not name.isdigit():
            self.not_in_56(
                f"the route name `{name}`",
                span,
                "start the name with a letter or `_`, or use a plain number",
            )

    def _check_route_name(self, kind: ast.RouteKind, raw: Any, name: str, span: Span) -> None:
        if kind is ast.RouteKind.REPLY:
            self.error(
                "E0207",
                "`reply_route` takes no name",
                span,
                "Kamailio has one `reply_route`, without a name",
                help=f"a reply route armed with `t_on_reply` is written `onreply_route[{name}]`",
            )
        elif kind is ast.RouteKind.REQUEST:
            self.error(
                "E0207",
                "`request_route` takes no name",
                span,
                "the main request route has no name",
                help=f"a sub-route called with `route({name})` is written `route[{name}]`",
            )
        elif kind is ast.RouteKind.EVENT and not (
            (isinstance(raw, LarkToken) and raw.type == "EVENT_NAME")
            or (isinstance(raw, ast.String) and _EVENT_NAME.fullmatch(raw.value))
        ):
            self.error(
                "E0207",
                f"invalid event route name `{name}`",
                span,
                "expected `module:event`",
                notes=(
                    "event routes are named after the module and the event, "
                    "e.g. `event_route[xhttp:request]`",
                ),
            )
        elif (
            kind is not ast.RouteKind.EVENT
            and isinstance(raw, LarkToken)
            and (raw.type == "EVENT_NAME")
        ):
            self.error("E0207", f"invalid route name `{name}`", span, "`:` is not allowed here")

    # -- statements --------------------------------------------------------------

    def block(self, meta: Meta, children: list[Any]) -> ast.Block:
        span = self.span(meta)
        stmts = tuple(_nodes(children))
        for stmt in stmts:
            if isinstance(stmt, ast.Block):
                self.not_in_56(
                    "a block `{ ... }` used as a statement",
                    stmt.span,
                    "remove the inner braces: the statements run in order anyway",
                )
        if not stmts:
            self.error(
                "E0205",
                "empty block",
                span,
                "Kamailio rejects a block with no statement",
                help="write `{ ; }` for a block that does nothing, or remove it",
            )
        return ast.Block(stmts, span)

    def if_stmt(self, meta: Meta, children: list[Any]) -> ast.IfStmt:
        nodes = _nodes(children)
        else_ = nodes[2] if len(nodes) > 2 else None
        return ast.IfStmt(nodes[0], nodes[1], else_, self.span(meta))

    def while_stmt(self, meta: Meta, children: list[Any]) -> ast.WhileStmt:
        cond, body = _nodes(children)
        return ast.WhileStmt(cond, body, self.span(meta))

    def switch_stmt(self, meta: Meta, children: list[Any]) -> ast.SwitchStmt:
        nodes = _nodes(children)
        return ast.SwitchStmt(nodes[0], tuple(nodes[1:]), self.span(meta))

    def case_clause(self, meta: Meta, children: list[Any]) -> ast.CaseClause:
        nodes = _nodes(children)
        return ast.CaseClause(nodes[0], False, tuple(nodes[1:]), self.span(meta))

    def regex_case_clause(self, meta: Meta, children: list[Any]) -> ast.CaseClause:
        nodes = _nodes(children)
        return ast.CaseClause(nodes[0], True, tuple(nodes[1:]), self.span(meta))

    def default_clause(self, meta: Meta, children: list[Any]) -> ast.CaseClause:
        return ast.CaseClause(None, False, tuple(_nodes(children)), self.span(meta))

    def assign_stmt(self, meta: Meta, children: list[Any]) -> ast.AssignStmt:
        target = self._pvar(children[0])
        return ast.AssignStmt(target, children[2], self.span(meta))

    def expr_stmt(self, meta: Meta, children: list[Any]) -> ast.ExprStmt:
        call = children[0]
        span = self.span(meta)
        if not isinstance(call, ast.Call):
            self.error(
                "E0201",
                f"expected a statement, found `{call.span.text}`",
                call.span,
                "this is a value, not an action",
            )
            call = ast.Call("", call.span, (call,), False, call.span)
        return ast.ExprStmt(call, span)

    def bare_call_stmt(self, meta: Meta, children: list[Any]) -> ast.ExprStmt:
        name = children[0]
        name_span = self.tspan(name)
        if str(name) not in BARE_ACTIONS:
            self.error(
                "E0201",
                "expected `(`, found `;`",
                self.tspan(children[1]),
                f"`{name}` is called without an argument list",
                help=f"write `{name}()`",
            )
        call = ast.Call(str(name), name_span, (), True, name_span)
        return ast.ExprStmt(call, self.span(meta))

    def _optional_value(self, children: list[Any]) -> ast.Expr | None:
        nodes = _nodes(children)
        return nodes[0] if nodes else None

    def return_stmt(self, meta: Meta, children: list[Any]) -> ast.ReturnStmt:
        return ast.ReturnStmt(self._optional_value(children), self.span(meta))

    def exit_stmt(self, meta: Meta, children: list[Any]) -> ast.ExitStmt:
        return ast.ExitStmt(self._optional_value(children), self.span(meta))

    def drop_stmt(self, meta: Meta, children: list[Any]) -> ast.DropStmt:
        return ast.DropStmt(self._optional_value(children), self.span(meta))

    def break_stmt(self, meta: Meta, children: list[Any]) -> ast.BreakStmt:
        return ast.BreakStmt(self.span(meta))

    def empty_stmt(self, meta: Meta, children: list[Any]) -> ast.EmptyStmt:
        return ast.EmptyStmt(self.span(meta))

    # -- expressions ---------------------------------------------------------------

    def assign_expr(self, meta: Meta, children: list[Any]) -> ast.AssignExpr:
        return ast.AssignExpr(self._pvar(children[0]), children[2], self.span(meta))

    def binary_expr(self, meta: Meta, children: list[Any]) -> ast.Expr:
        """Apply :data:`PRECEDENCE` to ``operand (op operand)*`` (shunting-yard)."""
        operands: list[ast.Expr] = [children[0]]
        pending: list[LarkToken] = []
        for i in range(1, len(children), 2):
            op = children[i]
            level = PRECEDENCE[op.type]
            while pending and PRECEDENCE[pending[-1].type] >= level:
                self._reduce(operands, pending.pop())
            pending.append(op)
            operands.append(children[i + 1])
        while pending:
            self._reduce(operands, pending.pop())
        return operands[0]

    def _reduce(self, operands: list[ast.Expr], op: LarkToken) -> None:
        right = operands.pop()
        left = operands.pop()
        span = self._outer_span(left).to(self._outer_span(right))
        node: ast.Expr
        if (
            op.type == "SLASH"
            and isinstance(left, ast.IPAddr)
            and isinstance(right, ast.Number | ast.IPAddr)
        ):
            node = self._subnet(left, right, span)
        else:
            node = ast.BinOp(_OPS[op.type], left, right, self.tspan(op), span)
        operands.append(node)

    def _outer_span(self, node: ast.Expr) -> Span:
        """A node's span including the parentheses written around it."""
        return self._parens.get(id(node), node.span)

    def _subnet(self, address: ast.IPAddr, mask: ast.Number | ast.IPAddr, span: Span) -> ast.Subnet:
        bits = 32 if address.version == 4 else 128
        prefix = 0
        if isinstance(mask, ast.Number):
            prefix = mask.value
            if not 0 <= prefix <= bits:
                self.error(
                    "E0204",
                    f"invalid subnet `{span.text}`",
                    mask.span,
                    f"an IPv{address.version} prefix length is between 0 and {bits}",
                )
        elif mask.version != address.version:
            self.error(
                "E0204",
                f"invalid subnet `{span.text}`",
                mask.span,
                f"the mask is not an IPv{address.version} address",
            )
        else:
            try:
                network = ipaddress.ip_network(f"{address.address}/{mask.address}", strict=False)
                prefix_len = network.prefixlen
            except ValueError:
                self.error(
                    "E0204",
                    f"invalid subnet `{span.text}`",
                    mask.span,
                    "the mask's one bits must be contiguous (such as `255.255.0.0`)",
                )
                prefix_len = 0
            return ast.Subnet(address, mask, prefix_len, span)
        return ast.Subnet(address, mask, prefix, span)

    def unary_op(self, meta: Meta, children: list[Any]) -> ast.Expr:
        op, operand = children
        span = self.span(meta)
        kind = op.type
        if kind == "DEFINED":
            return ast.Defined(operand, span)
        if kind in ("INTCAST", "STRCAST"):
            return ast.Cast("int" if kind == "INTCAST" else "str", operand, span)
        if kind == "MINUS" and isinstance(operand, ast.Number) and not operand.text.startswith("-"):
            return ast.Number(-operand.value, "-" + operand.text, span)
        return ast.UnaryOp(_OPS[kind], operand, span)

    def paren(self, meta: Meta, children: list[Any]) -> ast.Expr:
        inner: ast.Expr = children[1]
        self._parens[id(inner)] = self.span(meta)
        return inner

    def block_expr(self, meta: Meta, children: list[Any]) -> ast.BlockExpr:
        return ast.BlockExpr(children[0], self.span(meta))

    def number(self, meta: Meta, children: list[Any]) -> ast.Number:
        token = self.tok(children[0])
        return ast.Number(int(token.value), token.text, token.span)

    def name(self, meta: Meta, children: list[Any]) -> ast.Name:
        token = self.tok(children[0])
        return ast.Name(token.text, token.span)

    def host(self, meta: Meta, children: list[Any]) -> ast.Host:
        return ast.Host("".join(self.tok(c).text for c in children), self.span(meta))

    def select(self, meta: Meta, children: list[Any]) -> ast.Select:
        token = self.tok(children[0])
        return parse_select(token.text, token.span)

    def pvar(self, meta: Meta, children: list[Any]) -> ast.PVar:
        return self._pvar(children[0])

    def _pvar(self, terminal: LarkToken) -> ast.PVar:
        token = self.tok(terminal)
        try:
            pvar = parse_pvar(token.text, token.span)
        except PvSyntaxError as error:
            already = any(
                d.code == "E0107" and d.span is not None and d.span.start == token.span.start
                for d in self.sink.diagnostics
            )
            if not already:
                self.sink.emit(pvar_error(token.text, token.span, error))
            return ast.PVar(token.text.lstrip("$("), None, None, (), token.span)
        if pvar.index is not None and not token.text.startswith("$("):
            self.not_in_56(
                "an index outside `$(...)`",
                token.span,
                f"write the full form: `$({token.text[1:]})`",
            )
        return pvar

    def string(self, meta: Meta, children: list[Any]) -> ast.String:
        parts: list[ast.FormatPart] = []
        values: list[str] = []
        tokens = [self.tok(terminal) for terminal in children]
        single = [t for t in tokens if t.text.startswith("'")]
        if len(tokens) > 1 and single:
            self.error(
                "E0201",
                "a single-quoted string cannot be joined with the string next to it",
                single[0].span,
                "Kamailio joins adjacent strings only when they are double-quoted",
                help='write the strings in double quotes: `"a" "b"`',
            )
        for token in tokens:
            value = str(token.value)
            values.append(value)
            parts.extend(_string_parts(token, value))
        merged: list[ast.FormatPart] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        return ast.String("".join(values), tuple(merged), self.span(meta))

    def call(self, meta: Meta, children: list[Any]) -> ast.Expr:
        name_token = children[0]
        name = str(name_token)
        name_span = self.tspan(name_token)
        span = self.span(meta)
        args = [_dashed_host(a) for a in _nodes(children)]
        if name == "route" and len(args) == 1 and isinstance(args[0], ast.Name):
            self._check_digit_name(args[0].name, args[0].span)
        arity = _BUILTINS_ARITY.get(name)
        if arity is not None:
            if len(args) != arity:
                self._arity_error(name, arity, args, name_span, span)
            elif name == "strlen":
                return ast.StrLen(args[0], span)
            elif name == "strempty":
                return ast.StrEmpty(args[0], span)
            else:
                return ast.SelVal(args[0], args[1], args[2], span)
        if len(args) > MAX_ARGS:
            extra = args[MAX_ARGS].span.to(args[-1].span)
            self.error(
                "E0208",
                f"too many arguments: `{name}` is given {len(args)}",
                extra,
                f"Kamailio passes at most {MAX_ARGS} arguments to a function",
                labels=[Label(name_span, "called here")],
            )
        return ast.Call(name, name_span, tuple(args), False, span)

    def _arity_error(
        self, name: str, arity: int, args: list[Any], name_span: Span, span: Span
    ) -> None:
        plural = "argument" if arity == 1 else "arguments"
        self.error(
            "E0208",
            f"`{name}` takes {arity} {plural}, {len(args)} given",
            span,
            f"expected {arity} {plural}",
        )


def _dashed_host(arg: Any) -> Any:
    """``my-host.example.com`` as a call argument parses as a subtraction; when the
    operands are names written without spaces around ``-``, it is a host name."""
    if not isinstance(arg, ast.BinOp) or arg.op != "-":
        return arg
    left, right = _dashed_host(arg.left), _dashed_host(arg.right)
    hostish = ast.Name | ast.Host | ast.Number
    if (
        isinstance(left, hostish)
        and isinstance(right, hostish)
        and left.span.file is right.span.file
        and left.span.end == arg.op_span.start
        and arg.op_span.end == right.span.start
        and not (isinstance(left, ast.Number) and left.text.startswith("-"))
    ):
        text = left.span.file.text[left.span.start : right.span.end]
        return ast.Host(text, arg.span)
    return arg


def _string_parts(token: Token, value: str) -> tuple[ast.FormatPart, ...]:
    """Format parts of one string token, with spans mapped through escapes."""
    if "$" not in value:
        return (value,) if value else ()
    text = token.text
    quote = text[0]
    closers = {'"': '"', "'": "'"}
    closers.update(TYPOGRAPHIC_DOUBLE)
    closers.update(TYPOGRAPHIC_SINGLE)
    closed = len(text) >= 2 and text[-1] in (
        closers.get(quote, quote),
        '"',
        "'",
        "\u201d",
        "\u2019",
    )
    body = text[1:-1] if closed else text[1:]
    span = token.span
    base = Span(span.file, span.start + 1, span.start + 1 + len(body), span.origin)
    if quote == "'" or quote in TYPOGRAPHIC_SINGLE:
        offsets = list(range(len(body)))
        decoded = body
    else:
        decoded, offsets = decode_dq_string(body)
    if decoded != value:  # rewritten after lexing (`#!subst`): parts point at the token
        return split_format(value, [0] * len(value), span)
    return split_format(decoded, offsets, base)
