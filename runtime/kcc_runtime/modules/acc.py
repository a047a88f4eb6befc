"""Accounting to the log: Kamailio acc's syslog backend, driven by the message flags
its parameters name, plus ``acc_log_request``.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
The database backend (``db_flag``, ``acc_db_request``, ``acc_request``) is declared
but not implemented.

**The record.** One log line per accounted event, at ``log_level`` (default 1,
NOTICE), from the logger ``kcc_runtime.acc`` in a function named
``acc_log_request`` (so the line reads ``acc [acc.py:N]: acc_log_request(): ACC: …``
like Kamailio's ``acc [acc.c:287]: acc_log_request(): ACC: …``)::

    ACC: transaction answered: timestamp=1795699647;method=INVITE;from_tag=ftag1;
    to_tag=uastag1;call_id=c-ans;code=200;reason=OK;src_user=alice;…

(one line): the leading text (``transaction answered``, ``call missed``, ``request
accounted``), ``timestamp=`` the Unix time in seconds, then ``;name=value`` for the
method (the CSeq's), the From and To tags, the Call-ID, the reply's code and reason
and each ``log_extra`` entry in its order; a missing value is empty (``to_tag=``).
``time_mode`` 1-4 add Kamailio's second time attribute after the timestamp.
``log_facility`` does not apply (kcc logs to stderr).

**When** (acc_logic.c, and measured on Kamailio 5.6.3 with this module's flags and
``log_extra`` as the stock cfg sets them, a Python UAC and a UAS on loopback):

- acc looks at a transaction only when, at its creation (``t_newtran``/``t_relay``),
  ``log_flag`` or ``log_missed_flag`` (or ``acc_prepare_flag``/``acc_prepare_always``)
  is set; a CANCEL never unless ``report_cancels``. The flags that count later are
  the transaction's: those cloned at creation, updated by ``t_relay`` and by a
  failure route -- measured: ``t_newtran(); setflag(FLT_ACCFAILED); t_reply("404",
  …)`` logs nothing.
- Every final reply the transaction sends upstream (relayed or local) is a
  "response out" event: a 2xx with ``log_flag`` -> ``transaction answered``; a
  3xx-6xx only with ``failed_transaction_flag`` (and not in ``failed_filter``) and
  ``log_flag`` -> also ``transaction answered`` (there is no "failed" text). A 1xx
  only with ``early_media`` and a body.
- An INVITE whose branches all ended negatively, with ``log_missed_flag``: ``call
  missed`` before the failure route runs, and the flag is cleared (the failure
  route sees it clear; setting it again there and relaying again gives another
  ``call missed`` at the next failure; setting it without relaying gives one more
  at the response out). A reply the failure route sends itself (``t_reply``) sees
  the transaction's flags as they were before the failure handling: measured,
  ``t_reply("503", "Mine")`` there logged ``call missed`` and ``transaction
  answered`` with ``code=503;reason=Service Unavailable``.
- ``code``/``reason``/``to_tag`` are the reply's for a received reply; for a local
  one (tm's 408, ``t_reply``, ``send_reply`` on a transaction, the 500 of
  ``remap_503_500``) the reason is Kamailio's standard phrase for the code
  (``error_text``: ``480 "Gone"`` is logged ``reason=Temporarily Unavailable``) and
  the To-tag tm's local one.
- ``log_extra`` is evaluated then, on the request as the transaction holds it, with
  the R-URI of the winning branch (``dst_user=carol`` after a failure route moved
  the call to carol) and ``$si`` the request's source.
- ``acc_log_request(comment)``: ``request accounted`` on the current request; a
  comment starting with three digits gives the code, the rest (blanks skipped) the
  reason (``"403 Forbidden $rm"`` -> ``code=403;reason=Forbidden OPTIONS``; ``"hello"``
  -> ``code=;reason=hello``); the To tag is the request's.
- The To-tag is kept process-wide as Kamailio's ``acc_env.to_tag`` is: a record
  whose To has no tag prints the last local tag a missed-call record of this
  process set (a stale one for an unrelated request, as in Kamailio).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kcc_runtime import logs, pv
from kcc_runtime.context import Context, RequestContext
from kcc_runtime.exports import (
    STR,
    Cmd,
    FlagKind,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.sip import Response, SipParseError, parse_message

if TYPE_CHECKING:
    from kcc_runtime.tm import Cell, Tm, TmBranch

__all__ = [
    "ANSWERED",
    "EXPORTS",
    "MISSED",
    "REQUEST",
    "AccSettings",
    "Accounting",
    "acc_log_request",
    "error_text",
    "parse_extra",
]

log = logging.getLogger("kcc_runtime.acc")

#: the leading texts of the records (acc.h)
REQUEST: Final = "ACC: request accounted: "
MISSED: Final = "ACC: call missed: "
ANSWERED: Final = "ACC: transaction answered: "

#: Kamailio's standard reason phrase per code (core ``error_text``: RFC 3261 §21)
_PHRASES: Final = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    417: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-Out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip
#: the phrase of a code not listed, by class (``error_text``'s fallbacks)
_CLASS_PHRASES: Final = (
    (600, "Global Failure"),
    (500, "Server Failure"),
    (400, "Request Failure"),
    (300, "Redirection"),
    (200, "Successful"),
    (100, "Provisional"),
)


def error_text(code: int) -> str:
    """The reason acc logs for a reply tm made itself (Kamailio's ``error_text``)."""
    phrase = _PHRASES.get(code)
    if phrase is not None:
        return phrase
    for floor, text in _CLASS_PHRASES:
        if code >= floor:
            return text
    return "Unspecified"


def parse_extra(text: str | None) -> tuple[tuple[str, pv.Accessor | None], ...]:
    """``log_extra``: ``name=$pv;name2=$pv2`` (blanks around the parts ignored).
    Each pseudo-variable is ``$name`` or ``$name(inner)``; one the runtime does not
    have, or another form, logs an error and is printed empty (Kamailio refuses to
    start on a bad one)."""
    out: list[tuple[str, pv.Accessor | None]] = []
    for item in (text or "").split(";"):
        name, eq, spec = item.partition("=")
        name, spec = name.strip(), spec.strip()
        if not name and not spec:
            continue
        accessor: pv.Accessor | None = None
        if eq and spec.startswith("$"):
            body = spec[1:]
            inner: str | None = None
            if body.endswith(")") and "(" in body:
                body, _, rest = body.partition("(")
                inner = rest[:-1]
            try:
                accessor = pv.accessor(body, inner)
            except pv.PvError as exc:
                log.error("acc: bad extra %r: %s", item, exc)
        else:
            log.error("acc: bad extra definition %r", item)
        out.append((name, accessor))
    return tuple(out)


def _flag(modparams: Mapping[tuple[str, str], int | str], name: str) -> int:
    value = modparams.get(("acc", name))
    return value if isinstance(value, int) and 0 <= value < 32 else -1


def _int(modparams: Mapping[tuple[str, str], int | str], name: str, default: int) -> int:
    value = modparams.get(("acc", name), default)
    return value if isinstance(value, int) else default


def _str(modparams: Mapping[tuple[str, str], int | str], name: str, default: str) -> str:
    value = modparams.get(("acc", name), default)
    return value if isinstance(value, str) else default


@dataclass(frozen=True, slots=True)
class AccSettings:
    """acc's parameters as one process reads them (-1: flag not set)."""

    log_flag: int = -1
    log_missed_flag: int = -1
    failed_transaction_flag: int = -1
    acc_prepare_flag: int = -1
    acc_prepare_always: bool = False
    report_cancels: bool = False
    early_media: bool = False
    failed_filter: frozenset[int] = frozenset()
    #: the ``logging`` level of ``log_level``
    level: int = logs.NOTICE
    extra: tuple[tuple[str, pv.Accessor | None], ...] = ()
    time_mode: int = 0
    time_attr: str = "time_attr"
    time_exten: str = "time_exten"
    time_format: str = "%Y-%m-%d %H:%M:%S"

    @classmethod
    def from_modparams(cls, modparams: Mapping[tuple[str, str], int | str]) -> AccSettings:
        level = logs.parse_level(_int(modparams, "log_level", 1))
        codes = _str(modparams, "failed_filter", "")
        return cls(
            log_flag=_flag(modparams, "log_flag"),
            log_missed_flag=_flag(modparams, "log_missed_flag"),
            failed_transaction_flag=_flag(modparams, "failed_transaction_flag"),
            acc_prepare_flag=_flag(modparams, "acc_prepare_flag"),
            acc_prepare_always=_int(modparams, "acc_prepare_always", 0) != 0,
            report_cancels=_int(modparams, "report_cancels", 0) != 0,
            early_media=_int(modparams, "early_media", 0) != 0,
            failed_filter=frozenset(int(c) for c in codes.split(",") if c.strip().isdigit()),
            level=logs.NOTICE if level is None else level,
            extra=parse_extra(_str(modparams, "log_extra", "")),
            time_mode=_int(modparams, "time_mode", 0),
            time_attr=_str(modparams, "time_attr", "time_attr"),
            time_exten=_str(modparams, "time_exten", "time_exten"),
            time_format=_str(modparams, "time_format", "%Y-%m-%d %H:%M:%S"),
        )

    def on(self, flags: int, flag: int) -> bool:
        return flag >= 0 and bool(flags >> flag & 1)


#: settings per process, by the identity of its modparams mapping
_settings: dict[int, tuple[Mapping[tuple[str, str], int | str], AccSettings]] = {}
#: Kamailio's process-wide ``acc_env.to_tag`` (see the module docstring)
_env: dict[str, str] = {"to_tag": ""}


def settings_of(modparams: Mapping[tuple[str, str], int | str]) -> AccSettings:
    entry = _settings.get(id(modparams))
    if entry is None or entry[0] is not modparams:
        entry = (modparams, AccSettings.from_modparams(modparams))
        _settings[id(modparams)] = entry
    return entry[1]


class _Syslog:
    """Writes the records; its method's name is the function Kamailio's lines show."""

    @staticmethod
    def acc_log_request(level: int, text: str) -> None:
        log.log(level, "%s", text)


def _value(value: object) -> str:
    if value is None:
        return ""
    return str(value)


def _record(
    ctx: Context,
    settings: AccSettings,
    head: str,
    *,
    code: str,
    reason: str,
    to_tag: str | None,
) -> int:
    """Format and log one record on the request of ``ctx`` (Kamailio's
    ``core2strar`` + ``extra2strar`` + ``acc_log_request``): 1, -1 when the request's
    headers do not parse ("failed to preparse request")."""
    msg = ctx.msg
    try:
        cseq = msg.cseq
        from_ = msg.from_
        call_id = msg.call_id
        if to_tag is None:
            to = msg.to
            to_tag = (to.tag if to is not None else None) or ""
    except SipParseError:
        log.error("failed to preparse request")
        return -1
    if not to_tag:
        to_tag = _env["to_tag"]
    parts = [
        f";method={cseq.method if cseq is not None else ''}",
        f";from_tag={(from_.tag if from_ is not None else None) or ''}",
        f";to_tag={to_tag}",
        f";call_id={call_id or ''}",
        f";code={code}",
        f";reason={reason}",
    ]
    for name, accessor in settings.extra:
        value: object = None
        if accessor is not None:
            try:
                value = accessor.get(ctx)
            except (pv.PvError, SipParseError, ValueError):
                value = None
        parts.append(f";{name}={_value(value)}")
    now = time.time()
    stamp = f"timestamp={int(now)}"
    mode = settings.time_mode
    if mode == 1:
        stamp += f";{settings.time_exten}={int(now % 1 * 1_000_000)}"
    elif mode == 2:
        stamp += f";{settings.time_attr}={now:.3f}"
    elif mode in (3, 4):
        tm = time.localtime(now) if mode == 3 else time.gmtime(now)
        stamp += f";{settings.time_attr}={time.strftime(settings.time_format, tm)}"
    _Syslog.acc_log_request(settings.level, head + stamp + "".join(parts) + "\n")
    return 1


def acc_log_request(ctx: Context, comment: str) -> int:
    """``acc_log_request(comment)``: a ``request accounted`` record of the current
    request (see the module docstring for the code/reason split): 1, -1 when the
    request's headers do not parse."""
    settings = settings_of(ctx.proc.modparams)
    code, reason = "", comment
    head3 = comment[:3]
    if len(comment) >= 3 and head3.isascii() and head3.isdigit():
        code, reason = head3, comment[3:].lstrip(" \t\r\n\v\f")
    return _record(ctx, settings, REQUEST, code=code, reason=reason, to_tag=None)


@dataclass(frozen=True, slots=True)
class _Reply:
    code: int
    reason: str
    to_tag: str
    #: made by tm (Kamailio's ``FAKED_REPLY``): its To-tag becomes ``acc_env.to_tag``
    local: bool = False


class Accounting:
    """acc's transaction callbacks for one worker's tm (Kamailio's ``acc_onreq``,
    ``acc_onreply`` and ``on_missed``); tm calls :meth:`created`, :meth:`on_failure`
    and :meth:`response_out` (see ``kcc_runtime.tm``)."""

    def __init__(self, tm: Tm, settings: AccSettings) -> None:
        self.tm = tm
        self.settings = settings

    @classmethod
    def for_tm(cls, tm: Tm) -> Accounting | None:
        """The accounting of ``tm``'s proxy, None when the cfg does not load acc."""
        proc = tm.proxy.process
        config = proc.config
        if config is not None and "acc" not in config.modules:
            return None
        if config is None and not any(m == "acc" for m, _ in proc.modparams):
            return None
        return cls(tm, settings_of(proc.modparams))

    # -- tm's events -------------------------------------------------------------------

    def created(self, cell: Cell) -> None:
        """A new transaction (TMCB_REQUEST_IN): arm it when its flags ask for
        accounting (the flags at creation decide, as Kamailio registers its
        callbacks then)."""
        s = self.settings
        flags = cell.flags
        if cell.request.method == "CANCEL" and not s.report_cancels:
            return
        prepare = s.acc_prepare_always or s.on(flags, s.acc_prepare_flag)
        acc_on = s.on(flags, s.log_flag)
        mc_on = s.on(flags, s.log_missed_flag)
        if acc_on or mc_on or prepare:
            cell.acc_armed = True
            cell.acc_missed_armed = cell.request.method == "INVITE" and (mc_on or prepare)

    def on_failure(self, cell: Cell, winner: TmBranch) -> int:
        """Every branch failed (TMCB_ON_FAILURE, before the failure route): a
        ``call missed`` record when the missed flag is set; the flags the failure
        handling goes on with (that flag cleared)."""
        flags = cell.flags
        s = self.settings
        if not cell.acc_missed_armed or not s.on(flags, s.log_missed_flag):
            return flags
        reply = self._winner_reply(cell, winner)
        self._missed(cell, reply, winner.index)
        return flags & ~(1 << s.log_missed_flag)

    def response_out(self, cell: Cell, data: bytes, relayed: bool) -> None:
        """A reply sent upstream (TMCB_RESPONSE_OUT), relayed or made by tm."""
        if not cell.acc_armed:
            return
        status = data[8:11]
        if status[:1] == b"1" and not self.settings.early_media:
            return  # a provisional reply is accounted only with early_media
        reply = self._sent_reply(cell, data, relayed)
        if reply is None:
            return
        s = self.settings
        code = reply.code
        branch = cell.relayed_branch
        if branch < 0 and code >= 300 and cell.branches:
            from kcc_runtime.tm import _pick

            branch = _pick(cell.branches[cell.first_considered :] or cell.branches).index
        if cell.request.method == "INVITE" and code >= 300 and s.on(cell.flags, s.log_missed_flag):
            self._missed(cell, reply, branch)
            cell.flags &= ~(1 << s.log_missed_flag)
        if not self._should_account(cell, data, code):
            return
        if s.on(cell.flags, s.log_flag):
            if reply.local:
                _env["to_tag"] = reply.to_tag
            ctx = self._request_ctx(cell, branch)
            _record(ctx, s, ANSWERED, code=str(code), reason=reply.reason, to_tag=reply.to_tag)

    # -- helpers -----------------------------------------------------------------------

    def _should_account(self, cell: Cell, data: bytes, code: int) -> bool:
        """acc's ``should_acc_reply``."""
        s = self.settings
        if code >= 300:
            return s.on(cell.flags, s.failed_transaction_flag) and code not in s.failed_filter
        if not s.on(cell.flags, s.log_flag):
            return False
        if code < 200:
            if not s.early_media:
                return False
            try:
                msg = parse_message(data)
            except SipParseError:
                return False
            return bool(msg.content_length)
        return True

    def _missed(self, cell: Cell, reply: _Reply, branch: int) -> None:
        if reply.local:
            _env["to_tag"] = reply.to_tag
        ctx = self._request_ctx(cell, branch)
        _record(
            ctx,
            self.settings,
            MISSED,
            code=str(reply.code),
            reason=reply.reason,
            to_tag=reply.to_tag,
        )

    def _local_tag(self, cell: Cell) -> str:
        from kcc_runtime.engine import sl_to_tag

        return self.tm.tag_prefix + "-" + sl_to_tag("", cell.request)[1:]

    def _winner_reply(self, cell: Cell, winner: TmBranch) -> _Reply:
        if winner.reply is not None:
            return self._received(winner.reply, winner.reason)
        return _Reply(winner.status, error_text(winner.status), self._local_tag(cell), True)

    @staticmethod
    def _received(reply: Response, reason: str) -> _Reply:
        try:
            to = reply.to
            tag = (to.tag if to is not None else None) or ""
        except SipParseError:
            tag = ""
        return _Reply(reply.status, reply.reason or reason, tag)

    def _sent_reply(self, cell: Cell, data: bytes, relayed: bool) -> _Reply | None:
        try:
            msg = parse_message(data)
        except SipParseError:
            return None
        if not isinstance(msg, Response):
            return None
        if relayed:
            return self._received(msg, msg.reason)
        return _Reply(msg.status, error_text(msg.status), self._local_tag(cell), True)

    def _request_ctx(self, cell: Cell, branch: int) -> RequestContext:
        """The request as the transaction holds it, with the R-URI of ``branch``."""
        base = cell.ctx
        ctx = RequestContext(base.proc, cell.request, base.received)
        ctx.avps = cell.avps
        ctx.flags, ctx.sflags, ctx.bflags = cell.flags, cell.sflags, cell.bflags
        ctx.new_uri = cell.new_uri
        if 0 <= branch < len(cell.branches):
            uri = cell.branches[branch].uri
            if uri is not None:
                ctx.new_uri = uri
        ctx.dst_uri = cell.dst_uri
        ctx.tm_cell = cell
        return ctx


EXPORTS = ModuleExports(
    name="acc",
    cmds=(
        Cmd("acc_log_request", (STR,), Route.ANY, impl=acc_log_request, fixup="acc_fixup"),
        Cmd("acc_db_request", (STR, STR), Route.ANY, fixup="acc_fixup"),
        Cmd("acc_request", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
    ),
    params=(
        ModParam("early_media", int, 0),
        ModParam("failed_transaction_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("failed_filter", str, None),
        ModParam("report_ack", int, 0),
        ModParam("report_cancels", int, 0),
        ModParam("multi_leg_info", str, None),
        ModParam("detect_direction", int, 0),
        ModParam("acc_prepare_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("acc_prepare_always", int, None),
        ModParam("reason_from_hf", int, 0),
        ModParam("acc_extra_nullable", int, 0),
        ModParam("log_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("log_missed_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("log_level", int, 1),
        ModParam("log_facility", str, "LOG_DAEMON"),
        ModParam("log_extra", str, None),
        ModParam("cdr_enable", int, None),
        ModParam("cdr_skip", str, None),
        ModParam("cdr_log_enable", int, None),
        ModParam("cdr_start_on_confirmed", int, None),
        ModParam("cdr_facility", str, "LOG_DAEMON"),
        ModParam("cdr_extra", str, None),
        ModParam("cdr_extra_nullable", int, 0),
        ModParam("cdr_start_id", str, "start_time"),
        ModParam("cdr_end_id", str, "end_time"),
        ModParam("cdr_duration_id", str, "duration"),
        ModParam("cdr_expired_dlg_enable", int, None),
        ModParam("db_flag", int, None, flag=FlagKind.MESSAGE, implemented=False),
        ModParam("db_missed_flag", int, None, flag=FlagKind.MESSAGE, implemented=False),
        ModParam("db_extra", str, None),
        ModParam("db_url", str, None),
        ModParam("db_table_acc", str, "acc"),
        ModParam("db_table_missed_calls", str, "missed_calls"),
        ModParam("acc_method_column", str, "method"),
        ModParam("acc_from_tag_column", str, "from_tag"),
        ModParam("acc_to_tag_column", str, "to_tag"),
        ModParam("acc_callid_column", str, "callid"),
        ModParam("acc_sip_code_column", str, "sip_code"),
        ModParam("acc_sip_reason_column", str, "sip_reason"),
        ModParam("acc_time_column", str, "time"),
        ModParam("db_insert_mode", int, 0),
        ModParam("time_mode", int, None),
        ModParam("time_attr", str, None),
        ModParam("time_exten", str, None),
        ModParam("cdrs_table", str, ""),
        ModParam("time_format", str, None),
        ModParam("clone_msg", int, 1),
        ModParam("cdr_on_failed", int, 1),
        ModParam("acc_extra_size", int, 64),
        ModParam("cdr_extra_size", int, 64),
    ),
    depends=("tm",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``cdr_duration_mode``, ``db_version_check``
