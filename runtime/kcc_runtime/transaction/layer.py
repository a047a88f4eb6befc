"""The sans-IO transaction layer (RFC 3261 §17; Kamailio tm's retransmission machinery).

Shape (aioquic ``QuicConnection``, STYLE.md §7): no sockets and no clock. The glue feeds
parsed messages with ``receive_request(msg, src, now)`` / ``receive_response(msg, src,
now)``, starts client transactions with ``send_request(data, dest, now)``, answers server
transactions with ``send_response(tx, data, now)``, then drains ``datagrams_to_send()``
(``(bytes, dest)`` pairs; ``dest`` is whatever the glue passed in, handed back untouched)
and ``next_event()``, and re-arms one timer at ``get_timer()``, calling
``handle_timer(now)`` when it is due. Every decision that changes a state is a lookup in
``state.TRANSITIONS``; this module performs the actions that go with each transition.

Matching: a request matches a server transaction (§17.2.3) by the top Via's branch (with
the ``z9hG4bK`` magic cookie), sent-by and method, and, as in Kamailio (which looks in
the hash bucket of the Call-ID and CSeq number first), its Call-ID and CSeq number: a
retransmission repeats them all, and two requests that reuse one branch stay two
transactions. An ACK matches the INVITE it acknowledges and a CANCEL only its own
transaction (``find_invite_for_cancel`` gives the INVITE a CANCEL is for). Without the
cookie the RFC 2543 rule applies: Request-URI, To tag, From tag, Call-ID, CSeq and top
Via; for an ACK the To tag is compared with the one of the response the transaction
sent. A response matches a client transaction (§17.1.3) by the top Via's branch and the
CSeq method.

Kamailio's tm differs from the RFC in places that change what goes on the wire; the
layer follows Kamailio (``timers.py`` has the table, ``TimerConfig.rfc3261()`` the RFC):
INVITE retransmissions are capped at T2, the client timeout is ``fr_timer`` before a 1xx
and ``fr_inv_timer`` after, Timer H is ``fr_timer``, the completed-state waits are
``wt_timer``, a retransmitted INVITE after a 2xx gets the 2xx again, and a 2xx is passed
to the TU in any state of an INVITE client (the proxy always forwards 2xx, §16.7 step 5).
A client that times out (Timers B, C, F: ``fr_timer``, ``fr_inv_timer``) is not dropped:
it moves to Completed for its wait timer (D or K, ``wt_timer``), as tm keeps the branch
until the cell's wait timer ends. A late final reply is absorbed there instead of
reaching the proxy's stateless path as a stray reply; one that answers an INVITE is
ACKed hop by hop and handed to the TU (the 487 that follows the TU's CANCEL after a
1xx, or a backend's 486 after fr_timer), which drops a 3xx-6xx once the cell has
answered upstream and relays a 2xx.

Timers live in one heap of ``(when, seq, tx, name)``; a transaction records the ``seq``
of each armed timer by name and cancelling is forgetting it (lazy deletion: stale heap
entries are skipped when they surface). A stale entry still holds its transaction, and
most timers are cancelled long before they are due (``fr_inv_timer``, 120 s, ends with
every answered call): left alone they kept each finished call's transactions, request
and cell for two minutes. So when the heap has grown past twice its size at the last
clean-up, it is rebuilt with the live entries only (amortised O(1) per timer), and a
finished transaction is freed at the end of its wait timer. Terminated transactions
leave every table at once. Tables are bounded (``max_transactions`` each for server
and client sides) and so are the message bytes the live transactions hold
(``max_bytes``: each keeps its request, a client transaction the bytes it sends):
a new request that finds either full produces ``TableFull`` and no transaction, a
new client transaction raises ``TransactionLimitError``. The byte bound is what
Kamailio's shared memory is to its tm (64 MB by default, where a transaction that
does not fit is refused): without it, 64 KB requests to a backend that never answers
could hold gigabytes for ``fr_timer``.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Final

from kcc_runtime.sip import Request, Response, SipParseError, parse_message
from kcc_runtime.sip.headers import Via
from kcc_runtime.transaction.state import (
    INITIAL,
    Input,
    Kind,
    State,
    next_state,
    response_input,
)
from kcc_runtime.transaction.timers import TimerConfig

#: RFC 3261 §8.1.1.7 branch magic cookie.
MAGIC_COOKIE: Final = "z9hG4bK"
#: Kamailio tm's reason phrase for its automatic 100 (``auto_inv_100_reason``).
TRYING_REASON: Final = "trying -- your call is important to us"
#: Transports without their own retransmission (§17.1.1.2, §18).
UNRELIABLE: Final = frozenset({"UDP", "DTLS"})
DEFAULT_MAX_TRANSACTIONS: Final = 100_000
#: message bytes the live transactions of one layer (one worker) may hold
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
#: the timer heap is never cleaned of stale entries below this size
_HEAP_CLEANUP_MIN: Final = 1024

_ServerKey = tuple[object, ...]
_ClientKey = tuple[str, str]


class TransactionLimitError(RuntimeError):
    """``send_request`` found the client transaction table, or the bytes the
    transactions may hold, full."""


# ---- transactions -------------------------------------------------------------------


class Transaction:
    """What client and server transactions share: kind, state, method, timers.

    ``context`` is free for the TU (Kamailio's cell, the branch index...); the layer
    never reads it.
    """

    __slots__ = (
        "_interval",
        "_size",
        "_timers",
        "context",
        "created",
        "kind",
        "method",
        "reliable",
        "state",
    )

    def __init__(self, kind: Kind, method: str, reliable: bool, now: float) -> None:
        self.kind = kind
        self.state = INITIAL[kind]
        self.method = method
        self.reliable = reliable
        self.created = now
        self.context: object = None
        self._timers: dict[str, int] = {}
        self._interval = 0.0
        #: the message bytes counted against the layer's ``max_bytes``
        self._size = 0

    @property
    def terminated(self) -> bool:
        """Whether the transaction has ended and left the layer's tables."""
        return self.state is State.TERMINATED

    @property
    def armed_timers(self) -> frozenset[str]:
        """Names of the timers currently running (``"A"``... ``"M"``)."""
        return frozenset(self._timers)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind.value} {self.method} {self.state.value}>"


