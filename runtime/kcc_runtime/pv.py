"""Pseudo-variables, transformations, formats and selects for generated code.

A generated module builds every pseudo-variable it uses once, at import
(``PV_ru: Final = pv.accessor("ru")``), and calls ``PV_ru.get(ctx)`` /
``PV_ru.set(ctx, value)`` per message. :func:`accessor` picks one specialised
:class:`Accessor` subclass per PV class (Kamailio's ``pv_export_t`` getter/setter
pair), so a read is one method call and no name lookup. Transformations
(``$(ru{uri.user}{s.len})``) belong to the accessor and run inside :meth:`Accessor.get`.

Kamailio 5.6.3 behaviour followed, measured on loopback with ``xlog`` (``kamailio -DD
-E``, one request; the snippet and the logged value are given where it matters):

- a PV without a value reads ``$null`` (``None``): ``$avp(unset)``, ``$hdr(X-None)``,
  ``$du`` before it is set, ``$tt`` without a To tag, ``$rs`` in a request; ``xlog``
  prints it as ``<null>`` (:class:`Fmt` does the same);
- ``$var(x)`` unset reads the int 0 (``$var(t) = $var(u) + "x"`` -> ``0``: an int left
  operand) and ``$var(x) = $null`` stores the int 0; ``$shv`` likewise;
- ``$avp(x) = v`` pushes ``v`` in front (``$avp(a)=1; $avp(a)="two"; $avp(a)=3;`` ->
  ``$(avp(a)[*])`` is ``3, two, 1``, ``[0]`` is 3, ``[2]`` is 1); ``$avp(x) = $null``
  deletes only the newest value (``two`` is left); ``$(avp(x)[*]) = v`` deletes every
  value then pushes ``v``, ``$(avp(x)[*]) = $null`` deletes all; any other index on the
  left is ignored (``$(avp(c)[1]) = "w"`` pushes); a negative index reads ``$null``
  (``$(avp(a)[-1])`` -> ``<null>``);
- ``$hdr(X)`` is the first line's value, ``$(hdr(X)[1])`` the second line, ``[-1]`` the
  last, ``[*]`` every line joined by ``,`` (``one,two, three``); compact names work
  (``$hdr(v)`` is the Via);
- ``$xavp(r=>f) = v`` adds a **new** root ``r`` holding ``f`` (``$xavp(r=>f)="v1";
  $xavp(r[0]=>g)=2; $xavp(r=>f)="v2";`` leaves ``$xavp(r=>g)`` ``<null>``: the second
  root has no ``g``); ``$xavp(r[i]=>f) = v`` adds ``f`` to the existing root ``i``;
- the R-URI parts are the raw text (``sip:%41lice:pw@Example.COM:5080`` gives
  ``$rU`` = ``%41lice``, ``$rd`` = ``Example.COM``); ``$rp`` without a port is 5060;
  ``$rU = "carol"`` rewrites the user of the current (possibly rewritten) R-URI,
  ``$rp = 0`` writes ``:0``, ``$rU = $null`` removes the user and its ``@``;
- ``$mf`` reads as the unsigned 32-bit number xlog prints (flag 31 and 0 set ->
  ``2147483649``) and ``$mf = -1`` stores ``4294967295``;
- ``$fn`` is the display name as written, quotes included (``"Alice Smith"``);
- a transformation that fails (a substring out of range, ``uri.user`` of something
  that is not a URI, any transformation of ``$null``) gives ``$null``: ``$var(r) =
  $(var(s){s.substr,20,2})`` stores 0 and ``"a" + $(...)`` is ``"a"``.

Assignment to a PV Kamailio does not allow, or that kcc does not implement yet, raises
:class:`PvError`: the compiler checks :data:`WRITABLE` and never emits it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias

from kcc_runtime.exports import Route
from kcc_runtime.htable import Table as HtTable
from kcc_runtime.htable import count_matcher
from kcc_runtime.memory import parse_cache
from kcc_runtime.sip import Request, Response, SipParseError
from kcc_runtime.sip.message import canonical_name
from kcc_runtime.sip.uri import CACHED_MAX_LEN
from kcc_runtime.values import Value, to_int, to_str

if TYPE_CHECKING:
    from kcc_runtime.context import Context
    from kcc_runtime.tm import Cell, TmBranch

__all__ = [
    "PVS",
    "SELECTS",
    "TRANSFORMATIONS",
    "T_NAMES",
    "WRITABLE",
    "Accessor",
    "Fmt",
    "Param",
    "PvError",
    "Transformation",
    "UriParts",
    "accessor",
    "current_ruri",
    "select",
    "set_ruri",
    "split_uri",
    "transformation",
]

log = logging.getLogger("kcc_runtime.pv")

_MASK32: Final = 0xFFFFFFFF
#: the index ``[*]``: every value
ALL: Final = "*"


class PvError(Exception):
    """A pseudo-variable used in a way the compiler should have refused: writing a
    read-only PV, an unknown PV class, transformation or select."""


# -- formats ------------------------------------------------------------------------------


class Fmt:
    """A string with pseudo-variables (``"request from $si\\n"``), rendered per message.

    Kamailio's ``pv_printf``: each PV is printed in its string form; one without a
    value prints ``<null>`` (``xlog("[$avp(u)]")`` logs ``[<null>]``)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str | Accessor) -> None:
        self.parts: tuple[str | Accessor, ...] = parts

    def render(self, ctx: Context) -> str:
        out: list[str] = []
        for part in self.parts:
            if type(part) is str:
                out.append(part)
                continue
            value = part.get(ctx)  # type: ignore[union-attr]
            out.append("<null>" if value is None else str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Fmt{self.parts!r}"


#: a transformation parameter: a constant, or something evaluated per message
Param: TypeAlias = "str | int | Fmt | Accessor"


def _param(ctx: Context, param: Param) -> Value:
    if isinstance(param, (str, int)):
        return param
    if isinstance(param, Fmt):
        return param.render(ctx)
    return param.get(ctx)


# -- raw URI parts (Kamailio's parse_uri keeps every part as written) ----------------------


@dataclass(frozen=True, slots=True)
class UriParts:
    """A SIP/SIPS/tel URI split into its raw parts, as Kamailio's ``struct sip_uri``
    holds them (nothing unescaped, host case kept). ``port`` is the text after the
    colon ("" when there is none)."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: str
    params: str | None
    headers: str | None

    def build(self) -> str:
        """The URI text again (Kamailio's ``rewrite_uri`` order)."""
        out = [self.scheme, ":"]
        if self.user:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port:
            out += [":", self.port]
        if self.params is not None:
            out += [";", self.params]
        if self.headers is not None:
            out += ["?", self.headers]
        return "".join(out)

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` ("" without ``=``), None when absent."""
        return _param_value(self.params or "", name.lower(), ";", fold=True)


_SCHEME: Final = re.compile(r"(sips?|tel|tels):", re.IGNORECASE | re.ASCII)
_HOSTPORT: Final = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::([0-9]*))?", re.ASCII)


def split_uri(text: str) -> UriParts | None:
    """Split ``sip:user:pw@host:port;params?headers`` into raw parts; None when the
    text is not a SIP, SIPS or tel URI (Kamailio: "invalid uri"). Cached: the same
    R-URI is split for ``$rU``, ``$rd``, ``$rp`` and ``uri == myself`` (texts up to
    ``CACHED_MAX_LEN`` characters: a flood of long ones must not fill memory)."""
    if len(text) > CACHED_MAX_LEN:
        return _split_uri.__wrapped__(text)
    return _split_uri(text)


@parse_cache(maxsize=1024)
def _split_uri(text: str) -> UriParts | None:
    """:func:`split_uri`, remembered."""
    found = _SCHEME.match(text)
    if found is None:
        return None
    scheme = found.group(1).lower()
    rest = text[found.end() :]
    headers: str | None = None
    if "?" in rest:
        rest, headers = rest.split("?", 1)
    if scheme.startswith("tel"):
        number, _, params = rest.partition(";")
        if not number:
            return None
        return UriParts(scheme, number, None, "", "", params if ";" in rest else None, headers)
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@", 0, rest.find(";") if ";" in rest else len(rest))
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
    hostport, sep, params = rest.partition(";")
    hp = _HOSTPORT.fullmatch(hostport)
    if hp is None or not hp.group(1) or any(c in hostport for c in " \t\r\n"):
        return None
    return UriParts(
        scheme, user, password, hp.group(1), hp.group(2) or "", params if sep else None, headers
    )


def _param_value(text: str, name: str, delim: str, *, fold: bool = False) -> str | None:
    """``name=value`` in a ``delim``-separated list (Kamailio's ``parse_params``):
    the value, "" for a name without one, None when absent."""
    for item in text.split(delim):
        key, sep, value = item.partition("=")
        key = key.strip(" \t")
        if (key.lower() if fold else key) == name:
            return value.strip(" \t") if sep else ""
    return None


# -- the accessor base ----------------------------------------------------------------------


class Accessor:
    """One pseudo-variable as written in the cfg: class, inner name, index and
    transformations. Subclasses implement :meth:`read` and, when Kamailio lets the PV
    be assigned, :meth:`write`."""

    __slots__ = ("index", "inner", "name", "transformations")

    #: whether ``$pv = value`` is allowed
    writable: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        inner: str | Fmt | None = None,
        index: int | str | Accessor | None = None,
        transformations: tuple[Transformation, ...] = (),
    ) -> None:
        self.name = name
        self.inner = inner
        self.index = index
        self.transformations = transformations
        self._bind()

    def _bind(self) -> None:
        """What a subclass derives from its name and inner name once, at build time
        (a reader, a part); raises :class:`PvError` for a name it cannot serve."""

    def get(self, ctx: Context) -> Value:
        """The PV's value with its transformations applied; ``None`` for ``$null``."""
        try:
            value = self.read(ctx)
        except SipParseError:
            return None  # a header that does not parse has no value (Kamailio: <null>)
        for tr in self.transformations:
            if value is None:
                return None
            value = tr.apply(ctx, value)
        return value

    def set(self, ctx: Context, value: Value) -> Value:
        """``$pv = value``; returns the value assigned."""
        if not self.writable or self.transformations:
            raise PvError(f"${self.name} cannot be assigned")
        self.write(ctx, value)
        return value

    def read(self, ctx: Context) -> Value:
        raise PvError(f"${self.name} has no reader")  # pragma: no cover - every class has one

    def write(self, ctx: Context, value: Value) -> None:
        raise PvError(f"${self.name} cannot be assigned")  # pragma: no cover - guarded

    def inner_name(self, ctx: Context) -> str:
        """The inner name (``x`` of ``$var(x)``), rendered when it holds PVs."""
        inner = self.inner
        if inner is None:
            return ""
        return inner if isinstance(inner, str) else inner.render(ctx)

    def resolved_index(self, ctx: Context) -> int | str | None:
        """The index: None (none written), an int, or ``"*"``."""
        index = self.index
        if index is None or isinstance(index, int):
            return index
        if isinstance(index, str):
            return ALL if index == ALL else to_int(index)
        return to_int(index.get(ctx))

    def __repr__(self) -> str:
        inner = "" if self.inner is None else f"({self.inner!r})"
        index = "" if self.index is None else f"[{self.index!r}]"
        trs = "".join(f"{{{t.name}}}" for t in self.transformations)
        return f"<pv ${self.name}{inner}{index}{trs}>"


# -- message PVs (read-only) ----------------------------------------------------------------

Reader: TypeAlias = Callable[["Context"], Value]


def _request(ctx: Context) -> Request | None:
    msg = ctx.msg
    return msg if isinstance(msg, Request) else None


def current_ruri(ctx: Context) -> str | None:
    """The R-URI as the script sees it (``$ru``, the ``uri`` keyword, the rewrite
    actions): the rewritten one, else the request's; None for a reply."""
    if ctx.new_uri is not None:
        return ctx.new_uri
    req = _request(ctx)
    if req is None:
        return None
    return req.uri_raw.decode("utf-8", "surrogateescape")


def set_ruri(ctx: Context, uri: str) -> bool:
    """Make ``uri`` the new R-URI (Kamailio's ``new_uri`` and ``ruri_mark_new``): kept
    in ``ctx.new_uri`` for ``$ru`` and ``revert_uri``, written into the message's
    first line for sending, and marked new for tm's forking (a failure route's
    ``t_relay`` sends the R-URI branch only when the route set it). False when the
    text cannot stand in a request line (empty, whitespace)."""
    msg = ctx.msg
    if not isinstance(msg, Request):
        return False
    try:
        msg.set_uri(uri.encode("utf-8", "surrogateescape"))
    except ValueError:
        log.error("bad new R-URI <%s>", uri)
        return False
    ctx.new_uri = uri
    ctx.ruri_new = True
    return True


def _ruri_parts(ctx: Context) -> UriParts | None:
    text = current_ruri(ctx)
    return None if text is None else split_uri(text)


def _ru_user(ctx: Context) -> Value:
    parts = _ruri_parts(ctx)
    return parts.user if parts is not None and parts.user else None


def _ru_host(ctx: Context) -> Value:
    parts = _ruri_parts(ctx)
    return None if parts is None else parts.host


def _ru_port(ctx: Context) -> Value:
    parts = _ruri_parts(ctx)
    if parts is None:
        return None
    return to_int(parts.port) if parts.port else 5060


def _ru_scheme(ctx: Context) -> Value:
    parts = _ruri_parts(ctx)
    return None if parts is None else parts.scheme


def _header_text(ctx: Context, name: str) -> str | None:
    return ctx.msg.header(name)


def _name_addr_field(header: str, field: str) -> Reader:
    """A reader for one part of From/To: uri, user, host, display name, tag."""

    def read(ctx: Context) -> Value:
        raw = ctx.msg.header(header)
        if raw is None:
            return None
        na = ctx.msg.from_ if header == "from" else ctx.msg.to
        if na is None:
            return None
        if field == "tag":
            return na.tag
        if field == "name":
            lt = raw.find("<")
            display = raw[:lt].strip(" \t") if lt > 0 else ""
            return display or None
        uri = na.uri_raw.decode("utf-8", "surrogateescape")
        if field == "uri":
            return uri
        parts = split_uri(uri)
        if parts is None:
            return None
        if field == "user":
            return parts.user or None
        return parts.host

    return read


def _call_id(ctx: Context) -> Value:
    return ctx.msg.call_id


def _cseq_number(ctx: Context) -> Value:
    cseq = ctx.msg.cseq
    return None if cseq is None else (cseq.text or str(cseq.number))


def _method(ctx: Context) -> Value:
    msg = ctx.msg
    if isinstance(msg, Request):
        return msg.method
    cseq = msg.cseq  # Kamailio: a reply's method is its CSeq method
    return None if cseq is None else cseq.method


def _status(ctx: Context) -> Value:
    msg = ctx.msg
    return msg.status if isinstance(msg, Response) else None


def _reason(ctx: Context) -> Value:
    msg = ctx.msg
    return msg.reason if isinstance(msg, Response) else None


def _version(ctx: Context) -> Value:
    msg = ctx.msg
    return msg.version if isinstance(msg, (Request, Response)) else None


# -- tm and tmx: $T_reply_code and friends -------------------------------------------------
#
# tmx's getters (``t_var.c``) by route kind, as measured on Kamailio 5.6.3 (a cfg
# logging every one of them in request, branch, onreply, branch-failure and failure
# routes, branches to backends answering 100/486, 180/503, or nothing):
#
# - ``$T_reply_code``: the reply's status in a reply route; 0 without a transaction;
#   the last status sent upstream in request and branch routes (100 once the
#   automatic 100 went); the picked branch's code in failure_route (the winner) and
#   in a branch-failure route (the failed branch); 0 elsewhere;
# - ``$T_reply_reason``: "" without a transaction; the reply's reason in a reply
#   route; in failure_route the winner's reason, tm's text for a local one
#   (``Request Timeout``); any other route: tmx's error, read as ``$null``;
# - ``$T_reply_last``: only in onreply_route, the status just received on the
#   branch (measured equal to ``$rs``); elsewhere tmx's error (``$null``);
# - ``$T_branch_idx``: the branch of a reply, branch route or branch-failure route;
#   in request_route the number of branches ``append_branch`` added (0 after
#   ``t_relay`` consumed them); in failure_route the index the next branch would get
#   (branches sent + branches added there: measured 2 after two branches); -1
#   elsewhere;
# - ``$T_reply_ruid``: "" (the usrloc record id of a branch: kcc's branches carry
#   none);
# - ``$T(name)``: ``id_index``/``id_label`` of the transaction, ``$null`` without one
#   (``id_index_n``/``id_label_n`` create it first, as ``t_newtran``);
#   ``reply_code``/``branch_index`` alias the two above; ``reply_type`` is 1 in
#   failure_route when the winner is a local reply (a timeout), else 0; ``ruid``,
#   ``uri`` and ``flags`` read the label (measured: ``$T(ruid)`` printed the label).


def _cell(ctx: Context) -> Cell | None:
    return ctx.tm_cell


def _t_reply_code(ctx: Context) -> Value:
    kind = ctx.kind
    if kind & Route.ONREPLY:
        msg = ctx.msg
        return msg.status if isinstance(msg, Response) else 0
    cell = _cell(ctx)
    if cell is None:
        return 0
    if kind & (Route.REQUEST | Route.BRANCH):
        return cell.server.last_status
    if kind & (Route.FAILURE | Route.BRANCH_FAILURE):
        return ctx.t_reply_code or 0
    return 0


def _picked(ctx: Context, cell: Cell) -> TmBranch | None:
    idx = ctx.t_branch_idx
    if idx is None or not 0 <= idx < len(cell.branches):
        return None
    return cell.branches[idx]


def _t_reply_reason(ctx: Context) -> Value:
    cell = _cell(ctx)
    if cell is None:
        return ""
    kind = ctx.kind
    msg = ctx.msg
    if kind & Route.ONREPLY:
        return msg.reason if isinstance(msg, Response) else ""
    if kind == Route.FAILURE:
        br = _picked(ctx, cell)
        if br is None:
            return None
        return br.reply.reason if br.reply is not None else br.reason
    return None


def _t_reply_last(ctx: Context) -> Value:
    msg = ctx.msg
    if ctx.kind != Route.TM_ONREPLY or _cell(ctx) is None or not isinstance(msg, Response):
        return None
    return msg.status


def _t_branch_idx(ctx: Context) -> Value:
    kind = ctx.kind
    if isinstance(ctx.msg, Response) or kind & (Route.BRANCH | Route.BRANCH_FAILURE):
        idx = ctx.t_branch_idx
        return -1 if idx is None else idx
    if kind == Route.REQUEST:
        return len(ctx.branches)
    if kind == Route.FAILURE:
        cell = _cell(ctx)
        return None if cell is None else len(cell.branches) + len(ctx.branches)
    return -1


def _t_reply_ruid(ctx: Context) -> Value:
    return ""


def _route_uri(ctx: Context) -> Value:
    from kcc_runtime.modules.rr import route_uri

    return route_uri(ctx)


_SIMPLE: Final[dict[str, Reader]] = {
    "rz": _ru_scheme,
    "fu": _name_addr_field("from", "uri"),
    "from": _name_addr_field("from", "uri"),
    "fU": _name_addr_field("from", "user"),
    "from.user": _name_addr_field("from", "user"),
    "fd": _name_addr_field("from", "host"),
    "from.domain": _name_addr_field("from", "host"),
    "fn": _name_addr_field("from", "name"),
    "ft": _name_addr_field("from", "tag"),
    "tu": _name_addr_field("to", "uri"),
    "to": _name_addr_field("to", "uri"),
    "tU": _name_addr_field("to", "user"),
    "to.user": _name_addr_field("to", "user"),
    "td": _name_addr_field("to", "host"),
    "to.domain": _name_addr_field("to", "host"),
    "tn": _name_addr_field("to", "name"),
    "tt": _name_addr_field("to", "tag"),
    "ci": _call_id,
    "cs": _cseq_number,
    "rm": _method,
    "rs": _status,
    "rr": _reason,
    "rv": _version,
    "si": lambda ctx: ctx.received.src_ip,
    "src_ip": lambda ctx: ctx.received.src_ip,
    "sp": lambda ctx: ctx.received.src_port,
    "Ri": lambda ctx: ctx.received.dst_ip,
    "Rp": lambda ctx: ctx.received.dst_port,
    "pr": lambda ctx: ctx.received.proto,
    "proto": lambda ctx: ctx.received.proto,
    "ua": lambda ctx: _header_text(ctx, "user-agent"),
    "mb": lambda ctx: ctx.msg.buf.decode("utf-8", "surrogateescape"),
    "ml": lambda ctx: len(ctx.msg.buf),
    "rc": lambda ctx: ctx.rc,
    "?": lambda ctx: ctx.rc,
    "retcode": lambda ctx: ctx.rc,
    "null": lambda ctx: None,
    "T_reply_code": _t_reply_code,
    "T_reply_reason": _t_reply_reason,
    "T_reply_last": _t_reply_last,
    "T_branch_idx": _t_branch_idx,
    "T_reply_ruid": _t_reply_ruid,
    "route_uri": _route_uri,
}


class _Simple(Accessor):
    """A read-only PV with no inner name, read by a function of the context."""

    __slots__ = ("reader",)

    def _bind(self) -> None:
        self.reader = _SIMPLE[self.name]

    def read(self, ctx: Context) -> Value:
        return self.reader(ctx)


#: the names ``$T(name)`` accepts (tmx ``pv_parse_t_name``)
T_NAMES: Final[frozenset[str]] = frozenset(
    {
        "id_index",
        "id_label",
        "id_index_n",
        "id_label_n",
        "reply_code",
        "reply_type",
        "branch_index",
        "ruid",
        "uri",
        "flags",
    }
)


class _T(Accessor):
    """``$T(name)``: the transaction's ids and state (see the tmx notes above); a
    name tmx does not know raises :class:`PvError` (Kamailio refuses to start)."""

    __slots__ = ()

    def _bind(self) -> None:
        if not isinstance(self.inner, str) or self.inner not in T_NAMES:
            raise PvError(f"$T({self.inner}) is not a transaction attribute")

    def read(self, ctx: Context) -> Value:
        what = self.inner
        if what == "reply_code":
            return _t_reply_code(ctx)
        if what == "branch_index":
            return _t_branch_idx(ctx)
        cell = _cell(ctx)
        if cell is None and what in ("id_index_n", "id_label_n"):
            if ctx.proc.engine.t_newtran(ctx) < 0:
                log.error("cannot create the transaction")
                return None
            cell = _cell(ctx)
        if cell is None:
            return None
        if what in ("id_index", "id_index_n"):
            return cell.hash_index
        if what == "reply_type":
            br = _picked(ctx, cell) if ctx.kind == Route.FAILURE else None
            return 1 if br is not None and br.reply is None else 0
        return cell.label


class _TMsg(Accessor):
    """``$T_req(pv)``, ``$T_rpl(pv)``, ``$T_inv(pv)``: ``pv`` read on another message
    of the transaction (tmx ``pv_get_t_var_req``/``_rpl``/``_inv``); the inner name
    is a pseudo-variable (the generated code passes it as a one-part :class:`Fmt`).

    - ``$T_req``: in a reply route, the request as the transaction received it (no
      script edits: measured ``$T_req($ru)`` is the R-URI before
      ``rewritehostport``); ``$null`` while the current message is a request (in
      failure_route too, measured);
    - ``$T_rpl``: in failure_route the winning reply, in a branch-failure route the
      failed branch's reply; ``$null`` for a local reply (a timeout) and elsewhere;
    - ``$T_inv``: for a CANCEL, the INVITE it cancels (measured in request_route:
      ``$T_inv($rm)`` is ``INVITE``); ``$null`` for anything else.
    """

    __slots__ = ("target",)

    def _bind(self) -> None:
        target = None
        inner = self.inner
        if isinstance(inner, Fmt) and len(inner.parts) == 1:
            part = inner.parts[0]
            target = part if isinstance(part, Accessor) else None
        if target is None:
            raise PvError(f"${self.name}() needs a pseudo-variable as its name")
        self.target: Accessor = target

    def read(self, ctx: Context) -> Value:
        other = self._context(ctx)
        return None if other is None else self.target.get(other)

    def _context(self, ctx: Context) -> Context | None:
        from kcc_runtime.context import Context as PlainContext
        from kcc_runtime.context import Received

        msg = ctx.msg
        if self.name == "T_inv":
            from kcc_runtime.tm import Tm

            tm = getattr(ctx.proc.engine, "tm", None)
            if not isinstance(msg, Request) or not isinstance(tm, Tm):
                return None
            cell = tm.find_invite_cell(msg)
            if cell is None:
                return None
            return PlainContext(ctx.proc, cell.received_request(), cell.ctx.received)
        cell = _cell(ctx)
        if cell is None:
            return None
        if self.name == "T_req":
            if not isinstance(msg, Response):
                return None
            return PlainContext(ctx.proc, cell.received_request(), cell.ctx.received)
        if not isinstance(msg, Request) or not ctx.kind & (Route.FAILURE | Route.BRANCH_FAILURE):
            return None
        br = _picked(ctx, cell)
        if br is None or br.reply is None:
            return None
        received = br.reply_received
        if received is None:
            received = Received(ctx.received.src_ip, ctx.received.src_port, "", 0)
        return PlainContext(ctx.proc, br.reply, received)


# -- the request URI and the destination URI (writable) -----------------------------------


class _RUri(Accessor):
    """``$ru``: writing it is ``rewriteuri`` (``ctx.new_uri``)."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        return current_ruri(ctx)

    def write(self, ctx: Context, value: Value) -> None:
        text = to_str(value)
        if value is None or not text or any(c in text for c in " \t\r\n"):
            log.error("cannot set the R-URI to %r", value)
            return
        set_ruri(ctx, text)


class _HttpUrl(Accessor):
    """xhttp's ``$hu``: the request-target of the request line as received (for
    an HTTP request on a SIP TCP socket, the URL with its query string, measured
    ``/x?a=1&b=2``); ``$null`` on a reply, as xhttp's ``pv_get_huri``."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        msg = ctx.msg
        if not isinstance(msg, Request):
            return None
        return msg.buf[msg.uri_start : msg.uri_end].decode("utf-8", "surrogateescape")


class _RUriPart(Accessor):
    """``$rU``, ``$rd``, ``$rp``: writing one rewrites that part of the current R-URI,
    as ``rewriteuser``/``rewritehost``/``rewriteport`` do; ``$null`` removes the user
    or the port."""

    __slots__ = ("part",)
    writable = True

    def _bind(self) -> None:
        self.part = {"rU": "user", "ruri.user": "user", "rd": "host", "ruri.domain": "host"}.get(
            self.name, "port"
        )

    def read(self, ctx: Context) -> Value:
        if self.part == "user":
            return _ru_user(ctx)
        if self.part == "host":
            return _ru_host(ctx)
        return _ru_port(ctx)

    def write(self, ctx: Context, value: Value) -> None:
        parts = _ruri_parts(ctx)
        if parts is None:
            log.error("cannot rewrite $%s: the R-URI does not parse", self.name)
            return
        text = "" if value is None else to_str(value)
        if self.part == "user":
            new = UriParts(
                parts.scheme,
                text or None,
                parts.password if text else None,
                parts.host,
                parts.port,
                parts.params,
                parts.headers,
            )
        elif self.part == "host":
            if not text:
                log.error("cannot set an empty R-URI host")
                return
            new = UriParts(
                parts.scheme,
                parts.user,
                parts.password,
                text,
                parts.port,
                parts.params,
                parts.headers,
            )
        else:
            new = UriParts(
                parts.scheme,
                parts.user,
                parts.password,
                parts.host,
                text,
                parts.params,
                parts.headers,
            )
        set_ruri(ctx, new.build())


class _DstUri(Accessor):
    """``$du``: the next hop; ``$du = $null`` (or ``""``) resets it."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        return ctx.dst_uri or None

    def write(self, ctx: Context, value: Value) -> None:
        text = to_str(value)
        ctx.dst_uri = text or None


class _Flags(Accessor):
    """``$mf``, ``$sf``, ``$bf``: a whole 32-bit flag set, read as the unsigned number
    Kamailio prints, written from any int (``$mf = -1`` sets all 32 flags)."""

    __slots__ = ("attr",)
    writable = True

    def _bind(self) -> None:
        self.attr = {"mf": "flags", "sf": "sflags", "bf": "bflags"}[self.name]

    def read(self, ctx: Context) -> Value:
        value: int = getattr(ctx, self.attr)
        return value & _MASK32

    def write(self, ctx: Context, value: Value) -> None:
        setattr(ctx, self.attr, to_int(value) & _MASK32)


# -- script variables -----------------------------------------------------------------------


class _Var(Accessor):
    """``$var(x)``: per worker; unset reads 0, ``$null`` stores 0."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        return ctx.proc.vars.get(self.inner_name(ctx), 0)

    def write(self, ctx: Context, value: Value) -> None:
        ctx.proc.vars[self.inner_name(ctx)] = 0 if value is None else value


class _Shv(Accessor):
    """``$shv(x)``: shared by every worker (:class:`~kcc_runtime.shared.SharedStore`)."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        return ctx.proc.shared.get(self.inner_name(ctx))

    def write(self, ctx: Context, value: Value) -> None:
        ctx.proc.shared.set(self.inner_name(ctx), value)


# -- htable: $sht and friends (kcc_runtime.htable) -------------------------------------------


def _sht_target(acc: Accessor, ctx: Context) -> tuple[HtTable | None, str]:
    """The table and key of ``$sht(table=>key)`` (the inner name rendered, split at
    the first ``=>``); no table when it is not declared."""
    name, _, key = acc.inner_name(ctx).partition("=>")
    return ctx.proc.htables.table(name), key


class _Sht(Accessor):
    """``$sht(table=>key)``: read (``$null``, or the table's ``initval``, when the key
    is missing or expired) and write (``$null`` deletes). A table the cfg does not
    declare reads ``$null``; assigning to it logs Kamailio's error and the script goes
    on ("setting pvar failed")."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        table, key = _sht_target(self, ctx)
        return None if table is None else table.get(key)

    def write(self, ctx: Context, value: Value) -> None:
        table, key = _sht_target(self, ctx)
        if table is None:
            log.error("htable not found for $sht(%s): setting pvar failed", self.inner_name(ctx))
            return
        table.set(key, value)


class _ShtEx(Accessor):
    """``$shtex(table=>key)``: seconds until the item expires (0: missing, never, or a
    table without ``autoexpire``); assigning sets it (0: never expire)."""

    __slots__ = ()
    writable = True

    def read(self, ctx: Context) -> Value:
        table, key = _sht_target(self, ctx)
        return 0 if table is None else table.expires_in(key)

    def write(self, ctx: Context, value: Value) -> None:
        table, key = _sht_target(self, ctx)
        if table is None:
            log.error("htable not found for $shtex(%s): setting pvar failed", self.inner_name(ctx))
            return
        table.set_expires(key, to_int(value))


class _ShtCount(Accessor):
    """``$shtcn(table=>expr)`` / ``$shtcv(table=>expr)``: items whose name / string
    value matches ``expr`` (``~~re``, ``%~prefix``, ``~%suffix``, ``==text``, ``**``;
    :func:`kcc_runtime.htable.count_matcher`); 0 for a bad regex."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        table, expr = _sht_target(self, ctx)
        if table is None:
            return None
        test = count_matcher(expr)
        if test is None:
            return 0
        by_value = self.name == "shtcv"
        return table.count(test, by_value=by_value, everything=expr.startswith("**"))


class _ShtAdd(Accessor):
    """``$shtinc(table=>key)`` / ``$shtdec(table=>key)``: add 1 / -1 to an int item
    and read the new value (:meth:`kcc_runtime.htable.Table.add`)."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        table, key = _sht_target(self, ctx)
        if table is None:
            return None
        return table.add(key, 1 if self.name == "shtinc" else -1)


class _ShtIter(Accessor):
    """``$shtitkey(name)`` / ``$shtitval(name)``: the current item of iterator
    ``name``; ``$null`` before the first ``sht_iterator_next`` and after the last."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        it = ctx.proc.htables.iterators.get(self.inner_name(ctx))
        if it is None or it.current is None:
            return None
        if self.name == "shtitkey":
            return it.current
        item = it.item()
        return None if item is None else item.value


class _ShtRecord(Accessor):
    """``$shtrecord(key)`` / ``$shtrecord(value)``: the expired item
    ``event_route[htable:expired:<table>]`` runs for; ``$null`` elsewhere."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        record = ctx.proc.htables.expired_record
        if record is None:
            return None
        attr = self.inner_name(ctx)
        if attr == "key":
            return record.key
        return record.value if attr == "value" else None


def avp_key(name: str) -> str | int:
    """An AVP name as ``ctx.avps`` keys it: ``i:5`` -> 5, ``s:x`` and ``x`` -> ``"x"``."""
    if name.startswith("i:"):
        return to_int(name[2:])
    if name.startswith("s:"):
        return name[2:]
    return name


class _Avp(Accessor):
    """``$avp(x)``, ``$(avp(x)[n])``, ``$(avp(x)[*])``: a stack of values, newest first."""

    __slots__ = ()
    writable = True

    def _key(self, ctx: Context) -> str | int:
        return avp_key(self.inner_name(ctx))

    def read(self, ctx: Context) -> Value:
        values = ctx.avps.get(self._key(ctx))
        if not values:
            return None
        index = self.resolved_index(ctx)
        if index is None:
            return values[0]
        if index == ALL:
            return ", ".join(to_str(v) for v in values)
        assert isinstance(index, int)
        return values[index] if 0 <= index < len(values) else None

    def write(self, ctx: Context, value: Value) -> None:
        key = self._key(ctx)
        everything = self.resolved_index(ctx) == ALL
        values = ctx.avps.get(key)
        if value is None:
            if values:
                if everything:
                    del ctx.avps[key]
                else:
                    del values[0]
                    if not values:
                        del ctx.avps[key]
            return
        if values is None or everything:
            ctx.avps[key] = [value]
        else:
            values.insert(0, value)


# -- xavp -----------------------------------------------------------------------------------


class XavpRoot:
    """One ``$xavp(r)`` item: a plain value or a list of named fields, newest first."""

    __slots__ = ("fields", "value")

    def __init__(self, value: Value = None) -> None:
        self.value = value
        self.fields: list[tuple[str, Value]] = []

    def __repr__(self) -> str:
        return f"<<xavp:{id(self):#x}>>"


_XAVP_NAME: Final = re.compile(
    r"\s*([^\[\]=\s]+)\s*(?:\[\s*(\*|-?[0-9]+)\s*\])?\s*"
    r"(?:=>\s*([^\[\]=\s]+)\s*(?:\[\s*(\*|-?[0-9]+)\s*\])?\s*)?"
)


def xavp_store(ctx: Context) -> dict[str, list[XavpRoot]]:
    """The message's xavps: name -> roots, newest first (kept on the context)."""
    store: dict[str, list[XavpRoot]] = vars(ctx).setdefault("_kcc_xavps", {})
    return store


def _pick(items_len: int, index: int | str | None) -> int | None:
    if index is None:
        return 0 if items_len else None
    if index == ALL:
        return None
    assert isinstance(index, int)
    position = index if index >= 0 else items_len + index
    return position if 0 <= position < items_len else None


class _Xavp(Accessor):
    """``$xavp(root[i]=>field[j])``."""

    __slots__ = ()
    writable = True

    def _parse(self, ctx: Context) -> tuple[str, int | str | None, str | None, int | str | None]:
        found = _XAVP_NAME.fullmatch(self.inner_name(ctx))
        if found is None:
            raise PvError(f"bad xavp name {self.inner!r}")
        root, ri, field, fi = found.groups()

        def idx(text: str | None) -> int | str | None:
            return None if text is None else (ALL if text == ALL else int(text))

        return root, idx(ri), field, idx(fi)

    def read(self, ctx: Context) -> Value:
        try:
            root_name, ri, field, fi = self._parse(ctx)
        except PvError:
            return None
        roots = xavp_store(ctx).get(root_name, [])
        pos = _pick(len(roots), ri)
        if pos is None:
            return None
        root = roots[pos]
        if field is None:
            return repr(root) if root.value is None else root.value
        values = [v for k, v in root.fields if k == field]
        fpos = _pick(len(values), fi)
        return None if fpos is None else values[fpos]

    def write(self, ctx: Context, value: Value) -> None:
        try:
            root_name, ri, field, fi = self._parse(ctx)
        except PvError:
            log.error("bad xavp name %r", self.inner)
            return
        store = xavp_store(ctx)
        roots = store.setdefault(root_name, [])
        if value is None:
            if field is None:
                if ri == ALL:
                    roots.clear()
                else:
                    pos = _pick(len(roots), ri)
                    if pos is not None:
                        del roots[pos]
            else:
                pos = _pick(len(roots), ri)
                if pos is not None:
                    fields = roots[pos].fields
                    hits = [n for n, (k, _) in enumerate(fields) if k == field]
                    if fi == ALL:
                        doomed = hits
                    else:
                        hit = _pick(len(hits), fi)
                        doomed = [] if hit is None else [hits[hit]]
                    for n in reversed(doomed):
                        del fields[n]
            if not roots:
                del store[root_name]
            return
        if field is None:
            roots.insert(0, XavpRoot(value))
            return
        if ri is None:
            new = XavpRoot()
            new.fields.append((field, value))
            roots.insert(0, new)
            return
        pos = _pick(len(roots), ri)
        if pos is None:
            log.error("no xavp %s[%s] to add %s to", root_name, ri, field)
            if not roots:
                del store[root_name]
            return
        roots[pos].fields.insert(0, (field, value))


# -- headers, message parts, environment, selects --------------------------------------------


class _Hdr(Accessor):
    """``$hdr(Name)``: the value of a header line (compact names accepted)."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        name = self.inner_name(ctx)
        index = self.resolved_index(ctx)
        if index is None:
            return ctx.msg.header(name)
        values = ctx.msg.header_values(canonical_name(name))
        if index == ALL:
            return ",".join(values) if values else None
        assert isinstance(index, int)
        pos = _pick(len(values), index)
        return None if pos is None else values[pos]


class _Msg(Accessor):
    """``$msg(len)``, ``$msg(buf)``, ``$msg(body)``, ``$msg(body_len)``,
    ``$msg(hdrs)``, ``$msg(fline)``: the message as received."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        msg = ctx.msg
        what = self.inner_name(ctx)
        if what == "len":
            return len(msg.buf)
        if what == "buf":
            return msg.buf.decode("utf-8", "surrogateescape")
        if what == "body":
            return msg.body.decode("utf-8", "surrogateescape")
        if what == "body_len":
            return len(msg.body)
        if what == "hdrs":
            return msg.buf[msg.hdr_start : msg.hdr_end].decode("utf-8", "surrogateescape")
        if what == "fline":
            return msg.buf[: msg.hdr_start].decode("utf-8", "surrogateescape").rstrip("\r\n")
        return None


class _Env(Accessor):
    """``$env(NAME)``: the process environment; ``$null`` when unset."""

    __slots__ = ()

    def read(self, ctx: Context) -> Value:
        return os.environ.get(self.inner_name(ctx))


class _Sel(Accessor):
    """``$sel(path)`` and ``@path``: see :func:`select`."""

    __slots__ = ("reader",)

    def _bind(self) -> None:
        path = self.inner if isinstance(self.inner, str) else ""
        self.reader = _select_reader(path)

    def read(self, ctx: Context) -> Value:
        return self.reader(ctx)


def _cfg_var(group: str, var: str) -> Reader:
    def read(ctx: Context) -> Value:
        config = ctx.proc.config
        if config is None:
            return None
        # a value set over RPC (cfg.seti/cfg.sets) wins, in every worker
        override = ctx.proc.shared.cfg_override(group, var)
        value = config.cfg_var(group, var) if override is None else override
        return value if isinstance(value, (int, str)) else None

    return read


def _via_host(number: int) -> Reader:
    def read(ctx: Context) -> Value:
        vias = ctx.msg.vias
        return vias[number - 1].host if 0 < number <= len(vias) else None

    return read


_SEL_FIXED: Final[dict[str, Reader]] = {
    "ruri": current_ruri,
    "ruri.user": _ru_user,
    "ruri.host": _ru_host,
    "from.uri": _name_addr_field("from", "uri"),
    "from.tag": _name_addr_field("from", "tag"),
    "to.uri": _name_addr_field("to", "uri"),
    "to.tag": _name_addr_field("to", "tag"),
    "call_id": _call_id,
    "method": _method,
}
_SEL_VIA: Final = re.compile(r"via\[([1-9][0-9]*)\]\.host")
_SEL_CFG: Final = re.compile(r"cfg_get\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")

#: select paths kcc implements (plus every ``cfg_get.<group>.<var>`` and ``via[N].host``)
SELECTS: Final[frozenset[str]] = frozenset({*_SEL_FIXED, "cfg_get.<group>.<var>", "via[<n>].host"})


def _select_reader(path: str) -> Reader:
    path = path.removeprefix("@")
    fixed = _SEL_FIXED.get(path)
    if fixed is not None:
        return fixed
    via = _SEL_VIA.fullmatch(path)
    if via is not None:
        return _via_host(int(via.group(1)))
    cfg = _SEL_CFG.fullmatch(path)
    if cfg is not None:
        return _cfg_var(cfg.group(1), cfg.group(2))
    raise PvError(f"select @{path} is not supported by the kcc runtime")


def select(path: str) -> Accessor:
    """``@cfg_get.group.var`` / ``$sel(path)``: a read-only accessor.

    ``cfg_get.<group>.<var>`` reads a custom cfg variable from the :class:`Config` the
    worker runs (``ctx.proc.config.cfg_var``, set by ``Router.process``); ``$null``
    when undeclared. ``ruri``, ``from.uri``, ``to.uri``, ``via[N].host`` ... read the
    message. Any other path raises :class:`PvError` when the module is imported."""
    return _Sel("sel", path.removeprefix("@"))


# -- the factory ------------------------------------------------------------------------------

_CLASSES: Final[dict[str, type[Accessor]]] = {
    **dict.fromkeys(_SIMPLE, _Simple),
    "ru": _RUri,
    "ruri": _RUri,
    **dict.fromkeys(("rU", "ruri.user", "rd", "ruri.domain", "rp"), _RUriPart),
    "du": _DstUri,
    "duri": _DstUri,
    "hu": _HttpUrl,
    **dict.fromkeys(("mf", "sf", "bf"), _Flags),
    "var": _Var,
    "shv": _Shv,
    "sht": _Sht,
    "shtex": _ShtEx,
    **dict.fromkeys(("shtcn", "shtcv"), _ShtCount),
    **dict.fromkeys(("shtinc", "shtdec"), _ShtAdd),
    **dict.fromkeys(("shtitkey", "shtitval"), _ShtIter),
    "shtrecord": _ShtRecord,
    "avp": _Avp,
    "xavp": _Xavp,
    "hdr": _Hdr,
    "msg": _Msg,
    "env": _Env,
    "sel": _Sel,
    "T": _T,
    **dict.fromkeys(("T_req", "T_rpl", "T_inv"), _TMsg),
}

#: every PV class name :func:`accessor` implements
PVS: Final[frozenset[str]] = frozenset(_CLASSES)
#: the PV classes :meth:`Accessor.set` accepts
WRITABLE: Final[frozenset[str]] = frozenset(n for n, c in _CLASSES.items() if c.writable)


def accessor(
    name: str,
    inner: str | Fmt | None = None,
    index: int | str | Accessor | None = None,
    transformations: tuple[Transformation, ...] = (),
) -> Accessor:
    """The accessor of ``$name(inner)[index]{transformations}``; :class:`PvError`
    for a PV class the runtime does not implement (see :data:`PVS`)."""
    cls = _CLASSES.get(name)
    if cls is None:
        raise PvError(f"${name} is not supported by the kcc runtime")
    return cls(name, inner, index, transformations)


# -- transformations ----------------------------------------------------------------------------

TrFn: TypeAlias = Callable[[Value, tuple[Value, ...]], Value]


def _s(value: Value) -> str:
    return to_str(value)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _tr_int(value: Value, _: tuple[Value, ...]) -> Value:
    if type(value) is int:
        return value
    text = _s(value)
    if re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII) is None:
        return None  # " 12 ", "12abc": the transformation fails
    number = int(text)
    return number if -(2**31) <= number < 2**31 else None


def _tr_substr(value: Value, params: tuple[Value, ...]) -> Value:
    """``{s.substr,offset,length}``: a negative offset counts from the end; length 0
    is "to the end"; an offset outside the string fails (``"Hello,World,Foo"``:
    ``1,3`` -> ``ell``, ``-3,2`` -> ``Fo``, ``6,0`` -> ``World,Foo``, ``10,10`` ->
    ``d,Foo``, ``20,2`` and ``-20,2`` fail)."""
    text = _s(value)
    offset, length = to_int(params[0]), to_int(params[1])
    if length < 0:
        return None
    start = offset if offset >= 0 else len(text) + offset
    if not 0 <= start < len(text):
        return None
    return text[start:] if length == 0 else text[start : start + length]


def _tr_select(value: Value, params: tuple[Value, ...]) -> Value:
    """``{s.select,index,sep}``: the index-th field, negative from the end; out of
    range is ``""`` (``"Hello,World,Foo"``: ``1`` -> ``World``, ``-1`` -> ``Foo``,
    ``5`` -> ``""``)."""
    sep = _s(params[1])[:1] or ","
    fields = _s(value).split(sep)
    index = to_int(params[0])
    pos = index if index >= 0 else len(fields) + index
    return fields[pos] if 0 <= pos < len(fields) else ""


def _tr_strip(value: Value, params: tuple[Value, ...]) -> Value:
    """``{s.strip,n}``: drop the first n characters (all of them when n is larger;
    a negative n leaves the string)."""
    count = to_int(params[0])
    text = _s(value)
    return text if count <= 0 else text[count:]


def _tr_striptail(value: Value, params: tuple[Value, ...]) -> Value:
    count = to_int(params[0])
    text = _s(value)
    return text if count <= 0 else text[: max(len(text) - count, 0)]


def _tr_prefixes(quoted: bool) -> TrFn:
    def apply(value: Value, params: tuple[Value, ...]) -> Value:
        text = _s(value)
        wrap = "'{}'" if quoted else "{}"
        return ",".join(wrap.format(text[:n]) for n in range(1, len(text) + 1))

    return apply


def _tr_decode_base64(value: Value, _: tuple[Value, ...]) -> Value:
    try:
        return _text(base64.b64decode(_utf8(_s(value)), validate=False))
    except (binascii.Error, ValueError):
        return None


def _tr_decode_hexa(value: Value, _: tuple[Value, ...]) -> Value:
    try:
        return _text(bytes.fromhex(_s(value)))
    except ValueError:
        return None


def _tr_ftime(value: Value, params: tuple[Value, ...]) -> Value:
    """``{s.ftime,format}``: ``strftime`` of the value as a Unix time, in UTC (the
    proxy's measurements ran with ``TZ`` unset: ``1000000000`` with ``%Y-%m-%d
    %H:%M:%S`` -> ``2001-09-09 01:46:40``)."""
    try:
        return time.strftime(_s(params[0]), time.gmtime(to_int(value)))
    except (ValueError, OverflowError):
        return None


def _uri_part(getter: Callable[[UriParts], str | None]) -> TrFn:
    """A ``uri.*`` transformation; a value that is not a URI fails, an absent part
    is ``""`` (Kamailio: ``$(var(v){uri.port})`` of ``sip:a@b`` is ``""``)."""

    def apply(value: Value, _: tuple[Value, ...]) -> Value:
        parts = split_uri(_s(value))
        if parts is None:
            return None
        got = getter(parts)
        return "" if got is None else got

    return apply


def _tr_uri_param(value: Value, params: tuple[Value, ...]) -> Value:
    parts = split_uri(_s(value))
    if parts is None:
        return None
    return parts.param(_s(params[0])) or ""


def _nameaddr_split(text: str) -> tuple[str, str, str]:
    """(display as written, URI, the rest after ``>``) of a name-addr or addr-spec."""
    lt = text.find("<")
    if lt < 0:
        uri, _, rest = text.strip(" \t").partition(";")
        return "", uri, (";" + rest) if rest else ""
    gt = text.find(">", lt)
    if gt < 0:
        return text[:lt].lstrip(" \t"), text[lt + 1 :], ""
    return text[:lt].lstrip(" \t"), text[lt + 1 : gt], text[gt + 1 :]


def _tr_nameaddr_name(value: Value, _: tuple[Value, ...]) -> Value:
    """``{nameaddr.name}``: the display name as written, quotes and trailing space
    included (``"Bob B" <sip:...>`` -> ``"Bob B" ``, 8 characters)."""
    return _nameaddr_split(_s(value))[0]


def _tr_nameaddr_uri(value: Value, _: tuple[Value, ...]) -> Value:
    return _nameaddr_split(_s(value))[1]


def _tr_nameaddr_len(value: Value, _: tuple[Value, ...]) -> Value:
    """``{nameaddr.len}``: the length of the whole name-addr, display name and ``<>``
    included, header parameters not (``"Bob B" <...79 chars...>;tag=abc`` -> 89)."""
    text = _s(value).lstrip(" \t")
    gt = text.find(">") if "<" in text else -1
    return len(_utf8(text[: gt + 1] if gt >= 0 else _nameaddr_split(text)[1]))


def _tobody_params(text: str) -> str:
    rest = _nameaddr_split(text)[2].strip(" \t")
    return rest[1:] if rest.startswith(";") else rest


def _tr_tobody(field: str) -> TrFn:
    """``{tobody.*}``: parts of a To/From body (``tag``, ``display`` without the
    trailing space, ``params`` after the URI, ``uri``, ``user``, ``host``)."""

    def apply(value: Value, _: tuple[Value, ...]) -> Value:
        text = _s(value)
        display, uri, _rest = _nameaddr_split(text)
        if field == "uri":
            return uri
        if field == "display":
            return display.strip(" \t")
        if field == "params":
            return _tobody_params(text)
        if field == "tag":
            return _param_value(_tobody_params(text), "tag", ";", fold=True) or ""
        parts = split_uri(uri)
        if parts is None:
            return None
        return (parts.user or "") if field == "user" else parts.host

    return apply


def _tr_param_value(value: Value, params: tuple[Value, ...]) -> Value:
    """``{param.value,name[,delim]}``: ``a=1;b=2;c``: ``b`` -> 2, ``c`` -> ``""``,
    absent -> ``""``."""
    delim = _s(params[1])[:1] if len(params) > 1 else ";"
    return _param_value(_s(value), _s(params[0]), delim or ";") or ""


def _param_items(value: Value, params: tuple[Value, ...], at: int) -> list[tuple[str, str]]:
    delim = (_s(params[at])[:1] if len(params) > at else ";") or ";"
    out: list[tuple[str, str]] = []
    for item in _s(value).split(delim):
        if item.strip(" \t"):
            key, _, val = item.partition("=")
            out.append((key.strip(" \t"), val.strip(" \t")))
    return out


def _tr_param_count(value: Value, params: tuple[Value, ...]) -> Value:
    return len(_param_items(value, params, 0))


def _tr_param_name(value: Value, params: tuple[Value, ...]) -> Value:
    items = _param_items(value, params, 1)
    pos = _pick(len(items), to_int(params[0]))
    return None if pos is None else items[pos][0]


def _tr_param_valueat(value: Value, params: tuple[Value, ...]) -> Value:
    items = _param_items(value, params, 1)
    pos = _pick(len(items), to_int(params[0]))
    return None if pos is None else items[pos][1]


def _tr_param_in(value: Value, params: tuple[Value, ...]) -> Value:
    name = _s(params[0])
    return 1 if any(k == name for k, _ in _param_items(value, params, 1)) else 0


def _digest(algorithm: str) -> TrFn:
    def apply(value: Value, _: tuple[Value, ...]) -> Value:
        return hashlib.new(algorithm, _utf8(_s(value))).hexdigest()

    return apply


def _tr_line_count(value: Value, _: tuple[Value, ...]) -> Value:
    text = _s(value)
    return 0 if not text else len(text.splitlines())


_TRANSFORMS: Final[dict[str, tuple[TrFn, int, int]]] = {
    # name: (function, minimum and maximum parameter count)
    "s.len": (lambda v, p: len(_utf8(_s(v))), 0, 0),
    "s.int": (_tr_int, 0, 0),
    "s.md5": (_digest("md5"), 0, 0),
    "s.sha256": (_digest("sha256"), 0, 0),
    "s.sha384": (_digest("sha384"), 0, 0),
    "s.sha512": (_digest("sha512"), 0, 0),
    "s.tolower": (lambda v, p: v if type(v) is int else _s(v).lower(), 0, 0),
    "s.toupper": (lambda v, p: v if type(v) is int else _s(v).upper(), 0, 0),
    "s.substr": (_tr_substr, 2, 2),
    "s.select": (_tr_select, 2, 2),
    "s.strip": (_tr_strip, 1, 1),
    "s.striptail": (_tr_striptail, 1, 1),
    "s.prefixes": (_tr_prefixes(quoted=False), 0, 0),
    "s.prefixes.quoted": (_tr_prefixes(quoted=True), 0, 0),
    "s.encode.base64": (lambda v, p: base64.b64encode(_utf8(_s(v))).decode("ascii"), 0, 0),
    "s.decode.base64": (_tr_decode_base64, 0, 0),
    "s.encode.hexa": (lambda v, p: _utf8(_s(v)).hex(), 0, 0),
    "s.decode.hexa": (_tr_decode_hexa, 0, 0),
    "s.trim": (lambda v, p: _s(v).strip(" \t\r\n"), 0, 0),
    "s.rtrim": (lambda v, p: _s(v).rstrip(" \t\r\n"), 0, 0),
    "s.ltrim": (lambda v, p: _s(v).lstrip(" \t\r\n"), 0, 0),
    "s.rmws": (lambda v, p: re.sub(r"[ \t\r\n]", "", _s(v)), 0, 0),
    "s.numeric": (lambda v, p: re.sub(r"[^0-9]", "", _s(v)), 0, 0),
    "s.ftime": (_tr_ftime, 1, 1),
    "uri.user": (_uri_part(lambda u: u.user), 0, 0),
    "uri.host": (_uri_part(lambda u: u.host), 0, 0),
    "uri.domain": (_uri_part(lambda u: u.host), 0, 0),
    "uri.passwd": (_uri_part(lambda u: u.password), 0, 0),
    "uri.port": (_uri_part(lambda u: u.port), 0, 0),
    "uri.params": (_uri_part(lambda u: u.params), 0, 0),
    "uri.headers": (_uri_part(lambda u: u.headers), 0, 0),
    "uri.scheme": (_uri_part(lambda u: u.scheme), 0, 0),
    "uri.transport": (_uri_part(lambda u: u.param("transport")), 0, 0),
    "uri.ttl": (_uri_part(lambda u: u.param("ttl")), 0, 0),
    "uri.uparam": (_uri_part(lambda u: u.param("user")), 0, 0),
    "uri.maddr": (_uri_part(lambda u: u.param("maddr")), 0, 0),
    "uri.method": (_uri_part(lambda u: u.param("method")), 0, 0),
    "uri.lr": (_uri_part(lambda u: u.param("lr")), 0, 0),
    "uri.r2": (_uri_part(lambda u: u.param("r2")), 0, 0),
    "uri.param": (_tr_uri_param, 1, 1),
    "nameaddr.name": (_tr_nameaddr_name, 0, 0),
    "nameaddr.uri": (_tr_nameaddr_uri, 0, 0),
    "nameaddr.len": (_tr_nameaddr_len, 0, 0),
    "tobody.uri": (_tr_tobody("uri"), 0, 0),
    "tobody.tag": (_tr_tobody("tag"), 0, 0),
    "tobody.user": (_tr_tobody("user"), 0, 0),
    "tobody.host": (_tr_tobody("host"), 0, 0),
    "tobody.params": (_tr_tobody("params"), 0, 0),
    "tobody.display": (_tr_tobody("display"), 0, 0),
    "param.value": (_tr_param_value, 1, 2),
    "param.in": (_tr_param_in, 1, 2),
    "param.valueat": (_tr_param_valueat, 1, 2),
    "param.name": (_tr_param_name, 1, 2),
    "param.count": (_tr_param_count, 0, 1),
    "line.count": (_tr_line_count, 0, 0),
}

#: the transformations the runtime implements; the compiler refuses the others
TRANSFORMATIONS: Final[frozenset[str]] = frozenset(_TRANSFORMS)


@dataclass(frozen=True, slots=True)
class Transformation:
    """One ``{class.name,params}`` of a PV, applied by :meth:`Accessor.get`."""

    name: str
    params: tuple[Param, ...] = ()

    def apply(self, ctx: Context, value: Value) -> Value:
        """The transformed value; ``None`` when the transformation fails."""
        entry = _TRANSFORMS.get(self.name)
        if entry is None:
            raise PvError(f"transformation {{{self.name}}} is not supported by the kcc runtime")
        fn = entry[0]
        return fn(value, tuple(_param(ctx, p) for p in self.params))


def transformation(name: str, *params: Param) -> Transformation:
    """``{name,params...}``; :class:`PvError` for an unknown name or a wrong number of
    parameters (see :data:`TRANSFORMATIONS`)."""
    entry = _TRANSFORMS.get(name)
    if entry is None:
        raise PvError(f"transformation {{{name}}} is not supported by the kcc runtime")
    if not entry[1] <= len(params) <= entry[2]:
        raise PvError(f"transformation {{{name}}} takes {entry[1]}..{entry[2]} parameters")
    return Transformation(name, params)
