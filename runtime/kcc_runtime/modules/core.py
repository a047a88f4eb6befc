"""Kamailio's core actions written like functions (``forward``, ``setflag``, ``seturi`` ...)
and the pseudo-variables the core registers itself (``$rc``, ``$env(NAME)`` ...).

``drop``, ``exit``, ``return`` and ``break`` are statements, not functions. The grammar
(``cfg.y``) takes literal tokens for almost every core action, so their arguments must be
constants; ``route()`` and ``cfg_select()`` take expressions. In ``onsend_route`` only
the flag functions, ``log`` and the ``set_{forward,reply}_*`` switches are allowed
(Kamailio 5.6 also rejects ``route()`` there, although newer grammars list it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    ANY,
    HOSTPORT,
    INT,
    INT_CONST,
    STR_CONST,
    Arg,
    Cmd,
    FlagKind,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.memory import parse_cache
from kcc_runtime.pv import current_ruri, set_ruri
from kcc_runtime.sip import Request, SipParseError, parse_uri
from kcc_runtime.sip.uri import CACHED_MAX_LEN
from kcc_runtime.values import Value

__all__ = [
    "EXPORTS",
    "add_rport",
    "force_rport",
    "force_send_socket",
    "forward",
    "forward_sctp",
    "forward_tcp",
    "forward_tls",
    "forward_udp",
    "isflagset",
    "log",
    "prefix",
    "resetflag",
    "revert_uri",
    "rewritehost",
    "rewritehostport",
    "rewritehostporttrans",
    "rewriteport",
    "rewriteuri",
    "rewriteuser",
    "rewriteuserpass",
    "set_advertised_address",
    "set_advertised_port",
    "set_forward_close",
    "set_forward_no_connect",
    "set_reply_close",
    "set_reply_no_connect",
    "setflag",
    "strip",
    "strip_tail",
    "uri_host",
    "uri_port",
]

log_ = logging.getLogger("kcc_runtime.core")
#: where ``log()`` writes (Kamailio's core ``log`` action)
script_log = logging.getLogger("kcc_runtime.log")

# ---------------------------------------------------------------------------------
# flags (Kamailio ``flags.c``: 32 message flags, numbers 0..31)
# ---------------------------------------------------------------------------------

MAX_FLAG: Final = 31


def flag_in_range(flag: int) -> bool:
    """Kamailio's ``flag_in_range``: 0..31, with its error log otherwise."""
    if 0 <= flag <= MAX_FLAG:
        return True
    log_.error("flag %d is out of range (0..%d)", flag, MAX_FLAG)
    return False


def setflag(ctx: Context, flag: int) -> int:
    """``setflag(n)``: set message flag ``n`` (bit ``n`` of ``$mf``): 1, or -1 when
    ``n`` is outside 0..31."""
    if not flag_in_range(flag):
        return -1
    ctx.flags |= 1 << flag
    return 1


def resetflag(ctx: Context, flag: int) -> int:
    """``resetflag(n)``: clear message flag ``n``: 1, or -1 out of range."""
    if not flag_in_range(flag):
        return -1
    ctx.flags &= ~(1 << flag) & 0xFFFFFFFF
    return 1


def isflagset(ctx: Context, flag: int) -> int:
    """``isflagset(n)``: 1 when message flag ``n`` is set, -1 when not (or out of range)."""
    if not flag_in_range(flag):
        return -1
    return 1 if ctx.flags & (1 << flag) else -1


# ---------------------------------------------------------------------------------
# the Request-URI family (Kamailio ``action.c``, the SET_*_T / PREFIX_T / STRIP_T case)
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UriParts:
    """A R-URI cut into its raw pieces, as Kamailio's ``parse_uri`` sees them.

    Pieces are the text as written (never unescaped: the rewrite copies bytes).
    ``params`` is the text after the first ``;`` of the host part (without the
    ``;``), ``headers`` after ``?``. For a ``tel:`` URI the whole text after the
    scheme is the user and there is no host (Kamailio moves the number into the
    user part)."""

    scheme: str
    user: str | None
    password: str | None
    host: str | None
    port: str | None
    params: str | None
    headers: str | None

    @property
    def is_tel(self) -> bool:
        return self.scheme in ("tel", "tels")


