"""Pseudo-variables: the structure inside a ``PVAR`` token and inside format strings.

Forms (Kamailio's ``pv_parse_spec``)::

    $name                 $ru  $T_reply_code  $ruri.user  $null
    $name(inner)          $var(x)  $avp(s:x)  $xavp(a[0]=>b[1])  $sht(t=>$si)
    $name(inner)[index]   $hdr(Via)[1]
    $(name(inner)[index]{tr}{tr...})
                          $(ru{s.len})  $(avp(x)[*])  $(hdr(Via)[-1]{s.substr,1,$var(n)})
    $?                    the last return code

``inner`` and transformation parameters may contain pseudo-variables; they are kept as
format parts (``("t=>", PVar(si))``), except in the classes of :data:`LITERAL_INNER`,
whose name Kamailio reads as plain text (``$var($si)`` is the variable named ``$si``).
An index is an int (negative counts from the end), ``*`` or a pseudo-variable.

:func:`parse_pvar` reads one ``PVAR`` token and reports a malformed one as E0206
with the caret on the offending character. :func:`split_format` splits a string
literal's value at embedded pseudo-variables; there a ``$`` that starts no valid
pseudo-variable is plain text, as Kamailio only interprets strings that a function
takes as a format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from kcc.ast import FormatPart, PVar, Select, SelectPart, Transformation
from kcc.diagnostics import Diagnostic
from kcc.source import Span

__all__ = [
    "LITERAL_INNER",
    "PVar",
    "PvSyntaxError",
    "Transformation",
    "parse_pvar",
    "parse_select",
    "split_format",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TR_NAME = re.compile(r"[A-Za-z0-9_.]+")
_INT_INDEX = re.compile(r"-?[0-9]+")
_SELECT_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?")

Locate = Callable[[int, int], Span]


_SER_AVP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: the classes whose inner name Kamailio takes as plain text, ``$`` included (pv's
#: ``pv_parse_scriptvar_name`` and ``pv_parse_shvar_name``; measured on 5.6.3: after
#: ``$var($si) = 5``, ``$var(127.0.0.1)`` is still 0): no pseudo-variable is expanded
#: there, so a caller cannot make a worker create variables
LITERAL_INNER = frozenset({"var", "vz", "vn", "shv"})


class PvSyntaxError(Exception):
    """A malformed pseudo-variable; ``start``/``end`` index the scanned text."""

    def __init__(self, label: str, start: int, end: int) -> None:
        super().__init__(label)
        self.label = label
        self.start = start
        self.end = end


def _show(c: str) -> str:
    return "end of text" if not c else f"`{c}`"


class _Scanner:
    """Recursive-descent reader over ``text``; ``locate`` maps offsets to spans."""

    def __init__(self, text: str, locate: Locate) -> None:
        self.text = text
        self.locate = locate
        self.n = len(text)

    def _char(self, i: int) -> str:
        return self.text[i] if i < self.n else ""

    def _fail(self, label: str, i: int) -> PvSyntaxError:
        return PvSyntaxError(label, i, min(i + 1, self.n) if i < self.n else i)

    def pvar(self, pos: int) -> tuple[PVar, int]:
        """Read the pseudo-variable starting with the ``$`` at ``pos``; returns it and
        the offset after it."""
        i = pos + 1
        c = self._char(i)
        if c == "?":
            return PVar("?", None, None, (), self.locate(pos, i + 1)), i + 1
        if c == "(":
            name, inner, index, j = self._core(i + 1)
            transformations: list[Transformation] = []
            while self._char(j) == "{":
                tr, j = self._transformation(j)
                transformations.append(tr)
            if self._char(j) != ")":
                expected = "`{`, `)`" if transformations else "`(`, `[`, `{` or `)`"
                raise self._fail(f"expected {expected}, found {_show(self._char(j))}", j)
            end = j + 1
            pv = PVar(name, inner, index, tuple(transformations), self.locate(pos, end))
            return pv, end
        name, inner, index, end = self._core(i)
        return PVar(name, inner, index, (), self.locate(pos, end)), end

    def _core(
        self, i: int
    ) -> tuple[str, tuple[FormatPart, ...] | None, int | str | PVar | None, int]:
        m = _NAME.match(self.text, i)
        if not m:
            raise self._fail(f"expected a pseudo-variable name, found {_show(self._char(i))}", i)
        name = m.group().rstrip(".")
        j = i + len(name)
        inner: tuple[FormatPart, ...] | None = None
        index: int | str | PVar | None = None
        if self._char(j) == "(":
            close = self._matching(j, "(", ")")
            if close == -1:
                raise PvSyntaxError("this `(` is never closed", j, j + 1)
            if name in LITERAL_INNER:
                inner = (self.text[j + 1 : close],)
            else:
                inner = self.format(j + 1, close)
            j = close + 1
        if self._char(j) == "[":
            close = self._matching(j, "[", "]")
            if close == -1:
                raise PvSyntaxError("this `[` is never closed", j, j + 1)
            index = self._index(j + 1, close)
            j = close + 1
        return name, inner, index, j

    def _matching(self, i: int, open_: str, close: str) -> int:
        depth = 0
        for k in range(i, self.n):
            c = self.text[k]
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return k
        return -1

    def _index(self, start: int, end: int) -> int | str | PVar:
        body = self.text[start:end]
        if body == "*":
            return "*"
        if _INT_INDEX.fullmatch(body):
            return int(body)
        if body.startswith("$"):
            pv, after = self.pvar(start)
            if after == end:
                return pv
            bad = after
        else:
            bad = start
            if body.startswith("-"):
                bad += 1
            while bad < end and self.text[bad].isdigit():
                bad += 1
        found = _show(self._char(bad))
        raise PvSyntaxError(
            f"expected an index (a number, `*` or a pseudo-variable), found {found}",
            bad,
            bad + 1 if bad < end else bad,
        )

    def _transformation(self, pos: int) -> tuple[Transformation, int]:
        m = _TR_NAME.match(self.text, pos + 1)
        if not m:
            raise self._fail(
                f"expected a transformation name, found {_show(self._char(pos + 1))}", pos + 1
            )
        j = m.end()
        params: list[tuple[FormatPart, ...]] = []
        while self._char(j) == ",":
            start = j + 1
            k = start
            depth = 0
            while k < self.n:
                c = self.text[k]
                if c in "({":
                    depth += 1
                elif c in ")}":
                    if depth == 0:
                        break
                    depth -= 1
                elif c == "," and depth == 0:
                    break
                k += 1
            params.append(self.format(start, k))
            j = k
        if self._char(j) != "}":
            if j >= self.n or self.text[j] == ")":
                raise PvSyntaxError("this `{` is never closed", pos, pos + 1)
            raise self._fail(f"expected `,` or `}}`, found {_show(self._char(j))}", j)
        return Transformation(m.group(), tuple(params), self.locate(pos, j + 1)), j + 1

    def format(self, start: int, end: int) -> tuple[FormatPart, ...]:
        """Split ``text[start:end]`` at pseudo-variables; bad ``$`` stays text."""
        text = self.text
        if "$" not in text[start:end]:
            return (text[start:end],) if end > start else ()
        parts: list[FormatPart] = []
        literal_start = start
        i = start
        saved_n = self.n
        self.n = end  # a pseudo-variable never extends past the region
        try:
            while i < end:
                dollar = text.find("$", i, end)
                if dollar == -1:
                    break
                try:
                    pv, after = self.pvar(dollar)
                except PvSyntaxError:
                    i = dollar + 1
                    continue
                if dollar > literal_start:
                    parts.append(text[literal_start:dollar])
                parts.append(pv)
                i = literal_start = after
        finally:
            self.n = saved_n
        if literal_start < end:
            parts.append(text[literal_start:end])
        return tuple(parts)


def parse_pvar(text: str, span: Span) -> PVar:
    """The structure of one ``PVAR`` token; raises :class:`PvSyntaxError` (offsets
    relative to ``text``) when it is malformed. ``span`` is the token's span."""

    def locate(a: int, b: int) -> Span:
        return Span(span.file, span.start + a, span.start + b, span.origin)

    scanner = _Scanner(text, locate)
    if text.startswith("%"):
        # SER-style AVP (`%subscription_status`), still read by Kamailio 5.6 in the
        # default compatibility mode: the same as `$avp(subscription_status)`
        name = text[1:]
        if not _SER_AVP.fullmatch(name):
            raise PvSyntaxError("expected an AVP name after `%`", 1, len(text))
        return PVar("avp", (name,), None, (), span)
    if not text.startswith("$"):
        raise PvSyntaxError("expected `$`", 0, 1)
    pv, end = scanner.pvar(0)
    if end != len(text):
        raise PvSyntaxError(f"unexpected `{text[end]}` after the pseudo-variable", end, end + 1)
    return pv


