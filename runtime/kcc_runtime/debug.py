"""Map tracebacks from generated proxies back to the cfg lines they came from.

The idea is Jinja's ``debug.py``: a template compiles to Python, and an exception raised
in the compiled code is reported at the template line. kcc's generated modules make the
mapping easy to recover without any table in memory:

- a generated module binds ``__kcc_source__`` (the cfg path it was built from, relative
  to the build's working directory); that constant, not the file name, is what marks a
  module as generated (a proxy may be installed under any name);
- every generated statement carries a marker comment ``# <file>:<line>`` naming its
  cfg file (an ``include_file`` names its own) and line: as a trailing comment, or after
  the colon of a ``def``/``if``/``while`` header;
- optionally ``__kcc_routes__`` maps function names to block names
  (``{"route_RELAY": "route[RELAY]"}``), so a report says ``route[RELAY]`` and not the
  mangled Python name.

**Which marker a line maps to.** black moves a trailing comment to the *last* line of
a statement it splits (``)  # balancer.cfg:10``), while a traceback names the line
where the failing call *starts*. So the line map is built per statement, not per
line: the module source (from :mod:`linecache`, which also serves modules loaded from
zip files) is parsed with :mod:`ast`, and every line of a simple statement, or of a
compound statement's header, maps to the marker written on any of its lines. A line
no statement claims (a blank line, a decorator) falls back to the nearest marker at or
above it. Maps are built on the first traceback through a module and cached.

**No code is executed to rewrite a traceback.** Jinja builds fake frames by
``exec``-ing a ``raise`` compiled at the template line; a proxy's runtime must never
``exec``. :func:`format_exception` instead rewrites the ``traceback.StackSummary`` of a
:class:`traceback.TracebackException` (chained causes and contexts included): each
frame in a generated module shows the cfg file, line and block, with the cfg line's
text when the file can be read (else the generated Python line). :func:`cfg_frames`
gives both places of every frame, for tools that want the Python side too.
"""

from __future__ import annotations

import ast
import io
import linecache
import re
import tokenize
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "ROUTES_ATTR",
    "SOURCE_ATTR",
    "CfgFrame",
    "CfgLocation",
    "LineMap",
    "cfg_frames",
    "format_cfg_report",
    "format_exception",
    "is_generated",
    "locate",
    "parse_marker",
]

#: Module-level constant naming the cfg a generated module was built from.
SOURCE_ATTR = "__kcc_source__"
#: Optional module-level ``dict[str, str]``: Python function name -> cfg block name.
ROUTES_ATTR = "__kcc_routes__"

#: ``# file.cfg:17``: the file part may hold spaces and colons, the line is the last ``:N``.
_MARKER = re.compile(r"#\s?(?P<file>\S.*?):(?P<line>[1-9][0-9]*)\s*")


@dataclass(frozen=True, slots=True)
class CfgLocation:
    """A place in the cfg: file (as written in the marker), line, and the route block."""

    file: str
    line: int
    block: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where} ({self.block})" if self.block else where


@dataclass(frozen=True, slots=True)
class CfgFrame:
    """One traceback frame: where Python was, and where that is in the cfg (if mapped)."""

    filename: str
    lineno: int
    function: str
    location: CfgLocation | None


def parse_marker(comment: str) -> tuple[str, int] | None:
    """``"# balancer.cfg:17"`` -> ``("balancer.cfg", 17)``; None for any other comment."""
    match = _MARKER.fullmatch(comment)
    if match is None:
        return None
    return match.group("file"), int(match.group("line"))


class LineMap:
    """Generated-module line -> ``(cfg file, cfg line)``, built from the module source."""

    __slots__ = ("_by_line",)

    def __init__(self, source: str) -> None:
        markers = self._markers(source)
        count = source.count("\n") + (1 if source.endswith("\n") else 2)  # lines + 1
        by_line: list[tuple[str, int] | None] = [None] * count
        for first, last in self._statement_ranges(source):
            found = next((markers[n] for n in range(first, last + 1) if n in markers), None)
            if found is not None:
                for n in range(first, min(last, count - 1) + 1):
                    by_line[n] = found
        current: tuple[str, int] | None = None
        for n in range(1, count):
            marker = markers.get(n)
            if marker is not None:
                current = marker
            if by_line[n] is None:
                by_line[n] = current
        self._by_line = by_line

    @staticmethod
    def _markers(source: str) -> dict[int, tuple[str, int]]:
        markers: dict[int, tuple[str, int]] = {}
        try:
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.COMMENT:
                    parsed = parse_marker(token.string)
                    if parsed is not None:
                        markers[token.start[0]] = parsed
        except (tokenize.TokenError, SyntaxError):
            pass  # keep the markers read so far: a damaged source still maps above it
        return markers

    @staticmethod
    def _statement_ranges(source: str) -> Iterator[tuple[int, int]]:
        """(first, last) line of each simple statement and compound-statement header."""
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if not isinstance(node, ast.stmt):
                continue
            first, last = node.lineno, node.end_lineno or node.lineno
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                # a compound statement: its header ends before its first body statement
                last = max(first, body[0].lineno - 1)
                decorators: list[ast.expr] = getattr(node, "decorator_list", [])
                if decorators:
                    first = min(first, *(d.lineno for d in decorators))
                yield first, last
            else:
                yield first, last

    def lookup(self, lineno: int) -> tuple[str, int] | None:
        """The cfg place of a generated line, None before the first marker."""
        if 0 < lineno < len(self._by_line):
            return self._by_line[lineno]
        return None


