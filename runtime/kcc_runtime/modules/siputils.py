"""SIP utilities: user/URI tests, OPTIONS replies, E.164 and tel: URIs,
Remote-Party-ID and Contact alias encoding.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Final

from kcc_runtime import pv
from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    PV,
    PV_WRITE,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.modules.core import UriParts, split_uri
from kcc_runtime.pv import current_ruri, set_ruri
from kcc_runtime.sip import Request, SipParseError

__all__ = [
    "EXPORTS",
    "add_uri_param",
    "cmp_aor",
    "cmp_uri",
    "has_totag",
    "is_e164",
    "is_first_hop",
    "is_reply",
    "is_request",
    "is_uri_user_e164",
    "tel2sip",
    "uri_param",
]

log = logging.getLogger("kcc_runtime.siputils")

#: Kamailio's ``SIP_PORT``: the port of a URI written without one (``cmp_aor``,
#: ``is_first_hop``), whatever the scheme (``cmp_aor("sips:a@h", "sips:a@h:5060")`` is 1)
SIP_PORT: Final = 5060
#: URI parameters that must match when only one side has parameters (``cmp_uri``)
_MUST_MATCH: Final = frozenset({"user", "ttl", "method", "maddr"})
#: visual separators ``tel2sip`` drops from the number (RFC 3966 ``visual-separator``)
_VISUAL: Final = frozenset("-.()")


def has_totag(ctx: Context) -> int:
    """``has_totag()``: 1 when the To header has a ``tag`` parameter, else -1
    (also when To is missing or does not parse)."""
    try:
        to = ctx.msg.to
    except SipParseError:
        return -1
    return 1 if to is not None and to.tag is not None else -1


def is_request(ctx: Context) -> int:
    """``is_request()``: 1 for a request, -1 for a reply."""
    return 1 if isinstance(ctx.msg, Request) else -1


def is_reply(ctx: Context) -> int:
    """``is_reply()``: 1 for a reply, -1 for a request."""
    return -1 if isinstance(ctx.msg, Request) else 1


def _params(text: str | None) -> list[tuple[str, str]]:
    """Kamailio's ``parse_params`` over a ``;``-list: ``(name, value)`` pairs with
    blanks trimmed, ``""`` for a parameter without ``=``; empty items skipped."""
    out: list[tuple[str, str]] = []
    for item in (text or "").split(";"):
        name, _, value = item.partition("=")
        name = name.strip(" \t")
        if name:
            out.append((name, value.strip(" \t")))
    return out


def _ruri_parts(ctx: Context) -> UriParts | None:
    text = current_ruri(ctx)
    return None if text is None else split_uri(text)


def uri_param(ctx: Context, name: str, value: str | None = None) -> int:
    """``uri_param(name[, value])``: 1 when the current R-URI (``$ru``) has parameter
    ``name``, else -1. Kamailio's ``ki_uri_param_value`` looks at the *first*
    parameter of that name, compared case-sensitively (``uri_param("X")`` on
    ``;x=1`` is -1). Without ``value`` it matches only a parameter that has no
    value (``uri_param("x")`` on ``;x=1`` is -1, ``uri_param("lr")`` on ``;lr`` 1);
    with one, the values must be equal byte for byte (``uri_param("x", "A")`` on
    ``;x=a`` is -1, ``uri_param("lr", "")`` on ``;lr`` is 1). -1 for a reply or an
    R-URI that does not parse. Measured on Kamailio 5.6.3."""
    parts = _ruri_parts(ctx)
    if parts is None or parts.is_tel:
        return -1
    for pname, pvalue in _params(parts.params):
        if pname == name:
            if value is None:
                return 1 if pvalue == "" else -1
            return 1 if pvalue == value else -1
    return -1


def add_uri_param(ctx: Context, param: str) -> int:
    """``add_uri_param("name=value")``: append ``;param`` to the R-URI's parameters.
    An empty argument is a no-op returning 1; an R-URI that does not parse (or a
    reply) is -1. Without URI headers Kamailio appends to the text as is
    (``sip:u@h;x=1`` -> ``sip:u@h;x=1;nat=yes``, measured).

    Deviation: when the R-URI has headers (``?h=v``) Kamailio 5.6.3 rebuilds it with
    a bug that drops the user and the ``;`` before the old parameters and leaves a
    stray byte (measured: ``sip:u@h.example;x=1?h=v`` became
    ``sip:@h.examplex=1;nat=yes?h=v `` and ``$ru`` then failed to parse). kcc does
    what the function means: the parameter goes before the headers
    (``sip:u@h.example;x=1;nat=yes?h=v``)."""
    if not param:
        return 1
    text = current_ruri(ctx)
    parts = None if text is None else split_uri(text)
    if text is None or parts is None:
        log.error("ruri parsing failed")
        return -1
    if parts.headers is None:
        new = f"{text};{param}"
    else:
        head = text[: len(text) - len(parts.headers) - 1]
        new = f"{head};{param}?{parts.headers}"
    return 1 if set_ruri(ctx, new) else -1


def tel2sip(ctx: Context, uri: str, hostpart: str, result: pv.Accessor) -> int:
    """``tel2sip(uri, hostpart, $result)``: turn a ``tel:`` URI into
    ``sip:NUMBER;PARAMS@HOSTPART;user=phone`` (RFC 3261 §19.1.6) in ``$result``.

    As Kamailio 5.6: the scheme is matched case-insensitively; visual separators
    ``- . ( )`` are removed from the number up to the first ``;`` and the tel
    parameters stay in the user part (``tel:+1-2;a=b;c`` with ``h.example:5070`` ->
    ``sip:+12;a=b;c@h.example:5070;user=phone``). A URI that is not ``tel:``
    returns 2 and leaves ``$result`` untouched; an empty number is -1. Measured on
    Kamailio 5.6.3."""
    if len(uri) < 4 or uri[:4].lower() != "tel:":
        return 2
    rest = uri[4:]
    number, semi, params = rest.partition(";")
    number = "".join(c for c in number if c not in _VISUAL)
    if not number:
        log.error("parsing of uri failed")
        return -1
    user = f"{number};{params}" if semi else number
    try:
        result.set(ctx, f"sip:{user}@{hostpart};user=phone")
    except pv.PvError as exc:
        log.error("failed to set result pvar: %s", exc)
        return -1
    return 1


def _e164(text: str) -> int:
    """Kamailio's ``e164_check``: ``+`` and 2 to 15 digits."""
    if 2 < len(text) < 17 and text[0] == "+" and text[1:].isascii() and text[1:].isdigit():
        return 1
    return -1


