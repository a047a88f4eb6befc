"""Sanity checks of incoming requests (R-URI, CSeq, Content-Length, Via ...),
replying with the right error when one fails.

``sanity_check([msg_checks [, uri_checks]])`` runs the checks whose bits are set,
in Kamailio 5.6's order, and stops at the first failure. Each failure sends the
reply Kamailio's sanity module sends (through the stateless core,
``ctx.proc.engine.send_reply``), with its exact reason phrase, measured on Kamailio
5.6.3 on loopback (``CSeq method does not match request method``, ``Content-Length
mis-match``, ``Expires value is illegal``, 420 ``Bad Proxy Require Extension`` with an
``Unsupported:`` header, ``Auth Empty User`` ...). Some failures send no reply, as in
Kamailio (a missing required header, an unusable top Via or CSeq, a missing
From/To, credentials of a scheme other than Digest under the digest check), and an
ACK is never answered.

Return codes (Kamailio ``w_sanity_check``): 1 when every check passed; on a failure 0
with ``modparam("sanity", "autodrop", 1)`` (the default: the script ends) and -1 with
``autodrop`` 0; -1 for check masks out of range (``msg_checks`` 1..32767,
``uri_checks`` 1..15). With ``noreply`` 1 no reply is sent: the code and reason are
kept for ``sanity_reply()``.

Replies to responses are never sent; on a response (``onreply_route``) the checks
that read the request line (1, 2, 32 and the R-URI of 1024) are skipped.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable
from typing import Final

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.modules.textops import reply_lumps
from kcc_runtime.sip import AbsoluteUri, Request, SipParseError, parse_uri

__all__ = ["EXPORTS", "sanity_check", "sanity_reply"]

log = logging.getLogger("kcc_runtime.sanity")

# check bits (Kamailio ``sanity_mod.h``)
RURI_SIP_VERSION: Final = 1
RURI_SCHEME: Final = 2
REQUIRED_HEADERS: Final = 4
VIA_SIP_VERSION: Final = 8  # a no-op in Kamailio
VIA_PROTOCOL: Final = 16  # a no-op in Kamailio
CSEQ_METHOD: Final = 32
CSEQ_VALUE: Final = 64
CONTENT_LENGTH: Final = 128
EXPIRES_VALUE: Final = 256
PROXY_REQUIRE: Final = 512
PARSE_URIS: Final = 1024
CHECK_DIGEST: Final = 2048
CHECK_DUPTAGS: Final = 4096
CHECK_AUTHORIZATION: Final = 8192
VIA1_HEADER: Final = 16384
MAX_CHECKS: Final = 32768
# uri_checks bits
URI_RURI: Final = 1
URI_FROM: Final = 2
URI_TO: Final = 4
URI_CONTACT: Final = 8
URI_MAX_CHECKS: Final = 16

DEFAULT_CHECKS: Final = 3047
DEFAULT_URI_CHECKS: Final = 7

#: Kamailio's R-URI schemes besides sip/sips/tel (``parse_uri``: tels, urn)
_OTHER_SCHEMES: Final = frozenset({"tels", "urn"})
_AUTH_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(?:,|$)')
#: ``noreply`` mode: the reply a failed check would have sent, per message
_PENDING: weakref.WeakKeyDictionary[Context, tuple[int, str]] = weakref.WeakKeyDictionary()


class _Failed(Exception):  # noqa: N818 -- control flow inside one check run
    """A check failed; its reply (if any) is already sent or kept."""


class _Run:
    """One ``sanity_check`` call: the message, the reply policy."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.msg = ctx.msg
        self.request = isinstance(ctx.msg, Request)
        self.noreply = ctx.proc.modparam_int("sanity", "noreply", 0) != 0

    def fail(self, code: int | None = None, reason: str = "") -> _Failed:
        """Kamailio's ``sanity_reply`` then ``SANITY_CHECK_FAILED``; ``code`` None is
        a failure marked ``FL_MSG_NOREPLY`` (nothing is sent, not even later by
        ``sanity_reply()``)."""
        ctx = self.ctx
        if code is None:
            _PENDING.pop(ctx, None)
            ctx.msg_flags.add("sanity_noreply")
        elif self.request and not self._is_ack():
            if self.noreply:
                _PENDING[ctx] = (code, reason)
            elif "sanity_noreply" not in ctx.msg_flags:
                ctx.proc.engine.send_reply(ctx, code, reason)
        return _Failed()

    def _is_ack(self) -> bool:
        msg = self.msg
        return isinstance(msg, Request) and msg.method == "ACK"

    # -- the checks, in Kamailio's order ------------------------------------------------

    def ruri_sip_version(self) -> None:
        msg = self.msg
        if not isinstance(msg, Request):
            return
        _, sep, version = msg.version.partition("/")
        if not sep:
            raise self.fail(None)
        if version != "2.0":
            raise self.fail(505, "Version Not Supported (R-URI)")

    def ruri_scheme(self) -> None:
        self._ruri_parses()

    def _ruri_parses(self) -> None:
        msg = self.msg
        if not isinstance(msg, Request):
            return
        try:
            uri = msg.uri
        except SipParseError:
            raise self.fail(400, "Bad Request URI") from None
        if isinstance(uri, AbsoluteUri) and uri.scheme not in _OTHER_SCHEMES:
            raise self.fail(400, "Bad Request URI")

    def required_headers(self) -> None:
        names = self.msg.names
        if not all(key in names for key in (b"via", b"from", b"to", b"call-id", b"cseq")):
            raise self.fail(None)
        if any(names.count(key) > 1 for key in (b"from", b"to", b"call-id", b"cseq")):
            raise _Failed  # Kamailio: failed, no reply

    def via1_header(self) -> None:
        try:
            via = self.msg.via
        except SipParseError:
            via = None
        if via is None:
            raise self.fail(None)

    def _cseq(self) -> tuple[str, str]:
        raw = self.msg.header_bytes(b"cseq")
        if raw is None:
            raise self.fail(None)
        parts = raw.decode("latin-1").split()
        if len(parts) > 2:
            raise self.fail(None)
        number = parts[0] if parts else ""
        method = parts[1] if len(parts) > 1 else ""
        return number, method

    def cseq_method(self) -> None:
        msg = self.msg
        if not isinstance(msg, Request):
            return
        _, method = self._cseq()
        if not method:
            raise self.fail(400, "Missing method in CSeq header")
        if method != msg.method:
            raise self.fail(400, "CSeq method does not match request method")

    def cseq_value(self) -> None:
        number, _ = self._cseq()
        if not number:
            raise self.fail(400, "Missing number in CSeq header")
        if not valid_uint(number):
            raise self.fail(400, "CSeq number is illegal")

    def content_length(self) -> None:
        msg = self.msg
        if not msg.has_header(b"content-length"):
            return
        length = msg.content_length
        if length is None:
            raise self.fail(400, "Content-Length Failure")
        if len(msg.buf) - msg.body_start != length:
            raise self.fail(400, "Content-Length mis-match")

    def expires_value(self) -> None:
        raw = self.msg.header_bytes(b"expires")
        if raw is None:
            return
        text = raw.decode("latin-1").strip()
        if not text:
            raise self.fail(400, "Bad Expires Header")
        if not valid_uint(text):
            raise self.fail(400, "Expires value is illegal")

    def proxy_require(self) -> None:
        raw = self.msg.header_bytes(b"proxy-require")
        if raw is None:
            return
        wanted = str_list(raw.decode("latin-1"))
        if not wanted:
            raise self.fail(400, "Bad Proxy Require Header")
        param = self.ctx.proc.modparams.get(("sanity", "proxy_require"), "")
        supported = str_list(param if isinstance(param, str) else "")
        for extension in wanted:
            if extension not in supported:
                if self.request:
                    reply_lumps(self.ctx).append(f"Unsupported: {extension}\r\n")
                raise self.fail(420, "Bad Proxy Require Extension")

    def parse_uris(self, checks: int) -> None:
        msg = self.msg
        if checks & URI_RURI:
            self._ruri_parses()
        for bit, key, reason in (
            (URI_FROM, b"from", "Invalid From Header"),
            (URI_TO, b"to", "Ivalid To Header"),  # sic: Kamailio's reason phrase
        ):
            if checks & bit:
                if not msg.has_header(key):
                    raise self.fail(None)
                try:
                    name = msg.from_ if key == b"from" else msg.to
                    if name is not None:
                        _ = name.uri
                except SipParseError:
                    raise self.fail(400, reason) from None
        if checks & URI_CONTACT and msg.has_header(b"contact") and not msg.contact_star:
            try:
                contacts = msg.contacts
            except SipParseError:
                raise self.fail(400, "Bad Contact Header") from None
            if contacts:
                try:
                    parse_uri(contacts[0].uri_raw)
                except SipParseError:
                    raise self.fail(400, "Bad Contact URI") from None

    def _digest(self) -> bool:
        """Kamailio ``check_digest_only``: True when every Authorization and
        Proxy-Authorization header holds usable Digest credentials (or there is
        none), False for another scheme (not applicable); a malformed one fails."""
        msg = self.msg
        for key in (b"authorization", b"proxy-authorization"):
            for value in msg.header_values(key):
                scheme, _, rest = value.strip().partition(" ")
                if scheme.lower() != "digest":
                    return False
                params: dict[str, str] = {}
                for m in _AUTH_PARAM.finditer(rest):
                    val = m.group(2)
                    if val.startswith('"'):
                        val = val[1:-1]
                    params.setdefault(m.group(1).lower(), val)
                required = ("username", "realm", "nonce", "uri", "response")
                if any(name not in params for name in required):
                    raise self.fail(400, "Bad Auth Credentials")
                if params.get("qop") and ("nc" not in params or "cnonce" not in params):
                    raise self.fail(400, "Bad Auth Credentials")
                if not params["username"]:
                    raise self.fail(400, "Auth Empty User")
                if not params["nonce"]:
                    raise self.fail(400, "Auth Empty Nonce")
                if not params["response"]:
                    raise self.fail(400, "Auth Empty Response")
        return True

    def digest(self) -> None:
        if not self._digest():
            raise _Failed

    def authorization(self) -> None:
        self._digest()

    def duptags(self) -> None:
        msg = self.msg
        try:
            pairs = (("From", msg.from_), ("To", msg.to))
        except SipParseError:
            raise self.fail(None) from None
        for what, name in pairs:
            if name is None:
                raise self.fail(None)
            if sum(1 for key, _ in name.params if key == "tag") > 1:
                raise self.fail(400, f"Many {what} Tag Params")


