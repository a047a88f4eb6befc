"""The RFC 4475 / RFC 5118 torture corpus (tests/data/sip-torture), read as raw bytes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

CORPUS = Path(__file__).resolve().parent.parent / "data" / "sip-torture"


class Case(NamedTuple):
    rfc: str
    file: str
    section: str
    verdict: str
    data: bytes

    @property
    def id(self) -> str:
        return f"{self.rfc}/{self.file}"


def load_corpus() -> list[Case]:
    """Every message named by an INDEX.tsv, with its verdict."""
    cases: list[Case] = []
    for rfc in ("rfc4475", "rfc5118"):
        with (CORPUS / rfc / "INDEX.tsv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                data = (CORPUS / rfc / row["file"]).read_bytes()
                cases.append(Case(rfc, row["file"], row["rfc_section"], row["verdict"], data))
    return cases


CASES = load_corpus()
BY_FILE = {case.file: case for case in CASES}
