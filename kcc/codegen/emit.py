"""The code generator: a checked config to one LibCST module (``kcc build``).

:class:`CodeGenerator` walks the AST the semantic passes checked and builds LibCST
nodes, never strings of code; :func:`generate_module` renders the tree and formats it
with :func:`kcc.format.format_module`. ``docs/generated-code.md`` is the contract this
module follows (shape of the module, runtime names, statement and expression forms).

Design:

- **One emitter per AST class.** Statements go through ``emit_<snake_name>`` (a list of
  LibCST statements, each with its ``# file.cfg:N`` marker), expressions through
  ``value_<snake_name>`` (*value* mode: a Kamailio value). *Condition* mode
  (:meth:`CodeGenerator.cond`) and *truth* mode (:meth:`CodeGenerator.truth`) reuse the
  value form except where the value is already 0 or 1 (comparisons, ``defined``,
  function calls), so ``if`` reads ``if kw.method_eq(ctx, "INVITE"):``.
- **Kamailio's truthiness.** ``if``/``while`` take a branch when the value as an int is
  > 0 (``v.cond``); the operands of ``&&``/``||``/``!`` count when non-zero
  (``v.to_int(x) != 0``), as ``rval.c`` evaluates them. Kamailio's start-up optimizer
  (``rve_opt_01``) rewrites an ``&&``/``||`` with a constant int operand 1/0 to the other
  operand as an int, or to the constant without evaluating the other side; the rule is
  applied here exactly as ``tests/kamailio_eval.py`` applies it.
- **Evaluation errors.** Only expressions that can fail (``/``, ``mod`` by anything but a
  non-zero constant other than -1, ``=~`` with a pattern known per message) raise
  ``v.EvalError``; the statement holding one is wrapped: an assignment is skipped, a
  condition is false, ``return`` passes -1, a function call records -1 in ``$rc``
  (Kamailio logs the error and goes on in each case).
- **A route's value** is the last action's: a call in tail position is returned
  (``return ctx.action(...)``), an ``if`` in tail position returns what its branch
  returned, anything else falls back to ``return 1``. Statements after one that always
  ends the block (``exit``, ``return`` ...) never run in Kamailio and are not emitted, so
  ``mypy --warn-unreachable`` holds on every generated module.
- **Constants are built once.** Pseudo-variable accessors (``PV_*``), formats
  (``FMT_n``), regexes (``RE_n``), networks (``NET_n``) and selects (``SEL_n``) are
  module constants, shared by every use of the same text; a define or a named flag used
  in code is a ``Final`` constant spelled as in the cfg.
- **Refusals.** A call whose ``Cmd.impl`` is None cannot run: every such function is
  reported once (E0901, other call sites as secondary labels) and nothing is generated.
  A form the runtime contract has no shape for is E0902. A ``db_url`` of a driver
  other than ``sqlite://`` is E0904 (:mod:`kcc.sema.databases`; ``kcc check`` warns
  of it as W0904).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any, Final

import libcst as cst
from kcc_runtime import pv as rpv
from kcc_runtime import values as rv
from kcc_runtime.exports import ArgKind, Cmd, Route

from kcc import ast
from kcc.codegen.literals import escape_text, marker_comment, string_literal
from kcc.codegen.names import NameTable
from kcc.diagnostics import Diagnostic, Label
from kcc.lexer import Token
from kcc.sema.context import SemaContext, module_name, route_key
from kcc.sema.databases import unsupported_databases
from kcc.sema.flags import build_flag_table
from kcc.sema.resolve import modparam_modules
from kcc.source import Span

__all__ = ["BuildError", "CodeGenerator", "input_hash"]

#: condition keywords read through ``kw.<name>(ctx)`` (``msg:len`` is ``kw.msg_len``)
KEYWORDS: dict[str, str] = {
    "method": "method",
    "uri": "uri",
    "status": "status",
    "from_uri": "from_uri",
    "to_uri": "to_uri",
    "src_ip": "src_ip",
    "dst_ip": "dst_ip",
    "snd_ip": "snd_ip",
    "to_ip": "to_ip",
    "src_port": "src_port",
    "dst_port": "dst_port",
    "snd_port": "snd_port",
    "to_port": "to_port",
    "proto": "proto",
    "snd_proto": "snd_proto",
    "af": "af",
    "snd_af": "snd_af",
    "msg:len": "msg_len",
}
_URI_KEYWORDS = frozenset({"uri", "from_uri", "to_uri"})
_IP_KEYWORDS = frozenset({"src_ip", "dst_ip", "snd_ip", "to_ip"})
_INT_KEYWORDS = frozenset({"src_port", "dst_port", "snd_port", "to_port", "msg:len"})
_PROTOS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss"})
_AFS = frozenset({"inet", "inet6"})

#: binary operators -> ``kcc_runtime.values`` function
_BINARY: dict[str, str] = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "mod": "mod",
    "&": "bit_and",
    "|": "bit_or",
    "^": "bit_xor",
    "<<": "shl",
    ">>": "shr",
    "==": "eq",
    "!=": "ne",
    "eq": "str_eq",
    "ne": "str_ne",
    "ieq": "int_eq",
    "ine": "int_ne",
    "<": "lt",
    ">": "gt",
    "<=": "le",
    ">=": "ge",
}
_COMPARISONS = frozenset(
    {"==", "!=", "eq", "ne", "ieq", "ine", "<", ">", "<=", ">=", "=~"},
)
_KW_COMPARE: dict[str, str] = {
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    ">": "gt",
    "<=": "le",
    ">=": "ge",
    "ieq": "int_eq",
    "ine": "int_ne",
    "eq": "str_eq",
    "ne": "str_ne",
}

#: route kinds -> the context class of the contract's table, in union order
_CONTEXTS: tuple[tuple[Route, str], ...] = (
    (Route.REQUEST, "RequestContext"),
    (Route.FAILURE | Route.BRANCH_FAILURE, "FailureContext"),
    (Route.TM_ONREPLY | Route.CORE_ONREPLY, "ReplyContext"),
    (Route.BRANCH, "BranchContext"),
    (Route.ONSEND, "OnsendContext"),
    (Route.ONEVENT, "EventContext"),
)

#: what ``t_on_branch_failure("X")`` puts before ``X`` to name its event route
BRANCH_FAILURE_PREFIX: Final = "tm:branch-failure:"

#: ``ArgKind.ROUTE`` target kind -> the keyword of the blocks it names
_ROUTE_ARG_KIND: dict[Route, ast.RouteKind] = {
    Route.REQUEST: ast.RouteKind.ROUTE,
    Route.FAILURE: ast.RouteKind.FAILURE,
    Route.BRANCH: ast.RouteKind.BRANCH,
    Route.TM_ONREPLY: ast.RouteKind.ONREPLY,
    Route.ONREPLY: ast.RouteKind.ONREPLY,
}


class BuildError(Exception):
    """The config cannot be built; ``diagnostics`` say why (E09xx)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__(f"{len(diagnostics)} build error(s)")
        self.diagnostics = list(diagnostics)


#: CPython's static limits on one function: ``for``/``while``/``try``/``except`` blocks
#: nested in one another (CO_MAXBLOCKS; an ``except`` body counts twice) and levels of
#: indentation (the tokenizer's MAXINDENT, the function's own body included)
PYTHON_MAX_BLOCKS = 20
PYTHON_MAX_INDENT = 99

_STATIC_BLOCKS = (cst.While, cst.For, cst.Try, cst.ExceptHandler, cst.With, cst.Finally)


def python_nesting_error(
    function: cst.FunctionDef, spans: Mapping[int, Span]
) -> tuple[str, Span | None] | None:
    """What of CPython's nesting limits ``function`` exceeds, and the span of the
    outermost block past it (``spans``: id of an indented block -> its cfg span), or
    None when ``compile()`` accepts its nesting. Iterative: the tree may be deep."""
    stack: list[tuple[cst.CSTNode, int, int, Span | None]] = [(function, 0, 0, None)]
    while stack:
        node, indent, blocks, span = stack.pop()
        if isinstance(node, cst.IndentedBlock):
            indent += 1
            span = spans.get(id(node), span)
        if isinstance(node, _STATIC_BLOCKS):
            blocks += 1
        if indent > PYTHON_MAX_INDENT:
            return f"more than {PYTHON_MAX_INDENT} levels of indentation", span
        if blocks > PYTHON_MAX_BLOCKS:
            return f"more than {PYTHON_MAX_BLOCKS} nested loops and `try` blocks", span
        stack.extend((child, indent, blocks, span) for child in node.children)
    return None


class _Refusal(Exception):  # noqa: N818 -- internal signal, turned into E0902
    def __init__(self, span: Span, what: str) -> None:
        super().__init__(what)
        self.span = span
        self.what = what


@functools.lru_cache(maxsize=4096)
def _marker_at(path: str, line: int) -> cst.TrailingWhitespace:
    """The ``  # file.cfg:N`` end of a line (LibCST nodes are immutable: shared)."""
    return cst.TrailingWhitespace(
        whitespace=cst.SimpleWhitespace("  "),
        comment=marker_comment(PurePosixPath(path).name, line),
    )


def module_code(module: cst.Module, known: Mapping[int, str]) -> str:
    """``module.code``, reusing the text already generated for some top-level
    statements (``known``: ``id(statement)`` -> its code). A module's code is its
    header lines then each statement's code, nothing between, so the build stage
    generates each route function's text once, for :class:`kcc.format.FormatStream`
    and for the whole module (``tests/test_codegen_emit.py`` checks the equality)."""
    head = "".join(module.code_for_node(line) for line in module.header)
    body = "".join(known.get(id(stmt)) or module.code_for_node(stmt) for stmt in module.body)
    return head + body + "".join(module.code_for_node(line) for line in module.footer)


def input_hash(tokens: Iterable[Token]) -> str:
    """SHA-256 over the preprocessed token stream: kind, text and value of each token.

    Spans are left out, so a comment or whitespace edit keeps the hash; any edit that
    changes a token (hence possibly the output) changes it.
    """
    digest = hashlib.sha256()
    for token in tokens:
        digest.update(
            f"{token.kind}\x00{token.text}\x00{token.value!r}\x01".encode("utf-8", "surrogatepass")
        )
    return digest.hexdigest()


# -- LibCST helpers ----------------------------------------------------------------------


def _name(text: str) -> cst.Name:
    return cst.Name(text)


def _attr(base: str, *names: str) -> cst.BaseExpression:
    node: cst.BaseExpression = cst.Name(base)
    for item in names:
        node = cst.Attribute(value=node, attr=cst.Name(item))
    return node


def _call(
    func: cst.BaseExpression, *args: cst.BaseExpression, **kwargs: cst.BaseExpression
) -> cst.Call:
    arguments = [cst.Arg(a) for a in args]
    arguments += [cst.Arg(v, keyword=cst.Name(k)) for k, v in kwargs.items()]
    return cst.Call(func=func, args=arguments)


def _int(value: int) -> cst.BaseExpression:
    if value < 0:
        return cst.UnaryOperation(operator=cst.Minus(), expression=cst.Integer(str(-value)))
    return cst.Integer(str(value))


def _str(value: str) -> cst.BaseExpression:
    return string_literal(value)


def _literal(value: int | str | None) -> cst.BaseExpression:
    if value is None:
        return cst.Name("None")
    if isinstance(value, int):
        return _int(value)
    return _str(value)


def _tuple(items: Sequence[cst.BaseExpression]) -> cst.Tuple:
    elements = [cst.Element(item) for item in items]
    if len(elements) == 1:
        elements = [cst.Element(items[0], comma=cst.Comma())]
    return cst.Tuple(elements=elements)


def _dict(items: Sequence[tuple[str, cst.BaseExpression]]) -> cst.Dict:
    return cst.Dict(elements=[cst.DictElement(_str(k), v) for k, v in items])


def _compare(
    left: cst.BaseExpression, op: cst.BaseCompOp, right: cst.BaseExpression
) -> cst.Comparison:
    return cst.Comparison(
        left=left, comparisons=[cst.ComparisonTarget(operator=op, comparator=right)]
    )


def _bool_op(
    op: cst.BaseBooleanOp, left: cst.BaseExpression, right: cst.BaseExpression
) -> cst.BooleanOperation:
    """``left and right`` / ``left or right``; an operand that is a boolean operation of
    the other kind is parenthesised (every operand is a bool, so ``a or b or c`` needs
    none whichever way the cfg grouped it)."""
    return cst.BooleanOperation(
        left=_paren_bool(left, op), operator=op, right=_paren_bool(right, op)
    )


