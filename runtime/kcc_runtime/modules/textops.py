"""Text operations on the SIP message: header search, add and remove,
regex replacement in headers and body, body helpers.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import re

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
from kcc_runtime.sip import Request, SipParseError
from kcc_runtime.sip.message import canonical_name

__all__ = [
    "EXPORTS",
    "append_hf",
    "insert_hf",
    "is_method",
    "is_present_hf",
    "remove_hf",
    "search",
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


def search(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``search("re")``: 1 when the regex matches somewhere in the received message
    (first line, headers, body), else -1. Kamailio compiles it with
    ``REG_EXTENDED|REG_ICASE|REG_NEWLINE``: ``^``/``$`` match at line boundaries and
    ``.`` does not match a newline."""
    compiled = _LINE_PATTERNS.get(pattern)
    if compiled is None:
        lines = _ANCHOR.sub(
            lambda m: m.group(1) + ("(?m:^)" if m.group(2) == "A" else "(?m:$)"), pattern.pattern
        )
        compiled = re.compile(lines, pattern.flags & ~re.DOTALL)
        if len(_LINE_PATTERNS) < 1024:
            _LINE_PATTERNS[pattern] = compiled
    msg = ctx.msg
    text = msg.buf[: msg.body_end].decode("utf-8", "surrogateescape")
    return 1 if compiled.search(text) else -1


# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="textops",
    cmds=(
        # search
        Cmd("search", (REGEX,), Route.ANY, fixup="fixup_regexp_null", impl=search),
        Cmd("search_body", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd(
            "search_hf",
            (STR_CONST, REGEX, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_search_hf",
        ),
        Cmd("search_append", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("search_append_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("is_present_hf", (STR,), Route.ANY, fixup="hname_fixup", impl=is_present_hf),
        Cmd("search_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # replace
        Cmd("replace", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_hdrs", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_hdrs_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_all", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_all", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_atonce", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexpNL_none"),
        Cmd("subst", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_substre"),
        Cmd(
            "subst_uri", (STR_CONST,), REQ_FAIL_REPLY_BRANCH, const_args=True, fixup="fixup_substre"
        ),
        Cmd(
            "subst_user",
            (STR_CONST,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_substre",
        ),
        Cmd("subst_body", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_substre"),
        Cmd(
            "subst_hf",
            (STR_CONST, STR_CONST, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_subst_hf",
        ),
        # headers: add and remove
        Cmd("append_to_reply", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
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
        Cmd("remove_hf_re", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd("remove_hf_exp", (REGEX, REGEX), Route.ANY, fixup="fixup_regexp_regexp"),
        Cmd("is_present_hf_re", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
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
        Cmd("has_body", (), Route.ANY),
        Cmd("has_body", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_body_type"),
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
        Cmd("cmp_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("cmp_istr", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("starts_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("ends_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("str_find", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("str_ifind", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
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
