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


#: The only calls of importlib.import_module in the package, (file, function): registries that
#: name their entries' modules as strings and import one when it is used. The command line's
#: (``mgcl.cli.command_module``): each ``mgcl`` run imports its own command only, not all of
#: them (start-up time; ``mgcl --help`` without torch). The backbones' (``_resolve``): an
#: audio-only user never imports transformers. Any other run-time import by name would hide a
#: dependency from import-linter, as an import inside a function does.
IMPORTS_BY_NAME = {
    (PACKAGE / "cli" / "__init__.py", "command_module"),
    (PACKAGE / "backbones" / "__init__.py", "_resolve"),
}


def imports_by_name(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function or "<module>") of each import_module / __import__ call in a file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            if isinstance(child, ast.Call):
                f = child.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                if name in ("import_module", "__import__"):
                    found.append((child.lineno, where))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def test_imports_by_name_only_in_the_registries():
    found = [
        f"{path.relative_to(ROOT)}:{line} {where}"
        for path in modules()
        for line, where in imports_by_name(path)
        if (path, where) not in IMPORTS_BY_NAME
    ]
    assert not found, "importlib.import_module outside the registries: " + ", ".join(found)
    # the rule sees the allowed ones (it would not pass vacuously)
    assert {(p, w) for p, w in IMPORTS_BY_NAME if any(x == w for _, x in imports_by_name(p))} == IMPORTS_BY_NAME


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