def _paren_bool(
    expr: cst.BaseExpression, op: cst.BaseBooleanOp | None = None
) -> cst.BaseExpression:
    if (
        isinstance(expr, cst.BooleanOperation)
        and op is not None
        and type(expr.operator) is type(op)
    ):
        return expr
    if isinstance(expr, cst.BooleanOperation | cst.IfExp):
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


def _not(expr: cst.BaseExpression) -> cst.BaseExpression:
    return cst.UnaryOperation(operator=cst.Not(), expression=_paren_bool(expr))


def _suite(suite: cst.BaseSuite) -> list[cst.BaseStatement]:
    return list(suite.body) if isinstance(suite, cst.IndentedBlock) else []


def _terminates(stmts: Sequence[cst.BaseStatement]) -> bool:
    """The statements always leave the function (return/raise on every path)."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return any(isinstance(s, cst.Return | cst.Raise) for s in last.body)
    if isinstance(last, cst.If):
        if last.orelse is None:
            return False
        if not _terminates(_suite(last.body)):
            return False
        orelse = last.orelse
        if isinstance(orelse, cst.If):
            return _terminates([orelse])
        return _terminates(_suite(orelse.body))
    if isinstance(last, cst.Try):
        return _terminates(_suite(last.body)) and all(
            _terminates(_suite(h.body)) for h in last.handlers
        )
    return False


# -- compile-time facts about expressions ------------------------------------------------


def is_constant(expr: ast.Expr) -> bool:
    """No pseudo-variable, call or keyword anywhere below: Kamailio folds it at start-up
    (the same test as ``tests/kamailio_eval.is_constant``)."""
    if isinstance(expr, ast.Number | ast.String):
        return True
    if isinstance(expr, ast.BinOp):
        return is_constant(expr.left) and is_constant(expr.right)
    if isinstance(expr, ast.UnaryOp | ast.Cast | ast.StrLen | ast.StrEmpty):
        return is_constant(expr.operand)
    if isinstance(expr, ast.SelVal):
        return is_constant(expr.cond) and is_constant(expr.if_true) and is_constant(expr.if_false)
    return False


def const_value(expr: ast.Expr) -> rv.Value:
    """The value of a constant expression with ``kcc_runtime.values`` semantics;
    raises ``rv.EvalError`` when it has none (division by zero ...)."""
    if isinstance(expr, ast.Number):
        return rv.wrap32(expr.value)
    if isinstance(expr, ast.String):
        return expr.value
    if isinstance(expr, ast.BinOp):
        if expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.other is not None:
                return rv.to_int(const_value(plan.other))
            if plan.kind == "absorb":
                return plan.value
            left = rv.to_int(const_value(expr.left))
            if expr.op == "&&":
                return 1 if left and rv.to_int(const_value(expr.right)) else 0
            return 1 if left or rv.to_int(const_value(expr.right)) else 0
        left_v, right_v = const_value(expr.left), const_value(expr.right)
        if expr.op in ("==", "!=") and _is_null(expr.right):
            return rv.defined(left_v) if expr.op == "!=" else rv.log_not(rv.defined(left_v))
        if expr.op == "=~":
            return rv.match(left_v, right_v)
        func: Callable[[rv.Value, rv.Value], rv.Value] = getattr(rv, _BINARY[expr.op])
        return func(left_v, right_v)
    if isinstance(expr, ast.UnaryOp):
        operand = const_value(expr.operand)
        if expr.op == "!":
            return rv.log_not(operand)
        return rv.neg(operand) if expr.op == "-" else rv.bit_not(operand)
    if isinstance(expr, ast.Cast):
        operand = const_value(expr.operand)
        return rv.cast_int(operand) if expr.to == "int" else rv.cast_str(operand)
    if isinstance(expr, ast.StrLen):
        return rv.strlen(const_value(expr.operand))
    if isinstance(expr, ast.StrEmpty):
        return rv.strempty(const_value(expr.operand))
    if isinstance(expr, ast.SelVal):
        if rv.selval_cond(const_value(expr.cond)):
            return const_value(expr.if_true)
        return const_value(expr.if_false)
    raise rv.EvalError("not a constant expression")


@dataclass(frozen=True, slots=True)
class LogicalPlan:
    """How an ``&&``/``||`` is evaluated after Kamailio's start-up optimizer.

    ``normal``: both operands, short-circuit; ``identity``: ``(int)other`` (``other``
    set); ``absorb``: the constant ``value``, the other operand never evaluated."""

    kind: str
    other: ast.Expr | None = None
    value: int = 0


_NORMAL = LogicalPlan("normal")


def logical_plan(expr: ast.BinOp) -> LogicalPlan:
    """Kamailio's ``rve_opt_01`` for ``&&``/``||`` with one constant operand whose
    value is an int: the identity (1 for ``&&``, 0 for ``||``) leaves ``(int)other``,
    the absorbing value leaves itself; only when the other operand is not constant."""
    for const, other in ((expr.left, expr.right), (expr.right, expr.left)):
        if is_constant(const) and not is_constant(other):
            try:
                value = const_value(const)
            except rv.EvalError:
                continue
            if isinstance(value, int):
                if value == rv.LOGICAL_IDENTITY[expr.op]:
                    return LogicalPlan("identity", other)
                if value == rv.LOGICAL_ABSORBING[expr.op]:
                    return LogicalPlan("absorb", value=value)
    return _NORMAL


#: arithmetic identities Kamailio's start-up optimizer removes around an operand whose
#: type is int: ``op -> (identity value, the constant may be on the left too)``
_ARITH_IDENTITY: Final[dict[str, tuple[int, bool]]] = {
    "+": (0, True),
    "-": (0, False),
    "*": (1, True),
    "/": (1, False),
    "|": (0, True),
}


def raw_action(expr: ast.Expr) -> ast.Call | ast.BlockExpr | None:
    """The call or block whose *raw* return code is the value of ``expr`` when
    ``expr`` is a whole assignment's right-hand side, else None.

    Measured on Kamailio 5.6 (docs/generated-code.md): ``$var(y) = f()`` stores f's
    code (-1), not the 0/1 an operand gets, and so does ``f() + 0``, ``1 * f()``,
    ``f() && 1`` ...: the optimizer removes an identity operator around an int-typed
    operand (a call is one), leaving the call as the whole value.
    """
    while True:
        if isinstance(expr, ast.Call | ast.BlockExpr):
            return expr
        if not isinstance(expr, ast.BinOp):
            return None
        if expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.kind != "identity" or plan.other is None:
                return None
            expr = plan.other
            continue
        rule = _ARITH_IDENTITY.get(expr.op)
        if rule is None:
            return None
        identity, either_side = rule
        sides = [(expr.right, expr.left)]
        if either_side:
            sides.append((expr.left, expr.right))
        for const, other in sides:
            if (
                isinstance(other, ast.Call | ast.BlockExpr)
                and is_constant(const)
                and _const_int(const) == identity
            ):
                expr = other
                break
        else:
            return None


def _const_int(expr: ast.Expr) -> int | None:
    try:
        value = const_value(expr)
    except rv.EvalError:
        return None
    return value if isinstance(value, int) else None


def _is_null(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.PVar) and expr.name == "null"


def _safe_divisor(expr: ast.Expr) -> bool:
    if not is_constant(expr):
        return False
    try:
        value = rv.to_int(const_value(expr))
    except rv.EvalError:
        return False
    return value not in (0, -1)


def can_fail(expr: ast.Expr) -> bool:
    """Whether evaluating ``expr`` can raise ``v.EvalError`` (see the module docstring)."""
    if isinstance(expr, ast.BinOp):
        if expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.other is not None:
                return can_fail(plan.other)
            if plan.kind == "absorb":
                return False
        if expr.op in ("/", "mod") and not _safe_divisor(expr.right):
            return True
        if expr.op == "=~" and not isinstance(expr.right, ast.String):
            return True
        if is_constant(expr):
            try:
                const_value(expr)
            except rv.EvalError:
                return True
        return can_fail(expr.left) or can_fail(expr.right)
    if isinstance(expr, ast.UnaryOp | ast.Cast | ast.StrLen | ast.StrEmpty | ast.Defined):
        return can_fail(expr.operand)
    if isinstance(expr, ast.SelVal):
        return can_fail(expr.cond) or can_fail(expr.if_true) or can_fail(expr.if_false)
    if isinstance(expr, ast.Call):
        return any(can_fail(arg) for arg in expr.args)
    if isinstance(expr, ast.AssignExpr):
        return can_fail(expr.value)
    return False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _define_name(span: Span) -> str | None:
    name = None
    current: Span | None = span
    while current is not None and current.origin is not None and current.origin.kind == "define":
        name = current.origin.name
        current = current.origin.site
    return name


def _span_key(span: Span) -> tuple[str, int, int]:
    return (span.file.path, span.start, span.end)


def _host_text(node: ast.Expr | ast.ParamValue) -> str:
    """The text of a host, address or socket as Kamailio writes it."""
    match node:
        case ast.Host(name=name) | ast.Name(name=name):
            return name
        case ast.IPAddr(address=address, version=version):
            return f"[{address}]" if version == 6 else address
        case ast.Subnet(address=address, prefix=prefix):
            return f"{address.address}/{prefix}"
        case ast.Wildcard():
            return "*"
        case ast.Number(text=text):
            return text
        case ast.String(value=value):
            return value
        case ast.MultiHomed(addrs=addrs):
            return "(" + ",".join(_host_text(a) for a in addrs) + ")"
        case ast.SocketAddr(proto=proto, host=host, port=port, port_end=port_end):
            text = _host_text(host)
            if proto is not None:
                text = f"{proto}:{text}"
            if port is not None:
                text += f":{_host_text(port)}"
            if port_end is not None:
                text += f"-{port_end.text}"
            return text
    raise ValueError(f"not a host: {node!r}")


def _param_values(value: ast.ParamValue) -> list[int | str]:
    """A global parameter's value(s) for ``CONFIG.globals`` (a list: one per item)."""
    match value:
        case ast.Number(value=number):
            return [number]
        case ast.String(value=text):
            return [text]
        case ast.ValueList(items=items):
            out: list[int | str] = []
            for item in items:
                out.extend(_param_values(item))
            return out
        case ast.Listen(addr=addr, advertise=advertise, name=name, virtual=virtual):
            text = _host_text(addr)
            if advertise is not None:
                text += f" advertise {_host_text(advertise)}"
            if name is not None:
                text += f' name "{name.value}"'
            if virtual:
                text += " virtual"
            return [text]
    return [_host_text(value)]


# -- function signatures -------------------------------------------------------------------


def _param_class(annotation: Any) -> str:
    """``int`` / ``str`` / ``pv`` / ``regex`` / ``route`` / ``value`` for one parameter."""
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        for suffix in ("|None", "None|"):
            text = text.replace(suffix, "")
        if text == "int":
            return "int"
        if text == "str":
            return "str"
        if "Accessor" in text:
            return "pv"
        if "Pattern" in text:
            return "regex"
        if "RouteFn" in text or "Callable" in text:
            return "route"
        return "value"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _param_class(args[0])
    if annotation is int:
        return "int"
    if annotation is str:
        return "str"
    return _param_class(getattr(annotation, "__name__", repr(annotation)) + repr(annotation))


@functools.cache
def param_classes(impl: Callable[..., Any]) -> tuple[str, ...]:
    """The class of each parameter after ``ctx``, from the impl's annotations (read
    once per function: ``get_type_hints`` is slow)."""
    try:
        signature = inspect.signature(impl)
    except (TypeError, ValueError):
        return ()
    try:
        hints: dict[str, Any] = typing.get_type_hints(impl)
    except Exception:  # an annotation only the type checker can resolve
        hints = {}
    out: list[str] = []
    for param in list(signature.parameters.values())[1:]:
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            out.append("value")
        else:
            out.append(_param_class(annotation))
    return tuple(out)


def _too_deep_for_python(what: str, span: Span | None, route: Span) -> Diagnostic:
    return Diagnostic.error(
        "E0906",
        "blocks nested too deeply for Python",
        span if span is not None else route,
        f"the generated Python would have {what} here",
        notes=("CPython refuses to compile a function nested this deeply",),
        help="move the inner blocks into a `route[...]` of their own and call it",
    )


# -- the generator ---------------------------------------------------------------------------


@dataclass
class _Scope:
    """One generated function: its names and the statements expressions need first."""

    names: NameTable
    #: local defs (block expressions) to emit before the current statement
    pre: list[cst.BaseStatement] = field(default_factory=list)
    #: loops/switches enclosing the current statement (a ``break`` target exists)
    breakable: int = 0


@dataclass
class _Constant:
    name: str
    value: cst.BaseExpression
    span: Span


