"""The runtime stands alone: it never imports the compiler or its dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

from .conftest import REPO

RUNTIME = REPO / "runtime"
COMPILER_ONLY = {"kcc", "lark", "libcst", "black", "typer", "rich", "click"}


def test_runtime_sources_import_no_compiler_module() -> None:
    offenders = []
    for source in (RUNTIME / "kcc_runtime").rglob("*.py"):
        tree = ast.parse(source.read_text("utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{source.relative_to(REPO)}: {name}"
                for name in names
                if name.split(".")[0] in COMPILER_ONLY
            ]
    assert offenders == []


def test_runtime_distribution_has_no_compiler_dependencies() -> None:
    meta = tomllib.loads((RUNTIME / "pyproject.toml").read_text("utf-8"))
    deps = [
        d.split(";")[0].split(">")[0].split("=")[0].strip() for d in meta["project"]["dependencies"]
    ]
    assert not set(deps) & COMPILER_ONLY
    compiler = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert compiler["project"]["requires-python"] == meta["project"]["requires-python"]


def test_runtime_imports_alone_in_an_isolated_interpreter() -> None:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import kcc_runtime\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(COMPILER_ONLY)!r})\n"
        "assert not leaked, leaked\n"
        "print(kcc_runtime.__version__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(RUNTIME)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"
