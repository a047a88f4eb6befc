"""The last stage of ``kcc build``: black with a pinned mode, then ``compile()``.

Code generation builds a LibCST tree (see ``kcc/codegen/``); its text is correct Python
but laid out however the tree's default whitespace falls. :func:`format_module` gives it
the one layout a reviewer expects, so ``golden/`` files and the ``kcc build`` output of
a config repository only change when the generated code does:

- **black, pinned.** :data:`BLACK_MODE` is the repository's own style (``ruff`` line
  length 100, Python 3.11 target, string normalization, magic trailing comma, no preview
  features). black's *stable* style only changes in its January releases, so
  ``pyproject.toml`` pins ``black>=26.1,<27``: a newer year's style is an explicit
  upgrade that regenerates the goldens in one reviewed commit.
- **Deterministic text.** Line endings become ``\\n`` before black sees the text (black
  keeps whatever the first line uses), the result ends with exactly one newline, and
  nothing here adds a timestamp, a version or a path.
- **compile() as a sanity check.** The formatted text is compiled (never executed) with
  ``dont_inherit=True``, so a generated module that black accepts but CPython rejects
  (a ``return`` outside a function, a duplicate argument, a NUL byte) is caught here,
  at build time, and not by the proxy at startup.

- **Fast: per top-level function, in parallel, cached.** black costs about 0.3 ms per
  line of already formatted code and 0.7 ms per line it changes (it re-runs itself on
  its own output then), which is ~10 s for the 15,000 lines a 10,000-line cfg gives.
  :func:`format_module` therefore cuts the module into *chunks* at top-level ``def``
  lines, formats each chunk alone, and joins them with two blank lines. That is exactly
  black's whole-file output when every cut satisfies :func:`_split_points`' conditions,
  derived from black's ``EmptyLineTracker`` (``black/lines.py``): the ``def`` is at
  column 0 and preceded by at least one blank line (so ``user_had_newline`` holds and the
  "no blank line after a stub ``def f(): ...``" rule cannot fire), the line before the
  blank ones is neither a comment (the comment-before-def rule) nor part of a decorator
  or a ``class`` (the class-docstring ``after`` line); then black puts exactly 2 blank
  lines before the ``def`` and its state after that line (``previous_defs``,
  ``semantic_leading_comment``, the previous line) is the state of a fresh file starting
  with it. Line formatting itself is per logical line, and a chunk starting with ``def``
  has no module docstring. Every chunk must ``compile()`` on its own, which proves the
  cut is at a statement boundary (not inside a string or brackets). Texts black treats
  specially across lines (``fmt: off``/``skip``, ``yapf: disable``, form feeds, an
  encoding cookie) are formatted whole. ``tests/test_format.py`` compares chunked and
  whole-file output on every golden and on generated modules.

  Chunks go to a :class:`~concurrent.futures.ProcessPoolExecutor` (one worker per core)
  when there are more than :data:`PARALLEL_MIN_LINES` lines to format, and black's
  result for each chunk is cached on disk under ``sha256(black version, mode, chunk)``
  (``$KCC_CACHE_DIR``, else ``$XDG_CACHE_HOME/kcc/black``, else ``~/.cache/kcc/black``;
  ``KCC_NO_CACHE=1`` turns it off), so rebuilding a config after a small change only
  formats the functions that changed. A cache that cannot be read or written is
  ignored.

Any failure is a kcc bug, never a config mistake: every cfg input that passes
``kcc check`` must generate valid Python. It is raised as :class:`GeneratedCodeError`,
which names the offending line of the generated text so the internal compiler error
report points at it (when a chunk fails, the whole text is given to black again so the
error is the one whole-file black reports, with its line number).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import multiprocessing
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import black
from black.mode import Mode, TargetVersion

__all__ = [
    "BLACK_MODE",
    "PARALLEL_MIN_LINES",
    "FormatStream",
    "GeneratedCodeError",
    "cache_dir",
    "format_module",
]

#: the lines of generated text :class:`FormatStream` hands a worker at a time
_STREAM_BATCH_LINES = 400

#: The one black mode kcc formats with (kept in step with ``[tool.ruff]`` in pyproject).
BLACK_MODE = Mode(
    target_versions={TargetVersion.PY311},
    line_length=100,
    string_normalization=True,
    magic_trailing_comma=True,
    preview=False,
)

#: Below this many lines still to format, a process pool costs more than it saves
#: (starting the workers is ~30 ms; black does ~2,000 lines a second).
PARALLEL_MIN_LINES = 1500

#: black's ``InvalidInput`` message: "Cannot parse for target version ...: 3:4: text".
_BLACK_POSITION = re.compile(r":\s*(?P<line>\d+):(?P<col>\d+)(?::|$)", re.MULTILINE)

#: text black handles across statements: formatted whole, never cut
_WHOLE_ONLY = re.compile(r"fmt\s*:|yapf\s*:|coding[:=]|[\f\v]")

_CACHE_SALT = (
    f"kcc-format-1\0black {importlib.metadata.version('black')}\0{BLACK_MODE.get_cache_key()}\0"
)


class GeneratedCodeError(Exception):
    """The code generator produced text that black or ``compile()`` rejects.

    An internal compiler error: the CLI reports it with exit code 70. ``line`` and
    ``column`` are 1-based positions in the generated text (``None`` when the tool gave
    none); ``source_line`` is that line of the text, for the report.
    """

    def __init__(
        self,
        stage: str,
        message: str,
        *,
        line: int | None,
        column: int | None,
        source_line: str | None,
    ) -> None:
        self.stage = stage
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        where = f" at line {line}" + (f", column {column}" if column is not None else "")
        text = f"{stage} rejected the generated code{where if line is not None else ''}: {message}"
        if source_line is not None:
            text += f"\n    {source_line}"
        super().__init__(text)


def _line_of(text: str, line: int | None) -> str | None:
    if line is None or line < 1:
        return None
    lines = text.split("\n")
    return lines[line - 1] if line <= len(lines) else None


# -- cutting the module into chunks ------------------------------------------------------


def _split_points(lines: Sequence[str]) -> list[int]:
    """Indexes of the lines where a chunk may start (see the module docstring)."""
    points: list[int] = []
    unsafe_since_cut = False  # a class or a decorator since the last cut
    for index, line in enumerate(lines):
        if line.startswith(("class ", "@")):
            unsafe_since_cut = True
            continue
        if not line.startswith(("def ", "async def ")) or index == 0:
            continue
        before = index - 1
        while before >= 0 and not lines[before].strip(" \t"):
            before -= 1
        if (
            before >= 0
            and before < index - 1  # at least one blank line
            and not lines[before].lstrip(" \t").startswith("#")
            and not unsafe_since_cut
            and (not points or before >= points[-1])
        ):
            points.append(index)
        unsafe_since_cut = False
    return points


def _chunks(text: str) -> list[str]:
    """The text cut at :func:`_split_points`, each chunk a statement sequence that
    compiles alone; one chunk (the whole text) when no cut can be proven."""
    if _WHOLE_ONLY.search(text):
        return [text]
    lines = text.split("\n")
    points = _split_points(lines)
    if not points:
        return [text]
    bounds = [0, *points, len(lines)]
    chunks = []
    for start, end in itertools.pairwise(bounds):
        chunk = "\n".join(lines[start:end]).rstrip(" \t\n") + "\n"
        try:
            compile(chunk, "<chunk>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return [text]
        chunks.append(chunk)
    return chunks


# -- the cache ---------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """Where black's results are kept; None when ``KCC_NO_CACHE`` is set (non-empty)."""
    if os.environ.get("KCC_NO_CACHE"):
        return None
    explicit = os.environ.get("KCC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kcc" / "black"


def _cache_key(chunk: str) -> str:
    return hashlib.sha256((_CACHE_SALT + chunk).encode("utf-8", "surrogatepass")).hexdigest()


def _cache_get(directory: Path, key: str) -> str | None:
    try:
        data = (directory / key[:2] / key).read_bytes()
    except OSError:
        return None
    # an entry is "<key>\n<text>": a truncated or foreign file is a miss
    head, sep, text = data.partition(b"\n")
    if not sep or head.decode("ascii", "replace") != key:
        return None
    try:
        return text.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def _cache_put(directory: Path, key: str, text: str) -> None:
    try:
        folder = directory / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(key.encode("ascii") + b"\n" + text.encode("utf-8", "surrogatepass"))
            os.replace(tmp, folder / key)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


# -- running black -----------------------------------------------------------------------


def _black_many(chunks: Sequence[str]) -> list[str]:
    """black on each chunk (the unit of work a pool worker gets)."""
    return [black.format_str(chunk, mode=BLACK_MODE) for chunk in chunks]


def _batches(chunks: Sequence[str], count: int) -> list[list[str]]:
    """Consecutive runs of chunks of about equal line counts, for ``count`` batches."""
    total = sum(chunk.count("\n") for chunk in chunks)
    target = max(1, total // count)
    batches: list[list[str]] = [[]]
    size = 0
    for chunk in chunks:
        if size >= target:
            batches.append([])
            size = 0
        batches[-1].append(chunk)
        size += chunk.count("\n")
    return batches


def _jobs(requested: int | None, lines: int) -> int:
    if requested is not None:
        return max(1, requested)
    if lines < PARALLEL_MIN_LINES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _black_all(chunks: Sequence[str], jobs: int) -> list[str]:
    if jobs <= 1 or len(chunks) < 2:
        return _black_many(chunks)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    batches = _batches(chunks, jobs * 4)
    with ProcessPoolExecutor(max_workers=min(jobs, len(batches)), mp_context=context) as pool:
        results = list(pool.map(_black_many, batches))
    return [text for batch in results for text in batch]


def _format_chunks(chunks: Sequence[str], jobs: int | None) -> list[str]:
    """black's output for every chunk: from the cache, else computed (and cached)."""
    directory = cache_dir()
    keys = [_cache_key(chunk) for chunk in chunks]
    done: dict[str, str] = {}
    if directory is not None:
        for key in dict.fromkeys(keys):
            cached = _cache_get(directory, key)
            if cached is not None:
                done[key] = cached
    todo = {key: chunk for key, chunk in zip(keys, chunks, strict=True) if key not in done}
    work = list(todo.values())
    lines = sum(chunk.count("\n") for chunk in work)
    for key, text in zip(todo, _black_all(work, _jobs(jobs, lines)), strict=True):
        done[key] = text
        if directory is not None:
            _cache_put(directory, key, text)
    return [done[key] for key in keys]


def _black_error(text: str, exc: Exception) -> GeneratedCodeError:
    message = str(exc).strip() or type(exc).__name__
    match = _BLACK_POSITION.search(message)
    line = int(match.group("line")) if match else None
    column = int(match.group("col")) + 1 if match else None
    return GeneratedCodeError(
        "black",
        message.splitlines()[0],
        line=line,
        column=column,
        source_line=_line_of(text, line),
    )


def format_module(
    source: str, *, filename: str = "<kcc generated>", jobs: int | None = None
) -> str:
    """Format generated Python with :data:`BLACK_MODE` and check that it compiles.

    Returns exactly ``black.format_str(text, mode=BLACK_MODE)`` for the text with
    ``\\n`` line endings, with exactly one trailing newline (an empty module stays
    empty). ``filename`` only names the text in the ``compile()`` error; ``jobs`` is the
    number of black processes (default: one per core above :data:`PARALLEL_MIN_LINES`
    lines, else 1). Raises :class:`GeneratedCodeError`, nothing else.
    """
    text = _normalise(source)
    try:
        formatted = "\n\n".join(_format_chunks(_chunks(text), jobs))
    except Exception:  # any black failure on generated code is a kcc bug
        formatted = _black_whole(text)
    return _finish(formatted, filename)


def _normalise(source: str) -> str:
    return source.replace("\r\n", "\n").replace("\r", "\n")


def _black_whole(text: str) -> str:
    """black on the whole text: its output, or its error with whole-text line numbers."""
    try:
        return black.format_str(text, mode=BLACK_MODE)
    except Exception as exc:
        raise _black_error(text, exc) from exc


def _finish(formatted: str, filename: str) -> str:
    """One trailing newline, then ``compile()``."""
    formatted = formatted.rstrip("\n")
    if not formatted:
        return ""
    formatted += "\n"
    try:
        compile(formatted, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise GeneratedCodeError(
            "compile()",
            exc.msg,
            line=exc.lineno,
            column=exc.offset,
            source_line=_line_of(formatted, exc.lineno),
        ) from exc
    except ValueError as exc:  # Python 3.11: "source code string cannot contain null bytes"
        line = formatted.count("\n", 0, formatted.find("\0")) + 1 if "\0" in formatted else None
        raise GeneratedCodeError(
            "compile()", str(exc), line=line, column=None, source_line=_line_of(formatted, line)
        ) from exc
    return formatted


def _piece_key(piece: str) -> str:
    """A submitted piece as :func:`_chunks` would cut it out of the whole text."""
    return piece.lstrip("\n").rstrip(" \t\n") + "\n"


class FormatStream:
    """:func:`format_module` that starts while the module is still being generated.

    The build stage submits each top-level function's text as soon as the code
    generator has built it; every ``_STREAM_BATCH_LINES`` lines of such pieces go to a
    worker process as one batch, so black runs while generation goes on (a module
    smaller than one batch is formatted by :func:`format_module` at the end).
    :meth:`finish` gets the whole text, cuts it with :func:`_chunks` exactly as
    :func:`format_module` does, and takes black's result for every chunk that equals a
    submitted piece from the workers; the other chunks (the module head, the last
    function with the tables after it) are formatted then. So the output is, by
    construction, :func:`format_module`'s output: a piece that does not match a chunk
    is only wasted work. Use as a context manager, so the pool is shut down whatever
    happens.
    """

    def __init__(self, *, jobs: int | None = None) -> None:
        self._jobs = jobs if jobs is not None else max(1, min(os.cpu_count() or 1, 8))
        self._pending: list[str] = []
        self._pending_lines = 0
        #: a piece -> the batch formatting it and its place in the batch
        self._futures: dict[str, tuple[Future[list[str]], int]] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._directory = cache_dir()

    def __enter__(self) -> FormatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, piece: str) -> None:
        """Queue one top-level function's text (leading blank lines allowed)."""
        if self._jobs <= 1 or _WHOLE_ONLY.search(piece):
            return
        key = _piece_key(_normalise(piece))
        if key in self._futures or key in self._pending:
            return
        if self._directory is not None and _cache_get(self._directory, _cache_key(key)):
            return
        self._pending.append(key)
        self._pending_lines += key.count("\n")
        if self._pending_lines < _STREAM_BATCH_LINES:
            return
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._pool = ProcessPoolExecutor(max_workers=self._jobs, mp_context=context)
        batch = self._pool.submit(_black_many, self._pending)
        for position, chunk in enumerate(self._pending):
            self._futures[chunk] = (batch, position)
        self._pending = []
        self._pending_lines = 0

    def finish(self, source: str, *, filename: str = "<kcc generated>") -> str:
        """The formatted whole module (the same text :func:`format_module` returns)."""
        if self._pool is None:
            return format_module(source, filename=filename, jobs=self._jobs)
        text = _normalise(source)
        try:
            chunks = _chunks(text)
            done: dict[str, str] = {}
            for chunk in chunks:
                found = self._futures.get(chunk)
                if found is not None:
                    done[chunk] = found[0].result()[found[1]]
                    if self._directory is not None:
                        _cache_put(self._directory, _cache_key(chunk), done[chunk])
            rest = [chunk for chunk in chunks if chunk not in done]
            done.update(zip(rest, _format_chunks(rest, 1), strict=True))
            formatted = "\n\n".join(done[chunk] for chunk in chunks)
        except Exception:  # any black failure on generated code is a kcc bug
            formatted = _black_whole(text)
        return _finish(formatted, filename)
