"""The kcc abstract syntax tree.

Every node is a frozen, slotted dataclass with a :class:`~kcc.source.Span` as its
last field. Class names are the CamelCase twins of the grammar rules in
``grammar/kamailio.lark`` (``if_stmt`` -> :class:`IfStmt`); fields that clash with
Python keywords get a trailing underscore (``else_``). The tree says what was
*written*: names of condition keywords (``src_ip``), flags and routes are plain
:class:`Name` nodes, and core actions are :class:`Call` nodes; later passes give
them meaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from kcc.source import Span

__all__ = [
    "AssignExpr",
    "AssignStmt",
    "AvpFlagsDecl",
    "BinOp",
    "Block",
    "BlockExpr",
    "BreakStmt",
    "Call",
    "CaseClause",
    "Cast",
    "CfgEngine",
    "CfgVar",
    "Config",
    "Defined",
    "DropStmt",
    "EmptyStmt",
    "ExitStmt",
    "Expr",
    "ExprStmt",
    "FlagDef",
    "FlagsDecl",
    "FormatPart",
    "GlobalParam",
    "Host",
    "IPAddr",
    "IfStmt",
    "Listen",
    "LoadModule",
    "LoadPath",
    "ModParam",
    "MultiHomed",
    "Name",
    "Number",
    "PVar",
    "ParamValue",
    "ReturnStmt",
    "Route",
    "RouteKind",
    "SelVal",
    "Select",
    "SelectPart",
    "SocketAddr",
    "SocketAttr",
    "SocketBlock",
    "Stmt",
    "StrEmpty",
    "StrLen",
    "String",
    "Subnet",
    "SwitchStmt",
    "TopItem",
    "Transformation",
    "UnaryOp",
    "ValueList",
    "WhileStmt",
    "Wildcard",
]


# ---------------------------------------------------------------------------
# Literals and names
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    """An integer literal; ``yes``/``no``/``on``/... are 1 and 0, ``text`` is as written."""

    value: int
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class String:
    """A string literal (adjacent literals already joined) and its format parts.

    ``parts`` splits ``value`` at embedded pseudo-variables (``"a $ru"`` ->
    ``("a ", PVar(ru))``); a ``$`` that starts no pseudo-variable stays text.
    Whether the string is a format is decided by whoever consumes it.
    """

    value: str
    parts: tuple[FormatPart, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare word: condition keyword (``method``, ``src_ip``, ``msg:len``, ``myself``),
    flag name, route name, protocol (``udp``) or a value such as ``LOG_LOCAL0``."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Host:
    """A host name written without quotes: ``sip.example.com``, ``gw-1.example.net``."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class IPAddr:
    """An IPv4 or IPv6 address literal (``[::1]`` is stored without brackets)."""

    address: str
    version: int
    span: Span


