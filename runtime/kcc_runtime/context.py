"""Route contexts: everything a generated route function reads and changes.

A generated route function is ``def route_X(ctx: RequestContext) -> int``: plain,
synchronous, sans-IO. It reads the message and the script state through ``ctx`` and
asks the :class:`Engine` for everything that leaves the process (replies, forwards,
transactions). The engine is the stateless core and transaction layer of the running
proxy; it is sans-IO too (it queues datagrams, the transport sends them), so a route
can be run in a test with nothing but bytes and a fake engine.

Script control follows Kamailio's ``action.c``:

- every function call records its return code in ``$rc`` (:meth:`Context.action`);
  a code of 0 ends the script (an implicit ``exit``): :class:`ScriptExit`;
- ``exit`` raises :class:`ScriptExit`, ``drop`` raises :class:`ScriptDrop`; both end
  every nested ``route()`` and are caught by the :class:`~kcc_runtime.router.Router`;
- ``route(X)`` runs a block with a recursion guard (``max_recursive_level``);
- ``while`` loops stop after ``max_while_loops`` iterations (:class:`LoopGuard`).

State has Kamailio's lifetimes: :class:`Process` holds what lives as long as a worker
(``$var``, the shared ``$shv`` table, the config); a :class:`Context` holds what
belongs to one run of a top-level route (the message, its flags, ``$rc``, AVPs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol, Self, TypeAlias

from kcc_runtime.exports import Route
from kcc_runtime.htable import HashTables
from kcc_runtime.shared import SharedStore
from kcc_runtime.values import Value

if TYPE_CHECKING:
    from kcc_runtime.kw import Myself
    from kcc_runtime.location import LocationStore
    from kcc_runtime.pike import PikeTree
    from kcc_runtime.router import Config
    from kcc_runtime.sip import Message, Request, Response
    from kcc_runtime.tm import Cell

__all__ = [
    "Branch",
    "BranchContext",
    "BranchFailureContext",
    "BranchFailureRouteFn",
    "BranchRouteFn",
    "Context",
    "Engine",
    "EventContext",
    "FailureContext",
    "FailureRouteFn",
    "LoopGuard",
    "OnsendContext",
    "Process",
    "Received",
    "ReplyContext",
    "ReplyRouteFn",
    "RequestContext",
    "RouteFn",
    "RuntimeSettings",
    "ScriptDrop",
    "ScriptExit",
]

log = logging.getLogger("kcc_runtime.script")


class ScriptExit(Exception):  # noqa: N818 -- Kamailio's name for the action
    """``exit`` (or a function returning 0): stop running the script for this message."""


class ScriptDrop(Exception):  # noqa: N818 -- Kamailio's name for the action
    """``drop``: stop the script and drop the message (in a reply or branch route the
    reply is not relayed, the branch not sent)."""


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The core settings of the cfg that govern script execution."""

    max_while_loops: int = 100
    max_recursive_level: int = 256
    max_branches: int = 12


