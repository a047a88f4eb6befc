"""Pseudo-variables (``$ru``, ``$var(x)``, ``$avp(x)``, ``$hdr(X)``, ``$shv(x)``
...), xavp helpers and the ``s.``/``uri.``/``param.`` transformation classes.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
from typing import Final

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    ANY,
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
from kcc_runtime.pv import Accessor, PvError

__all__ = ["EXPORTS", "is_int", "not_empty", "pv_isset", "pv_unset", "typeof"]

log = logging.getLogger("kcc_runtime.pv_module")

#: PVs whose setter rejects ``$null`` in Kamailio 5.6 (``pv_set_ruri``: "bad
#: parameters"), so ``pv_unset`` on them fails with -1 and changes nothing
_NO_UNSET: Final = frozenset({"ru", "ruri", "rd", "ruri.domain"})


def pv_isset(ctx: Context, var: Accessor) -> int:
    """``pv_isset("$pv")``: 1 when the PV has a value, -1 when it is ``$null``
    (Kamailio tests ``PV_VAL_NULL``). A ``$var`` is always set (it reads 0 before
    its first assignment and after ``pv_unset``); an unset ``$avp`` or a missing
    ``$hdr`` is not. Measured on Kamailio 5.6.3."""
    return -1 if var.get(ctx) is None else 1


def pv_unset(ctx: Context, var: Accessor) -> int:
    """``pv_unset("$pv")``: assign ``$null`` (Kamailio's ``pv_set_spec_value`` with
    no value): 1, or -1 when the PV refuses it. ``$var(x)`` becomes 0 and stays set,
    ``$avp(a)`` loses its newest value, ``$ru`` refuses (-1, "faile to unset
    variable"). Measured on Kamailio 5.6.3."""
    if var.name in _NO_UNSET:
        log.error("failed to unset variable $%s", var.name)
        return -1
    try:
        var.set(ctx, None)
    except PvError as exc:
        log.error("failed to unset variable: %s", exc)
        return -1
    return 1


def is_int(ctx: Context, var: Accessor) -> int:
    """``is_int("$pv")``: 1 when the PV holds an integer, -1 otherwise; a string of
    digits is not one (``$var(x)="5"`` and ``$rU`` of ``123`` are -1)."""
    return 1 if isinstance(var.get(ctx), int) else -1


def typeof(ctx: Context, var: Accessor, vtype: str) -> int:
    """``typeof("$pv", "int|str|null")``: 1 when the value has that type, -1
    otherwise. As Kamailio, only the first letter of the type counts,
    case-insensitively (``"STR"`` is ``str``); any other letter is -1. An int is
    not a ``str`` and ``"5"`` is not an ``int``; an unassigned ``$var`` is an int."""
    value = var.get(ctx)
    kind = vtype[:1].lower()
    if kind == "i":
        matches = isinstance(value, int)
    elif kind == "s":
        matches = isinstance(value, str)
    elif kind == "n":
        matches = value is None
    else:
        matches = False
    return 1 if matches else -1


def not_empty(ctx: Context, var: Accessor) -> int:
    """``not_empty("$pv")``: 1 when the PV holds a non-empty string, -1 for ``""``,
    ``$null`` and any integer (``$var(x)=5`` is -1). Measured on Kamailio 5.6.3."""
    value = var.get(ctx)
    return 1 if isinstance(value, str) and value != "" else -1


EXPORTS = ModuleExports(
    name="pv",
    cmds=(
        # pseudo-variable state
        Cmd("pv_isset", (PV,), Route.ANY, fixup="fixup_pvar_null", impl=pv_isset),
        Cmd("pv_unset", (PV_WRITE,), Route.ANY, fixup="fixup_pvar_null", impl=pv_unset),
        Cmd("pv_xavp_print", (), Route.ANY),
        Cmd("pv_xavu_print", (), Route.ANY),
        Cmd("pv_xavi_print", (), Route.ANY),
        Cmd("pv_var_to_xavp", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("pv_xavp_to_var", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_int", (PV,), Route.ANY, fixup="fixup_pvar_null", impl=is_int),
        Cmd("typeof", (PV, STR_CONST), Route.ANY, fixup="fixup_pvar_none", impl=typeof),
        Cmd("not_empty", (PV,), Route.ANY, fixup="fixup_pvar_null", impl=not_empty),
        Cmd("pv_evalx", (PV_WRITE, STR), Route.ANY, const_args=True, fixup="pv_evalx_fixup"),
        # xavp helpers
        Cmd("xavp_copy", (ANY, ANY, ANY), Route.ANY, fixup="pv_xavp_copy_fixup"),
        Cmd("xavp_copy", (ANY, ANY, ANY, ANY), Route.ANY, fixup="pv_xavp_copy_fixup"),
        Cmd("xavp_slist_explode", (STR, STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("xavp_params_explode", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("xavp_params_implode", (STR, STR_CONST), Route.ANY, fixup="fixup_spve_str"),
        Cmd("xavu_params_explode", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("xavu_params_implode", (STR, STR_CONST), Route.ANY, fixup="fixup_spve_str"),
        Cmd("xavp_child_seti", (ANY, ANY, ANY), Route.ANY, fixup="fixup_xavp_child_seti"),
        Cmd("xavp_child_sets", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("xavp_rm", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("xavp_child_rm", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("xavi_child_seti", (ANY, ANY, ANY), Route.ANY, fixup="fixup_xavp_child_seti"),
        Cmd("xavi_child_sets", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("xavi_rm", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("xavi_child_rm", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # headers
        Cmd("sbranch_set_ruri", (), Route.ANY),
        Cmd("sbranch_append", (), Route.ANY),
        Cmd("sbranch_reset", (), Route.ANY),
    ),
    params=(
        ModParam("shvset", str, None, repeatable=True),
        ModParam("varset", str, None, repeatable=True),
        ModParam("avp_aliases", str, None, repeatable=True),
    ),
    pvs=(
        PvExport("_s", inner=True),
        PvExport("af", inner=True),
        PvExport("branch", inner=True, writable=True, index=True),
        PvExport("sbranch", inner=True, writable=True),
        PvExport("mi"),
        PvExport("stat", inner=True),
        PvExport("sel", inner=True),
        PvExport("snd", inner=True),
        PvExport("sndto", inner=True),
        PvExport("sndfrom", inner=True),
        PvExport("rcv", inner=True, writable=True),
        PvExport("xavp", inner=True, writable=True),
        PvExport("xavu", inner=True, writable=True),
        PvExport("xavi", inner=True, writable=True),
        PvExport("avp", inner=True, writable=True, index=True),
        PvExport("hdr", inner=True, index=True),
        PvExport("hdrc", inner=True),
        PvExport("hfl", inner=True, index=True),
        PvExport("hflc", inner=True),
        PvExport("var", inner=True, writable=True),
        PvExport("vz", inner=True, writable=True),
        PvExport("vn", inner=True, writable=True),
        PvExport("ai", index=True),
        PvExport("adu"),
        PvExport("ar"),
        PvExport("au"),
        PvExport("ad"),
        PvExport("aU"),
        PvExport("aa"),
        PvExport("adn"),
        PvExport("adc"),
        PvExport("adr"),
        PvExport("ado"),
        PvExport("Au"),
        PvExport("AU"),
        PvExport("bf", writable=True),
        PvExport("bF", writable=True),
        PvExport("Bf", inner=True, writable=True),
        PvExport("br", writable=True),
        PvExport("bR"),
        PvExport("bs"),
        PvExport("ci"),
        PvExport("cl"),
        PvExport("cnt", inner=True),
        PvExport("conid"),
        PvExport("cs"),
        PvExport("csb"),
        PvExport("ct"),
        PvExport("cT"),
        PvExport("dd"),
        PvExport("di"),
        PvExport("dir"),
        PvExport("dip"),
        PvExport("dic"),
        PvExport("dp"),
        PvExport("dP"),
        PvExport("ds"),
        PvExport("du", writable=True),
        PvExport("duri", writable=True),
        PvExport("err.class"),
        PvExport("err.level"),
        PvExport("err.info"),
        PvExport("err.rcode"),
        PvExport("err.rreason"),
        PvExport("fd", writable=True),
        PvExport("from.domain", writable=True),
        PvExport("fn", writable=True),
        PvExport("fs", writable=True),
        PvExport("fsn", writable=True),
        PvExport("fsp"),
        PvExport("ft"),
        PvExport("fu", writable=True),
        PvExport("from", writable=True),
        PvExport("fU", writable=True),
        PvExport("from.user", writable=True),
        PvExport("fUl"),
        PvExport("mb"),
        PvExport("mbu"),
        PvExport("mf", writable=True),
        PvExport("mF", writable=True),
        PvExport("Mf", inner=True, writable=True),
        PvExport("ml"),
        PvExport("mt"),
        PvExport("mts"),
        PvExport("od"),
        PvExport("op"),
        PvExport("oP"),
        PvExport("ou"),
        PvExport("ouri"),
        PvExport("oU"),
        PvExport("oUl"),
        PvExport("pd", index=True),
        PvExport("pn", index=True),
        PvExport("pp"),
        PvExport("pr"),
        PvExport("prid"),
        PvExport("proto"),
        PvExport("pu", index=True),
        PvExport("pU", index=True),
        PvExport("rb"),
        PvExport("rd", writable=True),
        PvExport("ruri.domain", writable=True),
        PvExport("re"),
        PvExport("rm"),
        PvExport("rmid"),
        PvExport("rp", writable=True),
        PvExport("rP"),
        PvExport("rr"),
        PvExport("rs"),
        PvExport("rsi"),
        PvExport("rt"),
        PvExport("ru", writable=True),
        PvExport("ruri", writable=True),
        PvExport("rU", writable=True),
        PvExport("ruri.user", writable=True),
        PvExport("rUl"),
        PvExport("rv"),
        PvExport("rz"),
        PvExport("Ras"),
        PvExport("Ri"),
        PvExport("Rp"),
        PvExport("Ru"),
        PvExport("Rut"),
        PvExport("Rn"),
        PvExport("RAi"),
        PvExport("RAp"),
        PvExport("RAu"),
        PvExport("RAut"),
        PvExport("sas"),
        PvExport("sf", writable=True),
        PvExport("sF", writable=True),
        PvExport("Sf", inner=True, writable=True),
        PvExport("src_ip"),
        PvExport("si"),
        PvExport("siz"),
        PvExport("sid"),
        PvExport("sp"),
        PvExport("su"),
        PvExport("sut"),
        PvExport("td", writable=True),
        PvExport("to.domain", writable=True),
        PvExport("tn", writable=True),
        PvExport("tt"),
        PvExport("tu", writable=True),
        PvExport("to", writable=True),
        PvExport("tU", writable=True),
        PvExport("to.user", writable=True),
        PvExport("tUl", writable=True),
        PvExport("true"),
        PvExport("Tb"),
        PvExport("Tf"),
        PvExport("TF"),
        PvExport("Ts"),
        PvExport("TS"),
        PvExport("ua"),
        PvExport("ruid"),
        PvExport("location_ua"),
        PvExport("shv", inner=True, writable=True),
        PvExport("time", inner=True),
        PvExport("timef", inner=True),
        PvExport("utime", inner=True),
        PvExport("utimef", inner=True),
        PvExport("TV", inner=True),
        PvExport("nh", inner=True),
        PvExport("version", inner=True),
        PvExport("K", inner=True),
        PvExport("expires", inner=True),
        PvExport("msg", inner=True),
        PvExport("ksr", inner=True),
        PvExport("rpl", inner=True),
        PvExport("ccp", inner=True, writable=True),
        PvExport("via0", inner=True),
        PvExport("via1", inner=True),
        PvExport("viaZ", inner=True),
        PvExport("msgbuf", inner=True, writable=True),
    ),
    transformations=(
        "s.len",
        "s.int",
        "s.md5",
        "s.rmws",
        "s.sha256",
        "s.sha384",
        "s.sha512",
        "s.tolower",
        "s.toupper",
        "s.numeric",
        "s.encode.hexa",
        "s.decode.hexa",
        "s.encode.7bit",
        "s.decode.7bit",
        "s.encode.base58",
        "s.decode.base58",
        "s.encode.base64",
        "s.decode.base64",
        "s.encode.base64t",
        "s.decode.base64t",
        "s.encode.base64url",
        "s.decode.base64url",
        "s.encode.base64urlt",
        "s.decode.base64urlt",
        "s.escape.common",
        "s.unescape.common",
        "s.escape.user",
        "s.unescape.user",
        "s.escape.param",
        "s.unescape.param",
        "s.escape.csv",
        "s.prefixes",
        "s.prefixes.quoted",
        "s.substr",
        "s.select",
        "s.strip",
        "s.striptail",
        "s.stripto",
        "s.ftime",
        "s.replace",
        "s.corehash",
        "s.trim",
        "s.rtrim",
        "s.ltrim",
        "s.rm",
        "s.urlencode.param",
        "s.urldecode.param",
        "s.unquote",
        "s.unbracket",
        "s.count",
        "s.before",
        "s.after",
        "s.rbefore",
        "s.rafter",
        "s.fmtlines",
        "s.fmtlinet",
        "nameaddr.uri",
        "nameaddr.len",
        "nameaddr.name",
        "uri.user",
        "uri.host",
        "uri.domain",
        "uri.passwd",
        "uri.port",
        "uri.saor",
        "uri.suri",
        "uri.duri",
        "uri.params",
        "uri.headers",
        "uri.param",
        "uri.transport",
        "uri.ttl",
        "uri.uparam",
        "uri.maddr",
        "uri.method",
        "uri.lr",
        "uri.r2",
        "uri.scheme",
        "uri.tosocket",
        "param.value",
        "param.in",
        "param.valueat",
        "param.name",
        "param.count",
        "tobody.uri",
        "tobody.tag",
        "tobody.user",
        "tobody.host",
        "tobody.params",
        "tobody.display",
        "line.at",
        "line.sw",
        "line.count",
        "urialias.encode",
        "urialias.decode",
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``xavp_xparams_explode/3``, ``xavp_params_implode_qval/2``, ``xavp_rm_all/1``,
#   ``xavi_rm_all/1``, ``xavp_lshift/2``, ``xavp_push_dst/1``
# variables ``$recv``, ``$cts``, ``$ctu``, ``$En``, ``$Er``, ``$Es``, ``$Et``, ``$Ec``, ``$Eq``,
#   ``$Ek``, ``$Ei``, ``$Ej``, ``$Eb``, ``$Ev``, ``$ful``, ``$rul``, ``$tts``, ``$shvinc``
# transformations ``s.intv``, ``s.rmhdws``, ``s.rmhlws``, ``s.sha1``, ``s.sha3``, ``s.keccak``,
#   ``s.escape.crlf``, ``s.unescape.crlf``, ``s.selectsw``, ``s.charat``, ``s.byteat``, ``s.crc32``,
#   ``uri.rmparam``, ``val.n0``, ``val.ne``, ``val.json``, ``val.jsonqe``, ``num.fdigit``,
#   ``num.ldigit``
