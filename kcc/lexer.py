"""The Kamailio config lexer: text -> tokens with spans.

Kamailio's own lexer (flex) also runs the preprocessor and switches start conditions
for route names and event route names; kcc keeps the same shape: this module turns
characters into :class:`Token` objects, recognises directive lines (``#!define`` ...)
as whole-line ``DIRECTIVE`` tokens, and leaves their meaning to
:mod:`kcc.preprocess`, which drives it. Expanding ``#!define`` names is therefore
token-aware by construction: a name inside a string, a comment or ``$pv(...)`` is
never an ``ID`` token.

Token kinds are the terminal names of ``grammar/kamailio.lark``. ``Token.text`` is
the source as written; ``Token.value`` is the decoded value (an ``int`` for numbers
and booleans, the unescaped text for strings).

Lexical errors are reported to the sink and the lexer recovers, so one run reports
every bad character, typographic quote and unterminated string.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kcc.diagnostics import Diagnostic, DiagnosticSink
from kcc.source import Origin, SourceFile, Span

__all__ = ["KEYWORDS", "Lexer", "Token", "decode_dq_string", "tokenize"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: Any
    span: Span
    #: True when only whitespace precedes the token on its source line
    line_start: bool = False

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.text!r}, {self.span.location()})"


#: reserved words -> token kind. Everything else that looks like a name is an ``ID``.
KEYWORDS: dict[str, str] = {
    "if": "IF",
    "else": "ELSE",
    "switch": "SWITCH",
    "case": "CASE",
    "default": "DEFAULT",
    "while": "WHILE",
    "break": "BREAK",
    "return": "RETURN",
    "exit": "EXIT",
    "drop": "DROP",
    "route": "ROUTE",
    "request_route": "REQUEST_ROUTE",
    "failure_route": "FAILURE_ROUTE",
    "branch_route": "BRANCH_ROUTE",
    "onreply_route": "ONREPLY_ROUTE",
    "reply_route": "REPLY_ROUTE",
    "onsend_route": "ONSEND_ROUTE",
    "event_route": "EVENT_ROUTE",
    "loadmodule": "LOADMODULE",
    "loadmodulex": "LOADMODULEX",
    "loadpath": "LOADPATH",
    "mpath": "LOADPATH",
    "modparam": "MODPARAM",
    "modparamx": "MODPARAMX",
    "cfgengine": "CFGENGINE",
    "flags": "FLAGS",
    "bool": "FLAGS",
    "avpflags": "AVPFLAGS",
    "desc": "DESC",
    "descr": "DESC",
    "description": "DESC",
    "and": "OP_AND",
    "or": "OP_OR",
    "not": "OP_NOT",
    "mod": "OP_MOD",
    "eq": "OP_STREQ",
    "ne": "OP_STRNE",
    "ieq": "OP_INTEQ",
    "ine": "OP_INTNE",
    "defined": "DEFINED",
}

#: words that are numbers in Kamailio's lexer
BOOLEANS: dict[str, int] = {
    "yes": 1,
    "true": 1,
    "on": 1,
    "enable": 1,
    "no": 0,
    "false": 0,
    "off": 0,
    "disable": 0,
}

#: words containing ``:`` that Kamailio lexes as one keyword (``msg:len``, ``uri:host``)
COLON_WORDS = ("msg:len", "uri:host", "uri:port")

# Operators, longest first.
OPERATORS: tuple[tuple[str, str], ...] = (
    ("(int)", "INTCAST"),
    ("(str)", "STRCAST"),
    ("<<", "LSHIFT"),
    (">>", "RSHIFT"),
    ("==", "EQEQ"),
    ("!=", "NOTEQ"),
    ("=~", "MATCH"),
    ("<=", "LTE"),
    (">=", "GTE"),
    ("&&", "OP_AND"),
    ("||", "OP_OR"),
    ("+=", "PLUSEQ"),
    ("=", "EQUAL"),
    ("<", "LT"),
    (">", "GT"),
    ("+", "PLUS"),
    ("-", "MINUS"),
    ("*", "STAR"),
    ("/", "SLASH"),
    ("&", "AMP"),
    ("|", "VBAR"),
    ("^", "CARET"),
    ("~", "TILDE"),
    ("!", "OP_NOT"),
    ("(", "LPAR"),
    (")", "RPAR"),
    ("{", "LBRACE"),
    ("}", "RBRACE"),
    ("[", "LSQB"),
    ("]", "RSQB"),
    (";", "SEMICOLON"),
    (",", "COMMA"),
    (":", "COLON"),
    (".", "DOT"),
)

#: route block keywords after which ``[`` opens a route name
ROUTE_BLOCKS = frozenset(
    {
        "ROUTE",
        "REQUEST_ROUTE",
        "FAILURE_ROUTE",
        "BRANCH_ROUTE",
        "ONREPLY_ROUTE",
        "REPLY_ROUTE",
        "ONSEND_ROUTE",
    }
)

TYPOGRAPHIC_DOUBLE = {"\u201c": "\u201d", "\u201e": "\u201d", "\u00ab": "\u00bb"}
TYPOGRAPHIC_SINGLE = {"\u2018": "\u2019", "\u201a": "\u2019"}
TYPOGRAPHIC_CLOSERS = set(TYPOGRAPHIC_DOUBLE.values()) | set(TYPOGRAPHIC_SINGLE.values())

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
_OCT = re.compile(r"0[0-7]+")
_BIN = re.compile(r"[01]+b")
_DEC = re.compile(r"0|[1-9][0-9]*")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(?![0-9A-Za-z_.])")
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f:.]+")
_EVENT_NAME = re.compile(r"[A-Za-z][0-9A-Za-z_-]*(?::[A-Za-z][0-9A-Za-z_-]*)+")
_PV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SELECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE_NAME = re.compile(r"[A-Za-z_]+")
_DIGITS = frozenset("0123456789")
_ID_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _quote(text: str) -> str:
    """Code in backticks, or in single quotes when it contains a backtick itself."""
    return f"'{text}'" if "`" in text else f"`{text}`"


def decode_dq_string(body: str) -> tuple[str, list[int]]:
    """Unescape the inside of a double-quoted string.

    Returns the value and, for each character of it, its offset inside ``body``.
    Kamailio's escapes: ``\\n \\r \\t \\a \\" \\\\``, ``\\xHH``, ``\\NNN`` (2-3 octal
    digits), backslash-newline is removed. Any other backslash is kept as written,
    so regular expressions such as ``"^(\\+|00)"`` keep their meaning.
    """
    out: list[str] = []
    offsets: list[int] = []
    i, n = 0, len(body)
    simple = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", '"': '"', "\\": "\\"}
    while i < n:
        c = body[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            offsets.append(i)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            offsets.append(i)
            i += 2
        elif nxt == "\n":
            i += 2
        elif nxt == "\r" and i + 2 < n and body[i + 2] == "\n":
            i += 3
        elif nxt in "xX" and re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 : i + 4]):
            digits = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 : i + 4])
            assert digits is not None
            out.append(chr(int(digits.group(), 16)))
            offsets.append(i)
            i += 2 + len(digits.group())
        elif re.match(r"[0-7]{2,3}", body[i + 1 : i + 4]):
            digits = re.match(r"[0-7]{2,3}", body[i + 1 : i + 4])
            assert digits is not None
            out.append(chr(int(digits.group(), 8) & 0xFF))
            offsets.append(i)
            i += 1 + len(digits.group())
        else:
            out.append(c)
            offsets.append(i)
            i += 1
    return "".join(out), offsets


class Lexer:
    """Scans ``file.text[start:end]``; :meth:`next` returns one token at a time.

    ``origin`` is attached to every span produced (define bodies are lexed with the
    expansion as origin). The lexer never raises on bad input: it reports to
    ``sink`` and goes on.
    """

    def __init__(
        self,
        file: SourceFile,
        sink: DiagnosticSink,
        *,
        start: int = 0,
        end: int | None = None,
        origin: Origin | None = None,
        directives: bool = True,
    ) -> None:
        self.file = file
        self.text = file.text
        self.sink = sink
        self.pos = start
        self.end = len(self.text) if end is None else end
        self.origin = origin
        self.directives = directives
        self._line_start = True
        self._recent: list[str] = []

    # -- helpers -------------------------------------------------------------

    def _span(self, start: int, end: int) -> Span:
        return Span(self.file, start, end, self.origin)

    def _error(
        self,
        code: str,
        message: str,
        start: int,
        end: int,
        label: str = "",
        *,
        help: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.sink.emit(
            Diagnostic.error(code, message, self._span(start, end), label, help=help, notes=notes)
        )

    def _make(self, kind: str, start: int, end: int, value: Any = None) -> Token:
        text = self.text[start:end]
        token = Token(
            kind, text, text if value is None else value, self._span(start, end), self._line_start
        )
        self._line_start = False
        self._recent = [*self._recent[-1:], kind]
        return token

    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < self.end else ""

    # -- whitespace and comments -----------------------------------------------

    def _skip_space(self) -> None:
        text, end = self.text, self.end
        while self.pos < end:
            c = text[self.pos]
            if c == "\n":
                self.pos += 1
                self._line_start = True
            elif c in " \t\r\f\v":
                self.pos += 1
            elif c == "\\" and text.startswith("\n", self.pos + 1):
                self.pos += 2
            elif c == "\\" and text.startswith("\r\n", self.pos + 1):
                self.pos += 3
            elif c == "#":
                if self._line_start and self.directives and text.startswith("#!", self.pos):
                    return
                self._skip_to_eol()
            elif c == "/" and text.startswith("//", self.pos):
                self._skip_to_eol()
            elif c == "/" and text.startswith("/*", self.pos):
                self._skip_block_comment()
            else:
                return

    def _skip_to_eol(self) -> None:
        nl = self.text.find("\n", self.pos, self.end)
        self.pos = self.end if nl == -1 else nl

    def _skip_block_comment(self) -> None:
        start = self.pos
        depth = 0
        text = self.text
        i = self.pos
        while i < self.end:
            if text.startswith("/*", i):
                depth += 1
                i += 2
            elif text.startswith("*/", i):
                depth -= 1
                i += 2
                if depth == 0:
                    self.pos = i
                    return
            else:
                if text[i] == "\n":
                    self._line_start = True
                i += 1
        self.pos = self.end
        self._error(
            "E0102",
            "unterminated block comment",
            start,
            start + 2,
            "this comment is never closed",
            help="close it with `*/` (block comments nest: each `/*` needs its own `*/`)",
        )

    # -- directives ------------------------------------------------------------

    def _directive_end(self, start: int) -> int:
        """End of a directive line, following backslash-newline continuations."""
        i = start
        text = self.text
        while True:
            nl = text.find("\n", i, self.end)
            if nl == -1:
                return self.end
            j = nl - 1
            if j >= start and text[j] == "\r":
                j -= 1
            if j >= start and text[j] == "\\":
                i = nl + 1
                continue
            return nl

    def _directive(self) -> Token:
        start = self.pos
        end = self._directive_end(start)
        self.pos = end
        m = _DIRECTIVE_NAME.match(self.text, start + 2, end)
        name = m.group() if m else ""
        rest_start = m.end() if m else start + 2
        token = self._make("DIRECTIVE", start, end, (name, rest_start))
        self._line_start = True
        return token

    def skip_to_directive(self) -> Token | None:
        """Skip raw lines (inside a false ``#!ifdef``) up to the next directive line."""
        text = self.text
        while self.pos < self.end:
            line_end = text.find("\n", self.pos, self.end)
            if line_end == -1:
                line_end = self.end
            stripped = text[self.pos : line_end].lstrip(" \t")
            if stripped.startswith(("#!", "!!")):
                self.pos = line_end - len(text[self.pos : line_end].lstrip(" \t"))
                self._line_start = True
                return self._directive()
            self.pos = line_end + 1
        self.pos = self.end
        return None

    # -- tokens ----------------------------------------------------------------

    def __iter__(self) -> Iterator[Token]:
        while (token := self.next()) is not None:
            yield token

    def next(self) -> Token | None:
        self._skip_space()
        if self.pos >= self.end:
            return None
        text, pos = self.text, self.pos
        c = text[pos]

        if (
            self._line_start
            and self.directives
            and (text.startswith("#!", pos) or text.startswith("!!", pos))
        ):
            return self._directive()

        # route names: route[NAME], failure_route[1a] ... ; event_route[mod:event]
        if len(self._recent) == 2 and self._recent[1] == "LSQB":
            if self._recent[0] == "EVENT_ROUTE":
                m = _EVENT_NAME.match(text, pos, self.end)
                if m:
                    self.pos = m.end()
                    return self._make("EVENT_NAME", pos, m.end())
            elif self._recent[0] in ROUTE_BLOCKS:
                m = _WORD.match(text, pos, self.end)
                if m and not _ID.fullmatch(m.group()) and not _DEC.fullmatch(m.group()):
                    self.pos = m.end()
                    return self._make("ID", pos, m.end())

        if c == '"':
            return self._dq_string(pos)
        if c == "'":
            return self._sq_string(pos)
        if c in TYPOGRAPHIC_DOUBLE or c in TYPOGRAPHIC_SINGLE or c in TYPOGRAPHIC_CLOSERS:
            return self._typographic_string(pos)
        if c == "$":
            return self._pvar(pos)
        if c == "%" and (m := _ID.match(text, pos + 1, self.end)):
            # SER-style AVP: `%name` is `$avp(name)` in Kamailio's default compat mode
            self.pos = m.end()
            return self._make("PVAR", pos, self.pos)
        if c == "@" and _SELECT_NAME.match(text, pos + 1, self.end):
            return self._select(pos)
        if c in _DIGITS or c == ":" or c in "abcdefABCDEF":
            token = self._address(pos)
            if token is not None:
                return token
        if c in _DIGITS:
            return self._number(pos)
        if c in _ID_START:
            return self._word(pos)
        for op, kind in OPERATORS:
            if text.startswith(op, pos):
                self.pos = pos + len(op)
                return self._make(kind, pos, self.pos)
        return self._bad_char(pos)

    def _bad_char(self, pos: int) -> Token | None:
        # merge a run of unexpected characters into one diagnostic
        end = pos + 1
        while end < self.end and not (
            self.text[end].isspace()
            or self.text[end] in _WORD_CHARS
            or self.text[end] in "\"'$@;,(){}[]=<>!&|+-*/"
        ):
            end += 1
        shown = self.text[pos:end]
        if len(shown) > 12:
            shown = shown[:12] + "..."
        what = "character" if end == pos + 1 else "characters"
        char = self.text[pos]
        # a byte that is not UTF-8 (read with surrogateescape) is shown as the byte
        name = f"\\x{ord(char) - 0xDC00:02x}" if 0xDC80 <= ord(char) <= 0xDCFF else repr(char)[1:-1]
        self._error(
            "E0104",
            f"unexpected {what} {_quote(shown if shown.isprintable() else name)}",
            pos,
            end,
            "not part of the config language",
            help="remove it, or put it inside a quoted string",
        )
        self.pos = end
        return self.next()

    def _word(self, pos: int) -> Token:
        text = self.text
        m = _WORD.match(text, pos, self.end)
        assert m is not None
        word = m.group()
        for colon_word in COLON_WORDS:
            if text.startswith(colon_word, pos) and (
                pos + len(colon_word) >= self.end or text[pos + len(colon_word)] not in _WORD_CHARS
            ):
                self.pos = pos + len(colon_word)
                return self._make("ID", pos, self.pos)
        self.pos = m.end()
        if word in BOOLEANS:
            return self._make("NUMBER", pos, self.pos, BOOLEANS[word])
        kind = KEYWORDS.get(word, "ID")
        if word in ("include_file", "import_file"):
            kind = "INCLUDE"
        return self._make(kind, pos, self.pos, word)

    def _number(self, pos: int) -> Token:
        m = _WORD.match(self.text, pos, self.end)
        assert m is not None
        word = m.group()
        self.pos = m.end()
        if _HEX.fullmatch(word):
            return self._make("NUMBER", pos, self.pos, int(word, 16))
        if _BIN.fullmatch(word):
            return self._make("NUMBER", pos, self.pos, int(word[:-1], 2))
        if _OCT.fullmatch(word):
            return self._make("NUMBER", pos, self.pos, int(word, 8))
        if _DEC.fullmatch(word):
            return self._make("NUMBER", pos, self.pos, int(word))
        if word.isdigit():  # leading zero with 8 or 9: not octal
            self._error(
                "E0105",
                f"invalid number `{word}`",
                pos,
                self.pos,
                "a leading `0` makes this octal",
                help="remove the leading zeros, or write it in hexadecimal (`0x...`)",
            )
            return self._make("NUMBER", pos, self.pos, int(word))
        # a word starting with a digit, such as a route name `1a` (Kamailio's NUM_ID)
        return self._make("ID", pos, self.pos, word)

    def _address(self, pos: int) -> Token | None:
        text = self.text
        m = _IPV6_CANDIDATE.match(text, pos, self.end)
        if m and m.group().count(":") >= 2:
            candidate = m.group()
            # trailing ':' belongs to the next token (`[::1]:5060` is lexed elsewhere)
            while candidate.endswith(":") and not candidate.endswith("::"):
                candidate = candidate[:-1]
            after = pos + len(candidate)
            if after >= self.end or text[after] not in _WORD_CHARS:
                try:
                    ipaddress.IPv6Address(candidate)
                except ValueError:
                    pass
                else:
                    self.pos = after
                    return self._make("IPV6", pos, after, candidate)
        m4 = _IPV4.match(text, pos, self.end)
        if m4:
            self.pos = m4.end()
            value = m4.group()
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                self._error(
                    "E0106",
                    f"invalid IPv4 address `{value}`",
                    pos,
                    self.pos,
                    "each of the four numbers must be between 0 and 255",
                )
            return self._make("IPV4", pos, self.pos, value)
        return None

    def _dq_string(self, pos: int) -> Token:
        text = self.text
        i = pos + 1
        while i < self.end:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                body = text[pos + 1 : i]
                value, _ = decode_dq_string(body)
                self.pos = i + 1
                return self._make("STRING", pos, self.pos, value)
            i += 1
        return self._unterminated(pos, '"')

    def _sq_string(self, pos: int) -> Token:
        end = self.text.find("'", pos + 1, self.end)
        if end == -1:
            return self._unterminated(pos, "'")
        self.pos = end + 1
        return self._make("STRING", pos, self.pos, self.text[pos + 1 : end])

    def _unterminated(self, pos: int, quote: str) -> Token:
        nl = self.text.find("\n", pos, self.end)
        line_end = self.end if nl == -1 else nl
        self._error(
            "E0101",
            "unterminated string",
            pos,
            pos + 1,
            "this string is never closed",
            help=f"add the closing `{quote}`",
        )
        # recover: the string ends at the end of its line
        self.pos = line_end
        body = self.text[pos + 1 : line_end]
        value = decode_dq_string(body)[0] if quote == '"' else body
        return self._make("STRING", pos, line_end, value)

    def _typographic_string(self, pos: int) -> Token:
        text = self.text
        opener = text[pos]
        single = opener in TYPOGRAPHIC_SINGLE or opener == "\u2019"
        closers = {"\u2019", "\u2018", "'"} if single else {"\u201d", "\u201c", "\u00bb", '"'}
        i = pos + 1
        nl = text.find("\n", pos, self.end)
        line_end = self.end if nl == -1 else nl
        while i < line_end and text[i] not in closers:
            i += 1
        straight = "'" if single else '"'
        if i >= line_end:
            self._error(
                "E0101",
                "unterminated string",
                pos,
                pos + 1,
                f"this string opens with the typographic quote `{opener}` and is never closed",
                help=f"use straight quotes `{straight}` on both sides of the string",
            )
            self.pos = line_end
            body = text[pos + 1 : line_end]
            return self._make(
                "STRING", pos, line_end, body if single else decode_dq_string(body)[0]
            )
        end = i + 1
        bad = [(pos, opener)] + ([(i, text[i])] if text[i] != straight else [])
        quotes = " and ".join(f"`{ch}`" for _, ch in bad)
        self._error(
            "E0103",
            f"typographic quote in place of `{straight}`",
            pos,
            end if len(bad) > 1 else pos + 1,
            "a typographic quote" if len(bad) == 1 else "typographic quotes around this string",
            help=f"replace {quotes} with straight {'single' if single else 'double'} "
            f"quotes `{straight}` (word processors change them as you type)",
        )
        self.pos = end
        body = text[pos + 1 : end - 1]
        value = body if single else decode_dq_string(body)[0]
        return self._make("STRING", pos, end, value)

    def _balanced(self, pos: int, open_: str, close: str) -> int:
        """Offset after the bracket matching the one at ``pos``, or -1."""
        depth = 0
        text = self.text
        i = pos
        while i < self.end:
            c = text[i]
            if c == "\n":
                return -1
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return -1

    def _pvar(self, pos: int) -> Token:
        text = self.text
        i = pos + 1
        if i < self.end and text[i] == "(":
            end = self._balanced(i, "(", ")")
            if end == -1:
                return self._bad_pvar(pos, i + 1)
            self.pos = end
            return self._make("PVAR", pos, end)
        if i < self.end and text[i] == "?":
            self.pos = i + 1
            return self._make("PVAR", pos, self.pos)
        m = _PV_NAME.match(text, i, self.end)
        if not m:
            return self._bad_pvar(pos, i)
        end = m.end()
        while end > i and text[end - 1] == ".":  # `$ru.` : the dot is not part of the name
            end -= 1
        if end < self.end and text[end] == "(":
            close = self._balanced(end, "(", ")")
            if close == -1:
                return self._bad_pvar(pos, end + 1)
            end = close
            if end < self.end and text[end] == "[":
                close = self._balanced(end, "[", "]")
                if close != -1:
                    end = close
        self.pos = end
        return self._make("PVAR", pos, end)

    def _bad_pvar(self, pos: int, end: int) -> Token:
        if end > pos + 1 and self.text[end - 1] == "(":
            self._error(
                "E0107",
                "unterminated pseudo-variable",
                pos,
                end,
                "this `(` is never closed on this line",
                help="pseudo-variables are written on one line: `$name(inner)`",
            )
            nl = self.text.find("\n", pos, self.end)
            self.pos = self.end if nl == -1 else nl
        else:
            self._error(
                "E0107",
                "`$` is not followed by a pseudo-variable name",
                pos,
                pos + 1,
                "expected a name such as `$ru` or `$var(x)`",
            )
            self.pos = pos + 1
        return self._make("PVAR", pos, self.pos)

    def _select(self, pos: int) -> Token:
        text = self.text
        i = pos + 1
        while i < self.end:
            m = _SELECT_NAME.match(text, i, self.end)
            if m:
                i = m.end()
            elif text[i] == "[":
                close = self._balanced(i, "[", "]")
                if close == -1:
                    break
                i = close
            else:
                break
            if i < self.end and text[i] == "." and _SELECT_NAME.match(text, i + 1, self.end):
                i += 1
                continue
            if i < self.end and text[i] == "[":
                continue
            break
        self.pos = i
        return self._make("SELECT", pos, i)


def tokenize(file: SourceFile, sink: DiagnosticSink) -> list[Token]:
    """All tokens of a file, directives included (no preprocessing)."""
    return list(Lexer(file, sink))
