"""SIP registrar: stores REGISTER contacts in usrloc and looks them up to
route requests to registered users.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.

The contacts live in :mod:`kcc_runtime.location` (usrloc's table, shared by every
worker). The functions follow Kamailio 5.6's registrar (``save.c``, ``lookup.c``,
``reply.c``, ``sip_msg.c``) and were checked against kamailio 5.6.3 on loopback (a
cfg with ``save("location")``/``lookup("location")``, REGISTERs sent from a Python
UDP socket, replies and ``xlog`` lines compared):

- ``save`` sends its reply itself (unless flag ``0x02``): ``200 OK`` with one
  ``Contact`` header listing every valid binding of the AoR as
  ``<uri>;q=0.5;expires=N`` (``;q`` only when the contact gave one,
  ``;received="..."`` when one is stored, ``;+sip.instance="..."`` and ``;reg-id=N``),
  in usrloc order (q highest first, then oldest first); after the copied headers and
  before ``Server`` (reply lumps). An error is ``400``/``420``/``423``/``500``/``503``
  with ``P-Registrar-Error: <text>`` and, when the AoR's record was read, the current
  bindings (measured: a CSeq lower than the stored one for the same Call-ID is
  ``400 Bad Request`` + ``P-Registrar-Error: Invalid CSeq number`` listing the
  contacts; ``max_contacts`` exceeded is ``503 Service Unavailable`` +
  ``Too many registered contacts``, return code -2; ``*`` with ``Expires`` not 0 is
  ``400`` + ``* used in contact and expires is not zero`` without contacts). The
  reply lumps stay with the request, so the stock config's ``sl_reply_error()`` after
  a failed ``save`` sends a second reply, ``500 I'm terribly sorry, server error
  occurred (1/SL)``, carrying them too, exactly as Kamailio does (measured).
- Return codes of ``save``: 1 contacts inserted (also a retransmission, same CSeq
  within ``cseq_delay``), 2 updated, 3 deleted (the last operation on the contact
  list wins), 4 no Contact (bindings returned); -1 error, -2 too many contacts.
- Expires: the contact's ``expires`` parameter, else the ``Expires`` header (an
  unparsable value is ignored: measured ``Expires: abc`` gives the default), else
  ``default_expires``; below ``min_expires`` raised to it (``min_expires_mode`` 1:
  ``423 Interval Too Brief`` with ``Min-Expires``), above ``max_expires`` lowered
  (measured 10 -> 60 and 99999 -> 3600 with ``max_expires`` 3600); ``*_range``
  randomisation as Kamailio's ``randomize_expires``.
- ``lookup``: 1 found (R-URI = the first valid contact of the method, ``$du`` = the
  first ``Path`` hop or else the ``received`` address, branch flags = the stored
  ones, measured ``$bF`` 0x48 after saving with flags 3 and 6), -1 none, -2 contacts
  exist but none allows the method (``method_filtering``, measured with a contact
  ``;methods="INVITE,ACK"`` and a SUBSCRIBE), -3 error; the other contacts are
  appended as branches in usrloc order when ``append_branches`` is 1 (measured:
  q 1 as R-URI, then q 0.5, then the q-less ones oldest first).

Deviations: ``lookup`` records the contact's socket but does not force it as the
send socket (Kamailio's ``force_send_socket``), because a forced socket would bypass
the per-worker reply socket that brings a stateful relay's responses back to the
worker holding the transaction (the contact's socket is the listening socket the
proxy sends from anyway); GRUU parameters (``pub-gruu``/``temp-gruu``, only with
``Supported: gruu`` and an instance) are not generated; ``$ulc`` and
``reg_fetch_contacts`` are not implemented. The Path route set is kept in
``ctx.path_vec`` / ``Branch.path``; inserting it as Route headers when relaying is
the engine's (tm's) part.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from kcc_runtime import location as loc
from kcc_runtime.context import Branch, Context
from kcc_runtime.exports import (
    INT,
    STR,
    STR_CONST,
    Cmd,
    FlagKind,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.modules.sl import send_reply
from kcc_runtime.pv import current_ruri, set_ruri, xavp_store
from kcc_runtime.sip import Message, Request, SipParseError
from kcc_runtime.sip.headers import NameAddr, parse_name_addr_list
from kcc_runtime.sip.uri import SipUri, TelUri, parse_uri

__all__ = [
    "EXPORTS",
    "lookup",
    "lookup_branches",
    "lookup_to_dset",
    "registered",
    "save",
    "unregister",
]

log = logging.getLogger("kcc_runtime.registrar")

# save() flags (README 4.1)
SAVE_MEM: Final = 0x01
SAVE_NOREPLY: Final = 0x02
SAVE_ONE_CONTACT: Final = 0x04
SAVE_NOVARIATION: Final = 0x08
SAVE_PREPARE_REPLY: Final = 0x10

#: Kamailio's limits (``registrar.h``, ``ucontact.h``)
RECEIVED_MAX_SIZE: Final = 255
CALLID_MAX_SIZE: Final = 255
MAX_UA_SIZE: Final = 255
#: ``FL_MEM``: a contact saved with flag 0x01 (never written to a database)
FL_MEM: Final = 1

#: Kamailio's ``METHOD_*`` bits (``parser/msg_parser.h``), for ``methods`` and
#: ``Allow`` and the ``methods`` column
METHOD_BITS: Final = {
    "INVITE": 1,
    "CANCEL": 2,
    "ACK": 4,
    "BYE": 8,
    "INFO": 16,
    "REGISTER": 32,
    "SUBSCRIBE": 64,
    "NOTIFY": 128,
    "MESSAGE": 256,
    "OPTIONS": 512,
    "PRACK": 1024,
    "UPDATE": 2048,
    "REFER": 4096,
    "PUBLISH": 8192,
    "KDMQ": 16384,
    "GET": 32768,
    "POST": 65536,
    "PUT": 131072,
    "DELETE": 262144,
}
METHOD_OTHER: Final = 524288

_Q_RE: Final = re.compile(r"\s*(?:0(?:\.([0-9]{0,3}))?|1(?:\.0{0,3})?)\s*\Z")


@dataclass(frozen=True, slots=True)
class RegError:
    """One of Kamailio's ``rerrno`` values: reply code and ``P-Registrar-Error``."""

    code: int
    info: str


