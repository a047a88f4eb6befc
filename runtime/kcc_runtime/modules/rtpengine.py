"""Media relay control for the rtpengine daemon: offer/answer SDP rewriting,
recording and media playback.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.

**The ng protocol.** Each command is one UDP datagram ``<cookie> <bencoded dict>``
to ``rtpengine_sock`` (``udp:host:port``; the first one given is used), answered by
``<cookie> <bencoded dict>`` with ``result`` ``ok`` (or ``error`` and
``error-reason``) and, for ``offer``/``answer``, the rewritten ``sdp``. The request is
built as Kamailio 5.6.3 builds it (captured on loopback: ``rtpengine_manage("co")``
on an INVITE sent ``d8:supportsl10:load limite3:sdp<..>5:flagsl2:coe7:call-id<..>
13:received-froml3:IP49:127.0.0.1e8:from-tag1:17:command5:offere``): ``supports``,
``sdp``, the ``key=value`` items of the flags string in order, ``direction``,
``flags`` (every other word, unknown ones included: rtpengine ignores them),
``replace`` (``replace-origin``, ``replace-session-connection``),
``transport-protocol`` (``RTP/AVP`` ...), ``rtcp-mux``, ``call-id``, ``via-branch``,
``received-from`` (the source address), ``from-tag``, ``to-tag`` (answers, and any
message whose To has a tag, except delete without ``to-tag`` in the flags),
``command``. The list items exist for offer and answer only: a delete drops them
(measured on 5.6.3 through tests/integration/test_nat.py, whose relay records the
commands of Kamailio and kcc; see :func:`build_command`). Deviation:
``via-branch=extra|next|auto-next|auto-extra`` are refused (logged, -1).

**Blocking.** As in Kamailio, the call is synchronous: the route waits for the
answer ``rtpengine_tout_ms`` (1000 ms) per try, ``rtpengine_retr`` (5) tries more.
kcc's worker is one asyncio loop running routes synchronously, so the wait blocks
that worker (every other message it would receive waits too, exactly like a
Kamailio worker process blocked in ``rtpp_function_call``); the other workers are
not affected. The socket is a plain blocking UDP socket with a timeout, one per
process, connected to the daemon.

``rtpengine_manage`` follows README 5.8: INVITE with SDP: offer; ACK with SDP:
answer; BYE, CANCEL or a failure route: delete; a reply to INVITE >= 300: delete;
a 1xx/2xx reply to INVITE with SDP: answer when the INVITE had SDP (the
transaction's request), else offer.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Final

from kcc_runtime import bencode
from kcc_runtime.context import Context
from kcc_runtime.exports import (
    ANY,
    INT,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.mediactl import CookieClient
from kcc_runtime.sdp import current_body, replace_body
from kcc_runtime.sip import Message, Request, Response, SipParseError

__all__ = [
    "EXPORTS",
    "NgClient",
    "build_command",
    "rtpengine_answer",
    "rtpengine_delete",
    "rtpengine_manage",
    "rtpengine_offer",
]

log = logging.getLogger("kcc_runtime.rtpengine")

#: transport words and the transport-protocol they select (Kamailio's ``transports``
#: table: bit 0x100 "given", 0x001 SAVP, 0x002 AVPF, 0x004 UDP/TLS)
_TRANSPORTS: Final = {
    0x000: "RTP/AVP",
    0x001: "RTP/SAVP",
    0x002: "RTP/AVPF",
    0x003: "RTP/SAVPF",
    0x004: "UDP/TLS/RTP/SAVP",
    0x006: "UDP/TLS/RTP/SAVPF",
}
_PROTOCOL_WORDS: Final = {
    "RTP/AVP": 0x100,
    "RTP/SAVP": 0x101,
    "RTP/AVPF": 0x102,
    "RTP/SAVPF": 0x103,
    "UDP/TLS/RTP/SAVP": 0x104,
    "UDP/TLS/RTP/SAVPF": 0x106,
}
_counter = itertools.count(1)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class NgClient:
    """One process's channel to an rtpengine daemon (``host``, ``port``): "ng"
    commands, bencoded dictionaries, over :class:`~kcc_runtime.mediactl.CookieClient`."""

    def __init__(self, host: str, port: int, timeout: float = 1.0, retries: int = 5) -> None:
        self.channel = CookieClient(host, port, "rtpengine", log, timeout, retries)

    def request(self, command: dict[str, object]) -> dict[str, bencode.BValue] | None:
        """Send ``command`` and wait for its answer (``retries`` + 1 tries of
        ``timeout`` each); None when no valid answer came."""
        cookie = b"%d_%d_%d" % (0, os.getpid(), next(_counter))
        rest = self.channel.exchange(cookie, bencode.encode(command))
        if rest is None:
            return None
        try:
            value = bencode.decode(rest)
        except bencode.BencodeError as exc:
            log.error("invalid bencoded answer from rtpengine: %s", exc)
            return None
        return value if isinstance(value, dict) else None


_clients: dict[tuple[str, int, float, int], NgClient] = {}


def _client(ctx: Context) -> NgClient | None:
    spec = ctx.proc.modparams.get(("rtpengine", "rtpengine_sock"), "NONE")
    if not isinstance(spec, str) or spec == "NONE":
        log.error("no rtpengine_sock configured")
        return None
    first = spec.split()[0].split("=", 1)[-1]
    proto, _, rest = first.partition(":")
    if proto not in ("udp", "udp6"):
        log.error("rtpengine_sock %s: only udp: sockets are supported", first)
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        log.error("bad rtpengine_sock %s", first)
        return None
    timeout = ctx.proc.modparam_int("rtpengine", "rtpengine_tout_ms", 1000) / 1000.0
    retries = ctx.proc.modparam_int("rtpengine", "rtpengine_retr", 5)
    key = (host, int(port), timeout, retries)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = NgClient(host, int(port), timeout, retries)
    return client


def _tag(msg: Message, header: str) -> str | None:
    try:
        value = msg.from_ if header == "from" else msg.to
    except SipParseError:
        return None
    return None if value is None else value.tag


class FlagsError(ValueError):
    """A flags word Kamailio refuses (its ``error processing flag`` log line)."""


def _via_branch(msg: Message, which: int) -> str | None:
    try:
        vias = msg.vias
    except SipParseError:
        return None
    if len(vias) < which:
        return None
    return vias[which - 1].branch


def build_command(ctx: Context, op: str, flags: str, sdp: bytes | None) -> dict[str, object] | None:
    """The ng dictionary for ``op`` (``offer``, ``answer``, ``delete``) on
    ``ctx.msg`` with the script's ``flags`` string; None (logged) without a
    Call-ID or From tag, or with a flag Kamailio refuses.

    The words are read as Kamailio 5.6's ``parse_flags`` reads them: ``replace-X``
    and ``rtcp-mux-X`` go to the ``replace`` and ``rtcp-mux`` lists; ``direction=X``,
    ``internal`` and ``external`` to ``direction``; transport words (``RTP/AVP``,
    ``RTP``, ``AVP``, ``SRTP``, ``AVPF``, ``DTLS`` ...) make ``transport-protocol``;
    ``call-id=``, ``from-tag=``, ``to-tag[=]`` replace the message's values;
    ``TOS=n``, ``repacketize=n`` and ``delete-delay=n`` are integers; other
    ``key=value`` words are dictionary items, other words ``flags``. The lists
    (``flags``, ``direction``, ``replace``, ``rtcp-mux``) exist only for offer and
    answer: for a delete their words are dropped (measured: 5.6.3's delete from
    ``rtpengine_manage("replace-origin replace-session-connection")`` carries no
    ``replace``). A request's answer (an ACK with SDP) and a reply's offer swap
    the tags: ``from-tag`` is the To tag (the side that made the offer)."""
    msg = ctx.msg
    try:
        call_id = msg.call_id
    except SipParseError:
        call_id = None
    from_tag = _tag(msg, "from")
    if not call_id or not from_tag:
        log.error("can't get Call-ID or From tag")
        return None
    to_tag = _tag(msg, "to")
    lists = op in ("offer", "answer")
    out: dict[str, object] = {"supports": ["load limit"]}
    if sdp is not None:
        out["sdp"] = sdp
    items: list[tuple[str, object]] = []
    directions: list[str] = []
    words: list[str] = []
    replace: list[str] = []
    rtcp_mux: list[str] = []
    transport = 0
    via = 0
    send_to = op != "delete"
    try:
        for word in flags.split():
            key, sep, value = word.partition("=")
            given = value if sep else None
            if key.startswith("replace-"):
                replace.append(key[len("replace-") :])
            elif key.startswith("rtcp-mux-"):
                rtcp_mux.append(key[len("rtcp-mux-") :])
            elif key in _PROTOCOL_WORDS and given is None:
                transport = _PROTOCOL_WORDS[key]
            elif key in ("RTP", "AVP") and given is None:
                transport = (transport | 0x100) & ~(0x001 if key == "RTP" else 0x002)
            elif key in ("SRTP", "AVPF", "DTLS") and given is None:
                transport |= {"SRTP": 0x101, "AVPF": 0x102, "DTLS": 0x104}[key]
            elif key == "TOS" and given is not None:
                items.append(("TOS", _atoi(given)))
            elif key == "to-tag":
                if given is not None:
                    to_tag = given
                send_to = True
            elif key in ("call-id", "from-tag"):
                if given is None:
                    raise FlagsError(f"error processing flag `{key}': missing value")
                if key == "call-id":
                    call_id = given
                else:
                    from_tag = given
            elif key in ("internal", "external"):
                directions.append(key)
            elif key == "direction":
                directions.append(given or "")
            elif key == "via-branch":
                if given is None:
                    raise FlagsError("error processing flag `via-branch': missing value")
                if given in ("1", "2"):
                    via = int(given)
                elif given == "auto":
                    via = 1 if isinstance(msg, Request) else 2
                else:
                    raise FlagsError(
                        f"error processing flag `via-branch' (value '{given}'): not supported"
                    )
            elif key == "repacketize":
                if given is None or not given[:1].isdigit() or not _atoi(given):
                    raise FlagsError("error processing flag `repacketize': invalid value")
                items.append(("repacketize", _atoi(given)))
            elif key == "force-answer":
                if op != "offer":
                    raise FlagsError(
                        "error processing flag `force-answer': "
                        "cannot force answer in non-offer command"
                    )
                op = "answer"
            else:
                if key == "delete-delay" and given is not None:
                    items.append(("delete delay", _atoi(given)))
                if given is None:
                    words.append(key)
                else:
                    items.append((key, given))
    except FlagsError as exc:
        log.error("%s", exc)
        return None
    for key, item in items:
        out[key] = item
    if lists and directions:
        out["direction"] = directions
    if lists and words:
        out["flags"] = words
    if lists and replace:
        out["replace"] = replace
    if transport & 0x100:
        out["transport-protocol"] = _TRANSPORTS.get(transport & 0x007, "RTP/AVP")
    if lists and rtcp_mux:
        out["rtcp-mux"] = rtcp_mux
    out["call-id"] = call_id
    if via:
        branch = _via_branch(msg, via)
        if not branch:
            log.error("can't get Via branch/extra ID")
            return None
        out["via-branch"] = branch
    r = ctx.received
    out["received-from"] = ["IP6" if ":" in r.src_ip else "IP4", r.src_ip]
    request = isinstance(msg, Request)
    if (request and op != "answer") or (not request and op in ("delete", "answer")):
        out["from-tag"] = from_tag
        if send_to and to_tag:
            out["to-tag"] = to_tag
    else:
        if not to_tag:
            log.error("No to-tag present")
            return None
        out["from-tag"] = to_tag
        out["to-tag"] = from_tag
    out["command"] = op
    return out


def _atoi(text: str) -> int:
    """C's ``atoi``: the leading digits (with a sign), 0 when there are none."""
    digits = ""
    for i, ch in enumerate(text):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _call(ctx: Context, op: str, flags: str) -> int:
    msg = ctx.msg
    sdp: bytes | None = None
    if op in ("offer", "answer"):
        sdp = current_body(msg)
        if not sdp:
            log.error("can't extract body from the message")
            return -1
    command = build_command(ctx, op, flags, sdp)
    client = _client(ctx)
    if command is None or client is None:
        return -1
    answer = client.request(command)
    if answer is None:
        return -1
    result = answer.get("result")
    if result != b"ok":
        reason = answer.get("error-reason", b"")
        log.error(
            "proxy replied with error: %s",
            _text(reason) if isinstance(reason, bytes) else reason,
        )
        return -1
    if sdp is not None:
        new = answer.get("sdp")
        if not isinstance(new, bytes):
            log.error("no SDP body in proxy reply")
            return -1
        replace_body(msg, new)
    return 1