class CodeGenerator:
    """Builds the generated module of one checked config (see the module docstring)."""

    def __init__(self, sema: SemaContext, *, source: str, digest: str) -> None:
        self.sema = sema
        self.source = source
        self.digest = digest
        self.names = NameTable()
        self.imports: set[str] = set()
        self.modules: set[str] = set()
        self.constants: list[_Constant] = []
        self.define_consts: list[_Constant] = []
        self._const_keys: dict[Hashable, str] = {}
        self._counters: dict[str, int] = {}
        self._scope: _Scope | None = None
        self._marker_span: Span | None = None
        self._refusals: list[_Refusal] = []
        #: id of each generated indented block -> the cfg span it comes from
        self._block_spans: dict[int, Span] = {}
        self._flag_names: dict[tuple[str, int, int], tuple[str | None, int]] = {}
        table = sema.flag_table if sema.flag_table is not None else build_flag_table(sema)
        for entry in table.entries.values():
            for use in entry.uses:
                self._flag_names[_span_key(use.span)] = (use.name, use.number)
        self._cfgtrace = cfgtrace_enabled(sema.config)
        self._trace_route: str | None = None
        self._route_names: dict[int, str] = {}
        for route in sema.route_blocks():
            if sema.routes.get(route_key(route)) is route:
                self._route_names[id(route)] = self.names.route(route.kind, route.name)

    # -- entry point -----------------------------------------------------------------

    def generate(self, on_function: Callable[[cst.FunctionDef], None] | None = None) -> cst.Module:
        """The whole module; raises :class:`BuildError` when the config cannot be built.

        ``on_function`` sees each route function as soon as it is built (the build
        stage starts formatting it while the next one is generated)."""
        self._check_implemented()
        functions: list[cst.BaseStatement] = []
        for route in self.sema.route_blocks():
            if id(route) in self._route_names:
                try:
                    function = self.emit_route(route)
                except _Refusal as refusal:
                    self._refusals.append(refusal)
                    continue
                too_deep = python_nesting_error(function, self._block_spans)
                self._block_spans.clear()
                if too_deep is not None:
                    raise BuildError([_too_deep_for_python(*too_deep, route.span)])
                functions.append(function)
                if on_function is not None and not self._refusals:
                    on_function(function)
        if self._refusals:
            raise BuildError(
                [
                    Diagnostic.error(
                        "E0902",
                        f"{r.what} cannot be built by kcc yet",
                        r.span,
                        "kcc has no Python form for this",
                    )
                    for r in self._refusals
                ]
            )
        blank = cst.EmptyLine()
        docstring = self._simple(
            cst.Expr(
                cst.SimpleString(
                    '"""' + escape_text(f"Routing logic of {self.source}, compiled by kcc.") + '"""'
                )
            )
        )
        future = self._simple(
            cst.ImportFrom(
                module=_name("__future__"), names=[cst.ImportAlias(name=_name("annotations"))]
            )
        ).with_changes(leading_lines=[blank])
        tail = [
            *self._config_statement(),
            *self._router_statement(),
            *self._routes_table(),
            *self._main_block(),
        ]
        tail = [line.with_changes(leading_lines=[blank]) for line in tail]
        imports = self._imports()
        imports[0] = imports[0].with_changes(leading_lines=[blank])
        if len(imports) > 1:
            imports[1] = imports[1].with_changes(leading_lines=[blank])
        source = self._simple(
            cst.AnnAssign(
                target=_name("__kcc_source__"),
                annotation=cst.Annotation(_name("Final")),
                value=_str(self.source),
            )
        ).with_changes(leading_lines=[blank])
        sections: list[cst.BaseStatement] = []
        for title, consts in (
            ("defines and flags: constants spelled as in the cfg", self.define_consts),
            ("pseudo-variables, formats, regexes, networks: built once at import", self.constants),
        ):
            lines = [self._constant_line(c) for c in consts]
            if lines:
                heading = cst.EmptyLine(comment=cst.Comment(f"# -- {title}"))
                lines[0] = lines[0].with_changes(leading_lines=[blank, heading])
                sections.extend(lines)
        header = [
            cst.EmptyLine(
                comment=cst.Comment(
                    f"# Generated by kcc from {_comment_text(self.source)}. "
                    "Do not edit: change the cfg and rebuild."
                )
            ),
            cst.EmptyLine(comment=cst.Comment(f"# kcc-input-sha256: {self.digest}")),
        ]
        body = [docstring, future, *imports, source, *sections, *functions, *tail]
        return cst.Module(
            body=typing.cast(list[cst.SimpleStatementLine | cst.BaseCompoundStatement], body),
            header=header,
        )

    def _check_implemented(self) -> None:
        """E0901 for functions and E0903 for pseudo-variables, transformations and
        selects the runtime does not implement: all of them, then stop."""
        calls: list[ast.Call] = []
        uses: list[ast.PVar | ast.Select | ast.AssignStmt | ast.AssignExpr] = []
        for route in self.sema.route_blocks():
            if id(route) in self._route_names:
                for node in _iter_uses(route.body):
                    if isinstance(node, ast.Call):
                        calls.append(node)
                    else:
                        uses.append(node)
        diagnostics = [
            *self._missing_functions(calls),
            *self._missing_pvs(uses),
            *unsupported_databases(self.sema.config, build=True),
            *self._unsupported_params(),
        ]
        if diagnostics:
            raise BuildError(diagnostics)

    def _unsupported_params(self) -> list[Diagnostic]:
        """E0905 for a ``modparam`` the runtime's export table marks as not
        implemented (``ModParam.implemented``): the cfg would run without what the
        parameter asks for (acc's ``db_flag``: accounting to a database)."""
        from kcc_runtime import modules

        diagnostics = []
        for item in self.sema.config.items:
            if not isinstance(item, ast.ModParam):
                continue
            exports = modules.get(item.module.value)
            if exports is None:
                continue
            param = next((p for p in exports.params if p.name == item.param.value), None)
            if param is None or param.implemented:
                continue
            diagnostics.append(
                Diagnostic.error(
                    "E0905",
                    f"module parameter `{exports.name}.{param.name}` is not supported by "
                    "the kcc runtime yet",
                    item.param.span,
                    "the runtime does not do what this asks for",
                    help="remove it (or its `#!define` switch) to build; `kcc check` accepts it",
                )
            )
        return diagnostics

    def _missing_pvs(
        self, uses: Iterable[ast.PVar | ast.Select | ast.AssignStmt | ast.AssignExpr]
    ) -> list[Diagnostic]:
        """What the runtime's ``pv`` tables (``PVS``, ``WRITABLE``, ``TRANSFORMATIONS``,
        ``select``) do not cover, one error per missing name with every other use as a
        secondary label."""
        missing: dict[str, list[Span]] = {}
        for node in uses:
            for name, span in _unsupported(node):
                missing.setdefault(name, []).append(span)
        diagnostics = []
        for what, spans in missing.items():
            first, *rest = spans
            diagnostics.append(
                Diagnostic.error(
                    "E0903",
                    f"{what} is not supported by the kcc runtime yet",
                    first,
                    "no runtime implementation",
                    labels=[Label(span, "also used here") for span in rest],
                    help="`kcc check` accepts it; `kcc build` needs the runtime to implement it",
                )
            )
        return diagnostics

    def _missing_functions(self, calls: Iterable[ast.Call]) -> list[Diagnostic]:
        missing: dict[str, list[ast.Call]] = {}
        for node in calls:
            info = self.sema.resolved.get(id(node))
            if node.name == "route" or info is None:
                continue
            if info.cmd.impl is None:
                missing.setdefault(node.name, []).append(node)
        diagnostics = []
        for name, sites in missing.items():
            first, *rest = sites
            diagnostics.append(
                Diagnostic.error(
                    "E0901",
                    f"`{name}` is not supported by the kcc runtime yet",
                    first.name_span,
                    "no runtime implementation",
                    labels=[Label(c.name_span, "also called here") for c in rest],
                    help="`kcc check` accepts it; `kcc build` needs the runtime to implement it",
                )
            )
        return diagnostics

    # -- module-level pieces ---------------------------------------------------------

    def _use(self, name: str) -> str:
        self.imports.add(name)
        return name

    def _imports(self) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = [
            self._simple(
                cst.ImportFrom(module=_name("typing"), names=[cst.ImportAlias(name=_name("Final"))])
            )
        ]
        names = sorted(
            self.imports - {"v"},
            key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n),
        )
        if names:
            out.append(
                self._simple(
                    cst.ImportFrom(
                        module=_name("kcc_runtime"),
                        names=[cst.ImportAlias(name=_name(n)) for n in names],
                    )
                )
            )
        if "v" in self.imports:
            out.append(
                self._simple(
                    cst.ImportFrom(
                        module=_name("kcc_runtime"),
                        names=[
                            cst.ImportAlias(
                                name=_name("values"), asname=cst.AsName(name=_name("v"))
                            )
                        ],
                    )
                )
            )
        if self.modules:
            out.append(
                self._simple(
                    cst.ImportFrom(
                        module=cst.Attribute(value=_name("kcc_runtime"), attr=_name("modules")),
                        names=[cst.ImportAlias(name=_name(m)) for m in sorted(self.modules)],
                    )
                )
            )
        return out

    def _constant_line(self, const: _Constant) -> cst.BaseStatement:
        return self._simple(
            cst.AnnAssign(
                target=_name(const.name),
                annotation=cst.Annotation(_name("Final")),
                value=const.value,
            ),
            const.span,
        )

    def _config_statement(self) -> list[cst.BaseStatement]:
        globals_: list[cst.BaseExpression] = []
        cfg_vars: list[cst.BaseExpression] = []
        modules: list[cst.BaseExpression] = []
        modparams: list[cst.BaseExpression] = []
        loaded: list[str] = []
        for item in self.sema.config.items:
            match item:
                case ast.GlobalParam(name=name, value=value):
                    for one in _param_values(value):
                        globals_.append(_tuple([_str(name), _literal(one)]))
                case ast.CfgVar(group=group, index=index, name=name, value=value):
                    key = f"{group}[{index}]" if index is not None else group
                    for one in _param_values(value):
                        cfg_vars.append(_tuple([_str(key), _str(name), _literal(one)]))
                case ast.LoadModule(path=path):
                    mod = module_name(path.value)
                    if mod not in loaded:
                        loaded.append(mod)
                        modules.append(_str(mod))
                case ast.ModParam(module=mod_pattern, param=param, value=value):
                    matched = modparam_modules(mod_pattern.value, loaded) or []
                    literal: int | str
                    match value:
                        case ast.Number(value=number):
                            literal = number
                        case ast.String(value=text):
                            literal = text
                        case ast.PVar():
                            literal = value.span.text
                    for mod in matched:
                        modparams.append(_tuple([_str(mod), _str(param.value), _literal(literal)]))
        config = _call(
            _name(self._use("Config")),
            globals=_tuple(globals_) if globals_ else cst.Tuple(elements=[]),
            modules=_tuple(modules) if modules else cst.Tuple(elements=[]),
            modparams=_tuple(modparams) if modparams else cst.Tuple(elements=[]),
            cfg_vars=_tuple(cfg_vars) if cfg_vars else cst.Tuple(elements=[]),
        )
        return [
            self._simple(
                cst.AnnAssign(
                    target=_name("CONFIG"), annotation=cst.Annotation(_name("Final")), value=config
                )
            )
        ]

    def _router_statement(self) -> list[cst.BaseStatement]:
        request: cst.BaseExpression = _name("None")
        reply: cst.BaseExpression = _name("None")
        onsend: cst.BaseExpression = _name("None")
        tables: dict[str, list[tuple[str, cst.BaseExpression]]] = {
            k: [] for k in ("failure", "branch", "onreply", "event", "routes")
        }
        for route in self.sema.route_blocks():
            fn = self._route_names.get(id(route))
            if fn is None:
                continue
            kind, name = route_key(route)
            ref = _name(fn)
            match kind:
                case ast.RouteKind.REQUEST:
                    request = ref
                case ast.RouteKind.REPLY:
                    reply = ref
                case ast.RouteKind.ONSEND:
                    onsend = ref
                case ast.RouteKind.ROUTE:
                    tables["routes"].append((name or "", ref))
                case ast.RouteKind.FAILURE:
                    tables["failure"].append((name or "", ref))
                case ast.RouteKind.BRANCH:
                    tables["branch"].append((name or "", ref))
                case ast.RouteKind.ONREPLY:
                    tables["onreply"].append((name or "", ref))
                case ast.RouteKind.EVENT:
                    tables["event"].append((name or "", ref))
        router = _call(
            _name(self._use("Router")),
            config=_name("CONFIG"),
            request=request,
            failure=_dict(tables["failure"]),
            branch=_dict(tables["branch"]),
            onreply=_dict(tables["onreply"]),
            reply=reply,
            onsend=onsend,
            event=_dict(tables["event"]),
            routes=_dict(tables["routes"]),
        )
        return [
            self._simple(
                cst.AnnAssign(
                    target=_name("ROUTER"), annotation=cst.Annotation(_name("Final")), value=router
                )
            )
        ]

    def _routes_table(self) -> list[cst.BaseStatement]:
        items: list[tuple[str, cst.BaseExpression]] = []
        for route in self.sema.route_blocks():
            fn = self._route_names.get(id(route))
            if fn is not None:
                items.append((fn, _str(_describe(route))))
        return [
            self._simple(
                cst.AnnAssign(
                    target=_name("__kcc_routes__"),
                    # typed: a cfg without route blocks gives an empty dict
                    annotation=cst.Annotation(
                        cst.Subscript(
                            value=_name("Final"),
                            slice=[
                                cst.SubscriptElement(
                                    cst.Index(
                                        cst.Subscript(
                                            value=_name("dict"),
                                            slice=[
                                                cst.SubscriptElement(cst.Index(_name("str"))),
                                                cst.SubscriptElement(cst.Index(_name("str"))),
                                            ],
                                        )
                                    )
                                )
                            ],
                        )
                    ),
                    value=_dict(items),
                )
            )
        ]

    def _main_block(self) -> list[cst.BaseStatement]:
        """``if __name__ == "__main__": raise SystemExit(serve.main(ROUTER))``: the
        module runs as the proxy (``kcc_runtime.serve``)."""
        main = _call(
            cst.Attribute(value=_name(self._use("serve")), attr=_name("main")), _name("ROUTER")
        )
        raise_ = cst.Raise(exc=_call(_name("SystemExit"), main))
        test = cst.Comparison(
            left=_name("__name__"),
            comparisons=[cst.ComparisonTarget(operator=cst.Equal(), comparator=_str("__main__"))],
        )
        return [cst.If(test=test, body=cst.IndentedBlock(body=[self._simple(raise_)]))]

    # -- markers and statements ------------------------------------------------------

    def _marker(self, span: Span | None) -> cst.TrailingWhitespace:
        if span is None:
            return cst.TrailingWhitespace()
        site = span.use_site()
        return _marker_at(site.file.path, site.line)

    def _simple(
        self, stmt: cst.BaseSmallStatement, span: Span | None = None
    ) -> cst.SimpleStatementLine:
        return cst.SimpleStatementLine(body=[stmt], trailing_whitespace=self._marker(span))

    def _block(self, stmts: Sequence[cst.BaseStatement], span: Span) -> cst.IndentedBlock:
        body = list(stmts) or [self._simple(cst.Pass(), span)]
        block = cst.IndentedBlock(body=body, header=self._marker(span))
        self._block_spans[id(block)] = span
        return block

    @property
    def scope(self) -> _Scope:
        assert self._scope is not None
        return self._scope

    def emit_route(self, route: ast.Route) -> cst.FunctionDef:
        fn = self._route_names[id(route)]
        self._scope = _Scope(self.names.child())
        self._trace_route = trace_route_name(route)
        body = self.body(route.body.stmts, tail=True)
        ctx_type = self._context_type(self._route_kinds(route))
        self._scope = None
        return cst.FunctionDef(
            name=_name(fn),
            params=cst.Parameters(
                params=[cst.Param(name=_name("ctx"), annotation=cst.Annotation(ctx_type))]
            ),
            returns=cst.Annotation(_name("int")),
            body=self._block(body, route.span),
            leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        )

    def _route_kinds(self, route: ast.Route) -> Route:
        """The kinds whose context ``route`` gets: ``sema.reach``, except that an
        ``event_route[tm:branch-failure:X]`` (checked by Kamailio as an event route)
        runs as ``BRANCH_FAILURE`` only, and the blocks it calls get that kind too."""
        kinds = self.sema.reach.get(id(route), Route(0))
        if id(route) in self._branch_failure_roots:
            return Route.BRANCH_FAILURE
        if id(route) in self._branch_failure_callees:
            kinds |= Route.BRANCH_FAILURE
        return kinds

    @cached_property
    def _branch_failure_roots(self) -> frozenset[int]:
        """The ``event_route[tm:branch-failure:X]`` blocks (computed once: asked for
        every route block, it was quadratic in their number)."""
        return frozenset(
            id(block)
            for block in self.sema.route_blocks()
            if block.kind is ast.RouteKind.EVENT
            and (block.name or "").startswith(BRANCH_FAILURE_PREFIX)
        )

    @cached_property
    def _branch_failure_callees(self) -> frozenset[int]:
        """The blocks the branch-failure routes call, directly or not (once)."""
        seen: set[int] = set()
        roots = self._branch_failure_roots
        work = [b for b in self.sema.route_blocks() if id(b) in roots]
        while work:
            block = work.pop()
            for callee in self.sema.callees.get(id(block), []):
                if id(callee) not in seen:
                    seen.add(id(callee))
                    work.append(callee)
        return frozenset(seen)

    def _context_type(self, kinds: Route) -> cst.BaseExpression:
        names = [name for flag, name in _CONTEXTS if kinds & flag]
        if not names:
            names = ["Context"]
        result: cst.BaseExpression = _name(self._use(names[0]))
        for name in names[1:]:
            result = cst.BinaryOperation(
                left=result, operator=cst.BitOr(), right=_name(self._use(name))
            )
        return result

    def body(self, stmts: Sequence[ast.Stmt], *, tail: bool) -> list[cst.BaseStatement]:
        """The statements of a block; with ``tail`` the block's end returns its value."""
        out: list[cst.BaseStatement] = []
        flat = [s for s in stmts if not isinstance(s, ast.EmptyStmt)]
        for index, stmt in enumerate(flat):
            last = index == len(flat) - 1
            if tail and last:
                out.extend(self.tail_stmt(stmt))
            else:
                out.extend(self.stmt(stmt))
            if _terminates(out):
                return out
        if tail:
            out.append(self._simple(cst.Return(_int(1)), stmts[-1].span if stmts else None))
        return out

    def tail_stmt(self, stmt: ast.Stmt) -> list[cst.BaseStatement]:
        """A block's last statement: its value is the block's value."""
        match stmt:
            case ast.ExprStmt(call=call):
                self.scope.pre = []
                if can_fail(call):
                    return self._try(
                        [self._simple(cst.Return(self.action(call)), stmt.span)],
                        [self._simple(cst.Return(self._action_fail()), stmt.span)],
                        stmt.span,
                    )
                value = self.action(call)
                return [*self._take_pre(), self._simple(cst.Return(value), stmt.span)]
            case ast.Block(stmts=stmts):
                return self.body(stmts, tail=True)
            case ast.IfStmt():
                return [*self._stmt_trace(stmt), *self.emit_if_stmt(stmt, tail=True)]
        return self.stmt(stmt)

    def stmt(self, stmt: ast.Stmt) -> list[cst.BaseStatement]:
        method: Callable[[Any], list[cst.BaseStatement]] = getattr(
            self, "emit_" + _snake(type(stmt).__name__)
        )
        self.scope.pre = []
        out = method(stmt)
        return [*self._stmt_trace(stmt), *out]

    # -- debugger's cfgtrace (only when the cfg turns it on) ----------------------------

    def _trace_call(self, span: Span, line: int, action: int, name: str) -> cst.BaseExpression:
        """``debugger.cfgtrace(ctx, SITE_n, line, action, "name")``: logs the action and
        gives ``ctx`` back (so it can stand where a call's ``ctx`` argument is)."""
        self.modules.add("debugger")
        site = span.use_site()
        path, route = site.file.path, self._trace_route or ""
        const = self.constant(
            ("cfgtrace-site", path, route),
            "SITE",
            lambda: _call(_attr("debugger", "Site"), _str(path), _str(route)),
            span,
        )
        return _call(
            _attr("debugger", "cfgtrace"),
            _name("ctx"),
            _name(const),
            _int(line),
            _int(action),
            _str(name),
        )

    def _stmt_trace(self, stmt: ast.Stmt) -> list[cst.BaseStatement]:
        """The trace line of a statement that is one Kamailio action (a call traces
        itself, where it is evaluated: :meth:`_traced_ctx`)."""
        if not self._cfgtrace:
            return []
        found = statement_action(stmt)
        if found is None:
            return []
        line, action, name = found
        return [self._simple(cst.Expr(self._trace_call(stmt.span, line, action, name)), stmt.span)]

    def _traced_ctx(self, call: ast.Call) -> cst.BaseExpression:
        """The ``ctx`` a call passes: traced first when cfgtrace is on."""
        if not self._cfgtrace:
            return _name("ctx")
        info = self.sema.resolved.get(id(call))
        module = info.module if info is not None else "core"
        action, name = call_action(call, module)
        return self._trace_call(call.span, _end_line(call.span), action, name)

    def _take_pre(self) -> list[cst.BaseStatement]:
        pre, self.scope.pre = self.scope.pre, []
        return pre

    def _try(
        self,
        body: list[cst.BaseStatement],
        handler: list[cst.BaseStatement],
        span: Span,
    ) -> list[cst.BaseStatement]:
        pre = self._take_pre()
        return [
            *pre,
            cst.Try(
                body=self._block(body, span),
                handlers=[
                    cst.ExceptHandler(
                        body=self._block(handler, span), type=_attr(self._use("v"), "EvalError")
                    )
                ],
            ),
        ]

    def _action_fail(self) -> cst.BaseExpression:
        return _call(_attr("ctx", "action"), _int(-1))

    def emit_block(self, stmt: ast.Block) -> list[cst.BaseStatement]:
        return self.body(stmt.stmts, tail=False)

    def emit_empty_stmt(self, stmt: ast.EmptyStmt) -> list[cst.BaseStatement]:
        return []

    def emit_expr_stmt(self, stmt: ast.ExprStmt) -> list[cst.BaseStatement]:
        value = self.action(stmt.call)
        line = self._simple(cst.Expr(value), stmt.span)
        if can_fail(stmt.call):
            return self._try(
                [line], [self._simple(cst.Expr(self._action_fail()), stmt.span)], stmt.span
            )
        return [*self._take_pre(), line]

    def emit_assign_stmt(self, stmt: ast.AssignStmt) -> list[cst.BaseStatement]:
        line = self._simple(cst.Expr(self.assign(stmt.target, stmt.value)), stmt.span)
        if can_fail(stmt.value):
            return self._try([line], [self._simple(cst.Pass(), stmt.span)], stmt.span)
        return [*self._take_pre(), line]

    def _condition(
        self, expr: ast.Expr, span: Span
    ) -> tuple[list[cst.BaseStatement], cst.BaseExpression]:
        """Statements to run first and the test itself (a temporary when it can fail)."""
        test = self.cond(expr)
        if not can_fail(expr):
            return self._take_pre(), test
        temp = self.scope.names.temp()
        tried = self._try(
            [self._simple(cst.Assign([cst.AssignTarget(_name(temp))], test), span)],
            [self._simple(cst.Assign([cst.AssignTarget(_name(temp))], _name("False")), span)],
            span,
        )
        return tried, _name(temp)

    def emit_if_stmt(self, stmt: ast.IfStmt, *, tail: bool = False) -> list[cst.BaseStatement]:
        pre, test = self._condition(stmt.cond, stmt.span)
        then = self._branch(stmt.then, tail=tail)
        orelse: cst.If | cst.Else | None = None
        if stmt.else_ is not None:
            else_body = self._branch(stmt.else_, tail=tail)
            nested = else_body[0] if len(else_body) == 1 else None
            if isinstance(nested, cst.If) and isinstance(stmt.else_, ast.IfStmt):
                orelse = nested
            else:
                orelse = cst.Else(body=self._block(else_body, stmt.else_.span))
        node = cst.If(test=test, body=self._block(then, stmt.span), orelse=orelse)
        out = [*pre, node]
        if tail and not _terminates(out):
            out.append(self._simple(cst.Return(_int(1)), stmt.span))
        return out

    def _branch(self, stmt: ast.Stmt, *, tail: bool) -> list[cst.BaseStatement]:
        if isinstance(stmt, ast.Block):
            return self.body(stmt.stmts, tail=tail)
        if isinstance(stmt, ast.EmptyStmt):
            return self.body([], tail=tail) if tail else []
        return self.body([stmt], tail=tail)

    def emit_while_stmt(self, stmt: ast.WhileStmt) -> list[cst.BaseStatement]:
        guard = self.scope.names.temp()
        init = self._simple(
            cst.Assign([cst.AssignTarget(_name(guard))], _call(_attr("ctx", "loop_guard"))),
            stmt.span,
        )
        next_ = _call(_attr(guard, "next"))
        if can_fail(stmt.cond):
            pre, test = self._condition(stmt.cond, stmt.span)
            self.scope.breakable += 1
            body = self._branch(stmt.body, tail=False)
            self.scope.breakable -= 1
            stop = cst.If(
                test=_not(_bool_op(cst.And(), test, next_)),
                body=self._block([self._simple(cst.Break(), stmt.span)], stmt.span),
            )
            loop = cst.While(test=_name("True"), body=self._block([*pre, stop, *body], stmt.span))
            return [init, loop]
        test = self.cond(stmt.cond)
        pre = self._take_pre()
        if pre:  # a block expression in the condition: re-defined before each test
            raise _Refusal(stmt.cond.span, "a block expression in a `while` condition")
        self.scope.breakable += 1
        body = self._branch(stmt.body, tail=False)
        self.scope.breakable -= 1
        loop = cst.While(test=_bool_op(cst.And(), test, next_), body=self._block(body, stmt.span))
        return [init, loop]

    def emit_return_stmt(self, stmt: ast.ReturnStmt) -> list[cst.BaseStatement]:
        if stmt.value is None:
            return [self._simple(cst.Return(_int(1)), stmt.span)]
        if isinstance(stmt.value, ast.Number) and rv.wrap32(stmt.value.value) != 0:
            return [self._simple(cst.Return(self.value(stmt.value)), stmt.span)]
        value = self.int_value(stmt.value)
        if can_fail(stmt.value):
            temp = self.scope.names.temp()
            tried = self._try(
                [self._simple(cst.Assign([cst.AssignTarget(_name(temp))], value), stmt.span)],
                [self._simple(cst.Assign([cst.AssignTarget(_name(temp))], _int(-1)), stmt.span)],
                stmt.span,
            )
            ret = _call(_attr("ctx", "returns"), _name(temp))
            return [*tried, self._simple(cst.Return(ret), stmt.span)]
        ret = _call(_attr("ctx", "returns"), value)
        return [*self._take_pre(), self._simple(cst.Return(ret), stmt.span)]

    def _side_effects(self, value: ast.Expr | None, span: Span) -> list[cst.BaseStatement]:
        """``exit(e)``/``drop(e)``: ``e`` is evaluated first when it can do something."""
        if value is None or not any(
            isinstance(n, ast.Call | ast.AssignExpr | ast.BlockExpr) for n in _iter_exprs(value)
        ):
            return []
        line = self._simple(cst.Expr(self.value(value)), span)
        if can_fail(value):
            return self._try([line], [self._simple(cst.Pass(), span)], span)
        return [*self._take_pre(), line]

    def emit_exit_stmt(self, stmt: ast.ExitStmt) -> list[cst.BaseStatement]:
        first = self._side_effects(stmt.value, stmt.span)
        return [*first, self._simple(cst.Raise(_name(self._use("ScriptExit"))), stmt.span)]

    def emit_drop_stmt(self, stmt: ast.DropStmt) -> list[cst.BaseStatement]:
        first = self._side_effects(stmt.value, stmt.span)
        return [*first, self._simple(cst.Raise(_name(self._use("ScriptDrop"))), stmt.span)]

    def emit_break_stmt(self, stmt: ast.BreakStmt) -> list[cst.BaseStatement]:
        if self.scope.breakable:
            return [self._simple(cst.Break(), stmt.span)]
        return [self._simple(cst.Return(_int(1)), stmt.span)]

    # -- switch ------------------------------------------------------------------------

    def emit_switch_stmt(self, stmt: ast.SwitchStmt) -> list[cst.BaseStatement]:
        stringy = any(
            c.value is not None and not isinstance(c.value, ast.Number) for c in stmt.cases
        )
        subject = self.value(stmt.subject)
        convert = "to_str" if stringy else "to_int"
        temp = self.scope.names.temp()
        assign = self._simple(
            cst.Assign(
                [cst.AssignTarget(_name(temp))],
                _call(_attr(self._use("v"), convert), subject),
            ),
            stmt.span,
        )
        # A subject without a value (division by zero...) matches no case and the
        # default runs (measured on Kamailio 5.6): the temporary is None then.
        may_fail = can_fail(stmt.subject)
        out: list[cst.BaseStatement]
        if may_fail:
            unmatched = self._simple(
                cst.Assign([cst.AssignTarget(_name(temp))], _name("None")), stmt.span
            )
            out = self._try([assign], [unmatched], stmt.span)
        else:
            out = [*self._take_pre(), assign]
        groups = _case_groups(stmt.cases)
        if _if_chain_ok(stmt.cases, groups):
            out.extend(self._switch_chain(temp, groups, stringy, may_fail, stmt.span))
        else:
            out.extend(self._switch_loop(temp, stmt.cases, stringy, may_fail, stmt.span))
        return out

    def _case_test(
        self, temp: str, case: ast.CaseClause, stringy: bool, may_fail: bool
    ) -> cst.BaseExpression:
        assert case.value is not None
        if case.is_regex:
            pattern = case.value.value if isinstance(case.value, ast.String) else ""
            test = _call(
                _attr(self._use("v"), "match_compiled"), _name(temp), self.regex(pattern, case.span)
            )
            if may_fail:
                not_none = _compare(_name(temp), cst.IsNot(), _name("None"))
                return _bool_op(cst.And(), not_none, test)
            return test
        value: int | str
        if isinstance(case.value, ast.Number):
            value = rv.wrap32(case.value.value)
            if stringy:
                value = str(value)
        elif isinstance(case.value, ast.String):
            value = case.value.value
        else:
            raise _Refusal(case.value.span, "this `case` value")
        return _compare(_name(temp), cst.Equal(), _literal(value))

    def _switch_chain(
        self,
        temp: str,
        groups: list[list[ast.CaseClause]],
        stringy: bool,
        may_fail: bool,
        span: Span,
    ) -> list[cst.BaseStatement]:
        branches: list[tuple[cst.BaseExpression | None, list[cst.BaseStatement], Span]] = []
        for group in groups:
            body_stmts = list(group[-1].body)
            ending: list[cst.BaseStatement] = []
            if body_stmts and isinstance(body_stmts[-1], ast.BreakStmt):
                ending = self._stmt_trace(body_stmts[-1])  # the break still runs
                body_stmts = body_stmts[:-1]
            self.scope.breakable += 1
            body = self.body(body_stmts, tail=False)
            self.scope.breakable -= 1
            if ending and not _terminates(body):
                body.extend(ending)
            if any(c.value is None for c in group):
                if body:
                    branches.append((None, body, group[0].span))
                continue
            # `case 1: case 2:` reads `t in (1, 2)`; a regex case keeps its own test
            tests: list[cst.BaseExpression] = []
            values: list[cst.BaseExpression] = []
            for case in group:
                one = self._case_test(temp, case, stringy, may_fail)
                if isinstance(one, cst.Comparison) and not case.is_regex:
                    values.append(one.comparisons[0].comparator)
                else:
                    tests.append(one)
            if len(values) == 1:
                tests.insert(0, _compare(_name(temp), cst.Equal(), values[0]))
            elif values:
                members = cst.Tuple([cst.Element(v) for v in values])
                tests.insert(0, _compare(_name(temp), cst.In(), members))
            cond = tests[0]
            for one in tests[1:]:
                cond = _bool_op(cst.Or(), cond, one)
            branches.append((cond, body, group[0].span))
        node: cst.If | cst.Else | None = None
        for test, body, case_span in reversed(branches):
            if test is None:
                if node is None:
                    node = cst.Else(body=self._block(body, case_span))
                continue
            node = cst.If(test=test, body=self._block(body, case_span), orelse=node)
        if node is None:
            return []
        if isinstance(node, cst.Else):  # only a default
            return _suite(node.body)
        return [node]

    def _switch_loop(
        self,
        temp: str,
        cases: Sequence[ast.CaseClause],
        stringy: bool,
        may_fail: bool,
        span: Span,
    ) -> list[cst.BaseStatement]:
        index = self.scope.names.temp()
        default = next((i for i, c in enumerate(cases) if c.value is None), len(cases))
        node: cst.If | cst.Else | None = cst.Else(
            body=self._block(
                [self._simple(cst.Assign([cst.AssignTarget(_name(index))], _int(default)), span)],
                span,
            )
        )
        for position in range(len(cases) - 1, -1, -1):
            case = cases[position]
            if case.value is None:
                continue
            node = cst.If(
                test=self._case_test(temp, case, stringy, may_fail),
                body=self._block(
                    [
                        self._simple(
                            cst.Assign([cst.AssignTarget(_name(index))], _int(position)), case.span
                        )
                    ],
                    case.span,
                ),
                orelse=node,
            )
        selection: list[cst.BaseStatement] = (
            [node] if isinstance(node, cst.If) else _suite(node.body) if node else []
        )
        loop_body: list[cst.BaseStatement] = []
        self.scope.breakable += 1
        for position, case in enumerate(cases):
            body = self.body(case.body, tail=False)
            if body:
                loop_body.append(
                    cst.If(
                        test=_compare(_name(index), cst.LessThanEqual(), _int(position)),
                        body=self._block(body, case.span),
                    )
                )
        self.scope.breakable -= 1
        loop_body.append(self._simple(cst.Break(), span))
        return [*selection, cst.While(test=_name("True"), body=self._block(loop_body, span))]

    # -- expressions: value mode ----------------------------------------------------------

    def value(self, expr: ast.Expr) -> cst.BaseExpression:
        """``expr`` as a Kamailio value (``int | str | None``)."""
        method: Callable[[Any], cst.BaseExpression] = getattr(
            self, "value_" + _snake(type(expr).__name__), self._no_value
        )
        return method(expr)

    def int_value(self, expr: ast.Expr) -> cst.BaseExpression:
        if isinstance(expr, ast.Number):
            return self.number(expr)
        if (
            self.is_binary(expr)
            or isinstance(expr, ast.StrLen | ast.UnaryOp)
            or (isinstance(expr, ast.Cast) and expr.to == "int")
            or (isinstance(expr, ast.BinOp) and expr.op in _BINARY and expr.op != "+")
        ):
            return self.value(expr)
        return _call(_attr(self._use("v"), "to_int"), self.value(expr))

    def _no_value(self, expr: ast.Expr) -> cst.BaseExpression:
        raise _Refusal(expr.span, f"`{expr.span.text}` as a value")

    def number(self, expr: ast.Number) -> cst.BaseExpression:
        return self.defined_const(expr.span, rv.wrap32(expr.value))

    def defined_const(self, span: Span, value: int | str) -> cst.BaseExpression:
        """The literal, or the ``Final`` constant of the define it was written as (a
        define whose body is this one token; one constant per define and value)."""
        define = _define_name(span)
        body = self.sema.defines.get(define) if define is not None else None
        if define is None or body is None or len(body.tokens) != 1:
            return _literal(value)
        key = ("define", define, type(value).__name__, value)
        found = self._const_keys.get(key)
        if found is None:
            if ("define", define) in self._const_keys:
                found = self.names.claim(self._const_keys[("define", define)])
            else:
                found = self.names.constant(define)
                self._const_keys[("define", define)] = found
            self._const_keys[key] = found
            self.define_consts.append(_Constant(found, _literal(value), span))
        return _name(found)

    def value_number(self, expr: ast.Number) -> cst.BaseExpression:
        return self.number(expr)

    def value_string(self, expr: ast.String) -> cst.BaseExpression:
        return self.defined_const(expr.span, expr.value)

    def value_name(self, expr: ast.Name) -> cst.BaseExpression:
        if expr.name in KEYWORDS or expr.name == "myself":
            raise _Refusal(expr.span, f"the condition keyword `{expr.name}` outside a comparison")
        return _str(expr.name)

    def value_host(self, expr: ast.Host) -> cst.BaseExpression:
        return _str(expr.name)

    def value_i_p_addr(self, expr: ast.IPAddr) -> cst.BaseExpression:
        return _str(expr.address)

    def value_subnet(self, expr: ast.Subnet) -> cst.BaseExpression:
        return _str(_host_text(expr))

    def value_socket_addr(self, expr: ast.SocketAddr) -> cst.BaseExpression:
        return _str(_host_text(expr))

    def value_wildcard(self, expr: ast.Wildcard) -> cst.BaseExpression:
        return _str("*")

    def value_p_var(self, expr: ast.PVar) -> cst.BaseExpression:
        if expr.name == "null" and not expr.transformations:
            return _name("None")
        if expr.name in ("rc", "?", "retcode") and not expr.transformations:
            return _attr("ctx", "rc")
        return _call(_attr(self.pv_const(expr), "get"), _name("ctx"))

    def value_select(self, expr: ast.Select) -> cst.BaseExpression:
        path = ".".join(
            p.name + (f"[{p.index}]" if p.index is not None else "") for p in expr.parts
        )
        name = self.constant(
            ("select", path),
            "SEL",
            lambda: _call(_attr(self._use("pv"), "select"), _str(path)),
            expr.span,
        )
        return _call(_attr(name, "get"), _name("ctx"))

    def value_bin_op(self, expr: ast.BinOp) -> cst.BaseExpression:
        if expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.other is not None:
                return self.int_value(plan.other)
            if plan.kind == "absorb":
                return _int(plan.value)
            test = self.truth(expr)
            return _call(_name("int"), test)
        special = self.keyword_compare(expr)
        if special is not None:
            return special
        v = self._use("v")
        if expr.op in ("==", "!=") and _is_null(expr.right):
            defined = _call(_attr(v, "defined"), self.value(expr.left))
            return defined if expr.op == "!=" else _call(_attr(v, "log_not"), defined)
        if expr.op == "=~":
            return self.match(self.value(expr.left), expr.right)
        func = _BINARY.get(expr.op)
        if func is None:
            raise _Refusal(expr.op_span, f"the operator `{expr.op}`")
        return _call(_attr(v, func), self.value(expr.left), self.value(expr.right))

    def match(self, subject: cst.BaseExpression, pattern: ast.Expr) -> cst.BaseExpression:
        v = self._use("v")
        if isinstance(pattern, ast.String):
            return _call(
                _attr(v, "match_compiled"), subject, self.regex(pattern.value, pattern.span)
            )
        return _call(_attr(v, "match"), subject, self.value(pattern))

    def regex(self, pattern: str, span: Span) -> cst.BaseExpression:
        return _name(
            self.constant(
                ("re", pattern),
                "RE",
                lambda: _call(_attr(self._use("v"), "compile_posix_ere"), _str(pattern)),
                span,
            )
        )

    def value_unary_op(self, expr: ast.UnaryOp) -> cst.BaseExpression:
        func = {"!": "log_not", "-": "neg", "~": "bit_not"}.get(expr.op)
        if func is None:
            raise _Refusal(expr.span, f"the operator `{expr.op}`")
        return _call(_attr(self._use("v"), func), self.value(expr.operand))

    def value_defined(self, expr: ast.Defined) -> cst.BaseExpression:
        return _call(_attr(self._use("v"), "defined"), self.value(expr.operand))

    def value_cast(self, expr: ast.Cast) -> cst.BaseExpression:
        func = "cast_int" if expr.to == "int" else "cast_str"
        return _call(_attr(self._use("v"), func), self.value(expr.operand))

    def value_str_len(self, expr: ast.StrLen) -> cst.BaseExpression:
        return _call(_attr(self._use("v"), "strlen"), self.value(expr.operand))

    def value_str_empty(self, expr: ast.StrEmpty) -> cst.BaseExpression:
        return _call(_attr(self._use("v"), "strempty"), self.value(expr.operand))

    def value_sel_val(self, expr: ast.SelVal) -> cst.BaseExpression:
        test = _call(_attr(self._use("v"), "selval_cond"), self.value(expr.cond))
        return cst.IfExp(
            test=test,
            body=self.value(expr.if_true),
            orelse=self.value(expr.if_false),
            lpar=[cst.LeftParen()],
            rpar=[cst.RightParen()],
        )

    def value_call(self, expr: ast.Call) -> cst.BaseExpression:
        if expr.name == "route":
            return _call(_attr(self._use("v"), "rc_value"), self.route_call(expr))
        return _call(_attr("ctx", "value"), self.module_call(expr))

    def value_assign_expr(self, expr: ast.AssignExpr) -> cst.BaseExpression:
        return self.assign(expr.target, expr.value)

    def value_block_expr(self, expr: ast.BlockExpr) -> cst.BaseExpression:
        return _call(_attr(self._use("v"), "rc_value"), self.block_fn(expr))

    def block_fn(self, expr: ast.BlockExpr) -> cst.BaseExpression:
        """A block used as a value: a local ``def _tN() -> int`` called in place."""
        scope = self.scope
        name = scope.names.temp()
        saved_pre, saved_break = scope.pre, scope.breakable
        scope.pre, scope.breakable = [], 0
        body = self.body(expr.body.stmts, tail=True)
        scope.pre, scope.breakable = saved_pre, saved_break
        scope.pre.append(
            cst.FunctionDef(
                name=_name(name),
                params=cst.Parameters(),
                returns=cst.Annotation(_name("int")),
                body=self._block(body, expr.span),
            )
        )
        return _call(_name(name))

    # -- condition and truth modes ------------------------------------------------------

    def is_binary(self, expr: ast.Expr) -> bool:
        """The value is always 0 or 1 (so it can be tested for truth as it is)."""
        if isinstance(expr, ast.BinOp):
            if expr.op in ("&&", "||"):
                plan = logical_plan(expr)
                if plan.other is not None:
                    return self.is_binary(plan.other)
                if plan.kind == "absorb":
                    return plan.value in (0, 1)
                return True
            return expr.op in _COMPARISONS
        if isinstance(expr, ast.UnaryOp):
            return expr.op == "!"
        return isinstance(expr, ast.Defined | ast.StrEmpty | ast.Call | ast.BlockExpr)

    def cond(self, expr: ast.Expr) -> cst.BaseExpression:
        """``expr`` as an ``if``/``while`` test: true when the value as an int is > 0."""
        if isinstance(expr, ast.BinOp) and expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.other is not None:
                return self.cond(plan.other)
            if plan.kind == "absorb":
                return _call(_attr(self._use("v"), "cond"), _int(plan.value))
            return self.truth(expr)
        if isinstance(expr, ast.UnaryOp) and expr.op == "!":
            return self.truth(expr)
        if isinstance(expr, ast.Call):
            if expr.name == "route":
                return _compare(self.route_call(expr), cst.GreaterThan(), _int(0))
            return _call(_attr("ctx", "test"), self.module_call(expr))
        if isinstance(expr, ast.BlockExpr):
            return _compare(self.block_fn(expr), cst.GreaterThan(), _int(0))
        if self.is_binary(expr):
            return self.value(expr)
        return _call(_attr(self._use("v"), "cond"), self.value(expr))

    def truth(self, expr: ast.Expr) -> cst.BaseExpression:
        """``expr`` as an operand of ``&&``/``||``/``!``: true when non-zero."""
        if isinstance(expr, ast.BinOp) and expr.op in ("&&", "||"):
            plan = logical_plan(expr)
            if plan.other is not None:
                return self.truth(plan.other)
            if plan.kind == "absorb":
                return _name("True") if plan.value else _name("False")
            op: cst.BaseBooleanOp = cst.And() if expr.op == "&&" else cst.Or()
            return _bool_op(op, self.truth(expr.left), self.truth(expr.right))
        if isinstance(expr, ast.UnaryOp) and expr.op == "!":
            return _not(self.truth(expr.operand))
        if self.is_binary(expr):
            return self.cond(expr)
        return _call(_attr(self._use("v"), "truth"), self.value(expr))

    # -- condition keywords ---------------------------------------------------------------

    def keyword_compare(self, expr: ast.BinOp) -> cst.BaseExpression | None:
        left, right, op = expr.left, expr.right, expr.op
        if isinstance(left, ast.Name) and left.name == "myself" and isinstance(right, ast.Name):
            left, right = right, left
        if not isinstance(left, ast.Name) or left.name not in KEYWORDS:
            if isinstance(right, ast.Name) and right.name == "myself":
                raise _Refusal(expr.span, "`myself` compared with an expression")
            return None
        word = left.name
        kw = self._use("kw")
        v = self._use("v")
        subject = _call(_attr(kw, KEYWORDS[word]), _name("ctx"))
        negate = op == "!="

        def result(test: cst.BaseExpression) -> cst.BaseExpression:
            return _call(_attr(v, "log_not"), test) if negate else test

        if op == "=~" and word in ("method", "uri", "from_uri", "to_uri", "status"):
            return self.match(subject, right)
        if word in _INT_KEYWORDS:
            func = _KW_COMPARE.get(op)
            if func is not None:
                return _call(_attr(v, func), subject, self.value(right))
        if op not in ("==", "!="):
            raise _Refusal(expr.span, f"`{word} {op} ...`")
        if word == "method":
            method = _str(right.value) if isinstance(right, ast.String) else self.str_value(right)
            return result(_call(_attr(kw, "method_eq"), _name("ctx"), method))
        if isinstance(right, ast.Name) and right.name == "myself":
            if word in _URI_KEYWORDS:
                return result(_call(_attr(kw, "uri_is_myself"), _name("ctx"), subject))
            if word in _IP_KEYWORDS:
                return result(_call(_attr(kw, "ip_is_myself"), _name("ctx"), subject))
            raise _Refusal(expr.span, f"`{word} {op} myself`")
        if word in _URI_KEYWORDS or word == "status":
            return result(_call(_attr(kw, "str_ieq"), subject, self.str_value(right)))
        if word in _IP_KEYWORDS:
            if isinstance(right, ast.Subnet | ast.IPAddr):
                return result(_call(_attr(kw, "ip_in"), subject, self.network(right)))
            return result(_call(_attr(kw, "ip_eq_str"), subject, self.str_value(right)))
        if word in ("proto", "snd_proto") and isinstance(right, ast.Name) and right.name in _PROTOS:
            return result(
                _call(_attr(v, "int_eq"), subject, _attr(kw, f"PROTO_{right.name.upper()}"))
            )
        if word in ("af", "snd_af") and isinstance(right, ast.Name) and right.name in _AFS:
            const = "AF_INET6" if right.name == "inet6" else "AF_INET"
            return result(_call(_attr(v, "int_eq"), subject, _attr(kw, const)))
        if word in ("proto", "snd_proto", "af", "snd_af"):
            return result(_call(_attr(v, "int_eq"), subject, self.value(right)))
        raise _Refusal(expr.span, f"`{word} {op} ...`")

    def str_value(self, expr: ast.Expr) -> cst.BaseExpression:
        if isinstance(expr, ast.String | ast.Host | ast.Name | ast.IPAddr):
            return self.value(expr)
        return _call(_attr(self._use("v"), "to_str"), self.value(expr))

    def network(self, node: ast.Subnet | ast.IPAddr) -> cst.BaseExpression:
        if isinstance(node, ast.Subnet):
            address, prefix = node.address.address, node.prefix
        else:
            address, prefix = node.address, 32 if node.version == 4 else 128
        return _name(
            self.constant(
                ("net", address, prefix),
                "NET",
                lambda: _call(_attr(self._use("kw"), "network"), _str(address), _int(prefix)),
                node.span,
            )
        )

    # -- pseudo-variables, formats, constants -------------------------------------------

    def constant(
        self, key: Hashable, prefix: str, build: Callable[[], cst.BaseExpression], span: Span
    ) -> str:
        """A module constant built once: ``FMT_1``, ``RE_2`` ... (or a named one)."""
        found = self._const_keys.get(key)
        if found is not None:
            return found
        if prefix.startswith("PV_"):
            name = self.names.claim(prefix)
        else:
            number = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = number
            name = self.names.claim(f"{prefix}_{number}")
        self._const_keys[key] = name
        self.constants.append(_Constant(name, build(), span))
        return name

    def pv_const(self, pvar: ast.PVar) -> str:
        key = ("pv", _pv_key(pvar))
        return self.constant(key, _pv_name(pvar), lambda: self.accessor(pvar), pvar.span)

    def accessor(self, pvar: ast.PVar) -> cst.BaseExpression:
        """``pv.accessor(name, inner, index, transformations)`` for one pseudo-variable."""
        pv = self._use("pv")
        args: list[cst.BaseExpression] = [_str(pvar.name)]
        kwargs: dict[str, cst.BaseExpression] = {}
        if pvar.inner is not None:
            args.append(self.parts(pvar.inner))
        if pvar.index is not None:
            index = pvar.index
            if isinstance(index, ast.PVar):
                kwargs["index"] = self.accessor(index)
            elif isinstance(index, int):
                kwargs["index"] = _int(index)
            else:
                kwargs["index"] = _str(index)
        if pvar.transformations:
            kwargs["transformations"] = _tuple(
                [
                    _call(
                        _attr(pv, "transformation"),
                        _str(t.name),
                        *(self.parts(param) for param in t.params),
                    )
                    for t in pvar.transformations
                ]
            )
        return _call(_attr(pv, "accessor"), *args, **kwargs)

    def parts(self, parts: Sequence[ast.FormatPart]) -> cst.BaseExpression:
        """Format parts as a plain string, or ``Fmt(...)`` when a PV is among them."""
        if all(isinstance(p, str) for p in parts):
            return _str("".join(p for p in parts if isinstance(p, str)))
        return self.fmt_expr(parts)

    def fmt_expr(self, parts: Sequence[ast.FormatPart]) -> cst.BaseExpression:
        items = [_str(p) if isinstance(p, str) else self.accessor(p) for p in parts]
        return _call(_name(self._use("Fmt")), *items)

    def fmt(self, string: ast.String) -> cst.BaseExpression:
        """``FMT_n.render(ctx)`` for a string argument with pseudo-variables in it."""
        key = ("fmt", tuple(p if isinstance(p, str) else _pv_key(p) for p in string.parts))
        name = self.constant(key, "FMT", lambda: self.fmt_expr(string.parts), string.span)
        return _call(_attr(name, "render"), _name("ctx"))

    # -- assignments and calls ----------------------------------------------------------

    def assign(self, target: ast.PVar, value: ast.Expr) -> cst.BaseExpression:
        setter = _attr(self.pv_const(target), "set")  # first: constants in source order
        raw = raw_action(value)
        if isinstance(raw, ast.Call):
            stored = self.action(raw)
        elif isinstance(raw, ast.BlockExpr):
            stored = self.block_fn(raw)
        else:
            stored = self.value(value)
        return _call(setter, _name("ctx"), stored)

    def action(self, call: ast.Call) -> cst.BaseExpression:
        """A call used as a statement: its return code, recorded in ``$rc``."""
        if call.name == "route":
            return self.route_call(call)
        return _call(_attr("ctx", "action"), self.module_call(call))

    def route_call(self, call: ast.Call) -> cst.BaseExpression:
        """``ctx.route(route_X)`` or, for a name known per message, ``ctx.route_by_name``."""
        target = call.args[0] if call.args else None
        static: str | None = None
        if isinstance(target, ast.Name | ast.Host):
            static = target.name
        elif isinstance(target, ast.String) and not any(
            isinstance(p, ast.PVar) for p in target.parts
        ):
            static = target.value
        elif isinstance(target, ast.Number):
            static = target.text
        if static is not None:
            block = self.sema.routes.get((ast.RouteKind.ROUTE, static))
            if block is None or id(block) not in self._route_names:
                raise _Refusal(call.span, f"`route({static})` of a block that does not exist")
            return _call(
                cst.Attribute(value=self._traced_ctx(call), attr=_name("route")),
                _name(self._route_names[id(block)]),
            )
        if target is None:
            raise _Refusal(call.span, "`route()` without a name")
        ctx = self._traced_ctx(call)
        name = _call(_attr(self._use("v"), "to_str"), self.value(target))
        return _call(cst.Attribute(value=ctx, attr=_name("route_by_name")), name)

    def module_call(self, call: ast.Call) -> cst.BaseExpression:
        info = self.sema.resolved.get(id(call))
        if info is None or info.cmd.impl is None:
            raise _Refusal(call.name_span, f"the call of `{call.name}`")
        impl = info.cmd.impl
        self.modules.add(info.module)
        classes = param_classes(impl)
        args: list[cst.BaseExpression] = [self._traced_ctx(call)]
        for position, arg in enumerate(call.args):
            spec = info.cmd.args[position] if position < len(info.cmd.args) else None
            kind = spec.kind if spec is not None else ArgKind.ANY
            klass = classes[position] if position < len(classes) else "value"
            args.append(self.argument(arg, kind, klass, cmd=info.cmd, position=position))
        return _call(_attr(info.module, impl.__name__), *args)

    def argument(
        self, arg: ast.Expr, kind: ArgKind, klass: str, *, cmd: Cmd, position: int
    ) -> cst.BaseExpression:
        """One argument converted at compile time (the contract's table)."""
        v = self._use("v")
        if isinstance(arg, ast.Name) and arg.name in ("uri:host", "uri:port"):
            # forward(uri:host, uri:port): the R-URI's parts, read when the call runs
            self.modules.add("core")
            return _call(_attr("core", arg.name.replace(":", "_")), _name("ctx"))
        if kind is ArgKind.ROUTE or klass == "route":
            return self.route_ref(arg, cmd, position)
        if kind in (ArgKind.PV, ArgKind.PV_WRITE) or klass == "pv":
            if isinstance(arg, ast.PVar):
                return _name(self.pv_const(arg))
            if (
                isinstance(arg, ast.String)
                and len(arg.parts) == 1
                and isinstance(arg.parts[0], ast.PVar)
            ):
                return _name(self.pv_const(arg.parts[0]))
            raise _Refusal(arg.span, "a pseudo-variable argument that is not a pseudo-variable")
        if kind is ArgKind.FLAG:
            return self.flag(arg)
        if kind is ArgKind.REGEX or klass == "regex":
            if isinstance(arg, ast.String) and not any(isinstance(p, ast.PVar) for p in arg.parts):
                return self.regex(arg.value, arg.span)
            return _call(_attr(v, "compile_posix_ere"), self.str_arg(arg))
        if klass == "int":
            return self.int_arg(arg)
        if klass == "str":
            return self.str_arg(arg, formats=kind not in (ArgKind.STR_CONST, ArgKind.LOCK))
        # a Value parameter: as written
        if (
            isinstance(arg, ast.String)
            and any(isinstance(p, ast.PVar) for p in arg.parts)
            and kind not in (ArgKind.STR_CONST, ArgKind.LOCK)
        ):
            return self.fmt(arg)
        if isinstance(arg, ast.Name | ast.Host | ast.IPAddr | ast.SocketAddr | ast.Subnet):
            return _str(_host_text(arg))
        return self.value(arg)

    def int_arg(self, arg: ast.Expr) -> cst.BaseExpression:
        v = self._use("v")
        if isinstance(arg, ast.Number):
            return self.number(arg)
        if isinstance(arg, ast.String):
            if any(isinstance(p, ast.PVar) for p in arg.parts):
                if len(arg.parts) == 1 and isinstance(arg.parts[0], ast.PVar):
                    return _call(_attr(v, "to_int"), self.value(arg.parts[0]))
                return _call(_attr(v, "to_int"), self.fmt(arg))
            return self.defined_const(arg.span, rv.str_to_int(arg.value))
        if isinstance(arg, ast.Name | ast.Host):
            return _int(rv.str_to_int(arg.name))
        return self.int_value(arg)

    def str_arg(self, arg: ast.Expr, *, formats: bool = True) -> cst.BaseExpression:
        if isinstance(arg, ast.String):
            if formats and any(isinstance(p, ast.PVar) for p in arg.parts):
                return self.fmt(arg)
            return self.defined_const(arg.span, arg.value)
        if isinstance(arg, ast.Number):
            return self.defined_const(arg.span, arg.text)
        if isinstance(
            arg, ast.Name | ast.Host | ast.IPAddr | ast.SocketAddr | ast.Subnet | ast.Wildcard
        ):
            return _str(_host_text(arg))
        return _call(_attr(self._use("v"), "to_str"), self.value(arg))

    def flag(self, arg: ast.Expr) -> cst.BaseExpression:
        known = self._flag_names.get(_span_key(arg.span))
        if known is not None:
            name, number = known
            if name is None:
                return _int(number)
            key = ("flag", name)
            found = self._const_keys.get(key)
            if found is None:
                found = self._const_keys[key] = self.names.constant(name)
                self.define_consts.append(_Constant(found, _int(number), arg.span))
            return _name(found)
        if isinstance(arg, ast.Number):
            return self.number(arg)
        return self.int_arg(arg)

    def route_ref(self, arg: ast.Expr, cmd: Cmd, position: int) -> cst.BaseExpression:
        spec = cmd.args[position] if position < len(cmd.args) else None
        wanted = spec.route if spec is not None and spec.route is not None else Route.REQUEST
        kind = _ROUTE_ARG_KIND.get(wanted, ast.RouteKind.ROUTE)
        name: str | None = None
        if isinstance(arg, ast.String) and not any(isinstance(p, ast.PVar) for p in arg.parts):
            name = arg.value
        elif isinstance(arg, ast.Name | ast.Host):
            name = arg.name
        elif isinstance(arg, ast.Number):
            name = arg.text
        if name is None:
            raise _Refusal(arg.span, "a route name known only per message")
        if wanted is Route.BRANCH_FAILURE:
            # t_on_branch_failure("X") names event_route[tm:branch-failure:X]
            kind, name = ast.RouteKind.EVENT, BRANCH_FAILURE_PREFIX + name
        block = self.sema.routes.get((kind, name))
        if block is None or id(block) not in self._route_names:
            raise _Refusal(arg.span, f"a reference to the missing block `{name}`")
        return _name(self._route_names[id(block)])


