"""Bencoding, the wire format of rtpengine's "ng" control protocol.

rtpengine's ng protocol sends ``<cookie> <bencoded dictionary>`` in one UDP datagram
and gets ``<cookie> <bencoded dictionary>`` back (rtpengine's ``docs/ng_control_protocol``).
Values are byte strings (``<len>:<bytes>``), integers (``i<n>e``), lists
(``l...e``) and dictionaries (``d...e``). Kamailio's rtpengine module writes its
dictionary keys in insertion order, not sorted (measured on 5.6.3: an offer is
``d8:supports...3:sdp...5:flags...7:call-id...13:received-from...8:from-tag...
7:command5:offere``), and rtpengine accepts any order, so :func:`encode` keeps the
order of the mapping it is given.

:func:`decode` never raises anything but :class:`BencodeError` on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["BValue", "BencodeError", "decode", "encode"]

#: a decoded value: byte strings stay bytes, dictionary keys are decoded as UTF-8
BValue: TypeAlias = "bytes | int | list[BValue] | dict[str, BValue]"

_MAX_DEPTH = 64


class BencodeError(ValueError):
    """Input that is not one bencoded value."""


def encode(value: object) -> bytes:
    """Bencode ``value``: ``str`` (UTF-8) and ``bytes`` as strings, ``int``,
    sequences as lists, mappings as dictionaries (keys in the mapping's order).
    TypeError for anything else."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: object, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str | bytes):
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, Mapping):
        out.append(b"d")
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> BValue:
    """The one value ``data`` holds; :class:`BencodeError` when it is not exactly
    one well-formed value."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def _decode(data: bytes, pos: int, depth: int) -> tuple[BValue, int]:
    if depth > _MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if pos >= len(data):
        raise BencodeError("unexpected end of data")
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos + 1)
        if end < 0:
            raise BencodeError("unterminated integer")
        text = data[pos + 1 : end]
        if not text or not text.lstrip(b"-").isdigit():
            raise BencodeError(f"bad integer at offset {pos}")
        return int(text), end + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0 or not data[pos:colon].isdigit():
            raise BencodeError(f"bad string length at offset {pos}")
        size = int(data[pos:colon])
        end = colon + 1 + size
        if end > len(data):
            raise BencodeError("string runs past the end of data")
        return data[colon + 1 : end], end
    if lead == b"l":
        items: list[BValue] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        result: dict[str, BValue] = {}
        pos += 1
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, bytes):
                raise BencodeError("dictionary key is not a string")
            result[key.decode("utf-8", "surrogateescape")], pos = _decode(data, pos, depth + 1)
        return result, pos + 1
    raise BencodeError(f"unexpected byte {lead!r} at offset {pos}")
