"""Text operations on the SIP message: header search, add and remove,
regex replacement in headers and body, body helpers.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from kcc_runtime import pv
from kcc_runtime import values as v
from kcc_runtime.context import Context
from kcc_runtime.exports import (
    ANY,
    INT,
    PV_WRITE,
    REGEX,
    STR,
    STR_CONST,
    Cmd,
    ModuleExports,
    Route,
)
from kcc_runtime.modules.core import rewriteuser, split_uri
from kcc_runtime.pv import current_ruri, set_ruri
from kcc_runtime.sip import Message, Request, SipParseError
from kcc_runtime.sip.message import canonical_name

__all__ = [
    "EXPORTS",
    "SubstExpr",
    "append_hf",
    "append_to_reply",
    "cmp_istr",
    "cmp_str",
    "ends_with",
    "has_body",
    "insert_hf",
    "is_method",
    "is_present_hf",
    "is_present_hf_re",
    "parse_subst",
    "remove_hf",
    "remove_hf_re",
    "replace",
    "replace_all",
    "reply_lumps",
    "search",
    "search_append",
    "search_body",
    "starts_with",
    "str_find",
    "str_ifind",
    "subst",
    "subst_body",
    "subst_uri",
    "subst_user",
]

log = logging.getLogger("kcc_runtime.textops")

#: ``is_method`` argument -> its method set, parsed once per distinct argument
_METHOD_SETS: dict[str, frozenset[str]] = {}
#: ``search`` patterns recompiled for REG_NEWLINE semantics, per pattern object
_LINE_PATTERNS: dict[re.Pattern[str], re.Pattern[str]] = {}
#: ``\\A`` / ``\\Z`` (how ``compile_posix_ere`` writes ``^`` / ``$``) not preceded
#: by an escaping backslash
_ANCHOR = re.compile(r"((?<!\\)(?:\\\\)*)\\([AZ])")


def _method_set(methods: str) -> frozenset[str]:
    found = _METHOD_SETS.get(methods)
    if found is None:
        found = frozenset(m.strip().upper() for m in methods.split("|") if m.strip())
        if len(_METHOD_SETS) < 4096:
            _METHOD_SETS[methods] = found
    return found


def starts_with(ctx: Context, text: str, prefix: str) -> int:
    """``starts_with(s1, s2)``: 1 when ``s1`` begins with ``s2`` (case-sensitive,
    ``""`` is a prefix of anything), else -1. Measured on Kamailio 5.6.3."""
    return 1 if text.startswith(prefix) else -1


def ends_with(ctx: Context, text: str, suffix: str) -> int:
    """``ends_with(s1, s2)``: 1 when ``s1`` ends with ``s2``, else -1
    (``ends_with("bc", "abc")`` is -1)."""
    return 1 if text.endswith(suffix) else -1


def _find(text: str, needle: str) -> int:
    """Kamailio's ``str_search`` result as a return code: the 1-based position of
    the first occurrence, -1 when absent. An empty needle gives ``len(text) + 1``
    (measured: ``str_find("abc", "")`` is 4)."""
    if not needle:
        return len(text) + 1
    at = text.find(needle)
    return -1 if at < 0 else at + 1


def str_find(ctx: Context, text: str, needle: str) -> int:
    """``str_find(s1, s2)``: where ``s2`` first occurs in ``s1`` (1-based), -1 when
    it does not (``str_find("abcabc", "ca")`` is 3)."""
    return _find(text, needle)


def str_ifind(ctx: Context, text: str, needle: str) -> int:
    """``str_ifind(s1, s2)``: :func:`str_find` ignoring ASCII case
    (``str_ifind("abcabc", "CA")`` is 3)."""
    return _find(text.lower(), needle.lower())


def _compare(left: str, right: str) -> int:
    """Kamailio's ``cmp_str`` result as a return code: 1 equal, -1 when ``left``
    sorts after ``right``, -2 when before (a prefix sorts first): measured
    ``cmp_str("abc", "abd")`` -2, ``("abd", "abc")`` -1, ``("ab", "abc")`` -2."""
    a, b = left.encode("utf-8", "surrogateescape"), right.encode("utf-8", "surrogateescape")
    if a == b:
        return 1
    return -1 if a > b else -2


def cmp_str(ctx: Context, left: str, right: str) -> int:
    """``cmp_str(s1, s2)``: byte comparison, 1 when equal (see :func:`_compare`)."""
    return _compare(left, right)


def cmp_istr(ctx: Context, left: str, right: str) -> int:
    """``cmp_istr(s1, s2)``: as :func:`cmp_str` ignoring ASCII case."""
    return _compare(left.lower(), right.lower())


def is_method(ctx: Context, methods: str) -> int:
    """``is_method("INVITE|ACK")``: 1 when the request's method (a reply's CSeq
    method) is one of the ``|``-separated names, else -1.

    Measured against Kamailio 5.6: the comparison is case-insensitive for known and
    unknown methods alike (``bye`` and ``Foo`` match ``BYE`` and ``foo``)."""
    wanted = _method_set(methods)
    msg = ctx.msg
    if isinstance(msg, Request):
        method = msg.method
    else:
        try:
            cseq = msg.cseq
        except SipParseError:
            return -1
        if cseq is None:
            return -1
        method = cseq.method
    return 1 if method.upper() in wanted else -1


def _find_line(ctx: Context, name: str) -> int:
    key = canonical_name(name)
    for i, n in enumerate(ctx.msg.names):
        if n == key:
            return i
    return -1


def _insert_text(ctx: Context, at: int, text: str) -> None:
    ctx.msg._splice(at, at, text.encode("utf-8", "surrogateescape"))


def append_hf(ctx: Context, text: str, after: str | None = None) -> int:
    """``append_hf("X: v\\r\\n" [, "Hdr"])``: add the text verbatim (the script
    supplies the CRLF) after the last header, or after the first ``Hdr`` line
    (-1 when there is none). Measured against Kamailio 5.6."""
    msg = ctx.msg
    if after is None:
        _insert_text(ctx, msg.hdr_end, text)
        return 1
    i = _find_line(ctx, after)
    if i < 0:
        return -1
    _insert_text(ctx, msg.spans[i][3], text)
    return 1


def insert_hf(ctx: Context, text: str, before: str | None = None) -> int:
    """``insert_hf("X: v\\r\\n" [, "Hdr"])``: add the text verbatim before the
    first header, or before the first ``Hdr`` line (-1 when there is none)."""
    msg = ctx.msg
    if before is None:
        _insert_text(ctx, msg.hdr_start, text)
        return 1
    i = _find_line(ctx, before)
    if i < 0:
        return -1
    _insert_text(ctx, msg.spans[i][0], text)
    return 1


def remove_hf(ctx: Context, name: str) -> int:
    """``remove_hf("Hdr")``: remove every received ``Hdr`` line (name compared
    case-insensitively; headers added by the script are not seen, as in Kamailio):
    1 when at least one was removed, -1 when none was there."""
    return 1 if ctx.msg.remove_header(name) > 0 else -1


def is_present_hf(ctx: Context, name: str) -> int:
    """``is_present_hf("Hdr")``: 1 when the message has a ``Hdr`` line, else -1."""
    return 1 if ctx.msg.has_header(name) else -1


def _line_pattern(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` (compiled by ``compile_posix_ere``: ``REG_EXTENDED|REG_ICASE``) as
    Kamailio's textops compiles its regex arguments, ``REG_EXTENDED|REG_ICASE|
    REG_NEWLINE``: ``^``/``$`` match at line boundaries and ``.`` does not match a
    newline. Cached per pattern object."""
    compiled = _LINE_PATTERNS.get(pattern)
    if compiled is None:
        lines = _ANCHOR.sub(
            lambda m: m.group(1) + ("(?m:^)" if m.group(2) == "A" else "(?m:$)"), pattern.pattern
        )
        compiled = re.compile(lines, pattern.flags & ~re.DOTALL)
        if len(_LINE_PATTERNS) < 1024:
            _LINE_PATTERNS[pattern] = compiled
    return compiled