# reply.c: error_info[] and codes[] by rerrno
R_INV_CSEQ: Final = RegError(400, "Invalid CSeq number")
R_UL_DEL_R: Final = RegError(500, "usrloc_record_delete failed")
R_UL_GET_R: Final = RegError(500, "usrloc_record_get failed")
R_UL_INS_C: Final = RegError(500, "usrloc_contact_insert failed")
R_INV_EXP: Final = RegError(400, "Invalid expires param in contact")
R_INV_Q: Final = RegError(400, "Invalid q param in contact")
R_PARSE: Final = RegError(400, "Message parse error")
R_TO_MISS: Final = RegError(400, "To header not found")
R_CID_MISS: Final = RegError(400, "Call-ID header not found")
R_CS_MISS: Final = RegError(400, "CSeq header not found")
R_PARSE_CONT: Final = RegError(400, "Contact parse error")
R_STAR_EXP: Final = RegError(400, "* used in contact and expires is not zero")
R_STAR_CONT: Final = RegError(400, "* used in contact and more than 1 contact")
R_TOO_MANY: Final = RegError(503, "Too many registered contacts")
R_CONTACT_LEN: Final = RegError(400, "Contact/received too long")
R_CALLID_LEN: Final = RegError(400, "Callid too long")
R_PARSE_PATH: Final = RegError(400, "Path parse error")
R_PATH_UNSUP: Final = RegError(420, "No support for found Path indicated")
R_OB_REQD: Final = RegError(420, "No support for Outbound on server")
R_INV_REGID: Final = RegError(400, "Invalid Reg-Id number")
R_LOW_EXP: Final = RegError(423, "Interval too brief")

#: reply.c's reason phrases by code
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    439: "First Hop Lacks Outbound Support",
    500: "Server Internal Error",
    503: "Service Unavailable",
}


class _Fail(Exception):  # noqa: N818 -- carries a rerrno, not an error of kcc
    """A registrar error: ``rerrno`` and whether the bindings go into the reply."""

    def __init__(self, error: RegError, contacts: Sequence[loc.Contact] | None = None) -> None:
        super().__init__(error.info)
        self.error = error
        self.contacts = contacts


# ---------------------------------------------------------------------------------
# parameters and the store
# ---------------------------------------------------------------------------------


def _param(ctx: Context, name: str, default: int) -> int:
    return ctx.proc.modparam_int("registrar", name, default)


def _str_param(ctx: Context, module: str, name: str) -> str | None:
    value = ctx.proc.modparams.get((module, name))
    return value if isinstance(value, str) else None


def _xavp_cfg_value(ctx: Context, name: str) -> object:
    """The first value of field ``name`` of ``$xavp(<xavp_cfg>)`` (Kamailio's
    ``xavp_get_child``), None when unset."""
    root_name = _str_param(ctx, "registrar", "xavp_cfg")
    if not root_name:
        return None
    roots = xavp_store(ctx).get(root_name)
    if not roots:
        return None
    return next((value for field, value in roots[0].fields if field == name), None)


def _xavp_cfg_int(ctx: Context, name: str) -> int | None:
    """``$xavp(<xavp_cfg>=>name)`` as an int (``xavp_get_child_with_ival``)."""
    value = _xavp_cfg_value(ctx, name)
    return value if isinstance(value, int) else None


def _xavp_cfg_str(ctx: Context, name: str) -> str | None:
    """``$xavp(<xavp_cfg>=>name)`` as a string (``xavp_get_child_with_sval``)."""
    value = _xavp_cfg_value(ctx, name)
    return value if isinstance(value, str) else None


def location_store(ctx: Context) -> loc.LocationStore:
    """The process's location store, opened on first use from usrloc's
    ``db_mode``, ``db_url`` and ``timer_interval``."""
    store = ctx.proc.location
    if store is None:
        store = loc.store_for(
            ctx.proc.modparam_int("usrloc", "db_mode", 0),
            _str_param(ctx, "usrloc", "db_url"),
            ctx.proc.modparam_int("usrloc", "timer_interval", 60),
        )
        ctx.proc.location = store
    return store


# ---------------------------------------------------------------------------------
# small parsers (Kamailio's str2q, q2str, parse_methods, extract_aor)
# ---------------------------------------------------------------------------------


def str2q(text: str) -> int | None:
    """Kamailio's ``str2q``: ``0``, ``0.x`` (up to 3 decimals), ``1``, ``1.000`` as
    0..1000; None when invalid (``q=2`` is refused: measured 400 ``Invalid q param``)."""
    m = _Q_RE.match(text)
    if m is None:
        return None
    text = text.strip()
    if text.startswith("1"):
        return 1000
    decimals = (m.group(1) or "").ljust(3, "0")
    return int(decimals)


def q2str(q: int) -> str:
    """Kamailio's ``q2str``: 1000 -> ``1``, 0 -> ``0``, 500 -> ``0.5`` (measured
    ``q=1.0`` is listed as ``q=1``)."""
    if q >= 1000:
        return "1"
    if q <= 0:
        return "0"
    return "0." + f"{q:03d}".rstrip("0")


def parse_methods(text: str) -> int | None:
    """Kamailio's ``parse_methods`` over a comma-separated list: the bit set;
    unknown names are ``METHOD_OTHER``; None for an empty item."""
    bits = 0
    for item in text.split(","):
        name = item.strip().upper()
        if not name:
            return None
        bits |= METHOD_BITS.get(name, METHOD_OTHER)
    return bits


def _method_bit(method: str) -> int:
    return METHOD_BITS.get(method.upper(), METHOD_OTHER)