@dataclass(frozen=True, slots=True)
class Subnet:
    """``10.0.0.0/8`` or ``10.0.0.0/255.0.0.0``; ``prefix`` is the mask length in bits."""

    address: IPAddr
    mask: Number | IPAddr
    prefix: int
    span: Span


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``*`` in a socket address (any address or any port)."""

    span: Span


@dataclass(frozen=True, slots=True)
class MultiHomed:
    """``(addr1, addr2)``: one SCTP socket on several addresses."""

    addrs: tuple[Host | Name | IPAddr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SocketAddr:
    """``[proto:]host[:port[-port_end]]``: in ``listen=``, ``force_send_socket(...)``."""

    proto: str | None
    host: Host | Name | IPAddr | Wildcard | MultiHomed | Number
    port: Number | Wildcard | None
    port_end: Number | None
    span: Span


@dataclass(frozen=True, slots=True)
class Listen:
    """A ``listen=`` entry with options: ``advertise host:port``, ``name "x"``, ``virtual``."""

    addr: SocketAddr
    advertise: SocketAddr | None
    name: String | None
    virtual: bool
    span: Span


@dataclass(frozen=True, slots=True)
class ValueList:
    """Several space-separated values: ``alias=a.example.com b.example.com``."""

    items: tuple[ParamValue, ...]
    span: Span


# ---------------------------------------------------------------------------
# Pseudo-variables and selects (built by kcc.pv)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transformation:
    """One ``{class.name,param,...}`` of a pseudo-variable; params are format parts."""

    name: str
    params: tuple[tuple[FormatPart, ...], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class PVar:
    """A pseudo-variable: ``$ru``, ``$var(x)``, ``$(hdr(Via)[1]{s.len})``, ``$?``.

    ``inner`` is the text between the name's parentheses split into format parts
    (``$sht(t=>$si)`` -> ``("t=>", PVar(si))``), None without parentheses.
    ``index`` is an int, ``"*"``, or a pseudo-variable.
    """

    name: str
    inner: tuple[FormatPart, ...] | None
    index: int | str | PVar | None
    transformations: tuple[Transformation, ...]
    span: Span

    @property
    def inner_text(self) -> str | None:
        """The inner name when it contains no pseudo-variable (``x`` for ``$var(x)``)."""
        if self.inner is None:
            return None
        if all(isinstance(part, str) for part in self.inner):
            return "".join(part for part in self.inner if isinstance(part, str))
        return None


@dataclass(frozen=True, slots=True)
class SelectPart:
    """One ``name[index]`` segment of a select."""

    name: str
    index: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Select:
    """A select, ``@cfg_get.group.var`` or ``@via[1].host``."""

    parts: tuple[SelectPart, ...]
    span: Span


# ---------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinOp:
    """A binary operator; ``op`` is canonical (``&&`` for ``and``, ``mod``, ``eq``...)."""

    op: str
    left: Expr
    right: Expr
    op_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class UnaryOp:
    """``!x`` (also ``not x``), ``~x``, ``-x``."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Defined:
    """``defined x``: the operand has a value (is not ``$null``)."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Cast:
    """``(int)x`` or ``(str)x``; ``to`` is ``"int"`` or ``"str"``."""

    to: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class StrLen:
    """``strlen(x)``."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class StrEmpty:
    """``strempty(x)``."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class SelVal:
    """``selval(cond, a, b)``: ``a`` if ``cond`` is true, else ``b``."""

    cond: Expr
    if_true: Expr
    if_false: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """``name(args)``: a module function, a core action or ``route(NAME)``.

    ``bare`` is True for a core action written without parentheses (``force_rport;``).
    """

    name: str
    name_span: Span
    args: tuple[Expr, ...]
    bare: bool
    span: Span


@dataclass(frozen=True, slots=True)
class AssignExpr:
    """An assignment used as a value: ``if ($var(x) = f()) ...``."""

    target: PVar
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class BlockExpr:
    """A block used as a value (``if ({ f(); g(); })``): the last action's result."""

    body: Block
    span: Span


# ---------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """``{ stmts }``."""

    stmts: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ExprStmt:
    """A function call or core action used as a statement."""

    call: Call
    span: Span


@dataclass(frozen=True, slots=True)
class AssignStmt:
    """``$pv = expr;`` (Kamailio has only ``=``)."""

    target: PVar
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class IfStmt:
    """``if expr stmt [else stmt]``; an else-if chain nests in ``else_``."""

    cond: Expr
    then: Stmt
    else_: Stmt | None
    span: Span