def is_e164(ctx: Context, number: pv.Accessor) -> int:
    """``is_e164("$pv")``: 1 when the PV's value is ``+`` and 2-15 digits, else -1
    (also for ``$null`` or an empty value: "pseudo variable value is not string").
    ``is_e164("$rU")`` on ``+12`` is 1, on ``+123456789012345`` (15 digits) 1."""
    value = number.get(ctx)
    if not isinstance(value, str) or not value:
        return -1
    return _e164(value)


def is_uri_user_e164(ctx: Context, uri: pv.Accessor) -> int:
    """``is_uri_user_e164("$pv")``: 1 when the text between the first ``:`` and the
    next ``@`` of the URI in the PV is an E.164 number, else -1. Kamailio does not
    parse the URI: ``tel:+1234567`` (no ``@``) and ``sip:+1234567:pw@h`` (the
    password counts) are -1; no ``:`` at all is "parsing URI failed", -1."""
    value = uri.get(ctx)
    if not isinstance(value, str):
        return -1
    colon = value.find(":")
    if colon < 0:
        log.error("parsing URI failed")
        return -1
    at = value.find("@", colon + 1)
    if at < 0:
        return -1
    return _e164(value[colon + 1 : at])


def _same_params(left: str, right: str) -> bool:
    """Kamailio's ``cmp_uri_params``: a parameter present on both sides (names
    compared case-insensitively, the first of each name) must have the same value,
    case-insensitively; a parameter on one side only is ignored."""
    others: dict[str, str] = {}
    for name, value in _params(right):
        others.setdefault(name.lower(), value)
    for name, value in _params(left):
        other = others.get(name.lower())
        if other is not None and other.lower() != value.lower():
            return False
    return True


def _one_sided(params: str | None) -> bool:
    """Whether a parameter list has one that must be on both sides (``user``,
    ``ttl``, ``method``, ``maddr``; Kamailio does not list ``transport``)."""
    return any(name.lower() in _MUST_MATCH for name, _ in _params(params))


