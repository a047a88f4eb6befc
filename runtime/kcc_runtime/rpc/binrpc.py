"""binrpc, the binary RPC protocol of Kamailio's ``ctl`` module (what ``kamcmd``
speaks), sans-IO: parse requests, encode replies and faults.

The format (from the protocol description in Kamailio's ``binrpc.h``; no code
taken), big endian throughout:

- **Packet header**: ``0xA1`` (magic 0xA, version 1); one byte ``type << 4 |
  (LL - 1) << 2 | (CL - 1)`` where type is 0 request, 1 reply, 3 fault; then the
  body length on LL bytes and the cookie on CL bytes, both as few as needed (at
  least one). A reply repeats the request's cookie.
- **Record**: one byte ``S << 7 | size << 4 | type``. With S = 0, ``size`` is the
  value's length; with S = 1 the length follows on ``size`` bytes. Types: 0 int, 1
  string (NUL-terminated, the length counts the NUL), 2 double (an int holding the
  value times 1000), 3 struct, 4 array, 5 struct member name (a string, only inside
  a struct, followed by the member's value), 6 bytes. Struct and array are a start
  record (``0x03``/``0x04``) and an end record (``0x83``/``0x84``).
- A request's body is the method name (a string) then the parameters.

Measured against Kamailio 5.6.3 + kamcmd (bytes captured between them on the ctl
unix socket), and followed here:

- ints are written as C ``int`` (32 bits) in the fewest bytes: 0 is ``0x00``, 7 is
  ``0x10 0x07``, -1 is ``0x40 ff ff ff ff``; a value outside 32 bits is truncated
  (``cfg.seti g v 99999999999`` stores 0x4876E7FF);
- doubles as a 64-bit int of value*1000 in the fewest bytes: q 0.5 is
  ``0x22 0x01 0xf4``; q -1 needs 8 bytes, and the 8 overflows the 3-bit size into
  the S bit: ``0x82`` then 8 bytes (kamcmd prints it as -1). This parser reads S = 1
  with size 0 on an int or double as that 8-byte form;
- strings shorter than 8 bytes (NUL included) carry their length in the record
  byte, longer ones as S = 1 with the length on the fewest bytes;
- a struct member that is an array of named members (usrloc's ``Contacts``) is a
  struct; a top-level array is its items one after another (see
  :mod:`kcc_runtime.rpc.registry`);
- a packet that does not start with ``0xA1``, or is not a request, is answered
  with fault 400 "bad request: corrupted packet" (cookie 0 when the header could
  not be read); an empty body with fault 400 "bad request method: end of packet
  encountered"; an incomplete packet waits for more bytes.

Limits (kcc's choice; Kamailio bounds its buffers by ``binrpc_buffer_size`` and
``binrpc_max_body_size``): a request body longer than :data:`MAX_REQUEST_BODY` is
a fault and the connection is closed; a reply longer than the ``max_body`` given
to :func:`encode_reply` becomes fault 500 "reply too big"; structures nest at most
:data:`MAX_DEPTH` deep in a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kcc_runtime.rpc.registry import Array, Named, Param, RpcValue, Struct

__all__ = [
    "MAX_REQUEST_BODY",
    "BinrpcError",
    "Header",
    "Request",
    "decode_values",
    "encode_fault",
    "encode_reply",
    "encode_request",
    "parse_header",
    "parse_request",
]

MAGIC_VERSION: Final = 0xA1
REQ: Final = 0
REPL: Final = 1
FAULT: Final = 3

T_INT: Final = 0
T_STR: Final = 1
T_DOUBLE: Final = 2
T_STRUCT: Final = 3
T_ARRAY: Final = 4
T_AVP: Final = 5
T_BYTES: Final = 6

MAX_REQUEST_BODY: Final = 65536
MAX_DEPTH: Final = 16
#: ctl's ``binrpc_max_body_size`` default, 32 KiB
DEFAULT_MAX_BODY: Final = 32 * 1024


class BinrpcError(ValueError):
    """A packet that cannot be processed: ``code`` and ``message`` are the fault to
    answer with; ``cookie`` the request's when its header could be read."""

    def __init__(self, message: str, *, code: int = 400, cookie: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cookie = cookie


@dataclass(frozen=True)
class Header:
    """A packet header: its type, body length, cookie and own size in bytes."""

    kind: int
    body_len: int
    cookie: int
    size: int


@dataclass(frozen=True)
class Request:
    """A parsed request: the method and its parameters (struct and array
    parameters are skipped: no Kamailio command reads them over ctl)."""

    method: str
    params: list[Param]
    cookie: int


# -- encoding --------------------------------------------------------------------------


def _min_bytes(value: int, width: int) -> bytes:
    """``value`` as a ``width``-byte two's complement int, leading zero bytes
    dropped (0 gives b"")."""
    raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "big")
    return raw.lstrip(b"\0")


