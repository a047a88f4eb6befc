"""Sans-IO SIP parsing and serialization (RFC 3261 §7, §18.3, §20, §25).

``parse_message(datagram)`` and ``StreamFramer().feed(bytes)`` produce lazy
``Request``/``Response`` objects over the received buffer; header values are parsed on
first use; edits are splices and ``serialize()`` forwards every untouched byte as it
came. ``SipParseError`` says which reply to send and whether one can be sent. No I/O,
no clock, no dependency outside the standard library.
"""

from __future__ import annotations

from kcc_runtime.sip.errors import SipParseError
from kcc_runtime.sip.headers import CSeq, NameAddr, Via
from kcc_runtime.sip.message import Message, Request, Response
from kcc_runtime.sip.parser import StreamFramer, parse_message
from kcc_runtime.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "TelUri",
    "Uri",
    "Via",
    "parse_message",
    "parse_uri",
]