def valid_uint(text: str) -> bool:
    """Kamailio sanity's ``str2valid_uint``: up to 10 digits, compared digit by digit
    with ``4294967296`` (so that value itself passes, as measured on Kamailio 5.6)."""
    if not text or len(text) > 10 or not all("0" <= c <= "9" for c in text):
        return False
    return len(text) < 10 or text <= "4294967296"


def str_list(text: str) -> list[str]:
    """Kamailio sanity's ``parse_str_list``: comma-separated, each item trimmed."""
    text = text.strip()
    if not text:
        return []
    return [item.strip() for item in text.split(",")]


_STEPS: Final[tuple[tuple[int, Callable[[_Run], None]], ...]] = (
    (RURI_SIP_VERSION, _Run.ruri_sip_version),
    (RURI_SCHEME, _Run.ruri_scheme),
    (REQUIRED_HEADERS, _Run.required_headers),
    (VIA1_HEADER, _Run.via1_header),
    (CSEQ_METHOD, _Run.cseq_method),
    (CSEQ_VALUE, _Run.cseq_value),
    (CONTENT_LENGTH, _Run.content_length),
    (EXPIRES_VALUE, _Run.expires_value),
    (PROXY_REQUIRE, _Run.proxy_require),
)


def sanity_check(ctx: Context, msg_checks: int | None = None, uri_checks: int | None = None) -> int:
    """``sanity_check([msg_checks [, uri_checks]])``: run the checks (default:
    ``modparam("sanity", "default_checks")``, 3047, and ``uri_checks``, 7); see the
    module docstring for the codes and replies."""
    proc = ctx.proc
    if msg_checks is None:
        msg_checks = proc.modparam_int("sanity", "default_checks", DEFAULT_CHECKS)
    if uri_checks is None:
        uri_checks = proc.modparam_int("sanity", "uri_checks", DEFAULT_URI_CHECKS)
    if not 1 <= msg_checks < MAX_CHECKS:
        log.error("input parameter (%d) outside of valid range <1-%d)", msg_checks, MAX_CHECKS)
        return -1
    if not 1 <= uri_checks < URI_MAX_CHECKS:
        log.error(
            "second input parameter (%d) outside of valid range <1-%d", uri_checks, URI_MAX_CHECKS
        )
        return -1
    run = _Run(ctx)
    _PENDING.pop(ctx, None)
    try:
        for bit, step in _STEPS:
            if msg_checks & bit:
                step(run)
        if msg_checks & PARSE_URIS:
            run.parse_uris(uri_checks)
        if msg_checks & CHECK_DIGEST:
            run.digest()
        if msg_checks & CHECK_AUTHORIZATION:
            run.authorization()
        if msg_checks & CHECK_DUPTAGS:
            run.duptags()
    except _Failed:
        return 0 if proc.modparam_int("sanity", "autodrop", 1) != 0 else -1
    except SipParseError:  # a header the checks read does not parse at all
        return 0 if proc.modparam_int("sanity", "autodrop", 1) != 0 else -1
    return 1


