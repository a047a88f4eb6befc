"""The preprocessor: directives, includes, define expansion and ``#!subst``.

Kamailio runs its preprocessor inside the flex lexer; kcc keeps the same shape. One
:class:`Lexer` per file produces tokens, and ``#!...`` lines come out as single
``DIRECTIVE`` tokens that :class:`_Preprocessor` interprets. Everything the parser
receives is a plain token:

* **Conditionals** (``#!ifdef``/``#!ifndef``/``#!ifexp``/``#!else``/``#!endif``) keep
  one stack for the whole run, as Kamailio does: a block opened in an included file
  may be closed by the file that included it. While a branch is false the lexer skips
  raw lines (:meth:`Lexer.skip_to_directive`), so a false region may hold anything.
* **Defines** are expanded token by token: only an ``ID`` whose text names a define
  is replaced (never a name inside a string, a comment or ``$pv(...)``, and never a
  core keyword such as ``debug``, which Kamailio's lexer matches before names).
  The body is looked up at the use, so a define may use one defined later. Each
  expanded token keeps its span in the define body, with an :class:`Origin` naming
  the define and the use site; nested expansions chain their origins. A body is
  lexed once when defined; if that produced no diagnostic, uses re-span the stored
  tokens, otherwise it is re-lexed at each use so its errors point at the use.
* **Includes** (``include_file``/``import_file``, with or without ``#!``/``!!``) are
  lexed in place: the included file's tokens replace the directive.
* **Subst rules** (``#!subst``, ``#!substdef``) rewrite the value of every later
  string token and the text of later pseudo-variables and include file names.
* ``MOD_<name>`` is defined as soon as ``loadmodule "name.so"`` has been seen.

Where Kamailio 5.6 accepts a questionable form (``#!undef`` of an unknown name, a
second ``#!else``, text after ``#!ifdef NAME``, an unknown ``#!word``, an ``#!else``
with nothing open), kcc reports a *warning* with the error code it would otherwise use
and behaves like Kamailio: ``#!endif // note`` is not an ``#!endif`` for Kamailio, so
it is ignored here too (with a warning that explains the unclosed block that follows).
Subst rules see a string's decoded value and their result is not decoded again, as in
Kamailio. Nothing here raises on bad input, and every expansion is bounded.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import ClassVar

from kcc.diagnostics import Diagnostic, DiagnosticSink, Label
from kcc.lexer import Lexer, Token
from kcc.source import Origin, SourceFile, Span

__all__ = ["Define", "Preprocessed", "dump_tokens", "preprocess", "preprocess_text"]

#: Kamailio 5.6.3 defines these before reading the config (verified with ``kamailio -c``:
#: plain ``KAMAILIO`` is *not* defined by 5.6)
PREDEFINED: tuple[str, ...] = ("KAMAILIO_5", "KAMAILIO_5_6", "KAMAILIO_5_6_3")

#: ``include_file`` nesting limit (Kamailio: "too many includes" past 10 levels)
MAX_INCLUDE_DEPTH = 10
#: tokens one use of a define may expand to, and tokens in the whole output
MAX_EXPANSION_TOKENS = 100_000
MAX_OUTPUT_TOKENS = 2_000_000
#: nested define expansions (a chain of distinct defines)
MAX_EXPANSION_DEPTH = 200
#: operands of ``**`` and ``<<`` in ``#!ifexp``/``#!defexp`` are capped to keep numbers small
MAX_EXPONENT = 4096

COMPAT_MARKERS: dict[str, str] = {
    "KAMAILIO": "kamailio",
    "OPENSER": "kamailio",
    "SER": "ser",
    "MAXCOMPAT": "max",
    "ALL": "max",
}

#: every directive spelling -> its canonical name
DIRECTIVES: dict[str, str] = {
    "define": "define",
    "def": "define",
    "trydefine": "trydef",
    "trydef": "trydef",
    "redefine": "redef",
    "redef": "redef",
    "undefine": "undef",
    "undef": "undef",
    "tryundefine": "tryundef",
    "tryundef": "tryundef",
    "ifdef": "ifdef",
    "ifndef": "ifndef",
    "ifexp": "ifexp",
    "else": "else",
    "endif": "endif",
    "defexp": "defexp",
    "defexps": "defexps",
    "defenv": "defenv",
    "defenvs": "defenvs",
    "trydefenv": "trydefenv",
    "trydefenvs": "trydefenvs",
    "subst": "subst",
    "substdef": "substdef",
    "substdefs": "substdefs",
    "include_file": "include_file",
    "import_file": "import_file",
    **{marker: "compat" for marker in COMPAT_MARKERS},
}

_NAME = re.compile(r"[A-Za-z0-9_]+")
_BLANKS = re.compile(r"[ \t]*")
_CONTINUATION = re.compile(r"\\\r?\n")

#: protocol and address-family words: keywords in Kamailio's lexer, so never expanded
_LEXER_WORDS = frozenset(
    word
    for base in ("udp", "tcp", "tls", "sctp", "ws", "wss", "inet", "inet6", "ipv4", "ipv6")
    for word in (base, base.upper(), base.replace("ip", "IP"))
) | frozenset(
    word
    for base in ("sslv23", "sslv2", "sslv3", "tlsv1")
    for word in (base, base.upper(), base[:3].upper() + base[3:])
)


@cache
def core_keywords() -> frozenset[str]:
    """Names Kamailio's lexer turns into keyword tokens: a define never replaces them."""
    text = resources.files("kcc").joinpath("data/core_keywords.tsv").read_text("utf-8")
    words: set[str] = set(_LEXER_WORDS)
    for line in text.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 3:
            continue
        words.add(cols[1].strip())
        words.update(alias.strip() for alias in cols[2].split(",") if alias.strip())
    return frozenset(words)


# ---------------------------------------------------------------------------
# Public data
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Define:
    """One ``#!define`` (or ``-D``, predefined name, ``#!substdef``, ``#!defenv`` ...)."""

    name: str
    #: the lexed body (spans in the file that holds the ``#!define`` line)
    tokens: tuple[Token, ...]
    #: the raw value text (after continuation joining), ``""`` when none
    text: str
    #: where the name is written in the ``#!define`` line; None for -D / predefined
    span: Span | None
    #: ``define`` | ``cmdline`` | ``predefined`` | ``substdef`` | ``env`` | ``exp``
    kind: str


