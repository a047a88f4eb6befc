"""The UDP control channel of a media relay: rtpengine's "ng" protocol and rtpproxy's
command protocol share it (:mod:`kcc_runtime.modules.rtpengine`,
:mod:`kcc_runtime.modules.rtpproxy`).

Both put a cookie before each command (``<cookie> <command>``) and the relay echoes it
before its answer, so an answer is matched to its command and a late answer to an
earlier try is skipped. As Kamailio's modules do, a command is sent and waited for
synchronously: ``retries`` + 1 tries of ``timeout`` seconds each, on a UDP socket
connected to the relay (an ICMP "port unreachable" spends one try, as silence does).
While it waits, that worker is blocked, exactly like a Kamailio worker; the other
workers go on. The socket belongs to the process that opened it: a forked worker opens
its own on first use.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

__all__ = ["CookieClient"]


@dataclass
class CookieClient:
    """One process's UDP channel to a media relay at ``host``:``port``; ``what``
    names the relay in log lines, written to ``log`` (the module's logger)."""

    host: str
    port: int
    what: str
    log: logging.Logger
    timeout: float = 1.0
    retries: int = 5
    pid: int = field(default_factory=os.getpid)
    _sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None or self.pid != os.getpid():
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
            self._sock = sock
            self.pid = os.getpid()
        return self._sock

    def exchange(self, cookie: bytes, command: bytes) -> bytes | None:
        """Send ``cookie SP command`` and return the answer that echoes ``cookie``,
        without it and its space; None (logged) when no answer came or sending
        failed."""
        data = cookie + b" " + command
        try:
            sock = self._socket()
        except OSError as exc:
            self.log.error("can't connect to %s %s:%d: %s", self.what, self.host, self.port, exc)
            return None
        for _ in range(max(0, self.retries) + 1):
            try:
                sock.send(data)
                while True:
                    got, _, rest = sock.recv(65535).partition(b" ")
                    if got == cookie:
                        return rest
            except (TimeoutError, ConnectionRefusedError):
                continue  # no answer, or nothing listening yet (ICMP): one try spent
            except OSError as exc:
                self.log.error("can't send command to %s: %s", self.what, exc)
                return None
        self.log.error("timeout waiting reply from %s %s:%d", self.what, self.host, self.port)
        return None