def pvar_error(text: str, span: Span, error: PvSyntaxError) -> Diagnostic:
    """The E0206 diagnostic for a malformed ``PVAR`` token."""
    start = span.start + error.start
    end = span.start + max(error.end, error.start + 1)
    end = min(end, span.end) if start < span.end else end
    bad = Span(span.file, start, end, span.origin)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return Diagnostic.error(
        "E0206",
        f"malformed pseudo-variable `{shown}`",
        bad,
        error.label,
        notes=("forms: `$name`, `$name(inner)`, `$(name(inner)[index]{transformation})`",),
    )


def split_format(value: str, offsets: Sequence[int], base_span: Span) -> tuple[FormatPart, ...]:
    """Split a decoded string value at pseudo-variables.

    ``offsets[i]`` is where character ``i`` of ``value`` is written, relative to
    ``base_span.start`` (the string body, after the opening quote), as returned by
    :func:`kcc.lexer.decode_dq_string`; spans of the parts are mapped back through it.
    """
    if "$" not in value:
        return (value,) if value else ()
    body_len = base_span.end - base_span.start
    count = len(offsets)

    def locate(a: int, b: int) -> Span:
        start = offsets[a] if a < count else body_len
        end = offsets[b] if b < count else body_len
        return Span(
            base_span.file, base_span.start + start, base_span.start + end, base_span.origin
        )

    return _Scanner(value, locate).format(0, len(value))


def parse_select(text: str, span: Span) -> Select:
    """The parts of a ``SELECT`` token: ``@cfg_get.pstn.gw_ip``, ``@via[1].host``."""
    parts: list[SelectPart] = []
    pos = 1
    for m in _SELECT_PART.finditer(text, 1):
        if m.start() != pos:
            break
        parts.append(
            SelectPart(
                m.group(1),
                m.group(2),
                Span(span.file, span.start + m.start(), span.start + m.end(), span.origin),
            )
        )
        pos = m.end() + 1
    return Select(tuple(parts), span)
