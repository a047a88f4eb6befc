"""Source files and spans.

Every token, AST node and diagnostic carries a :class:`Span`: a half-open range of
character offsets in one :class:`SourceFile`. Line and column are computed on demand
(1-based, columns counted in characters, a tab counts as one column).

Text that did not come straight from the file being parsed has an :class:`Origin`:
a token produced by expanding ``#!define DBURL "..."`` has its span in the *define
body* (where the text is written) and an origin saying "expanded from `DBURL` at
<use site>". A file pulled in by ``include_file`` has an origin pointing at the
``include_file`` line. Origins chain, so a define used inside another define, inside
an included file, is reported with its whole history (cairo-lang's
``parent_location``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Origin", "SourceFile", "Span", "display_path"]


def display_path(path: str) -> str:
    """The path as shown in diagnostics: relative to the working directory if inside it."""
    if path.startswith("<"):
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


@dataclass(eq=False)
class SourceFile:
    """One file's text, as read (after decoding), with a line index."""

    #: path as given by the user (or the include directive), or ``<command-line>``
    path: str
    text: str
    #: where this file was included from (``include_file``), or None for the main file
    origin: Origin | None = None
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        text = self.text
        pos = text.find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = text.find("\n", pos + 1)
        self._line_starts = starts

    @property
    def display(self) -> str:
        return display_path(self.path)

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line terminator."""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def offset_of(self, line: int, column: int) -> int:
        return self._line_starts[line - 1] + column - 1

    def span(self, start: int, end: int, origin: Origin | None = None) -> Span:
        return Span(self, start, end, origin)


@dataclass(frozen=True, slots=True)
class Origin:
    """Why a span's text appears where it does.

    ``kind`` is ``"define"`` (the text is the body of define ``name``, expanded at
    ``site``) or ``"include"`` (the file was included at ``site``).
    """

    kind: str
    name: str
    #: where the define was used, or the ``include_file`` directive
    site: Span
    #: for a define: where its name is written in the ``#!define`` line (None for ``-D``)
    definition: Span | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character range ``[start, end)`` in ``file``."""

    file: SourceFile
    start: int
    end: int
    #: set when the text was produced by a define expansion (see module docstring)
    origin: Origin | None = None

    @property
    def line(self) -> int:
        return self.file.line_col(self.start)[0]

    @property
    def column(self) -> int:
        return self.file.line_col(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.file.line_col(self.end)[0]

    @property
    def end_column(self) -> int:
        return self.file.line_col(self.end)[1]

    @property
    def text(self) -> str:
        return self.file.text[self.start : self.end]

    def location(self) -> str:
        line, col = self.file.line_col(self.start)
        return f"{self.file.display}:{line}:{col}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``.

        When both are in the same file with the same origin this is a plain range;
        otherwise (a node that starts in a define expansion and ends outside it) the
        result is widened to the use site so it stays within one file.
        """
        a, b = self.use_site(), other.use_site()
        if self.file is other.file and self.origin == other.origin:
            return Span(self.file, self.start, max(self.end, other.end), self.origin)
        if a.file is b.file:
            return Span(a.file, a.start, max(a.end, b.end), a.origin)
        return a

    def use_site(self) -> Span:
        """Follow define expansions back to the place the user wrote the name."""
        span = self
        while span.origin is not None and span.origin.kind == "define":
            span = span.origin.site
        return span

    def origin_chain(self) -> list[Origin]:
        """Every origin from the innermost outwards: defines, then includes."""
        chain: list[Origin] = []
        span: Span | None = self
        while span is not None:
            if span.origin is not None:
                chain.append(span.origin)
                span = span.origin.site
                continue
            if span.file.origin is not None:
                chain.append(span.file.origin)
                span = span.file.origin.site
                continue
            span = None
        return chain

    def __repr__(self) -> str:
        return f"Span({self.location()}..{self.end_line}:{self.end_column})"
