"""The one exception the SIP parser raises, carrying what a server should do about it.

Modelled on h11's ``ProtocolError.error_status_hint``: the parser knows *why* a message
is bad, so it says which reply a server should send (400 for bad syntax, 505 for an
unknown SIP version per RFC 3261 §8.2.2 / §21.5.6, 413 for an oversized message on a
stream, §21.4.13) and whether a reply can be built at all.

A reply can be built only for a request whose top Via, From, To, Call-ID and CSeq are
present and usable: RFC 3261 §8.2.6.2 copies From, Call-ID, CSeq and the Vias into the
response and adds a tag to To, and §18.2.2 routes the response by the top Via. A bad
response is never answered (§18.1.2: discard it), and neither is a request whose start
line is not a request line.
"""

from __future__ import annotations


class SipParseError(ValueError):
    """A message that cannot be accepted.

    ``status`` is the reply code a server should answer with, ``reason`` its reason
    phrase (a short description of the fault, suitable for the reply's status line), and
    ``can_reply`` whether a reply can be built at all (when it is false the message is
    dropped, as Kamailio does when it cannot parse the headers a reply needs).
    """

    __slots__ = ("can_reply", "reason", "status")

    def __init__(self, status: int, reason: str, *, can_reply: bool = True) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.can_reply = can_reply
