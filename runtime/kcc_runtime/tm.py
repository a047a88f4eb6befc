"""Stateful forwarding: Kamailio tm's transaction user on top of the sans-IO
:class:`~kcc_runtime.transaction.TransactionLayer`.

The engine (:class:`kcc_runtime.engine.Proxy`) delegates every tm function to one
:class:`Tm`. A :class:`Cell` is Kamailio's ``struct cell``: the server transaction of
the request, its client branches (:class:`TmBranch`), the AVP list (the very dict of
the request's context: AVPs set after the transaction exists land in it, as Kamailio
switches the AVP list to the transaction's), the flags, R-URI, ``$du`` and message
edits saved at ``t_relay`` time, and the armed ``failure_route`` / ``branch_route`` /
``onreply_route``. Every fact below was measured on Kamailio 5.6.3 on loopback
(``examples/stateful_rr.cfg`` with a Python UDP caller and backends) or read from
tm's README and code:

- ``t_relay`` of an INVITE sends ``100 trying -- your call is important to us``
  first (``auto_inv_100``), built as sl builds a reply (top Via with ``rport`` filled
  and ``received`` appended, the ``Server`` header, no To-tag), then the branch: our
  Via with the same branch value a stateless ``forward`` would use for branch 0
  (``z9hG4bK<hash>.<md5>.<branch index>``, tm's ``branch_builder`` with the
  transaction's MD5), Record-Route and every other edit as the script left them.
- Replies are matched to their branch by the layer; ``onreply_route[X]`` runs with
  the transaction's AVPs and flags (``drop`` stops a provisional reply); 1xx but 100
  and every 2xx are relayed at once (our Via removed, nothing else changed); a
  3xx-6xx is kept until every branch is final, then ``failure_route`` runs on the
  request (``$T_reply_code`` / ``t_check_status`` see the winner picked as
  ``t_pick_branch`` does: a 6xx wins, else the lowest class, first branch first).
  A new branch added there (``t_relay`` after rewriting the R-URI) continues the
  transaction; with ``failure_reply_mode`` 3 the replies of the earlier branches are
  forgotten. Otherwise the winning reply goes upstream (unless the route replied);
  a 503 goes as a local ``500`` with the 503's reason phrase (``remap_503_500``,
  measured: ``500 Service Unavailable`` with tm's To-tag and ``Server`` header).
- A branch with no final reply when ``fr_timer`` (no 1xx) or ``fr_inv_timer``
  (after a 1xx) ends gets a local ``408 Request Timeout`` -- ``487 Request
  Terminated`` when the transaction was canceled -- and the same failure logic
  runs. Local replies carry tm's To-tag: ``md5("SER-TM/tags" + first listen address
  + port)``, ``-`` and the same CRC suffix as sl's (``init_tags`` with
  ``TM_TAG_SEPARATOR``); measured: ``5b4167208bb1319f0333e26fe8df2283-621b42b8``.
- ``t_relay`` of a CANCEL whose INVITE transaction exists answers ``200
  canceling`` on the CANCEL's own transaction, sends a CANCEL (same Via branch as the
  INVITE branch) on every branch that received a provisional reply and marks the
  others: they are canceled when a 1xx arrives, or end with a local 487 at their
  timeout (``cancel_b_method`` 1, measured: 487 to the caller at ``fr_timer``).
- ``t_on_branch_failure("X")`` arms ``event_route[tm:branch-failure:X]``: each
  branch keeps the block armed when it was created, and the block runs on every
  negative final reply of that branch (a local 408/487 too) before the transaction
  decides, on the request as saved in the transaction (``$ru`` is the transaction's
  R-URI, not the branch's), with ``$T_reply_code``/``t_check_status`` of that
  branch. tm disarms it before running it, so a branch the block starts with
  ``t_relay()`` gets none unless the block arms it again; message flags set there
  go back to the transaction. Measured: with branches to 5381 (486) and 5383 (503)
  the block ran twice (``$T_branch_idx`` 0 then 1, ``$ru`` the 5381 R-URI both
  times); a ``t_relay()`` in it after ``rewritehostport`` returned 1 and started
  branch 2, whose 404 did not run the block; the failure_route ran after the last
  branch was final.
- The winner among negative replies is tm's ``t_pick_branch``: the lowest
  ``get_prio`` (6xx 1000+xx, 3xx 3000+xx, 4xx 4000+xx with 401, 407, 415, 420 and
  484 before the other 4xx, 5xx 5000+xx), the first branch on a tie. Measured:
  486 (branch 0), 408 (branch 1) and 404 (branch 2) -> 404.
- A transaction has Kamailio's ids (``$T(id_index)``, ``$T(id_label)``): the hash
  index is the one in the branch parameter (``core_hash(Call-ID, CSeq number)``
  modulo 65536, measured 62340 for the tests' ``c1`` INVITE, ``483f`` reversed);
  the label counts up per hash entry from a random start (Kamailio seeds each entry
  with ``kam_rand()``; measured labels such as 1112227328).
- ``t_on_failure``/``t_on_branch``/``t_on_reply``/``t_on_branch_failure`` arm the
  transaction itself once it exists (tm's ``t_on_*`` write ``t->on_*`` when
  ``T`` is set, else a per-message variable ``t_newtran`` copies). Measured with
  ``t_is_set``: armed before ``t_newtran`` -> true after it; in failure_route the
  failure route is disarmed (false), the reply route still set; in a branch_route
  ``t_is_set("branch_route")`` is false.
- ``t_check_trans``: a retransmission is absorbed (the last reply resent) and the
  script ends (0); an ACK for a negative reply is absorbed (0); a CANCEL: 1 when
  its INVITE transaction exists; else -1. An ACK for a 2xx matches nothing and
  ``t_relay`` forwards it statelessly.

A worker that stops (SIGTERM, serve.py) drains: :meth:`Tm.pending` tells which
transactions still owe something (a request with no final reply yet, an INVITE's
negative final reply not yet acknowledged, which timer G retransmits), and at the
drain's deadline :meth:`Tm.abort` answers each request still unanswered locally and
cancels its branches, as a CANCEL from the caller would. Kamailio has no drain (its
SIGTERM ends every process at once); this is kcc's own.
"""