def rtpengine_offer(ctx: Context, flags: str = "") -> int:
    """``rtpengine_offer([flags])``: send the SDP as an offer, put rtpengine's SDP
    in its place: 1, -1 on any failure."""
    return _call(ctx, "offer", flags)


def rtpengine_answer(ctx: Context, flags: str = "") -> int:
    """``rtpengine_answer([flags])``: the same with an answer."""
    return _call(ctx, "answer", flags)


def rtpengine_delete(ctx: Context, flags: str = "") -> int:
    """``rtpengine_delete([flags])``: end the call's media session: 1, -1."""
    return _call(ctx, "delete", flags)


def _has_sdp(msg: Message) -> bool:
    return msg.body_end > msg.body_start


def rtpengine_manage(ctx: Context, flags: str = "") -> int:
    """``rtpengine_manage([flags])``: offer, answer or delete by message (README 5.8)."""
    msg = ctx.msg
    if ctx.kind is Route.BRANCH_FAILURE:
        return 1
    if ctx.kind is Route.FAILURE:
        return _call(ctx, "delete", flags)
    try:
        cseq = msg.cseq
    except SipParseError:
        cseq = None
    if isinstance(msg, Request):
        method = msg.method.upper()
        if method in ("BYE", "CANCEL"):
            return _call(ctx, "delete", flags)
        if method == "INVITE" and _has_sdp(msg):
            return _call(ctx, "offer", flags)
        if method == "ACK" and _has_sdp(msg):
            return _call(ctx, "answer", flags)
        return -1
    if isinstance(msg, Response) and cseq is not None and cseq.method.upper() == "INVITE":
        if msg.status >= 300:
            return _call(ctx, "delete", flags)
        if _has_sdp(msg):
            cell = ctx.tm_cell
            offered = cell is None or _has_sdp(cell.request)
            return _call(ctx, "answer" if offered else "offer", flags)
    return -1


