"""Dependencies run one way: agent -> observer, meta -> common. Checked on the source's
imports (including ones inside functions), so a cycle cannot creep back in."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAY_IMPORT = {
    "common": {"common"},
    "meta": {"meta", "common"},
    "observer": {"observer", "common"},
    "agent": {"agent", "observer", "meta", "common"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found & set(MAY_IMPORT)


def test_each_package_imports_only_the_layers_below_it() -> None:
    wrong = {
        f"{path.relative_to(REPO)} imports {sorted(imported - MAY_IMPORT[package])}"
        for package in MAY_IMPORT
        for path in sorted((REPO / package).rglob("*.py"))
        if (imported := imported_packages(path)) - MAY_IMPORT[package]
    }
    assert not wrong, sorted(wrong)
