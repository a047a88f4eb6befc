"""Media relay control for the RTPProxy daemon: SDP rewriting to anchor RTP
streams.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.

**The protocol** (rtpproxy's command protocol, one UDP datagram per command,
``<cookie> <command>``, answered by ``<cookie> <result>\\n``), as Kamailio 5.6.3 sends
it (captured on loopback with a peer answering on ``rtpproxy_sock``):

- offer, one per ``m=`` line numbered from 1: ``U<codecs> <call-id> <ip> <port>
  <from-tag>;<n>`` (plus `` <to-tag>;<n>`` in a dialog); ``<codecs>`` is ``c`` and
  the ``m=`` line's payload types joined by ``,`` (``Uc0,8``); the address is the
  message's source address (the flag ``r``, trust address, sends the SDP's instead);
- answer: ``L<codecs> <call-id> <ip> <port> <to-tag>;<n> <from-tag>;<n>``; an answer
  needs a To tag (-1 without one, nothing sent);
- delete: ``D <call-id> <from-tag>`` (plus `` <to-tag>`` when present);
- the result is ``<port> <ip>`` (the media address to put in the SDP; the port alone
  keeps the proxy's address) or ``E<n>`` for an error.

The SDP gets the new port on the ``m=`` line and the new address on the ``c=``
lines and the ``o=`` line (measured with and without the ``o`` flag), then
``nortpproxy_str`` appended. Measured: ``rtpproxy_manage("co")`` on an INVITE with
SDP sent ``Uc0,8 <callid> 127.0.0.1 4000 1;1`` and, answered ``35000 127.0.0.8``,
forwarded ``o=- 1 1 IN IP4 127.0.0.8``, ``c=IN IP4 127.0.0.8``, ``m=audio 35000
RTP/AVP 0 8`` and ``a=nortpproxy:yes``; on BYE and CANCEL ``D <callid> 1``.

**Blocking**: as in Kamailio and as the rtpengine module here, the call waits for the
answer (``rtpproxy_tout`` seconds per try, ``rtpproxy_retr`` retries) and blocks the
worker meanwhile. Only ``udp:`` sockets are supported (not ``unix:``).

``rtpproxy_manage`` chooses like rtpengine's: INVITE with SDP: offer; ACK with SDP:
answer; BYE, CANCEL, failure route or a reply >= 300 to INVITE: delete; a 1xx/2xx
reply with SDP: answer when the INVITE had SDP, else offer.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Final

from kcc_runtime.context import Context
from kcc_runtime.exports import (
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
    "RtpproxyClient",
    "rtpproxy_answer",
    "rtpproxy_destroy",
    "rtpproxy_manage",
    "rtpproxy_offer",
    "unforce_rtp_proxy",
]

log = logging.getLogger("kcc_runtime.rtpproxy")

_MEDIA_RE: Final = re.compile(rb"(?m)^m=[^ \r\n]+ (\d+)(?:/\d+)? [^ \r\n]+((?: [^ \r\n]+)*)")
_CONN_RE: Final = re.compile(rb"(?m)^c=IN[ \t]+IP[46][ \t]+([^ \t\r\n/]+)")
_ORIGIN_RE: Final = re.compile(rb"(?m)^o=[^\r\n]* IP[46] ([^ \t\r\n]+)")
_counter = itertools.count(0)


class RtpproxyClient:
    """One process's channel to an rtpproxy (``host``, ``port``): text commands over
    :class:`~kcc_runtime.mediactl.CookieClient`."""

    def __init__(self, host: str, port: int, timeout: float = 1.0, retries: int = 5) -> None:
        self.channel = CookieClient(host, port, "RTP proxy", log, timeout, retries)

    def command(self, text: str) -> str | None:
        """Send ``text``; the answer without cookie and newline, None on timeout."""
        cookie = f"{os.getpid()}_{next(_counter)}".encode("ascii")
        rest = self.channel.exchange(cookie, text.encode("utf-8", "surrogateescape"))
        return None if rest is None else rest.decode("utf-8", "replace").strip()


_clients: dict[tuple[str, int, float, int], RtpproxyClient] = {}


def _client(ctx: Context) -> RtpproxyClient | None:
    spec = ctx.proc.modparams.get(("rtpproxy", "rtpproxy_sock"), "NONE")
    if not isinstance(spec, str) or spec == "NONE":
        log.error("no rtpproxy_sock configured")
        return None
    first = spec.split()[0].split("=", 1)[-1]
    proto, _, rest = first.partition(":")
    host, _, port = rest.rpartition(":")
    if proto not in ("udp", "udp6") or not port.isdigit():
        log.error("rtpproxy_sock %s: only udp:host:port sockets are supported", first)
        return None
    timeout = float(ctx.proc.modparam_int("rtpproxy", "rtpproxy_tout", 1))
    retries = ctx.proc.modparam_int("rtpproxy", "rtpproxy_retr", 5)
    key = (host.strip("[]"), int(port), timeout, retries)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = RtpproxyClient(*key)
    return client


def _tags(msg: Message) -> tuple[str | None, str | None, str | None]:
    try:
        call_id = msg.call_id
        f = msg.from_
        t = msg.to
    except SipParseError:
        return None, None, None
    return call_id, None if f is None else f.tag, None if t is None else t.tag


def _nortpproxy(ctx: Context) -> bytes:
    value = ctx.proc.modparams.get(("rtpproxy", "nortpproxy_str"), "a=nortpproxy:yes\\r\\n")
    text = value if isinstance(value, str) else ""
    return text.replace("\\r", "\r").replace("\\n", "\n").encode("utf-8", "surrogateescape")


def _force(ctx: Context, flags: str, offer: bool) -> int:
    msg = ctx.msg
    call_id, from_tag, to_tag = _tags(msg)
    if not call_id or not from_tag:
        log.error("can't get Call-ID or From tag")
        return -1
    if not offer and not to_tag:
        log.error("can't get To tag")
        return -1
    body = current_body(msg)
    if not body:
        log.error("can't extract body from the message")
        return -1
    client = _client(ctx)
    if client is None:
        return -1
    medias = list(_MEDIA_RE.finditer(body))
    if not medias:
        log.error("no m= line in the SDP")
        return -1
    conns = list(_CONN_RE.finditer(body))
    edits: list[tuple[int, int, bytes]] = []
    new_ip: bytes | None = None
    for n, media in enumerate(medias, start=1):
        # the media's address: its own c= line, else the session-level one
        stop = medias[n].start() if n < len(medias) else len(body)
        session = [c.group(1) for c in conns if c.start() < medias[0].start()]
        own = [c.group(1) for c in conns if media.start() < c.start() < stop]
        address = (own or session or [None])[0]
        if "r" in flags and address is not None:
            ip = address.decode("ascii", "replace")
        else:
            ip = ctx.received.src_ip
        codecs = "c" + ",".join(p.decode("ascii", "replace") for p in media.group(2).split())
        cmd = "U" if offer else "L"
        first_tag, second_tag = (from_tag, to_tag) if offer else (to_tag, from_tag)
        text = f"{cmd}{codecs} {call_id} {ip} {media.group(1).decode()} {first_tag};{n}"
        if second_tag:
            text += f" {second_tag};{n}"
        answer = client.command(text)
        if answer is None:
            return -1
        parts = answer.split()
        if not parts or not parts[0].isdigit():
            log.error("incorrect port %r in reply from RTP proxy", answer)
            return -1
        new_ip = (parts[1] if len(parts) > 1 else client.channel.host).encode("ascii", "replace")
        edits.append((media.start(1), media.end(1), parts[0].encode("ascii")))
    assert new_ip is not None
    for c in conns:
        edits.append((c.start(1), c.end(1), new_ip))
    origin = _ORIGIN_RE.search(body)
    if origin is not None:
        edits.append((origin.start(1), origin.end(1), new_ip))
    out: list[bytes] = []
    cur = 0
    for start, end, data in sorted(edits):
        out += [body[cur:start], data]
        cur = end
    out.append(body[cur:])
    if not body.endswith(b"\n"):
        out.append(b"\r\n")
    out.append(_nortpproxy(ctx))
    replace_body(msg, b"".join(out))
    return 1


def rtpproxy_offer(ctx: Context, flags: str = "", ip: str = "") -> int:
    """``rtpproxy_offer([flags[, ip]])``: relay the offer's media: 1, -1 on failure.
    (The ``ip`` argument, the address to put in the SDP, is not used: the
    proxy's answer gives it.)"""
    return _force(ctx, flags, offer=True)


def rtpproxy_answer(ctx: Context, flags: str = "", ip: str = "") -> int:
    """``rtpproxy_answer([flags[, ip]])``: relay the answer's media: 1, -1."""
    return _force(ctx, flags, offer=False)


def unforce_rtp_proxy(ctx: Context, flags: str = "") -> int:
    """``unforce_rtp_proxy([flags])``: delete the session: ``D <call-id> <from-tag>
    [<to-tag>]``: 1, -1."""
    call_id, from_tag, to_tag = _tags(ctx.msg)
    if not call_id or not from_tag:
        log.error("can't get Call-ID or From tag")
        return -1
    client = _client(ctx)
    if client is None:
        return -1
    text = f"D {call_id} {from_tag}" + (f" {to_tag}" if to_tag else "")
    return -1 if client.command(text) is None else 1


def rtpproxy_destroy(ctx: Context, flags: str = "") -> int:
    """``rtpproxy_destroy([flags])``: the same as :func:`unforce_rtp_proxy`."""
    return unforce_rtp_proxy(ctx, flags)


def _has_body(msg: Message) -> bool:
    return msg.body_end > msg.body_start


def rtpproxy_manage(ctx: Context, flags: str = "", ip: str = "") -> int:
    """``rtpproxy_manage([flags[, ip]])``: offer, answer or delete by message."""
    msg = ctx.msg
    if ctx.kind is Route.FAILURE:
        return unforce_rtp_proxy(ctx, flags)
    if isinstance(msg, Request):
        method = msg.method.upper()
        if method in ("BYE", "CANCEL"):
            return unforce_rtp_proxy(ctx, flags)
        if method == "INVITE" and _has_body(msg):
            return _force(ctx, flags, offer=True)
        if method == "ACK" and _has_body(msg):
            return _force(ctx, flags, offer=False)
        return -1
    try:
        cseq = msg.cseq
    except SipParseError:
        return -1
    if isinstance(msg, Response) and cseq is not None and cseq.method.upper() == "INVITE":
        if msg.status >= 300:
            return unforce_rtp_proxy(ctx, flags)
        if _has_body(msg):
            cell = ctx.tm_cell
            offered = cell is None or _has_body(cell.request)
            return _force(ctx, flags, offer=not offered)
    return -1


EXPORTS = ModuleExports(
    name="rtpproxy",
    cmds=(
        # offer/answer
        Cmd("unforce_rtp_proxy", (), Route.ANY, impl=unforce_rtp_proxy),
        Cmd("rtpproxy_destroy", (), Route.ANY, impl=rtpproxy_destroy),
        Cmd(
            "unforce_rtp_proxy", (STR,), Route.ANY, impl=unforce_rtp_proxy, fixup="fixup_spve_null"
        ),
        Cmd("rtpproxy_destroy", (STR,), Route.ANY, impl=rtpproxy_destroy, fixup="fixup_spve_null"),
        Cmd("rtpproxy_offer", (), Route.ANY, impl=rtpproxy_offer),
        Cmd("rtpproxy_offer", (STR,), Route.ANY, impl=rtpproxy_offer, fixup="fixup_spve_null"),
        Cmd("rtpproxy_offer", (STR, STR), Route.ANY, impl=rtpproxy_offer, fixup="fixup_spve_spve"),
        Cmd("rtpproxy_answer", (), Route.ANY, impl=rtpproxy_answer),
        Cmd("rtpproxy_answer", (STR,), Route.ANY, impl=rtpproxy_answer, fixup="fixup_spve_null"),
        Cmd(
            "rtpproxy_answer", (STR, STR), Route.ANY, impl=rtpproxy_answer, fixup="fixup_spve_spve"
        ),
        Cmd("rtpproxy_manage", (), Route.ANY, impl=rtpproxy_manage),
        Cmd("rtpproxy_manage", (STR,), Route.ANY, impl=rtpproxy_manage, fixup="fixup_spve_null"),
        Cmd(
            "rtpproxy_manage", (STR, STR), Route.ANY, impl=rtpproxy_manage, fixup="fixup_spve_spve"
        ),
        # streams
        Cmd("rtpproxy_stream2uac", (STR, INT), Route.ANY, fixup="fixup_var_str_int"),
        Cmd("rtpproxy_stream2uas", (STR, INT), Route.ANY, fixup="fixup_var_str_int"),
        Cmd("rtpproxy_stop_stream2uac", (), Route.ANY),
        Cmd("rtpproxy_stop_stream2uas", (), Route.ANY),
        # relay sets
        Cmd("set_rtp_proxy_set", (INT,), Route.ANY, fixup="fixup_set_id"),
        # miscellaneous
        Cmd("start_recording", (), Route.ANY),
    ),
    params=(
        ModParam("nortpproxy_str", str, "a=nortpproxy:yes\\r\\n"),
        ModParam("rtpproxy_sock", str, "NONE", repeatable=True),
        ModParam("rtpproxy_disable_tout", int, 60),
        ModParam("rtpproxy_retr", int, 5),
        ModParam("rtpproxy_tout", int, 1),
        ModParam("timeout_socket", str, ""),
        ModParam("ice_candidate_priority_avp", str, None),
        ModParam("extra_id_pv", str, None),
        ModParam("db_url", str, None),
        ModParam("table_name", str, "rtpproxy"),
        ModParam("rtp_inst_pvar", str, None),
    ),
    pvs=(
        PvExport("rtpstat"),
        PvExport("rtppstat"),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``timeout_tag_pv``
