"""SIP utilities: user/URI tests, OPTIONS replies, E.164 and tel: URIs,
Remote-Party-ID and Contact alias encoding.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

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
from kcc_runtime.sip import Request, SipParseError

__all__ = ["EXPORTS", "has_totag", "is_reply", "is_request"]


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
        Cmd("uri_param", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("uri_param", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd("uri_param_any", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("add_uri_param", (STR_CONST,), Route.REQUEST, fixup="fixup_str_null"),
        Cmd("get_uri_param", (STR_CONST, PV_WRITE), REQ_LOCAL, fixup="fixup_get_uri_param"),
        Cmd("uri_param_rm", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("tel2sip", (STR, STR, PV_WRITE), REQ_FAIL_REPLY_BRANCH, fixup="fixup_tel2sip"),
        Cmd("is_uri", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_e164", (PV,), REQ_FAIL_LOCAL, fixup="fixup_pvar_null"),
        Cmd("is_uri_user_e164", (PV,), Route.ANY, fixup="fixup_pvar_null"),
        Cmd("cmp_uri", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
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
        Cmd("is_first_hop", (), Route.ANY),
        Cmd("is_first_hop", (INT,), Route.ANY, fixup="fixup_igp_null"),
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
        Cmd("cmp_aor", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
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
