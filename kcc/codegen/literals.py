"""Safe Python literals for cfg values, and the ``# file.cfg:N`` marker comments.

A cfg string reaches the generated module only through this module, and it can never
leave its literal: every character that could end the literal, start an escape,
change the meaning of the source or hide from a reviewer is written as an escape.

The escaping rules (:func:`python_string_source`):

- ``\\`` and the quote character are backslash-escaped; ``\\n``, ``\\r``, ``\\t`` get their
  short escapes.
- Every other character that ``str.isprintable()`` rejects is a hex escape (``\\x00``,
  ``\\x7f``, ``\\u2028``, ``\\u202e``, ``\\U000e0001``), in lower case, as black writes
  them: NUL and the other C0/C1 controls, line and paragraph separators (which CPython's
  tokenizer would treat as line breaks), the bidirectional overrides of "Trojan Source"
  (CVE-2021-42574), zero-width characters, non-ASCII spaces and lone surrogates.
- Printable non-ASCII text stays as it is (``"Grüße"``), so a literal reads like the cfg.
- ``{`` and ``}`` need nothing (no f-strings are generated) and ``\"\"\"`` cannot occur
  unescaped because every ``"`` in a ``"``-quoted literal is escaped.

**Bytes that are not UTF-8.** A cfg file read with ``errors="surrogateescape"`` turns
each undecodable byte into a lone surrogate (``0xff`` → ``"\\udcff"``). The literal for
such a value is still a ``str``, with ``\\udcff`` escapes: the generated module holds
exactly the value the compiler saw, keeps one type for every string argument (a
function's ``str`` parameter never receives ``bytes`` because of one odd byte), and the
runtime recovers the original bytes with ``value.encode("utf-8", "surrogateescape")``
when it writes them into a SIP message. :func:`bytes_literal` exists for the places the
generator wants ``bytes`` itself (header names on the fast path).

**Long values** are split into implicitly concatenated pieces of at most
:data:`CHUNK` characters (after a ``\\n`` when there is one in reach), so black can lay a
long reason phrase or SDP body out over several lines of at most 100 columns; the pieces
evaluate to the same string.

**Markers.** :func:`marker_comment` writes ``# <file>:<line>``; the file name is a path
from the cfg (``include_file``), so it gets the same escaping: a newline in a file name
can never end the comment and start a statement. ``kcc_runtime.debug`` reads markers back.
"""

from __future__ import annotations

import functools

import libcst as cst

__all__ = [
    "CHUNK",
    "bytes_literal",
    "escape_text",
    "marker_comment",
    "python_bytes_source",
    "python_string_source",
    "string_literal",
]

#: Longest piece (in characters of the value) of one ``SimpleString`` in a long literal.
CHUNK = 72

_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_text(value: str, quote: str = '"') -> str:
    """The body of a Python string literal (no quotes, no prefix) that evaluates to ``value``.

    ``quote`` is the delimiter the body will sit between; it is escaped, the other
    quote is not.
    """
    out: list[str] = []
    for char in value:
        short = _SHORT_ESCAPES.get(char)
        if short is not None:
            out.append(short)
        elif char == quote:
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(_escape_char(char))
    return "".join(out)


def _quote_for(value: str) -> str:
    """black's choice: double quotes unless that needs more escapes than single quotes."""
    return "'" if value.count('"') > value.count("'") else '"'


def python_string_source(value: str) -> str:
    """The source text of one Python string literal whose value is exactly ``value``."""
    quote = _quote_for(value)
    return f"{quote}{escape_text(value, quote)}{quote}"


def _chunks(value: str, size: int) -> list[str]:
    """Cut ``value`` into pieces of at most ``size`` characters, after a newline if one
    falls in the second half of a piece (an SDP body or a multi-line header splits at its
    lines)."""
    pieces: list[str] = []
    start = 0
    while len(value) - start > size:
        cut = value.rfind("\n", start + size // 2, start + size)
        end = cut + 1 if cut >= 0 else start + size
        pieces.append(value[start:end])
        start = end
    pieces.append(value[start:])
    return pieces


#: most pieces one literal is cut into (each one level of LibCST nesting)
MAX_PIECES = 64


@functools.lru_cache(maxsize=4096)
def string_literal(
    value: str, *, chunk: int | None = CHUNK
) -> cst.SimpleString | cst.ConcatenatedString:
    """A LibCST literal that evaluates to exactly ``value`` (any ``str``, surrogates too).

    Values longer than ``chunk`` characters become a ``ConcatenatedString`` of pieces;
    ``chunk=None`` always gives one ``SimpleString``. Cached: LibCST nodes are
    immutable, so one node may appear at several places of a tree.
    """
    if chunk is None or len(value) <= chunk or len(value) > chunk * MAX_PIECES:
        # past MAX_PIECES pieces, LibCST's nested ConcatenatedString would exhaust the
        # recursion limit when printed: one (long) literal then
        return cst.SimpleString(python_string_source(value))
    pieces = [cst.SimpleString(python_string_source(piece)) for piece in _chunks(value, chunk)]
    result: cst.SimpleString | cst.ConcatenatedString = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = cst.ConcatenatedString(left=piece, right=result)
    return result


def python_bytes_source(value: bytes) -> str:
    """The source text of a ``b"..."`` literal: printable ASCII as is, the rest ``\\xNN``."""
    out: list[str] = []
    for byte in value:
        char = chr(byte)
        short = _SHORT_ESCAPES.get(char)
        if short is not None:
            out.append(short)
        elif char == '"':
            out.append('\\"')
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return 'b"' + "".join(out) + '"'


def bytes_literal(value: bytes) -> cst.SimpleString:
    """A LibCST ``bytes`` literal that evaluates to exactly ``value``."""
    return cst.SimpleString(python_bytes_source(value))


def marker_comment(file: str, line: int) -> cst.Comment:
    """The ``# file.cfg:N`` comment that maps a generated line back to the config.

    The file name is escaped like a literal body (without quotes), so it stays on the
    comment's line whatever it contains.
    """
    if line < 1:
        raise ValueError(f"a cfg line number starts at 1, got {line}")
    return cst.Comment(f"# {escape_text(file, quote='')}:{line}")
