"""The SDP body of a message as the media modules edit it (nathelper's
``fix_nated_sdp``, rtpengine, rtpproxy).

Each module rewrites the whole body (Kamailio's modules put lumps on the body; here
the message keeps one body edit). :func:`current_body` is the body as the previous
edits left it, :func:`replace_body` replaces the body edit, so a second module sees
and rewrites the first one's result, as Kamailio's ``rtpengine_manage`` after
``fix_nated_sdp`` would send the mangled SDP.

The helpers read SDP lines the way nathelper's ``extract_mediaip`` does: a line starts
at the beginning of the body or after a LF, ``c=IN IP4 <addr>`` / ``c=IN IP6
<addr>``; the address ends at the first blank or line end.
"""

from __future__ import annotations

import re
from typing import Final

from kcc_runtime.sip import Message

__all__ = [
    "connection_addresses",
    "current_body",
    "has_sdp_type",
    "replace_body",
]

#: ``c=IN IP4 addr`` / ``c=IN IP6 addr`` at the start of a line: (family, address)
CONNECTION_RE: Final = re.compile(rb"(?m)^c=IN[ \t]+(IP[46])[ \t]+([^ \t\r\n/]+)")


def current_body(msg: Message) -> bytes:
    """The body with the edits made so far (the last :func:`replace_body`)."""
    for start, end, data in reversed(msg._edits):
        if (start, end) == (msg.body_start, msg.body_end):
            return data
    return msg.body


def replace_body(msg: Message, body: bytes) -> None:
    """Make ``body`` the message's body (replacing an earlier body edit) and fix
    Content-Length."""
    span = (msg.body_start, msg.body_end)
    msg._edits[:] = [e for e in msg._edits if (e[0], e[1]) != span]
    msg.set_body(body)


def has_sdp_type(msg: Message) -> bool:
    """Whether the body is SDP: ``Content-Type: application/sdp`` (parameters
    allowed), or no Content-Type at all (Kamailio's default type for a body)."""
    ctype = msg.content_type
    if ctype is None:
        return True
    return ctype.split(";", 1)[0].strip().lower() == "application/sdp"


def connection_addresses(body: bytes) -> list[tuple[str, str]]:
    """Every ``c=`` line's (family, address), session and media level, in order."""
    return [
        (m.group(1).decode("ascii"), m.group(2).decode("ascii", "replace"))
        for m in CONNECTION_RE.finditer(body)
    ]