def sanity_reply(ctx: Context) -> int:
    """``sanity_reply()``: with ``noreply`` 1, send the reply the last failed check
    of this message would have sent (500 "Server Sanity Failure" when none is
    kept); nothing for a response, an ACK, without ``noreply`` or after a failure
    that sends no reply. 1, -1 when sending failed."""
    msg = ctx.msg
    if not isinstance(msg, Request) or msg.method == "ACK":
        return 1
    if ctx.proc.modparam_int("sanity", "noreply", 0) == 0:
        return 1
    if "sanity_noreply" in ctx.msg_flags:
        return 1
    code, reason = _PENDING.get(ctx, (500, "Server Sanity Failure"))
    return 1 if ctx.proc.engine.send_reply(ctx, code, reason) > 0 else -1


# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY

EXPORTS = ModuleExports(
    name="sanity",
    cmds=(
        Cmd("sanity_check", (), REQ_REPLY, impl=sanity_check),
        Cmd("sanity_check", (INT,), REQ_REPLY, fixup="fixup_igp_null", impl=sanity_check),
        Cmd("sanity_check", (INT, INT), REQ_REPLY, fixup="fixup_igp_igp", impl=sanity_check),
        Cmd("sanity_reply", (), REQ_REPLY, impl=sanity_reply),
    ),
    params=(
        ModParam("default_checks", int, 3047),
        ModParam("uri_checks", int, 7),
        ModParam("proxy_require", str, None),
        ModParam("autodrop", int, 1),
        ModParam("noreply", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``size_checks``, ``size_message``, ``size_method``, ``size_ruri``, ``size_from_uri``,
#   ``size_to_uri``, ``size_contact_uri``, ``size_route_uri``, ``size_path_uri``, ``size_pai_uri``,
#   ``size_header``, ``size_headers``, ``size_body``