class Engine(Protocol):
    """What route code asks of the running proxy: the stateless core and the
    transaction layer. Implemented by the proxy (``kcc_runtime.serve``) and by fakes
    in tests (``tests/runtime/fake_engine.py``).

    Every method that performs an action returns a Kamailio return code (> 0 success,
    < 0 failure; 0 only where Kamailio itself returns 0, which ends the script). The
    module functions in :mod:`kcc_runtime.modules` do the pure message work themselves
    (R-URI, flags, headers) and call these methods only for what leaves the process or
    lives in a transaction. The message to send is ``ctx.msg`` with its edits and
    ``ctx.new_uri`` / ``ctx.dst_uri`` / ``ctx.branches``; the engine reads
    ``ctx.msg_flags`` (``force_rport``, ``set_forward_close``...), the advertised
    address and port, ``ctx.send_socket`` and the armed ``ctx.on_failure`` /
    ``ctx.on_branch`` / ``ctx.on_reply`` routes when it sends.
    """

    # -- the stateless core ---------------------------------------------------------

    def send_reply(self, ctx: Context, code: int, reason: str) -> int:
        """Send a stateless reply ``code reason`` to the request ``ctx.msg`` (sl's
        ``sl_send_reply``): 1 when sent, -1 on failure (the message cannot be
        replied to, the code is out of 100..699, sending failed)."""
        ...

    def send_error_reply(self, ctx: Context) -> int:
        """sl's ``sl_reply_error``: a stateless reply describing the last internal
        error of this message (Kamailio's ``err2reason_phrase`` of ``prev_ser_error``,
        500 "Server Internal Error" when none is recorded): 1 when sent, -1 else."""
        ...

    def forward(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        """Stateless ``forward``: send the request (or relay the reply) to ``host``
        and ``port`` over ``proto``. ``host`` None: the next hop is ``ctx.dst_uri``
        or else the R-URI (``ctx.new_uri`` or the received one), with its port and
        ``transport``; ``port`` None: the port of that URI or the protocol's default
        (5060, 5061 for TLS); ``proto`` None: the URI's transport, else UDP.
        1 when sent, -1 when the destination cannot be resolved or sending failed."""
        ...

    def is_myself(self, host: str, port: int | None, proto: str | None) -> bool:
        """Kamailio's ``check_self``: whether ``host`` (an IP, IPv6 in brackets or
        not, or a name) is one of the listen addresses or aliases and ``port`` one
        of their ports (None: the default port of ``proto``, 5060/5061). Used by
        ``loose_route`` to recognise its own Route entries."""
        ...

    # -- the transaction layer (tm) ---------------------------------------------------

    def has_transaction(self, ctx: Context) -> bool:
        """Whether a transaction exists for ``ctx.msg`` (tm's ``t_gett()`` set and
        not ``T_UNDEFINED``); sl's ``send_reply`` replies statefully then."""
        ...

    def t_relay(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        """tm's ``t_relay``: create the transaction if there is none and forward the
        request statefully to every branch (the R-URI branch, then ``ctx.branches``),
        arming ``ctx.on_failure``/``on_branch``/``on_reply``. ``host``/``port``/
        ``proto`` as for :meth:`forward` (``t_relay(host, port)``,
        ``t_relay_to_udp``...). Kamailio's codes: 1 relayed, 0 for a retransmission
        already absorbed (ACK to a negative reply, CANCEL relayed), -1 error."""
        ...

    def t_newtran(self, ctx: Context) -> int:
        """tm's ``t_newtran``: create the transaction for the request: 1 created,
        0 when the request is a retransmission (the script ends), -1 error."""
        ...

    def t_check_trans(self, ctx: Context) -> int:
        """tm's ``t_check_trans``: for a request, 1 when it belongs to an existing
        transaction (a retransmission is absorbed and the script ends: 0; a CANCEL
        or ACK of a known transaction: 1), -1 when there is none; for a reply, 1
        when it matches a transaction."""
        ...

    def t_reply(self, ctx: Context, code: int, reason: str) -> int:
        """tm's ``t_reply``: send ``code reason`` statefully on the transaction
        (created if needed, as Kamailio does for ``t_reply`` in request_route): 1
        sent, -1 error."""
        ...

    def t_is_canceled(self, ctx: Context) -> int:
        """1 when the transaction was canceled (a CANCEL arrived), -1 otherwise or
        when there is no transaction."""
        ...

    def t_branch_timeout(self, ctx: Context) -> int:
        """In failure_route: 1 when the failed branch ended by timeout, -1 otherwise."""
        ...

    def t_any_timeout(self, ctx: Context) -> int:
        """1 when any branch of the transaction timed out, -1 otherwise."""
        ...

    def t_status(self, ctx: Context) -> int | None:
        """The status ``t_check_status`` tests, by route kind (tm ``t_check_status``):
        request_route: the last reply the transaction sent (0 when none);
        failure_route: the winning reply's code (``t_pick_branch``);
        branch_failure_route: the failed branch's last received code. None when
        there is no transaction. (In a reply route the module uses the reply's own
        status and asks only whether a transaction exists.)"""
        ...

    def t_set_fr(self, ctx: Context, invite_ms: int, noninvite_ms: int) -> int:
        """tm's ``t_set_fr``: the final-response timeouts (ms; 0 = the module
        default) of the current transaction, or of the next one the message
        creates: 1, -1 on error."""
        ...

    # -- other modules ------------------------------------------------------------------

    def xhttp_reply(self, ctx: Context, code: int, reason: str, ctype: str, body: str) -> int:
        """xhttp's ``xhttp_reply``: answer the HTTP request of
        ``event_route[xhttp:request]``: 1 sent, -1 error."""
        ...


class Received(NamedTuple):
    """Where a message came from and on which local socket (``$si $sp $Ri $Rp $pr``).

    ``proto`` is Kamailio's protocol name (``udp``, ``tcp``, ``tls``, ``sctp``, ``ws``,
    ``wss``); addresses are textual (IPv6 without brackets). A ``NamedTuple`` rather
    than a frozen dataclass: as immutable, and cheaper to build (one per message)."""

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    proto: str = "udp"


@dataclass
class Branch:
    """An additional branch (``append_branch``): its R-URI, ``$du``, q-value, flags."""

    uri: str
    dst_uri: str | None = None
    q: int = -1
    bflags: int = 0
    #: the Path of a registered contact (registrar ``lookup``): the route set the
    #: branch is sent through (Kamailio's ``branch.path``)
    path: str | None = None


@dataclass
class Process:
    """What lives as long as a worker process."""

    engine: Engine
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    #: ``$var(name)``: per process, kept from one message to the next
    vars: dict[str, Value] = field(default_factory=dict)
    #: ``$shv`` and ``lock()``: shared by all workers
    shared: SharedStore = field(default_factory=SharedStore)
    #: htable's ``$sht`` tables, ``sht_lock`` locks and iterators: set by the router
    htables: HashTables = field(default_factory=HashTables)
    #: route blocks by name for ``route($var(x))``: set by the router
    routes: Mapping[str, RouteFn] = field(default_factory=dict)
    #: ``modparam`` values by (module, parameter), as the module functions read them
    #: (rr ``append_fromtag``, maxfwd ``max_limit``...): set by the router from the
    #: config; a parameter not given keeps the module's default
    modparams: Mapping[tuple[str, str], int | str] = field(default_factory=dict)
    #: the compiled cfg's globals, modules and custom cfg variables (``myself``,
    #: ``@cfg_get``): set by the router; None in a bare test process
    config: Config | None = None
    #: what ``myself`` matches: the cfg's listen addresses and aliases plus the
    #: sockets the proxy really listens on (``--listen``, Kamailio's ``-l``): set by
    #: the engine; None in a bare test process (the cfg's own then)
    myself: Myself | None = None
    #: usrloc's location database (:mod:`kcc_runtime.location`): opened by the
    #: registrar on first use, in the worker (after the fork)
    location: LocationStore | None = None
    #: pike's IP tree (:mod:`kcc_runtime.pike`): shared by the workers when the
    #: supervisor made it, else made by the router or on first use
    pike: PikeTree | None = None

    def modparam_int(self, module: str, name: str, default: int) -> int:
        """The int value of ``modparam(module, name)``, or ``default``."""
        value = self.modparams.get((module, name), default)
        return value if isinstance(value, int) else default


class LoopGuard:
    """Counts the iterations of one ``while`` and stops it after ``max_while_loops``."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.limit = limit

    def next(self) -> bool:
        """Allow one more iteration; False (with Kamailio's error) past the limit."""
        self.count += 1
        if self.limit > 0 and self.count > self.limit:
            log.error("runaway while: more than %d loops", self.limit)
            return False
        return True


class Context:
    """One run of the script on one message."""

    # One context per message and per route run, and a transaction keeps its
    # request's: slots make it cheaper to build (measured: ~0.35 us instead of the
    # ~1 us of 30 instance-dict stores) and smaller. The ``__dict__`` slot stays for
    # what is set on an instance only now and then (``kind`` overridden, as for a
    # core reply route; ``send_to``, which kw's ``to_ip`` reads when an onsend
    # route has it); ``__weakref__`` for the modules that keep per-message state in
    # weak dictionaries (auth, sanity).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_depth",
        "advertised_address",
        "advertised_port",
        "avps",
        "bflags",
        "branches",
        "dst_uri",
        "flags",
        "msg",
        "msg_flags",
        "new_uri",
        "on_branch",
        "on_branch_failure",
        "on_failure",
        "on_reply",
        "path_vec",
        "proc",
        "rc",
        "received",
        "reply_lumps",
        "rr_lump",
        "rr_params",
        "rr_routed_params",
        "ruri_new",
        "send_socket",
        "sflags",
        "t_branch_idx",
        "t_reply_code",
        "tm_cell",
        "tm_fr",
    )

    #: the route kind this context runs (Kamailio's ``route_type``): a class
    #: attribute, overridden on an instance through its ``__dict__``
    kind: Route = Route.REQUEST

    def __init__(self, proc: Process, msg: Message, received: Received) -> None:
        self.proc: Process = proc
        self.msg: Message = msg
        self.received: Received = received
        #: the rewritten R-URI (``$ru`` after ``rewritehost``, ``$ru = ...``); None:
        #: unchanged. Kept apart from ``msg`` so ``revert_uri`` can undo it, as Kamailio
        #: keeps ``new_uri`` beside the first line
        self.new_uri: str | None = None
        #: the R-URI is a branch to send (Kamailio's ``ruri_is_new``): set by every
        #: R-URI write; a failure route starts with it clear, so its ``t_relay``
        #: sends the R-URI again only when the route set it
        self.ruri_new = True
        #: ``$du``, the next hop that overrides the R-URI for sending
        self.dst_uri: str | None = None
        #: the route set of the R-URI branch (Kamailio's ``path_vec``): the Path of
        #: the contact ``lookup`` chose, as a comma-separated list of ``<uri>``
        self.path_vec: str | None = None
        #: branches added by ``append_branch`` (branch 0 is the R-URI itself)
        self.branches: list[Branch] = []
        #: ``$avp``: name -> values, newest first (Kamailio's AVP list order)
        self.avps: dict[str | int, list[Value]] = {}
        #: core message flags that are not script flags: ``force_rport``,
        #: ``set_reply_close`` ... by Kamailio's action name
        self.msg_flags: set[str] = set()
        #: ``set_advertised_address``/``set_advertised_port``/``force_send_socket``
        self.advertised_address: str | None = None
        self.advertised_port: int | None = None
        self.send_socket: tuple[str, str, int] | None = None
        #: header text for every reply the proxy sends to this request
        #: (``append_to_reply``, sanity's ``Unsupported``; Kamailio's ``LUMP_RPL_HDR``),
        #: each line as written with its CRLF, in the order added
        self.reply_lumps: list[str] = []
        #: ``$rc`` / ``$?`` / ``$retcode``: the last action's return code
        self.rc: int = 1
        #: message flags (``setflag``, ``$mf``), script flags (``$sf``), branch flags
        #: of branch 0 (``$bf``): 32-bit sets as unsigned ints
        self.flags: int = 0
        self.sflags: int = 0
        self.bflags: int = 0
        #: the blocks armed by ``t_on_failure`` / ``t_on_branch`` / ``t_on_reply``
        #: (tm keeps them with the transaction; the engine copies them when it relays)
        self.on_failure: FailureRouteFn | None = None
        self.on_branch: BranchRouteFn | None = None
        self.on_reply: ReplyRouteFn | None = None
        #: ``t_on_branch_failure``: ``event_route[tm:branch-failure:NAME]``
        self.on_branch_failure: BranchFailureRouteFn | None = None
        #: tm: the transaction this message belongs to (set by ``t_newtran`` /
        #: ``t_relay``, and in the failure, branch and reply routes it runs)
        self.tm_cell: Cell | None = None
        #: ``$T_reply_code``: the reply being handled (reply route) or the winning
        #: one (failure route); ``$T_branch_idx``: that reply's branch
        self.t_reply_code: int | None = None
        self.t_branch_idx: int | None = None
        #: ``t_set_fr`` before the transaction exists: (fr_inv_timer, fr_timer) in
        #: seconds, None for the module default
        self.tm_fr: tuple[float | None, float | None] | None = None
        #: rr: ``add_rr_param`` text waiting for ``record_route`` (Kamailio's
        #: ``rr_param_buf``), the Record-Route edit ``record_route`` made (its
        #: ``msg._edits`` entry, which ``add_rr_param`` extends), and the URI
        #: parameters of our own Route entry ``loose_route`` consumed (with their
        #: leading ``;``: ``check_route_param``, ``is_direction``)
        self.rr_params: str = ""
        self.rr_lump: tuple[int, int, bytes] | None = None
        self.rr_routed_params: str | None = None
        self._depth = 0

    # -- return codes ---------------------------------------------------------------

    def action(self, rc: int) -> int:
        """Record a function's return code in ``$rc``; 0 ends the script."""
        self.rc = rc
        if rc == 0:
            raise ScriptExit
        return rc

    def test(self, rc: int) -> bool:
        """A function call used as a condition: true when its code is > 0."""
        return self.action(rc) > 0

    def value(self, rc: int) -> int:
        """A function call used as a value: 1 when its code is > 0, else 0."""
        return 1 if self.action(rc) > 0 else 0

    def returns(self, value: int) -> int:
        """``return value``: the block's value; ``return 0`` is ``exit``."""
        if value == 0:
            raise ScriptExit
        return value

    # -- sub-routes -----------------------------------------------------------------

    def route(self, fn: Callable[[Self], int]) -> int:
        """``route(NAME)``: run a block, record its value in ``$rc``."""
        if self._depth >= self.proc.settings.max_recursive_level:
            log.error(
                "too many recursive routing table lookups (%d)",
                self.proc.settings.max_recursive_level,
            )
            self.rc = -1
            return -1
        self._depth += 1
        try:
            rc = fn(self)
        finally:
            self._depth -= 1
        self.rc = rc
        return rc

    def route_by_name(self, name: str) -> int:
        """``route(expr)``: run the ``route[name]`` block; -1 if there is none."""
        fn = self.proc.routes.get(name)
        if fn is None:
            log.error("route [%s] not found", name)
            self.rc = -1
            return -1
        return self.route(fn)

    def loop_guard(self) -> LoopGuard:
        return LoopGuard(self.proc.settings.max_while_loops)


class RequestContext(Context):
    """``request_route`` and the blocks it calls: a received request."""

    kind = Route.REQUEST
    msg: Request


class FailureContext(Context):
    """``failure_route``: the request of a transaction whose branches all failed."""

    kind = Route.FAILURE
    msg: Request


class BranchFailureContext(FailureContext):
    """``event_route[tm:branch-failure:NAME]``: the request of a transaction one of
    whose branches got a negative final reply (tm's ``BRANCH_FAILURE_ROUTE``). The
    generated code types these blocks as :class:`FailureContext`."""

    kind = Route.BRANCH_FAILURE


class ReplyContext(Context):
    """``onreply_route`` / ``reply_route``: a received reply."""

    kind = Route.TM_ONREPLY
    msg: Response


class BranchContext(Context):
    """``branch_route``: one outgoing branch of a request."""

    kind = Route.BRANCH
    msg: Request


class OnsendContext(Context):
    """``onsend_route``: a request about to be sent."""

    kind = Route.ONSEND
    msg: Request


class EventContext(Context):
    """``event_route[module:event]``."""

    kind = Route.ONEVENT


#: a compiled route block of any kind (the ``route($var(x))`` table, the router)
RouteFn: TypeAlias = Callable[..., int]
#: a block a tm function arms: ``t_on_failure("X")`` gets ``failure_route_X``
FailureRouteFn: TypeAlias = Callable[[FailureContext], int]
#: ``t_on_branch_failure("X")`` gets ``event_route_tm__branch_x2dfailure__X``
BranchFailureRouteFn: TypeAlias = Callable[[FailureContext], int]
BranchRouteFn: TypeAlias = Callable[[BranchContext], int]
ReplyRouteFn: TypeAlias = Callable[[ReplyContext], int]
