"""A recording :class:`~kcc_runtime.context.Engine` for route and module tests.

Every call is appended to ``calls`` as ``(method, args...)`` (the context left
out) and answered with the code configured in ``codes`` (default 1), so a test can
assert exactly what a function asked of the engine and drive each outcome.
``myself`` lists the ``(host, port)`` pairs ``is_myself`` recognises (port None
matches any port); ``transaction`` and ``status`` answer ``has_transaction`` and
``t_status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kcc_runtime.context import Context, Process, Received
from kcc_runtime.sip import parse_message

__all__ = ["FakeEngine", "make_ctx"]


@dataclass
class FakeEngine:
    """Records calls; returns ``codes.get(method, 1)``."""

    codes: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    myself: set[tuple[str, int | None]] = field(default_factory=set)
    transaction: bool = False
    status: int | None = None

    def _code(self, name: str, *args: object) -> int:
        self.calls.append((name, *args))
        return self.codes.get(name, 1)

    def send_reply(self, ctx: Context, code: int, reason: str) -> int:
        return self._code("send_reply", code, reason)

    def send_error_reply(self, ctx: Context) -> int:
        return self._code("send_error_reply")

    def forward(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        return self._code("forward", proto, host, port)

    def is_myself(self, host: str, port: int | None, proto: str | None) -> bool:
        self.calls.append(("is_myself", host, port, proto))
        return (host, port) in self.myself or (host, None) in self.myself

    def has_transaction(self, ctx: Context) -> bool:
        self.calls.append(("has_transaction",))
        return self.transaction

    def t_relay(self, ctx: Context, proto: str | None, host: str | None, port: int | None) -> int:
        return self._code("t_relay", proto, host, port)

    def t_newtran(self, ctx: Context) -> int:
        return self._code("t_newtran")

    def t_check_trans(self, ctx: Context) -> int:
        return self._code("t_check_trans")

    def t_reply(self, ctx: Context, code: int, reason: str) -> int:
        return self._code("t_reply", code, reason)

    def t_is_canceled(self, ctx: Context) -> int:
        return self._code("t_is_canceled")

    def t_branch_timeout(self, ctx: Context) -> int:
        return self._code("t_branch_timeout")

    def t_any_timeout(self, ctx: Context) -> int:
        return self._code("t_any_timeout")

    def t_status(self, ctx: Context) -> int | None:
        self.calls.append(("t_status",))
        return self.status

    def t_set_fr(self, ctx: Context, invite_ms: int, noninvite_ms: int) -> int:
        return self._code("t_set_fr", invite_ms, noninvite_ms)

    def xhttp_reply(self, ctx: Context, code: int, reason: str, ctype: str, body: str) -> int:
        return self._code("xhttp_reply", code, reason, ctype, body)


def make_ctx(
    data: bytes,
    cls: type[Context] = Context,
    engine: FakeEngine | None = None,
    received: Received | None = None,
    modparams: dict[tuple[str, str], int | str] | None = None,
) -> Context:
    """A context of class ``cls`` over the message ``data`` (CRLF line ends)."""
    proc = Process(engine=engine or FakeEngine(), modparams=modparams or {})
    rcv = received or Received("192.0.2.1", 5062, "127.0.0.1", 5060, "udp")
    return cls(proc, parse_message(data), rcv)
