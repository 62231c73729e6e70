"""The package's structure as rules that can fail: the import-linter contracts of pyproject.toml
(layers, methods see features only, nothing imports the CLI, ot stands alone), no import of an
mgcl module hidden inside a function, and library code that does not print."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mgcl"
#: ``import mgcl`` stays light: its one public name is imported on first use (PEP 562).
LAZY_BY_DESIGN = {PACKAGE / "__init__.py"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("lint-imports is not installed (pip install -e '.[dev]')")
    run = subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " 0 broken" in run.stdout


def test_no_mgcl_import_inside_a_function():
    """An import of an mgcl module inside a function body hides a dependency (usually a cycle)."""
    found = []
    for path in modules():
        if path in LAZY_BY_DESIGN:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    names = ["(relative)"]
                for name in names:
                    if name == "mgcl" or name.startswith("mgcl.") or name == "(relative)":
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {fn.name}: {name}")
    assert not found, "\n".join(found)


def test_only_the_command_line_prints():
    """Library code reports through logging or callbacks, so a service or notebook can route it."""
    found = []
    for path in modules():
        if PACKAGE / "cli" in path.parents:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "print() outside mgcl.cli: " + ", ".join(found)