@dataclass(frozen=True, slots=True)
class CaseClause:
    """``case value:``, ``case /"regex":`` or ``default:`` (``value`` None) and the
    statements up to the next label (execution falls through without ``break``)."""

    value: Expr | None
    is_regex: bool
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SwitchStmt:
    """``switch (expr) { case ...: ... }``."""

    subject: Expr
    cases: tuple[CaseClause, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class WhileStmt:
    """``while expr stmt``."""

    cond: Expr
    body: Stmt
    span: Span


@dataclass(frozen=True, slots=True)
class ReturnStmt:
    """``return;``, ``return expr;`` (``return();`` has value None)."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class ExitStmt:
    """``exit;``, ``exit expr;``."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class DropStmt:
    """``drop;``, ``drop expr;``."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class BreakStmt:
    """``break;``."""

    span: Span


@dataclass(frozen=True, slots=True)
class EmptyStmt:
    """``;``."""

    span: Span


# ---------------------------------------------------------------------------
# Top level
# ---------------------------------------------------------------------------


class RouteKind(enum.Enum):
    """The keyword a route block was written with."""

    ROUTE = "route"
    REQUEST = "request_route"
    FAILURE = "failure_route"
    BRANCH = "branch_route"
    ONREPLY = "onreply_route"
    REPLY = "reply_route"
    ONSEND = "onsend_route"
    EVENT = "event_route"


@dataclass(frozen=True, slots=True)
class Route:
    """A route block; ``name`` is None for ``request_route {}``, ``reply_route {}``..."""

    kind: RouteKind
    name: str | None
    name_span: Span | None
    body: Block
    span: Span


@dataclass(frozen=True, slots=True)
class GlobalParam:
    """``name = value`` (``debug=3``, ``listen=udp:127.0.0.1:5060``)."""

    name: str
    name_span: Span
    value: ParamValue
    span: Span


@dataclass(frozen=True, slots=True)
class CfgVar:
    """A custom config variable: ``group[index].name = value [desc "text"]``."""

    group: str
    index: int | None
    name: str
    value: ParamValue
    desc: String | None
    span: Span


@dataclass(frozen=True, slots=True)
class SocketAttr:
    """``name = value;`` inside a ``socket = { ... }`` block."""

    name: str
    name_span: Span
    value: ParamValue
    span: Span


@dataclass(frozen=True, slots=True)
class SocketBlock:
    """``socket = { bind = ...; advertise = ...; name = "..."; }``."""

    attrs: tuple[SocketAttr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class LoadPath:
    """``loadpath "dir"`` / ``mpath="dir"``."""

    path: String
    span: Span


@dataclass(frozen=True, slots=True)
class LoadModule:
    """``loadmodule "x.so"`` / ``loadmodule("x", "opts")``; ``expand`` for ``loadmodulex``."""

    path: String
    opts: String | None
    expand: bool
    span: Span


@dataclass(frozen=True, slots=True)
class ModParam:
    """``modparam("module", "param", value)``; ``expand`` for ``modparamx``."""

    module: String
    param: String
    value: String | Number | PVar
    expand: bool
    span: Span


@dataclass(frozen=True, slots=True)
class CfgEngine:
    """``cfgengine "native"``."""

    engine: String
    span: Span


@dataclass(frozen=True, slots=True)
class FlagDef:
    """``NAME`` or ``NAME:N`` in a ``flags`` declaration."""

    name: str
    bit: int | None
    span: Span


@dataclass(frozen=True, slots=True)
class FlagsDecl:
    """``flags NAME[:N], ...``."""

    flags: tuple[FlagDef, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class AvpFlagsDecl:
    """``avpflags NAME, ...``."""

    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Config:
    """A whole config file: top-level items in source order."""

    items: tuple[TopItem, ...]
    span: Span


FormatPart: TypeAlias = str | PVar

Expr: TypeAlias = (
    Number
    | String
    | Name
    | Host
    | IPAddr
    | Subnet
    | SocketAddr
    | Wildcard
    | PVar
    | Select
    | BinOp
    | UnaryOp
    | Defined
    | Cast
    | StrLen
    | StrEmpty
    | SelVal
    | Call
    | AssignExpr
    | BlockExpr
)

ParamValue: TypeAlias = (
    Number | String | Name | Host | IPAddr | Wildcard | MultiHomed | SocketAddr | Listen | ValueList
)

Stmt: TypeAlias = (
    Block
    | ExprStmt
    | AssignStmt
    | IfStmt
    | SwitchStmt
    | WhileStmt
    | ReturnStmt
    | ExitStmt
    | DropStmt
    | BreakStmt
    | EmptyStmt
)

TopItem: TypeAlias = (
    GlobalParam
    | CfgVar
    | SocketBlock
    | LoadPath
    | LoadModule
    | ModParam
    | CfgEngine
    | FlagsDecl
    | AvpFlagsDecl
    | Route
)
