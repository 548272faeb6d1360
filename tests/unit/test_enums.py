"""Authorization states, after-import actions and the grants a person signs in with are
defined once (mailintake.enums, config.matrix); every module uses those definitions, and the
values stay the strings the database, the API, JSON and YAML carry (CONTRACT §4)."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

from mailintake import errors
from mailintake.config.loader import dump_yaml
from mailintake.enums import AfterImport, AuthState

SRC = Path(__file__).resolve().parents[2] / "src" / "mailintake"
# Values that mean nothing else anywhere in the code: spelled only in their definition.
ONLY_DEFINED = {
    "not_authorized",
    "reauthorization_required",
    "password_update_required",
    "mark_read",
}


def test_the_values_are_the_contracts_strings() -> None:
    assert [s.value for s in AuthState] == [
        "not_authorized",
        "authorized",
        "reauthorization_required",
        "password_update_required",
        "error",
    ]
    assert [a.value for a in AfterImport] == ["mark_read", "move", "delete", "keep"]
    assert json.dumps({"state": AuthState.ERROR}) == '{"state": "error"}'
    assert dump_yaml({"state": AuthState.AUTHORIZED, "after_import": AfterImport.KEEP}) == (
        "state: authorized\nafter_import: keep\n"
    )
    assert f"{AuthState.REAUTHORIZATION_REQUIRED}" == "reauthorization_required"


def test_the_errors_carry_the_states() -> None:
    assert errors.AuthError("x").state == AuthState.ERROR
    assert errors.AuthorizationRequired("x").state == AuthState.REAUTHORIZATION_REQUIRED
    assert errors.PasswordUpdateRequired("x").state == AuthState.PASSWORD_UPDATE_REQUIRED


@functools.cache
def _modules() -> list[tuple[Path, ast.Module]]:
    """Every module of the package, parsed once for all the tests here."""
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for path in sorted(SRC.rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_states_and_actions_are_spelled_only_where_they_are_defined() -> None:
    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        if path != SRC / "enums.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in ONLY_DEFINED
    ]
    assert spelled == []


def test_the_grants_a_person_signs_in_with_are_defined_once() -> None:
    defined = [
        f"{path.relative_to(SRC)}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "USER_GRANTS" for t in node.targets)
    ]
    assert defined == ["config/matrix.py"]


def test_the_pages_use_the_definitions_too() -> None:
    spelled = [
        f"{page.name}: {value}"
        for page in sorted((SRC / "web" / "templates").glob("*.html"))
        for value in ONLY_DEFINED
        if f'"{value}"' in page.read_text()
    ]
    assert spelled == []
