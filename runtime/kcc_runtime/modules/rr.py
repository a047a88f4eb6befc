"""Record-Route and Route handling: ``record_route()``, ``loose_route()`` and
route parameters.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    REGEX,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.modules.core import split_uri
from kcc_runtime.pv import current_ruri, set_ruri
from kcc_runtime.sip import Request, SipParseError, SipUri, parse_uri

__all__ = [
    "EXPORTS",
    "add_rr_param",
    "check_route_param",
    "is_direction",
    "loose_route",
    "record_route",
]

log = logging.getLogger("kcc_runtime.rr")

#: loose_route's return codes (rr ``loose.c``): routed by the Route set; no Route or
#: a failure; the only Route was ours on an out-of-dialog request (preloaded)
RR_DRIVEN = 1
NOT_RR_DRIVEN = -1
RR_PRELOADED_ONLY_ME = -3


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def record_route(ctx: Context, params: str | None = None) -> int:
    """``record_route([params])``: insert ``Record-Route: <sip:ADDR:PORT;lr;ftag=T
    PARAMS>`` above any other Record-Route (rr ``record_route``, checked against
    Kamailio 5.6: ``<sip:127.0.0.1:5060;lr;ftag=ft0;foo=bar>``).

    ADDR/PORT are the advertised address and port, else the receiving socket's;
    ``;transport=`` is added for anything but UDP; ``;lr=on`` with
    ``enable_full_lr``; the From tag with ``append_fromtag`` (default on); a second
    call for the same message is an error (-1), as in Kamailio. Double
    record-routing (``enable_double_rr``) needs the outgoing socket, so it is the
    engine's: when it sends on another socket than the one the request came in on
    it adds the second entry with ``r2=on``.
    """
    msg = ctx.msg
    if not isinstance(msg, Request):
        return -1
    if "record_route" in ctx.msg_flags:
        log.error("double attempt to record-route")
        return -1
    proc = ctx.proc
    host = ctx.advertised_address or _host_for_uri(ctx.received.dst_ip)
    port = ctx.advertised_port or ctx.received.dst_port
    parts = [f"<sip:{host}:{port}"]
    if ctx.received.proto != "udp":
        parts.append(f";transport={ctx.received.proto}")
    parts.append(";lr=on" if proc.modparam_int("rr", "enable_full_lr", 0) else ";lr")
    if proc.modparam_int("rr", "append_fromtag", 1):
        try:
            from_ = msg.from_
        except SipParseError:
            log.error("failed to parse From header")
            return -1
        tag = None if from_ is None else from_.tag
        if tag:
            parts.append(f";ftag={tag}")
    if params:
        parts.append(params)
    if ctx.rr_params:
        parts.append(ctx.rr_params)
        ctx.rr_params = ""
    parts.append(">")
    before = len(msg._edits)
    try:
        msg.add_record_route("".join(parts))
    except ValueError:
        log.error("bad Record-Route parameters <%s>", params)
        return -1
    ctx.rr_lump = msg._edits[before] if len(msg._edits) > before else None
    ctx.msg_flags.add("record_route")
    return 1


def add_rr_param(ctx: Context, param: str) -> int:
    """``add_rr_param(";name=value")``: add URI parameters to the Record-Route entry
    of this message, before or after ``record_route()`` (rr ``add_rr_param``): 1,
    -1 for text that cannot go in a header.

    Measured on Kamailio 5.6.3 (the entry received by the next hop):
    ``add_rr_param(";nat=yes")`` before or after ``record_route()`` ->
    ``<sip:127.0.0.1:5360;lr;ftag=a1;nat=yes>``; ``add_rr_param(";a=1");
    record_route(";p=2"); add_rr_param(";b=3")`` -> ``...;lr;ftag=a1;p=2;a=1;b=3>``
    (record_route's own parameters, then the waiting ones, then later ones); in a
    branch_route the parameter goes in that branch's copy only.
    """
    if any(c in param for c in "\r\n"):
        log.error("bad Record-Route parameter %r", param)
        return -1
    msg = ctx.msg
    lump = ctx.rr_lump
    if lump is not None and isinstance(msg, Request):
        for i, edit in enumerate(msg._edits):
            if edit is lump:
                start, end, data = edit
                close = data.rfind(b">")
                new = (start, end, data[:close] + param.encode("utf-8") + data[close:])
                msg._edits[i] = new
                ctx.rr_lump = new
                return 1
    ctx.rr_params += param
    return 1


class _Entry(NamedTuple):
    """One Route value: its header line, its span, its URI."""

    line: int
    start: int
    end: int
    uri: str


def _route_entries(msg: Request) -> list[_Entry] | None:
    """Every Route value in order; None when a Route header does not parse.

    The values are the message's parsed ``routes`` (``validate`` parsed them
    already), each placed on its line by its offset."""
    try:
        values = msg.routes
    except SipParseError:
        return None
    if not values:
        return []
    spans = msg.spans
    lines = [i for i, name in enumerate(msg.names) if name == b"route"]
    out: list[_Entry] = []
    k = 0
    for v in values:
        while spans[lines[k]][2] <= v.start:  # past this line's value: the next line
            k += 1
        out.append(_Entry(lines[k], v.start, v.end, v.uri_raw.decode("utf-8", "surrogateescape")))
    return out


def _skip_lws(msg: Request, pos: int) -> int:
    while msg.buf[pos : pos + 1] in (b" ", b"\t", b"\r", b"\n"):
        pos += 1
    return pos


def _remove(msg: Request, entries: list[_Entry], gone: set[int]) -> None:
    """Delete the Route values ``gone`` (indexes into ``entries``) as Kamailio's
    lumps do: a whole line when all its values go, else from the line's first value
    to the first kept one (a prefix) or from the last kept one to the end of the
    last removed one (a suffix)."""
    if len(gone) == len(entries):  # every value goes (our own Route alone): whole lines
        for line in dict.fromkeys(e.line for e in entries):
            ls, _, _, le = msg.spans[line]
            msg._splice(ls, le, b"")
        return
    lines: dict[int, list[int]] = {}
    for k, e in enumerate(entries):
        lines.setdefault(e.line, []).append(k)
    for line, ks in lines.items():
        dead = [k for k in ks if k in gone]
        if not dead:
            continue
        ls, _, _, le = msg.spans[line]
        if len(dead) == len(ks):
            msg._splice(ls, le, b"")
            continue
        kept = [k for k in ks if k not in gone]
        if dead[0] == ks[0]:
            # Kamailio cuts from hdr->body.s to the next nameaddr, both after the LWS
            msg._splice(
                _skip_lws(msg, entries[ks[0]].start), _skip_lws(msg, entries[kept[0]].start), b""
            )
        else:
            msg._splice(entries[kept[-1]].end, entries[dead[-1]].end, b"")


def _parse_sip(uri: str) -> SipUri | None:
    try:
        parsed = parse_uri(uri.encode("utf-8", "surrogateescape"))
    except SipParseError:
        return None
    return parsed if isinstance(parsed, SipUri) else None


def _is_me(ctx: Context, uri: SipUri) -> bool:
    return ctx.proc.engine.is_myself(uri.host, uri.port, uri.param("transport"))


def _save_ruri(ctx: Context, msg: Request, entries: list[_Entry]) -> None:
    """The next hop is a strict router: keep the R-URI as a new last Route line."""
    ruri = current_ruri(ctx) or ""
    at = msg.spans[entries[-1].line][3]
    line = b"Route: <" + ruri.encode("utf-8", "surrogateescape") + b">" + msg.eol
    msg._splice(at, at, line)


def _after_loose(ctx: Context, msg: Request, entries: list[_Entry], preloaded: bool) -> int:
    first = _parse_sip(entries[0].uri)
    if first is None:
        log.error("failed to parse the first route URI")
        return NOT_RR_DRIVEN
    gone: set[int] = set()
    k = 0
    if _is_me(ctx, first):
        _routed(ctx, entries[0].uri)
        gone.add(0)
        k = 1
        if k < len(entries) and first.has_param("r2") and _double_rr(ctx):
            gone.add(1)
            k = 2
        if k >= len(entries):
            _remove(msg, entries, gone)
            return RR_PRELOADED_ONLY_ME if preloaded else RR_DRIVEN
    nxt = _parse_sip(entries[k].uri)
    if nxt is None:
        log.error("failed to parse the next route URI")
        return NOT_RR_DRIVEN
    if not nxt.has_param("lr"):
        _save_ruri(ctx, msg, entries)
        if not set_ruri(ctx, entries[k].uri):
            return NOT_RR_DRIVEN
        gone.add(k)
    else:
        ctx.dst_uri = entries[k].uri
    _remove(msg, entries, gone)
    return RR_DRIVEN


def _routed(ctx: Context, uri: str) -> None:
    """Keep the parameters of our own Route URI (or, after a strict router, of the
    R-URI) for ``check_route_param``/``is_direction`` (rr's ``routed_params``)."""
    parts = split_uri(uri)
    params = None if parts is None else parts.params
    ctx.rr_routed_params = None if not params else ";" + params


#: the route kinds that run on the transaction's request (Kamailio's faked request of
#: a failure route keeps the request's ``msg->id``; a branch route runs on the request
#: itself), where ``loose_route``'s routed params of the request route still apply
_ON_THE_REQUEST = Route.BRANCH | Route.FAILURE | Route.BRANCH_FAILURE


def _routed_params(ctx: Context) -> str | None:
    """The parameters of our own Route entry ``loose_route()`` consumed for the
    message ``ctx`` runs on (rr's ``routed_params``).

    Kamailio keeps them per process with the id of the message they belong to and
    answers for any message with that id: a branch route, a failure route and a
    ``tm:branch-failure`` event route run on the transaction's request (the same id),
    so ``check_route_param``/``is_direction`` there see what ``loose_route()`` found
    in the request route; a reply has an id of its own, so in a reply route nothing is
    routed. Measured on Kamailio 5.6.3 with the stock cfg (``WITH_NAT``,
    tests/integration/test_stock_nat.py): a BYE whose Route carries ``;nat=yes``
    from a caller without NAT reaches ``rtpengine_manage`` (its ``delete``) only
    through ``check_route_param("nat=yes")`` in ``route[NATMANAGE]`` called from
    ``branch_route[MANAGE_BRANCH]``, and the delete is sent. Here the request route's
    context is the transaction's (``Cell.ctx``)."""
    routed = ctx.rr_routed_params
    if routed is None and ctx.kind & _ON_THE_REQUEST and ctx.tm_cell is not None:
        routed = ctx.tm_cell.ctx.rr_routed_params
    return routed


def _after_strict(ctx: Context, msg: Request, entries: list[_Entry]) -> int:
    _routed(ctx, current_ruri(ctx) or "")
    first = _parse_sip(entries[0].uri)
    if first is None:
        log.error("failed to parse the first route URI")
        return NOT_RR_DRIVEN
    gone: set[int] = set()
    k = 0
    if first.has_param("r2") and _double_rr(ctx) and _is_me(ctx, first):
        gone.add(0)
        k = 1
        if k >= len(entries):
            log.error("no next URI found")
            return NOT_RR_DRIVEN
    nxt = _parse_sip(entries[k].uri)
    if nxt is None:
        log.error("failed to parse the next route URI")
        return NOT_RR_DRIVEN
    if not nxt.has_param("lr"):
        if not set_ruri(ctx, entries[k].uri):
            return NOT_RR_DRIVEN
        gone.add(k)
    else:
        if len(entries) - k < 2:
            log.error("no remote target found")
            return NOT_RR_DRIVEN
        ctx.dst_uri = entries[k].uri
        if not set_ruri(ctx, entries[-1].uri):
            return NOT_RR_DRIVEN
        gone.add(len(entries) - 1)
    _remove(msg, entries, gone)
    return RR_DRIVEN


def _double_rr(ctx: Context) -> bool:
    return ctx.proc.modparam_int("rr", "enable_double_rr", 1) != 0


def loose_route(ctx: Context) -> int:
    """``loose_route()``: route by the Route set (RFC 3261 §16.4, §16.12; rr
    ``loose.c``, outcomes measured against Kamailio 5.6).

    No Route header: -1. A request without To tag is *preloaded*: our own first
    Route entry (and its ``r2=on`` twin) is removed, and when nothing is left the
    result is -3. Otherwise, with the R-URI naming us, the previous hop was a strict
    router: the last Route becomes the R-URI (and is removed) and the first,
    loose, Route becomes ``$du``. Otherwise our own entries are removed and the
    next Route becomes ``$du`` (loose next hop) or the R-URI (strict next hop: the
    old R-URI is kept as a new last Route). Routed: 1.
    """
    msg = ctx.msg
    if not isinstance(msg, Request):
        return NOT_RR_DRIVEN
    entries = _route_entries(msg)
    if not entries:
        return NOT_RR_DRIVEN
    ruri = current_ruri(ctx)
    parts = None if ruri is None else split_uri(ruri)
    if parts is None:
        log.error("failed to parse Request URI")
        return NOT_RR_DRIVEN
    try:
        to = msg.to
    except SipParseError:
        return NOT_RR_DRIVEN
    if to is None or to.tag is None:
        return _after_loose(ctx, msg, entries, preloaded=True)
    ruri_sip = _parse_sip(ruri or "")
    if ruri_sip is not None and _is_me(ctx, ruri_sip):
        return _after_strict(ctx, msg, entries)
    return _after_loose(ctx, msg, entries, preloaded=False)


def check_route_param(ctx: Context, pattern: re.Pattern[str]) -> int:
    """``check_route_param(re)``: after ``loose_route()``, 1 when the regex finds a
    match in the URI parameters of our own Route entry, -1 otherwise or when
    ``loose_route`` consumed none (rr ``check_route_param``). The text starts with
    its ``;`` and ends before any ``?headers``; measured on Kamailio 5.6.3: for
    ``Route: <sip:127.0.0.1:5360;lr;ftag=a1;nat=yes>`` both ``nat=yes`` and
    ``^;lr;ftag`` match; with only a foreign Route neither does."""
    routed = _routed_params(ctx)
    if routed is None:
        return -1
    return 1 if pattern.search(routed) else -1


#: ``is_direction`` arguments (rr's ``direction_fixup``)
DIRECTIONS = ("downstream", "upstream")


def is_direction(ctx: Context, direction: str) -> int:
    """``is_direction("downstream"|"upstream")``: the direction of an in-dialog
    request, after ``loose_route()`` (rr ``is_direction``): upstream when the
    ``ftag`` parameter of our own Route entry differs from the From tag, downstream
    otherwise (no routed entry, no or an empty ``ftag``, no From tag). 1 when it is
    ``direction``, else -1. Measured on Kamailio 5.6.3: ``ftag=a1`` with From tag
    ``a1`` is downstream, with ``zz`` upstream; our entry without ``ftag``, or only a
    foreign Route, is downstream. Kamailio refuses another word at start-up; here it
    is an error and -1."""
    if direction not in DIRECTIONS:
        log.error("is_direction: unknown direction %r", direction)
        return -1
    found = "downstream"
    routed = _routed_params(ctx)
    ftag = None if routed is None else _uri_param(routed, "ftag")
    if ftag:
        try:
            from_ = ctx.msg.from_
        except SipParseError:
            from_ = None
        tag = None if from_ is None else from_.tag
        if tag and tag != ftag:
            found = "upstream"
    return 1 if found == direction else -1


def _uri_param(params: str, name: str) -> str | None:
    for item in params.split(";"):
        key, _, value = item.partition("=")
        if key.strip(" \t").lower() == name:
            return value.strip(" \t")
    return None


def route_uri(ctx: Context) -> str | None:
    """``$route_uri``: the URI of the first Route entry of the message as received
    (``loose_route`` does not change it); None when there is no Route header or it
    does not parse (Kamailio's getter fails: measured, ``$route_uri == $null`` and
    ``== ""`` are true and ``defined $route_uri`` false; xlog prints an empty string
    where kcc prints ``<null>``)."""
    msg = ctx.msg
    if not isinstance(msg, Request):
        return None
    entries = _route_entries(msg)
    return entries[0].uri if entries else None


# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="rr",
    cmds=(
        # record-routing
        Cmd("record_route", (), REQ_FAIL_BRANCH, impl=record_route),
        Cmd("record_route", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup", impl=record_route),
        Cmd("record_route_preset", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        Cmd("record_route_preset", (STR, STR), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        Cmd("record_route_advertised_address", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup"),
        # route processing
        Cmd("loose_route", (), Route.REQUEST, impl=loose_route),
        Cmd("loose_route_preloaded", (), Route.REQUEST),
        Cmd("loose_route_mode", (INT,), Route.REQUEST, fixup="fixup_igp_null"),
        Cmd(
            "check_route_param",
            (REGEX,),
            Route.REQUEST,
            fixup="fixup_regexp_null",
            impl=check_route_param,
        ),
        Cmd("remove_record_route", (), REQ_FAIL),
        Cmd("rr_next_hop_route", (), Route.ANY),
        # route parameters
        Cmd("add_rr_param", (STR,), REQ_FAIL_BRANCH, fixup="it_list_fixup", impl=add_rr_param),
        # direction
        Cmd(
            "is_direction",
            (STR_CONST,),
            Route.REQUEST,
            const_args=True,
            fixup="direction_fixup",
            impl=is_direction,
        ),
    ),
    params=(
        ModParam("append_fromtag", int, 1),
        ModParam("enable_double_rr", int, 1),
        ModParam("enable_full_lr", int, 0),
        ModParam("add_username", int, 0),
        ModParam("enable_socket_mismatch_warning", int, 1),
        ModParam("custom_user_avp", str, None),
        ModParam("force_send_socket", int, 0),
        ModParam("ignore_sips", int, 0),
        ModParam("sockname_mode", int, 0),
    ),
    pvs=(
        PvExport("route_uri"),
        PvExport("fti"),
        PvExport("tti"),
        PvExport("rdir", inner=True),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``loose_route_mode``
