"""JSON-RPC 2.0 as Kamailio's ``jsonrpcs`` module serves it over its FIFO and
datagram transports, sans-IO.

**Requests** are JSON-RPC 2.0 documents; ``params`` is an array (an object's values
are taken in order: jsonrpcs ignores the names). Over the FIFO a request also names
its reply FIFO in ``reply_name`` (a file name in ``fifo_reply_dir``, ``/tmp/`` by
default), as kamctl writes it.

**Replies** print the command's values as jsonrpcs does (measured on Kamailio 5.6.3
over both transports): one value is the ``result``; several are an array (``core.psx``,
``core.echo a 1`` gives ``["a", "1"]``); none is ``{}`` (``ul.rm``); a top-level
:class:`~kcc_runtime.rpc.registry.Array` is the array itself (``stats.get_statistics``
of an unknown name gives ``[]``). A fault is ``"error": {"code": C, "message": M}``;
an unknown method is 500 "Method Not Found". The reply has ``id`` only when the
request had one, and a request without ``method`` gets ``"result": {}``. A document
that is not JSON gets no reply at all (logged, as jsonrpcs logs "invalid json doc").

**Layout** is cJSON's, which jsonrpcs uses: with ``pretty_format`` 1 (the default)
an object opens a line per member, indented by one tab per depth, ``"key":\\t``
value, and an array lists its items on one line separated by ``", "``; with 0 there
is no whitespace at all. A double that holds an integer prints as one (q -1 is
``-1``), others with 15 significant digits (17 when 15 do not round-trip).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Final

from kcc_runtime.rpc.registry import Array, Fault, Named, Param, Params, RpcValue, Struct

__all__ = ["JsonRequest", "answer", "dumps", "handle", "parse"]

log = logging.getLogger("kcc_runtime.jsonrpcs")

_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}

#: a JSON value as the printer takes it: the RPC values plus a reply's own pieces
JsonValue = RpcValue | None | dict[str, "JsonValue"] | list["JsonValue"]


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 32:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = f"{value:1.15g}"
    if float(text) != value:
        text = f"{value:1.17g}"
    return text


def _print(value: JsonValue | Named, depth: int, pretty: bool, out: list[str]) -> None:
    if isinstance(value, Named):
        _print({value.name: value.value}, depth, pretty, out)
    elif value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, (Struct, dict)):
        members = value.items if isinstance(value, Struct) else list(value.items())
        depth += 1
        out.append("{\n" if pretty else "{")
        for i, (name, member) in enumerate(members):
            if pretty:
                out.append("\t" * depth)
            out.append(_string(name))
            out.append(":\t" if pretty else ":")
            _print(member, depth, pretty, out)
            if i < len(members) - 1:
                out.append(",")
            if pretty:
                out.append("\n")
        if pretty:
            out.append("\t" * (depth - 1))
        out.append("}")
    else:
        items: list[JsonValue | Named] = list(value.items if isinstance(value, Array) else value)
        depth += 1
        out.append("[")
        for i, item in enumerate(items):
            _print(item, depth, pretty, out)
            if i < len(items) - 1:
                out.append(", " if pretty else ",")
        out.append("]")


def dumps(value: JsonValue, pretty: bool = True) -> str:
    """``value`` printed as cJSON prints it (``cJSON_Print``/``cJSON_PrintUnformatted``)."""
    out: list[str] = []
    _print(value, 0, pretty, out)
    return "".join(out)


class JsonRequest:
    """A parsed request: method (None when absent), params, id (absent: no id in
    the reply) and, for the FIFO, the reply FIFO's name."""

    def __init__(
        self,
        method: str | None,
        params: list[Param],
        id_: JsonValue,
        has_id: bool,
        reply_name: str | None,
    ) -> None:
        self.method = method
        self.params = params
        self.id = id_
        self.has_id = has_id
        self.reply_name = reply_name


def _param(value: object) -> Param:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    return json.dumps(value)


def _id(value: object) -> JsonValue:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def parse(text: str | bytes) -> JsonRequest | None:
    """The request in ``text``; None (logged) when it is not a JSON object."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        log.error(
            "invalid json doc [[%s]]",
            text[:200] if isinstance(text, str) else text[:200].decode("utf-8", "replace"),
        )
        return None
    if not isinstance(doc, dict):
        log.error("invalid json doc (not an object)")
        return None
    method = doc.get("method")
    raw = doc.get("params", [])
    values = (
        list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else [raw]
    )
    reply_name = doc.get("reply_name")
    return JsonRequest(
        method if isinstance(method, str) else None,
        [_param(v) for v in values],
        _id(doc.get("id")),
        "id" in doc,
        reply_name if isinstance(reply_name, str) else None,
    )


def reply(
    request: JsonRequest,
    values: list[RpcValue] | None,
    fault: Fault | None,
    pretty: bool = True,
) -> str:
    """The reply document for ``request``: the values, or the fault."""
    doc: dict[str, JsonValue] = {"jsonrpc": "2.0"}
    if fault is not None:
        doc["error"] = {"code": fault.code, "message": fault.message}
    else:
        result: JsonValue
        if not values:
            result = {}
        elif len(values) == 1:
            result = values[0]
        else:
            result = Array(list(values))
        doc["result"] = result
    if request.has_id:
        doc["id"] = request.id
    return dumps(doc, pretty)


def answer(
    text: str | bytes,
    call: Callable[[str, Params], list[RpcValue]],
    pretty: bool = True,
) -> tuple[JsonRequest | None, str | None, Fault | None]:
    """Parse and run one request with ``call(method, params) -> values`` (a
    :class:`Fault` raised becomes the error): (request, reply text, the fault
    replied with); reply None for a document that is not JSON. Over HTTP the fault
    is also the status line (measured: an unknown method is answered ``HTTP/1.1
    500 Method Not Found``)."""
    request = parse(text)
    if request is None:
        return None, None, None
    if request.method is None:
        log.error("missing jsonrpc method field in request")
        return request, reply(request, [], None, pretty), None
    try:
        values = call(request.method, Params(request.params))
    except Fault as fault:
        if fault.code == 500 and fault.message == f"command {request.method} not found":
            log.error("method callback not found [%s]", request.method)
            fault = Fault(500, "Method Not Found")
        return request, reply(request, None, fault, pretty), fault
    return request, reply(request, values, None, pretty), None


def handle(
    text: str | bytes,
    call: Callable[[str, Params], list[RpcValue]],
    pretty: bool = True,
) -> tuple[JsonRequest | None, str | None]:
    """:func:`answer` without the fault: (request, reply text)."""
    request, text_out, _ = answer(text, call, pretty)
    return request, text_out