def split_uri(text: str) -> UriParts | None:
    """Cut ``text`` into :class:`UriParts`; None when it is not a valid SIP/SIPS/TEL
    URI (Kamailio: "bad uri", the action fails). Texts up to ``CACHED_MAX_LEN``
    characters go through the cache below, longer ones (a fuzzer's) are cut each
    time, so the cache's memory stays small."""
    if len(text) > CACHED_MAX_LEN:
        return _split_uri.__wrapped__(text)
    return _split_uri(text)


@parse_cache(maxsize=4096)
def _split_uri(text: str) -> UriParts | None:
    """:func:`split_uri`, remembered.

    The answer is immutable and depends on the text alone, so the last 4096 distinct
    texts are remembered: a proxy sees the same R-URIs and Route entries (its own,
    its backends') over and over."""
    colon = text.find(":")
    scheme = text[:colon].lower() if colon > 0 else ""
    if scheme in ("tel", "tels"):
        rest = text[colon + 1 :]
        return UriParts(scheme, rest, None, None, None, None, None) if rest else None
    if scheme not in ("sip", "sips"):
        return None
    try:
        parse_uri(text.encode("utf-8", "surrogateescape"))
    except SipParseError:
        return None
    rest = text[colon + 1 :]
    headers: str | None = None
    q = rest.find("?")
    if q >= 0:
        rest, headers = rest[:q], rest[q + 1 :]
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
    params: str | None = None
    semi = rest.find(";")
    if semi >= 0:
        rest, params = rest[:semi], rest[semi + 1 :]
    port: str | None = None
    if rest.startswith("["):
        close = rest.find("]")
        host, tail = rest[: close + 1], rest[close + 1 :]
        if tail.startswith(":"):
            port = tail[1:]
    else:
        host, sep, port_text = rest.partition(":")
        port = port_text if sep else None
    return UriParts(scheme, user, password, host, port, params, headers)


def _rewrite(ctx: Context, action: str, arg: str | int) -> int:
    """Build the new R-URI from the current one, piece by piece, as Kamailio's
    ``do_action`` does for ``SET_HOST_T`` & co. (measured against Kamailio 5.6):

    - scheme kept, except that a ``tel:`` URI whose host is set becomes ``sip:``
      with ``;user=phone``;
    - user: replaced (``rewriteuser``), prefixed (``prefix``), cut (``strip``: a
      user shorter than N is removed entirely, no error); written only when not
      empty, and the password only after a user;
    - host (``rewritehost*`` take the whole argument, port included, as written);
    - port: dropped by ``rewritehostport*``, replaced by ``rewriteport`` (an empty
      port removes it; a ``tel:`` URI has none: error);
    - parameters kept (``rewritehostporttrans`` drops ``transport``), then headers.
    """
    current = current_ruri(ctx)
    parts = None if current is None else split_uri(current)
    if parts is None:
        log_.error("bad uri <%s>, dropping packet", current)
        return -1
    sets_host = action in ("host", "hostport", "hostporttrans")
    if action == "port" and parts.is_tel:
        log_.error("port number of a tel: URI cannot be set")
        return -1
    scheme = "sip" if parts.is_tel and sets_host else parts.scheme
    out = [scheme, ":"]
    old_user = parts.user or ""
    if action == "prefix":
        user = str(arg) + old_user
    elif action == "strip":
        n = int(arg)
        user = old_user[n:] if 0 <= n <= len(old_user) else ""
    elif action == "strip_tail":
        n = int(arg)
        user = old_user[: len(old_user) - n] if 0 <= n <= len(old_user) else ""
    elif action in ("user", "userpass"):
        user = str(arg)
    else:
        user = old_user
    if user:
        out.append(user)
        if action != "userpass" and parts.password:
            out += [":", parts.password]
    if sets_host:
        host: str | None = str(arg)
    else:
        host = parts.host
    if host:
        if user:
            out.append("@")
        out.append(host)
    port: str | None
    if action in ("hostport", "hostporttrans"):
        port = None
    elif action == "port":
        port = str(arg)
    else:
        port = parts.port
    if port:
        out += [":", port]
    params = parts.params
    if parts.is_tel and sets_host:
        params = "user=phone"
    if params is not None and action == "hostporttrans":
        kept = [p for p in params.split(";") if p.split("=", 1)[0].strip().lower() != "transport"]
        params = ";".join(kept) if kept else None
    if params is not None:
        out += [";", params]
    if parts.headers is not None:
        out += ["?", parts.headers]
    return 1 if set_ruri(ctx, "".join(out)) else -1