@dataclass(frozen=True, slots=True)
class Aor:
    """An address of record as usrloc keys it: the ``username`` column, the
    ``domain`` column (None with ``use_domain`` 0) and the URI's host."""

    username: str
    domain: str | None
    host: str


def extract_aor(ctx: Context, uri: str) -> Aor | None:
    """Kamailio's ``extract_aor``: the user part (unescaped), ``@host`` too with
    usrloc's ``use_domain`` (``realm_prefix`` stripped from the host), lower-cased
    unless ``case_sensitive``; None (with an error log) for a URI that does not
    parse."""
    try:
        parsed = parse_uri(uri.strip().encode("utf-8", "surrogateescape"))
    except (SipParseError, ValueError):
        log.error("failed to parse Address of Record <%s>", uri)
        return None
    if isinstance(parsed, SipUri):
        user = parsed.user or ""
        host = parsed.host
    elif isinstance(parsed, TelUri):
        user = parsed.number
        host = ""
    else:
        log.error("unsupported URI scheme in Address of Record <%s>", uri)
        return None
    domain: str | None = None
    if ctx.proc.modparam_int("usrloc", "use_domain", 0):
        domain = host
        prefix = _str_param(ctx, "registrar", "realm_prefix")
        if prefix and domain.startswith(prefix) and len(domain) > len(prefix):
            domain = domain[len(prefix) :]
    if not _param(ctx, "case_sensitive", 0):
        user = user.lower()
        domain = None if domain is None else domain.lower()
    return Aor(user, domain, host)


def _to_uri(msg: Message) -> str | None:
    try:
        to = msg.to
    except SipParseError:
        return None
    return None if to is None else to.uri_raw.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------
# the reply (reply.c)
# ---------------------------------------------------------------------------------


def _contact_header(ctx: Context, contacts: Sequence[loc.Contact], now: int) -> str | None:
    """``build_contact``: one ``Contact`` header listing the valid bindings."""
    rcv_param = _str_param(ctx, "registrar", "received_param")
    if rcv_param is None:
        rcv_param = "received"
    items: list[str] = []
    for c in contacts:
        if not c.valid(now):
            continue
        item = f"<{c.contact}>"
        if 0 <= c.q <= 1000:
            item += ";q=" + q2str(c.q)
        item += f";expires={int(c.expires - now) if c.expires else 0}"
        if rcv_param and c.received:
            item += f';{rcv_param}="{c.received}"'
        if c.instance:
            item += f';+sip.instance="{c.instance}"'
        if c.reg_id > 0:
            item += f";reg-id={c.reg_id}"
        items.append(item)
    if not items:
        return None
    return "Contact: " + ", ".join(items) + "\r\n"


def _option_tags(msg: Message, name: str) -> set[str]:
    tags: set[str] = set()
    for value in msg.header_values(name):
        tags.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tags


def _reply(
    ctx: Context,
    error: RegError | None,
    contact_hdr: str | None,
    path: str | None,
    *,
    send: bool,
) -> int:
    """``reg_reply_helper``: add the reply lumps (``Contact``, then ``Path`` /
    ``Unsupported`` for a 200, ``P-Registrar-Error`` and ``Retry-After`` for an
    error) and, when ``send``, reply (statefully when a transaction exists, as sl's
    ``freply``). 0, or -1 when sending failed."""
    lumps = ctx.reply_lumps
    if contact_hdr:
        lumps.append(contact_hdr)
    msg = ctx.msg
    if error is None:
        path_mode = _param(ctx, "path_mode", 2)
        if path and _param(ctx, "use_path", 0) and path_mode != 0:
            if "path" in _option_tags(msg, "supported"):
                lumps.append(f"Path: {path}\r\n")
            elif path_mode == 2:
                error = R_PATH_UNSUP
                lumps.append("Unsupported: path\r\n")
                lumps.append(f"Path: {path}\r\n")
    elif error is R_OB_REQD:
        lumps.append("Unsupported: outbound\r\n")
    elif error is R_LOW_EXP:
        lumps.append(f"Min-Expires: {_param(ctx, 'min_expires', 60)}\r\n")
    code = 200 if error is None else error.code
    if error is not None:
        lumps.append(f"P-Registrar-Error: {error.info}\r\n")
        retry_after = _param(ctx, "retry_after", 0)
        if 500 <= code < 600 and retry_after:
            lumps.append(f"Retry-After: {retry_after}\r\n")
    if not send:
        return 0
    if send_reply(ctx, code, _REASONS[code]) < 0:
        log.error("failed to send %d %s", code, _REASONS[code])
        return -1
    return 0


# ---------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------


def _expires_header(msg: Message) -> int | None:
    """The ``Expires`` header's value; None when absent or not a number (Kamailio's
    ``parse_expires`` marks it invalid and the registrar ignores it: measured)."""
    raw = msg.header("expires")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= 0xFFFFFFFF else None


def _randomize(expires: int, spread: int) -> int:
    """Kamailio's ``randomize_expires``: a value in [expires - spread%, expires]."""
    if spread == 0:
        return expires
    low = int(expires - spread / 100 * expires)
    return int(low + random.randrange(100) / 100 * (expires - low))


def _contact_expires(ctx: Context, c: NameAddr, header: int | None, novariation: bool) -> int:
    """``calc_contact_expires`` (relative seconds; 0 removes). Raises ``_Fail``
    with ``R_LOW_EXP`` under ``min_expires_mode`` 1."""
    xavp = _xavp_cfg_int(ctx, "expires")
    spread = 0
    if xavp is not None and xavp >= 0:
        expires = xavp
    else:
        value = c.param("expires")
        if value:
            number = value.strip()
            if number.isdigit() and int(number) <= 0xFFFFFFFF:
                expires = int(number)
                spread = _param(ctx, "expires_range", 0)
            else:
                expires = _param(ctx, "default_expires", 3600)
                spread = _param(ctx, "default_expires_range", 0)
        elif header is not None:
            expires = header
            spread = _param(ctx, "expires_range", 0)
        else:
            expires = _param(ctx, "default_expires", 3600)
            spread = _param(ctx, "default_expires_range", 0)
    if expires != 0:
        min_expires = _param(ctx, "min_expires", 60)
        if expires < min_expires:
            if _param(ctx, "min_expires_mode", 0):
                raise _Fail(R_LOW_EXP)
            expires = min_expires
        if not novariation:
            expires = max(_randomize(expires, spread), min_expires)
        max_expires = _param(ctx, "max_expires", 0)
        if max_expires and expires > max_expires:
            expires = max_expires
    return expires