def search(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``search("re")``: 1 when the regex matches somewhere in the received message
    (first line, headers, body), else -1. Kamailio compiles it with
    ``REG_EXTENDED|REG_ICASE|REG_NEWLINE``: ``^``/``$`` match at line boundaries and
    ``.`` does not match a newline."""
    compiled = _line_pattern(pattern)
    msg = ctx.msg
    text = msg.buf[: msg.body_end].decode("utf-8", "surrogateescape")
    return 1 if compiled.search(text) else -1


# ---------------------------------------------------------------------------------
# byte-faithful text views, body length
# ---------------------------------------------------------------------------------
#
# The functions below edit the message at offsets found by a regex, so they search a
# latin-1 view of the bytes (one character per octet, offsets equal byte offsets) as
# glibc's ``regexec`` does on Kamailio's buffer. Text from the cfg (replacements,
# patterns) is UTF-8: it is mapped into the same view with :func:`_view`.


def _view(text: str) -> str:
    """UTF-8 text from the cfg as the latin-1 view of its bytes."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _octets(view: str) -> bytes:
    return view.encode("latin-1")


def _msg_view(msg: Message, start: int, end: int) -> str:
    return msg.buf[start:end].decode("latin-1")


def _sync_content_length(msg: Message) -> None:
    """Keep Content-Length right after edits inside the body, as Kamailio does when it
    builds the outgoing message from a body changed by lumps."""
    body_start = msg.body_start
    delta = 0
    touched = False
    for start, end, data in msg._edits:
        if start >= body_start and (start > msg.hdr_end or start == end == body_start):
            delta += len(data) - (end - start)
            touched = True
    if touched:
        msg._cache["new_length"] = msg.body_end - body_start + delta


def _edit(msg: Message, start: int, end: int, data: bytes) -> None:
    msg._splice(start, end, data)
    if end >= msg.body_start and end > msg.hdr_end:
        _sync_content_length(msg)


# ---------------------------------------------------------------------------------
# sed-like substitutions: subst, subst_uri, subst_user, subst_body
# ---------------------------------------------------------------------------------


class _RuriToken:
    """``\\u`` in a replacement: the current R-URI."""


_RURI: Final = _RuriToken()
#: a piece of a replacement: literal text (latin-1 view), a group number, ``\\u``, a PV
_Token: TypeAlias = str | int | _RuriToken | pv.Accessor
#: ``$name``, ``$name(inner)``, ``$(name(inner))`` in a replacement
_PV_SPEC = re.compile(
    r"\$(?:\(([A-Za-z_][\w.]*)(?:\(([^()]*)\))?\)|([A-Za-z_][\w.]*)(?:\(([^()]*)\))?)"
)
#: single-character escapes of a replacement (Kamailio ``parse_repl``)
_REPL_CHARS: Final = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


@dataclass(frozen=True, slots=True)
class SubstExpr:
    """A parsed ``/re/repl/flags`` (Kamailio's ``subst_parser``)."""

    regex: re.Pattern[str]
    tokens: tuple[_Token, ...]
    replace_all: bool


#: ``subst`` expressions parsed once per distinct text (None: the text is invalid)
_SUBST_CACHE: dict[str, SubstExpr | None] = {}


def parse_subst(text: str) -> SubstExpr | None:
    """Parse ``/re/repl/flags`` as Kamailio's ``subst_parser`` (``src/core/re.c``):

    - the first character is the separator (not ``\\``); the regex ends at the first
      separator not preceded by ``\\``; the replacement at the next unescaped one;
    - flags: ``i`` (ignore case), ``g`` (every match), ``s`` (``^``/``$``/``.`` see
      the whole text, not lines); the regex is otherwise compiled with
      ``REG_EXTENDED|REG_NEWLINE`` (case-sensitive, line anchors);
    - in the replacement ``\\0``..``\\9`` are the match and its groups, ``\\u`` the
      R-URI, ``\\n \\r \\t \\\\ \\$`` those characters, any other ``\\c`` is ``c``, and
      ``$pv`` a pseudo-variable read when the substitution runs.

    None (with Kamailio's error logged) when the text is not a valid expression."""
    if text in _SUBST_CACHE:
        return _SUBST_CACHE[text]
    parsed = _parse_subst(text)
    if len(_SUBST_CACHE) < 1024:
        _SUBST_CACHE[text] = parsed
    return parsed


def _parse_subst(text: str) -> SubstExpr | None:
    if len(text) < 3 or text[0] == "\\":
        log.error("bad subst expression %r", text)
        return None
    sep = text[0]
    p = 1
    while p < len(text) and not (text[p] == sep and text[p - 1] != "\\"):
        p += 1
    if p >= len(text) - 1:
        log.error("no separator found in subst expression %r", text)
        return None
    regex_text = text[1:p]
    tokens: list[_Token] = []
    literal: list[str] = []
    p += 1
    closed = False
    while p < len(text):
        c = text[p]
        if c == "\\" and p + 1 < len(text):
            nxt = text[p + 1]
            p += 2
            if nxt.isdigit():
                tokens.extend(("".join(literal), int(nxt)))
                literal = []
            elif nxt == "u":
                tokens.extend(("".join(literal), _RURI))
                literal = []
            else:
                literal.append(_REPL_CHARS.get(nxt, nxt))
            continue
        if c == "$":
            m = _PV_SPEC.match(text, p)
            if m is None:
                log.error("bad pseudo-variable in the replacement of %r", text)
                return None
            name = m.group(1) or m.group(3)
            inner = m.group(2) if m.group(1) else m.group(4)
            try:
                spec = pv.accessor(name, inner)
            except pv.PvError as failure:
                log.error("%s (in %r)", failure, text)
                return None
            tokens.extend(("".join(literal), spec))
            literal = []
            p = m.end()
            continue
        if c == sep:
            closed = True
            p += 1
            break
        literal.append(c)
        p += 1
    if not closed:
        log.error("missing separator in subst expression %r", text)
        return None
    tokens.append("".join(literal))
    flags = re.ASCII
    line_mode = True
    replace_all = False
    for flag in text[p:]:
        if flag == "i":
            flags |= re.IGNORECASE
        elif flag == "s":
            line_mode = False
        elif flag == "g":
            replace_all = True
        else:
            log.error("unknown flag %r in subst expression %r", flag, text)
            return None
    try:
        translated = v.compile_posix_ere(_view(regex_text)).pattern
    except v.EvalError as failure:
        log.error("%s (in subst expression %r)", failure, text)
        return None
    if line_mode:
        translated = _ANCHOR.sub(
            lambda m: m.group(1) + ("(?m:^)" if m.group(2) == "A" else "(?m:$)"), translated
        )
    else:
        flags |= re.DOTALL
    regex = re.compile(translated, flags)
    kept = tuple(t for t in tokens if t != "")
    return SubstExpr(regex, tuple(_view(t) if isinstance(t, str) else t for t in kept), replace_all)


def _replacement(ctx: Context, se: SubstExpr, m: re.Match[str]) -> str:
    out: list[str] = []
    for token in se.tokens:
        if isinstance(token, str):
            out.append(token)
        elif isinstance(token, int):
            if token <= se.regex.groups:
                out.append(m.group(token) or "")
        elif isinstance(token, _RuriToken):
            ruri = current_ruri(ctx)
            if ruri is not None:
                out.append(_view(ruri))
        else:
            value = token.get(ctx)
            out.append(_view("<null>" if value is None else str(value)))
    return "".join(out)


def _subst_matches(ctx: Context, se: SubstExpr, text: str) -> list[tuple[int, int, str]] | None:
    """``(start, end, replacement)`` of the first match, or of every match with ``g``
    (Kamailio ``subst_run``); None when a match is empty (Kamailio: "Matched string
    is empty, invalid regexp?", the function fails)."""
    out: list[tuple[int, int, str]] = []
    for m in se.regex.finditer(text):
        if m.start() == m.end():
            log.error("matched string is empty, invalid regexp?")
            return None
        out.append((m.start(), m.end(), _replacement(ctx, se, m)))
        if not se.replace_all:
            break
    return out


def _subst_str(ctx: Context, expr: str, text: str) -> str | None:
    """The substitution applied to a string: the new text, None on no match or error."""
    se = parse_subst(expr)
    if se is None:
        return None
    view = _view(text)
    found = _subst_matches(ctx, se, view)
    if not found:
        return None
    out: list[str] = []
    cur = 0
    for start, end, repl in found:
        out += [view[cur:start], repl]
        cur = end
    out.append(view[cur:])
    return _octets("".join(out)).decode("utf-8", "surrogateescape")


def _subst_region(ctx: Context, expr: str, start: int, end: int) -> int:
    se = parse_subst(expr)
    if se is None:
        return -1
    msg = ctx.msg
    found = _subst_matches(ctx, se, _msg_view(msg, start, end))
    if not found:
        return -1
    for s, e, repl in found:
        _edit(msg, start + s, start + e, _octets(repl))
    return 1


def subst(ctx: Context, expr: str) -> int:
    """``subst('/re/repl/flags')``: replace the first match (every match with ``g``)
    in the message after its first line, headers and body (measured on Kamailio 5.6:
    the R-URI in the request line is not touched). 1 when something was replaced,
    -1 when nothing matched, the expression is invalid or a match is empty.
    Content-Length follows a changed body."""
    msg = ctx.msg
    return _subst_region(ctx, expr, msg.hdr_start, msg.body_end)


def subst_body(ctx: Context, expr: str) -> int:
    """``subst_body('/re/repl/flags')``: :func:`subst` on the body only; -1 when the
    message has no body."""
    msg = ctx.msg
    if msg.body_end <= msg.body_start:
        return -1
    return _subst_region(ctx, expr, msg.body_start, msg.body_end)


def subst_uri(ctx: Context, expr: str) -> int:
    """``subst_uri('/re/repl/flags')``: run the substitution on the R-URI (the
    rewritten one if any) and make the result the new R-URI: 1, -1 when nothing
    matched or on a reply. The result is not checked to be a URI (Kamailio 5.6
    forwards ``subst_uri('/^tel:(.*)$/x/')`` as ``INVITE x SIP/2.0``)."""
    ruri = current_ruri(ctx)
    if ruri is None:
        return -1
    result = _subst_str(ctx, expr, ruri)
    if result is None:
        return -1
    return 1 if set_ruri(ctx, result) else -1


def subst_user(ctx: Context, expr: str) -> int:
    """``subst_user('/re/repl/flags')``: run the substitution on the R-URI's user
    part (empty when there is none) and write the result back as the user
    (``rewriteuser``): 1, -1 when nothing matched, the R-URI does not parse, or a
    match is empty (``/^$/x/`` on a user-less URI is -1 in Kamailio 5.6)."""
    ruri = current_ruri(ctx)
    parts = None if ruri is None else split_uri(ruri)
    if parts is None:
        return -1
    result = _subst_str(ctx, expr, parts.user or "")
    if result is None:
        return -1
    return rewriteuser(ctx, result)


# ---------------------------------------------------------------------------------
# replace, search_append, search_body
# ---------------------------------------------------------------------------------


def _matches(pattern: re.Pattern[str], text: str, every: bool) -> list[tuple[int, int]] | None:
    found: list[tuple[int, int]] = []
    for m in _line_pattern(pattern).finditer(text):
        if m.start() == m.end():
            return None
        found.append((m.start(), m.end()))
        if not every:
            break
    return found


def _replace(ctx: Context, pattern: re.Pattern[str], text: str, every: bool) -> int:
    msg = ctx.msg
    start = msg.hdr_start
    found = _matches(pattern, _msg_view(msg, start, msg.body_end), every)
    if not found:
        return -1
    data = text.encode("utf-8", "surrogateescape")
    for s, e in found:
        _edit(msg, start + s, start + e, data)
    return 1


def replace(ctx: Context, pattern: re.Pattern[str], text: str) -> int:
    """``replace("re", "txt")``: replace the first match of ``re`` (``REG_ICASE|
    REG_NEWLINE``) after the first line with ``txt`` as written: 1, -1 when there
    is none (measured on Kamailio 5.6: ``replace("^To", "T")`` edits the To line,
    ``replace("example", ...)`` leaves the R-URI alone)."""
    return _replace(ctx, pattern, text, every=False)


def replace_all(ctx: Context, pattern: re.Pattern[str], text: str) -> int:
    """``replace_all("re", "txt")``: :func:`replace` for every match."""
    return _replace(ctx, pattern, text, every=True)


def search_append(ctx: Context, pattern: re.Pattern[str], text: str) -> int:
    """``search_append("re", "txt")``: insert ``txt`` after the first match in the
    message after its first line: 1, -1 when there is none."""
    msg = ctx.msg
    start = msg.hdr_start
    found = _matches(pattern, _msg_view(msg, start, msg.body_end), every=False)
    if not found:
        return -1
    at = start + found[0][1]
    _edit(msg, at, at, text.encode("utf-8", "surrogateescape"))
    return 1


def search_body(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``search_body("re")``: 1 when the regex matches in the body (line anchors as
    :func:`search`), -1 when not or when there is no body."""
    msg = ctx.msg
    if msg.body_end <= msg.body_start:
        return -1
    return 1 if _line_pattern(pattern).search(_msg_view(msg, msg.body_start, msg.body_end)) else -1


def has_body(ctx: Context, mime: str | None = None) -> int:
    """``has_body([mime])``: 1 when the message has a non-empty body (of type
    ``mime``, compared case-insensitively with the Content-Type's ``type/subtype``;
    for a ``multipart/*`` body, with the Content-Type of any part), else -1."""
    msg = ctx.msg
    if msg.body_end <= msg.body_start:
        return -1
    if mime is None:
        return 1
    wanted = mime.strip().lower()
    ctype = (msg.content_type or "").split(";", 1)[0].strip().lower()
    if ctype == wanted:
        return 1
    if ctype.startswith("multipart/"):
        body = msg.body.decode("latin-1").lower()
        for line in body.splitlines():
            name, sep, value = line.partition(":")
            if (
                sep
                and name.strip() in ("content-type", "c")
                and value.split(";", 1)[0].strip() == wanted
            ):
                return 1
    return -1


# ---------------------------------------------------------------------------------
# header names by regex
# ---------------------------------------------------------------------------------


def _raw_names(msg: Message) -> list[tuple[int, str]]:
    """``(line index, name as written)`` of every header line."""
    buf = msg.buf
    return [
        (i, buf[ls:vs].rstrip(b": \t").decode("latin-1"))
        for i, (ls, vs, _, _) in enumerate(msg.spans)
    ]


def remove_hf_re(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``remove_hf_re("re")``: remove every received header whose name, as written,
    matches ``re`` (case-insensitive, anywhere in the name: measured ``"-ID"``
    removes Call-ID): 1 when one was removed, else -1."""
    msg = ctx.msg
    compiled = _line_pattern(pattern)
    removed = 0
    for i, name in _raw_names(msg):
        if compiled.search(name):
            ls, _, _, le = msg.spans[i]
            msg._splice(ls, le, b"")
            removed += 1
    return 1 if removed else -1


def is_present_hf_re(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``is_present_hf_re("re")``: 1 when a header name matches ``re``
    (case-insensitive), else -1."""
    compiled = _line_pattern(pattern)
    return 1 if any(compiled.search(name) for _, name in _raw_names(ctx.msg)) else -1


# ---------------------------------------------------------------------------------
# reply lumps: append_to_reply
# ---------------------------------------------------------------------------------


def reply_lumps(ctx: Context) -> list[str]:
    """The header text to add to every reply the proxy sends to ``ctx.msg``
    (``append_to_reply``, sanity's ``Unsupported``), in the order added, each as
    written (CRLF included). Kamailio keeps them with the request: a later
    ``sl_send_reply`` of the same message also carries them (measured: the 420 of
    ``sanity_check`` and a following ``299`` both carry ``Unsupported``); it puts
    them after the copied headers, before ``Server``.

    Stored as ``ctx.reply_lumps``, which the engine reads when it builds a reply."""
    return ctx.reply_lumps


def append_to_reply(ctx: Context, text: str) -> int:
    """``append_to_reply("X: v\\r\\n")``: add the text to the replies of this
    request (see :func:`reply_lumps`): 1; -1 for an empty text."""
    if not text:
        log.error("append_to_reply: empty text")
        return -1
    reply_lumps(ctx).append(text)
    return 1


# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="textops",
    cmds=(
        # search
        Cmd("search", (REGEX,), Route.ANY, fixup="fixup_regexp_null", impl=search),
        Cmd("search_body", (REGEX,), Route.ANY, fixup="fixup_regexp_null", impl=search_body),
        Cmd(
            "search_hf",
            (STR_CONST, REGEX, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_search_hf",
        ),
        Cmd(
            "search_append",
            (REGEX, STR_CONST),
            Route.ANY,
            fixup="fixup_regexp_none",
            impl=search_append,
        ),
        Cmd("search_append_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("is_present_hf", (STR,), Route.ANY, fixup="hname_fixup", impl=is_present_hf),
        Cmd("search_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # replace
        Cmd("replace", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none", impl=replace),
        Cmd("replace_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_hdrs", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_hdrs_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd(
            "replace_all",
            (REGEX, STR_CONST),
            Route.ANY,
            fixup="fixup_regexp_none",
            impl=replace_all,
        ),
        Cmd("replace_body_all", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_atonce", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexpNL_none"),
        Cmd("subst", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_substre", impl=subst),
        Cmd(
            "subst_uri",
            (STR_CONST,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_substre",
            impl=subst_uri,
        ),
        Cmd(
            "subst_user",
            (STR_CONST,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_substre",
            impl=subst_user,
        ),
        Cmd(
            "subst_body",
            (STR_CONST,),
            Route.ANY,
            const_args=True,
            fixup="fixup_substre",
            impl=subst_body,
        ),
        Cmd(
            "subst_hf",
            (STR_CONST, STR_CONST, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_subst_hf",
        ),
        # headers: add and remove
        Cmd(
            "append_to_reply",
            (STR,),
            REQ_FAIL_BRANCH,
            fixup="fixup_spve_null",
            impl=append_to_reply,
        ),
        Cmd(
            "append_hf",
            (STR,),
            Route.ANY,
            const_args=True,
            fixup="add_header_fixup",
            impl=append_hf,
        ),
        Cmd(
            "append_hf",
            (STR, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="add_header_fixup",
            impl=append_hf,
        ),
        Cmd(
            "insert_hf",
            (STR,),
            Route.ANY,
            const_args=True,
            fixup="add_header_fixup",
            impl=insert_hf,
        ),
        Cmd(
            "insert_hf",
            (STR, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="add_header_fixup",
            impl=insert_hf,
        ),
        Cmd("append_urihf", (STR_CONST, STR_CONST), REQ_FAIL_BRANCH, fixup="fixup_str_str"),
        Cmd("remove_hf", (STR,), Route.ANY, fixup="hname_fixup", impl=remove_hf),
        Cmd("remove_hf_idx", (STR, INT), Route.ANY, fixup="fixup_spve_igp"),
        Cmd("remove_hf_re", (REGEX,), Route.ANY, fixup="fixup_regexp_null", impl=remove_hf_re),
        Cmd("remove_hf_exp", (REGEX, REGEX), Route.ANY, fixup="fixup_regexp_regexp"),
        Cmd(
            "is_present_hf_re",
            (REGEX,),
            Route.ANY,
            fixup="fixup_regexp_null",
            impl=is_present_hf_re,
        ),
        Cmd("remove_hf_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("remove_hf_re_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("remove_hf_exp_pv", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("remove_hf_match", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("is_present_hf_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_present_hf_re_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("append_time", (), REQ_FAIL_BRANCH),
        Cmd("append_time_to_request", (), Route.ANY),
        # body
        Cmd("filter_body", (STR_CONST,), Route.ANY, fixup="fixup_str_null"),
        Cmd("set_body", (STR, STR), REQ_FAIL_REPLY_BRANCH, fixup="fixup_spve_spve"),
        Cmd("set_reply_body", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd("has_body", (), Route.ANY, impl=has_body),
        Cmd(
            "has_body",
            (STR_CONST,),
            Route.ANY,
            const_args=True,
            fixup="fixup_body_type",
            impl=has_body,
        ),
        Cmd("set_body_multipart", (), REQ_FAIL_BRANCH),
        Cmd("set_body_multipart", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("set_body_multipart", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "set_body_multipart",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("append_body_part", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "append_body_part",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("append_body_part_hex", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "append_body_part_hex",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("remove_body_part", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd(
            "get_body_part_raw",
            (STR, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_get_body_part",
        ),
        Cmd(
            "get_body_part",
            (STR, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_get_body_part",
        ),
        # request properties
        Cmd(
            "is_method",
            (STR_CONST,),
            Route.ANY,
            const_args=True,
            fixup="fixup_method",
            impl=is_method,
        ),
        Cmd("is_privacy", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_privacy"),
        Cmd("in_list", (STR, STR, STR_CONST), Route.ANY, fixup="fixup_in_list"),
        Cmd("in_list_prefix", (STR, STR, STR_CONST), Route.ANY, fixup="fixup_in_list_prefix"),
        Cmd("is_audio_on_hold", (), Route.ANY),
        # strings
        Cmd("cmp_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=cmp_str),
        Cmd("cmp_istr", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=cmp_istr),
        Cmd("starts_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=starts_with),
        Cmd("ends_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=ends_with),
        Cmd("str_find", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=str_find),
        Cmd("str_ifind", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=str_ifind),
        Cmd(
            "regex_substring",
            (STR, STR, INT, INT, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_regex_substring",
        ),
    ),
    transformations=("re.subst",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``subst_v/3``, ``set_body_hex/2``, ``set_reply_body_hex/2``, ``str_any_in/2``,
#   ``str_all_in/2``, ``via_param_rm/2``