@dataclass
class Preprocessed:
    """What the parser gets, plus the define table and the files that were read."""

    #: no DIRECTIVE/INCLUDE tokens; includes inlined, defines expanded, subst applied
    tokens: list[Token]
    #: the define table at end of input
    defines: dict[str, Define]
    #: main file first, then every included file in order
    files: list[SourceFile]
    #: ``max`` (default), ``kamailio`` (#!KAMAILIO/#!OPENSER), ``ser`` (#!SER)
    compat: str = "max"
    #: names a ``#!define``/``#!trydef``/``#!redefine`` in a skipped conditional block
    #: would have defined, each place in order (see :func:`explain_skipped_define`)
    skipped_defines: dict[str, list[SkippedDefine]] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedDefine:
    """A define the preprocessor skipped: where, and which condition kept it out."""

    #: the name in the skipped ``#!define`` line
    span: Span
    #: the outermost open conditional that did not hold, as written (``#!ifdef X``)
    shown: str
    #: where that conditional starts
    cond_span: Span
    #: the define sits in that conditional's ``#!else`` branch
    in_else: bool

    def requirement(self) -> str:
        """What would have made Kamailio read the define, in words."""
        keyword, _, subject = self.shown.partition(" ")
        kind = DIRECTIVES.get(keyword.removeprefix("#!").removeprefix("!!"), "")
        if kind == "ifexp":
            return f"`{subject}` is {'false' if self.in_else else 'true'}"
        defined = (kind == "ifdef") != self.in_else
        return f"`{subject}` is {'defined' if defined else 'not defined'}"


# ---------------------------------------------------------------------------
# Subst rules (POSIX-style regular expressions, Kamailio's subst syntax)
# ---------------------------------------------------------------------------

_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
    "word": "a-zA-Z0-9_",
}


def posix_to_python(pattern: str) -> str:
    """Translate a POSIX extended regular expression into Python syntax.

    Handles bracket classes (``[[:digit:]]``), GNU word boundaries (``\\<``, ``\\>``)
    and characters Python would treat specially inside brackets. Leftmost-longest
    alternation is not emulated (Python takes the first alternative that matches).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(r"\b" if nxt in "<>" else c + nxt)
            i += 2
        elif c == "[":
            j = i + 1
            parts = ["["]
            if j < n and pattern[j] == "^":
                parts.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                parts.append(r"\]")
                j += 1
            while j < n and pattern[j] != "]":
                m = re.match(r"\[:([a-z]+):\]", pattern[j:])
                if m and m.group(1) in _POSIX_CLASSES:
                    parts.append(_POSIX_CLASSES[m.group(1)])
                    j += m.end()
                    continue
                ch = pattern[j]
                parts.append("\\" + ch if ch in "\\[" else ch)
                j += 1
            if j >= n:  # unclosed bracket: let re report it
                out.append(pattern[i:])
                break
            parts.append("]")
            out.append("".join(parts))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class SubstRule:
    """A compiled ``/regex/replacement/flags`` rule."""

    regex: re.Pattern[str]
    #: the replacement: literal text and group numbers
    replacement: tuple[str | int, ...]
    replace_all: bool
    #: the regex and replacement as written (for ``#!substdef``)
    pattern_text: str
    replacement_text: str

    def apply(self, value: str) -> str:
        def expand(match: re.Match[str]) -> str:
            return "".join(
                part if isinstance(part, str) else (match.group(part) or "")
                for part in self.replacement
            )

        return self.regex.sub(expand, value, count=0 if self.replace_all else 1)


def parse_subst(rule: str) -> SubstRule | str:
    """Parse a subst rule; returns the rule or a message saying what is wrong."""
    if len(rule) < 2:
        return "the rule is empty" if not rule else "the rule has no regular expression"
    sep = rule[0]
    if sep.isalnum() or sep == "\\" or sep.isspace():
        return f"`{sep}` cannot be the separator (use a punctuation character such as `/`)"
    fields: list[str] = []
    current: list[str] = []
    i = 1
    while i < len(rule) and len(fields) < 2:
        c = rule[i]
        if c == "\\" and i + 1 < len(rule):
            nxt = rule[i + 1]
            current.append(nxt if nxt == sep else c + nxt)
            i += 2
        elif c == sep:
            fields.append("".join(current))
            current = []
            i += 1
        else:
            current.append(c)
            i += 1
    if len(fields) < 2:
        return f"missing `{sep}` separator: the form is `{sep}regex{sep}replacement{sep}flags`"
    pattern_text, replacement_text = fields
    flags = re.MULTILINE
    replace_all = False
    for flag in rule[i:]:
        if flag == "g":
            replace_all = True
        elif flag == "i":
            flags |= re.IGNORECASE
        elif flag == "s":
            flags = (flags & ~re.MULTILINE) | re.DOTALL
        else:
            return f"unknown flag `{flag}` (flags are `g`, `i` and `s`)"
    if not pattern_text:
        return "the regular expression is empty"
    try:
        regex = re.compile(posix_to_python(pattern_text), flags)
    except re.error as exc:
        return f"invalid regular expression `{pattern_text}`: {exc.msg}"
    parts: list[str | int] = []
    literal: list[str] = []
    j = 0
    controls = {"n": "\n", "r": "\r", "t": "\t"}
    while j < len(replacement_text):
        c = replacement_text[j]
        if c == "\\" and j + 1 < len(replacement_text):
            nxt = replacement_text[j + 1]
            if nxt.isdigit():
                group = int(nxt)
                if group > regex.groups:
                    return (
                        f"the replacement uses `\\{group}` but the regular expression has "
                        f"{regex.groups} group{'s' if regex.groups != 1 else ''}"
                    )
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(group)
            else:
                literal.append(controls.get(nxt, nxt))
            j += 2
            continue
        literal.append(c)
        j += 1
    if literal:
        parts.append("".join(literal))
    return SubstRule(regex, tuple(parts), replace_all, pattern_text, replacement_text)


def _quote(value: str) -> str:
    """A double-quoted string literal that decodes back to ``value``."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, c) for c in value) + '"'


# ---------------------------------------------------------------------------
# #!ifexp / #!defexp expressions
# ---------------------------------------------------------------------------


class ExprError(Exception):
    """A bad ``#!ifexp``/``#!defexp`` expression: message and offset in the text."""

    def __init__(self, message: str, offset: int, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


_EXPR_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9A-Fa-f]+|[0-9]+)(?![A-Za-z_])|(?P<str>\"(?:[^\"\\]|\\.)*\""
    r"|'[^']*')|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|<<|>>|&&|\|\||==|!=|<=|>="
    r"|[-+*/%&|^~!<>()]))"
)