@dataclass(slots=True)
class _Common:
    """``pack_ci``'s part common to every contact of the REGISTER."""

    callid: str
    cseq: int
    user_agent: str
    socket: str
    path: str | None
    received: str | None
    path_received: str | None
    cflags: int
    flags: int
    allowed: int
    now: int


_ruid_counter: Final = itertools.count(1)


def _ruid(now: int) -> str:
    """A unique record id in Kamailio's ``sruid`` shape: ``uloc-<time>-<pid>-<n>``."""
    return f"uloc-{now:x}-{os.getpid():x}-{next(_ruid_counter)}"


def _socket_text(ctx: Context) -> str:
    r = ctx.received
    host = f"[{r.dst_ip}]" if ":" in r.dst_ip else r.dst_ip
    return f"{r.proto}:{host}:{r.dst_port}"


def _path_vector(ctx: Context, msg: Message) -> tuple[str | None, str | None]:
    """``build_path_vector``: every Path header value joined with ``,``, and the
    ``received`` parameter of the first Path URI when ``path_use_received``."""
    values = msg.header_values("path")
    if not values:
        return None, None
    text = ",".join(v.strip() for v in values)
    try:
        hops = parse_name_addr_list(text.encode("utf-8", "surrogateescape"), 0, len(text), "Path")
        first = hops[0].uri
    except (SipParseError, IndexError):
        raise _Fail(R_PARSE_PATH) from None
    received = None
    if _param(ctx, "path_use_received", 0) and isinstance(first, SipUri):
        received = first.param("received") or None
    return text, received


def _common(ctx: Context, msg: Message, flags: int, now: int) -> _Common:
    callid = (msg.call_id or "").rstrip()
    if len(callid) > CALLID_MAX_SIZE:
        raise _Fail(R_CALLID_LEN)
    cseq = msg.cseq
    assert cseq is not None  # checked by _check_message
    ua = msg.header("user-agent")
    user_agent = ua if ua and len(ua) < MAX_UA_SIZE else "n/a"
    path: str | None = None
    path_received: str | None = None
    if _param(ctx, "use_path", 0):
        path, path_received = _path_vector(ctx, msg)
    cflags = ctx.bflags
    if path_received:
        nat = ctx.proc.modparam_int("usrloc", "nat_bflag", -1)
        if 0 <= nat < 32:
            cflags |= 1 << nat
    allow = msg.header_values("allow")
    allowed = loc.ALL_METHODS
    if allow:
        allowed = 0
        for value in allow:
            bits = parse_methods(value) if value.strip() else 0
            allowed |= bits or 0
    received: str | None = None
    avp = _str_param(ctx, "registrar", "received_avp")
    if avp:
        values = ctx.avps.get(_avp_key(avp))
        if values and isinstance(values[0], str) and values[0]:
            if len(values[0]) > RECEIVED_MAX_SIZE:
                raise _Fail(R_CONTACT_LEN)
            received = values[0]
    return _Common(
        callid=callid,
        cseq=cseq.number,
        user_agent=user_agent,
        socket=_socket_text(ctx),
        path=path,
        received=received,
        path_received=path_received,
        cflags=cflags,
        flags=FL_MEM if flags & SAVE_MEM else 0,
        allowed=allowed,
        now=now,
    )


def _avp_key(spec: str) -> str | int:
    """The ``ctx.avps`` key of a ``received_avp`` parameter (``$avp(RECEIVED)``,
    ``$avp(s:rcv)``, ``$avp(i:42)``)."""
    inner = spec.strip()
    if inner.startswith("$avp(") and inner.endswith(")"):
        inner = inner[5:-1]
    if inner.startswith("i:") and inner[2:].isdigit():
        return int(inner[2:])
    if inner.startswith("s:"):
        return inner[2:]
    return inner


def _contact_info(
    ctx: Context, aor: Aor, c: NameAddr, expires: int, *, common: _Common, use_regid: bool
) -> loc.Contact:
    """``pack_ci`` for one contact: q, methods, received, instance, reg-id."""
    uri = c.uri_raw.decode("utf-8", "surrogateescape")
    q_xavp = _xavp_cfg_int(ctx, "q")
    if q_xavp is not None:
        if not 0 <= q_xavp <= 1000:
            raise _Fail(R_INV_Q)
        q = q_xavp
    else:
        q_text = c.param("q")
        if q_text:
            parsed = str2q(q_text)
            if parsed is None:
                log.error("invalid q parameter")
                raise _Fail(R_INV_Q)
            q = parsed
        else:
            q = _param(ctx, "default_q", -1)
    methods_text = c.param("methods")
    if methods_text is not None:
        methods = parse_methods(methods_text)
        if methods is None:
            log.error("failed to parse contact methods")
            raise _Fail(R_PARSE)
    else:
        methods = common.allowed
    received = common.path_received or c.param("received") or common.received
    instance = c.param("+sip.instance") or None
    reg_id = 0
    reg_text = c.param("reg-id")
    if use_regid and instance and reg_text:
        if not reg_text.isdigit() or int(reg_text) == 0 or int(reg_text) > 0xFFFFFFFF:
            log.error("invalid reg-id value")
            raise _Fail(R_INV_REGID)
        reg_id = int(reg_text)
    return loc.Contact(
        ruid=_ruid(common.now),
        username=aor.username,
        domain=aor.domain,
        contact=uri,
        expires=common.now + expires if expires else 0,
        q=q,
        callid=common.callid,
        cseq=common.cseq,
        last_modified=common.now,
        received=received,
        path=common.path,
        flags=common.flags,
        cflags=common.cflags,
        user_agent=common.user_agent,
        socket=common.socket,
        methods=methods,
        instance=instance,
        reg_id=reg_id,
        connection_id=-1 if ctx.received.proto == "udp" else 0,
    )


