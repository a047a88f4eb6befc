"""``kcc explain CODE``: one page per diagnostic code, in ``data/explain/<CODE>.md``.

The first line of each page is ``# CODE: title``; the title is what ``kcc explain``
lists. A test checks that every code the compiler can emit has a page.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

__all__ = ["all_codes", "explain_page"]

_CODE = re.compile(r"[EW][0-9]{4}")


def _pages() -> Traversable:
    return resources.files("kcc").joinpath("data/explain")


@cache
def all_codes() -> dict[str, str]:
    """Every documented code -> its one-line title, sorted by code."""
    codes: dict[str, str] = {}
    for entry in _pages().iterdir():
        name = entry.name
        if not name.endswith(".md") or not _CODE.fullmatch(name[:-3]):
            continue
        first = entry.read_text("utf-8").splitlines()[0]
        codes[name[:-3]] = first.split(":", 1)[1].strip() if ":" in first else first
    return dict(sorted(codes.items()))


def explain_page(code: str) -> str | None:
    if not _CODE.fullmatch(code):
        return None
    page = _pages().joinpath(f"{code}.md")
    if not page.is_file():
        return None
    return page.read_text("utf-8")