# -- helpers over the AST -----------------------------------------------------------------


# -- debugger's cfgtrace: Kamailio's action numbers, names and lines ------------------------
#
# Kamailio's ``dbg_cfg_trace`` prints, for each action it runs, ``action->type`` (the
# ``action_type`` enum of ``src/core/route_struct.h`` after the start-up fixups), the
# name ``debugger_act.c`` gives that type (the exported name for a module function)
# and ``action->cline``: the line of the token the parser had read when it built the
# action. That is the statement's last token for a call, an assignment (its ``;``), a
# ``return``/``exit``/``drop``/``break``, a ``while`` and a ``switch`` (their ``}``), and
# an ``if`` with ``else`` (the end of the ``else`` branch, recursively), but the *next*
# token after an ``if`` without ``else`` (the parser reads it to know no ``else``
# follows). Measured on Kamailio 5.6.3 with probe configs (``tests/test_codegen_emit.py``
# names the cases); the numbers below are the enum's.

_DROP_T: Final = 2
_ROUTE_T: Final = 5
_IF_T: Final = 16
_BLOCK_T: Final = 18
_EVAL_T: Final = 19
_SWITCH_JT_T: Final = 20
_SWITCH_COND_T: Final = 21
_MATCH_COND_T: Final = 22
_WHILE_T: Final = 23
_MODULE0_T: Final = 24
_MODULEX_T: Final = 31
_MODULE1_RVE_T: Final = 32
_MODULEX_RVE_T: Final = 38
_ASSIGN_T: Final = 63
#: ``fix_switch``: a jump table only spans case values closer than this
_MAX_JT_SIZE: Final = 100