class ServerTransaction(Transaction):
    """A server transaction (§17.2): the request received and the last response sent.

    ``reply_dest`` is where responses go; it starts as the request's source (the glue's
    ``src``) and the TU may replace it (Via ``received``/``rport``, §18.2.2).
    """

    __slots__ = (
        "_ack_key",
        "_key",
        "last_response",
        "last_status",
        "reply_dest",
        "request",
        "src",
    )

    def __init__(
        self, kind: Kind, request: Request, src: object, reliable: bool, now: float
    ) -> None:
        super().__init__(kind, request.method, reliable, now)
        self.request = request
        self.src = src
        self.reply_dest = src
        self.last_response: bytes | None = None
        self.last_status = 0
        self._key: _ServerKey = ()
        self._ack_key: _ServerKey | None = None


class ClientTransaction(Transaction):
    """A client transaction (§17.1): the request sent, where, and what came back.

    It keeps the bytes it sent, not their parse: a call's branch lives for the whole
    wait timer, and only a CANCEL or the ACK of a negative reply reads the request
    again (:attr:`request` parses it then).
    """

    __slots__ = (
        "ack",
        "branch",
        "data",
        "dest",
        "fr_inv_timer",
        "fr_timer",
        "last_status",
        "timed_out",
    )

    def __init__(  # noqa: PLR0917 -- built in one place, by the layer
        self,
        kind: Kind,
        method: str,
        data: bytes,
        dest: object,
        branch: str,
        reliable: bool,
        now: float,
        fr_timer: float | None,
        fr_inv_timer: float | None,
    ) -> None:
        super().__init__(kind, method, reliable, now)
        self.data = data
        self.dest = dest
        self.branch = branch
        self.fr_timer = fr_timer
        self.fr_inv_timer = fr_inv_timer
        #: highest status received so far (0: none)
        self.last_status = 0
        #: the hop-by-hop ACK sent for a 3xx-6xx (§17.1.1.3), resent on retransmissions
        self.ack: bytes | None = None
        #: the final-response timer fired (the TU answers 408)
        self.timed_out = False

    @property
    def request(self) -> Request:
        """The request this transaction sent, parsed (again) from its bytes."""
        msg = parse_message(self.data)
        assert isinstance(msg, Request)  # send_request parsed these bytes as one
        return msg

    @property
    def responded(self) -> bool:
        """Whether any response has been received (Kamailio ``noisy_ctimer`` uses it)."""
        return self.last_status > 0

    def build_ack(self, response: Response) -> bytes:
        """The ACK for a 3xx-6xx to this INVITE (RFC 3261 §17.1.1.3).

        Same Request-URI, Call-ID, From and CSeq number as the request, method ACK, the
        response's To, the request's top Via and Route headers. Header order and
        Max-Forwards are Kamailio 5.6's (``Via, Max-Forwards, From, To, Call-ID, CSeq,
        Route..., Content-Length``, observed on the wire).
        """
        request = self.request
        to = response.header_bytes(b"to") or request.header_bytes(b"to") or b""
        return _local_request(request, b"ACK", to)

    def build_cancel(self) -> bytes:
        """A CANCEL for this INVITE (RFC 3261 §9.1): the request's Request-URI, Call-ID,
        From, To, CSeq number and top Via, method CANCEL, and its Route headers."""
        request = self.request
        return _local_request(request, b"CANCEL", request.header_bytes(b"to") or b"")


