"""Every third-party package the code imports is declared in pyproject.toml: at module level as a dependency,
inside a function (an optional feature) as a dependency or in an extra."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """The distribution name of a requirement string, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9._-]+)", requirement).group(1)).lower()


def _third_party_imports() -> dict[str, bool]:
    """Top-level import name -> True when some module of the package imports it at module level."""
    found: dict[str, bool] = {}

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name.split(".")[0] for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module.split(".")[0]]
            for n in names:
                if n not in sys.stdlib_module_names and n not in ("upft_bench", "__future__"):
                    found[n] = found.get(n, False) or not in_function
            visit(child, inside)

    for path in (ROOT / "upft_bench").rglob("*.py"):
        visit(ast.parse(path.read_text()), False)
    return found


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    distributions = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"numpy", "scipy", "torch", "yaml"} <= set(imports)   # the scan sees the package's imports
    missing = []
    for name, at_module_level in sorted(imports.items()):
        dists = {_name(d) for d in distributions.get(name, [name])}
        declared = required if at_module_level else required | extras
        if not dists & declared:
            where = "at module level" if at_module_level else "in a function"
            missing.append(f"{name} ({', '.join(sorted(dists))}; imported {where})")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)
