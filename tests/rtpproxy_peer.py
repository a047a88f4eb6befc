"""A test peer speaking rtpproxy's command protocol over UDP (Debian 12 has no
rtpproxy package), written from the protocol as rtpproxy documents it
(``rtpproxy(8)``, "Control protocol"): each datagram is ``<cookie> <command>``,
each answer ``<cookie> <result>\\n``.

- ``V``: the protocol version, ``20040107``; ``VF <date>``: ``1`` (capability
  supported);
- ``U[mods] <call-id> <addr> <port> <from-tag>[;n] [<to-tag>[;n]]``: create or
  update the session for the caller's stream, answer ``<port> <addr>`` of the relay
  port allocated for it;
- ``L[mods] <call-id> <addr> <port> <from-tag>[;n] <to-tag>[;n]``: look the session
  up for the answer, ``<port> <addr>``, or ``E8`` when there is no such session;
- ``D <call-id> <from-tag> [<to-tag>]``: delete, ``0``, or ``E8``;
- anything else: ``E1`` (syntax error).

Ports are allocated from ``port_base`` upwards, two per stream (RTP and RTCP); no
media is relayed. Every command is recorded in ``commands``.
"""

from __future__ import annotations

import socket
import threading

__all__ = ["RtpproxyPeer"]


class RtpproxyPeer:
    """Serves the protocol on a 127.0.0.1 UDP port in a thread; ``address`` is
    the relay address its answers give."""

    def __init__(self, address: str = "127.0.0.1", port_base: int = 35000) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.port_base = port_base
        self.commands: list[str] = []
        self.sessions: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RtpproxyPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            cookie, _, command = data.decode("utf-8", "replace").partition(" ")
            command = command.strip()
            self.commands.append(command)
            self.sock.sendto(f"{cookie} {self.answer(command)}\n".encode(), peer)

    def answer(self, command: str) -> str:
        """The result of one command."""
        words = command.split()
        if not words:
            return "E1"
        op = words[0][0]
        if words[0] == "V":
            return "20040107"
        if words[0] == "VF":
            return "1"
        if op in "UL" and len(words) >= 5:
            call_id, tag = words[1], words[4].split(";")[0]
            stream = words[4].partition(";")[2] or "1"
            if op == "L" and not any(k[0] == call_id for k in self.sessions):
                return "E8"
            key = (call_id, f"{tag};{stream}")
            if key not in self.sessions:
                self.sessions[key] = self.port_base + 2 * len(self.sessions)
            return f"{self.sessions[key]} {self.address}"
        if op == "D" and len(words) >= 3:
            gone = [k for k in self.sessions if k[0] == words[1]]
            for key in gone:
                del self.sessions[key]
            return "0" if gone else "E8"
        return "E1"
