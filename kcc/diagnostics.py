"""Diagnostics: what kcc tells the user, in rustc's layout.

A :class:`Diagnostic` is plain data. :func:`render_plain` is the canonical rendering
(goldens, pipes, CI logs); :func:`render_rich` decorates the very same lines with
colour for a terminal. Messages start lowercase, have no trailing period and put
identifiers in backticks; only ``help`` suggests fixes (rustc-dev-guide rules).

    error[E0103]: typographic quote in place of `"`
      --> balancer.cfg:3:12
       |
     3 | loadmodule “pv.so”
       |            ^ a typographic quote
       |
       = help: replace `“` and `”` with straight double quotes `"`
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from kcc.source import Origin, Span

__all__ = [
    "Diagnostic",
    "DiagnosticSink",
    "FatalError",
    "Label",
    "Severity",
    "render_json",
    "render_plain",
    "render_rich",
]

TAB_WIDTH = 4


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with a short text, underlined with ``-``."""

    span: Span
    text: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span | None
    #: text shown beside the ``^^^`` under the primary span
    label: str = ""
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None

    @classmethod
    def error(
        cls,
        code: str,
        message: str,
        span: Span | None,
        label: str = "",
        *,
        notes: Iterable[str] = (),
        help: str | None = None,
        labels: Iterable[Label] = (),
    ) -> Diagnostic:
        return cls(Severity.ERROR, code, message, span, label, tuple(labels), tuple(notes), help)

    @classmethod
    def warning(
        cls,
        code: str,
        message: str,
        span: Span | None,
        label: str = "",
        *,
        notes: Iterable[str] = (),
        help: str | None = None,
        labels: Iterable[Label] = (),
    ) -> Diagnostic:
        return cls(Severity.WARNING, code, message, span, label, tuple(labels), tuple(notes), help)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        site = self.span.use_site()
        return (site.file.path, site.start, site.end, self.code)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": None,
            "line": None,
            "column": None,
            "end_line": None,
            "end_column": None,
        }
        if self.span is not None:
            site = self.span.use_site()
            data.update(
                file=site.file.display,
                line=site.line,
                column=site.column,
                end_line=site.end_line,
                end_column=site.end_column,
            )
        if self.label:
            data["label"] = self.label
        if self.labels:
            data["labels"] = [
                {
                    "file": lab.span.use_site().file.display,
                    "line": lab.span.use_site().line,
                    "column": lab.span.use_site().column,
                    "end_line": lab.span.use_site().end_line,
                    "end_column": lab.span.use_site().end_column,
                    "text": lab.text,
                }
                for lab in self.labels
            ]
        if self.notes or self.span is not None:
            data["notes"] = list(self.all_notes())
        if self.help:
            data["help"] = self.help
        return data

    def all_notes(self) -> Iterator[str]:
        """The diagnostic's own notes, then where its text came from."""
        yield from self.notes
        if self.span is not None:
            for origin in self.span.origin_chain():
                if origin.kind == "define":
                    yield f"expanded from `{origin.name}`, defined at {_define_location(origin)}"
                else:
                    yield f"in file included from {origin.site.use_site().location()}"


def _define_location(origin: Origin) -> str:
    if origin.definition is not None:
        return origin.definition.location()
    return "the command line (`-D`)"


class FatalError(Exception):
    """Raised by a stage that cannot go on (a syntax error): carries the diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class DiagnosticSink:
    """Collects diagnostics from every stage; the pipeline stops between stages on errors."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    _seen: set[tuple[Any, ...]] = field(default_factory=set, repr=False)

    def emit(self, diagnostic: Diagnostic) -> None:
        site = diagnostic.span.use_site() if diagnostic.span is not None else None
        key = (
            diagnostic.code,
            diagnostic.message,
            None if site is None else (site.file.path, site.start, site.end),
        )
        if key in self._seen:
            return
        self._seen.add(key)
        self.diagnostics.append(diagnostic)

    @property
    def error_count(self) -> int:
        return sum(1 for d in self.diagnostics if d.is_error)

    @property
    def warning_count(self) -> int:
        return sum(1 for d in self.diagnostics if not d.is_error)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=Diagnostic.sort_key)

    def coalesce(self, code: str, what: str, max_labels: int = 6) -> None:
        """Merge every ``code`` diagnostic of a file into its first one.

        For mistakes that come in bulk from one cause (a config pasted from a word
        processor has dozens of typographic quotes): one error, the other places as
        secondary labels, and a note counting them (rustc: one error per cause).
        """
        groups: dict[str, list[Diagnostic]] = {}
        for diag in self.diagnostics:
            if diag.code == code and diag.span is not None:
                groups.setdefault(diag.span.use_site().file.path, []).append(diag)
        for group in groups.values():
            if len(group) < 2:
                continue
            group.sort(key=Diagnostic.sort_key)
            first, rest = group[0], group[1:]
            labels = [Label(d.span, "here too") for d in rest[:max_labels] if d.span is not None]
            notes = [f"{len(group)} {what} in this file"]
            if len(rest) > max_labels:
                lines = sorted({d.span.use_site().line for d in rest[max_labels:] if d.span})
                shown = ", ".join(str(n) for n in lines[:12]) + (", ..." if len(lines) > 12 else "")
                notes.append(f"not shown above: line{'s' if len(lines) > 1 else ''} {shown}")
            merged = replace(
                first, labels=first.labels + tuple(labels), notes=first.notes + tuple(notes)
            )
            dropped = {id(d) for d in group}
            index = self.diagnostics.index(first)
            self.diagnostics = [d for d in self.diagnostics if id(d) not in dropped]
            self.diagnostics.insert(min(index, len(self.diagnostics)), merged)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """One rendered line, tagged with a style name for the rich renderer."""

    text: str
    style: str = ""