from __future__ import annotations

import hashlib
import logging
import random
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from kcc_runtime.context import (
    BranchContext,
    BranchFailureContext,
    Context,
    FailureContext,
    Received,
    ReplyContext,
)
from kcc_runtime.exports import Route
from kcc_runtime.sip import Request, Response, SipParseError, parse_message
from kcc_runtime.transaction import (
    ClientTransaction,
    ResponseReceived,
    ServerTransaction,
    State,
    Timeout,
    TimerConfig,
    Transaction,
    TransactionLayer,
    TransactionLimitError,
    TransactionTerminated,
)
from kcc_runtime.values import Value

if TYPE_CHECKING:
    from kcc_runtime.context import (
        BranchFailureRouteFn,
        BranchRouteFn,
        FailureRouteFn,
        ReplyRouteFn,
    )
    from kcc_runtime.engine import Proxy, Socket

__all__ = [
    "CANCELING",
    "TABLE_ENTRIES",
    "Cell",
    "Dest",
    "Tm",
    "TmBranch",
    "hash_index",
    "reply_prio",
    "timer_config",
    "tm_tag_prefix",
]

log = logging.getLogger("kcc_runtime.tm")

#: tm's ``TABLE_ENTRIES``: the transaction hash (``$T(id_index)``, led by every
#: branch the proxy sends) is taken modulo this
TABLE_ENTRIES: Final = 1 << 16
#: tm's reason for the 200 answering a CANCEL (``CANCELING``)
CANCELING: Final = "canceling"
#: tm's reason for the automatic 100 (``auto_inv_100_reason``)
TRYING: Final = "trying -- your call is important to us"
TIMEOUT_REASON: Final = "Request Timeout"
TERMINATED_REASON: Final = "Request Terminated"
#: Kamailio's errors ``t_relay`` can meet, with what ``err2reason_phrase`` makes of
#: them: (reply code, text, error number). The reason reads ``text (number/TM)`` and
#: ``t_relay`` returns the number negated -- measured on 5.6.3: an unresolvable host
#: -478 and ``478 Unresolvable destination (478/TM)``, no socket for the protocol -7
#: and ``500 ... (7/TM)``, every branch dropped in branch_route -6 and ``500 ...
#: (6/TM)``.
TmError: TypeAlias = tuple[int, str, int]
_SORRY: Final = "I'm terribly sorry, server error occurred"
E_UNSPEC: Final[TmError] = (500, _SORRY, 1)
E_CFG: Final[TmError] = (500, _SORRY, 6)
E_NO_SOCKET: Final[TmError] = (500, _SORRY, 7)
E_SCRIPT: Final = -10
E_BAD_ADDRESS: Final[TmError] = (478, "Unresolvable destination", 478)
E_SEND: Final[TmError] = (477, "Unfortunately error on sending to next hop occurred", 477)
E_BAD_URI: Final[TmError] = (400, "Regretfully, we were not able to process the URI", 400)
#: server transaction states in which the request has no final reply yet
_UNANSWERED: Final = frozenset({State.TRYING, State.PROCEEDING})


@dataclass(frozen=True, slots=True)
class Dest:
    """Where a transaction's messages go (the layer's opaque ``dest``/``src``)."""

    proto: str
    addr: tuple[str, int]
    sock: Socket


def tm_tag_prefix(sockets: tuple[Socket, ...]) -> str:
    """The fixed part of tm's To-tags: ``md5("SER-TM/tags" + address + port)`` of the
    first listen socket (Kamailio's ``init_tags(tm_tags, ..., "SER-TM/tags", '-')``)."""
    seed = b"SER-TM/tags"
    if sockets:
        seed += sockets[0].ip.encode() + str(sockets[0].port).encode()
    return hashlib.md5(seed, usedforsecurity=False).hexdigest()


def timer_config(modparams: dict[str, int | str]) -> TimerConfig:
    """tm's ``modparam`` timer values (ms in the cfg) as the layer's settings."""

    def ms(name: str, default: int) -> float:
        value = modparams.get(name, default)
        return (value if isinstance(value, int) else default) / 1000.0

    restart = modparams.get("restart_fr_on_each_reply", 1)
    return TimerConfig(
        t1=ms("retr_timer1", 500),
        t2=ms("retr_timer2", 4000),
        fr_timer=ms("fr_timer", 30000),
        fr_inv_timer=ms("fr_inv_timer", 120000),
        wt_timer=ms("wt_timer", 5000),
        restart_fr_on_each_reply=restart != 0,
        max_inv_lifetime=ms("max_inv_lifetime", 180000),
        max_noninv_lifetime=ms("max_noninv_lifetime", 32000),
    )


@dataclass(eq=False, slots=True)
class TmBranch:
    """One client branch (Kamailio's ``struct ua_client``)."""

    index: int
    tx: ClientTransaction
    #: the highest status received, or the local one (408/487) once final
    status: int = 0
    reason: str = ""
    #: the final reply received (None: none, or a local final)
    reply: Response | None = None
    final: bool = False
    timed_out: bool = False
    #: canceled before any reply: send the CANCEL when a 1xx comes
    cancel_pending: bool = False
    cancel_sent: bool = False
    #: the branch-failure block armed when the branch was created (tm's per-branch
    #: ``on_branch_failure``)
    on_branch_failure: BranchFailureRouteFn | None = None
    #: where the final reply came from (``$T_rpl($si)``)
    reply_received: Received | None = None
    #: the branch's R-URI when the script rewrote it (None: the request's), for
    #: acc's records (Kamailio's ``uac[i].uri``)
    uri: str | None = None


