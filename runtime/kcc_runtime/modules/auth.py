"""Digest authentication core: challenges (401/407), nonce handling and the
credential checks that back-end modules such as auth_db build on.

Follows Kamailio 5.6's auth module (RFC 2617 / RFC 7616 digest). Facts measured on
Kamailio 5.6.3 with ``db_sqlite`` (a probe cfg calling ``auth_check``/
``auth_challenge``, a Python UDP client computing digests, ``modparam("auth",
"secret", ...)`` set so nonces could be decoded and forged):

- **Challenge header**, added to the reply as a lump after ``CSeq`` (before
  ``Server``): ``WWW-Authenticate: Digest realm="R", nonce="N"`` then
  ``, qop="auth"`` (flag 1) or ``, qop="auth-int"`` (flag 2, which wins over 1),
  then ``, stale=true`` (flag 16 only: an expired nonce does *not* add it by
  itself), then ``, algorithm=SHA-256`` when the ``algorithm`` modparam is SHA-256
  (nothing for MD5), then CRLF. ``Proxy-Authenticate`` and 407 "Proxy
  Authentication Required" for ``proxy_challenge`` and for non-REGISTER requests in
  ``auth_challenge``; 401 "Unauthorized" otherwise. Sent statefully when a
  transaction exists (sl's ``freply``), statelessly with ``force_stateless_reply``.
- **Nonce**: base64 (standard alphabet, ``=`` padding) of ``expire(4) since(4)
  MD5(expire since [nid pf] secret1)(16)`` with big-endian times, ``expire = since
  + nonce_expire``: 32 characters; with ``nonce_count`` or ``one_time_nonce`` a
  nonce id (big-endian, growing by 257 per nonce from a random start) and a flags
  byte (0x80 nonce-count, 0x40 one-time, low 6 bits the pool) follow the MD5: 29
  bytes, 40 characters. The same second gives the same nonce when neither is on.
  With ``auth_checks_*`` a second MD5 over the selected message parts and secret2
  follows the first (``nonce.h``).
- **Return codes** of a check: 1 ok; -1 error (a nonce that does not decode or
  whose MD5 does not match, incomplete credentials, a response of the wrong length
  for the algorithm, a bad ``nc``); -2 wrong password; -3 unknown user (auth_db);
  -4 stale (expired, made before the proxy started, more than
  ``nonce_auth_max_drift`` s in the future, ``nc`` not above the last one seen or
  above 255); -5 no credentials for the realm (other realm, or the wrong header:
  ``Authorization`` on an INVITE); -6 one-time nonce used again; -8 the auth user is
  not the From/To user. ACK and CANCEL are always authenticated (1).

**Shared state.** Kamailio keeps the nonce ids, the nonce-count array and the
one-time-nonce bitmap in shared memory. Here they live in an anonymous shared
mapping (:class:`NonceTables`) made when this module is imported, i.e. in the
supervisor before it forks the workers (the generated proxy imports its modules
first), so every worker sees the same tables; a process lock guards each update
(Kamailio uses atomic compare-and-swap), one the kernel releases if its holder dies
(:class:`~kcc_runtime.plocks.ProcessLocks`). The random secret is drawn at import too,
so a nonce made by one worker is verified by any other, and the "proxy start" time
(nonces made before it are stale) is the import time. The tables hold at most 2^20
nonce counts and 2^20 one-time nonces (Kamailio's defaults); larger
``nc_array_size``/``otn_in_flight_no`` values are capped there.

Deviation: for ``qop=auth-int`` Kamailio hashes an uninitialised buffer as H(body)
(``auth_check_response`` passes an unset ``hent``), so auth-int responses do not
verify there; here H(entity-body) is computed as RFC 2617 §3.2.2.3 says.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import logging
import mmap
import os
import re
import secrets
import struct
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from kcc_runtime import pv
from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    PV_WRITE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.plocks import ProcessLocks
from kcc_runtime.pv import current_ruri, split_uri
from kcc_runtime.shared import register_dead_releaser
from kcc_runtime.sip import Request, SipParseError

__all__ = [
    "AUTHENTICATED",
    "AUTH_ERROR",
    "AUTH_INVALID_PASSWORD",
    "AUTH_NONCE_REUSED",
    "AUTH_NO_CREDENTIALS",
    "AUTH_OK",
    "AUTH_STALE_NONCE",
    "AUTH_USER_MISMATCH",
    "AUTH_USER_UNKNOWN",
    "EXPORTS",
    "Credentials",
    "NonceTables",
    "PreAuth",
    "auth_challenge",
    "auth_get_www_authenticate",
    "build_challenge",
    "calc_ha1",
    "calc_response",
    "check_nonce",
    "consume_credentials",
    "has_credentials",
    "new_nonce",
    "parse_credentials",
    "post_auth",
    "pre_auth",
    "proxy_challenge",
    "pv_auth_check",
    "pv_proxy_authenticate",
    "pv_proxy_authorize",
    "pv_www_authenticate",
    "pv_www_authorize",
    "request_method",
    "reset_tables",
    "user_matches",
    "www_challenge",
]

log = logging.getLogger("kcc_runtime.auth")

# -- return codes to the script (auth's ``auth_cfg_result_t``) -------------------------
AUTH_USER_MISMATCH: Final = -8
AUTH_NONCE_REUSED: Final = -6
AUTH_NO_CREDENTIALS: Final = -5
AUTH_STALE_NONCE: Final = -4
AUTH_USER_UNKNOWN: Final = -3
AUTH_INVALID_PASSWORD: Final = -2
AUTH_ERROR: Final = -1
AUTH_OK: Final = 1
#: :func:`pre_auth`: go on and check the response (auth's ``DO_AUTHENTICATION``)
DO_AUTHENTICATION: Final = 0
#: :func:`pre_auth`: nothing to check (ACK, CANCEL, PRACK)
AUTHENTICATED: Final = 2

WWW: Final = "www"
PROXY: Final = "proxy"

#: auth_checks_* bits (nonce.h)
CHECK_FULL_URI: Final = 1
CHECK_CALLID: Final = 2
CHECK_FROMTAG: Final = 4
CHECK_SRC_IP: Final = 8

#: nonce flag byte: valid for nonce-count / for one-time nonce; pool in the low 6 bits
NF_VALID_NC_ID: Final = 0x80
NF_VALID_OT_ID: Final = 0x40
NF_POOL_NO_MASK: Final = 0x3F
#: the nonce id grows by this much per nonce (nid.h)
NID_INC: Final = 257
#: the shared tables' capacity: Kamailio's default array sizes (2^20)
MAX_ARRAY_ORDER: Final = 20
_NID_POOLS: Final = 64
#: the mapping starts with the lock holder's pid (0: free), then the pool counters
_OWNER: Final = struct.Struct("<i")
_POOLS_AT: Final = 8
_U32: Final = 0xFFFFFFFF


# ---------------------------------------------------------------------------------
# the tables shared by the workers
# ---------------------------------------------------------------------------------


class NonceTables:
    """Nonce ids, nonce counts and one-time-nonce bits in one anonymous shared
    mapping, plus the secret and the start time: made before the workers fork.

    Layout: the lock holder's pid (int32, padded to 8 bytes: :meth:`release_dead`
    reports it),
    64 pool counters (uint32), then 2^20 nonce-count bytes, then 2^20
    one-time-nonce bits. A fresh mapping is all zeroes, which must mean "no nonce
    issued here" (Kamailio fills its arrays so that a nonce from before a restart is
    refused): a count byte stores ``255 - nc`` and a one-time bit is 1 while the
    nonce is unused, so zero is "maxed out" and "used"."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        secret: bytes | None = None,
        nid_start: int | None = None,
    ) -> None:
        self.now = now
        self.up_since = int(now())
        #: the random secret (two halves: Kamailio draws two random secrets)
        self.random_secret = secret if secret is not None else secrets.token_hex(32).encode()
        self._size = 1 << MAX_ARRAY_ORDER
        self._nc_at = _POOLS_AT + 4 * _NID_POOLS
        self._otn_at = self._nc_at + self._size
        self._mm = mmap.mmap(-1, self._otn_at + self._size // 8)
        self._lock = ProcessLocks(1, "kcc-nonce-lock")
        start = secrets.randbits(32) if nid_start is None else nid_start & _U32
        for pool in range(_NID_POOLS):
            struct.pack_into("<I", self._mm, _POOLS_AT + 4 * pool, start)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The tables' lock, its holder's pid recorded in the mapping (for
        :meth:`release_dead`'s report)."""
        self._lock.acquire(0)
        _OWNER.pack_into(self._mm, 0, os.getpid())
        try:
            yield
        finally:
            _OWNER.pack_into(self._mm, 0, 0)
            self._lock.release(0)

    def owner(self) -> int:
        """The pid recorded as holding the lock; 0 when free."""
        return int(_OWNER.unpack_from(self._mm, 0)[0])

    def release_dead(self, pid: int) -> int:
        """1 if the dead process ``pid`` held the lock (the supervisor asks for each
        worker it reaps; the kernel released the lock when it died, its record is
        cleared here), else 0. A worker killed inside the lock has written at most
        one byte of the tables: they stay consistent."""
        if not pid or self.owner() != pid:
            return 0
        _OWNER.pack_into(self._mm, 0, 0)
        return 1

    def now_int(self) -> int:
        return int(self.now())

    def nid_get(self, pool: int) -> int:
        return int(struct.unpack_from("<I", self._mm, _POOLS_AT + 4 * pool)[0])

    def nid_inc(self, pool: int) -> int:
        """The next nonce id of ``pool`` (Kamailio's atomic ``nid_inc``)."""
        with self._locked():
            value = (self.nid_get(pool) + NID_INC) & _U32
            struct.pack_into("<I", self._mm, _POOLS_AT + 4 * pool, value)
        return value

    @staticmethod
    def _overflow(current: int, nid: int, partition: int) -> bool:
        return ((current - nid) & _U32) >= NID_INC * partition

    def _index(self, nid: int, pool: int, order: int, pool_k: int) -> int:
        part_k = order - pool_k
        return (nid & ((1 << part_k) - 1)) + (pool << part_k)

    def nc_new(self, nid: int, pool: int, order: int, pool_k: int) -> None:
        """A new nonce: its stored count is 0."""
        with self._locked():
            self._mm[self._nc_at + self._index(nid, pool, order, pool_k)] = 255

    def nc_check(self, nid: int, pool: int, nc: int, order: int, pool_k: int) -> bool:
        """Kamailio's ``nc_check_val``: True (and ``nc`` stored) when ``nc`` is above
        the stored count, the id is recent enough and ``nc`` < 256."""
        if pool >= (1 << pool_k) or nc >= 256:
            return False
        if self._overflow(self.nid_get(pool), nid, 1 << (order - pool_k)):
            return False
        at = self._nc_at + self._index(nid, pool, order, pool_k)
        with self._locked():
            if 255 - self._mm[at] >= nc:
                return False
            self._mm[at] = 255 - nc
        return True

    def otn_new(self, nid: int, pool: int, order: int, pool_k: int) -> None:
        """A new one-time nonce: mark it unused."""
        index = self._index(nid, pool, order, pool_k)
        at = self._otn_at + index // 8
        with self._locked():
            self._mm[at] |= 1 << (index % 8)

    def otn_check(self, nid: int, pool: int, order: int, pool_k: int) -> bool:
        """Kamailio's ``otn_check_id``: True the first time, False when used before
        (or too old, or from a bad pool)."""
        if pool >= (1 << pool_k):
            return False
        if self._overflow(self.nid_get(pool), nid, 1 << (order - pool_k)):
            return False
        index = self._index(nid, pool, order, pool_k)
        at = self._otn_at + index // 8
        bit = 1 << (index % 8)
        with self._locked():
            if not self._mm[at] & bit:
                return False
            self._mm[at] &= ~bit & 0xFF
        return True


#: the process-wide tables, made at import (before the fork): see the module docstring
_TABLES: list[NonceTables] = [NonceTables()]


def release_dead(pid: int) -> int:
    """Whether the dead worker ``pid`` held the nonce tables' lock (called by
    :meth:`kcc_runtime.shm.SharedMemoryStore.release_dead`, which the supervisor
    calls for every worker it reaps)."""
    return _TABLES[0].release_dead(pid)


register_dead_releaser(release_dead)


def tables() -> NonceTables:
    return _TABLES[0]


def reset_tables(
    *, now: Callable[[], float] = time.time, secret: bytes | None = None, nid_start: int = 0
) -> NonceTables:
    """Replace the shared tables (tests: an injected clock, a fixed secret and
    nonce ids); the start time becomes ``now()``."""
    _TABLES[0] = NonceTables(now=now, secret=secret, nid_start=nid_start)
    return _TABLES[0]


# ---------------------------------------------------------------------------------
# settings (module parameters)
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """The auth modparams a check needs, read from the process's config."""

    secret1: bytes
    secret2: bytes
    nonce_expire: int
    max_drift: int
    nc_enabled: bool
    otn_enabled: bool
    nc_order: int
    otn_order: int
    pool_k: int
    checks_reg: int
    checks_ood: int
    checks_ind: int
    algorithm: str
    realm_prefix: str
    force_stateless: bool
    www_header: str
    proxy_header: str
    challenge_avp: str | int
    use_domain: bool
    add_authinfo: bool


def _order(ctx: Context, size_name: str, order_name: str) -> int:
    mp = ctx.proc.modparams
    if ("auth", order_name) in mp:
        order = ctx.proc.modparam_int("auth", order_name, MAX_ARRAY_ORDER)
    else:
        size = max(1, ctx.proc.modparam_int("auth", size_name, 1 << MAX_ARRAY_ORDER))
        order = size.bit_length() - 1
    return max(1, min(order, MAX_ARRAY_ORDER))


def settings(ctx: Context) -> Settings:
    """Kamailio's ``mod_init`` of auth over ``ctx``'s modparams."""
    mp = ctx.proc.modparams
    checks = [ctx.proc.modparam_int("auth", n, 0) for n in _CHECK_PARAMS]
    secret = mp.get(("auth", "secret"))
    if isinstance(secret, str) and secret:
        s1 = secret.encode("utf-8", "surrogateescape")
        s2 = b""
        if any(checks):
            half = len(s1) // 2
            s1, s2 = s1[: len(s1) - half], s1[len(s1) - half :]
    else:
        rnd = tables().random_secret
        s1, s2 = rnd[: len(rnd) // 2], rnd[len(rnd) // 2 :]
    qop = mp.get(("auth", "qop"))
    qop_on = isinstance(qop, str) and qop.strip().lower() in ("auth", "auth-int")
    # nonce_count needs qop (mod_init turns it off otherwise)
    nc_enabled = bool(ctx.proc.modparam_int("auth", "nonce_count", 0)) and qop_on
    pool_no = max(1, min(ctx.proc.modparam_int("auth", "nid_pool_no", 1), _NID_POOLS))
    algorithm = mp.get(("auth", "algorithm"))
    avp = mp.get(("auth", "challenge_attr"))
    avp_name = avp[1:] if isinstance(avp, str) and avp.startswith("$") else "digest_challenge"
    www = mp.get(("auth", "www_challenge_header"))
    proxy = mp.get(("auth", "proxy_challenge_header"))
    prefix = mp.get(("auth", "realm_prefix"))
    return Settings(
        secret1=s1,
        secret2=s2,
        nonce_expire=ctx.proc.modparam_int("auth", "nonce_expire", 300),
        max_drift=ctx.proc.modparam_int("auth", "nonce_auth_max_drift", 3),
        nc_enabled=nc_enabled,
        otn_enabled=bool(ctx.proc.modparam_int("auth", "one_time_nonce", 0)),
        nc_order=_order(ctx, "nc_array_size", "nc_array_order"),
        otn_order=_order(ctx, "otn_in_flight_no", "otn_in_flight_order"),
        pool_k=pool_no.bit_length() - 1,
        checks_reg=checks[0],
        checks_ood=checks[1],
        checks_ind=checks[2],
        algorithm="SHA-256" if algorithm == "SHA-256" else "MD5",
        realm_prefix=prefix if isinstance(prefix, str) else "",
        force_stateless=bool(ctx.proc.modparam_int("auth", "force_stateless_reply", 0)),
        www_header=www if isinstance(www, str) and www else "WWW-Authenticate",
        proxy_header=proxy if isinstance(proxy, str) and proxy else "Proxy-Authenticate",
        challenge_avp=pv.avp_key(avp_name.removeprefix("avp(").removesuffix(")")),
        use_domain=bool(ctx.proc.modparam_int("auth", "use_domain", 0)),
        add_authinfo=bool(ctx.proc.modparam_int("auth", "add_authinfo_hdr", 0)),
    )


_CHECK_PARAMS: Final = ("auth_checks_register", "auth_checks_no_dlg", "auth_checks_in_dlg")


def strip_realm(st: Settings, realm: str) -> str:
    """``realm_prefix`` removed from the front of ``realm`` (auth's ``strip_realm``)."""
    if st.realm_prefix and realm.startswith(st.realm_prefix):
        return realm[len(st.realm_prefix) :]
    return realm


# ---------------------------------------------------------------------------------
# digest arithmetic (RFC 2617 §3.2.2, RFC 7616 §3.4)
# ---------------------------------------------------------------------------------


def _h(algorithm: str, data: bytes) -> str:
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    return hashlib.md5(data).hexdigest()


def calc_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 = H(username ":" realm ":" password), lower-case hex."""
    return _h(algorithm, f"{username}:{realm}:{password}".encode("utf-8", "surrogateescape"))


def calc_response(
    algorithm: str,
    ha1: str,
    *,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
    method: str,
    uri: str,
    body: bytes = b"",
) -> str:
    """The request-digest: H(HA1:nonce[:nc:cnonce:qop]:HA2), HA2 = H(method:uri
    [:H(body)] for auth-int); without ``qop`` the RFC 2069 form."""
    enc = "utf-8"
    a2 = f"{method}:{uri}".encode(enc, "surrogateescape")
    if qop.lower() == "auth-int":
        a2 += b":" + _h(algorithm, body).encode()
    ha2 = _h(algorithm, a2)
    text = f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}" if qop else f"{ha1}:{nonce}:{ha2}"
    return _h(algorithm, text.encode(enc, "surrogateescape"))


# ---------------------------------------------------------------------------------
# credentials (Kamailio's digest parser)
# ---------------------------------------------------------------------------------

_PARAM_RE: Final = re.compile(
    r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|\Z)', re.ASCII
)


#: the digest parameters kept (others are ignored, as Kamailio's parser does)
_CRED_FIELDS: Final = frozenset(
    ("username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc")
)


@dataclass(slots=True)
class Credentials:
    """One parsed ``Authorization``/``Proxy-Authorization`` value."""

    username: str | None = None
    realm: str | None = None
    nonce: str | None = None
    uri: str | None = None
    response: str | None = None
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    #: the header line (index in ``msg.names``) the credentials came from
    line: int = -1
    stale: bool = False

    @property
    def user(self) -> str:
        """The user part of ``username`` (before ``@``)."""
        return (self.username or "").partition("@")[0]

    @property
    def user_domain(self) -> str:
        """The domain part of ``username`` ("" without ``@``)."""
        return (self.username or "").partition("@")[2]

    def complete(self) -> bool:
        """Kamailio's ``check_dig_cred``: username, realm, nonce, uri and response
        present; with qop auth/auth-int also cnonce and nc."""
        if None in (self.username, self.realm, self.nonce, self.uri, self.response):
            return False
        if (self.qop or "").lower() in ("auth", "auth-int"):
            return self.cnonce is not None and self.nc is not None
        return True


def parse_credentials(value: str) -> Credentials | None:
    """The credentials of a ``Digest`` value; None for another scheme. ValueError
    for a Digest value that does not parse (Kamailio: "error while parsing
    credentials", the check returns -1)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    cred = Credentials()
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        found = _PARAM_RE.match(rest, pos)
        if found is None:
            raise ValueError(f"bad digest parameter at {rest[pos : pos + 20]!r}")
        pos = found.end()
        name = found.group(1).lower()
        text = found.group(2)
        text = text.replace('\\"', '"') if text is not None else found.group(3)
        if name in _CRED_FIELDS:
            setattr(cred, name, text)
    return cred


# ---------------------------------------------------------------------------------
# per-message state: the credentials found and marked (Kamailio's ``authorized``)
# ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _MsgAuth:
    #: header line index of the authorized credentials, by header kind
    authorized: dict[str, int] = field(default_factory=dict)


_STATE: Final[weakref.WeakKeyDictionary[Context, _MsgAuth]] = weakref.WeakKeyDictionary()

_HEADER: Final = {WWW: "authorization", PROXY: "proxy-authorization"}


def _msg_state(ctx: Context) -> _MsgAuth:
    state = _STATE.get(ctx)
    if state is None:
        state = _STATE[ctx] = _MsgAuth()
    return state


def find_credentials(ctx: Context, realm: str, kind: str) -> Credentials | None:
    """The first credentials of header ``kind`` whose realm is ``realm`` (compared
    case-insensitively, as Kamailio's ``find_credentials``); None when there are
    none. ValueError when a header of that kind does not parse."""
    key = _HEADER[kind].encode()
    msg = ctx.msg
    for index, name in enumerate(msg.names):
        if name != key:
            continue
        _, vs, ve, _ = msg.spans[index]
        value = msg.buf[vs:ve].decode("utf-8", "surrogateescape").strip()
        cred = parse_credentials(value)
        if cred is not None and (cred.realm or "").lower() == realm.lower():
            cred.line = index
            return cred
    return None


def request_method(ctx: Context) -> str:
    """The request's method ("" for a reply)."""
    msg = ctx.msg
    return msg.method if isinstance(msg, Request) else ""


# ---------------------------------------------------------------------------------
# nonces (nonce.c)
# ---------------------------------------------------------------------------------


def auth_checks(ctx: Context, st: Settings) -> int:
    """``get_auth_checks``: auth_checks_register for REGISTER, auth_checks_in_dlg
    with a To tag, else auth_checks_no_dlg."""
    if request_method(ctx) == "REGISTER":
        return st.checks_reg
    try:
        to = ctx.msg.to
    except SipParseError:
        return st.checks_ood
    if to is not None and to.param("tag"):
        return st.checks_ind
    return st.checks_ood


def _extra_md5(ctx: Context, cfg: int, secret2: bytes) -> bytes:
    md5 = hashlib.md5()
    if cfg & CHECK_FULL_URI:
        md5.update((current_ruri(ctx) or "").encode("utf-8", "surrogateescape"))
    if cfg & CHECK_CALLID:
        try:
            callid = ctx.msg.call_id
        except SipParseError:
            callid = None
        if callid is not None:
            md5.update(callid.encode("utf-8", "surrogateescape"))
    if cfg & CHECK_FROMTAG:
        try:
            frm = ctx.msg.from_
        except SipParseError:
            frm = None
        if frm is not None:
            md5.update((frm.param("tag") or "").encode("utf-8", "surrogateescape"))
    if cfg & CHECK_SRC_IP:
        with contextlib.suppress(ValueError):
            md5.update(ipaddress.ip_address(ctx.received.src_ip).packed)
    md5.update(secret2)
    return md5.digest()


def _bin_nonce(
    ctx: Context, st: Settings, cfg: int, *, expire: int, since: int, nid: int, pf: int
) -> bytes:
    head = struct.pack(">II", expire & _U32, since & _U32)
    tail = struct.pack(">IB", nid & _U32, pf) if pf & (NF_VALID_NC_ID | NF_VALID_OT_ID) else b""
    md5_1 = hashlib.md5(head + tail + st.secret1).digest()
    md5_2 = _extra_md5(ctx, cfg, st.secret2) if cfg else b""
    return head + md5_1 + md5_2 + tail


def new_nonce(ctx: Context, st: Settings | None = None) -> str:
    """A new nonce for ``ctx.msg`` (``calc_new_nonce``)."""
    st = st or settings(ctx)
    tab = tables()
    now = tab.now_int()
    nid = pf = 0
    if st.nc_enabled or st.otn_enabled:
        pool = (os.getpid() & ((1 << st.pool_k) - 1)) if st.pool_k else 0
        nid = tab.nid_inc(pool)
        pf = pool
        if st.nc_enabled:
            tab.nc_new(nid, pool, st.nc_order, st.pool_k)
            pf |= NF_VALID_NC_ID
        if st.otn_enabled:
            tab.otn_new(nid, pool, st.otn_order, st.pool_k)
            pf |= NF_VALID_OT_ID
    raw = _bin_nonce(
        ctx, st, auth_checks(ctx, st), expire=now + st.nonce_expire, since=now, nid=nid, pf=pf
    )
    return base64.b64encode(raw).decode()


def check_nonce(ctx: Context, cred: Credentials, st: Settings | None = None) -> int:
    """Kamailio's ``check_nonce``: 0 valid; -1 invalid; 1 too short; 2 MD5 does not
    match; 3 auth_checks parts changed; 4 stale (or nc replayed/too big); 5 bad nc;
    6 one-time nonce reused."""
    st = st or settings(ctx)
    tab = tables()
    nonce = cred.nonce
    if nonce is None:
        return -1
    if len(nonce) < 32:
        return 1
    try:
        raw = base64.b64decode(nonce.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return -1
    if len(raw) < 24:
        return -1
    expire, since = struct.unpack(">II", raw[:8])
    now = tab.now_int()
    if since < tab.up_since and since < now:
        return 4
    if since > now and since - now > st.max_drift:
        return 4
    cfg = auth_checks(ctx, st)
    nid_at = 40 if cfg else 24
    nid, pf = struct.unpack(">IB", raw[nid_at : nid_at + 5]) if len(raw) >= nid_at + 5 else (0, 0)
    # Kamailio's matching nonce-count test sits under a misspelt ``#ifdef UE_NC``
    # and is compiled out: a nonce without a nonce-count id is still accepted
    if st.otn_enabled and not pf & NF_VALID_OT_ID:
        return 4
    expected = _bin_nonce(ctx, st, cfg, expire=expire, since=since, nid=nid, pf=pf)
    if raw[8:24] != expected[8:24]:
        return 2
    pool = pf & NF_POOL_NO_MASK
    nc_checked = False
    if st.nc_enabled and pf & NF_VALID_NC_ID and cred.nc:
        if len(cred.nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in cred.nc):
            log.error("bad nc value %s", cred.nc)
            return 5
        if not tab.nc_check(nid, pool, int(cred.nc, 16), st.nc_order, st.pool_k):
            return 4
        nc_checked = True
    if not nc_checked:
        otn = st.otn_enabled and pf & NF_VALID_OT_ID
        if otn and not tab.otn_check(nid, pool, st.otn_order, st.pool_k):
            return 6
        if cfg:
            if len(raw) != len(expected):
                return 2
            if raw[24:40] != expected[24:40]:
                return 3
    if expire < now:
        return 4
    return 0


# ---------------------------------------------------------------------------------
# the authentication steps (api.c)
# ---------------------------------------------------------------------------------


@dataclass(slots=True)
class PreAuth:
    """What :func:`pre_auth` found: a result code and the credentials."""

    result: int
    cred: Credentials | None = None


def pre_auth(ctx: Context, realm: str, kind: str, st: Settings | None = None) -> PreAuth:
    """Find the credentials for ``realm`` in the ``kind`` header, mark them
    authorized, check them and their nonce: :data:`DO_AUTHENTICATION` (go on and
    verify the response), :data:`AUTHENTICATED` (ACK, CANCEL, PRACK) or a negative
    script code (-1, -4, -5, -6)."""
    st = st or settings(ctx)
    if request_method(ctx) in ("ACK", "CANCEL", "PRACK"):
        return PreAuth(AUTHENTICATED)
    realm = strip_realm(st, realm)
    try:
        cred = find_credentials(ctx, realm, kind)
    except (ValueError, SipParseError) as exc:
        log.error("error while looking for credentials: %s", exc)
        return PreAuth(AUTH_ERROR)
    if cred is None:
        return PreAuth(AUTH_NO_CREDENTIALS)
    _msg_state(ctx).authorized[kind] = cred.line
    if not cred.complete():
        log.error("credentials are not filled properly")
        return PreAuth(AUTH_ERROR, cred)
    code = check_nonce(ctx, cred, st)
    if code in (3, 4):
        cred.stale = True
        return PreAuth(AUTH_STALE_NONCE, cred)
    if code == 6:
        return PreAuth(AUTH_NONCE_REUSED, cred)
    if code != 0:
        return PreAuth(AUTH_ERROR, cred)
    return PreAuth(DO_AUTHENTICATION, cred)


def check_response(ctx: Context, cred: Credentials, method: str, ha1: str, st: Settings) -> int:
    """Kamailio's ``auth_check_response``: :data:`AUTH_OK`, :data:`AUTH_INVALID_PASSWORD`
    or :data:`AUTH_ERROR` for a response of the wrong length for the algorithm."""
    expected_len = 64 if st.algorithm == "SHA-256" else 32
    response = cred.response or ""
    if len(response) != expected_len:
        return AUTH_ERROR
    mine = calc_response(
        st.algorithm,
        ha1,
        nonce=cred.nonce or "",
        nc=cred.nc or "",
        cnonce=cred.cnonce or "",
        qop=cred.qop or "",
        method=method,
        uri=cred.uri or "",
        body=ctx.msg.body,
    )
    return AUTH_OK if mine == response else AUTH_INVALID_PASSWORD


def post_auth(ctx: Context, cred: Credentials, ha1: str, st: Settings) -> int:
    """After a matching response: the ``Authentication-Info`` header when
    ``add_authinfo_hdr`` is set (the next nonce is the same one, or a new one with
    one-time nonces): :data:`AUTH_OK`."""
    if st.add_authinfo:
        rspauth = calc_response(
            st.algorithm,
            ha1,
            nonce=cred.nonce or "",
            nc=cred.nc or "",
            cnonce=cred.cnonce or "",
            qop=cred.qop or "",
            method="",
            uri=cred.uri or "",
        )
        nextnonce = new_nonce(ctx, st) if st.otn_enabled else (cred.nonce or "")
        ctx.reply_lumps.append(
            f'Authentication-Info: nextnonce="{nextnonce}", qop={cred.qop or ""}, '
            f'rspauth="{rspauth}", cnonce="{cred.cnonce or ""}", nc={cred.nc or ""}\r\n'
        )
    return AUTH_OK


def authenticate(
    ctx: Context,
    realm: str,
    kind: str,
    *,
    method: str,
    ha1_of: Callable[[Credentials, str], str | int],
    st: Settings | None = None,
) -> tuple[int, Credentials | None]:
    """The whole check (``pv_authenticate``/auth_db's ``digest_authenticate``):
    ``ha1_of(cred, realm)`` gives the HA1 or a negative script code (-3 unknown
    user, -1 database error). Returns the script code and the credentials."""
    st = st or settings(ctx)
    pre = pre_auth(ctx, realm, kind, st)
    if pre.result == AUTHENTICATED:
        return AUTH_OK, None
    if pre.result != DO_AUTHENTICATION or pre.cred is None:
        return pre.result, pre.cred
    cred = pre.cred
    ha1 = ha1_of(cred, strip_realm(st, realm))
    if isinstance(ha1, int):
        return ha1, cred
    code = check_response(ctx, cred, method, ha1, st)
    if code == AUTH_OK:
        code = post_auth(ctx, cred, ha1, st)
    return code, cred


def _uri_user_host(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = split_uri(text)
    if parts is None:
        return None
    return parts.user or "", parts.host


def user_matches(
    ctx: Context, cred: Credentials, *, use_domain: bool, skip_fwd: bool = False
) -> int:
    """The identity checks of ``auth_check(..., 1)``: the auth user must be the To
    user (REGISTER, PUBLISH) or the From user (others; skipped for INVITE, BYE,
    PRACK, UPDATE, MESSAGE with ``skip_fwd``), From and To users (and with
    ``use_domain`` hosts) equal for REGISTER/PUBLISH, and the R-URI's for PUBLISH:
    :data:`AUTH_OK`, :data:`AUTH_USER_MISMATCH` or :data:`AUTH_ERROR`."""
    method = request_method(ctx)
    try:
        frm = ctx.msg.from_
        to = ctx.msg.to
    except SipParseError:
        return AUTH_ERROR
    furi = _uri_user_host(frm.uri_raw.decode("utf-8", "surrogateescape") if frm else None)
    if furi is None:
        return AUTH_ERROR
    turi = furi
    if method in ("REGISTER", "PUBLISH"):
        found = _uri_user_host(to.uri_raw.decode("utf-8", "surrogateescape") if to else None)
        if found is None:
            return AUTH_ERROR
        turi = found
    uri = turi if method in ("REGISTER", "PUBLISH") else furi
    skipped = skip_fwd and method in ("INVITE", "BYE", "PRACK", "UPDATE", "MESSAGE")
    if not skipped and cred.user != uri[0]:
        return AUTH_USER_MISMATCH
    if method in ("REGISTER", "PUBLISH"):
        if furi[0] != turi[0] or (use_domain and furi[1] != turi[1]):
            return AUTH_USER_MISMATCH
        if method == "PUBLISH":
            ruri = _uri_user_host(current_ruri(ctx))
            if ruri is None:
                return AUTH_ERROR
            if furi[0] != ruri[0] or (use_domain and furi[1] != ruri[1]):
                return AUTH_USER_MISMATCH
    return AUTH_OK


# ---------------------------------------------------------------------------------
# challenges (challenge.c, auth_mod.c)
# ---------------------------------------------------------------------------------


def build_challenge(
    ctx: Context,
    realm: str,
    kind: str,
    *,
    qop: str | None = None,
    stale: bool = False,
    st: Settings | None = None,
) -> str:
    """The ``WWW-Authenticate``/``Proxy-Authenticate`` line with its CRLF
    (``get_challenge_hf``), with a new nonce."""
    st = st or settings(ctx)
    name = st.proxy_header if kind == PROXY else st.www_header
    out = [f'{name}: Digest realm="{strip_realm(st, realm)}", nonce="{new_nonce(ctx, st)}"']
    if qop:
        out.append(f', qop="{qop}"')
    if stale:
        out.append(", stale=true")
    if st.algorithm == "SHA-256":
        out.append(", algorithm=SHA-256")
    out.append("\r\n")
    return "".join(out)


def _send_reply(ctx: Context, st: Settings, code: int, reason: str, hdr: str | None) -> int:
    """``auth_send_reply``: the header as a reply lump, then sl's ``freply``
    (stateful when a transaction exists) or, with ``force_stateless_reply``,
    ``sreply``."""
    if hdr:
        ctx.reply_lumps.append(hdr)
    engine = ctx.proc.engine
    if not st.force_stateless and engine.has_transaction(ctx):
        return engine.t_reply(ctx, code, reason)
    return engine.send_reply(ctx, code, reason)


def _challenge(ctx: Context, realm: str, flags: int, kind: str) -> int:
    """``auth_challenge_helper``: 1 when the 401/407 was sent, -3 when sending failed;
    an empty realm is -1 after a 500 (none with flag 4; -4 if the 500 fails)."""
    st = settings(ctx)
    if not realm:
        log.error("invalid realm value - empty content")
        if not flags & 4 and _send_reply(ctx, st, 500, "Internal Server Error", None) < 0:
            return -4
        return -1
    qop = "auth-int" if flags & 2 else "auth" if flags & 1 else None
    hdr = build_challenge(ctx, realm, kind, qop=qop, stale=bool(flags & 16), st=st)
    if kind == WWW:
        sent = _send_reply(ctx, st, 401, "Unauthorized", hdr)
    else:
        sent = _send_reply(ctx, st, 407, "Proxy Authentication Required", hdr)
    return 1 if sent >= 0 else -3


def www_challenge(ctx: Context, realm: str, flags: int) -> int:
    """``www_challenge(realm, flags)``: 401 with ``WWW-Authenticate``."""
    return _challenge(ctx, realm, flags, WWW)


def proxy_challenge(ctx: Context, realm: str, flags: int) -> int:
    """``proxy_challenge(realm, flags)``: 407 with ``Proxy-Authenticate``."""
    return _challenge(ctx, realm, flags, PROXY)


def auth_challenge(ctx: Context, realm: str, flags: int) -> int:
    """``auth_challenge(realm, flags)``: 401 for REGISTER, 407 for other requests;
    1 without a reply for ACK and CANCEL."""
    method = request_method(ctx)
    if method in ("ACK", "CANCEL"):
        return 1
    return _challenge(ctx, realm, flags, WWW if method == "REGISTER" else PROXY)


def auth_get_www_authenticate(ctx: Context, realm: str, flags: int, dst: pv.Accessor) -> int:
    """``auth_get_www_authenticate(realm, flags, $pv)``: the ``WWW-Authenticate``
    line (with CRLF) a challenge would carry, stored in ``$pv``: 1; -1 for an
    empty realm."""
    if not realm:
        log.error("invalid realm value - empty content")
        return -1
    qop = "auth-int" if flags & 2 else "auth" if flags & 1 else None
    dst.set(ctx, build_challenge(ctx, realm, WWW, qop=qop, stale=bool(flags & 16)))
    return 1


# ---------------------------------------------------------------------------------
# credentials in the message
# ---------------------------------------------------------------------------------


def consume_credentials(ctx: Context) -> int:
    """``consume_credentials()``: remove the credentials line the last check used
    (``Authorization`` first, then ``Proxy-Authorization``): 1; -1 for ACK, CANCEL,
    PRACK or when no check marked any."""
    if request_method(ctx) in ("ACK", "CANCEL", "PRACK"):
        return -1
    marked = _msg_state(ctx).authorized
    line = marked.get(WWW, marked.get(PROXY))
    if line is None:
        log.error("no authorized credentials found (error in scripts)")
        return -1
    ls, _, _, le = ctx.msg.spans[line]
    ctx.msg._splice(ls, le, b"")  # one line, by position (Kamailio's del_lump)
    marked.clear()
    return 1


def has_credentials(ctx: Context, realm: str) -> int:
    """``has_credentials(realm)``: 1 when a ``Proxy-Authorization`` or
    ``Authorization`` header has digest credentials for ``realm``, else -1."""
    for kind in (PROXY, WWW):
        try:
            if find_credentials(ctx, realm, kind) is not None:
                return 1
        except (ValueError, SipParseError):
            return -1
    return -1


# ---------------------------------------------------------------------------------
# checks against a password from the script (pv_authenticate)
# ---------------------------------------------------------------------------------


def _pv_authenticate(
    ctx: Context, realm: str, passwd: str, flags: int, *, kind: str, method: str
) -> tuple[int, Credentials | None]:
    st = settings(ctx)
    if not realm or not passwd:
        log.error("invalid realm or password value - empty content")
        return AUTH_ERROR, None

    def ha1_of(cred: Credentials, stripped: str) -> str | int:
        if flags & 1:
            return passwd
        return calc_ha1(st.algorithm, cred.username or "", stripped, passwd)

    code, cred = authenticate(ctx, realm, kind, method=method, ha1_of=ha1_of, st=st)
    if code < 0 and flags & 14:
        qop = "auth-int" if flags & 8 else "auth" if flags & 4 else None
        stale = cred.stale if cred is not None else False
        value = build_challenge(ctx, realm, kind, qop=qop, stale=stale, st=st)
        ctx.avps.setdefault(st.challenge_avp, []).insert(0, value)
    return code, cred


def pv_www_authenticate(
    ctx: Context, realm: str, passwd: str, flags: int, method: str | None = None
) -> int:
    """``pv_www_authenticate(realm, passwd, flags[, method])``: check the
    ``Authorization`` credentials against ``passwd`` (an HA1 with flag 1); flags
    2/4/8 store a challenge (no qop / auth / auth-int) in ``$avp(digest_challenge)``
    on failure."""
    if method is not None and not method:
        log.error("invalid method value - empty content")
        return AUTH_ERROR
    return _pv_authenticate(
        ctx, realm, passwd, flags, kind=WWW, method=method or request_method(ctx)
    )[0]


def pv_proxy_authenticate(ctx: Context, realm: str, passwd: str, flags: int) -> int:
    """``pv_proxy_authenticate(realm, passwd, flags)``: as
    :func:`pv_www_authenticate` over ``Proxy-Authorization``."""
    return _pv_authenticate(ctx, realm, passwd, flags, kind=PROXY, method=request_method(ctx))[0]


def pv_www_authorize(ctx: Context, realm: str, passwd: str, flags: int) -> int:
    """``pv_www_authorize``: the old name of :func:`pv_www_authenticate`."""
    return pv_www_authenticate(ctx, realm, passwd, flags)


def pv_proxy_authorize(ctx: Context, realm: str, passwd: str, flags: int) -> int:
    """``pv_proxy_authorize``: the old name of :func:`pv_proxy_authenticate`."""
    return pv_proxy_authenticate(ctx, realm, passwd, flags)


def pv_auth_check(ctx: Context, realm: str, passwd: str, flags: int, checks: int) -> int:
    """``pv_auth_check(realm, passwd, flags, checks)``: www for REGISTER, proxy
    otherwise; with ``checks`` 1 the auth user must match From/To (-8 if not)."""
    method = request_method(ctx)
    if method in ("ACK", "CANCEL"):
        return AUTH_OK
    kind = WWW if method == "REGISTER" else PROXY
    code, cred = _pv_authenticate(ctx, realm, passwd, flags, kind=kind, method=method)
    if code == AUTH_OK and checks & 1:
        if cred is None:
            return AUTH_OK if method == "PRACK" else AUTH_ERROR
        return user_matches(ctx, cred, use_domain=settings(ctx).use_domain)
    return code


# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY

EXPORTS = ModuleExports(
    name="auth",
    cmds=(
        # challenges
        Cmd(
            "www_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
            impl=www_challenge,
        ),
        Cmd(
            "proxy_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
            impl=proxy_challenge,
        ),
        Cmd(
            "auth_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
            impl=auth_challenge,
        ),
        Cmd(
            "pv_www_authenticate",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
            impl=pv_www_authenticate,
        ),
        Cmd(
            "pv_www_authenticate",
            (STR, STR, INT, STR),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
            impl=pv_www_authenticate,
        ),
        Cmd(
            "pv_proxy_authenticate",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
            impl=pv_proxy_authenticate,
        ),
        Cmd(
            "auth_get_www_authenticate",
            (STR, INT, PV_WRITE),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_auth_get_www_authenticate",
            impl=auth_get_www_authenticate,
        ),
        # checks against a PV password
        Cmd(
            "pv_www_authorize",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
            impl=pv_www_authorize,
        ),
        Cmd(
            "pv_proxy_authorize",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
            impl=pv_proxy_authorize,
        ),
        Cmd(
            "pv_auth_check",
            (STR, STR, INT, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth_check",
            impl=pv_auth_check,
        ),
        # credentials
        Cmd("consume_credentials", (), Route.REQUEST, impl=consume_credentials),
        Cmd(
            "has_credentials",
            (STR,),
            Route.REQUEST,
            fixup="fixup_spve_null",
            impl=has_credentials,
        ),
    ),
    params=(
        ModParam("secret", str, None),
        ModParam("nonce_expire", int, 300),
        ModParam("nonce_auth_max_drift", int, 3),
        ModParam("protect_contacts", int, None),
        ModParam("challenge_attr", str, None),
        ModParam("proxy_challenge_header", str, None),
        ModParam("www_challenge_header", str, None),
        ModParam("qop", str, None),
        ModParam("auth_checks_register", int, None),
        ModParam("auth_checks_no_dlg", int, None),
        ModParam("auth_checks_in_dlg", int, None),
        ModParam("nonce_count", int, 0),
        ModParam("nc_array_size", int, 1048576),
        ModParam("nc_array_order", int, 20),
        ModParam("one_time_nonce", int, 0),
        ModParam("otn_in_flight_no", int, 1048576),
        ModParam("otn_in_flight_order", int, 20),
        ModParam("nid_pool_no", int, 1),
        ModParam("force_stateless_reply", int, None),
        ModParam("realm_prefix", str, ""),
        ModParam("use_domain", int, None),
        ModParam("algorithm", str, None),
        ModParam("add_authinfo_hdr", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``www_challenge/3``, ``proxy_challenge/3``, ``auth_challenge/3``, ``auth_algorithm/1``
