"""docs/configuration.md documents every field, its matrix block is current, its example valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mailintake.config.docgen import BEGIN, END, field_paths, matrix_markdown, render
from mailintake.config.validate import Context, validate_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_\[\].]+)` \|", text, flags=re.MULTILINE))
    missing = [p for p in field_paths() if p not in documented]
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
    unknown = {p for p in documented if "[]" in p} - set(field_paths())
    assert not unknown, f"docs/configuration.md documents fields that do not exist: {unknown}"


def test_field_paths_follow_the_schema() -> None:
    paths = field_paths()
    assert "mailboxes[].oauth.client_secret" in paths
    assert "authorization_servers[].scopes.imap" in paths
    assert len(paths) == len(set(paths))


def test_matrix_block_is_generated_from_the_matrix() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert block == "\n" + matrix_markdown(), (
        "run: python -m mailintake.config.docgen docs/configuration.md"
    )
    assert render(text) == text
    assert "| imap | yes (extension) | yes | no | yes (extension) |" in block


def test_the_complete_example_is_valid() -> None:
    text = DOC.read_text(encoding="utf-8")
    example = text.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    environ = {
        "HOOK_TOKEN": "t",
        "CLAIMS_SECRET": "s",
        "PROXY_PASSWORD": "p",
        "ORDERS_SECRET": "o",
        "SMTP_PASSWORD": "m",
    }
    validated = validate_document(yaml.safe_load(example), Context(environ=environ))
    assert [m.name for m in validated.mailboxes] == ["invoices", "claims", "orders"]
    assert validated.alerts is not None
    assert [c.name for c in validated.alerts.channels] == ["ops-chat", "ops-mail"]


def test_the_alerts_example_is_valid() -> None:
    text = DOC.read_text(encoding="utf-8")
    example = text.split("## Alerts", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    environ = {"ALERT_HOOK_TOKEN": "t", "SMTP_PASSWORD": "p"}
    document = yaml.safe_load(example)
    document["alerts"]["channels"][1].pop("ca_file")  # a file of the reader's machine
    validated = validate_document(document, Context(environ=environ))
    assert validated.alerts is not None
    assert validated.alerts.reminder_seconds == 86400
    assert [c.type for c in validated.alerts.channels] == ["webhook", "email"]
