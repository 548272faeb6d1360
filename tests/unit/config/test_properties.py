"""Properties of reading and validating documents, for any input: nothing but a ConfigError
ever comes out (no RecursionError, no crash, no hang), and a valid document survives
apply → export → validate → apply unchanged."""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailintake.config.loader import dump_yaml, load_file, load_json_text, load_yaml_text
from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document, validate_only
from mailintake.services.export import export_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from tests.support.documents import CLIENT, TENANT

# Reading must end well inside this, whatever the input (a hang fails the example).
QUICK = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces YAML is made of, so that random joins reach anchors, aliases, tags, merges, flow
# and block collections, and the values the constructors refuse.
YAML_PIECES = [
    "\n", "  ", "- ", ": ", ", ", "[", "]", "{", "}", "&a ", "&b ", "*a", "*b", "<<: ", "? ",
    "!!int ", "!!float ", "!!binary ", "!!str ", "!!python/object:os.system ", "'", '"', "#",
    "|\n", ">\n", "---\n", "...\n", "%YAML 1.1\n", "mailboxes", "outputs", "name", "host",
    "oauth", "2024-13-45", "9" * 5000, "0x", "1e999", ".inf", "~", "null", "true", "..",
    "\t", "\\", "\ufeff", "\x00", "\x85",
]  # fmt: skip
JSON_PIECES = [
    "{", "}", "[", "]", ":", ",", '"', '"a"', '"mailboxes"', '"name"', "1", "-", "1e999",
    "9" * 5000, "null", "true", "NaN", "Infinity", "\\u0000", "\\ud800", " ", "\n",
]  # fmt: skip

FIELDS = [
    "name", "protocol", "host", "port", "security", "graph_url", "username", "shared_mailbox",
    "folder", "after_import", "move_to", "poll_interval", "max_message_size", "output",
    "enabled", "oauth", "proxy", "authorization_server", "grant_type", "token_endpoint",
    "authorization_endpoint", "device_authorization_endpoint", "scopes", "tenant_id",
    "client_id", "client_secret", "client_certificate", "redirect_uri", "password", "address",
    "type", "path", "url", "headers", "issuer", "app_scopes", "imap", "pop3", "graph",
]  # fmt: skip
PLAUSIBLE = [
    "imap", "pop3", "graph", "ssl", "starttls", "none", "mark_read", "move", "delete", "keep",
    "MICROSOFT", "GOOGLE", "client_credentials", "authorization_code", "password",
    "device_code", "folder", "webhook", "http://localhost:8765/", "https://idp.example.com/t",
    "http://u:p@proxy.example.com:3128", "https://u:p@idp.example.com/t", "${env:X}",
    "${env:MISSING}", "<redacted>", "INBOX", "a@contoso.com", ".", "..", ".hidden", "default",
    "50MB", "-1", "common", "organizations", TENANT, CLIENT, "/srv/capture", "relative/dir",
    "{tenant}", 0, 1, 993, 65536, -5, 10**30, 1.5, True, False, None, [], {},
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(PLAUSIBLE),
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=6),
    ),
    max_leaves=40,
)
items = st.dictionaries(st.sampled_from(FIELDS), values, max_size=12)
documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "authorization_servers": st.lists(items, max_size=3) | values,
            "outputs": st.lists(items, max_size=3) | values,
            "mailboxes": st.lists(items, max_size=4) | values,
        },
    ),
)


def refused(exc: ConfigError) -> None:
    assert exc.problems
    assert all(isinstance(line, str) and line for line in exc.problems)


def read_or_refuse(read: Any, text: str) -> Any:
    try:
        return read(text, "f")
    except ConfigError as exc:
        refused(exc)
    return None


def validate_or_refuse(doc: Any) -> None:
    try:
        validate_document(doc, Context(environ={"X": "x"}))
    except ConfigError as exc:
        refused(exc)


@QUICK
@given(st.text(max_size=400))
def test_any_text_is_a_yaml_document_or_a_config_error(text: str) -> None:
    validate_or_refuse(read_or_refuse(load_yaml_text, text))


@QUICK
@given(st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=3), max_size=60))
def test_yaml_made_of_yaml_pieces_is_a_document_or_a_config_error(pieces: list[str]) -> None:
    validate_or_refuse(read_or_refuse(load_yaml_text, "".join(pieces)))


@QUICK
@given(st.text(max_size=400))
def test_any_text_is_a_json_document_or_a_config_error(text: str) -> None:
    validate_or_refuse(read_or_refuse(load_json_text, text))


@QUICK
@given(st.lists(st.sampled_from(JSON_PIECES) | st.text(max_size=3), max_size=60))
def test_json_made_of_json_pieces_is_a_document_or_a_config_error(pieces: list[str]) -> None:
    validate_or_refuse(read_or_refuse(load_json_text, "".join(pieces)))


@QUICK
@given(st.binary(max_size=400))
def test_any_file_is_a_document_or_a_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "c.yaml"
        file.write_bytes(data)
        try:
            validate_or_refuse(load_file(file))
        except ConfigError as exc:
            refused(exc)


@QUICK
@given(documents)
def test_any_document_validates_or_is_refused_with_problems(doc: Any) -> None:
    validate_or_refuse(doc)
    # ... however it is written: YAML with aliases for repeated parts, or JSON
    validate_or_refuse(read_or_refuse(load_yaml_text, dump_yaml(doc)))
    validate_or_refuse(read_or_refuse(load_json_text, json.dumps(doc)))


