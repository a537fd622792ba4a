"""The package is laid out by layer, each importing only the layers below it; every module declares its
public names; every public function and class says what it does."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "src" / "scdeal"
LAYERS = {"errors": 0, "_utils": 0, "data": 1, "model": 2, "tl": 3, "pipeline": 4}
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def imported_modules(path: Path) -> set[str]:
    """Every scdeal module `path` imports, at the top or inside a function."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("scdeal")}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_each_layer_imports_only_the_layers_below(path):
    own = layer(module_name(path))
    if own is None:
        return
    for name in imported_modules(path):
        other = layer(name)
        assert other is None or other <= own, f"{module_name(path)} (layer {own}) imports {name} (layer {other})"


def test_the_tree_shows_the_layers():
    top = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert top == {"__init__", "_utils", "errors", "data", "model", "tl", "pipeline"}
    assert not set(top) & set(sys.stdlib_module_names), "a module shadows the standard library"


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"], ids=lambda p: module_name(p))
def test_every_module_declares_its_public_names(path):
    tree = ast.parse(path.read_text())
    declared = next((node.value for node in tree.body if isinstance(node, ast.Assign)
                     and any(getattr(t, "id", None) == "__all__" for t in node.targets)), None)
    assert declared is not None, f"{module_name(path)} has no __all__"
    names = [elt.value for elt in declared.elts]
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    defined |= {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert set(names) <= defined, f"{module_name(path)}: __all__ names {sorted(set(names) - defined)} it does not define"


def undocumented(path: Path) -> list[str]:
    """Public functions, methods and classes of a module without a docstring."""
    missing = []

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)) and not child.name.startswith("_"):
                if ast.get_docstring(child) is None:
                    missing.append(f"{prefix}{child.name}")
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{child.name}.")
    visit(ast.parse(path.read_text()))
    return missing


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_every_public_function_has_a_docstring(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{module_name(path)} has no module docstring"
    assert not undocumented(path), f"{module_name(path)}: {undocumented(path)}"