_MAPS: dict[str, tuple[list[str], LineMap]] = {}


def is_generated(module_globals: Mapping[str, Any]) -> bool:
    """Is this the global namespace of a module kcc generated?"""
    return isinstance(module_globals.get(SOURCE_ATTR), str)


def _line_map(filename: str, module_globals: Mapping[str, Any]) -> LineMap | None:
    lines = linecache.getlines(filename, dict(module_globals))
    if not lines:
        return None
    cached = _MAPS.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    line_map = LineMap("".join(lines))
    _MAPS[filename] = (lines, line_map)
    return line_map


def _block_name(function: str, module_globals: Mapping[str, Any]) -> str:
    routes = module_globals.get(ROUTES_ATTR)
    if isinstance(routes, Mapping):
        name = routes.get(function)
        if isinstance(name, str):
            return name
    return function


def locate(frame: FrameType, lineno: int) -> CfgLocation | None:
    """The cfg place of ``lineno`` in ``frame``, or None if the frame is not generated."""
    module_globals = frame.f_globals
    if not is_generated(module_globals):
        return None
    line_map = _line_map(frame.f_code.co_filename, module_globals)
    found = line_map.lookup(lineno) if line_map is not None else None
    if found is None:
        return None
    return CfgLocation(found[0], found[1], _block_name(frame.f_code.co_name, module_globals))


def _walk(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def cfg_frames(exc: BaseException) -> list[CfgFrame]:
    """Every frame of ``exc``'s traceback, outermost first, with its cfg place if any."""
    return [
        CfgFrame(frame.f_code.co_filename, lineno, frame.f_code.co_name, locate(frame, lineno))
        for frame, lineno in _walk(exc.__traceback__)
    ]


def format_cfg_report(exc: BaseException) -> str:
    """A short report for a log line, innermost cfg place first::

        ZeroDivisionError: division by zero
          in balancer.cfg:22 (route[RELAY])
          called from balancer.cfg:18 (request_route)

    Frames outside generated modules are left out; with none inside, the report is the
    exception line alone.
    """
    lines = [traceback.format_exception_only(type(exc), exc)[-1].rstrip("\n")]
    places = [f.location for f in reversed(cfg_frames(exc)) if f.location is not None]
    for index, place in enumerate(places):
        lines.append(f"  {'in' if index == 0 else 'called from'} {place}")
    return "\n".join(lines) + "\n"


def _rewrite(te: traceback.TracebackException, tb: TracebackType | None) -> None:
    frames = list(_walk(tb))
    if len(frames) != len(te.stack):  # a truncated stack (limit=): leave it as it is
        return
    summaries: list[traceback.FrameSummary] = []
    for summary, (frame, lineno) in zip(te.stack, frames, strict=True):
        place = locate(frame, lineno)
        if place is None:
            summaries.append(summary)
            continue
        linecache.checkcache(place.file)  # the cfg may have changed since it was cached
        text = linecache.getline(place.file, place.line).strip() or (summary.line or "")
        summaries.append(
            traceback.FrameSummary(
                place.file, place.line, place.block or summary.name, lookup_line=False, line=text
            )
        )
    te.stack = traceback.StackSummary.from_list(summaries)


def _rewrite_chain(te: traceback.TracebackException, exc: BaseException) -> None:
    seen: set[int] = set()
    pending: list[tuple[traceback.TracebackException, BaseException]] = [(te, exc)]
    while pending:
        current, error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        _rewrite(current, error.__traceback__)
        if current.__cause__ is not None and error.__cause__ is not None:
            pending.append((current.__cause__, error.__cause__))
        if current.__context__ is not None and error.__context__ is not None:
            pending.append((current.__context__, error.__context__))


def format_exception(exc: BaseException) -> str:
    """The traceback of ``exc`` as Python prints it, with generated frames shown at
    their cfg file, line and block (chained exceptions too)."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    _rewrite_chain(te, exc)
    return "".join(te.format())
