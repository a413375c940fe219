"""The add-on's layers (docs/architecture.md): `operators/` and `ui/` use `vse/`; `vse/` never
imports either of them, and the panels never import the operators (they draw from `vse/`)."""

from __future__ import annotations

import ast
import os

import bl_helpers

FORBIDDEN = {"vse": {"operators", "ui"}, "ui": {"operators"}}


def imported_packages(path: str) -> set[str]:
    """The add-on's top-level packages that `path` imports relatively (`from ..operators ...`,
    `from .. import operators`)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_vse_and_ui_never_import_what_lies_above_them():
    found = []
    for folder, forbidden in FORBIDDEN.items():
        for name in sorted(os.listdir(os.path.join(bl_helpers.ROOT, folder))):
            if name.endswith(".py"):
                bad = imported_packages(os.path.join(bl_helpers.ROOT, folder, name)) & forbidden
                found += [f"{folder}/{name} imports {package}/" for package in sorted(bad)]
    assert not found, "\n".join(found)
