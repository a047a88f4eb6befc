"""``kcc check --format sarif``: diagnostics as SARIF 2.1.0, for code scanning in CI.

One run whose tool is ``kcc``; its ``rules`` are the codes present in the run, each
with the title of its ``kcc explain`` page (``shortDescription``) and the page's first
paragraph (``fullDescription``). Each diagnostic is one result: ``ruleId``/``ruleIndex``,
``level`` (``error`` or ``warning``), the message (with the notes and the help line
below it, as the text output shows them), the primary span as ``locations`` and the
secondary labels as ``relatedLocations``.

Paths are URIs relative to ``base`` (the working directory by default), which is what
GitHub code scanning resolves against the checkout; a file outside ``base`` gets an
absolute ``file://`` URI. Columns count Unicode code points (``columnKind``), a tab
being one column, as everywhere in kcc; ``endColumn`` is exclusive, as SARIF wants.

:func:`render_sarif` is a pure function of its arguments: no I/O, no clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from kcc import __version__
from kcc.diagnostics import Diagnostic
from kcc.explain import all_codes, explain_page
from kcc.source import Span

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "render_sarif", "rule_description"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def rule_description(code: str) -> str:
    """The first paragraph of ``code``'s explain page, on one line ("" if none)."""
    page = explain_page(code)
    if page is None:
        return ""
    paragraph: list[str] = []
    for line in page.splitlines()[1:]:
        text = line.strip()
        if not text:
            if paragraph:
                break
            continue
        if text.startswith("#"):
            break
        paragraph.append(text)
    return " ".join(paragraph)


def artifact_uri(path: str, base: Path) -> str | None:
    """``path`` as a URI reference relative to ``base``; None for a pseudo-file."""
    if not path or path.startswith("<"):
        return None
    try:
        absolute = Path(os.path.abspath(path))
        relative = PurePosixPath(Path(os.path.relpath(absolute, os.path.abspath(base))))
    except ValueError:  # another drive (Windows): no relative form exists
        return absolute.as_uri()
    if relative.parts and relative.parts[0] == "..":
        return absolute.as_uri()
    return quote(str(relative), safe="/")


def _physical_location(span: Span, base: Path) -> dict[str, Any] | None:
    site = span.use_site()
    uri = artifact_uri(site.file.path, base)
    if uri is None:
        return None
    return {
        "artifactLocation": {"uri": uri},
        "region": {
            "startLine": site.line,
            "startColumn": site.column,
            "endLine": site.end_line,
            "endColumn": site.end_column,
        },
    }


def _message_text(diag: Diagnostic) -> str:
    lines = [diag.message]
    lines += [f"note: {note}" for note in diag.all_notes()]
    if diag.help:
        lines.append(f"help: {diag.help}")
    return "\n".join(lines)


def _result(diag: Diagnostic, rule_index: int, base: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": diag.code,
        "ruleIndex": rule_index,
        "level": diag.severity.value,
        "message": {"text": _message_text(diag)},
    }
    if diag.span is not None:
        physical = _physical_location(diag.span, base)
        if physical is not None:
            location: dict[str, Any] = {"physicalLocation": physical}
            if diag.label:
                location["message"] = {"text": diag.label}
            result["locations"] = [location]
    related: list[dict[str, Any]] = []
    for label in diag.labels:
        physical = _physical_location(label.span, base)
        if physical is None:
            continue
        related.append(
            {"id": len(related), "physicalLocation": physical, "message": {"text": label.text}}
        )
    if related:
        result["relatedLocations"] = related
    return result


def _rule(code: str, level: str, titles: Mapping[str, str]) -> dict[str, Any]:
    title = titles.get(code, code)
    rule: dict[str, Any] = {
        "id": code,
        "shortDescription": {"text": title},
        "defaultConfiguration": {"level": level},
    }
    description = rule_description(code)
    if description:
        rule["fullDescription"] = {"text": description}
    return rule


def render_sarif(diagnostics: Iterable[Diagnostic], *, base: Path | None = None) -> str:
    """A SARIF 2.1.0 log (JSON text, newline-terminated) of ``diagnostics``.

    ``base`` is the directory artifact URIs are relative to (default: the working
    directory). Results keep the order given; rules are sorted by code.
    """
    root = Path.cwd() if base is None else base
    diags = list(diagnostics)
    titles = all_codes()
    codes = sorted({d.code for d in diags})
    index = {code: i for i, code in enumerate(codes)}
    levels = {d.code: d.severity.value for d in diags}
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kcc",
                        "version": __version__,
                        "rules": [_rule(code, levels[code], titles) for code in codes],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(d, index[d.code], root) for d in diags],
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