def _local_request(request: Request, method: bytes, to: bytes) -> bytes:
    eol = b"\r\n"
    via = request.via
    top_via = request.buf[via.start : via.end] if via is not None else b""
    cseq = request.cseq
    number = b"%d" % cseq.number if cseq is not None else b"0"
    lines = [
        method + b" " + request.buf[request.uri_start : request.uri_end] + b" SIP/2.0",
        b"Via: " + top_via,
        b"Max-Forwards: 70",
        b"From: " + (request.header_bytes(b"from") or b""),
        b"To: " + to,
        b"Call-ID: " + (request.header_bytes(b"call-id") or b""),
        b"CSeq: " + number + b" " + method,
    ]
    lines.extend(
        b"Route: " + value.encode("utf-8", "surrogateescape")
        for value in request.header_values(b"route")
    )
    lines.append(b"Content-Length: 0")
    return eol.join(lines) + eol + eol


# ---- events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request that is not a retransmission. ``transaction`` is the server transaction
    created for it, or None (an ACK, a request that cannot be matched, or
    ``create=False``)."""

    request: Request
    src: object
    transaction: ServerTransaction | None


@dataclass(frozen=True, slots=True)
class Retransmission:
    """A retransmitted request (server) or final response (client), absorbed: the
    layer already queued what answers it (last response, hop-by-hop ACK)."""

    message: Request | Response
    src: object
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The ACK for an INVITE server transaction's 3xx-6xx (Completed -> Confirmed)."""

    request: Request
    src: object
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU. ``retransmission`` marks a 2xx seen again (the proxy
    forwards those too, RFC 6026 §8.4); ``late`` one after the transaction timed out."""

    response: Response
    src: object
    transaction: ClientTransaction
    retransmission: bool = False
    late: bool = False


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (the proxy forwards it statelessly,
    RFC 3261 §16.7 / Kamailio's core reply handling)."""

    response: Response
    src: object


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timeout: ``"B"`` (INVITE, no 1xx; Kamailio fr_timer), ``"C"`` (INVITE after a
    1xx; fr_inv_timer), ``"F"`` (non-INVITE) -- the TU answers 408 -- or ``"H"`` (an
    INVITE server never got the ACK for its 3xx-6xx)."""

    transaction: Transaction
    timer: str
    responded: bool


@dataclass(frozen=True, slots=True)
class TransportError:
    """The glue reported that a transaction's message could not be sent."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction ended and left the tables."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TableFull:
    """A new request found the server transaction table full; none was created."""

    request: Request
    src: object


Event = (
    RequestReceived
    | Retransmission
    | AckReceived
    | ResponseReceived
    | StrayResponse
    | Timeout
    | TransportError
    | TransactionTerminated
    | TableFull
)


# ---- keys ---------------------------------------------------------------------------


def _via_key(via: Via) -> tuple[object, ...]:
    return (via.transport, via.host.lower(), via.port, via.params)