def _length_field(value: int) -> bytes:
    return _min_bytes(value, 4) or b"\0"


def encode_header(kind: int, body_len: int, cookie: int) -> bytes:
    length = _length_field(body_len)
    cookie_bytes = _length_field(cookie)
    return (
        bytes((MAGIC_VERSION, kind << 4 | (len(length) - 1) << 2 | (len(cookie_bytes) - 1)))
        + length
        + cookie_bytes
    )


def _int(value: int) -> bytes:
    data = _min_bytes(value, 4)
    return bytes((len(data) << 4 | T_INT,)) + data


def _double(value: float) -> bytes:
    data = _min_bytes(int(value * 1000), 8)
    # a size of 8 spills into the S bit, exactly as Kamailio writes it
    return bytes(((len(data) << 4 | T_DOUBLE) & 0xFF,)) + data


def _text(value: str, kind: int) -> bytes:
    data = value.encode("utf-8", "surrogateescape")
    if kind in (T_STR, T_AVP):
        data += b"\0"
    if len(data) < 8:
        return bytes((len(data) << 4 | kind,)) + data
    length = _length_field(len(data))
    return bytes(((len(length) | 8) << 4 | kind,)) + length + data


def _value(value: RpcValue | Named, out: bytearray, in_struct: bool) -> None:
    if isinstance(value, Named):
        value = value.value
    if isinstance(value, bool):
        out += _int(int(value))
    elif isinstance(value, int):
        out += _int(value)
    elif isinstance(value, float):
        out += _double(value)
    elif isinstance(value, str):
        out += _text(value, T_STR)
    elif isinstance(value, Struct):
        out.append(T_STRUCT)
        for name, member in value.items:
            out += _text(name, T_AVP)
            _value(member, out, True)
        out.append(0x80 | T_STRUCT)
    elif in_struct and value.items and all(isinstance(i, Named) for i in value.items):
        out.append(T_STRUCT)
        for item in value.items:
            assert isinstance(item, Named)
            out += _text(item.name, T_AVP)
            _value(item.value, out, True)
        out.append(0x80 | T_STRUCT)
    elif in_struct and not value.items:
        # an empty array member: ul.dump's "AoRs: { }" (measured)
        out += bytes((T_STRUCT, 0x80 | T_STRUCT))
    else:
        out.append(T_ARRAY)
        for item in value.items:
            _value(item, out, False)
        out.append(0x80 | T_ARRAY)


def encode_body(values: list[RpcValue]) -> bytes:
    """The records of a reply's top-level values (a top-level array: its items)."""
    out = bytearray()
    for value in values:
        if isinstance(value, Array):
            for item in value.items:
                _value(item, out, False)
        else:
            _value(value, out, False)
    return bytes(out)


def encode_fault(code: int, message: str, cookie: int) -> bytes:
    """A fault packet: the code (an int) and the message (a string)."""
    body = _int(code) + _text(message, T_STR)
    return encode_header(FAULT, len(body), cookie) + body


def encode_reply(values: list[RpcValue], cookie: int, max_body: int = DEFAULT_MAX_BODY) -> bytes:
    """A reply packet; fault 500 "reply too big" past ``max_body`` bytes."""
    body = encode_body(values)
    if len(body) > max_body:
        return encode_fault(500, "reply too big", cookie)
    return encode_header(REPL, len(body), cookie) + body


def encode_request(method: str, params: list[RpcValue], cookie: int) -> bytes:
    """A request packet (what kamcmd sends; for tests and clients)."""
    body = _text(method, T_STR) + encode_body(params)
    return encode_header(REQ, len(body), cookie) + body


# -- parsing ------------------------------------------------------------------------


def parse_header(data: bytes | bytearray) -> Header | None:
    """The header at the start of ``data``; None while incomplete. Raises
    :class:`BinrpcError` for bytes that are not a binrpc header."""
    if not data:
        return None
    if data[0] != MAGIC_VERSION:
        raise BinrpcError("bad request: corrupted packet")
    if len(data) < 2:
        return None
    kind = data[1] >> 4
    len_len = ((data[1] >> 2) & 3) + 1
    cookie_len = (data[1] & 3) + 1
    size = 2 + len_len + cookie_len
    if len(data) < size:
        return None
    body_len = int.from_bytes(data[2 : 2 + len_len], "big")
    cookie = int.from_bytes(data[2 + len_len : size], "big")
    return Header(kind, body_len, cookie, size)


def _signed(raw: bytes) -> int:
    if len(raw) in (4, 8):
        return int.from_bytes(raw, "big", signed=True)
    return int.from_bytes(raw, "big")