@dataclass(eq=False, slots=True)
class Cell:
    """A transaction as tm keeps it (Kamailio's ``struct cell``)."""

    server: ServerTransaction
    request: Request
    #: the request-route context that created the cell (local replies are built
    #: from it: its source, ``force_rport``, ``append_to_reply`` lumps)
    ctx: Context
    avps: dict[str | int, list[Value]]
    flags: int = 0
    sflags: int = 0
    bflags: int = 0
    msg_flags: set[str] = field(default_factory=set)
    edits: list[tuple[int, int, bytes]] = field(default_factory=list)
    new_uri: str | None = None
    dst_uri: str | None = None
    on_failure: FailureRouteFn | None = None
    on_branch: BranchRouteFn | None = None
    on_reply: ReplyRouteFn | None = None
    on_branch_failure: BranchFailureRouteFn | None = None
    fr_timer: float | None = None
    fr_inv_timer: float | None = None
    branches: list[TmBranch] = field(default_factory=list)
    #: the first branch whose reply counts (``failure_reply_mode`` 3)
    first_considered: int = 0
    canceled: bool = False
    #: a final reply went upstream
    #: the final reply was counted in tmx's statistics (``tmx:2xx_transactions``...)
    final_counted: bool = False
    final_sent: bool = False
    #: ``t_relay`` failed before any branch was sent: the reply tm sends at the end
    #: of the script when nothing else answered (Kamailio's ``kill_transaction``)
    error: TmError | None = None
    #: Kamailio's transaction ids: ``$T(id_index)`` (the hash table entry) and
    #: ``$T(id_label)``
    hash_index: int = 0
    label: int = 0
    #: acc watches this transaction (its flags at creation asked for it), and its
    #: missed-call callback (an INVITE with ``log_missed_flag``): ``modules.acc``
    acc_armed: bool = False
    acc_missed_armed: bool = False
    #: the branch whose final reply went (or goes) upstream, -1 none (Kamailio's
    #: ``relayed_reply_branch``)
    relayed_branch: int = -1
    _received: Request | None = field(default=None, repr=False)

    def received_request(self) -> Request:
        """The request as the transaction received it, without the script's edits
        (``$T_req``, ``$T_inv``: tmx parses the buffer tm keeps); parsed once."""
        if self._received is None:
            try:
                msg = parse_message(self.request.buf)
            except SipParseError:
                msg = None
            self._received = msg if isinstance(msg, Request) else self.request
        return self._received

    def answered(self) -> bool:
        """Whether a final reply went upstream (the failure route may have replied)."""
        return self.final_sent