def _server_key(msg: Request, method: str) -> _ServerKey | None:
    """The §17.2.3 key of ``msg`` looked up as ``method`` (INVITE for ACK and CANCEL's
    INVITE), with Kamailio's Call-ID and CSeq number; None when the headers it needs
    are missing."""
    via = msg.via
    if via is None:
        return None
    branch = via.branch
    cseq, call_id = msg.cseq, msg.call_id
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        # Call-ID and CSeq number: Kamailio's hash bucket (see the module docstring)
        number = cseq.number if cseq is not None else None
        return ("3261", branch, via.host.lower(), via.port, method, call_id, number)
    from_, to = msg.from_, msg.to
    if cseq is None or call_id is None or from_ is None or to is None:
        return None
    uri = msg.buf[msg.uri_start : msg.uri_end]
    return ("2543", uri, to.tag, from_.tag, call_id, cseq.number, method, _via_key(via))


def _ack_key_2543(msg: Request) -> _ServerKey | None:
    """RFC 2543 ACK matching (§17.2.3): everything but the To tag and the method."""
    via, cseq, call_id, from_ = msg.via, msg.cseq, msg.call_id, msg.from_
    if via is None or cseq is None or call_id is None or from_ is None:
        return None
    uri = msg.buf[msg.uri_start : msg.uri_end]
    return ("2543-ack", uri, from_.tag, call_id, cseq.number, _via_key(via))


def _is_reliable(via: Via | None, override: bool | None) -> bool:
    if override is not None:
        return override
    return via is not None and via.transport not in UNRELIABLE


def _status_of(data: bytes) -> int:
    if data[:8].upper() != b"SIP/2.0 " or not data[8:11].isdigit() or data[11:12] != b" ":
        raise ValueError("not a SIP/2.0 response status line")
    status = int(data[8:11])
    if not 100 <= status <= 699:
        raise ValueError(f"response status {status} out of range")
    return status


# ---- the layer ----------------------------------------------------------------------