def _find(
    ctx: Context, contacts: Sequence[loc.Contact], ci: loc.Contact
) -> tuple[int, loc.Contact | None]:
    """usrloc's ``get_ucontact_by_instance``: (0, contact) found, (1, None) not
    found, (-1, c) CSeq too old for the same Call-ID (or equal, after
    ``cseq_delay``), (-2, c) the same CSeq within ``cseq_delay`` (a retransmission).
    A contact with ``+sip.instance`` matches on instance and reg-id, else on the
    contact URI (``matching_mode`` 0, byte-exact; 1: URI and Call-ID)."""
    if ci.instance:
        for c in contacts:
            if c.instance == ci.instance and c.reg_id == ci.reg_id:
                return 0, c
        return 1, None
    by_callid = ctx.proc.modparam_int("usrloc", "matching_mode", 0) == 1
    for c in contacts:
        if c.contact != ci.contact or (by_callid and c.callid != ci.callid):
            continue
        if c.callid == ci.callid:
            if ci.cseq < c.cseq:
                return -1, c
            if ci.cseq == c.cseq:
                delay = ctx.proc.modparam_int("usrloc", "cseq_delay", 20)
                return (-2 if c.last_modified + delay > ci.last_modified else -1), c
        return 0, c
    return 1, None


def _max_contacts(ctx: Context) -> int:
    value = _xavp_cfg_int(ctx, "max_contacts")
    return value if value is not None else _param(ctx, "max_contacts", 0)


def _check_message(msg: Message) -> tuple[bool, list[NameAddr]]:
    """``parse_message`` + ``check_contacts``: (star, contacts) or ``_Fail``."""
    try:
        if msg.to is None:
            raise _Fail(R_TO_MISS)
        if msg.call_id is None:
            raise _Fail(R_CID_MISS)
        if msg.cseq is None:
            raise _Fail(R_CS_MISS)
    except SipParseError:
        raise _Fail(R_PARSE) from None
    try:
        star = msg.contact_star
        contacts = msg.contacts
    except SipParseError:
        log.error("failed to parse Contact body")
        raise _Fail(R_PARSE_CONT) from None
    lines = msg.header_values("contact")
    if star:
        if _expires_header(msg) != 0:
            log.warning("expires must be 0 for star contact")
            raise _Fail(R_STAR_EXP)
        if len(lines) > 1:
            log.warning("star contact cannot be mixed with other contacts")
            raise _Fail(R_STAR_CONT)
        return True, []
    if any(line.strip() == "*" for line in lines):
        log.warning("star contact cannot be mixed with other contacts")
        raise _Fail(R_STAR_CONT)
    return False, contacts


def _check_sizes(ctx: Context, contacts: Sequence[NameAddr]) -> None:
    limit = _param(ctx, "contact_max_size", 512)
    for c in contacts:
        if len(c.uri_raw) > limit:
            log.warning("contact uri is too long: [%s]", c.uri_raw.decode("utf-8", "replace"))
            raise _Fail(R_CONTACT_LEN)
        received = c.param("received")
        if received is not None and len(received) > RECEIVED_MAX_SIZE:
            raise _Fail(R_CONTACT_LEN)


def _update_contacts(
    ctx: Context,
    *,
    store: loc.LocationStore,
    table: str,
    aor: Aor,
    msg: Message,
    contacts: Sequence[NameAddr],
    existing: list[loc.Contact],
    flags: int,
    common: _Common,
    use_regid: bool,
) -> int:
    """``update_contacts`` (the AoR has a record): insert, refresh or remove each
    contact; the code of the last operation (1 insert, 2 update, 3 delete, 0 none)."""
    one = bool(flags & SAVE_ONE_CONTACT)
    novariation = bool(flags & SAVE_NOVARIATION)
    header = _expires_header(msg)
    if not one:
        maxc = _max_contacts(ctx)
        if maxc > 0:
            num = sum(1 for c in existing if c.valid(common.now))
            for c in contacts:
                expires = _contact_expires(ctx, c, header, False)
                ci = _contact_info(ctx, aor, c, expires, common=common, use_regid=use_regid)
                ret, _ = _find(ctx, existing, ci)
                if ret == -1:
                    log.error("invalid cseq for aor <%s>", aor.username)
                    raise _Fail(R_INV_CSEQ)
                if ret == 1 and expires != 0:
                    num += 1
                elif ret == 0 and expires == 0:
                    num -= 1
            if num > maxc:
                log.info("too many contacts for AOR <%s> (n:%d max:%d)", aor.username, num, maxc)
                raise _Fail(R_TOO_MANY)
    rc = 0
    for c in contacts:
        expires = _contact_expires(ctx, c, header, novariation)
        ci = _contact_info(ctx, aor, c, expires, common=common, use_regid=use_regid)
        ret, found = _find(ctx, existing, ci)
        if ret == -1:
            log.error("invalid cseq for aor <%s>", aor.username)
            raise _Fail(R_INV_CSEQ)
        if ret == -2:
            if expires != 0 and one:
                break
            continue
        updated = False
        if found is None:
            if expires == 0:
                continue
            new = store.insert(table, ci)
            existing.append(new)
            rc = 1
            if one:
                for other in [o for o in existing if o is not new]:
                    store.delete(table, other)
                    existing.remove(other)
                updated = True
        elif expires == 0:
            store.delete(table, found)
            existing.remove(found)
            rc = 3
        else:
            if one:
                for other in [o for o in existing if o is not found]:
                    store.delete(table, other)
                    existing.remove(other)
                updated = True
            if ci.instance and ci.callid != found.callid:
                for other in [o for o in existing if o is not found]:
                    if other.instance == found.instance:
                        store.delete(table, other)
                        existing.remove(other)
                updated = True
            new = store.update(table, found, replace(ci, ruid=found.ruid))
            existing[existing.index(found)] = new
            rc = 2
        if updated:
            break
    return rc


