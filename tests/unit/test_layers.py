"""The layers of src/mailintake, checked on every module's imports (lazy ones included).

The outside edges (web, cli) may use everything; nothing below them uses them. Sources and
outputs never drive an import (the engine does), and the store never knows who calls it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mailintake"

# package (or module) -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "sources": {"engine", "web", "cli", "sinks"},
    "sinks": {"engine", "web", "cli", "sources"},
    "mime": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "net": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "store": {"engine", "web", "cli", "sources", "sinks"},
    "config": {"engine", "web", "cli", "sources", "sinks"},
    "oauth": {"engine", "web", "cli", "sources", "sinks"},
    "engine": {"web", "cli"},
    "alerts": {"engine", "web", "cli", "sources", "sinks"},
    "health": {"engine", "web", "cli", "sources", "sinks"},
    "observability": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "errors": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "crypto": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "keys": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "enums": {
        "engine",
        "web",
        "cli",
        "sources",
        "sinks",
        "store",
        "oauth",
        "config",
        "errors",
        "net",
    },
    "spool": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
}


def layer(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imported(path: Path) -> set[str]:
    """The mailintake packages a module imports, at its top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "mailintake":
                modules = [f"mailintake.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "mailintake" and len(parts) > 1:
                names.add(parts[1])
    return names


def violations() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        own = layer(path)
        for target in sorted(imported(path) & FORBIDDEN.get(own, set())):
            found.append(f"{path.relative_to(SRC)} imports mailintake.{target}")
    return found


def test_every_module_keeps_to_its_layer() -> None:
    assert violations() == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from mailintake.engine import poll\n    import mailintake.web\n"
    )
    assert imported(module) == {"engine", "web"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_every_layer_named_exists(package: str) -> None:
    assert (SRC / package).is_dir() or (SRC / f"{package}.py").is_file()