class TransactionLayer:
    """Server and client transactions, their timers and their output queues."""

    def __init__(
        self,
        config: TimerConfig | None = None,
        *,
        max_transactions: int = DEFAULT_MAX_TRANSACTIONS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.config = config if config is not None else TimerConfig()
        self.max_transactions = max_transactions
        self.max_bytes = max_bytes
        #: the message bytes the live transactions hold
        self.bytes = 0
        self._server: dict[_ServerKey, ServerTransaction] = {}
        self._ack2543: dict[_ServerKey, ServerTransaction] = {}
        self._client: dict[_ClientKey, ClientTransaction] = {}
        self._heap: list[tuple[float, int, Transaction, str]] = []
        #: the heap's size that triggers the next removal of stale entries
        self._heap_cleanup_at = _HEAP_CLEANUP_MIN
        self._seq = 0
        self._out: list[tuple[bytes, object]] = []
        self._events: deque[Event] = deque()

    # ---- tables ------------------------------------------------------------------

    @property
    def server_transactions(self) -> list[ServerTransaction]:
        """The live server transactions."""
        return list(self._server.values())

    @property
    def client_transactions(self) -> list[ClientTransaction]:
        """The live client transactions."""
        return list(self._client.values())

    def __len__(self) -> int:
        return len(self._server) + len(self._client)

    # ---- output ------------------------------------------------------------------

    @property
    def has_output(self) -> bool:
        """Whether anything waits in :meth:`datagrams_to_send`."""
        return bool(self._out)

    def datagrams_to_send(self) -> list[tuple[bytes, object]]:
        """Everything queued for sending since the last call, as ``(data, dest)``."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def send_stateless(self, data: bytes, dest: object) -> None:
        """Queue a message that belongs to no transaction (ACK for 2xx, stateless reply)."""
        self._out.append((data, dest))

    # ---- timers ------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None when no timer runs."""
        heap = self._heap
        while heap:
            _, seq, tx, name = heap[0]
            if tx._timers.get(name) == seq:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, in order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, tx, name = heapq.heappop(heap)
            if tx._timers.get(name) != seq:
                continue  # cancelled (lazy deletion)
            del tx._timers[name]
            self._fire(tx, name, now)

    def _arm(self, tx: Transaction, name: str, delay: float, now: float) -> None:
        self._seq += 1
        tx._timers[name] = self._seq
        heap = self._heap
        heapq.heappush(heap, (now + delay, self._seq, tx, name))
        if len(heap) > self._heap_cleanup_at:
            # in place: handle_timer may be iterating over this very list
            heap[:] = [entry for entry in heap if entry[2]._timers.get(entry[3]) == entry[1]]
            heapq.heapify(heap)
            self._heap_cleanup_at = max(_HEAP_CLEANUP_MIN, 2 * len(heap))

    def _wait(self, tx: Transaction, name: str, delay: float, now: float) -> None:
        """Arm a terminating wait (D, I, J, K, L, M); a zero wait terminates at once."""
        if delay <= 0:
            self._terminate(tx)
        else:
            self._arm(tx, name, delay, now)

    def _fire(self, tx: Transaction, name: str, now: float) -> None:
        if name in ("A", "E", "G"):
            if next_state(tx.kind, tx.state, Input.TIMER_RETRANSMIT) is None:
                return
            if isinstance(tx, ClientTransaction):
                self._out.append((tx.data, tx.dest))
                if name == "E" and tx.state is State.PROCEEDING:
                    tx._interval = self.config.t2  # §17.1.2.2
                else:
                    tx._interval = self.config.next_retransmit(tx._interval, invite=name == "A")
            elif isinstance(tx, ServerTransaction) and tx.last_response is not None:
                self._out.append((tx.last_response, tx.reply_dest))
                tx._interval = self.config.next_retransmit(tx._interval, invite=False)
            self._arm(tx, name, tx._interval, now)
        elif name in ("B", "C", "F", "H"):
            self._timeout(tx, name, now)
        elif next_state(tx.kind, tx.state, Input.TIMER_WAIT) is not None:
            self._terminate(tx)  # D, I, J, K, L, M

    def _timeout(self, tx: Transaction, name: str, now: float) -> None:
        if next_state(tx.kind, tx.state, Input.TIMER_TIMEOUT) is None:
            return
        responded = True
        if isinstance(tx, ClientTransaction):
            responded = tx.responded
            tx.timed_out = True
        self._events.append(Timeout(tx, name, responded))
        if not isinstance(tx, ClientTransaction):
            self._terminate(tx)
            return
        # A client that timed out waits in Completed, as Kamailio keeps the cell for
        # wt_timer: a late 3xx-6xx is ACKed if it answers an INVITE and goes no
        # further (the TU's 408 is already upstream), a late 2xx to an INVITE still
        # reaches the TU (a non-INVITE's is absorbed, as tm discards it).
        # An INVITE after a 1xx keeps its branch to ACK the 487 of the TU's CANCEL
        # (Timer D); ended at once, a client left its late replies to the stateless
        # path, relayed upstream once more: an INVITE's final never ACKed, and a
        # request looping through the proxy N times made N^2/2 relays of 408s.
        tx._timers.clear()
        tx.state = State.COMPLETED
        if tx.kind.is_invite:
            self._wait(tx, "D", self.config.timer_d(reliable=tx.reliable), now)
        else:
            self._wait(tx, "K", self.config.timer_k(reliable=tx.reliable), now)

    def _terminate(self, tx: Transaction) -> None:
        if tx.state is State.TERMINATED:
            return
        tx.state = State.TERMINATED
        tx._timers.clear()
        self.bytes -= tx._size
        tx._size = 0
        if isinstance(tx, ServerTransaction):
            if self._server.get(tx._key) is tx:
                del self._server[tx._key]
            if tx._ack_key is not None and self._ack2543.get(tx._ack_key) is tx:
                del self._ack2543[tx._ack_key]
        elif isinstance(tx, ClientTransaction):
            key = (tx.branch, tx.method)
            if self._client.get(key) is tx:
                del self._client[key]
        self._events.append(TransactionTerminated(tx))

    def transport_error(self, tx: Transaction, now: float) -> None:
        """The glue could not send for ``tx`` (§17.1.4, §17.2.4): it ends at once."""
        if next_state(tx.kind, tx.state, Input.TRANSPORT_ERROR) is None:
            return
        self._events.append(TransportError(tx))
        self._terminate(tx)

    # ---- server side ---------------------------------------------------------------

    def match_request(self, msg: Request) -> ServerTransaction | None:
        """The server transaction ``msg`` belongs to (§17.2.3), without acting on it.

        An ACK matches the INVITE transaction whose 3xx-6xx (or 2xx, RFC 2543 rule) it
        acknowledges; a CANCEL matches its own transaction only. Kamailio's
        ``t_check_trans`` / ``t_lookup_request``.
        """
        try:
            if msg.method == "ACK":
                key = _server_key(msg, "INVITE")
                if key is None:
                    return None
                if key[0] == "3261":
                    return self._server.get(key)
                ack_key = _ack_key_2543(msg)
                tx = self._ack2543.get(ack_key) if ack_key is not None else None
                if tx is None or tx.last_response is None:
                    return None
                to = msg.to
                return tx if to is not None and to.tag == _response_to_tag(tx) else None
            key = _server_key(msg, msg.method)
            return self._server.get(key) if key is not None else None
        except SipParseError:
            return None

    def find_invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL is for (§9.2, §17.2.3), or None."""
        try:
            key = _server_key(cancel, "INVITE")
        except SipParseError:
            return None
        if key is None:
            return None
        tx = self._server.get(key)
        return tx if tx is not None and tx.kind is Kind.INVITE_SERVER else None

    def receive_request(
        self, msg: Request, src: object, now: float, *, create: bool = True
    ) -> ServerTransaction | None:
        """Take a request from the network; return its server transaction, if any.

        A retransmission is absorbed (the last response is queued again; §17.2.1,
        §17.2.2) and produces ``Retransmission``; the ACK of a 3xx-6xx stops Timer G/H
        and produces ``AckReceived``. Anything else produces ``RequestReceived``, with a
        new server transaction when ``create`` is true and the request is not an ACK
        (or ``TableFull`` when the table is full).
        """
        tx = self.match_request(msg)
        if tx is not None:
            if msg.method == "ACK":
                self._ack(tx, msg, src, now)
            else:
                self.absorb(tx, msg, src)
            return tx
        if not create or msg.method == "ACK":
            self._events.append(RequestReceived(msg, src, None))
            return None
        return self.create_server_transaction(msg, src, now)

    def create_server_transaction(
        self, msg: Request, src: object, now: float, *, reliable: bool | None = None
    ) -> ServerTransaction | None:
        """Create the server transaction for a new request (Kamailio ``t_newtran``).

        Produces ``RequestReceived`` (with the transaction, or None when the request
        lacks what matching needs) or ``TableFull``. A request that already has one is
        absorbed instead and that transaction returned.
        """
        existing = self.match_request(msg)
        if existing is not None and msg.method != "ACK":
            self.absorb(existing, msg, src)
            return existing
        key: _ServerKey | None = None
        ack_key: _ServerKey | None = None
        via: Via | None = None
        try:
            if msg.method != "ACK":
                key = _server_key(msg, msg.method)
                if key is not None and key[0] == "2543":
                    ack_key = _ack_key_2543(msg)
                via = msg.via
        except SipParseError:
            key = None
        if key is None:
            self._events.append(RequestReceived(msg, src, None))
            return None
        size = len(msg.buf)
        if len(self._server) >= self.max_transactions or self.bytes + size > self.max_bytes:
            self._events.append(TableFull(msg, src))
            return None
        kind = Kind.INVITE_SERVER if msg.method == "INVITE" else Kind.NON_INVITE_SERVER
        tx = ServerTransaction(kind, msg, src, _is_reliable(via, reliable), now)
        tx._size = size
        self.bytes += size
        tx._key = key
        self._server[key] = tx
        if kind is Kind.INVITE_SERVER and ack_key is not None:
            tx._ack_key = ack_key
            self._ack2543[ack_key] = tx
        self._events.append(RequestReceived(msg, src, tx))
        return tx

    def absorb(self, tx: ServerTransaction, msg: Request, src: object) -> None:
        """A retransmitted request: queue the last response again (if one was sent)."""
        if next_state(tx.kind, tx.state, Input.RECV_REQUEST) is None:
            return
        if tx.last_response is not None:
            self._out.append((tx.last_response, tx.reply_dest))
        self._events.append(Retransmission(msg, src, tx))

    def _ack(self, tx: ServerTransaction, msg: Request, src: object, now: float) -> None:
        new = next_state(tx.kind, tx.state, Input.RECV_ACK)
        if new is None:
            # an ACK for a 2xx (end to end, RFC 6026 §8.7) or before any final: the TU's
            self._events.append(RequestReceived(msg, src, None))
            return
        if tx.state is State.CONFIRMED:
            self._events.append(Retransmission(msg, src, tx))
            return
        tx.state = new
        tx._timers.clear()
        self._events.append(AckReceived(msg, src, tx))
        self._wait(tx, "I", self.config.timer_i(reliable=tx.reliable), now)

    def send_trying(self, tx: ServerTransaction, now: float, reason: str = TRYING_REASON) -> bool:
        """Send 100 Trying for ``tx`` (§8.2.6, §17.2.1; Kamailio's automatic 100 on
        ``t_relay`` of an INVITE). False when a response was already sent."""
        if tx.last_status:
            return False
        return self.send_response(tx, build_trying(tx.request, reason), now)

    def send_response(self, tx: ServerTransaction, data: bytes, now: float) -> bool:
        """Send a response through ``tx``; False when its state does not allow it
        (a final already sent, a terminated transaction). Raises ``ValueError`` when
        ``data`` does not start with a SIP/2.0 status line."""
        status = _status_of(data)
        new = next_state(tx.kind, tx.state, response_input(status, sending=True))
        if new is None:
            return False
        old = tx.state
        tx.state = new
        tx.last_response = data
        tx.last_status = status
        self._out.append((data, tx.reply_dest))
        cfg = self.config
        if new is State.ACCEPTED and old is not State.ACCEPTED:
            self._arm(tx, "L", cfg.timer_l(), now)
        elif new is State.COMPLETED:
            if tx.kind is Kind.INVITE_SERVER:
                if not tx.reliable:
                    tx._interval = cfg.t1
                    self._arm(tx, "G", cfg.t1, now)
                self._arm(tx, "H", cfg.timer_h(), now)
            else:
                self._wait(tx, "J", cfg.timer_j(reliable=tx.reliable), now)
        return True

    # ---- client side ---------------------------------------------------------------

    def send_request(
        self,
        data: bytes,
        dest: object,
        now: float,
        *,
        reliable: bool | None = None,
        fr_timer: float | None = None,
        fr_inv_timer: float | None = None,
        built: tuple[str, str] | None = None,
    ) -> ClientTransaction:
        """Start a client transaction sending ``data`` to ``dest`` (§17.1.1, §17.1.2).

        ``fr_timer`` / ``fr_inv_timer`` override the configured ones for this
        transaction (Kamailio ``t_set_fr``). ``reliable`` defaults to the top Via's
        transport. Raises ``ValueError`` for bytes that are not a request with a top
        Via branch and a CSeq, or an ACK (which has no transaction), or a duplicate;
        ``TransactionLimitError`` when the client table is full. A TU that built the
        request itself passes ``built=(method, top Via branch)`` and ``reliable``, and
        the bytes are not parsed again (tm's branches: a parse per relayed request).
        """
        if built is not None and reliable is not None:
            method, branch = built
        else:
            msg = parse_message(data)
            if not isinstance(msg, Request):
                raise ValueError("send_request needs a request")
            via = msg.via
            found = via.branch if via is not None else None
            if not found or msg.cseq is None:
                raise ValueError("a client request needs a top Via branch and a CSeq")
            method, branch = msg.method, found
            reliable = _is_reliable(via, reliable)
        if method == "ACK":
            raise ValueError("an ACK has no client transaction (use send_stateless)")
        key = (branch, method)
        if key in self._client:
            raise ValueError("a client transaction with this branch and method exists")
        if len(self._client) >= self.max_transactions:
            raise TransactionLimitError("client transaction table full")
        if self.bytes + len(data) > self.max_bytes:
            raise TransactionLimitError("the transactions hold max_bytes already")
        cfg = self.config
        invite = method == "INVITE"
        kind = Kind.INVITE_CLIENT if invite else Kind.NON_INVITE_CLIENT
        fr = fr_timer if fr_timer is not None else cfg.fr_timer
        fr_inv = fr_inv_timer if fr_inv_timer is not None else cfg.fr_inv_timer
        tx = ClientTransaction(kind, method, data, dest, branch, reliable, now, fr, fr_inv)
        tx._size = len(data)
        self.bytes += tx._size
        self._client[key] = tx
        self._out.append((data, dest))
        if not tx.reliable:
            tx._interval = cfg.t1
            self._arm(tx, "A" if invite else "E", cfg.t1, now)
        self._arm_timeout(tx, "B" if invite else "F", cfg.client_timeout(fr), now)
        return tx

    def _arm_timeout(self, tx: ClientTransaction, name: str, delay: float, now: float) -> None:
        """Arm B/C/F bounded by ``max_inv_lifetime`` / ``max_noninv_lifetime``."""
        life = self.config.max_lifetime(invite=tx.kind.is_invite)
        when = now + delay
        if life is not None:
            when = min(when, tx.created + life)
        self._arm(tx, name, max(when - now, 0.0), now)

    def match_response(self, msg: Response) -> ClientTransaction | None:
        """The client transaction a response belongs to (§17.1.3), or None."""
        try:
            via, cseq = msg.via, msg.cseq
        except SipParseError:
            return None
        if via is None or cseq is None or via.branch is None:
            return None
        return self._client.get((via.branch, cseq.method))

    def receive_response(self, msg: Response, src: object, now: float) -> ClientTransaction | None:
        """Take a response from the network; return its client transaction, if any."""
        tx = self.match_response(msg)
        if tx is None:
            self._events.append(StrayResponse(msg, src))
            return None
        status = msg.status
        inp = response_input(status, sending=False)
        if tx.kind is Kind.INVITE_CLIENT and inp is Input.RECV_2XX and tx.state is State.COMPLETED:
            # Kamailio forwards a 2xx whatever became of the branch (§16.7 step 5)
            self._events.append(ResponseReceived(msg, src, tx, late=True))
            return tx
        new = next_state(tx.kind, tx.state, inp)
        if new is None:
            return tx  # a 1xx after the final, a 3xx-6xx after a 2xx: discarded
        old = tx.state
        cfg = self.config
        if old is State.COMPLETED:
            if tx.kind is Kind.INVITE_CLIENT:
                if tx.ack is None:  # the first final after fr_inv_timer fired
                    tx.ack = tx.build_ack(msg)
                    tx.last_status = status
                    self._out.append((tx.ack, tx.dest))
                    self._events.append(ResponseReceived(msg, src, tx, late=True))
                    return tx
                self._out.append((tx.ack, tx.dest))
            self._events.append(Retransmission(msg, src, tx))
            return tx
        if old is State.ACCEPTED:
            self._events.append(ResponseReceived(msg, src, tx, retransmission=True))
            return tx
        previous = tx.last_status
        tx.last_status = max(previous, status)
        tx.state = new
        if new is State.PROCEEDING:
            if tx.kind is Kind.INVITE_CLIENT:
                tx._timers.pop("A", None)
                tx._timers.pop("B", None)
                restart = (
                    old is State.CALLING
                    or cfg.restart_fr_on_each_reply
                    or (status >= 180 and status > previous)
                )
                if restart:
                    self._arm_timeout(tx, "C", cfg.proceeding_timeout(tx.fr_inv_timer), now)
        elif new is State.ACCEPTED:
            tx._timers.clear()
            self._arm(tx, "M", cfg.timer_m(), now)
        elif new is State.COMPLETED:
            tx._timers.clear()
            if tx.kind is Kind.INVITE_CLIENT:
                tx.ack = tx.build_ack(msg)
                self._out.append((tx.ack, tx.dest))
                self._events.append(ResponseReceived(msg, src, tx))
                self._wait(tx, "D", cfg.timer_d(reliable=tx.reliable), now)
            else:
                self._events.append(ResponseReceived(msg, src, tx))
                self._wait(tx, "K", cfg.timer_k(reliable=tx.reliable), now)
            return tx
        self._events.append(ResponseReceived(msg, src, tx))
        return tx


def _response_to_tag(tx: ServerTransaction) -> str | None:
    """The To tag of the last response ``tx`` sent (RFC 2543 ACK matching)."""
    if tx.last_response is None:
        return None
    try:
        msg = parse_message(tx.last_response)
        to = msg.to
    except SipParseError:
        return None
    return to.tag if to is not None else None


def build_trying(request: Request, reason: str = TRYING_REASON) -> bytes:
    """100 Trying for ``request`` (RFC 3261 §8.2.6): its Via lines, From, To, Call-ID,
    CSeq and Timestamp (§8.2.6.1) copied byte for byte, no To tag, no body."""
    keep = (b"via", b"from", b"to", b"call-id", b"cseq", b"timestamp")
    buf = request.buf
    out = [b"SIP/2.0 100 " + reason.encode("utf-8") + b"\r\n"]
    for name, (ls, vs, ve, _) in zip(request.names, request.spans, strict=True):
        if name in keep:
            out.append(buf[ls:vs] + b" " + buf[vs:ve].strip(b" \t") + b"\r\n")
    out.append(b"Content-Length: 0\r\n\r\n")
    return b"".join(out)
