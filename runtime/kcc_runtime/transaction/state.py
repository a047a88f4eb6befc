"""Transaction state machines of RFC 3261 §17, as data (h11 ``_state.py`` style).

Theory of operation: every transition of the four machines -- INVITE client (RFC 3261
figure 5), non-INVITE client (figure 6), INVITE server (figure 7), non-INVITE server
(figure 8), with the "Accepted" state RFC 6026 §7.1/§7.2 adds for 2xx to INVITE -- is
one entry of ``TRANSITIONS[kind][state][input] -> state``. The layer (``layer.py``)
looks the input up, moves to the new state and then performs the actions that go with
the transition (send, arm or cancel timers, emit events); an input with no entry in the
current state is not allowed there and is ignored (a late 1xx after a final response, a
timer whose state was left). No logic lives here, only the tables, so they can be read
side by side with the RFC figures.

Kamailio's tm keeps the same shape: its ``retr_buf`` of the UAS side plays the server
transaction and each branch's ``retr_buf`` a client transaction.
"""

from __future__ import annotations

import enum
from typing import Final


class Kind(enum.Enum):
    """Which of the four machines a transaction runs."""

    INVITE_CLIENT = "invite-client"
    NON_INVITE_CLIENT = "non-invite-client"
    INVITE_SERVER = "invite-server"
    NON_INVITE_SERVER = "non-invite-server"

    @property
    def is_client(self) -> bool:
        """Whether the machine is a client transaction (§17.1)."""
        return self in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)

    @property
    def is_invite(self) -> bool:
        """Whether the machine is an INVITE transaction."""
        return self in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER)


class State(enum.Enum):
    """Transaction states (RFC 3261 figures 5-8, RFC 6026 "Accepted")."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    """What drives a machine: a message seen, a message sent, a timer, an error."""

    #: client: a 1xx / 2xx / 3xx-6xx response received
    RECV_1XX = "recv 1xx"
    RECV_2XX = "recv 2xx"
    RECV_FINAL = "recv 300-699"
    #: server: the request received again (a retransmission)
    RECV_REQUEST = "recv request"
    #: INVITE server: the ACK for a 3xx-6xx
    RECV_ACK = "recv ACK"
    #: server: the TU sends a 1xx / 2xx / 3xx-6xx
    SEND_1XX = "send 1xx"
    SEND_2XX = "send 2xx"
    SEND_FINAL = "send 300-699"
    #: retransmission timers (A, E client; G server); they do not change the state
    TIMER_RETRANSMIT = "timer A/E/G"
    #: final-response timers: B, F (client; Kamailio fr_timer / fr_inv_timer) and H
    #: (INVITE server waiting for the ACK)
    TIMER_TIMEOUT = "timer B/F/H"
    #: the waits that end a transaction: D, K (client), I, J (server), L, M (RFC 6026)
    TIMER_WAIT = "timer D/I/J/K/L/M"
    #: the transport could not send (§17.1.4, §17.2.4)
    TRANSPORT_ERROR = "transport error"


_C, _T, _P, _A = State.CALLING, State.TRYING, State.PROCEEDING, State.ACCEPTED
_CO, _CF, _X = State.COMPLETED, State.CONFIRMED, State.TERMINATED

#: ``TRANSITIONS[kind][state][input]`` is the next state.
TRANSITIONS: Final[dict[Kind, dict[State, dict[Input, State]]]] = {
    # RFC 3261 figure 5, RFC 6026 figure 5
    Kind.INVITE_CLIENT: {
        _C: {
            Input.TIMER_RETRANSMIT: _C,
            Input.TIMER_TIMEOUT: _X,
            Input.RECV_1XX: _P,
            Input.RECV_2XX: _A,
            Input.RECV_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _P: {
            # Kamailio's fr_inv_timer (RFC 3261 §16.6 step 11 Timer C for a proxy)
            Input.TIMER_TIMEOUT: _X,
            Input.RECV_1XX: _P,
            Input.RECV_2XX: _A,
            Input.RECV_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _A: {Input.RECV_2XX: _A, Input.TIMER_WAIT: _X},
        _CO: {Input.RECV_FINAL: _CO, Input.TIMER_WAIT: _X, Input.TRANSPORT_ERROR: _X},
    },
    # RFC 3261 figure 6
    Kind.NON_INVITE_CLIENT: {
        _T: {
            Input.TIMER_RETRANSMIT: _T,
            Input.TIMER_TIMEOUT: _X,
            Input.RECV_1XX: _P,
            Input.RECV_2XX: _CO,
            Input.RECV_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _P: {
            Input.TIMER_RETRANSMIT: _P,
            Input.TIMER_TIMEOUT: _X,
            Input.RECV_1XX: _P,
            Input.RECV_2XX: _CO,
            Input.RECV_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _CO: {Input.RECV_2XX: _CO, Input.RECV_FINAL: _CO, Input.TIMER_WAIT: _X},
    },
    # RFC 3261 figure 7, RFC 6026 figure 7
    Kind.INVITE_SERVER: {
        _P: {
            Input.RECV_REQUEST: _P,
            Input.SEND_1XX: _P,
            Input.SEND_2XX: _A,
            Input.SEND_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _A: {
            # Kamailio resends the 2xx for a retransmitted INVITE (RFC 6026 only absorbs)
            Input.RECV_REQUEST: _A,
            Input.SEND_2XX: _A,
            Input.TIMER_WAIT: _X,
        },
        _CO: {
            Input.RECV_REQUEST: _CO,
            Input.RECV_ACK: _CF,
            Input.TIMER_RETRANSMIT: _CO,
            Input.TIMER_TIMEOUT: _X,
            Input.TRANSPORT_ERROR: _X,
        },
        _CF: {Input.RECV_REQUEST: _CF, Input.RECV_ACK: _CF, Input.TIMER_WAIT: _X},
    },
    # RFC 3261 figure 8
    Kind.NON_INVITE_SERVER: {
        _T: {
            Input.RECV_REQUEST: _T,
            Input.SEND_1XX: _P,
            Input.SEND_2XX: _CO,
            Input.SEND_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _P: {
            Input.RECV_REQUEST: _P,
            Input.SEND_1XX: _P,
            Input.SEND_2XX: _CO,
            Input.SEND_FINAL: _CO,
            Input.TRANSPORT_ERROR: _X,
        },
        _CO: {Input.RECV_REQUEST: _CO, Input.TIMER_WAIT: _X, Input.TRANSPORT_ERROR: _X},
    },
}

#: The state each machine starts in (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
INITIAL: Final[dict[Kind, State]] = {
    Kind.INVITE_CLIENT: State.CALLING,
    Kind.NON_INVITE_CLIENT: State.TRYING,
    Kind.INVITE_SERVER: State.PROCEEDING,
    Kind.NON_INVITE_SERVER: State.TRYING,
}


def next_state(kind: Kind, state: State, event: Input) -> State | None:
    """The state ``event`` leads to from ``state``, or None when it is not allowed."""
    return TRANSITIONS[kind].get(state, {}).get(event)


def response_input(status: int, *, sending: bool) -> Input:
    """The input a response of ``status`` is, as sent by a server or received by a client."""
    if status < 200:
        return Input.SEND_1XX if sending else Input.RECV_1XX
    if status < 300:
        return Input.SEND_2XX if sending else Input.RECV_2XX
    return Input.SEND_FINAL if sending else Input.RECV_FINAL