#: core actions (``cfg.y`` keywords, kcc's ``core`` module) -> (action type, name)
CORE_ACTIONS: Final[Mapping[str, tuple[int, str]]] = {
    "forward": (1, "forward"),
    "log": (3, "log"),
    "error": (4, "error"),
    "exec": (6, "exec"),
    **dict.fromkeys(("rewritehost", "sethost", "seth"), (7, "sethost")),
    **dict.fromkeys(("rewritehostport", "sethostport", "sethp"), (8, "sethostport")),
    **dict.fromkeys(("rewriteuser", "setuser", "setu"), (9, "setuser")),
    **dict.fromkeys(("rewriteuserpass", "setuserpass", "setup"), (10, "setuserpass")),
    **dict.fromkeys(("rewriteport", "setport", "setp"), (11, "setport")),
    **dict.fromkeys(("rewriteuri", "seturi"), (12, "seturi")),
    **dict.fromkeys(
        ("rewritehostporttrans", "sethostporttrans", "sethpt"), (13, "sethostporttrans")
    ),
    "userphone": (15, "setuserphone"),
    "setflag": (39, "setflag"),
    "resetflag": (40, "resetflag"),
    "isflagset": (41, "isflagset"),
    "prefix": (44, "prefix"),
    "strip": (45, "strip"),
    "strip_tail": (46, "striptail"),
    # debugger_act.c has no name for these two: "unknown"
    "remove_branch": (48, "unknown"),
    "clear_branches": (49, "unknown"),
    "revert_uri": (50, "reverturi"),
    "forward_tcp": (51, "forward_tcp"),
    "forward_udp": (52, "forward_udp"),
    "forward_tls": (53, "forward_tls"),
    "forward_sctp": (54, "forward_sctp"),
    **dict.fromkeys(("force_rport", "add_rport"), (55, "force_rport")),
    "add_local_rport": (56, "add_local_rport"),
    "set_advertised_address": (57, "set_adv_addr"),
    "set_advertised_port": (58, "set_adv_port"),
    **dict.fromkeys(("force_tcp_alias", "add_tcp_alias"), (59, "force_tcp_alias")),
    "force_send_socket": (62, "force_send_socket"),
    "udp_mtu_try_proto": (65, "udp_mtu_try_proto"),
    "set_forward_no_connect": (66, "set_fwd_no_connect"),
    "set_reply_no_connect": (67, "set_rpl_no_connect"),
    "set_forward_close": (68, "set_fwd_close"),
    "set_reply_close": (69, "set_rpl_close"),
    "cfg_select": (70, "unknown"),
    "cfg_reset": (71, "unknown"),
}