EXPORTS = ModuleExports(
    name="rtpengine",
    cmds=(
        # offer/answer
        Cmd("rtpengine_offer", (), Route.ANY, impl=rtpengine_offer),
        Cmd("rtpengine_offer", (STR,), Route.ANY, impl=rtpengine_offer, fixup="fixup_spve_null"),
        Cmd("rtpengine_answer", (), Route.ANY, impl=rtpengine_answer),
        Cmd("rtpengine_answer", (STR,), Route.ANY, impl=rtpengine_answer, fixup="fixup_spve_null"),
        Cmd("rtpengine_manage", (), Route.ANY, impl=rtpengine_manage),
        Cmd("rtpengine_manage", (STR,), Route.ANY, impl=rtpengine_manage, fixup="fixup_spve_null"),
        Cmd("rtpengine_delete", (), Route.ANY, impl=rtpengine_delete),
        Cmd("rtpengine_delete", (STR,), Route.ANY, impl=rtpengine_delete, fixup="fixup_spve_null"),
        # recording and media
        Cmd("start_recording", (), Route.ANY),
        Cmd("start_recording", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("stop_recording", (), Route.ANY),
        Cmd("stop_recording", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("block_dtmf", (), Route.ANY),
        Cmd("unblock_dtmf", (), Route.ANY),
        Cmd("block_media", (), Route.ANY),
        Cmd("unblock_media", (), Route.ANY),
        Cmd("silence_media", (), Route.ANY),
        Cmd("unsilence_media", (), Route.ANY),
        Cmd("block_dtmf", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("unblock_dtmf", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("block_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("unblock_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("silence_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("unsilence_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("play_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("stop_media", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("stop_media", (), Route.ANY),
        Cmd("play_dtmf", (STR,), Route.ANY, fixup="fixup_spve_null"),
        # relay sets
        Cmd("set_rtpengine_set", (INT,), Route.ANY, fixup="fixup_set_id"),
        Cmd("set_rtpengine_set", (INT, INT), Route.ANY, fixup="fixup_set_id"),
        # miscellaneous
        Cmd("start_forwarding", (), Route.ANY),
        Cmd("stop_forwarding", (), Route.ANY),
        Cmd("start_forwarding", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("stop_forwarding", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpengine_info", (), Route.ANY),
        Cmd("rtpengine_info", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpengine_query", (), Route.ANY),
        Cmd("rtpengine_query", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("rtpengine_query_v", (ANY, ANY), Route.ANY, fixup="fixup_rtpengine_query_v"),
    ),
    params=(
        ModParam("rtpengine_sock", str, "NONE", repeatable=True),
        ModParam("rtpengine_disable_tout", int, 60),
        ModParam("aggressive_redetection", int, 1),
        ModParam("rtpengine_retr", int, 5),
        ModParam("queried_nodes_limit", int, None),
        ModParam("rtpengine_tout_ms", int, 1000),
        ModParam("rtpengine_allow_op", int, 0),
        ModParam("control_cmd_tos", int, None),
        ModParam("db_url", str, None),
        ModParam("table_name", str, None),
        ModParam("setid_col", str, None),
        ModParam("url_col", str, None),
        ModParam("weight_col", str, None),
        ModParam("disabled_col", str, None),
        ModParam("extra_id_pv", str, None),
        ModParam("setid_avp", str, None),
        ModParam("force_send_interface", str, None),
        ModParam("rtp_inst_pvar", str, None),
        ModParam("write_sdp_pv", str, None),
        ModParam("read_sdp_pv", str, None),
        ModParam("hash_table_tout", int, 3600),
        ModParam("hash_table_size", int, 256),
        ModParam("setid_default", int, None),
        ModParam("media_duration", str, None),
        ModParam("hash_algo", int, 0),
        ModParam("mos_min_pv", str, None),
        ModParam("mos_min_at_pv", str, None),
        ModParam("mos_min_packetloss_pv", str, None),
        ModParam("mos_min_jitter_pv", str, None),
        ModParam("mos_min_roundtrip_pv", str, None),
        ModParam("mos_min_roundtrip_leg_pv", str, None),
        ModParam("mos_max_pv", str, None),
        ModParam("mos_max_at_pv", str, None),
        ModParam("mos_max_packetloss_pv", str, None),
        ModParam("mos_max_jitter_pv", str, None),
        ModParam("mos_max_roundtrip_pv", str, None),
        ModParam("mos_max_roundtrip_leg_pv", str, None),
        ModParam("mos_average_pv", str, None),
        ModParam("mos_average_packetloss_pv", str, None),
        ModParam("mos_average_jitter_pv", str, None),
        ModParam("mos_average_roundtrip_pv", str, None),
        ModParam("mos_average_roundtrip_leg_pv", str, None),
        ModParam("mos_average_samples_pv", str, None),
        ModParam("mos_A_label_pv", str, None),
        ModParam("mos_min_A_pv", str, None),
        ModParam("mos_min_at_A_pv", str, None),
        ModParam("mos_min_packetloss_A_pv", str, None),
        ModParam("mos_min_jitter_A_pv", str, None),
        ModParam("mos_min_roundtrip_A_pv", str, None),
        ModParam("mos_min_roundtrip_leg_A_pv", str, None),
        ModParam("mos_max_A_pv", str, None),
        ModParam("mos_max_at_A_pv", str, None),
        ModParam("mos_max_packetloss_A_pv", str, None),
        ModParam("mos_max_jitter_A_pv", str, None),
        ModParam("mos_max_roundtrip_A_pv", str, None),
        ModParam("mos_max_roundtrip_leg_A_pv", str, None),
        ModParam("mos_average_A_pv", str, None),
        ModParam("mos_average_packetloss_A_pv", str, None),
        ModParam("mos_average_jitter_A_pv", str, None),
        ModParam("mos_average_roundtrip_A_pv", str, None),
        ModParam("mos_average_roundtrip_leg_A_pv", str, None),
        ModParam("mos_average_samples_A_pv", str, None),
        ModParam("mos_B_label_pv", str, None),
        ModParam("mos_min_B_pv", str, None),
        ModParam("mos_min_at_B_pv", str, None),
        ModParam("mos_min_packetloss_B_pv", str, None),
        ModParam("mos_min_jitter_B_pv", str, None),
        ModParam("mos_min_roundtrip_B_pv", str, None),
        ModParam("mos_min_roundtrip_leg_B_pv", str, None),
        ModParam("mos_max_B_pv", str, None),
        ModParam("mos_max_at_B_pv", str, None),
        ModParam("mos_max_packetloss_B_pv", str, None),
        ModParam("mos_max_jitter_B_pv", str, None),
        ModParam("mos_max_roundtrip_B_pv", str, None),
        ModParam("mos_max_roundtrip_leg_B_pv", str, None),
        ModParam("mos_average_B_pv", str, None),
        ModParam("mos_average_packetloss_B_pv", str, None),
        ModParam("mos_average_jitter_B_pv", str, None),
        ModParam("mos_average_roundtrip_B_pv", str, None),
        ModParam("mos_average_roundtrip_leg_B_pv", str, None),
        ModParam("mos_average_samples_B_pv", str, None),
        ModParam("wsapi", str, None),
    ),
    pvs=(
        PvExport("rtpstat"),
        PvExport("rtpestat"),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``play_media/2``, ``rtpengine_offer/2``, ``rtpengine_answer/2``, ``rtpengine_info/2``,
#   ``rtpengine_manage/2``, ``rtpengine_delete/2``, ``rtpengine_destroy/0``,
#   ``rtpengine_destroy/1``, ``rtpengine_destroy/2``, ``rtpengine_query/2``,
#   ``rtpengine_connect/0``, ``rtpengine_connect/1``, ``rtpengine_connect/2``,
#   ``rtpengine_subscribe_request/4``, ``rtpengine_subscribe_request/5``,
#   ``rtpengine_subscribe_answer/1``, ``rtpengine_subscribe_answer/2``, ``rtpengine_unsubscribe/1``,
#   ``rtpengine_unsubscribe/2``
# parameters ``ping_mode``, ``ping_interval``, ``write_sdp_pv_mode``, ``dtmf_events_sock``,
#   ``dtmf_event_callid``, ``dtmf_event_source_tag``, ``dtmf_event_timestamp``, ``dtmf_event``,
#   ``dtmf_event_source_label``, ``dtmf_event_tags``, ``dtmf_event_type``, ``dtmf_event_source_ip``,
#   ``dtmf_event_duration``, ``dtmf_event_volume``, ``event_callback``, ``enable_dmq``,
#   ``dmq_peer_id``