def cmp_uri(ctx: Context, uri1: str, uri2: str) -> int:
    """``cmp_uri(uri1, uri2)``: 1 when the two SIP URIs are equal as Kamailio's core
    ``cmp_uri`` (RFC 3261 §19.1.4, loosely) sees them, -1 when not, -2 when one does
    not parse. Same scheme, user and password byte for byte, host case-insensitive,
    port *as written* (``h`` and ``h:5060`` differ); headers are ignored. When only
    one side has parameters, it must not have ``user``, ``ttl``, ``method`` or
    ``maddr`` (``;user=phone`` vs none is -1, ``;transport=tcp`` vs none is 1); when
    both have some, only shared names are compared, case-insensitively
    (``;maddr=x`` vs ``;y=1`` is 1, ``;x=A`` vs ``;x=a`` is 1). Measured on
    Kamailio 5.6.3."""
    a, b = split_uri(uri1), split_uri(uri2)
    if a is None or b is None:
        log.error("failed to parse the URIs")
        return -2
    if (
        a.scheme != b.scheme
        or (a.user or "") != (b.user or "")
        or (a.password or "") != (b.password or "")
        or (a.host or "").lower() != (b.host or "").lower()
        or (a.port or "") != (b.port or "")
    ):
        return -1
    if not a.params and not b.params:
        return 1
    if not a.params and _one_sided(b.params):
        return -1
    if not b.params and _one_sided(a.params):
        return -1
    return 1 if _same_params(a.params or "", b.params or "") else -1


def _port(parts: UriParts) -> int:
    text = parts.port or ""
    return int(text) if text.isascii() and text.isdigit() else SIP_PORT


def cmp_aor(ctx: Context, uri1: str, uri2: str) -> int:
    """``cmp_aor(uri1, uri2)``: 1 when both URIs name the same address of record,
    -1 when not, -2 when one does not parse. Kamailio compares the user byte for
    byte, the host case-insensitively and the port number with 5060 for a URI
    without one, for every scheme; scheme, password, parameters and headers are
    ignored (``sip:a@h.example;x=1`` = ``sip:a@H.example:5060``, ``sip:a@h`` =
    ``sips:a@h``, ``sips:a@h`` != ``sip:a@h:5061``). Measured on Kamailio 5.6.3."""
    a, b = split_uri(uri1), split_uri(uri2)
    if a is None or b is None:
        log.error("failed to parse the URIs")
        return -2
    if (a.user or "") != (b.user or "") or (a.host or "").lower() != (b.host or "").lower():
        return -1
    return 1 if _port(a) == _port(b) else -1


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text[1:-1] if text.startswith("[") else text)
    except ValueError:
        return None


def is_first_hop(ctx: Context, mode: int = 0) -> int:
    """``is_first_hop([mode])``: whether this proxy is the first hop after the
    original sender (siputils README 4.33, best effort).

    A request: 1 when it carries a single Via value (a second one, in the same
    header line or another, makes it -1; a Via that does not parse counts as
    none, as Kamailio's "no 2nd via" branch). A reply: 1 when the top
    Record-Route URI is this proxy (``check_self`` with port 5060 when none is
    written); with ``mode`` 0 its host must also be an IP address (a domain gives
    -1) and the reply must not come from that very address, port (5060 when the
    URI has none) and protocol (UDP when it names none): that is a local loop, -1.
    With ``mode`` 1 that check is skipped. No Record-Route in a reply is 1.
    Measured on 5.6.3: a reply from 127.0.0.1:48886 whose top Record-Route is
    ``<sip:127.0.0.1:58391;lr;nat=yes>`` (the proxy's own) is a first hop: only
    the same IP is not a loop (tests/integration/test_nat.py)."""
    msg = ctx.msg
    if isinstance(msg, Request):
        try:
            vias = msg.vias
        except SipParseError:
            return 1
        return 1 if len(vias) < 2 else -1
    try:
        rrs = msg.record_routes
    except SipParseError:
        return -1
    if not rrs:
        return 1
    parts = split_uri(rrs[0].uri_raw.decode("utf-8", "surrogateescape"))
    if parts is None or parts.host is None:
        return -1
    host = parts.host[1:-1] if parts.host.startswith("[") else parts.host
    port = _port(parts)
    config = ctx.proc.config
    # the engine's sockets too: those given on the command line (``--listen``, a cfg
    # without ``listen=`` such as the stock one) are not in the cfg's ``myself``, and
    # with several workers a reply arrives on the worker's reply socket, not on the
    # listen socket the Record-Route names (tests/integration/test_stock_nat.py)
    mine = ctx.proc.engine.is_myself(host, port, None)
    if not mine and config is not None:
        received = (ctx.received.dst_ip.lower(), ctx.received.dst_port)
        mine = config.myself.check(host, port, received)
    if not mine:
        return -1
    if mode == 1:
        return 1
    ip = _ip(parts.host)
    if ip is None:
        return -1
    r = ctx.received
    uri_proto = "udp"
    for param in (parts.params or "").split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport" and value.strip():
            uri_proto = value.strip().lower()
    if ip == _ip(r.src_ip) and _port(parts) == r.src_port and uri_proto == r.proto:
        return -1
    return 1