def cfgtrace_enabled(config: ast.Config) -> bool:
    """The cfg loads ``debugger`` and its last ``modparam("debugger", "cfgtrace", N)``
    is 1 (Kamailio's ``dbg_init_mypid`` turns the trace on for exactly 1)."""
    loaded: list[str] = []
    value: int | None = None
    for item in config.items:
        match item:
            case ast.LoadModule(path=path):
                loaded.append(module_name(path.value))
            case ast.ModParam(module=pattern, param=param, value=ast.Number(value=number)):
                if param.value == "cfgtrace" and "debugger" in (
                    modparam_modules(pattern.value, loaded) or []
                ):
                    value = number
    return "debugger" in loaded and value == 1


def trace_route_name(route: ast.Route) -> str:
    """Kamailio's ``action->rname`` for the actions of ``route``: the block's name, or
    the lexer's default for an unnamed block (``DEFAULT_ROUTE`` for request_route,
    ``DEFAULT_ONREPLY`` for onreply_route/reply_route, both measured)."""
    if route.name is not None and route.kind is not ast.RouteKind.REQUEST:
        return route.name
    return {
        ast.RouteKind.ONREPLY: "DEFAULT_ONREPLY",
        ast.RouteKind.REPLY: "DEFAULT_ONREPLY",
        ast.RouteKind.ONSEND: "DEFAULT_ONSEND",
        ast.RouteKind.FAILURE: "DEFAULT_FAILURE",
        ast.RouteKind.BRANCH: "DEFAULT_BRANCH",
    }.get(route.kind, "DEFAULT_ROUTE")