@QUICK
@given(st.integers(1, 400), st.sampled_from(["[", "{a: ", "- ", "a:\n  "]))
def test_any_nesting_is_read_or_refused(levels: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}"}.get(opener, "")
    text = opener * levels + "x" + closer * levels
    if opener == "a:\n  ":
        text = "".join("  " * i + "a:\n" for i in range(levels)) + "  " * levels + "x\n"
    read_or_refuse(load_yaml_text, text)
    read_or_refuse(load_json_text, "[" * levels + "]" * levels)


# --- valid documents round-trip -------------------------------------------------------------

NAME_START = string.ascii_letters + string.digits + "_-"
names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(NAME_START),
    st.text(NAME_START + ".", max_size=20),
)
secrets = st.text(string.ascii_letters + string.digits + "~._-", min_size=1, max_size=30)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    used = draw(st.lists(names, min_size=3, max_size=9, unique_by=str.lower))
    servers, outputs, mailboxes = [], [], []
    for name in used:
        kind = draw(st.sampled_from(["server", "folder", "webhook", "mailbox", "mailbox"]))
        if kind == "server" and name not in ("MICROSOFT", "GOOGLE"):
            servers.append(
                {
                    "name": name,
                    "authorization_endpoint": f"https://idp.example.com/{name}/authorize",
                    "token_endpoint": f"https://idp.example.com/{name}/token",
                    "scopes": {"imap": draw(st.lists(names, min_size=1, max_size=3))},
                }
            )
        elif kind == "folder":
            outputs.append({"name": name, "type": "folder", "path": f"/srv/capture/{name}"})
        elif kind == "webhook":
            headers = {"Authorization": draw(secrets)}
            url = f"https://hook.example.com/{name}"
            outputs.append({"name": name, "type": "webhook", "url": url, "headers": headers})
        else:
            mailboxes.append(name)
    boxes = [draw(mailbox(name, servers, outputs)) for name in mailboxes]
    return {"authorization_servers": servers, "outputs": outputs, "mailboxes": boxes}


@st.composite
def mailbox(
    draw: st.DrawFn, name: str, servers: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    kinds = ["graph-app", "graph-password", "imap-code", "pop3-device"]
    if servers:
        kinds.append("imap-custom")
    kind = draw(st.sampled_from(kinds))
    box: dict[str, Any] = {"name": name, "username": f"{name.lower()}@contoso.com"}
    if kind == "graph-app":
        box["protocol"] = "graph"
        box["oauth"] = {
            "grant_type": "client_credentials",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": draw(secrets),
        }
        if draw(st.booleans()):
            box["proxy"] = {
                "address": "http://proxy.example.com:3128",
                "username": "svc",
                "password": draw(secrets),
            }
    elif kind == "graph-password":
        box["protocol"] = "graph"
        box["oauth"] = {"grant_type": "password", "client_id": CLIENT, "password": draw(secrets)}
    elif kind == "imap-code":
        box["protocol"] = "imap"
        box["oauth"] = {
            "authorization_server": "MICROSOFT",
            "grant_type": "authorization_code",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "redirect_uri": "http://localhost:8765/",
        }
    elif kind == "pop3-device":
        box["protocol"] = "pop3"
        box["after_import"] = draw(st.sampled_from(["delete", "keep"]))
        box["oauth"] = {"authorization_server": "GOOGLE", "grant_type": "device_code"}
        box["oauth"]["client_id"] = "device-app"
    else:
        box["protocol"] = "imap"
        box["host"] = "mail.example.com"
        box["oauth"] = {
            "authorization_server": draw(st.sampled_from([s["name"] for s in servers])),
            "grant_type": "authorization_code",
            "client_id": "app",
            "redirect_uri": "http://127.0.0.1:8765/",
        }
    if box["protocol"] != "pop3":
        box["after_import"] = draw(st.sampled_from(["mark_read", "delete", "keep"]))
        if draw(st.booleans()):
            box["folder"] = draw(st.sampled_from(["INBOX", "Invoices", "INBOX/Orders"]))
    if draw(st.booleans()):
        box["poll_interval"] = draw(st.integers(10, 86400))
    if draw(st.booleans()):
        box["enabled"] = draw(st.booleans())
    if outputs and draw(st.booleans()):
        box["output"] = draw(st.sampled_from([o["name"] for o in outputs]))
    return box


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        opened = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'properties.db'}"))
        yield opened
        opened.engine.dispose()


@settings(
    max_examples=40,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(valid_documents())
def test_a_valid_document_round_trips_through_export(store: Store, doc: dict[str, Any]) -> None:
    apply_document(store, doc, {}, prune=True)
    with store.read() as repo:
        exported = export_document(repo)
    text = dump_yaml(exported)
    again = load_yaml_text(text, "export")
    validated = validate_only(store, again, {}, None)
    assert sorted(m.name for m in validated.mailboxes) == sorted(
        m["name"] for m in doc["mailboxes"]
    )
    assert sorted(o.name for o in validated.outputs) == sorted(o["name"] for o in doc["outputs"])
    changes = apply_document(store, again, {}, prune=True)
    assert {c.action for c in changes} <= {"unchanged"}, changes
    assert load_json_text(json.dumps(exported), "export") == again