class Tm:
    """Kamailio's tm for one :class:`~kcc_runtime.engine.Proxy` (one worker)."""

    def __init__(self, proxy: Proxy, modparams: dict[str, int | str]) -> None:
        self.proxy = proxy
        self.layer = TransactionLayer(timer_config(modparams))
        mode = modparams.get("failure_reply_mode", 3)
        self.failure_reply_mode = mode if isinstance(mode, int) else 3
        auto = modparams.get("auto_inv_100", 1)
        self.auto_inv_100 = auto != 0
        reason = modparams.get("auto_inv_100_reason", TRYING)
        self.trying_reason = reason if isinstance(reason, str) else TRYING
        self.remap_503_500 = modparams.get("remap_503_500", 1) != 0
        self.tag_prefix = tm_tag_prefix(proxy.sockets)
        self._pumping = False
        self._last_error = E_UNSPEC
        #: the next label of each hash entry, each started at a random value as
        #: Kamailio's ``init_hash_table`` does: one array of 256 KB filled here, so
        #: the table costs the same on the first call as after a million (a dict
        #: filled entry by entry grew for the life of the worker, and its entries,
        #: allocated among each transaction's objects, kept their arenas alive)
        rng = random.Random()
        self._labels = array("I", (rng.getrandbits(31) for _ in range(TABLE_ENTRIES)))
        from kcc_runtime.modules.acc import Accounting

        #: acc's transaction callbacks, None when the cfg does not load acc
        self.acc: Accounting | None = Accounting.for_tm(self)

    # -- glue ----------------------------------------------------------------------

    def _now(self) -> float:
        return self.proxy.clock()

    def flush(self) -> None:
        """Queue what the layer wants sent, in order, through the outbound guard."""
        if not self.layer.has_output:
            return
        for data, dest in self.layer.datagrams_to_send():
            if isinstance(dest, Dest):
                self.proxy.emit(data, dest.proto, dest.addr, dest.sock)

    def pump(self) -> None:
        """Handle the layer's events (replies, timeouts), then flush. Re-entrant
        calls (a failure route relaying) only flush; the outer loop takes the rest."""
        self.flush()
        if self._pumping:
            return
        self._pumping = True
        try:
            while (event := self.layer.next_event()) is not None:
                if isinstance(event, ResponseReceived):
                    self._on_response(event)
                elif isinstance(event, Timeout):
                    self._on_timeout(event)
                elif isinstance(event, TransactionTerminated):
                    self._terminated(event.transaction)
                self.flush()
        finally:
            self._pumping = False

    @staticmethod
    def _terminated(tx: Transaction) -> None:
        """A transaction of a cell ended; once the server transaction and every
        branch have, nothing can reach the cell again (the layer's tables no longer
        hold its transactions), so the links that make it a reference cycle (each
        transaction's ``context`` back to the cell, the request context's
        ``tm_cell``) are cut: reference counting frees the cell, its request and its
        contexts at once instead of leaving ~140 objects per call to the cyclic
        garbage collector, whose full passes over a table of thousands of live
        transactions took ~100 ms each (the p99 response time at load)."""
        owner = tx.context
        cell = owner[0] if isinstance(owner, tuple) else owner
        if not isinstance(cell, Cell):
            return
        if cell.server.state is not State.TERMINATED:
            return
        if any(br.tx.state is not State.TERMINATED for br in cell.branches):
            return
        cell.server.context = None
        for br in cell.branches:
            br.tx.context = None
        if cell.ctx.tm_cell is cell:
            cell.ctx.tm_cell = None

    def on_timer(self, now: float) -> None:
        """Fire the due transaction timers (the engine's periodic tick)."""
        due = self.layer.get_timer()
        if due is not None and due <= now:
            self.layer.handle_timer(now)
        self.pump()

    def next_timer(self) -> float | None:
        return self.layer.get_timer()

    @staticmethod
    def cell_of(ctx: Context) -> Cell | None:
        cell = ctx.tm_cell
        return cell if isinstance(cell, Cell) else None

    def _reply_dest(self, ctx: Context, msg: Request) -> Dest:
        """Where replies to ``msg`` go: the source address; the source port with
        ``rport``/``force_rport``, else the Via port (Kamailio's default
        ``reply_to_via=no``)."""
        r = ctx.received
        via = msg.via
        local = self.proxy.local_of(ctx)
        if via is None or via.rport is not None or "force_rport" in ctx.msg_flags:
            port = r.src_port
        else:
            port = via.port or 5060
        return Dest(local.proto, (r.src_ip, port), local)

    def _local_reply(self, cell: Cell, code: int, reason: str, ctx: Context | None = None) -> bytes:
        base = ctx if ctx is not None else cell.ctx
        return self.proxy.build_reply(base, cell.request, code, reason, tm_tag=self.tag_prefix)

    def _send_upstream(
        self, cell: Cell, data: bytes, status: int, *, relayed: bool = False
    ) -> bool:
        """Send a reply on the cell's server transaction (``status`` 0: read it from
        ``data``), counting it in tmx's statistics (``rpl_sent``, ``rpl_relayed`` or
        ``rpl_generated``; the transaction's final class once)."""
        try:
            sent = self.layer.send_response(cell.server, data, self._now())
        except ValueError:
            log.error("tm: not a valid reply")
            return False
        if not sent and 200 <= status < 300 and cell.server.kind.is_invite:
            # a further 2xx (another branch, a retransmission): relayed as it comes
            where = cell.server.reply_dest
            sent = isinstance(where, Dest) and self.proxy.emit(
                data, where.proto, where.addr, where.sock
            )
        if sent:
            counters = self.proxy.process.shared.counters
            counters.add("tmx:rpl_sent")
            counters.add("tmx:rpl_relayed" if relayed else "tmx:rpl_generated")
            code = status or _status_of(data)
            if code >= 200 and not cell.final_counted:
                cell.final_counted = True
                counters.add(f"tmx:{min(code // 100, 6)}xx_transactions")
                counters.add("tmx:active_transactions", -1)
            if self.acc is not None:
                self.acc.response_out(cell, data, relayed)
        if sent and status >= 200:
            cell.final_sent = True
        self.flush()
        return sent

    # -- transaction creation ----------------------------------------------------------

    def newtran(self, ctx: Context) -> Cell | int:
        """``t_newtran``: the new cell, 0 for an absorbed retransmission, -1 error."""
        msg = ctx.msg
        if not isinstance(msg, Request) or msg.method == "ACK":
            return -1
        now = self._now()
        existing = self.layer.match_request(msg)
        if existing is not None:
            self.layer.absorb(existing, msg, self._reply_dest(ctx, msg))
            self.pump()
            return 0
        dest = self._reply_dest(ctx, msg)
        tx = self.layer.create_server_transaction(msg, dest, now)
        self.pump()
        if tx is None:
            log.error("tm: cannot create a transaction")
            return -1
        tx.reply_dest = dest
        # the request is cloned with its flags (Kamailio's t_newtran)
        cell = Cell(server=tx, request=msg, ctx=ctx, avps=ctx.avps, flags=ctx.flags)
        counters = self.proxy.process.shared.counters
        counters.add("tmx:UAS_transactions")
        counters.add("tmx:active_transactions")
        cell.hash_index = hash_index(msg)
        label = self._labels[cell.hash_index]
        cell.label = label
        self._labels[cell.hash_index] = (label + 1) & 0xFFFFFFFF
        # what the script armed before the transaction existed (tm's t_newtran)
        cell.on_failure, cell.on_branch, cell.on_reply = ctx.on_failure, ctx.on_branch, ctx.on_reply
        cell.on_branch_failure = ctx.on_branch_failure
        fr = ctx.tm_fr
        if fr is not None:
            cell.fr_inv_timer, cell.fr_timer = fr
        tx.context = cell
        ctx.tm_cell = cell
        if self.acc is not None:
            self.acc.created(cell)
        return cell

    def t_newtran(self, ctx: Context) -> int:
        if self.cell_of(ctx) is not None:
            # measured: a second t_newtran() returns -10 (E_SCRIPT)
            log.error("t_newtran: transaction already in process")
            return E_SCRIPT
        made = self.newtran(ctx)
        return 1 if isinstance(made, Cell) else made

    # -- t_relay -----------------------------------------------------------------------

    def relay(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        msg = ctx.msg
        if not isinstance(msg, Request):
            log.error("t_relay: not a request")
            return -1
        if isinstance(ctx, FailureContext):
            cell = self.cell_of(ctx)
            if cell is None:
                return -1
            return self._forward(ctx, cell, msg, proto=proto, host=host, port=port)
        if msg.method == "ACK":
            tx = self.layer.match_request(msg)
            if tx is not None:
                self.layer.receive_request(msg, self._reply_dest(ctx, msg), self._now())
                self.pump()
                return 0
            return self.proxy.forward(ctx, proto, host, port)
        cell = self.cell_of(ctx)
        if cell is None:
            made = self.newtran(ctx)
            if not isinstance(made, Cell):
                # measured: a retransmitted CANCEL (its 200 resent) is 1 too
                return 1 if made == 0 and msg.method == "CANCEL" else made
            cell = made
        if msg.method == "CANCEL":
            invite = self.layer.find_invite_for_cancel(msg)
            if invite is not None and isinstance(invite.context, Cell):
                return self._cancel(ctx, cell, invite.context)
        elif msg.method == "INVITE" and self.auto_inv_100 and cell.server.last_status == 0:
            self._send_upstream(cell, self._local_reply(cell, 100, self.trying_reason), 100)
        self._save(ctx, cell, msg)
        rc = self._forward(ctx, cell, msg, proto=proto, host=host, port=port)
        if rc < 0 and not cell.branches:
            cell.error = self._last_error
        return rc

    def _forward(
        self,
        ctx: Context,
        cell: Cell,
        msg: Request,
        *,
        proto: str | None,
        host: str | None,
        port: int | None,
    ) -> int:
        """tm's ``t_forward_nonack``: a client branch for the R-URI when it is new
        (always in request_route; in a failure route only when the route set it),
        then one for each appended branch (``append_branch``, a ``lookup`` with
        several contacts: parallel forking), each with its own R-URI, ``$du``, Path
        and branch flags. The appended branches are consumed. 1 when at least one
        branch went out; else the lowest error negated (``t_relay`` returns -478 for
        an unresolvable host), -1 when there was no branch at all (measured: "no
        branches for forwarding")."""
        tried = added = 0
        lowest: TmError | None = None

        def one() -> None:
            nonlocal tried, added, lowest
            tried += 1
            if self._add_branch(ctx, cell, msg, proto=proto, host=host, port=port) > 0:
                added += 1
            elif lowest is None or self._last_error[2] > lowest[2]:
                lowest = self._last_error

        if ctx.ruri_new:
            one()
        appended, ctx.branches = ctx.branches, []
        if appended:
            saved = (ctx.new_uri, ctx.dst_uri, ctx.path_vec, ctx.bflags)
            saved_edits, saved_uri = list(msg._edits), msg._cache.get("new_uri")
            for br in appended:
                try:
                    msg.set_uri(br.uri)
                except ValueError:
                    log.error("t_relay: bad branch URI <%s>", br.uri)
                    tried += 1
                    continue
                ctx.new_uri, ctx.dst_uri, ctx.path_vec, ctx.bflags = (
                    br.uri,
                    br.dst_uri,
                    br.path,
                    br.bflags,
                )
                one()
            ctx.new_uri, ctx.dst_uri, ctx.path_vec, ctx.bflags = saved
            msg._edits = saved_edits
            if saved_uri is None:
                msg._cache.pop("new_uri", None)
            else:
                msg._cache["new_uri"] = saved_uri
        if added:
            return 1
        if tried == 0:
            log.error("t_relay: no branches for forwarding")
            self._last_error = E_UNSPEC
            return -1
        self._last_error = lowest or E_UNSPEC
        return -self._last_error[2]

    def after_script(self, ctx: Context) -> None:
        """The end of request_route (Kamailio's ``t_unref``): a transaction whose
        ``t_relay`` failed and that nobody answered statefully gets tm's error reply,
        retransmitted until ACKed -- measured: after the script's stateless
        ``sl_reply_error()``, ``478 Unresolvable destination (478/TM)`` for a host
        that does not resolve. The request the transaction keeps sheds its long
        parsed lists and packs a long header index
        (:meth:`~kcc_runtime.sip.Message.shed`)."""
        cell = self.cell_of(ctx)
        if cell is None:
            return
        cell.request.shed()
        if cell.error is None or cell.final_sent or cell.branches:
            return
        code, text, number = cell.error
        cell.error = None
        self._send_upstream(cell, self._local_reply(cell, code, f"{text} ({number}/TM)"), code)

    @staticmethod
    def _save(ctx: Context, cell: Cell, msg: Request) -> None:
        """What tm clones into the transaction at ``t_relay`` time."""
        cell.flags, cell.sflags, cell.bflags = ctx.flags, ctx.sflags, ctx.bflags
        cell.msg_flags = set(ctx.msg_flags)
        cell.edits = list(msg._edits)
        cell.new_uri, cell.dst_uri = ctx.new_uri, ctx.dst_uri
        cell.on_failure, cell.on_branch, cell.on_reply = ctx.on_failure, ctx.on_branch, ctx.on_reply
        cell.on_branch_failure = ctx.on_branch_failure

    def _add_branch(
        self,
        ctx: Context,
        cell: Cell,
        msg: Request,
        *,
        proto: str | None,
        host: str | None,
        port: int | None,
    ) -> int:
        """Create and send one client branch (Kamailio's ``add_uac`` + ``t_send_branch``)."""
        proxy = self.proxy
        self._last_error = E_UNSPEC
        hop = proxy.next_hop(ctx, msg, proto, host, port)
        if hop is None:
            self._last_error = E_BAD_URI
            return -1
        p, name, dport = hop
        ip = proxy.resolve(name)
        if ip is None:
            log.error('failed to resolve "%s"', name)
            self._last_error = E_BAD_ADDRESS
            return -1
        sock = proxy.client_socket(ctx, p, ip)
        if sock is None:
            log.error("t_relay: no socket for %s to %s", p, ip)
            self._last_error = E_NO_SOCKET
            return -1
        if not proxy.dst_allowed((ip, dport)):
            self._last_error = E_SEND
            return -1
        index = len(cell.branches)
        send_ctx: Context = ctx
        # the message edits of a branch_route belong to that branch only (tm runs
        # it on a copy of the lump lists): measured, add_rr_param(";br=$T_branch_idx")
        # there gives ";br=0" on branch 0 and ";br=1" (not ";br=0;br=1") on branch 1
        saved_edits = list(msg._edits)
        if cell.on_branch is not None:
            bctx = BranchContext(ctx.proc, msg, ctx.received)
            _copy_state(ctx, bctx, cell)
            # the branch's own R-URI, next hop, Path and flags (an appended branch)
            bctx.new_uri, bctx.dst_uri = ctx.new_uri, ctx.dst_uri
            bctx.path_vec, bctx.bflags = ctx.path_vec, ctx.bflags
            bctx.t_branch_idx = index
            outcome = proxy.router.run(cell.on_branch, bctx)
            if outcome.dropped:
                log.debug("t_relay: branch %d dropped in branch_route", index)
                self._last_error = E_CFG
                msg._edits = saved_edits
                return -1
            send_ctx = bctx
        branch = f"{_branch_head(cell.request)}.{_reverse_hex(index)}"
        try:
            data = proxy.build_request(send_ctx, msg, sock, p, branch)
        except (SipParseError, ValueError) as exc:
            log.error("t_relay: building failed: %s", exc)
            return -1
        finally:
            msg._edits = saved_edits
        dest = Dest(p, (ip, dport), sock)
        try:
            tx = self.layer.send_request(
                data,
                dest,
                self._now(),
                reliable=p != "udp",
                fr_timer=cell.fr_timer,
                fr_inv_timer=cell.fr_inv_timer,
                built=(msg.method, branch),
            )
        except (ValueError, TransactionLimitError) as exc:
            log.error("t_relay: cannot start the branch: %s", exc)
            return -1
        br = TmBranch(index, tx, on_branch_failure=cell.on_branch_failure, uri=ctx.new_uri)
        tx.context = (cell, br)
        cell.branches.append(br)
        proxy.stats["forwarded"] += 1
        self.flush()
        return 1

    def _cancel(self, ctx: Context, cancel_cell: Cell, cell: Cell) -> int:
        """``t_relay`` of a CANCEL for a known INVITE (tm ``t_forward_cancel``)."""
        self._send_upstream(cancel_cell, self._local_reply(cancel_cell, 200, CANCELING), 200)
        self._cancel_branches(cell)
        self.flush()
        return 1

    def _cancel_branches(self, cell: Cell) -> None:
        """Mark ``cell`` canceled and cancel its branches still waiting: a CANCEL on
        each one that received a provisional reply, the others marked, to be
        canceled when a 1xx comes (``cancel_b_method`` 1)."""
        cell.canceled = True
        for br in cell.branches:
            if br.final:
                continue
            if br.tx.responded:
                self._send_cancel(br)
            else:
                br.cancel_pending = True

    def pending(self) -> list[Cell]:
        """The cells that still owe the caller something: a request with no final
        reply yet, or an INVITE whose negative final reply has not been acknowledged
        (timer G retransmits it until the ACK comes)."""
        cells: list[Cell] = []
        for tx in self.layer.server_transactions:
            state = tx.state
            if state in _UNANSWERED or (state is State.COMPLETED and tx.kind.is_invite):
                cell = tx.context
                if isinstance(cell, Cell):
                    cells.append(cell)
        return cells

    def abort(self, cell: Cell, code: int, reason: str) -> bool:
        """Answer ``cell``'s request locally with ``code`` if it has no final reply
        yet, and cancel its branches still waiting (a CANCEL on each branch that
        received a provisional reply, the others marked as a caller's CANCEL marks
        them); False when the request was already answered."""
        if cell.final_sent or cell.server.state not in _UNANSWERED:
            return False
        self._cancel_branches(cell)
        return self._send_upstream(cell, self._local_reply(cell, code, reason), code)

    def _send_cancel(self, br: TmBranch) -> None:
        if br.cancel_sent:
            return
        br.cancel_sent = True
        try:
            tx = self.layer.send_request(br.tx.build_cancel(), br.tx.dest, self._now())
        except (ValueError, TransactionLimitError) as exc:
            log.error("tm: cannot send the CANCEL: %s", exc)
            return
        tx.context = None

    # -- other tm functions ---------------------------------------------------------

    def check_trans(self, ctx: Context) -> int:
        """Kamailio 5.6's ``t_check_trans`` (see the module docstring)."""
        msg = ctx.msg
        if isinstance(msg, Response):
            return 1 if self.layer.match_response(msg) is not None else -1
        if not isinstance(msg, Request):
            return -1
        if msg.method == "CANCEL":
            own = self.layer.match_request(msg)
            if own is not None:
                self.layer.absorb(own, msg, self._reply_dest(ctx, msg))
                self.pump()
                return 0
            return 1 if self.layer.find_invite_for_cancel(msg) is not None else -1
        tx = self.layer.match_request(msg)
        if tx is None:
            return -1
        self.layer.receive_request(msg, self._reply_dest(ctx, msg), self._now())
        self.pump()
        return 0

    def reply(self, ctx: Context, code: int, reason: str) -> int:
        """``t_reply``: a local reply through the transaction (created if needed)."""
        cell = self.cell_of(ctx)
        if cell is None:
            if isinstance(ctx, (ReplyContext, FailureContext)):
                return -1
            made = self.newtran(ctx)
            if not isinstance(made, Cell):
                return made
            cell = made
        if cell.final_sent and code >= 200 and not 200 <= code < 300:
            log.error("t_reply: a final reply was already sent")
            return -1
        data = self._local_reply(cell, code, reason, ctx)
        return 1 if self._send_upstream(cell, data, code) else -1

    def status(self, ctx: Context) -> int | None:
        cell = self.cell_of(ctx)
        if cell is None:
            return None
        if isinstance(ctx, FailureContext):
            return ctx.t_reply_code or 0
        if isinstance(ctx, ReplyContext):
            return ctx.msg.status
        return cell.server.last_status

    def set_fr(self, ctx: Context, invite_ms: int, noninvite_ms: int) -> int:
        inv = invite_ms / 1000.0 if invite_ms > 0 else None
        fr = noninvite_ms / 1000.0 if noninvite_ms > 0 else None
        cell = self.cell_of(ctx)
        if cell is not None:
            cell.fr_inv_timer, cell.fr_timer = inv, fr
        ctx.tm_fr = (inv, fr)
        return 1

    def branch_timeout(self, ctx: Context) -> int:
        cell = self.cell_of(ctx)
        idx = ctx.t_branch_idx
        if cell is None or idx is None or not 0 <= idx < len(cell.branches):
            return -1
        return 1 if cell.branches[idx].timed_out else -1

    def any_timeout(self, ctx: Context) -> int:
        cell = self.cell_of(ctx)
        if cell is None:
            return -1
        return 1 if any(br.timed_out for br in cell.branches) else -1

    # -- replies and timeouts ----------------------------------------------------------

    def on_response(self, msg: Response, received: Received, local: Socket) -> bool:
        """A reply from the network (after the core ``reply_route``): handled here
        when it matches a client branch (True), else left to the stateless relay."""
        if self.layer.match_response(msg) is None:
            return False
        src = Dest(received.proto, (received.src_ip, received.src_port), local)
        self.layer.receive_response(msg, src, self._now())
        self.pump()
        return True

    def _on_response(self, event: ResponseReceived) -> None:
        owner = event.transaction.context
        if not isinstance(owner, tuple):
            return  # the 200 for a CANCEL we sent
        cell, br = owner
        if not isinstance(cell, Cell) or not isinstance(br, TmBranch):
            return
        msg = event.response
        status = msg.status
        counters = self.proxy.process.shared.counters
        counters.add("tmx:rpl_received")
        if br.final and status >= 300:
            counters.add("tmx:rpl_absorbed")
            return  # after a local 408/487: Kamailio discards it
        if cell.on_reply is not None and not event.retransmission:
            rctx = ReplyContext(cell.ctx.proc, msg, _received_of(event, cell))
            rctx.kind = Route.TM_ONREPLY
            _copy_state(cell.ctx, rctx, cell)
            rctx.t_reply_code = status
            rctx.t_branch_idx = br.index
            outcome = self.proxy.router.run(cell.on_reply, rctx)
            if outcome.dropped and status < 200:
                return
        if status < 200:
            br.status = max(br.status, status)
            if br.cancel_pending or (cell.canceled and not br.cancel_sent):
                self._send_cancel(br)
            if status > 100 and not cell.final_sent:
                self._relay(cell, msg)
            else:
                counters.add("tmx:rpl_absorbed")
            return
        if status < 300:
            br.status, br.final = status, True
            first = not cell.final_sent
            cell.relayed_branch = br.index
            self._relay(cell, msg)
            if first:
                for other in cell.branches:
                    if not other.final and other is not br:
                        self._send_cancel(other)
            return
        br.status, br.reason, br.reply, br.final = status, msg.reason, msg, True
        br.reply_received = _received_of(event, cell)
        self._branch_failure(cell, br)
        self._complete(cell)
        msg.shed()  # the branch keeps the reply until the cell ends: not its parse tree

    def _relay(self, cell: Cell, msg: Response) -> None:
        data = self.proxy.strip_top_via(msg)
        if self._send_upstream(cell, data, msg.status, relayed=True):
            self.proxy.stats["replies_relayed"] += 1

    def _on_timeout(self, event: Timeout) -> None:
        tx = event.transaction
        owner = tx.context
        if not isinstance(tx, ClientTransaction) or not isinstance(owner, tuple):
            return
        cell, br = owner
        if not isinstance(cell, Cell) or not isinstance(br, TmBranch) or br.final:
            return
        br.timed_out = True
        br.final = True
        if cell.canceled:
            br.status, br.reason = 487, TERMINATED_REASON
        else:
            br.status, br.reason = 408, TIMEOUT_REASON
        if event.responded and tx.kind.is_invite:
            self._send_cancel(br)  # fr_inv_timer after a 1xx: tm cancels the branch
        self._branch_failure(cell, br)
        self._complete(cell)

    def _complete(self, cell: Cell) -> None:
        """Every branch final and none 2xx: failure_route, then the winner upstream."""
        if cell.final_sent or any(not br.final for br in cell.branches):
            return
        considered = cell.branches[cell.first_considered :] or cell.branches
        winner = _pick(considered)
        # acc's missed-call record (TMCB_ON_FAILURE) comes first and clears its flag
        # in the flags the failure handling goes on with
        flags = cell.flags if self.acc is None else self.acc.on_failure(cell, winner)
        route = cell.on_failure
        if route is None:
            cell.flags = flags
        else:
            cell.on_failure = None
            before = len(cell.branches)
            self._run_failure(cell, route, winner, flags)
            if cell.answered():
                return
            if len(cell.branches) > before:
                if self.failure_reply_mode == 3:
                    cell.first_considered = before
                if any(not br.final for br in cell.branches):
                    return
                considered = cell.branches[cell.first_considered :]
                winner = _pick(considered)
        cell.relayed_branch = winner.index
        if winner.reply is not None and not (winner.status == 503 and self.remap_503_500):
            self._relay(cell, winner.reply)
        elif winner.reply is not None:
            # remap_503_500 (RFC 3261 §16.7 step 6): a local 500 with the 503's reason
            data = self._local_reply(cell, 500, winner.reason)
            self._send_upstream(cell, data, 500)
            cell.final_sent = True
        else:
            self._send_upstream(cell, self._local_reply(cell, winner.status, winner.reason), 0)
            cell.final_sent = True

    def _branch_failure(self, cell: Cell, br: TmBranch) -> None:
        """``event_route[tm:branch-failure:X]`` for a branch's negative final reply
        (tm's ``run_branch_failure_handlers``), before the transaction decides; see
        the module docstring. Runs at most once per branch."""
        route = br.on_branch_failure
        if route is None:
            return
        br.on_branch_failure = None
        msg = _faked_request(cell)
        if msg is None:
            return
        cell.on_branch_failure = None
        bctx = BranchFailureContext(cell.ctx.proc, msg, cell.ctx.received)
        _copy_state(cell.ctx, bctx, cell)
        bctx.ruri_new = False
        bctx.on_reply = cell.on_reply
        bctx.t_reply_code = br.status
        bctx.t_branch_idx = br.index
        self.proxy.router.run(route, bctx)
        cell.flags = bctx.flags

    def find_invite_cell(self, msg: Request) -> Cell | None:
        """The INVITE transaction a CANCEL matches (``$T_inv``), or None."""
        if msg.method != "CANCEL":
            return None
        tx = self.layer.find_invite_for_cancel(msg)
        return tx.context if tx is not None and isinstance(tx.context, Cell) else None

    def _run_failure(self, cell: Cell, route: FailureRouteFn, winner: TmBranch, flags: int) -> None:
        """``failure_route`` on the request as saved in the cell (Kamailio's faked
        request): edits, R-URI, ``$du``, AVPs of the transaction and ``flags`` (the
        transaction's, as the failure callbacks left them); the flags the route
        leaves go back to the transaction after it (Kamailio's ``shmem_msg->flags =
        faked_req.flags``), so a reply it sends itself still sees the earlier ones."""
        msg = _faked_request(cell)
        if msg is None:
            cell.flags = flags
            return
        fctx = FailureContext(cell.ctx.proc, msg, cell.ctx.received)
        _copy_state(cell.ctx, fctx, cell)
        fctx.flags = flags
        fctx.ruri_new = False  # tm's ruri_mark_consumed: only a rewrite sends it again
        fctx.on_reply = cell.on_reply
        fctx.t_reply_code = winner.status
        fctx.t_branch_idx = winner.index
        self.proxy.router.run(route, fctx)
        cell.flags = fctx.flags
        cell.on_failure = fctx.on_failure
        cell.on_reply = fctx.on_reply
        cell.on_branch = fctx.on_branch or cell.on_branch


def _status_of(reply: bytes) -> int:
    """The status code of a reply's bytes (``SIP/2.0 NNN ...``), 0 when unreadable."""
    code = reply[8:11]
    return int(code) if reply.startswith(b"SIP/2.0 ") and code.isdigit() else 0


def _faked_request(cell: Cell) -> Request | None:
    """The request as the transaction saved it: a fresh parse with its edits."""
    try:
        msg = parse_message(cell.request.buf)
    except SipParseError:
        return None
    if not isinstance(msg, Request):
        return None
    msg._edits = list(cell.edits)
    return msg


def hash_index(request: Request) -> int:
    """Kamailio's transaction hash index of ``request`` (``$T(id_index)``): the
    number whose reversed hex digits lead the branch parameter."""
    try:
        head = _branch_head(request)
    except SipParseError:
        return 0
    digits = head.removeprefix("z9hG4bK").partition(".")[0]
    return int(digits[::-1], 16) if digits else 0


def _copy_state(src: Context, dst: Context, cell: Cell) -> None:
    """The transaction's state into a route context run on its behalf."""
    dst.avps = src.avps
    dst.flags, dst.sflags, dst.bflags = cell.flags, cell.sflags, cell.bflags
    dst.msg_flags = set(cell.msg_flags)
    dst.new_uri, dst.dst_uri = cell.new_uri, cell.dst_uri
    dst.advertised_address, dst.advertised_port = src.advertised_address, src.advertised_port
    dst.send_socket = src.send_socket
    dst.reply_lumps = list(src.reply_lumps)
    dst.rr_params, dst.rr_lump = src.rr_params, src.rr_lump
    dst.tm_cell = cell


def _received_of(event: ResponseReceived, cell: Cell) -> Received:
    where = event.src
    if not isinstance(where, Dest):
        return cell.ctx.received
    ip, port = where.addr
    return Received(ip, port, where.sock.ip, where.sock.port, where.proto)


#: tm's ``resp_class_prio``, by status class 0..6
_CLASS_PRIO: Final = (32000, 11000, 0, 3000, 4000, 5000, 1000)
#: the 4xx tm prefers to the other 4xx (``get_4xx_prio``)
_PREFERRED_4XX: Final = frozenset({1, 7, 15, 20, 84})


def reply_prio(status: int) -> int:
    """tm's ``get_prio``: lower wins (see the module docstring)."""
    klass, xx = divmod(status, 100)
    if klass >= 7:
        return 10000 + status
    if klass == 4 and xx not in _PREFERRED_4XX:
        xx += 100
    return _CLASS_PRIO[klass] + xx


def _pick(branches: list[TmBranch]) -> TmBranch:
    """``t_pick_branch``: the lowest priority value, the first branch on a tie."""
    best = branches[0]
    for br in branches[1:]:
        if reply_prio(br.status) < reply_prio(best.status):
            best = br
    return best


def _branch_head(request: Request) -> str:
    """The part of its branches tm shares with a stateless forward of the same
    request (``z9hG4bK<hash>.<md5>``; each branch appends ``.<index>``)."""
    from kcc_runtime.engine import forward_branch  # engine imports this module

    return forward_branch(request).rpartition(".")[0]


def _reverse_hex(value: int) -> str:
    digits = "0123456789abcdef"
    if value == 0:
        return "0"
    out = []
    while value:
        out.append(digits[value & 15])
        value >>= 4
    return "".join(out)
