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

The first syntax error is fatal (:class:`~kcc.diagnostics.FatalError`): LALR error
recovery would only add noise. Its message says in words what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lark import Lark
from lark import Token as LarkToken
from lark.common import LexerConf
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, LexerState

from kcc import ast
from kcc.build_ast import AstBuilder
from kcc.diagnostics import Diagnostic, DiagnosticSink, FatalError, Label
from kcc.lexer import Lexer as KccLexer
from kcc.lexer import Token
from kcc.source import SourceFile, Span

__all__ = ["describe_expected", "parse_text", "parse_tokens"]

_LARK: Lark | None = None


class _TokenStream(Lexer):
    """lark's view of an already-lexed token list (the list is passed to ``parse``)."""

    __future_interface__ = 2

    def __init__(self, lexer_conf: LexerConf) -> None:
        pass

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[LarkToken]:
        tokens: list[LarkToken] = lexer_state.text  # type: ignore[assignment]
        return iter(tokens)


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


def parse_tokens(tokens: Sequence[Token], sink: DiagnosticSink, eof_span: Span) -> ast.Config:
    """Parse preprocessed tokens (no ``DIRECTIVE``/``INCLUDE``) into a :class:`ast.Config`.

    Raises :class:`FatalError` on the first syntax error. Problems found while
    building the tree (empty blocks, bad subnets, ...) go to ``sink``.
    """
    kinds = _terminal_kinds(tokens)
    stream = [
        LarkToken(kind, tok.text, i, None, None, None, None, i + 1)
        for i, (kind, tok) in enumerate(zip(kinds, tokens, strict=True))
    ]
    try:
        tree = _lark().parse(stream)
    except UnexpectedToken as error:
        raise FatalError(_syntax_error(error, tokens, kinds, eof_span)) from None
    except UnexpectedInput as error:  # pragma: no cover - a token stream has no other kind
        raise FatalError(Diagnostic.error("E0201", "syntax error", eof_span, str(error))) from None
    config: ast.Config = AstBuilder(tokens, sink, eof_span).transform(tree)
    return config


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


def _unclosed(tokens: Sequence[Token], kinds: Sequence[str], upto: int) -> list[int]:
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
        open_ = _unclosed(tokens, kinds, len(tokens))
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
        open_ = _unclosed(tokens, kinds, index)
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
