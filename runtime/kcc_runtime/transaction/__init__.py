"""Sans-IO SIP transactions (RFC 3261 §17) with Kamailio tm's timing.

``TransactionLayer`` (``layer.py``) runs INVITE and non-INVITE, client and server
transactions from the transition tables of ``state.py`` with the timers of
``timers.py``; it takes ``now`` in every call and does no I/O.
"""

from __future__ import annotations

from kcc_runtime.transaction.layer import (
    MAGIC_COOKIE,
    TRYING_REASON,
    AckReceived,
    ClientTransaction,
    Event,
    RequestReceived,
    ResponseReceived,
    Retransmission,
    ServerTransaction,
    StrayResponse,
    TableFull,
    Timeout,
    Transaction,
    TransactionLayer,
    TransactionLimitError,
    TransactionTerminated,
    TransportError,
    build_trying,
)
from kcc_runtime.transaction.state import INITIAL, TRANSITIONS, Input, Kind, State
from kcc_runtime.transaction.timers import TimerConfig

__all__ = [
    "INITIAL",
    "MAGIC_COOKIE",
    "TRANSITIONS",
    "TRYING_REASON",
    "AckReceived",
    "ClientTransaction",
    "Event",
    "Input",
    "Kind",
    "RequestReceived",
    "ResponseReceived",
    "Retransmission",
    "ServerTransaction",
    "State",
    "StrayResponse",
    "TableFull",
    "Timeout",
    "TimerConfig",
    "Transaction",
    "TransactionLayer",
    "TransactionLimitError",
    "TransactionTerminated",
    "TransportError",
    "build_trying",
]