# route kinds the functions below may be used in
REQ_LOCAL = Route.REQUEST | Route.LOCAL
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH
REQ_FAIL_LOCAL = Route.REQUEST | Route.FAILURE | Route.LOCAL
REQ_REPLY = Route.REQUEST | Route.ONREPLY
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY

EXPORTS = ModuleExports(
    name="siputils",
    cmds=(
        # URIs and users
        Cmd("is_user", (STR,), REQ_LOCAL, fixup="fixup_spve_null"),
        Cmd("uri_param", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null", impl=uri_param),
        Cmd("uri_param", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve", impl=uri_param),
        Cmd("uri_param_any", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd(
            "add_uri_param", (STR_CONST,), Route.REQUEST, fixup="fixup_str_null", impl=add_uri_param
        ),
        Cmd("get_uri_param", (STR_CONST, PV_WRITE), REQ_LOCAL, fixup="fixup_get_uri_param"),
        Cmd("uri_param_rm", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd(
            "tel2sip",
            (STR, STR, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            fixup="fixup_tel2sip",
            impl=tel2sip,
        ),
        Cmd("is_uri", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_e164", (PV,), REQ_FAIL_LOCAL, fixup="fixup_pvar_null", impl=is_e164),
        Cmd("is_uri_user_e164", (PV,), Route.ANY, fixup="fixup_pvar_null", impl=is_uri_user_e164),
        Cmd("cmp_uri", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=cmp_uri),
        Cmd("is_rpid_user_e164", (), Route.REQUEST),
        Cmd("set_uri_user", (PV_WRITE, STR), Route.ANY, fixup="fixup_set_uri"),
        Cmd("set_uri_host", (PV_WRITE, STR), Route.ANY, fixup="fixup_set_uri"),
        Cmd("is_tel_number", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("contact_param_decode_ruri", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
        # methods, headers and options
        Cmd("options_reply", (), Route.REQUEST),
        Cmd("has_totag", (), Route.ANY, impl=has_totag),
        Cmd("is_request", (), Route.ANY, impl=is_request),
        Cmd("is_reply", (), Route.ANY, impl=is_reply),
        Cmd("is_gruu", (), Route.ANY),
        Cmd("is_gruu", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_supported", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_option"),
        Cmd("is_first_hop", (), Route.ANY, impl=is_first_hop),
        Cmd("is_first_hop", (INT,), Route.ANY, fixup="fixup_igp_null", impl=is_first_hop),
        Cmd("is_numeric", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_alphanum", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_alphanumex", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # Contact encoding
        Cmd("encode_contact", (STR_CONST, STR_CONST), REQ_REPLY),
        Cmd("decode_contact", (), Route.REQUEST),
        Cmd("decode_contact_header", (), REQ_FAIL_REPLY),
        Cmd("contact_param_encode", (STR, STR), REQ_REPLY, fixup="fixup_spve_spve"),
        Cmd("contact_param_decode", (STR,), REQ_REPLY, fixup="fixup_spve_null"),
        Cmd("contact_param_rm", (STR,), REQ_REPLY, fixup="fixup_spve_null"),
        # miscellaneous
        Cmd("cmp_aor", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=cmp_aor),
        Cmd("cmp_hdr_name", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("append_rpid_hf", (), REQ_FAIL_BRANCH),
        Cmd("append_rpid_hf", (STR_CONST, STR_CONST), REQ_FAIL_BRANCH, fixup="fixup_str_str"),
        Cmd("sip_p_charging_vector", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hdr_date_check", (INT,), Route.ANY, fixup="fixup_igp_null"),
    ),
    params=(
        ModParam("options_accept", str, "*/*"),
        ModParam("options_accept_encoding", str, ""),
        ModParam("options_accept_language", str, "en"),
        ModParam("options_support", str, ""),
        ModParam("contact_flds_separator", str, "*"),
        ModParam("rpid_prefix", str, ""),
        ModParam("rpid_suffix", str, None),
        ModParam("rpid_avp", str, "$avp(s:rpid)"),
    ),
    pvs=(PvExport("pcv", inner=True),),
    depends=("sl",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``tel2sip2/3``, ``is_sip/0``, ``is_http/0``, ``contact_param_encode_alias/2``,
#   ``contact_param_check/1``, ``sip_parse_headers/0``
# parameters ``e164_max_len``