#: binary operators by precedence level, lowest first
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("|",),
    ("^",),
    ("&",),
    ("==", "!="),
    ("<", "<=", ">", ">="),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
)

Value = int | str


def _as_int(value: Value) -> int:
    if isinstance(value, int):
        return value
    m = re.match(r"\s*[-+]?[0-9]+", value)
    return int(m.group()) if m else 0


def _truthy(value: Value) -> bool:
    return value != "" if isinstance(value, str) else value != 0


class _ExprParser:
    """Recursive descent over the tokens of one expression (C precedence, ``**`` on top).

    A name evaluates to its define's value: an integer if the value is one, the
    string if it is quoted, ``1`` for an empty define (a flag such as ``WITH_NAT``),
    the raw text otherwise; an undefined name is ``0``, as in the C preprocessor.
    """

    def __init__(self, text: str, lookup: Callable[[str], Value]) -> None:
        self.text = text
        self.lookup = lookup
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _EXPR_TOKEN.match(text, pos)
            if not m:
                bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
                raise ExprError(f"unexpected character `{text[bad]}`", bad)
            kind = m.lastgroup or "op"
            start = m.start(kind)
            self.tokens.append((kind, m.group(kind), start))
            pos = m.end()
        self.index = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def parse(self) -> Value:
        if not self.tokens:
            raise ExprError("the expression is empty", len(self.text))
        value = self._binary(0)
        extra = self._peek()
        if extra is not None:
            raise ExprError(
                f"unexpected `{extra[1]}` after the expression", extra[2], len(extra[1])
            )
        return value

    def _binary(self, level: int) -> Value:
        if level == len(_BINARY_LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while (
            (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in _BINARY_LEVELS[level]
        ):
            self.index += 1
            right = self._binary(level + 1)
            left = self._apply(tok[1], left, right, tok[2])
        return left

    def _unary(self) -> Value:
        tok = self._peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("-", "+", "!", "~"):
            self.index += 1
            operand = self._unary()
            if tok[1] == "!":
                return int(not _truthy(operand))
            number = _as_int(operand)
            return {"-": -number, "+": number, "~": ~number}[tok[1]]
        return self._power()

    def _power(self) -> Value:
        base = self._primary()
        tok = self._peek()
        if tok is not None and tok[1] == "**":
            self.index += 1
            exponent = self._unary()
            return self._apply("**", base, exponent, tok[2])
        return base

    def _primary(self) -> Value:
        tok = self._peek()
        if tok is None:
            raise ExprError("the expression ends too early", len(self.text))
        kind, text, offset = tok
        self.index += 1
        if kind == "num":
            return int(text, 16) if text[:2] in ("0x", "0X") else int(text)
        if kind == "str":
            if text[0] == "'":
                return text[1:-1]
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "name":
            return self.lookup(text)
        if text == "(":
            value = self._binary(0)
            close = self._peek()
            if close is None or close[1] != ")":
                where = close[2] if close is not None else len(self.text)
                raise ExprError("missing `)`", where)
            self.index += 1
            return value
        raise ExprError(f"expected a value, found `{text}`", offset, len(text))

    def _apply(self, op: str, left: Value, right: Value, offset: int) -> Value:
        if op == "&&":
            return int(_truthy(left) and _truthy(right))
        if op == "||":
            return int(_truthy(left) or _truthy(right))
        if op in ("==", "!="):
            if isinstance(left, str) or isinstance(right, str):
                equal = str(left) == str(right)
            else:
                equal = left == right
            return int(equal if op == "==" else not equal)
        if op == "+" and (isinstance(left, str) or isinstance(right, str)):
            return f"{left}{right}"
        a, b = _as_int(left), _as_int(right)
        if op in ("/", "%") and b == 0:
            raise ExprError("division by zero", offset, len(op))
        if (op == "**" and (b > MAX_EXPONENT or b < 0)) or (op == "<<" and b > MAX_EXPONENT):
            raise ExprError(f"`{op}` operand too large (limit {MAX_EXPONENT})", offset, len(op))
        if op in ("<<", ">>") and b < 0:
            raise ExprError("negative shift count", offset, len(op))
        if op == "/":
            quotient = abs(a) // abs(b)
            return quotient if (a >= 0) == (b >= 0) else -quotient
        if op == "%":
            rem = abs(a) % abs(b)
            return rem if a >= 0 else -rem
        ops: dict[str, Callable[[int, int], int]] = {
            "+": lambda x, y: x + y,
            "-": lambda x, y: x - y,
            "*": lambda x, y: x * y,
            "**": lambda x, y: x**y,
            "<<": lambda x, y: x << y,
            ">>": lambda x, y: x >> y,
            "&": lambda x, y: x & y,
            "|": lambda x, y: x | y,
            "^": lambda x, y: x ^ y,
            "<": lambda x, y: int(x < y),
            "<=": lambda x, y: int(x <= y),
            ">": lambda x, y: int(x > y),
            ">=": lambda x, y: int(x >= y),
        }
        result = ops[op](a, b)
        if result.bit_length() > MAX_EXPONENT:
            raise ExprError(f"the result of `{op}` is too large", offset, len(op))
        return result


def evaluate(text: str, lookup: Callable[[str], Value]) -> Value:
    """Evaluate an ``#!ifexp``/``#!defexp`` expression; raises :class:`ExprError`."""
    return _ExprParser(text, lookup).parse()


# ---------------------------------------------------------------------------
# The preprocessor
# ---------------------------------------------------------------------------


class _Directive:
    """A ``DIRECTIVE`` token taken apart: its name, where its argument starts and ends."""

    __slots__ = ("end", "file", "head", "keyword", "raw", "rest", "shown", "token")

    def __init__(self, token: Token) -> None:
        self.token = token
        self.raw: str = token.value[0]
        #: offset where the text after the directive name starts, and of the line end
        self.rest: int = token.value[1]
        self.end = token.span.end
        self.file = token.span.file
        #: the directive as written, ``#!ifdef`` or ``!!ifdef``
        self.keyword = token.text[: self.rest - token.span.start]
        first = token.text.split("\n", 1)[0].rstrip(" \t\r\\")
        #: the first line of the directive, without trailing blanks
        self.head = Span(self.file, token.span.start, token.span.start + len(first))
        #: the directive for messages, blanks normalised: ``#!ifdef WITH_NAT``
        self.shown = " ".join([self.keyword, *first[len(self.keyword) :].split()])


def explain_skipped_define(
    diagnostic: Diagnostic, skipped: Mapping[str, list[SkippedDefine]]
) -> Diagnostic:
    """A syntax error whose offending token is a name that only a skipped
    ``#!define`` defines, told as such: where the define is, which condition kept it
    out, and the ``-D`` that brings it in (Kamailio's ``-A``). The stock config with
    ``WITH_AUTH`` but without ``WITH_MYSQL`` meets exactly this: ``DBURL``."""
    span = diagnostic.span
    if span is None or span.origin is not None:
        return diagnostic
    name = span.file.text[span.start : span.end]
    places = skipped.get(name)
    if not places or _NAME.fullmatch(name) is None:
        return diagnostic
    first = places[0]
    cond_line = first.cond_span.use_site().line
    notes = [
        f"`{name}` is defined only when {first.requirement()} "
        f"(`{first.shown}` at line {cond_line}), which does not hold here"
    ]
    if len(places) > 1:
        others = "; ".join(
            f"when {p.requirement()} (line {p.span.use_site().line})" for p in places[1:4]
        )
        notes.append(f"it is also defined {others}")
    keyword, _, subject = first.shown.partition(" ")
    if DIRECTIVES.get(keyword[2:]) == "ifdef" and not first.in_else:
        help_text = (
            f"define `{subject}`: `-D {subject}` (Kamailio: `-A {subject}`), or "
            f"`#!define {subject}` near the top of the file"
        )
    else:
        help_text = f"define `{name}` before this line, or change the condition"
    labels = (
        *diagnostic.labels,
        Label(first.span, f"`{name}` defined here, in a skipped block"),
    )
    return replace(
        diagnostic,
        labels=labels,
        notes=(*diagnostic.notes, *notes),
        help=diagnostic.help or help_text,
    )


@dataclass
class _Cond:
    """One open ``#!if...``: where it is, and which branch is being read."""

    span: Span
    #: the directive as written (``#!ifdef WITH_NAT``), for messages
    shown: str
    #: the enclosing branch is being emitted
    parent_taking: bool
    #: the current branch's condition holds (flipped by ``#!else``)
    branch: bool
    else_span: Span | None = None

    @property
    def taking(self) -> bool:
        return self.parent_taking and self.branch


class _AbortError(Exception):
    """Raised when the output limit is reached: preprocessing stops there."""


@dataclass
class _Preprocessor:
    sink: DiagnosticSink
    env: Mapping[str, str]
    defines: dict[str, Define] = field(default_factory=dict)
    out: list[Token] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)
    compat: str = "max"
    substs: list[SubstRule] = field(default_factory=list)
    conds: list[_Cond] = field(default_factory=list)
    #: real paths of the files being read, outermost first (recursion detection)
    include_stack: list[str] = field(default_factory=list)
    #: bodies whose lexing reported a problem: re-lexed at each use (id(define) -> range)
    unclean_bodies: dict[int, tuple[SourceFile, int, int]] = field(default_factory=dict)
    #: ``loadmodule`` watcher: 0 idle, 1 after the keyword, 2 after ``(``
    _module_state: int = 0
    _keywords: frozenset[str] = field(default_factory=core_keywords)
    skipped_defines: dict[str, list[SkippedDefine]] = field(default_factory=dict)

    # -- helpers -----------------------------------------------------------------

    def _taking(self) -> bool:
        return not self.conds or self.conds[-1].taking

    def _error(
        self,
        code: str,
        message: str,
        span: Span,
        label: str,
        *,
        notes: tuple[str, ...] = (),
        help: str | None = None,
        labels: tuple[Label, ...] = (),
    ) -> None:
        self.sink.emit(
            Diagnostic.error(code, message, span, label, notes=notes, help=help, labels=labels)
        )

    def _warning(
        self,
        code: str,
        message: str,
        span: Span,
        label: str,
        *,
        notes: tuple[str, ...] = (),
        help: str | None = None,
        labels: tuple[Label, ...] = (),
    ) -> None:
        self.sink.emit(
            Diagnostic.warning(code, message, span, label, notes=notes, help=help, labels=labels)
        )

    def _lex_body(
        self, file: SourceFile, start: int, end: int, origin: Origin | None, sink: DiagnosticSink
    ) -> tuple[Token, ...]:
        return tuple(Lexer(file, sink, start=start, end=end, origin=origin, directives=False))

    def add_define(
        self, name: str, file: SourceFile, start: int, end: int, *, span: Span | None, kind: str
    ) -> Define:
        """Lex a body and store the define (replacing any previous one)."""
        scratch = DiagnosticSink()
        tokens = self._lex_body(file, start, end, None, scratch)
        text = _CONTINUATION.sub("", file.text[start:end]).strip()
        define = Define(name, tokens, text, span, kind)
        if scratch.diagnostics:
            self.unclean_bodies[id(define)] = (file, start, end)
        else:
            self.unclean_bodies.pop(id(define), None)
        self.defines[name] = define
        return define

    def add_synthetic(
        self, name: str, value: str, span: Span | None, kind: str, where: str
    ) -> None:
        file = SourceFile(where, value)
        self.add_define(name, file, 0, len(value), span=span, kind=kind)

    # -- token output --------------------------------------------------------------

    def _push(self, token: Token) -> None:
        """Append one final token: apply subst rules and watch for ``loadmodule``."""
        kind = token.kind
        if self.substs and kind in ("STRING", "PVAR"):
            token = self._subst_token(token)
        if kind in ("LOADMODULE", "LOADMODULEX"):
            self._module_state = 1
        elif self._module_state:
            if kind == "LPAR" and self._module_state == 1:
                self._module_state = 2
            else:
                if kind == "STRING":
                    self._module_loaded(token)
                self._module_state = 0
        self.out.append(token)
        if len(self.out) > MAX_OUTPUT_TOKENS:
            self._error(
                "E0122",
                "the preprocessed config is too large",
                token.span,
                f"more than {MAX_OUTPUT_TOKENS} tokens at this point",
                notes=("preprocessing stopped here",),
            )
            raise _AbortError

    def _subst_token(self, token: Token) -> Token:
        if token.kind == "STRING":
            value = str(token.value)
            new = self._run_substs(value)
            if new == value:
                return token
            return Token("STRING", _quote(new), new, token.span, token.line_start)
        # ``$name`` is an AVP-or-PV word in max/ser mode, and Kamailio leaves those alone
        if self.compat != "kamailio" and "(" not in token.text:
            return token
        new = self._run_substs(token.text)
        if new == token.text:
            return token
        return Token("PVAR", new, new, token.span, token.line_start)

    def _run_substs(self, value: str) -> str:
        for rule in self.substs:
            value = rule.apply(value)
        return value

    def _module_loaded(self, token: Token) -> None:
        value = str(token.value)
        if "$" in value:  # loadmodulex with variables: not known until run time
            return
        name = value.rsplit("/", 1)[-1]
        if name.endswith(".so"):
            name = name[:-3]
        if name and f"MOD_{name}" not in self.defines:
            self.add_synthetic(f"MOD_{name}", "", None, "predefined", "<loadmodule>")

    def emit(self, token: Token, lexer: Lexer) -> None:
        """Handle one token read from a file (not a directive)."""
        kind = token.kind
        if kind == "ID":
            define = self.defines.get(token.text)
            if define is not None and token.text not in self._keywords:
                self.expand(define, token)
                return
        elif kind == "INCLUDE":
            self.include_token(token, lexer.next(), lexer)
            return
        self._push(token)

    # -- define expansion --------------------------------------------------------

    def _body(self, define: Define, use: Token) -> Iterator[Token]:
        origin = Origin("define", define.name, use.span, define.span)
        unclean = self.unclean_bodies.get(id(define))
        if unclean is not None:
            file, start, end = unclean
            yield from Lexer(file, self.sink, start=start, end=end, origin=origin, directives=False)
            return
        first = True
        for tok in define.tokens:
            span = Span(tok.span.file, tok.span.start, tok.span.end, origin)
            yield Token(tok.kind, tok.text, tok.value, span, use.line_start and first)
            first = False

    def expand(self, define: Define, use: Token) -> None:
        """Replace ``use`` by the body of ``define``, expanding nested names.

        Iterative (a stack of body iterators), so a long chain of defines cannot
        exhaust Python's recursion limit; a name already being expanded is reported
        (E0122) instead of looping, and the output of one use is bounded (also E0122).
        """
        stack: list[tuple[str, Iterator[Token]]] = [(define.name, self._body(define, use))]
        active = [define.name]
        produced = 0
        while stack:
            token = next(stack[-1][1], None)
            if token is None:
                stack.pop()
                active.pop()
                continue
            kind = token.kind
            if kind == "ID":
                inner = self.defines.get(token.text)
                if inner is not None and token.text not in self._keywords:
                    if inner.name in active:
                        self._recursive(token, active)
                        continue
                    if len(stack) >= MAX_EXPANSION_DEPTH:
                        self._error(
                            "E0122",
                            "define expansion nested too deeply",
                            token.span,
                            f"more than {MAX_EXPANSION_DEPTH} nested defines",
                        )
                        return
                    stack.append((inner.name, self._body(inner, token)))
                    active.append(inner.name)
                    continue
            elif kind == "INCLUDE":
                self.include_token(token, next(stack[-1][1], None), None)
                continue
            produced += 1
            if produced > MAX_EXPANSION_TOKENS:
                self._error(
                    "E0122",
                    f"`{define.name}` expands to too many tokens",
                    use.span,
                    f"more than {MAX_EXPANSION_TOKENS} tokens",
                    notes=("the expansion was cut off here",),
                )
                return
            self._push(token)

    def _recursive(self, token: Token, active: list[str]) -> None:
        chain = " -> ".join(f"`{n}`" for n in [*active[active.index(token.text) :], token.text])
        self._error(
            "E0122",
            f"recursive expansion of `{token.text}`",
            token.span,
            f"`{token.text}` expands to itself",
            notes=(f"expansion chain: {chain}",),
            help="a define cannot use its own name; give one of them a different name",
        )

    # -- files ----------------------------------------------------------------------

    def run_file(self, file: SourceFile) -> None:
        """Read one file's tokens into the output, following its directives."""
        self.files.append(file)
        lexer = Lexer(file, self.sink)
        while True:
            token = lexer.next() if self._taking() else lexer.skip_to_directive()
            if token is None:
                return
            if token.kind == "DIRECTIVE":
                self.directive(token, lexer)
            else:
                self.emit(token, lexer)

    def include_token(self, keyword: Token, name: Token | None, lexer: Lexer | None) -> None:
        """``include_file "x"``: ``name`` is the token after the keyword.

        Kamailio wants the quoted name on the same line; anything else is reported
        and dropped (a directive line that follows is still interpreted).
        """
        same_line = name is not None and name.span.line == keyword.span.line
        if name is None or not same_line or name.kind != "STRING" or name.text[:1] not in "\"'":
            where = name.span if name is not None and same_line else keyword.span
            self._error(
                "E0115",
                f"`{keyword.text}` needs a quoted file name",
                where,
                "expected a file name in double quotes",
                help=f'write it as `{keyword.text} "file.cfg"`',
            )
            if name is not None and lexer is not None:
                if name.kind == "DIRECTIVE":
                    self.directive(name, lexer)
                elif same_line:  # drop the rest of the line (`include_file a.cfg`)
                    newline = lexer.text.find("\n", name.span.end, lexer.end)
                    lexer.pos = lexer.end if newline == -1 else newline
            return
        self.include(keyword.text, keyword.span, name)

    def include(self, directive: str, directive_span: Span, name: Token) -> None:
        value = self._run_substs(str(name.value)) if self.substs else str(name.value)
        required = directive == "include_file"
        site = directive_span.use_site()
        base = Path(site.file.path).parent
        candidates = [Path(value)]
        if not Path(value).is_absolute():
            candidates.append(base / value)
        found: Path | None = None
        for candidate in candidates:
            try:
                is_file = candidate.is_file()
            except (OSError, ValueError):  # a name too long, a NUL in it: no such file
                is_file = False
            if is_file:
                found = candidate
                break
        if found is None:
            if required:
                tried = ", ".join(f"`{c}`" for c in dict.fromkeys(str(c) for c in candidates))
                self._error(
                    "E0112",
                    f"included file `{value}` not found",
                    name.span,
                    "no such file",
                    notes=(f"tried {tried}",),
                    help="use `import_file` if the file is optional "
                    "(a missing `import_file` is skipped)",
                )
            return
        real = os.path.realpath(found)
        if real in self.include_stack:
            chain = " -> ".join(
                f"`{Path(p).name}`" for p in self.include_stack[self.include_stack.index(real) :]
            )
            self._error(
                "E0117",
                f"recursive include of `{value}`",
                name.span,
                "this file is already being read",
                notes=(f"include chain: {chain} -> `{Path(real).name}`",),
                help="remove one of the includes",
            )
            return
        if len(self.include_stack) > MAX_INCLUDE_DEPTH:
            self._error(
                "E0117",
                "includes nested too deeply",
                name.span,
                f"more than {MAX_INCLUDE_DEPTH} nested `include_file`s",
                notes=(f"Kamailio stops at {MAX_INCLUDE_DEPTH} nested includes",),
            )
            return
        try:
            text = found.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            if required:
                self._error(
                    "E0112",
                    f"included file `{value}` cannot be read",
                    name.span,
                    exc.strerror or "read error",
                )
            return
        file = SourceFile(str(found), text, Origin("include", value, directive_span.to(name.span)))
        self.include_stack.append(real)
        try:
            self.run_file(file)
        finally:
            self.include_stack.pop()

    # -- directives -----------------------------------------------------------------

    def directive(self, token: Token, lexer: Lexer) -> None:
        """Interpret one ``#!...`` line (only the conditionals while in a false branch)."""
        d = _Directive(token)
        name = DIRECTIVES.get(d.raw)
        if name in ("else", "endif") and self._trailing_text(d):
            return
        if not self._taking():
            if name in ("ifdef", "ifndef", "ifexp"):
                self.conds.append(_Cond(d.head, d.shown, False, False))
            elif name in ("else", "endif"):
                self._else_endif(name, d)
            elif name in ("define", "trydef", "redef"):
                self._skipped_define(d)
            return
        if name is None:
            self._unknown(d)
            return
        self._handlers[name](self, d)

    def _skipped_define(self, d: _Directive) -> None:
        """Remember a define in a block the conditionals skip, for the error a use of
        its name gets later (a stock config used without the ``-D`` it needs)."""
        text = d.file.text
        begin = d.rest
        while begin < d.end and text[begin] in " \t":
            begin += 1
        m = _NAME.match(text, begin, d.end)
        blocking = next((c for c in self.conds if c.parent_taking and not c.branch), None)
        if m is None or blocking is None:
            return
        self.skipped_defines.setdefault(m.group(), []).append(
            SkippedDefine(
                Span(d.file, m.start(), m.end()),
                blocking.shown,
                blocking.span,
                blocking.else_span is not None,
            )
        )

    def _trailing_text(self, d: _Directive) -> bool:
        """``#!endif // WITH_X``: Kamailio does not see an ``#!endif`` there (E0115)."""
        tail = d.file.text[d.rest : d.end]
        trailing = tail.strip(" \t\r\n\\")
        if not trailing:
            return False
        start = d.rest + tail.index(trailing)
        self._warning(
            "W0115",
            f"text after `{d.keyword}`: this line is not an `{d.keyword}`",
            Span(d.file, start, start + len(trailing)),
            "the directive must be alone on its line",
            notes=(f"Kamailio ignores an `{d.keyword}` line that has anything after it",),
            help=f"put `{d.keyword}` alone on its line (a comment can go on the line above)",
        )
        return True

    def _unknown(self, d: _Directive) -> None:
        if not d.raw or not d.raw[0].isalpha():
            return  # `#!/usr/sbin/kamailio`, `#!!!`: comments for Kamailio too
        close = difflib.get_close_matches(d.raw, list(DIRECTIVES), n=1, cutoff=0.6)
        self._warning(
            "W0116",
            f"unknown directive `{d.keyword}`",
            Span(d.file, d.token.span.start, d.rest),
            "not a preprocessor directive",
            notes=("Kamailio treats this line as a comment",),
            help=f"did you mean `{d.keyword[:2]}{close[0]}`?" if close else None,
        )

    def _name(self, d: _Directive) -> tuple[str, Span, int] | None:
        """The name after a directive; reports E0115 when it is missing or has a ``-``."""
        text, end = d.file.text, d.end
        begin = d.rest
        while begin < end and text[begin] in " \t":
            begin += 1
        m = _NAME.match(text, begin, end)
        if m is None:
            self._error(
                "E0115",
                f"`{d.keyword}` needs a name",
                d.head,
                f"expected a name after `{d.keyword}`",
                help=f"write `{d.keyword} NAME`",
            )
            return None
        if m.end() < end and text[m.end()] == "-":
            bad = re.compile(r"[A-Za-z0-9_-]+").match(text, m.start(), end)
            full = bad.group() if bad else m.group()
            self._error(
                "E0115",
                f"`-` in the name `{full}`",
                Span(d.file, m.end(), m.end() + 1),
                "a define name cannot contain `-`",
                help=f"use `_` instead: `{full.replace('-', '_')}`",
            )
            return None
        return m.group(), Span(d.file, m.start(), m.end()), m.end()

    # define / trydef / redef ----------------------------------------------------------

    def _d_define(self, d: _Directive) -> None:
        parsed = self._name(d)
        if parsed is None:
            return
        name, span, after = parsed
        previous = self.defines.get(name)
        mode = DIRECTIVES[d.raw]
        if previous is not None and mode == "trydef":
            return
        if previous is not None and mode == "define":
            self._already_defined(name, span, previous)
            return
        text = d.file.text
        while after < d.end and text[after] in " \t":
            after += 1
        self.add_define(name, d.file, after, d.end, span=span, kind="define")

    def _already_defined(self, name: str, span: Span, previous: Define) -> None:
        labels: tuple[Label, ...] = ()
        notes: tuple[str, ...] = ()
        if previous.span is not None:
            labels = (Label(previous.span, "first defined here"),)
        elif previous.kind == "cmdline":
            notes = (f"`{name}` is defined on the command line (`-D {name}`)",)
        else:
            notes = (f"`{name}` is predefined",)
        self._error(
            "E0113",
            f"`{name}` is already defined",
            span,
            f"`{name}` defined again here",
            labels=labels,
            notes=notes,
            help="use `#!redefine` to replace the value, or `#!trydef` to keep the first one",
        )

    def _d_undef(self, d: _Directive) -> None:
        parsed = self._name(d)
        if parsed is None:
            return
        name, span, _ = parsed
        if self.defines.pop(name, None) is None and DIRECTIVES[d.raw] == "undef":
            self._warning(
                "W0114",
                f"`{name}` is not defined",
                span,
                "nothing to undefine",
                notes=("Kamailio ignores this line",),
                help=f"use `#!tryundef {name}` when the name may be undefined",
            )

    # conditionals ------------------------------------------------------------------

    def _d_ifdef(self, d: _Directive) -> None:
        parsed = self._name(d)
        if parsed is None:
            # still open a block, so that its `#!endif` does not cascade into E0111
            self.conds.append(_Cond(d.head, d.shown, True, False))
            return
        name, _, after = parsed
        text = d.file.text
        tail = text[after : d.end]
        trailing = tail.strip(" \t\r\n\\")
        if trailing:
            start = after + tail.index(trailing)
            self._warning(
                "W0115",
                f"unexpected text after `{d.keyword} {name}`",
                Span(d.file, start, start + len(trailing)),
                "ignored",
                notes=(f"`{d.keyword}` tests one name; Kamailio ignores the rest of the line",),
                help="remove it, or move it to a comment on its own line",
            )
        want = DIRECTIVES[d.raw] == "ifdef"
        shown = f"{d.keyword} {name}"
        self.conds.append(_Cond(d.head, shown, True, (name in self.defines) == want))

    def _not_in_56(self, d: _Directive) -> None:
        """``#!ifexp``/``#!defexp`` came with Kamailio 6: 5.6 reads them as comments."""
        self._error(
            "E0209",
            f"`{d.keyword}` is not supported by Kamailio 5.6",
            Span(d.file, d.token.span.start, d.rest),
            "Kamailio 5.6 reads this line as a comment",
            help="use `#!ifdef`/`#!ifndef` on names defined with `#!define` or `-D`",
        )

    def _d_ifexp(self, d: _Directive) -> None:
        self._not_in_56(d)
        value = self._expression(d, d.rest)
        taken = value is not None and _truthy(value)
        self.conds.append(_Cond(d.head, d.shown, True, taken))

    def _d_else(self, d: _Directive) -> None:
        self._else_endif("else", d)

    def _d_endif(self, d: _Directive) -> None:
        self._else_endif("endif", d)

    def _else_endif(self, name: str, d: _Directive) -> None:
        head = d.head
        if not self.conds:
            report = self._error if name == "endif" else self._warning
            report(
                "E0111" if name == "endif" else "W0111",
                f"`{d.keyword}` without a matching `#!ifdef`",
                head,
                "no `#!ifdef`, `#!ifndef` or `#!ifexp` is open here",
                notes=() if name == "endif" else ("Kamailio ignores this line",),
                help="remove it, or add the `#!ifdef` it belongs to",
            )
            return
        cond = self.conds[-1]
        if name == "endif":
            self.conds.pop()
            return
        if cond.else_span is not None and cond.parent_taking:
            self._warning(
                "W0121",
                f"second `{d.keyword}` for `{cond.shown}`",
                head,
                "another `#!else`",
                labels=(Label(cond.else_span, "first `#!else`"), Label(cond.span, "the block")),
                notes=("Kamailio flips the condition again at each `#!else`",),
                help="remove one `#!else`, or close the block with `#!endif` first",
            )
        if cond.else_span is None:
            cond.else_span = head
        cond.branch = not cond.branch

    # expressions ---------------------------------------------------------------------

    def _lookup(self, name: str) -> Value:
        define = self.defines.get(name)
        if define is None:
            return 0
        text = define.text
        if not text:
            return 1
        if re.fullmatch(r"[-+]?[0-9]+", text):
            return int(text)
        if re.fullmatch(r"0[xX][0-9A-Fa-f]+", text):
            return int(text, 16)
        if len(define.tokens) == 1 and define.tokens[0].kind == "STRING":
            return str(define.tokens[0].value)
        return text

    def _expression(self, d: _Directive, start: int) -> Value | None:
        """Evaluate ``text[start:d.end]``; reports E0119 at the offending character."""
        raw = d.file.text[start : d.end]
        # continuation backslashes become blanks so offsets stay aligned with the file
        text = re.sub(r"\\(?=\r?\n)", " ", raw)
        try:
            return evaluate(text, self._lookup)
        except ExprError as exc:
            begin = start + min(exc.offset, len(raw))
            if begin >= d.end:  # error at the end: point at the last character
                begin = max(d.token.span.start, d.end - 1)
            stop = max(begin + 1, min(begin + exc.length, d.end))
            self._error(
                "E0119",
                f"invalid expression in `{d.keyword}`",
                Span(d.file, begin, stop),
                exc.message,
                notes=(
                    "expressions use integers, quoted strings, define names and the "
                    "operators `+ - * / % ** << >> & | ^ ~ ! && || == != < <= > >=`",
                ),
            )
            return None

    def _d_defexp(self, d: _Directive) -> None:
        self._not_in_56(d)
        parsed = self._name(d)
        if parsed is None:
            return
        name, span, after = parsed
        if name in self.defines:
            self._already_defined(name, span, self.defines[name])
            return
        value = self._expression(d, after)
        if value is None:
            return
        text = _quote(str(value)) if d.raw == "defexps" else str(value)
        self.add_synthetic(name, text, span, "exp", f"<{d.keyword} {name}>")

    # environment ---------------------------------------------------------------------

    def _d_defenv(self, d: _Directive) -> None:
        """``#!defenv NAME=VAR`` or ``#!defenv VAR``; ``s`` quotes, ``try`` allows unset."""
        parsed = self._name(d)
        if parsed is None:
            return
        name, span, after = parsed
        strict = not d.raw.startswith("try")
        var, var_span = name, span
        text = d.file.text
        if after < d.end and text[after] == "=":
            m = _NAME.match(text, after + 1, d.end)
            if m is None:
                self._error(
                    "E0115",
                    f"`{d.keyword} {name}=` needs an environment variable name",
                    Span(d.file, after, after + 1),
                    "expected a variable name after `=`",
                    help=f"write `{d.keyword} {name}=VARIABLE`",
                )
                return
            var, var_span = m.group(), Span(d.file, m.start(), m.end())
        value = self.env.get(var)
        if value is None:
            if strict:
                self._error(
                    "E0120",
                    f"environment variable `{var}` is not set",
                    var_span,
                    "not set in the environment",
                    help=f"set `{var}`, or use `{d.keyword[:2]}try{d.raw}` to skip the define "
                    "when it is unset",
                )
            return
        if name in self.defines:
            if strict:
                self._already_defined(name, span, self.defines[name])
            return
        quoted = d.raw.endswith("s")
        self.add_synthetic(name, _quote(value) if quoted else value, span, "env", f"<env {var}>")

    # subst -----------------------------------------------------------------------------

    def _rule(self, d: _Directive) -> tuple[SubstRule, Token] | None:
        """The quoted rule of ``#!subst``/``#!substdef``, parsed (E0115, E0118)."""
        tokens = self._lex_body(d.file, d.rest, d.end, None, self.sink)
        if not tokens or any(t.kind != "STRING" for t in tokens):
            self._error(
                "E0115",
                f"`{d.keyword}` needs a quoted rule",
                tokens[0].span if tokens else d.head,
                'expected a rule in double quotes, such as `"/regex/replacement/g"`',
                help=f'write `{d.keyword} "/regex/replacement/flags"`',
            )
            return None
        rule_token = tokens[0]
        if len(tokens) > 1:  # adjacent strings are concatenated
            span = Span(d.file, tokens[0].span.start, tokens[-1].span.end)
            value = "".join(str(t.value) for t in tokens)
            rule_token = Token("STRING", span.text, value, span)
        rule = parse_subst(str(rule_token.value))
        if isinstance(rule, str):
            self._error(
                "E0118",
                "invalid subst rule",
                rule_token.span,
                rule,
                notes=('the form is `"/regex/replacement/flags"` (any separator; flags g, i, s)',),
            )
            return None
        return rule, rule_token

    def _d_subst(self, d: _Directive) -> None:
        parsed = self._rule(d)
        if parsed is not None:
            self.substs.append(parsed[0])

    def _d_substdef(self, d: _Directive) -> None:
        """A subst rule plus ``#!define <regex> <replacement>`` (quoted for ``substdefs``)."""
        parsed = self._rule(d)
        if parsed is None:
            return
        rule, rule_token = parsed
        self.substs.append(rule)
        name = rule.pattern_text
        if name in self.defines:
            self._already_defined(name, rule_token.span, self.defines[name])
            return
        value = rule.replacement_text
        text = _quote(value) if d.raw == "substdefs" else value
        self.add_synthetic(name, text, rule_token.span, "substdef", f"<{d.keyword} {name}>")

    # includes and markers --------------------------------------------------------------

    def _d_include(self, d: _Directive) -> None:
        tokens = self._lex_body(d.file, d.rest, d.end, None, self.sink)
        keyword = Token("INCLUDE", d.raw, d.raw, d.head)
        self.include_token(keyword, tokens[0] if tokens else None, None)

    def _d_compat(self, d: _Directive) -> None:
        self.compat = COMPAT_MARKERS[d.raw]

    _handlers: ClassVar[dict[str, Callable[[_Preprocessor, _Directive], None]]] = {
        "define": _d_define,
        "trydef": _d_define,
        "redef": _d_define,
        "undef": _d_undef,
        "tryundef": _d_undef,
        "ifdef": _d_ifdef,
        "ifndef": _d_ifdef,
        "ifexp": _d_ifexp,
        "else": _d_else,
        "endif": _d_endif,
        "defexp": _d_defexp,
        "defexps": _d_defexp,
        "defenv": _d_defenv,
        "defenvs": _d_defenv,
        "trydefenv": _d_defenv,
        "trydefenvs": _d_defenv,
        "subst": _d_subst,
        "substdef": _d_substdef,
        "substdefs": _d_substdef,
        "include_file": _d_include,
        "import_file": _d_include,
        "compat": _d_compat,
    }

    # -- end of input ------------------------------------------------------------------

    def finish(self) -> None:
        open_count = len(self.conds)
        for cond in reversed(self.conds):
            notes = []
            if open_count > 1:
                notes.append(f"{open_count} conditional blocks are open at the end of the input")
            self._error(
                "E0110",
                f"unclosed `{cond.shown}`",
                cond.span,
                "this block is never closed",
                notes=tuple(notes),
                help="add `#!endif` after the last line the condition covers",
            )
        self.conds.clear()


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def _setup(
    sink: DiagnosticSink,
    defines: Mapping[str, str | None] | None,
    env: Mapping[str, str] | None,
) -> _Preprocessor:
    pre = _Preprocessor(sink, os.environ if env is None else env)
    for name in PREDEFINED:
        pre.add_synthetic(name, "", None, "predefined", "<predefined>")
    for name, value in (defines or {}).items():
        pre.add_synthetic(name, value or "", None, "cmdline", "<command-line>")
    return pre


def _run(pre: _Preprocessor, main: SourceFile) -> Preprocessed:
    pre.include_stack.append(
        os.path.realpath(main.path) if not main.path.startswith("<") else main.path
    )
    try:
        pre.run_file(main)
    except _AbortError:
        pre.conds.clear()
    pre.finish()
    return Preprocessed(pre.out, pre.defines, pre.files, pre.compat, pre.skipped_defines)


def preprocess_text(
    text: str,
    path: str,
    sink: DiagnosticSink,
    *,
    defines: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Preprocessed:
    """Preprocess ``text`` as the contents of ``path`` (includes are read from disk)."""
    pre = _setup(sink, defines, env)
    return _run(pre, SourceFile(str(path), text))


def preprocess(
    path: str | Path,
    sink: DiagnosticSink,
    *,
    defines: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Preprocessed:
    """Read ``path`` and preprocess it; a file that cannot be read is reported (E0112)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        sink.emit(
            Diagnostic.error(
                "E0112",
                f"cannot read `{path}`: {exc.strerror or exc}",
                None,
            )
        )
        return Preprocessed([], {}, [SourceFile(str(path), "")], "max")
    return preprocess_text(text, str(path), sink, defines=defines, env=env)


def dump_tokens(pre: Preprocessed) -> str:
    """The preprocessed tokens as text: one source line per output line, with its origin.

    Tokens are grouped by the line the user wrote them on (a define's body is shown
    on the line of its use) and joined with single spaces.
    """
    lines: list[str] = []
    current: tuple[SourceFile, int] | None = None
    words: list[str] = []
    for token in pre.tokens:
        site = token.span.use_site()
        key = (site.file, site.line)
        if key != current:
            if current is not None:
                lines.append(f"{' '.join(words)}  # {current[0].display}:{current[1]}")
            current, words = key, []
        words.append(token.text)
    if current is not None:
        lines.append(f"{' '.join(words)}  # {current[0].display}:{current[1]}")
    return "\n".join(lines) + ("\n" if lines else "")