def _end_line(span: Span) -> int:
    """The line of the last character of ``span`` (where the user wrote it)."""
    site = span.use_site()
    return site.file.line_col(max(site.start, site.end - 1))[0]


def _next_token_line(span: Span) -> int:
    """The line of the first token after ``span``: whitespace, ``#``/``//`` line
    comments (and preprocessor lines) and ``/* */`` comments are skipped."""
    site = span.use_site()
    text = site.file.text
    pos = site.end
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char == "#" or text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            pos = len(text) if end < 0 else end + 2
        else:
            break
    return site.file.line_col(min(pos, max(0, len(text) - 1)))[0]


def if_line(stmt: ast.IfStmt) -> int:
    """``action->cline`` of an ``if``: the next token's line without ``else``, else
    that of the ``else`` branch's end (an ``else if`` without ``else``: its next
    token's)."""
    if stmt.else_ is None:
        return _next_token_line(stmt.span)
    if isinstance(stmt.else_, ast.IfStmt):
        return if_line(stmt.else_)
    return _end_line(stmt.else_.span)


def _has_side_effects(expr: ast.Expr) -> bool:
    return any(isinstance(n, ast.Call | ast.AssignExpr | ast.BlockExpr) for n in _iter_exprs(expr))


def switch_action(stmt: ast.SwitchStmt) -> tuple[int, str]:
    """The action a ``switch`` becomes after Kamailio's ``fix_switch``/``fix_match``:
    no case at all -> ``block`` (``eval`` when the subject has side effects); only a
    ``default``, or a constant subject -> ``block``; string or regex cases -> ``case``
    (MATCH_COND_T); int cases -> a jump table (more than 3 values within 100 of the
    smallest one counted) or a condition table. Measured: 2 int cases -> 21, cases
    0..3 -> 20, string cases -> 22."""
    labelled = [c for c in stmt.cases if c.value is not None]
    if not stmt.cases:
        return (_EVAL_T, "eval") if _has_side_effects(stmt.subject) else (_BLOCK_T, "block")
    if not labelled:
        return _BLOCK_T, "block"
    if is_constant(stmt.subject) and not _has_side_effects(stmt.subject):
        return _BLOCK_T, "block"
    if labelled[0].is_regex or not isinstance(labelled[0].value, ast.Number):
        return _MATCH_COND_T, "case"
    values = [rv.wrap32(c.value.value) for c in labelled if isinstance(c.value, ast.Number)]
    best, start, end = 3, 0, 0
    for first in values:
        last, hits = first, 1
        for other in values:
            if other <= first:
                continue
            if other < last:
                hits += 1
            elif other - first < _MAX_JT_SIZE:
                last = other
                hits += 1
        if hits > best:
            best, start, end = hits, first, last
            if hits == len(values):
                break
    if start != end:
        return _SWITCH_JT_T, "switch"
    return _SWITCH_COND_T, "switch"