def _insert_contacts(
    ctx: Context,
    *,
    store: loc.LocationStore,
    table: str,
    aor: Aor,
    msg: Message,
    contacts: Sequence[NameAddr],
    flags: int,
    common: _Common,
    use_regid: bool,
) -> list[loc.Contact]:
    """``insert_contacts`` (no record yet): every contact with expires > 0; on an
    error the record is removed again (Kamailio's ``delete_urecord``)."""
    header = _expires_header(msg)
    novariation = bool(flags & SAVE_NOVARIATION)
    maxc = _max_contacts(ctx)
    saved: list[loc.Contact] = []
    try:
        for c in contacts:
            expires = _contact_expires(ctx, c, header, novariation)
            if expires == 0:
                continue
            if maxc > 0 and len(saved) >= maxc:
                log.info(
                    "too many contacts (n:%d max:%d) for AOR <%s>", len(saved), maxc, aor.username
                )
                raise _Fail(R_TOO_MANY)
            ci = _contact_info(ctx, aor, c, expires, common=common, use_regid=use_regid)
            # a contact given twice in one REGISTER updates the first (Kamailio's
            # CSeq+1 trick)
            ret, found = _find(ctx, saved, replace(ci, cseq=ci.cseq + 1))
            if saved and ret == 0 and found is not None:
                saved[saved.index(found)] = store.update(table, found, replace(ci, ruid=found.ruid))
            else:
                saved.append(store.insert(table, ci))
    except _Fail:
        for done in saved:
            store.delete(table, done)
        raise
    return saved


def _sorted(contacts: list[loc.Contact]) -> list[loc.Contact]:
    return sorted(contacts, key=lambda c: (-c.q, c.id))


def _save_locked(
    ctx: Context,
    *,
    store: loc.LocationStore,
    table: str,
    aor: Aor,
    msg: Message,
    star: bool,
    contacts: Sequence[NameAddr],
    flags: int,
    now: int,
) -> tuple[int, str | None, str | None]:
    """The part of ``save`` that holds the AoR's lock: (code, Contact header of the
    reply, Path of the REGISTER)."""
    if star:
        store.delete_aor(table, aor.username, aor.domain)
        return 3, None, None
    if not contacts:
        current = store.contacts(table, aor.username, aor.domain)
        return 4, _contact_header(ctx, current, now), None
    common = _common(ctx, msg, flags, now)
    every = store.contacts(table, aor.username, aor.domain, valid_only=False)
    existing: list[loc.Contact] = []
    for c in every:
        if c.valid(now):
            existing.append(c)
        else:  # expired: usrloc's timer would have removed it
            store.delete(table, c)
    if not existing:
        saved = _insert_contacts(
            ctx,
            store=store,
            table=table,
            aor=aor,
            msg=msg,
            contacts=contacts,
            flags=flags,
            common=common,
            use_regid=True,
        )
        return 1, _contact_header(ctx, _sorted(saved), now), common.path
    try:
        rc = _update_contacts(
            ctx,
            store=store,
            table=table,
            aor=aor,
            msg=msg,
            contacts=contacts,
            existing=existing,
            flags=flags,
            common=common,
            use_regid=True,
        )
    except _Fail as fail:
        fail.contacts = _sorted(existing)
        raise
    return rc or 1, _contact_header(ctx, _sorted(existing), now), common.path


def save(ctx: Context, domain: str, flags: int = 0, uri: str = "") -> int:
    """``save(domain[, flags[, uri]])``: process a REGISTER (see the module
    docstring for the replies and codes)."""
    msg = ctx.msg
    aor_uri = uri if uri else _to_uri(msg)
    aor = None if aor_uri is None else extract_aor(ctx, aor_uri)
    if aor is None:
        log.error("failed to extract Address Of Record")
        return -1
    reply_allowed = not flags & SAVE_NOREPLY
    try:
        store = location_store(ctx)
        now = int(store.now())
        table = store.table(domain)
    except (ValueError, OSError, sqlite3.Error) as exc:
        log.error("usrloc: %s", exc)
        return -1
    try:
        star, contacts = _check_message(msg)
        _check_sizes(ctx, contacts)
        if "outbound" in _option_tags(msg, "require") and _param(ctx, "outbound_mode", 0) == 0:
            log.warning("Outbound required by UAC and not supported by server")
            raise _Fail(R_OB_REQD)
        failure: _Fail | None = None
        result: tuple[int, str | None, str | None] = (1, None, None)
        with store.transaction():
            store.maybe_purge()
            try:
                result = _save_locked(
                    ctx,
                    store=store,
                    table=table,
                    aor=aor,
                    msg=msg,
                    star=star,
                    contacts=contacts,
                    flags=flags,
                    now=now,
                )
            except _Fail as fail:
                # committed all the same: Kamailio keeps what it did before the error
                failure = fail
        if failure is not None:
            raise failure
    except _Fail as fail:
        hdr = None if fail.contacts is None else _contact_header(ctx, fail.contacts, now)
        if ctx.kind == Route.REQUEST and reply_allowed:
            _reply(ctx, fail.error, hdr, None, send=True)
        return -2 if fail.error is R_TOO_MANY else -1
    except (OSError, sqlite3.Error) as exc:
        log.error("usrloc: %s", exc)
        if ctx.kind == Route.REQUEST and reply_allowed:
            _reply(ctx, R_UL_GET_R, None, None, send=True)
        return -1
    rc, contact_hdr, path = result
    if reply_allowed:
        sent = ctx.kind in (Route.REQUEST, Route.FAILURE) and isinstance(msg, Request)
        if sent and _reply(ctx, None, contact_hdr, path, send=True) < 0:
            return -1
    elif flags & SAVE_PREPARE_REPLY:
        _reply(ctx, None, contact_hdr, path, send=False)
    return rc


# ---------------------------------------------------------------------------------
# lookup, registered, unregister
# ---------------------------------------------------------------------------------