def rewritehost(ctx: Context, host: str) -> int:
    """``rewritehost("h")``: replace the R-URI host (the port stays)."""
    return _rewrite(ctx, "host", host)


def sethost(ctx: Context, host: str) -> int:
    """Alias of :func:`rewritehost`."""
    return _rewrite(ctx, "host", host)


def seth(ctx: Context, host: str) -> int:
    """Alias of :func:`rewritehost`."""
    return _rewrite(ctx, "host", host)


def rewritehostport(ctx: Context, hostport: str) -> int:
    """``rewritehostport("h:p")``: replace host and port with the argument as written
    (``"[2001:db8::1]:5080"`` included); no port in it removes the port."""
    return _rewrite(ctx, "hostport", hostport)


def sethostport(ctx: Context, hostport: str) -> int:
    """Alias of :func:`rewritehostport`."""
    return _rewrite(ctx, "hostport", hostport)


def sethp(ctx: Context, hostport: str) -> int:
    """Alias of :func:`rewritehostport`."""
    return _rewrite(ctx, "hostport", hostport)


def rewritehostporttrans(ctx: Context, hostport: str) -> int:
    """``rewritehostporttrans("h:p")``: as :func:`rewritehostport` and drop the
    ``transport`` parameter."""
    return _rewrite(ctx, "hostporttrans", hostport)


def sethostporttrans(ctx: Context, hostport: str) -> int:
    """Alias of :func:`rewritehostporttrans`."""
    return _rewrite(ctx, "hostporttrans", hostport)


def sethpt(ctx: Context, hostport: str) -> int:
    """Alias of :func:`rewritehostporttrans`."""
    return _rewrite(ctx, "hostporttrans", hostport)


def rewriteport(ctx: Context, port: str) -> int:
    """``rewriteport("p")``: replace the port (``""`` removes it); -1 on a tel: URI."""
    return _rewrite(ctx, "port", port)


def setport(ctx: Context, port: str) -> int:
    """Alias of :func:`rewriteport`."""
    return _rewrite(ctx, "port", port)


def setp(ctx: Context, port: str) -> int:
    """Alias of :func:`rewriteport`."""
    return _rewrite(ctx, "port", port)


def rewriteuser(ctx: Context, user: str) -> int:
    """``rewriteuser("u")``: replace the user (``""`` removes user and password)."""
    return _rewrite(ctx, "user", user)


def setuser(ctx: Context, user: str) -> int:
    """Alias of :func:`rewriteuser`."""
    return _rewrite(ctx, "user", user)


def setu(ctx: Context, user: str) -> int:
    """Alias of :func:`rewriteuser`."""
    return _rewrite(ctx, "user", user)


def rewriteuserpass(ctx: Context, userpass: str) -> int:
    """``rewriteuserpass("u:p")``: replace user and password with the argument."""
    return _rewrite(ctx, "userpass", userpass)


def setuserpass(ctx: Context, userpass: str) -> int:
    """Alias of :func:`rewriteuserpass`."""
    return _rewrite(ctx, "userpass", userpass)


def setup(ctx: Context, userpass: str) -> int:
    """Alias of :func:`rewriteuserpass`."""
    return _rewrite(ctx, "userpass", userpass)


def rewriteuri(ctx: Context, uri: str) -> int:
    """``rewriteuri("sip:...")``: set the whole R-URI, unchecked, as Kamailio does
    (a later part rewrite of an unparsable URI fails)."""
    return 1 if set_ruri(ctx, uri) else -1


def seturi(ctx: Context, uri: str) -> int:
    """Alias of :func:`rewriteuri`."""
    return 1 if set_ruri(ctx, uri) else -1


def prefix(ctx: Context, text: str) -> int:
    """``prefix("s")``: put ``s`` before the R-URI user (a URI without user gets
    ``s`` as its user: ``sip:h`` -> ``sip:s@h``)."""
    return _rewrite(ctx, "prefix", text)


