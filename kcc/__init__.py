"""kcc: compile Kamailio routing configs into checked, typed Python SIP proxies.

The pipeline (see :mod:`kcc.pipeline` and docs/architecture.md)::

    preprocess -> parse -> check -> build (codegen, then format)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__version__ = "0.1.0"

__all__ = ["CompileFailed", "__version__", "compile_file"]


class CompileFailed(Exception):  # noqa: N818 -- reads as what happened
    """The config has errors; ``diagnostics`` holds them in the plain-text layout."""

    def __init__(self, path: Path, rendered: str) -> None:
        super().__init__(f"{path}: the config has errors\n{rendered}")
        self.path = path
        self.diagnostics = rendered


def compile_file(path: str | Path, defines: Mapping[str, str | None] | None = None) -> str:
    """The generated module of a cfg, as ``kcc build`` writes it; raises
    :class:`CompileFailed` (with the rendered diagnostics) when it has errors."""
    from kcc.diagnostics import render_plain
    from kcc.pipeline import run_pipeline

    ctx = run_pipeline(path, defines=defines, stop_after="build")
    if ctx.sink.has_errors or ctx.python is None:
        rendered = "".join(render_plain(d) + "\n" for d in ctx.sink.sorted())
        raise CompileFailed(Path(path), rendered)
    return ctx.python