def _allowed(ctx: Context, c: loc.Contact) -> bool:
    """lookup.c's ``allowed_method``: with ``method_filtering``, the request's
    method must be in the contact's ``methods``."""
    if not _param(ctx, "method_filtering", 0):
        return True
    msg = ctx.msg
    if not isinstance(msg, Request):
        return True
    methods = loc.ALL_METHODS if c.methods is None else c.methods
    return bool(methods & _method_bit(msg.method))


def _path_dst(ctx: Context, path: str) -> str | None:
    """``get_path_dst_uri``: the first Path URI (its ``received`` parameter with
    ``path_use_received``)."""
    try:
        hops = parse_name_addr_list(path.encode("utf-8", "surrogateescape"), 0, len(path), "Path")
    except SipParseError:
        return None
    if not hops:
        return None
    first = hops[0]
    if _param(ctx, "path_use_received", 0):
        try:
            uri = first.uri
        except SipParseError:
            uri = None
        if isinstance(uri, SipUri):
            received = uri.param("received")
            if received:
                return received
    return first.uri_raw.decode("utf-8", "surrogateescape")


def _found(ctx: Context, domain: str, uri: str | None) -> tuple[int, list[loc.Contact]]:
    """The valid contacts of the AoR of ``uri`` (default the R-URI) that allow the
    request's method: (1, contacts), (-1, []) none, (-2, []) none for the method,
    (-3, []) error."""
    text = uri if uri else current_ruri(ctx)
    aor = None if text is None else extract_aor(ctx, text)
    if aor is None:
        log.error("failed to extract address of record")
        return -3, []
    try:
        store = location_store(ctx)
        contacts = store.contacts(domain, aor.username, aor.domain)
    except (ValueError, OSError, sqlite3.Error) as exc:
        log.error("usrloc: %s", exc)
        return -3, []
    if not contacts:
        return -1, []
    allowed = [c for c in contacts if _allowed(ctx, c)]
    return (1, allowed) if allowed else (-2, [])


def _append(ctx: Context, c: loc.Contact) -> bool:
    """``append_branch`` of a contact: its received address as ``$du``, its Path,
    q and flags; False past ``max_branches``."""
    if len(ctx.branches) + 1 >= ctx.proc.settings.max_branches:
        log.error("max. number of branches (%d) reached", ctx.proc.settings.max_branches)
        return False
    dst = _path_dst(ctx, c.path) if c.path and _param(ctx, "path_use_received", 0) else None
    ctx.branches.append(
        Branch(uri=c.contact, dst_uri=dst or c.received, q=c.q, bflags=c.cflags, path=c.path)
    )
    return True


def lookup(ctx: Context, domain: str, uri: str | None = None) -> int:
    """``lookup(domain[, uri])``: R-URI from the first contact (see the module
    docstring); 1, -1, -2, -3."""
    rc, contacts = _found(ctx, domain, uri)
    if rc < 0:
        return rc
    first, rest = contacts[0], contacts[1:]
    if not set_ruri(ctx, first.contact):
        return -3
    if first.path:
        ctx.path_vec = first.path
        dst = _path_dst(ctx, first.path)
        if dst is None:
            log.error("failed to get dst_uri for Path")
            return -3
        ctx.dst_uri = dst
    elif first.received:
        ctx.dst_uri = first.received
    ctx.bflags = first.cflags
    if _param(ctx, "append_branches", 1):
        for c in rest:
            if not _append(ctx, c):
                break
    return 1


def lookup_to_dset(ctx: Context, domain: str, uri: str | None = None) -> int:
    """``lookup_to_dset(domain[, uri])``: every contact appended as a branch, the
    R-URI unchanged; codes as :func:`lookup`."""
    rc, contacts = _found(ctx, domain, uri)
    if rc < 0:
        return rc
    for c in contacts:
        if not _append(ctx, c):
            break
    return 1


def lookup_branches(ctx: Context, domain: str) -> int:
    """``lookup_branches(domain)``: :func:`lookup` on the R-URI, then on each branch
    that has nothing but a URI (no ``$du``, Path or flags), which is replaced by the
    contacts found. The code: 1 when any lookup found contacts, else the R-URI's."""
    plain = [b for b in ctx.branches if b.dst_uri is None and b.path is None and not b.bflags]
    rc = lookup(ctx, domain)
    found = rc > 0
    for branch in plain:
        rc_b, contacts = _found(ctx, domain, branch.uri)
        if rc_b < 0:
            continue
        ctx.branches.remove(branch)
        for c in contacts:
            if not _append(ctx, c):
                break
        found = True
    return 1 if found else rc


def registered(
    ctx: Context, domain: str, uri: str | None = None, match_option: int = 0, match_action: int = 0
) -> int:
    """``registered(domain[, uri[, match_option[, match_action]]])``: 1 when the AoR
    (of ``uri``, else the R-URI of a request or the To URI of a reply) has a valid
    contact matching the options (1: ``$xavp(<xavp_cfg>=>match_callid)``, 2:
    ``match_received``, 4: ``match_contact``), else -1 (measured). ``match_action``
    concerns xavps kcc does not keep per contact and is accepted as given."""
    text = uri if uri else (current_ruri(ctx) if isinstance(ctx.msg, Request) else _to_uri(ctx.msg))
    aor = None if text is None else extract_aor(ctx, text)
    if aor is None:
        return -1
    try:
        contacts = location_store(ctx).contacts(domain, aor.username, aor.domain)
    except (ValueError, OSError, sqlite3.Error) as exc:
        log.error("usrloc: %s", exc)
        return -1
    want_callid = _xavp_cfg_str(ctx, "match_callid") if match_option & 1 else None
    want_received = _xavp_cfg_str(ctx, "match_received") if match_option & 2 else None
    want_contact = _xavp_cfg_str(ctx, "match_contact") if match_option & 4 else None
    for c in contacts:
        if want_callid is not None and c.callid != want_callid:
            continue
        if want_received is not None and c.received != want_received:
            continue
        if want_contact is not None and c.contact != want_contact:
            continue
        return 1
    return -1