def strip(ctx: Context, count: int) -> int:
    """``strip(n)``: remove the first ``n`` characters of the R-URI user (all of
    it, and the ``@``, when it is shorter; Kamailio logs at debug level only)."""
    return _rewrite(ctx, "strip", count)


def strip_tail(ctx: Context, count: int) -> int:
    """``strip_tail(n)``: remove the last ``n`` characters of the R-URI user."""
    return _rewrite(ctx, "strip_tail", count)


def revert_uri(ctx: Context) -> int:
    """``revert_uri()``: forget every R-URI rewrite (back to the received one)."""
    msg = ctx.msg
    if ctx.new_uri is not None and isinstance(msg, Request):
        msg.set_uri(msg.buf[msg.uri_start : msg.uri_end])
    ctx.new_uri = None
    ctx.ruri_new = True
    return 1


# ---------------------------------------------------------------------------------
# forwarding (stateless): the engine sends
# ---------------------------------------------------------------------------------

#: ``uri:host`` / ``uri:port`` in ``forward(uri:host, uri:port)`` are evaluated per
#: message by these two (the generator emits ``core.uri_host(ctx)``).


def uri_host(ctx: Context) -> str:
    """The host of the current R-URI (``uri:host``); "" when there is none."""
    current = current_ruri(ctx)
    parts = None if current is None else split_uri(current)
    return (parts.host or "") if parts is not None else ""


def uri_port(ctx: Context) -> int:
    """The port of the current R-URI (``uri:port``); 0 when it has none (the
    protocol's default is used)."""
    current = current_ruri(ctx)
    parts = None if current is None else split_uri(current)
    if parts is None or not parts.port or not parts.port.isdigit():
        return 0
    return int(parts.port)


def _forward(ctx: Context, proto: str | None, host: str | None, port: int) -> int:
    return ctx.proc.engine.forward(ctx, proto, host or None, port if port > 0 else None)