def _printable(ch: str) -> str:
    """One display column per character: bytes that were not UTF-8 (kept as lone
    surrogates when the file was read) and control characters show as U+FFFD."""
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF or (code < 0x20 and ch != "\t") or code == 0x7F:
        return "\ufffd"
    return ch


def _expand_tabs(text: str) -> str:
    if not text.isprintable():
        text = "".join(_printable(ch) for ch in text)
    return text.replace("\t", " " * TAB_WIDTH)


def _visual_col(line_text: str, column: int) -> int:
    """0-based display column of a 1-based character column, tabs expanded."""
    return len(_expand_tabs(line_text[: column - 1]))


def _underline(span: Span, line_no: int, char: str) -> tuple[int, int]:
    """Display start and width of the underline of ``span`` on ``line_no``."""
    file = span.file
    text = file.line_text(line_no)
    start_line, start_col = file.line_col(span.start)
    end_line, end_col = file.line_col(span.end)
    first = start_col if start_line == line_no else 1
    last = end_col if end_line == line_no else len(text) + 1
    begin = _visual_col(text, first)
    finish = _visual_col(text, last)
    return begin, max(1, finish - begin)


def _render_lines(diag: Diagnostic) -> list[_Line]:
    sev = diag.severity.value
    message = "".join(_printable(ch) for ch in diag.message)
    out = [_Line(f"{sev}[{diag.code}]: {message}", sev)]
    if diag.span is None:
        for note in diag.all_notes():
            out.append(_Line(f"  = note: {note}", "note"))
        if diag.help:
            out.append(_Line(f"  = help: {diag.help}", "help"))
        return out

    primary = diag.span.use_site()
    secondaries = [Label(lab.span.use_site(), lab.text) for lab in diag.labels]
    same_file = [lab for lab in secondaries if lab.span.file is primary.file]
    other_files = [lab for lab in secondaries if lab.span.file is not primary.file]

    all_lines = [primary.line] + [lab.span.line for lab in secondaries]
    width = len(str(max(all_lines)))
    pad = " " * width

    out.append(_Line(f"{pad}--> {primary.location()}", "location"))
    out.append(_Line(f"{pad} |", "gutter"))

    marks: list[tuple[int, Span, str, str, str]] = [(primary.line, primary, "^", diag.label, sev)]
    marks += [(lab.span.line, lab.span, "-", lab.text, "secondary") for lab in same_file]
    marks.sort(key=lambda m: (m[0], m[2] != "^"))
    previous = 0
    for line_no, span, char, text, style in marks:
        if previous and line_no > previous + 1:
            out.append(_Line(f"{'.' * width} |", "gutter"))
        if line_no != previous:
            source = _expand_tabs(span.file.line_text(line_no))
            out.append(_Line(f"{str(line_no).rjust(width)} | {source}".rstrip(), "source"))
        begin, size = _underline(span, line_no, char)
        mark = " " * begin + char * size + (f" {text}" if text else "")
        out.append(_Line(f"{pad} | {mark}", style))
        previous = line_no
    for lab in other_files:
        out.append(_Line(f"{pad}::: {lab.span.location()}", "location"))
        source = _expand_tabs(lab.span.file.line_text(lab.span.line))
        out.append(_Line(f"{pad} | {source}".rstrip(), "source"))
        begin, size = _underline(lab.span, lab.span.line, "-")
        out.append(_Line(f"{pad} | {' ' * begin}{'-' * size} {lab.text}".rstrip(), "secondary"))

    notes = list(diag.all_notes())
    if notes or diag.help:
        out.append(_Line(f"{pad} |", "gutter"))
    for note in notes:
        out.append(_Line(f"{pad} = note: {note}", "note"))
    if diag.help:
        out.append(_Line(f"{pad} = help: {diag.help}", "help"))
    return out


def summary_line(sink: DiagnosticSink) -> str:
    errors, warnings = sink.error_count, sink.warning_count
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts) if parts else "no problems found"


def render_plain(diag: Diagnostic) -> str:
    """The canonical text form: what goldens store and what a pipe receives."""
    return "\n".join(line.text for line in _render_lines(diag)) + "\n"


_STYLES = {
    "error": "bold red",
    "warning": "bold yellow",
    "location": "bold blue",
    "gutter": "bold blue",
    "source": "",
    "secondary": "bold blue",
    "note": "",
    "help": "cyan",
}


def render_rich(diag: Diagnostic) -> Any:
    """The same lines as :func:`render_plain`, with colour (a ``rich.text.Text``)."""
    from rich.text import Text

    text = Text()
    for line in _render_lines(diag):
        text.append(line.text, style=_STYLES.get(line.style, ""))
        text.append("\n")
    return text


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False) + "\n"