def _arg_constant(arg: ast.Expr) -> bool:
    """A function argument Kamailio keeps as a fixed parameter (not an RVE)."""
    return isinstance(arg, ast.Name | ast.Host | ast.IPAddr | ast.Subnet) or is_constant(arg)


def call_action(call: ast.Call, module: str) -> tuple[int, str]:
    """Action type and name of a call: ``route`` (5), a core action (its own type),
    or a module function: MODULE<n>_T for n constant parameters, MODULE<n>_RVE_T when
    one is an expression (measured: ``t_relay()`` 24, ``is_method("X")`` 25,
    ``xlog(a, b)`` 26, ``t_set_fr($var(c))`` 32, ``t_set_fr(2000, $var(c))`` 33)."""
    if call.name == "route":
        return _ROUTE_T, "route"
    if module == "core" and call.name in CORE_ACTIONS:
        return CORE_ACTIONS[call.name]
    count = len(call.args)
    if all(_arg_constant(a) for a in call.args):
        return min(_MODULE0_T + count, _MODULEX_T), call.name
    return min(_MODULE1_RVE_T + count - 1, _MODULEX_RVE_T), call.name


def statement_action(stmt: ast.Stmt) -> tuple[int, int, str] | None:
    """(line, action type, name) of a statement that is one action of its own; None
    for a call (traced where it is evaluated), a block and ``;``."""
    match stmt:
        case ast.AssignStmt():
            return _end_line(stmt.span), _ASSIGN_T, "assign"
        case ast.IfStmt():
            return if_line(stmt), _IF_T, "if"
        case ast.SwitchStmt():
            return (_end_line(stmt.span), *switch_action(stmt))
        case ast.WhileStmt():
            return _end_line(stmt.span), _WHILE_T, "while"
        case ast.ReturnStmt():
            return _end_line(stmt.span), _DROP_T, "return"
        case ast.DropStmt():
            return _end_line(stmt.span), _DROP_T, "drop"
        case ast.ExitStmt() | ast.BreakStmt():  # break: DROP_T without a name of its own
            return _end_line(stmt.span), _DROP_T, "exit"
    return None


def _describe(route: ast.Route) -> str:
    kind, name = route_key(route)
    keyword = {
        ast.RouteKind.REQUEST: "request_route",
        ast.RouteKind.REPLY: "reply_route",
        ast.RouteKind.ONSEND: "onsend_route",
    }.get(kind)
    if keyword is not None:
        return keyword
    return f"{kind.value}[{name}]"


def _comment_text(text: str) -> str:
    return marker_comment(text, 1).value[2:-2]


def _iter_exprs(expr: ast.Expr) -> Iterable[Any]:
    from kcc.sema.context import iter_nodes

    return iter_nodes(expr)


def _iter_uses(
    node: Any,
) -> Iterable[ast.Call | ast.PVar | ast.Select | ast.AssignStmt | ast.AssignExpr]:
    """Every call, pseudo-variable (also inside another's name, index and
    transformation parameters), select and assignment below ``node``."""
    from kcc.sema.context import iter_nodes

    for item in iter_nodes(node):
        if isinstance(item, ast.PVar):
            yield from _nested_pvars(item)
        elif isinstance(item, ast.Call | ast.Select | ast.AssignStmt | ast.AssignExpr):
            yield item


def _nested_pvars(pvar: ast.PVar) -> Iterable[ast.PVar]:
    yield pvar
    for transformation in pvar.transformations:
        for param in transformation.params:
            for part in param:
                if isinstance(part, ast.PVar):
                    yield from _nested_pvars(part)


def _unsupported(
    node: ast.PVar | ast.Select | ast.AssignStmt | ast.AssignExpr,
) -> list[tuple[str, Span]]:
    """What of ``node`` the runtime lacks, as ``(description, span)``."""
    if isinstance(node, ast.AssignStmt | ast.AssignExpr):
        name = node.target.name
        if name in rpv.PVS and name not in rpv.WRITABLE:
            return [(f"assigning to `${name}`", node.target.span)]
        return []
    if isinstance(node, ast.Select):
        path = ".".join(
            part.name + (f"[{part.index}]" if part.index is not None else "") for part in node.parts
        )
        return [] if _select_supported(path) else [(f"the select `@{path}`", node.span)]
    found: list[tuple[str, Span]] = []
    if node.name not in rpv.PVS:
        found.append((f"the pseudo-variable `${node.name}`", node.span))
    elif node.name == "T" and node.inner_text not in rpv.T_NAMES:
        found.append((f"the pseudo-variable `$T({node.inner_text})`", node.span))
    elif node.name in ("T_req", "T_rpl", "T_inv") and not (
        node.inner is not None and len(node.inner) == 1 and isinstance(node.inner[0], ast.PVar)
    ):
        found.append((f"`${node.name}` of anything but one pseudo-variable", node.span))
    elif (
        node.name == "sel"
        and node.inner_text is not None
        and not _select_supported(node.inner_text)
    ):
        found.append((f"the select `@{node.inner_text}`", node.span))
    for transformation in node.transformations:
        if transformation.name not in rpv.TRANSFORMATIONS:
            found.append((f"the transformation `{{{transformation.name}}}`", transformation.span))
    return found


def _select_supported(path: str) -> bool:
    try:
        rpv.select(path)
    except rpv.PvError:
        return False
    return True


def _pv_key(pvar: ast.PVar) -> Hashable:
    inner = (
        None
        if pvar.inner is None
        else tuple(p if isinstance(p, str) else _pv_key(p) for p in pvar.inner)
    )
    index = _pv_key(pvar.index) if isinstance(pvar.index, ast.PVar) else pvar.index
    trans = tuple(
        (
            t.name,
            tuple(
                tuple(p if isinstance(p, str) else _pv_key(p) for p in param) for param in t.params
            ),
        )
        for t in pvar.transformations
    )
    return (pvar.name, inner, index, trans)


def _pv_name(pvar: ast.PVar) -> str:
    """``PV_var_i``, ``PV_hdr_Via_0``, ``PV_ru_s_len``: the PV's words joined by ``_``
    (anything else in them dropped); :class:`NameTable` numbers a collision."""
    pieces = [pvar.name]
    if pvar.inner is not None:
        pieces.append(" ".join(p if isinstance(p, str) else p.name for p in pvar.inner))
    if isinstance(pvar.index, int):
        pieces.append(str(pvar.index) if pvar.index >= 0 else f"m{-pvar.index}")
    elif pvar.index == "*":
        pieces.append("all")
    elif isinstance(pvar.index, ast.PVar):
        pieces.append(pvar.index.name)
    pieces.extend(t.name for t in pvar.transformations)
    words = [re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in pieces]
    name = "PV_" + "_".join(w for w in words if w)
    if len(name) > 40:
        name = name[:40].rstrip("_")
    return name if name != "PV_" else "PV_x"


def _case_groups(cases: Sequence[ast.CaseClause]) -> list[list[ast.CaseClause]]:
    """Labels that share a body: ``case 1: case 2: body`` is one group."""
    groups: list[list[ast.CaseClause]] = []
    current: list[ast.CaseClause] = []
    for case in cases:
        current.append(case)
        if case.body:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _ends(stmt: ast.Stmt) -> bool:
    return isinstance(stmt, ast.BreakStmt | ast.ReturnStmt | ast.ExitStmt | ast.DropStmt)


def _breaks_inside(stmts: Sequence[ast.Stmt]) -> bool:
    """A ``break`` that leaves the switch, other than a body's last statement."""
    for stmt in stmts:
        match stmt:
            case ast.BreakStmt():
                return True
            case ast.Block(stmts=inner):
                if _breaks_inside(inner):
                    return True
            case ast.IfStmt(then=then, else_=else_):
                if _breaks_inside([then]) or (else_ is not None and _breaks_inside([else_])):
                    return True
    return False


def _if_chain_ok(cases: Sequence[ast.CaseClause], groups: list[list[ast.CaseClause]]) -> bool:
    """The switch reads as an if/elif chain: no fall-through from one body into the next,
    no ``break`` elsewhere than at a body's end, a ``default`` only in the last group."""
    for number, group in enumerate(groups):
        body = group[-1].body
        last_group = number == len(groups) - 1
        if any(c.value is None for c in group) and not last_group:
            return False
        if body and not _ends(body[-1]) and not last_group:
            return False
        inner = body[:-1] if body and isinstance(body[-1], ast.BreakStmt) else body
        if _breaks_inside(inner):
            return False
    return True
