"""Readable dumps of intermediate forms, for ``kcc check --dump-after STAGE``.

The AST dump is an indented tree, one node per line with its ``line:col``; spans,
being positions rather than content, are shown only in that prefix.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from kcc.source import Span

__all__ = ["dump_ast"]


def _is_node(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type | Span)


def _scalar(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    return repr(value)


def _dump(value: Any, indent: int, out: list[str], label: str) -> None:
    pad = "  " * indent
    prefix = f"{label}=" if label else ""
    if _is_node(value):
        span = getattr(value, "span", None)
        where = f"  @{span.line}:{span.column}" if isinstance(span, Span) else ""
        fields = [
            f
            for f in dataclasses.fields(value)
            if f.name != "span" and not isinstance(getattr(value, f.name), Span)
        ]
        scalars = [
            f"{f.name}={_scalar(getattr(value, f.name))}"
            for f in fields
            if not _is_node(getattr(value, f.name))
            and not isinstance(getattr(value, f.name), tuple | list)
        ]
        head = f"{pad}{prefix}{type(value).__name__}"
        if scalars:
            head += "(" + ", ".join(scalars) + ")"
        out.append(head + where)
        for f in fields:
            child = getattr(value, f.name)
            if _is_node(child):
                _dump(child, indent + 1, out, f.name)
            elif isinstance(child, tuple | list):
                if not child:
                    continue
                out.append(f"{pad}  {f.name}:")
                for item in child:
                    _dump(item, indent + 2, out, "")
        return
    out.append(f"{pad}{prefix}{_scalar(value)}")


def dump_ast(node: Any) -> str:
    out: list[str] = []
    _dump(node, 0, out, "")
    return "\n".join(out) + "\n"
