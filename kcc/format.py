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

Any failure is a kcc bug, never a config mistake: every cfg input that passes
``kcc check`` must generate valid Python. It is raised as :class:`GeneratedCodeError`,
which names the offending line of the generated text so the internal compiler error
report points at it.
"""

from __future__ import annotations

import re

import black
from black.mode import Mode, TargetVersion

__all__ = ["BLACK_MODE", "GeneratedCodeError", "format_module"]

#: The one black mode kcc formats with (kept in step with ``[tool.ruff]`` in pyproject).
BLACK_MODE = Mode(
    target_versions={TargetVersion.PY311},
    line_length=100,
    string_normalization=True,
    magic_trailing_comma=True,
    preview=False,
)

#: black's ``InvalidInput`` message: "Cannot parse for target version ...: 3:4: text".
_BLACK_POSITION = re.compile(r":\s*(?P<line>\d+):(?P<col>\d+)(?::|$)", re.MULTILINE)


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


def format_module(source: str, *, filename: str = "<kcc generated>") -> str:
    """Format generated Python with :data:`BLACK_MODE` and check that it compiles.

    Returns the formatted text with ``\\n`` line endings and exactly one trailing newline
    (an empty module stays empty). ``filename`` only names the text in the
    ``compile()`` error. Raises :class:`GeneratedCodeError`, nothing else.
    """
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        formatted = black.format_str(text, mode=BLACK_MODE)
    except Exception as exc:  # any black failure on generated code is a kcc bug
        message = str(exc).strip() or type(exc).__name__
        match = _BLACK_POSITION.search(message)
        line = int(match.group("line")) if match else None
        column = int(match.group("col")) + 1 if match else None
        raise GeneratedCodeError(
            "black",
            message.splitlines()[0],
            line=line,
            column=column,
            source_line=_line_of(text, line),
        ) from exc
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