def _records(body: bytes) -> list[tuple[int, int, bytes]]:
    """(type, flags, value) of every record: flags 1 for a start, 2 for an end."""
    out: list[tuple[int, int, bytes]] = []
    at = 0
    end = len(body)
    while at < end:
        head = body[at]
        at += 1
        ext = head >> 7
        size = (head >> 4) & 7
        kind = head & 0xF
        if kind in (T_STRUCT, T_ARRAY):
            if size:
                raise BinrpcError("bad request: corrupted packet")
            out.append((kind, 2 if ext else 1, b""))
            continue
        if kind > T_BYTES:
            raise BinrpcError("bad request: corrupted packet")
        if ext and size == 0 and kind in (T_INT, T_DOUBLE):
            length = 8
        elif ext:
            if at + size > end:
                raise BinrpcError("bad request: corrupted packet")
            length = int.from_bytes(body[at : at + size], "big")
            at += size
        else:
            length = size
        if at + length > end or (kind in (T_INT, T_DOUBLE) and length > 8):
            raise BinrpcError("bad request: corrupted packet")
        out.append((kind, 0, body[at : at + length]))
        at += length
    return out


def _scalar(kind: int, raw: bytes) -> Param:
    if kind == T_INT:
        return _signed(raw)
    if kind == T_DOUBLE:
        return _signed(raw) / 1000.0
    if kind in (T_STR, T_AVP) and raw.endswith(b"\0"):
        raw = raw[:-1]
    return raw.decode("utf-8", "surrogateescape")


def decode_values(body: bytes) -> list[RpcValue]:
    """Every top-level value of a body (replies, for tests and clients): a struct
    as :class:`Struct`, an array as :class:`Array`. Raises :class:`BinrpcError`."""
    stack: list[tuple[Struct | Array, str | None]] = []
    top: list[RpcValue] = []
    pending: str | None = None

    def put(value: RpcValue) -> None:
        nonlocal pending
        if not stack:
            top.append(value)
        else:
            holder = stack[-1][0]
            if isinstance(holder, Struct):
                if pending is None:
                    raise BinrpcError("bad request: corrupted packet")
                holder.items.append((pending, value))
            else:
                holder.items.append(value)
        pending = None

    for kind, flags, raw in _records(body):
        if flags == 1:
            if len(stack) >= MAX_DEPTH:
                raise BinrpcError("bad request: structures nested too deep")
            stack.append((Struct() if kind == T_STRUCT else Array(), pending))
            pending = None
        elif flags == 2:
            if not stack or (kind == T_STRUCT) != isinstance(stack[-1][0], Struct):
                raise BinrpcError("bad request: corrupted packet")
            done, name = stack.pop()
            pending = name
            put(done)
        elif kind == T_AVP:
            if not stack or not isinstance(stack[-1][0], Struct) or pending is not None:
                raise BinrpcError("bad request: corrupted packet")
            value = _scalar(kind, raw)
            pending = str(value)
        else:
            put(_scalar(kind, raw))
    if stack:
        raise BinrpcError("bad request: corrupted packet")
    return top


def parse_request(data: bytes | bytearray) -> tuple[Request | None, int]:
    """The request at the start of ``data`` and the bytes it took; ``(None, 0)``
    while incomplete. Raises :class:`BinrpcError` (with the cookie when known)
    for anything that is not a well-formed request."""
    header = parse_header(data)
    if header is None:
        return None, 0
    if header.body_len > MAX_REQUEST_BODY:
        raise BinrpcError("bad request: packet too big", cookie=header.cookie)
    total = header.size + header.body_len
    if len(data) < total:
        return None, 0
    if header.kind != REQ:
        raise BinrpcError("bad request: corrupted packet", cookie=header.cookie)
    body = bytes(data[header.size : total])
    try:
        records = _records(body)
    except BinrpcError as exc:
        raise BinrpcError(exc.message, cookie=header.cookie) from None
    if not records:
        raise BinrpcError("bad request method: end of packet encountered", cookie=header.cookie)
    kind, flags, raw = records[0]
    if kind != T_STR or flags:
        raise BinrpcError("bad request method: type mismatch", cookie=header.cookie)
    method = str(_scalar(kind, raw))
    params: list[Param] = []
    depth = 0
    for kind, flags, raw in records[1:]:
        if flags == 1:
            depth += 1
            if depth > MAX_DEPTH:
                raise BinrpcError("bad request: structures nested too deep", cookie=header.cookie)
        elif flags == 2:
            depth -= 1
            if depth < 0:
                raise BinrpcError("bad request: corrupted packet", cookie=header.cookie)
        elif depth == 0:
            params.append(_scalar(kind, raw))
    if depth:
        raise BinrpcError("bad request: corrupted packet", cookie=header.cookie)
    return Request(method, params, header.cookie), total
