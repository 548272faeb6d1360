"""The layers of src/mailintake, checked on every module's imports (lazy ones included).

The outside edges (web, cli) may use everything; nothing below them uses them. Sources and
outputs never drive an import (the engine does) and never read the configuration: the engine
hands them frozen settings (engine.factories). The store never knows who calls it.

The tests keep to theirs: no module of tests/, benchmarks/ or sandbox/ imports a test module
(``test_*.py``). What tests share is in tests/support, fixtures in a conftest.py: a fixture
imported into a test module by name would start once more there, and a test module that
others import runs its own tests' set-up for them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "mailintake"

# package (or module) -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "sources": {"engine", "web", "cli", "sinks", "config"},
    "sinks": {"engine", "web", "cli", "sources", "config"},
    "mime": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    "net": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "config"},
    # The store keeps what services and oauth give it; it knows neither.
    "store": {"engine", "web", "cli", "sources", "sinks", "oauth", "services"},
    # Configuration is read and checked without the store or tokens (services apply it).
    "config": {"engine", "web", "cli", "sources", "sinks", "store", "oauth", "services"},
    "oauth": {"engine", "web", "cli", "sources", "sinks", "services"},
    "services": {"engine", "web", "cli", "sources", "sinks"},
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


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports, at its top or inside functions, relative imports made
    absolute, and ``from package import module`` counted as that module."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (``test_*.py`` under tests/) ``path`` imports."""
    found = []
    for name in sorted(imported_modules(path)):
        parts = name.split(".")
        if parts[0] == "tests" and parts[-1].startswith("test_"):
            found.append(name)
    return found


def test_no_module_imports_a_test_module() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for tree in ("tests", "benchmarks", "sandbox")
        for path in sorted((ROOT / tree).rglob("*.py"))
        for name in imported_test_modules(path)
    ]
    assert found == [], "move what they share to tests/support (fixtures: a conftest.py)"


def test_the_check_sees_every_way_to_import_a_test_module(tmp_path: Path) -> None:
    folder = tmp_path / "tests" / "integration"
    folder.mkdir(parents=True)
    module = folder / "m.py"
    module.write_text(
        "from tests.integration.test_a import x\n"
        "from tests.integration import test_b\n"
        "from .test_c import y\n"
        "def f():\n    import tests.unit.test_d\n"
        "from tests.support.mail import raw\n"
    )
    found = imported_modules(module, tmp_path)
    assert {n for n in found if n.split(".")[-1].startswith("test_")} == {
        "tests.integration.test_a",
        "tests.integration.test_b",
        "tests.integration.test_c",
        "tests.unit.test_d",
    }


HTTPX_MAKES_A_CONTEXT = ("get", "post", "put", "patch", "delete", "head", "request", "Client")


def httpx_calls_with_a_context_of_their_own(path: Path) -> list[int]:
    """The lines where ``path`` calls httpx's module functions or ``Client`` directly: each
    makes a TLS context (sandbox.http_clients shares one)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "httpx2"
            and node.func.attr in HTTPX_MAKES_A_CONTEXT
        ):
            lines.append(node.lineno)
    return lines


def test_the_tests_make_http_requests_through_the_shared_context() -> None:
    own = ROOT / "sandbox" / "http_clients.py"
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for tree in ("tests", "sandbox", "benchmarks")
        for path in sorted((ROOT / tree).rglob("*.py"))
        if path != own
        for line in httpx_calls_with_a_context_of_their_own(path)
    ]
    assert found == [], "use sandbox.http_clients"


def test_the_http_check_sees_each_way_of_calling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import httpx2\nhttpx2.get('u')\nwith httpx2.Client() as c:\n    c.get('u')\n"
        "httpx2.Timeout(1)\n"
    )
    assert httpx_calls_with_a_context_of_their_own(module) == [2, 3]