def forward(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``forward()`` / ``forward(host)`` / ``forward(host, port)``: stateless
    forwarding (``host`` None: to ``$du`` or the R-URI; ``port`` 0: the URI's or the
    default). Return code from the engine."""
    return _forward(ctx, None, host, port)


def forward_udp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``forward_udp(host[, port])``: :func:`forward` over UDP."""
    return _forward(ctx, "udp", host, port)


def forward_tcp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``forward_tcp(host[, port])``: :func:`forward` over TCP."""
    return _forward(ctx, "tcp", host, port)


def forward_tls(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``forward_tls(host[, port])``: :func:`forward` over TLS."""
    return _forward(ctx, "tls", host, port)


def forward_sctp(ctx: Context, host: str | None = None, port: int = 0) -> int:
    """``forward_sctp(host[, port])``: :func:`forward` over SCTP."""
    return _forward(ctx, "sctp", host, port)


# ---------------------------------------------------------------------------------
# Via, sockets and connection switches: flags the engine reads when it sends
# ---------------------------------------------------------------------------------


def force_rport(ctx: Context) -> int:
    """``force_rport()``: reply to the source port as if the top Via had ``rport``
    (RFC 3581; Kamailio's ``FL_FORCE_RPORT``, read by the engine): 1."""
    ctx.msg_flags.add("force_rport")
    return 1


def add_rport(ctx: Context) -> int:
    """``add_rport()``: the same action as :func:`force_rport` in Kamailio 5.6."""
    ctx.msg_flags.add("force_rport")
    return 1


def set_advertised_address(ctx: Context, address: str) -> int:
    """``set_advertised_address("a")``: the address put in Via/Record-Route for
    this message instead of the socket's: 1."""
    ctx.advertised_address = address
    return 1


def set_advertised_port(ctx: Context, port: int) -> int:
    """``set_advertised_port(p)``: the port advertised for this message: 1."""
    ctx.advertised_port = port
    return 1


_DEFAULT_PORTS: Final = {"tls": 5061, "wss": 443, "ws": 80}


def parse_socket(text: str) -> tuple[str, str, int] | None:
    """``[proto:]host[:port]`` (IPv6 in brackets) as ``(proto, host, port)``;
    missing proto: udp; missing port: the protocol's default. None when malformed."""
    rest = text.strip()
    proto = "udp"
    head, sep, tail = rest.partition(":")
    if sep and head.lower() in ("udp", "tcp", "tls", "sctp", "ws", "wss"):
        proto, rest = head.lower(), tail
    port_text = ""
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            return None
        host, after = rest[1:close], rest[close + 1 :]
        if after:
            if not after.startswith(":"):
                return None
            port_text = after[1:]
    else:
        host, sep, port_text = rest.partition(":")
        if ":" in port_text:
            return None
    if not host:
        return None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS.get(proto, 5060)
    return (proto, host, port)


def force_send_socket(ctx: Context, socket: str) -> int:
    """``force_send_socket([proto:]host[:port])``: send this message from that
    local socket (the engine checks that it is one of ours): 1, -1 malformed."""
    parsed = parse_socket(socket)
    if parsed is None:
        log_.error("bad socket <%s> in force_send_socket", socket)
        return -1
    ctx.send_socket = parsed
    return 1


def set_forward_no_connect(ctx: Context) -> int:
    """``set_forward_no_connect()``: do not open a new TCP/TLS connection to
    forward this message (Kamailio ``FL_FORCE_NO_CONNECT`` on the send): 1."""
    ctx.msg_flags.add("set_forward_no_connect")
    return 1


def set_reply_no_connect(ctx: Context) -> int:
    """``set_reply_no_connect()``: replies to this request may not open a new
    connection: 1."""
    ctx.msg_flags.add("set_reply_no_connect")
    return 1


def set_forward_close(ctx: Context) -> int:
    """``set_forward_close()``: close the TCP/TLS connection after forwarding: 1."""
    ctx.msg_flags.add("set_forward_close")
    return 1


def set_reply_close(ctx: Context) -> int:
    """``set_reply_close()``: close the connection after replying: 1."""
    ctx.msg_flags.add("set_reply_close")
    return 1


# ---------------------------------------------------------------------------------
# log
# ---------------------------------------------------------------------------------

#: Kamailio's log levels (``dprint.h``) as ``logging`` levels; NOTICE sits between
#: INFO and WARNING, and ``log("text")`` uses L_DBG+1 (4), below DEBUG
LOG_LEVELS: Final = {
    -5: logging.CRITICAL,  # L_ALERT
    -4: logging.CRITICAL,  # L_BUG
    -3: logging.CRITICAL,  # L_CRIT2
    -2: logging.CRITICAL,  # L_CRIT
    -1: logging.ERROR,  # L_ERR
    0: logging.WARNING,  # L_WARN
    1: logging.INFO + 5,  # L_NOTICE
    2: logging.INFO,  # L_INFO
    3: logging.DEBUG,  # L_DBG
}
L_DBG_PLUS_1: Final = 4


def python_level(level: int) -> int:
    """The ``logging`` level of Kamailio level ``level`` (above L_DBG: 5)."""
    if level < -5:
        return logging.CRITICAL
    return LOG_LEVELS.get(level, 5)


def log(ctx: Context, first: Value, text: str | None = None) -> int:
    """``log("text")`` (at L_DBG+1, i.e. below debug) or ``log(level, "text")``:
    the text as is, to the ``kcc_runtime.log`` logger: 1."""
    if text is None:
        level, message = L_DBG_PLUS_1, "" if first is None else str(first)
    else:
        level = first if isinstance(first, int) else L_DBG_PLUS_1
        message = text
    script_log.log(python_level(level), "%s", message)
    return 1


#: every route kind but ``onsend_route`` (a parse error there)
NOT_ONSEND = Route.ANY & ~Route.ONSEND
MSG_FLAG = Arg.flag_of(FlagKind.MESSAGE)


def _uri_setters(*names: str) -> tuple[Cmd, ...]:
    """One ``(STRING)`` action under each of its spellings, each with its function."""
    return tuple(
        Cmd(name, (STR_CONST,), NOT_ONSEND, impl=globals()[name], const_args=True) for name in names
    )


EXPORTS = ModuleExports(
    name="core",
    cmds=(
        # stateless forwarding: forward() uses $du or the R-URI
        Cmd("forward", (), NOT_ONSEND, impl=forward),
        Cmd("forward", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=forward),
        Cmd("forward", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True, impl=forward),
        Cmd("forward_udp", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=forward_udp),
        Cmd("forward_udp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True, impl=forward_udp),
        Cmd("forward_tcp", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=forward_tcp),
        Cmd("forward_tcp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True, impl=forward_tcp),
        Cmd("forward_tls", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=forward_tls),
        Cmd("forward_tls", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True, impl=forward_tls),
        Cmd("forward_sctp", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=forward_sctp),
        Cmd("forward_sctp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True, impl=forward_sctp),
        # message flags
        Cmd("setflag", (MSG_FLAG,), Route.ANY, const_args=True, impl=setflag),
        Cmd("resetflag", (MSG_FLAG,), Route.ANY, const_args=True, impl=resetflag),
        Cmd("isflagset", (MSG_FLAG,), Route.ANY, const_args=True, impl=isflagset),
        # sub-routes
        Cmd("route", (Arg.route_name(Route.REQUEST),), NOT_ONSEND),
        # logging and external commands
        Cmd("log", (STR_CONST,), Route.ANY, const_args=True, impl=log),
        Cmd("log", (INT_CONST, STR_CONST), Route.ANY, const_args=True, impl=log),
        Cmd("error", (STR_CONST, STR_CONST), NOT_ONSEND, const_args=True),
        Cmd("exec", (STR_CONST,), NOT_ONSEND, const_args=True),
        # the request URI, part by part (aliases are separate spellings)
        *_uri_setters("rewritehost", "sethost", "seth"),
        *_uri_setters("rewritehostport", "sethostport", "sethp"),
        *_uri_setters("rewritehostporttrans", "sethostporttrans", "sethpt"),
        *_uri_setters("rewriteport", "setport", "setp"),
        *_uri_setters("rewriteuser", "setuser", "setu"),
        *_uri_setters("rewriteuserpass", "setuserpass", "setup"),
        *_uri_setters("rewriteuri", "seturi"),
        *_uri_setters("prefix"),
        Cmd("strip", (INT_CONST,), NOT_ONSEND, const_args=True, impl=strip),
        Cmd("strip_tail", (INT_CONST,), NOT_ONSEND, const_args=True, impl=strip_tail),
        Cmd("revert_uri", (), NOT_ONSEND, impl=revert_uri),
        Cmd("userphone", (), NOT_ONSEND),
        # branches
        Cmd("remove_branch", (), NOT_ONSEND),
        Cmd("remove_branch", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("clear_branches", (), NOT_ONSEND),
        # Via and connection handling
        Cmd("force_rport", (), NOT_ONSEND, impl=force_rport),
        Cmd("add_rport", (), NOT_ONSEND, impl=add_rport),
        Cmd("add_local_rport", (), NOT_ONSEND),
        Cmd("force_tcp_alias", (), NOT_ONSEND),
        Cmd("force_tcp_alias", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("add_tcp_alias", (), NOT_ONSEND),
        Cmd("add_tcp_alias", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("udp_mtu_try_proto", (ANY,), NOT_ONSEND, const_args=True),
        # sockets and advertised addresses
        Cmd(
            "set_advertised_address",
            (STR_CONST,),
            NOT_ONSEND,
            const_args=True,
            impl=set_advertised_address,
        ),
        Cmd(
            "set_advertised_port",
            (INT_CONST,),
            NOT_ONSEND,
            const_args=True,
            impl=set_advertised_port,
        ),
        Cmd("force_send_socket", (HOSTPORT,), NOT_ONSEND, const_args=True, impl=force_send_socket),
        Cmd("set_forward_no_connect", (), Route.ANY, impl=set_forward_no_connect),
        Cmd("set_reply_no_connect", (), Route.ANY, impl=set_reply_no_connect),
        Cmd("set_forward_close", (), Route.ANY, impl=set_forward_close),
        Cmd("set_reply_close", (), Route.ANY, impl=set_reply_close),
        # configuration-framework groups
        Cmd("cfg_select", (STR_CONST, INT), NOT_ONSEND),
        Cmd("cfg_reset", (STR_CONST,), NOT_ONSEND, const_args=True),
    ),
    pvs=(
        PvExport("?"),
        PvExport("rc"),
        PvExport("retcode"),
        PvExport("env", inner=True),
        PvExport("envn", inner=True),
        PvExport("def", inner=True),
        PvExport("defn", inner=True),
        PvExport("null"),
    ),
)

# Kamailio 6.x core variables that 5.6 does not have, left out on purpose:
# ``$defv(NAME)``, ``$defs(NAME)``, ``$iuid``.
