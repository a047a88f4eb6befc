"""Kamailio's RPC interface as data: the values a command returns, its faults, the
table of commands.

A Kamailio RPC command fills a reply through ``rpc->add``/``rpc->struct_add``: a
sequence of top-level values, where a value is an int, a double, a string, a
structure (``"{"``: named members, in order) or an array (``"["``). The transports
print that same sequence differently, and these types keep what both need:

- :class:`Struct`: named members, in order (the same name may come twice).
- :class:`Array`: Kamailio's ``"["`` handle. Its items are plain values or
  :class:`Named` members (``rpc->struct_add(array, "{", "Contact", ...)``, as
  usrloc's ``ul.dump`` does). jsonrpcs prints it as a JSON array, a named member as a
  one-key object; ctl's binrpc prints an array of named members as a structure and
  an array at the top level as its items one after another (measured with kamcmd on
  Kamailio 5.6.3: ``stats.get_statistics`` is a JSON array and, over binrpc, one
  string record per statistic).
- :class:`Fault`: ``rpc->fault(code, text)``, raised by a command.

A :class:`Command` is a name, its help text (``system.methodHelp``) and its
function; :class:`Registry` is the table the transports dispatch on and
``system.listMethods`` lists, sorted as Kamailio lists it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "Array",
    "Command",
    "Fault",
    "Named",
    "Params",
    "Registry",
    "RpcValue",
    "Struct",
]


@dataclass
class Struct:
    """``{...}``: named members in order."""

    items: list[tuple[str, RpcValue]] = field(default_factory=list)

    def add(self, name: str, value: RpcValue) -> Struct:
        self.items.append((name, value))
        return self


@dataclass(frozen=True)
class Named:
    """A named member added to an :class:`Array` (``struct_add`` on a ``"["``)."""

    name: str
    value: RpcValue


@dataclass
class Array:
    """``[...]``: plain values or :class:`Named` members, in order."""

    items: list[RpcValue | Named] = field(default_factory=list)


RpcValue = int | float | str | Struct | Array
#: a parameter as a transport delivers it
Param = int | float | str


class Fault(Exception):  # noqa: N818 (Kamailio's rpc->fault)
    """``rpc->fault(code, message)``: the command failed; the reply is this fault."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} - {message}")
        self.code = code
        self.message = message


class Params:
    """The parameters of one call, read in order as ``rpc->scan`` reads them."""

    def __init__(self, values: Sequence[Param]) -> None:
        self.values = list(values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.values)

    def _missing(self, index: int, kind: str) -> Fault:
        # ctl's wording for a missing parameter (measured: `kamcmd cfg.seti pstn
        # gw_port` answers "error at parameter 2: expected integer type but end of
        # packet encountered"); jsonrpcs uses the same rpc->scan failure code, 400
        return Fault(
            400, f"error at parameter {index}: expected {kind} type but end of packet encountered"
        )

    def string(self, index: int) -> str:
        """Parameter ``index`` (0-based) as a string (an int is converted, as ctl's
        autoconversion and jsonrpcs do); Fault 400 when absent."""
        if index >= len(self.values):
            raise self._missing(index, "string")
        value = self.values[index]
        if isinstance(value, float):
            return f"{value:f}"
        return str(value)

    def integer(self, index: int) -> int:
        """Parameter ``index`` as an int (a string of digits is converted, as both
        transports do); Fault 400 when absent or not a number."""
        if index >= len(self.values):
            raise self._missing(index, "integer")
        value = self.values[index]
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        text = value.strip()
        try:
            return int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)
        except ValueError:
            raise Fault(400, f"error at parameter {index}: expected integer type") from None


E = TypeVar("E")
#: a command: (the environment, the parameters) -> the reply's top-level values
Handler = Callable[[E, Params], list[RpcValue]]


@dataclass(frozen=True)
class Command(Generic[E]):
    """One RPC method: ``name`` (``group.command``), its help text and function."""

    name: str
    doc: str
    handler: Handler[E]


class Registry(Generic[E]):
    """The RPC methods a server answers, by name."""

    def __init__(self) -> None:
        self.commands: dict[str, Command[E]] = {}

    def command(self, name: str, doc: str) -> Callable[[Handler[E]], Handler[E]]:
        """Decorator: declare ``name`` with its help text next to its function."""

        def register(fn: Handler[E]) -> Handler[E]:
            if name in self.commands:
                raise ValueError(f"RPC command {name} declared twice")
            self.commands[name] = Command(name, doc, fn)
            return fn

        return register

    def names(self) -> list[str]:
        """Every method name, sorted (``system.listMethods``'s order)."""
        return sorted(self.commands)

    def get(self, name: str) -> Command[E] | None:
        return self.commands.get(name)

    def call(self, env: E, name: str, params: Params) -> list[RpcValue]:
        """Run ``name``; :class:`Fault` for an unknown method (ctl's text: "command
        X not found", code 500) or whatever the command raises as a fault."""
        command = self.commands.get(name)
        if command is None:
            raise Fault(500, f"command {name} not found")
        return command.handler(env, params)