def unregister(ctx: Context, domain: str, uri: str, ruid: str = "") -> int:
    """``unregister(domain, uri[, ruid])``: remove every contact of the AoR (1, also
    when there was none: measured), or the one with ``ruid`` (1; -3 not found); -1
    when the AoR cannot be read, -2 when usrloc fails."""
    text = uri if uri else _to_uri(ctx.msg)
    try:
        store = location_store(ctx)
        table = store.table(domain)
        if not ruid:
            aor = None if text is None else extract_aor(ctx, text)
            if aor is None:
                log.error("failed to extract Address Of Record")
                return -1
            with store.transaction():
                store.delete_aor(table, aor.username, aor.domain)
            return 1
        if text:
            aor = extract_aor(ctx, text)
            if aor is None:
                log.error("failed to extract Address Of Record")
                return -1
            c = store.by_ruid(table, ruid)
            if (
                c is None
                or c.username != aor.username
                or (aor.domain is not None and c.domain != aor.domain)
            ):
                log.warning("AOR/Contact not found")
                return -3
        with store.transaction():
            if store.delete_ruid(table, ruid) == 0:
                log.warning("contact not found")
                return -3
        return 1
    except (ValueError, OSError, sqlite3.Error) as exc:
        log.error("usrloc: %s", exc)
        return -2


# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="registrar",
    cmds=(
        # storing contacts
        Cmd("save", (STR_CONST,), REQ_FAIL_REPLY, save, const_args=True, fixup="save_fixup"),
        Cmd("save", (STR_CONST, INT), REQ_FAIL_REPLY, save, const_args=True, fixup="save_fixup"),
        Cmd(
            "save", (STR_CONST, INT, STR), REQ_FAIL_REPLY, save, const_args=True, fixup="save_fixup"
        ),
        Cmd(
            "unregister",
            (STR_CONST, STR),
            Route.ANY,
            unregister,
            const_args=True,
            fixup="unreg_fixup",
        ),
        Cmd(
            "unregister",
            (STR_CONST, STR, STR),
            Route.ANY,
            unregister,
            const_args=True,
            fixup="unreg_fixup",
        ),
        # lookups
        Cmd("lookup", (STR_CONST,), REQ_FAIL, lookup, const_args=True, fixup="domain_uri_fixup"),
        Cmd(
            "lookup", (STR_CONST, STR), REQ_FAIL, lookup, const_args=True, fixup="domain_uri_fixup"
        ),
        Cmd(
            "lookup_to_dset",
            (STR_CONST,),
            REQ_FAIL,
            lookup_to_dset,
            const_args=True,
            fixup="domain_uri_fixup",
        ),
        Cmd(
            "lookup_to_dset",
            (STR_CONST, STR),
            REQ_FAIL,
            lookup_to_dset,
            const_args=True,
            fixup="domain_uri_fixup",
        ),
        Cmd(
            "registered",
            (STR_CONST,),
            Route.ANY,
            registered,
            const_args=True,
            fixup="domain_uri_fixup",
        ),
        Cmd(
            "registered",
            (STR_CONST, STR),
            Route.ANY,
            registered,
            const_args=True,
            fixup="domain_uri_fixup",
        ),
        Cmd(
            "registered",
            (STR_CONST, STR, INT),
            Route.ANY,
            registered,
            const_args=True,
            fixup="registered_fixup",
        ),
        Cmd(
            "registered",
            (STR_CONST, STR, INT, INT),
            Route.ANY,
            registered,
            const_args=True,
            fixup="registered_fixup",
        ),
        Cmd(
            "lookup_branches",
            (STR_CONST,),
            REQ_FAIL,
            lookup_branches,
            const_args=True,
            fixup="domain_uri_fixup",
        ),
        # contact fetching
        Cmd(
            "reg_fetch_contacts",
            (STR_CONST, STR, STR_CONST),
            REQ_FAIL,
            const_args=True,
            fixup="fetchc_fixup",
        ),
        Cmd("reg_free_contacts", (STR_CONST,), REQ_FAIL, fixup="fixup_str_null"),
        Cmd("reg_send_reply", (), REQ_FAIL),
        # miscellaneous
        Cmd("add_sock_hdr", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
    ),
    params=(
        ModParam("default_expires", int, 3600),
        ModParam("default_expires_range", int, 0),
        ModParam("expires_range", int, 0),
        ModParam("default_q", int, 0),
        ModParam("append_branches", int, 1),
        ModParam("case_sensitive", int, 0),
        ModParam("realm_prefix", str, None),
        ModParam("min_expires", int, 60),
        ModParam("max_expires", int, 0),
        ModParam("received_param", str, "received"),
        ModParam("received_avp", str, None),
        ModParam("max_contacts", int, 0),
        ModParam("retry_after", int, 0),
        ModParam("sock_mode", int, 0),
        ModParam("sock_flag", int, -1, flag=FlagKind.MESSAGE),
        ModParam("sock_hdr_name", str, None),
        ModParam("method_filtering", int, 0),
        ModParam("use_path", int, 0),
        ModParam("path_mode", int, 2),
        ModParam("path_use_received", int, 0),
        ModParam("path_check_local", int, 0),
        ModParam("xavp_cfg", str, None),
        ModParam("xavp_rcd", str, None),
        ModParam("xavp_rcd_mask", int, 0),
        ModParam("gruu_enabled", int, 1),
        ModParam("outbound_mode", int, 0),
        ModParam("regid_mode", int, 0),
        ModParam("flow_timer", int, 0),
        ModParam("contact_max_size", int, 512),
        ModParam("event_callback", str, None),
        ModParam("lookup_filter_mode", int, None),
        ModParam("min_expires_mode", int, 0),
        ModParam("use_expired_contacts", int, 0),
    ),
    pvs=(PvExport("ulc", inner=True, writable=True, index=True),),
    depends=("usrloc", "sl"),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``lookup_xavp/4``, ``reg_from_user/3``
