"""Tokens -> AST: the lark LALR parser and its syntax error messages.

The grammar (``grammar/kamailio.lark``) has no terminal definitions: the tokens come
from :mod:`kcc.lexer` (after :mod:`kcc.preprocess`) and reach lark through
:class:`_TokenStream`, a custom lexer. Each lark token's ``start_pos``/``end_pos`` is
the index of the kcc token in the list (``i``, ``i + 1``), so the positions lark
propagates to a rule are token indexes and :class:`kcc.build_ast.AstBuilder` turns
them into spans.

Before parsing, :func:`_terminal_kinds` adds the context Kamailio's flex lexer gets
from start conditions and keywords: an ``ID`` that begins a setting (``name =``,
``group.var =``) becomes ``PARAM_NAME``, and ``advertise``/``name``/``virtual`` inside
a ``listen=`` value become ``LISTEN_*``.

Syntax errors are reported and parsing goes on, with two simple recoveries that
keep cascades out (one error per cause):

- the token list is cut into top-level items (settings, ``loadmodule``, route blocks)
  by brace depth, and each item is parsed on its own: an error loses one item, not
  the rest of the file. Statements found outside any block (typically after a comment
  that swallowed their ``route[X] {`` header) form one item and one error;
- inside an item, a missing ``)`` or ``;`` is inserted when that lets the parser go
  on (the book's ``if(!t_check_status("408|500")`` followed by ``exit;``), so the
  rest of the block is still parsed and checked.

An item that cannot be repaired is dropped; :class:`ParseResult` says so, with the
route blocks that exist in the text but not in the tree, so later passes do not
report them as missing. Messages say in words what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from lark import Lark, Tree
from lark import Token as LarkToken
from lark.common import LexerConf
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, LexerState
from lark.parsers.lalr_interactive_parser import InteractiveParser

from kcc import ast
from kcc.build_ast import AstBuilder
from kcc.diagnostics import Diagnostic, DiagnosticSink, Label
from kcc.lexer import Lexer as KccLexer
from kcc.lexer import Token
from kcc.source import SourceFile, Span

__all__ = ["ParseResult", "describe_expected", "parse", "parse_text", "parse_tokens"]

_LARK: Lark | None = None

#: nesting kcc accepts in one top-level item: levels of the syntax tree (an ``if`` in a
#: block is two, an operand of ``+`` or a parenthesised expression one). Deeper trees
#: would exhaust Python's recursion limit in the passes and the code generator, so they
#: are reported (E0210) instead; lark's parse tree has its own, looser bound because it
#: spells some forms with more levels (parentheses, which leave no node in the AST)
MAX_NESTING = 128
MAX_PARSE_TREE_DEPTH = 2 * MAX_NESTING


class _Cursor:
    """The tokens of one parse and how far lark has read them (lark calls ``lex``
    again when it resumes after an error: it must go on where it stopped)."""

    def __init__(self, tokens: list[LarkToken]) -> None:
        self.tokens = tokens
        self.pos = 0


class _TokenStream(Lexer):
    """lark's view of an already-lexed token list (a :class:`_Cursor` is passed to
    ``parse`` in place of a text)."""

    __future_interface__ = 2

    def __init__(self, lexer_conf: LexerConf) -> None:
        pass

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[LarkToken]:
        cursor: _Cursor = lexer_state.text  # type: ignore[assignment]
        tokens = cursor.tokens
        while cursor.pos < len(tokens):
            token = tokens[cursor.pos]
            cursor.pos += 1
            yield token


def _lark() -> Lark:
    global _LARK  # noqa: PLW0603 - one parser per process, built on first use
    if _LARK is None:
        _LARK = Lark.open_from_package(
            "kcc",
            "grammar/kamailio.lark",
            parser="lalr",
            lexer=_TokenStream,
            start="config",
            strict=True,
            propagate_positions=True,
            maybe_placeholders=False,
            cache=True,
        )
    return _LARK


# ---------------------------------------------------------------------------
# Context for the grammar
# ---------------------------------------------------------------------------

_LISTEN_WORDS = {
    "advertise": "LISTEN_ADVERTISE",
    "name": "LISTEN_NAME",
    "virtual": "LISTEN_VIRTUAL",
}
#: token kinds that can appear inside a `listen=` value
_LISTEN_VALUE = frozenset(
    {"ID", "NUMBER", "STRING", "IPV4", "IPV6", "COLON", "DOT", "MINUS", "STAR", "LSQB", "RSQB"}
    | {"LPAR", "RPAR", "COMMA", "EQUAL"}
)


def _is_word(token: Token) -> bool:
    return token.kind != "NUMBER" and token.text.isidentifier()


def _terminal_kinds(tokens: Sequence[Token]) -> list[str]:
    kinds = [t.kind for t in tokens]
    n = len(kinds)
    in_listen = False
    for i, kind in enumerate(kinds):
        if kind != "ID":
            if in_listen and kind not in _LISTEN_VALUE:
                in_listen = False
            continue
        nxt = kinds[i + 1] if i + 1 < n else ""
        if i and kinds[i - 1] == "DOT":  # `gw_ip` in `pstn.gw_ip = ...`
            continue
        if nxt == "DOT" and kinds[i + 3 : i + 4] == ["EQUAL"] and _is_word(tokens[i + 2]):
            kinds[i + 2] = "ID"  # `session_timer.default = ...`: any word names a variable
        if (
            nxt == "EQUAL"
            or (nxt == "DOT" and kinds[i + 2 : i + 4] == ["ID", "EQUAL"])
            or (nxt == "LSQB" and kinds[i + 2 : i + 6] == ["NUMBER", "RSQB", "DOT", "ID"])
        ):
            kinds[i] = "PARAM_NAME"
            in_listen = tokens[i].text == "listen"
        elif in_listen and tokens[i].text in _LISTEN_WORDS:
            kinds[i] = _LISTEN_WORDS[tokens[i].text]
    return kinds


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


@dataclass
class ParseResult:
    config: ast.Config
    #: some top-level text could not be parsed and is missing from ``config``
    partial: bool = False
    #: route blocks written in the source but missing from ``config`` (their item could
    #: not be parsed, or their header is inside a comment): ``(keyword, name)``
    lost_routes: set[tuple[str, str | None]] = field(default_factory=set)


def parse(tokens: Sequence[Token], sink: DiagnosticSink, eof_span: Span) -> ParseResult:
    """Parse preprocessed tokens (no ``DIRECTIVE``/``INCLUDE``), reporting every syntax
    error to ``sink`` and recovering (see the module docstring). Never raises for bad
    input."""
    kinds = _terminal_kinds(tokens)
    builder = AstBuilder(tokens, sink, eof_span)
    result = ParseResult(ast.Config((), eof_span))
    items: list[ast.TopItem] = []
    for start, end in _top_level_items(kinds):
        tree = _parse_item(tokens, kinds, start, end, sink=sink, eof_span=eof_span, result=result)
        if tree is None:
            continue
        deepest = _tree_too_deep(tree)
        if deepest is not None:
            _too_deep(tokens[deepest].span, tokens, kinds, start, end, sink=sink, result=result)
            continue
        built = builder.transform(tree).items
        too_deep = _ast_too_deep(built)
        if too_deep is not None:
            _too_deep(too_deep, tokens, kinds, start, end, sink=sink, result=result)
            continue
        items.extend(built)
    span = tokens[0].span.to(tokens[-1].span) if tokens else eof_span
    result.config = ast.Config(tuple(items), span)
    return result


def _tree_too_deep(tree: Tree[LarkToken]) -> int | None:
    """The token index where lark's tree is deeper than :data:`MAX_PARSE_TREE_DEPTH`,
    or None (iterative: the tree may be deeper than Python's recursion limit)."""
    stack: list[tuple[Tree[LarkToken] | LarkToken, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if depth > MAX_PARSE_TREE_DEPTH:
            first = node.meta.start_pos if not node.meta.empty else None
            return first if isinstance(first, int) else 0
        stack.extend((child, depth + 1) for child in node.children)
    return None


def _ast_too_deep(items: Sequence[ast.TopItem]) -> Span | None:
    """Where an AST node sits deeper than :data:`MAX_NESTING` levels, or None."""
    stack: list[tuple[object, int]] = [(item, 1) for item in items]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, tuple | list):
            stack.extend((child, depth) for child in node)
            continue
        if isinstance(node, Span) or not is_dataclass(node) or isinstance(node, type):
            continue
        if depth > MAX_NESTING:
            span = getattr(node, "span", None)
            if isinstance(span, Span):
                return span
        stack.extend((getattr(node, f.name), depth + 1) for f in fields(node))
    return None


def _too_deep(
    where: Span,
    tokens: Sequence[Token],
    kinds: Sequence[str],
    start: int,
    end: int,
    *,
    sink: DiagnosticSink,
    result: ParseResult,
) -> None:
    """E0210 for an item nested past the limits; the item is dropped like one that
    cannot be parsed."""
    sink.emit(
        Diagnostic.error(
            "E0210",
            "blocks or expressions nested too deeply",
            where,
            f"nested past kcc's limit of {MAX_NESTING} levels here",
            notes=(
                "a block in a block counts two levels, an operand or a parenthesised "
                "expression one; kcc limits nesting so that compiling cannot exhaust its stack",
            ),
            help="split the nested part into a `route[...]` of its own, or into variables",
        )
    )
    result.partial = True
    if kinds[start] in _ROUTE_KEYWORDS:
        named = kinds[start + 1 : start + 2] == ["LSQB"] and start + 2 < end
        result.lost_routes.add((tokens[start].text, tokens[start + 2].text if named else None))


def parse_tokens(tokens: Sequence[Token], sink: DiagnosticSink, eof_span: Span) -> ast.Config:
    """:func:`parse`, for callers that only want the tree."""
    return parse(tokens, sink, eof_span).config


def parse_text(text: str, path: str, sink: DiagnosticSink) -> ast.Config:
    """Lex and parse ``text`` without preprocessing (directive lines and
    ``include_file``/``import_file`` lines are dropped). For tests and tools."""
    file = SourceFile(path, text)
    tokens: list[Token] = []
    skip_string = False
    for token in KccLexer(file, sink):
        if token.kind == "DIRECTIVE":
            continue
        if token.kind == "INCLUDE":
            skip_string = True
            continue
        if skip_string and token.kind == "STRING":
            skip_string = False
            continue
        skip_string = False
        tokens.append(token)
    return parse_tokens(tokens, sink, file.span(len(text), len(text)))


# ---------------------------------------------------------------------------
# Recovery: top-level items, repairs
# ---------------------------------------------------------------------------

#: tokens that only ever start a top-level item: seen inside a block, they mean the
#: block was left open
_TOP_ONLY = frozenset(
    {"LOADMODULE", "LOADMODULEX", "LOADPATH", "MODPARAM", "MODPARAMX", "CFGENGINE"}
    | {"REQUEST_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE", "ONREPLY_ROUTE", "REPLY_ROUTE"}
    | {"ONSEND_ROUTE", "EVENT_ROUTE"}
)
_ROUTE_KEYWORDS = frozenset(
    {"ROUTE", "REQUEST_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE", "ONREPLY_ROUTE"}
    | {"REPLY_ROUTE", "ONSEND_ROUTE", "EVENT_ROUTE"}
)
#: at most this many repairs in one top-level item, then the item is given up
_MAX_REPAIRS = 3
_COMMENTED_HEADER = re.compile(
    r"\b(request_route|route|failure_route|branch_route|onreply_route|reply_route"
    r"|onsend_route|event_route)\s*(?:\[\s*([^\]\s]+)\s*\])?\s*\{"
)


def _starts_item(kinds: Sequence[str], i: int) -> bool:
    kind = kinds[i]
    if kind in _TOP_ONLY or kind in ("PARAM_NAME", "FLAGS", "AVPFLAGS"):
        return True
    return kind == "ROUTE" and i + 1 < len(kinds) and kinds[i + 1] in ("LSQB", "LBRACE")


def _top_level_items(kinds: Sequence[str]) -> list[tuple[int, int]]:
    """Cut the token list into top-level items: ``[start, end)`` index ranges.

    An item starts at a token that can only start one (a setting name, a route
    keyword followed by ``[`` or ``{``, ``loadmodule`` ...) at depth 0, or after a block
    that closed at depth 0. Tokens that start no item (statements outside any block)
    are kept together as one item, which then fails to parse once. A route keyword
    inside a block ends the block's item: the block was left open.
    """
    items: list[tuple[int, int]] = []
    start = 0
    depth = 0
    closed = False
    n = len(kinds)
    for i in range(n):
        kind = kinds[i]
        if i > start:
            if depth == 0 and kind != "SEMICOLON":
                orphan = not _starts_item(kinds, start)
                if _starts_item(kinds, i) or (closed and not orphan):
                    items.append((start, i))
                    start, closed = i, False
            elif depth > 0 and (
                kind in _TOP_ONLY or (kind == "ROUTE" and kinds[i + 1 : i + 2] == ["LSQB"])
            ):
                items.append((start, i))
                start, depth, closed = i, 0, False
        if kind in ("LBRACE", "LPAR", "LSQB"):
            depth += 1
        elif kind in ("RBRACE", "RPAR", "RSQB"):
            depth = max(0, depth - 1)
            if depth == 0 and kind == "RBRACE":
                closed = True
    if start < n:
        items.append((start, n))
    return items


def _lark_token(kind: str, text: str, index: int) -> LarkToken:
    return LarkToken(kind, text, index, None, None, None, None, index + 1)


def _try_repair(ip: InteractiveParser, bad: LarkToken, kinds: Sequence[str]) -> bool:
    """Insert a missing `)` or `;` before ``bad`` if the parser then accepts ``bad``."""
    if bad.type == "$END":
        return False
    index = bad.start_pos
    assert index is not None
    for kind, text in (("RPAR", ")"), ("SEMICOLON", ";")):
        if kind == "RPAR" and not any(kinds[j] == "LPAR" for j in _unclosed(kinds, index)):
            continue
        trial: InteractiveParser = ip.copy()  # type: ignore[no-untyped-call]
        try:
            trial.feed_token(_lark_token(kind, text, index - 1))
            trial.feed_token(bad)
        except UnexpectedInput:
            continue
        ip.feed_token(_lark_token(kind, text, index - 1))
        ip.feed_token(bad)
        return True
    return False


def _parse_item(
    tokens: Sequence[Token],
    kinds: Sequence[str],
    start: int,
    end: int,
    *,
    sink: DiagnosticSink,
    eof_span: Span,
    result: ParseResult,
) -> Any:
    """Parse ``tokens[start:end]`` as a config; None if it cannot be repaired."""
    cursor = _Cursor([_lark_token(kinds[i], tokens[i].text, i) for i in range(start, end)])
    repairs = 0

    def on_error(error: UnexpectedInput) -> bool:
        nonlocal repairs
        if not isinstance(error, UnexpectedToken):  # pragma: no cover - tokens only
            return False
        sink.emit(_item_error(error, tokens, kinds, start, end, eof_span=eof_span, result=result))
        if repairs >= _MAX_REPAIRS:
            return False
        repairs += 1
        return _try_repair(error.interactive_parser, error.token, kinds)

    try:
        return _lark().parse(cursor, on_error=on_error)
    except UnexpectedInput:
        result.partial = True
        if kinds[start] in _ROUTE_KEYWORDS:
            named = kinds[start + 1 : start + 2] == ["LSQB"] and start + 2 < end
            name = tokens[start + 2].text if named else None
            result.lost_routes.add((tokens[start].text, name))
        return None


def _item_error(
    error: UnexpectedToken,
    tokens: Sequence[Token],
    kinds: Sequence[str],
    start: int,
    end: int,
    *,
    eof_span: Span,
    result: ParseResult,
) -> Diagnostic:
    if error.token.type == "$END" and end < len(tokens):
        # the item was cut before a route keyword: its block is never closed
        cut = tokens[end]
        labels = [
            Label(tokens[i].span, f"this `{tokens[i].text}` is never closed")
            for i in _unclosed(kinds, end)[-1:]
            if i >= start
        ]
        return Diagnostic.error(
            "E0201",
            f"expected `}}`, found {_found(cut)}",
            cut.span,
            "a new top-level item starts here, inside the block above",
            labels=labels,
            help="close the block above with `}` before this line",
        )
    diag = _syntax_error(error, tokens, kinds, eof_span)
    index = error.token.start_pos
    if index == start and not _starts_item(kinds, start) and start > 0:
        diag = _explain_orphan(diag, tokens, start, result)
    return diag


def _explain_orphan(
    diag: Diagnostic, tokens: Sequence[Token], start: int, result: ParseResult
) -> Diagnostic:
    """Statements outside any block: look for a route header hidden in a comment."""
    before, first = tokens[start - 1].span, tokens[start].span
    if before.file is not first.file or before.origin or first.origin:
        return diag
    gap = first.file.text[before.end : first.start]
    headers = list(_COMMENTED_HEADER.finditer(gap))
    if not headers:
        return Diagnostic.error(
            diag.code,
            diag.message,
            diag.span,
            diag.label,
            labels=diag.labels,
            notes=("this statement is outside any route block",),
        )
    header = headers[-1]
    where = Span(first.file, before.end + header.start(), before.end + header.end())
    keyword, name = header.group(1), header.group(2)
    result.lost_routes.add((keyword, name))
    shown = header.group(0)
    return Diagnostic.error(
        diag.code,
        "statements outside any route block",
        diag.span,
        "this statement is outside any route block",
        labels=(*diag.labels, Label(where, "the block header is inside this comment")),
        help=f"put `{shown}` on its own line, after the comment",
    )


# ---------------------------------------------------------------------------
# Syntax errors
# ---------------------------------------------------------------------------

_SPELLING = {
    "SEMICOLON": "`;`",
    "COMMA": "`,`",
    "RPAR": "`)`",
    "RBRACE": "`}`",
    "RSQB": "`]`",
    "COLON": "`:`",
    "LPAR": "`(`",
    "LBRACE": "`{`",
    "LSQB": "`[`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "ELSE": "`else`",
    "CASE": "`case`",
    "DEFAULT": "`default`",
    "DESC": "`desc`",
    "SLASH": "`/`",
    "STAR": "`*`",
    "MINUS": "`-`",
    "ID": "a name",
    "PARAM_NAME": "a setting name",
    "NUMBER": "a number",
    "STRING": "a string",
    "PVAR": "a pseudo-variable",
    "SELECT": "a select",
    "IPV4": "an IP address",
    "IPV6": "an IP address",
    "EVENT_NAME": "an event name such as `xhttp:request`",
    "LISTEN_ADVERTISE": "`advertise`",
    "LISTEN_NAME": "`name`",
    "LISTEN_VIRTUAL": "`virtual`",
}
#: the order expected items are listed in
_ORDER = list(_SPELLING)

_TOP_START = frozenset(
    {"PARAM_NAME", "LOADMODULE", "LOADMODULEX", "LOADPATH", "MODPARAM", "MODPARAMX"}
    | {"CFGENGINE", "FLAGS", "AVPFLAGS", "ROUTE", "REQUEST_ROUTE", "FAILURE_ROUTE"}
    | {"BRANCH_ROUTE", "ONREPLY_ROUTE", "REPLY_ROUTE", "ONSEND_ROUTE", "EVENT_ROUTE"}
)
_STMT_START = frozenset(
    {"IF", "WHILE", "SWITCH", "RETURN", "EXIT", "DROP", "BREAK", "PVAR", "ID", "ROUTE"}
    | {"LBRACE", "SEMICOLON"}
)
_EXPR_START = frozenset(
    {"NUMBER", "STRING", "PVAR", "SELECT", "ID", "IPV4", "IPV6", "LSQB", "LPAR", "LBRACE"}
    | {"ROUTE", "OP_NOT", "TILDE", "MINUS", "DEFINED", "INTCAST", "STRCAST"}
)
_BINARY_OPS = frozenset(
    {"OP_OR", "OP_AND", "VBAR", "AMP", "CARET", "LSHIFT", "RSHIFT", "EQEQ", "NOTEQ", "MATCH"}
    | {"OP_STREQ", "OP_STRNE", "OP_INTEQ", "OP_INTNE", "LT", "GT", "LTE", "GTE", "PLUS"}
    | {"MINUS", "STAR", "SLASH", "OP_MOD", "EQUAL", "DOT"}
)
_CLOSERS = frozenset({"SEMICOLON", "RPAR", "RBRACE", "RSQB", "COMMA", "COLON"})
_OPENERS = {"LPAR": "RPAR", "LBRACE": "RBRACE", "LSQB": "RSQB"}
_MAX_LISTED = 5


def describe_expected(expected: set[str]) -> str:
    """What the parser expected, in words: "`)`", "an expression or `;`"."""
    remaining = set(expected) - {"$END"}
    words: list[str] = []
    if {"IF", "WHILE", "RETURN"} <= remaining:
        words.append("a statement")
        remaining -= _STMT_START | {"ELSE"}
        if "RBRACE" in remaining:
            words.append("`}`")
            remaining.discard("RBRACE")
    if {"LOADMODULE", "MODPARAM", "ROUTE"} <= remaining:
        words.append("a route block or a global setting")
        # the rest would continue the previous value (`alias=a b`): true, never helpful
        return words[0]
    if {"NUMBER", "STRING", "PVAR", "LPAR", "OP_NOT"} <= remaining:
        words.append("an expression")
        remaining -= _EXPR_START
    operators = {"PLUS", "STAR", "EQEQ"} <= remaining
    if operators:
        remaining -= _BINARY_OPS
        if not remaining & _CLOSERS:
            words.append("an operator")
    if {"COMMA", "RPAR"} <= remaining:
        remaining.discard("COLON")  # `udp:host` arguments: true but never helpful
    if "NUMBER" in remaining:
        remaining.discard("MINUS")  # the sign of a negative number
    listed = sorted(remaining, key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))
    punctuation: list[str] = []
    for kind in listed:
        spelling = _SPELLING.get(kind) or f"`{kind.lower()}`"
        bucket = punctuation if spelling.startswith("`") else words
        if spelling not in bucket:
            bucket.append(spelling)
    words += punctuation
    if len(words) > _MAX_LISTED:
        words = [*words[: _MAX_LISTED - 1], "..."]
        return ", ".join(words)
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _found(token: Token) -> str:
    text = token.text.replace("\n", " ")
    if len(text) > 30:
        text = text[:27] + "..."
    return f"`{text}`"


def _unclosed(kinds: Sequence[str], upto: int) -> list[int]:
    """Indexes of the delimiters still open before token ``upto``, outermost first."""
    stack: list[int] = []
    for i in range(min(upto, len(kinds))):
        kind = kinds[i]
        if kind in _OPENERS:
            stack.append(i)
        elif kind in ("RPAR", "RBRACE", "RSQB"):
            for j in range(len(stack) - 1, -1, -1):
                if _OPENERS[kinds[stack[j]]] == kind:
                    del stack[j:]
                    break
    return stack


def _syntax_error(
    error: UnexpectedToken, tokens: Sequence[Token], kinds: Sequence[str], eof_span: Span
) -> Diagnostic:
    bad = error.token
    # `accepts` replays each candidate on a copy of the parser: unlike `expected` (the
    # LALR state's lookaheads, merged over contexts) it has only what can follow here.
    try:
        accepted = set(error.accepts)
    except Exception:  # pragma: no cover - lark without an interactive parser
        accepted = set(error.expected)
    if not accepted:  # pragma: no cover
        accepted = set(error.expected)
    expected = describe_expected(accepted)
    if bad.type == "$END":
        open_ = _unclosed(kinds, len(tokens))
        labels = []
        if open_:
            opener = tokens[open_[-1]]
            labels.append(Label(opener.span, f"this `{opener.text}` is never closed"))
        return Diagnostic.error(
            "E0202",
            "unexpected end of file",
            eof_span,
            f"expected {expected}",
            labels=labels,
        )
    index = bad.start_pos
    token = tokens[index]
    if bad.type == "PLUSEQ":
        before = tokens[index - 1] if index > 0 else None
        target = before.text if before is not None and before.kind == "PVAR" else "$x"
        return Diagnostic.error(
            "E0203",
            "Kamailio has no `+=` operator",
            token.span,
            "only `=` assigns",
            help=f"write `{target} = {target} + ...`",
        )
    labels = []
    if "RPAR" in accepted:
        open_ = _unclosed(kinds, index)
        if open_ and kinds[open_[-1]] == "LPAR":
            labels.append(Label(tokens[open_[-1]].span, "this `(` is never closed"))
    closers_only = accepted <= _CLOSERS | _BINARY_OPS
    label = f"expected {expected} before this" if closers_only else f"expected {expected}"
    return Diagnostic.error(
        "E0201",
        f"expected {expected}, found {_found(token)}",
        token.span,
        label,
        labels=labels,
    )
