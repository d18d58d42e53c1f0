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


AGENT_ORDER = ["cli", "launcher", "machine", "run", "ranks", "report", "learn", "replay",
               "checkpoint", "update_types"]
"""agent/'s parts, each importing only itself and the parts after it."""


def agent_part(module: str) -> str | None:
    """The part of agent/ that ``module`` (a dotted name) belongs to, if any."""
    parts = module.split(".")
    return parts[1] if parts[0] == "agent" and len(parts) > 1 else None


def imported_agent_parts(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(agent_part(node.module))
        elif isinstance(node, ast.Import):
            found.update(agent_part(alias.name) for alias in node.names)
    return found - {None}


def test_agent_parts_import_only_the_parts_after_them() -> None:
    wrong = []
    for path in sorted((REPO / "agent").rglob("*.py")):
        relative = path.relative_to(REPO / "agent")
        part = relative.parts[0].removesuffix(".py")
        if part == "__init__":
            continue
        allowed = set(AGENT_ORDER[AGENT_ORDER.index(part):])
        if imported := imported_agent_parts(path) - allowed:
            wrong.append(f"agent/{relative} imports {sorted(imported)}")
    assert not wrong, wrong


def test_no_agent_folder_holds_more_than_12_modules() -> None:
    for folder in [REPO / "agent", *(p for p in (REPO / "agent").iterdir() if p.is_dir()
                                     and (p / "__init__.py").exists())]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, (folder, len(modules))
