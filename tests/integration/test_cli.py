"""The ``mailintake`` command as a user runs it: its output and exit codes (run in the test's
process, tests/support/cli.py; ``serve`` and a refused secret key in a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sandbox.ports import free_port
from tests.support.documents import TENANT, claims_mailbox, folder_output, invoices_mailbox
from tests.support.web import CLI_GRAPH_SECRET as CLIENT_SECRET
from tests.support.web import CLI_ROPC_PASSWORD as PASSWORD
from tests.support.web import Cli

PROXY_PASSWORD = "pp-Cw4Ex7Ru1Ty5Io8Pa3"


def config(tmp_path: Path) -> Path:
    path = tmp_path / "mailintake.yaml"
    doc: dict[str, Any] = {
        "outputs": [folder_output("capture")],
        "mailboxes": [
            invoices_mailbox("${env:GRAPH_SECRET}", PROXY_PASSWORD),
            claims_mailbox("${env:ROPC_PASSWORD}"),
        ],
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_validate_apply_export_status(cli: Cli, tmp_path: Path) -> None:
    file = config(tmp_path)
    result = cli("validate", str(file))
    assert result.returncode == 0, result.stderr
    assert "valid (0 authorization server(s), 1 output(s), 2 mailbox(es))" in result.stdout

    result = cli("apply", str(file))
    assert result.returncode == 0, result.stderr
    assert "mailbox invoices: created" in result.stdout
    assert "changed 3 of 3 item(s)" in result.stdout

    result = cli("apply", str(file), "--json")
    assert result.returncode == 0
    assert {c["action"] for c in json.loads(result.stdout)["changes"]} == {"unchanged"}

    result = cli("export")
    assert result.returncode == 0
    exported = yaml.safe_load(result.stdout)
    boxes = {m["name"]: m for m in exported["mailboxes"]}
    assert boxes["invoices"]["oauth"]["client_secret"] == "${env:GRAPH_SECRET}"
    assert boxes["invoices"]["proxy"]["password"] == "<redacted>"
    assert exported["outputs"][0]["path"] == str(tmp_path / "capture")

    result = cli("status", "--json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    states = {m["name"]: m["authorization_state"] for m in document["mailboxes"]}
    assert states == {"claims": "not_authorized", "invoices": "not_authorized"}
    assert document["scheduling"]["workers"] == []  # none has run on this database
    result = cli("status")
    assert "intervals not kept: no worker running" in result.stdout


def test_invalid_file_lists_every_problem_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "mailboxes": [
                    {
                        "name": "invoices",
                        "protocol": "imap",
                        "username": "invoices@contoso.com",
                        "oauth": {
                            "authorization_server": "MICROSOFT",
                            "grant_type": "authorization_code",
                            "tenant_id": TENANT,
                        },
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    result = cli("validate", str(file))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "mailboxes[invoices].oauth.client_id: required for grant_type authorization_code",
        "mailboxes[invoices].oauth.redirect_uri: required for grant_type authorization_code",
    ]
    result = cli("validate", str(file), "--json")
    assert json.loads(result.stdout)["valid"] is False
    result = cli("apply", str(file))
    assert result.returncode == 2
    assert "mailboxes[invoices].oauth.redirect_uri: required" in result.stderr
    assert "no mailboxes yet" in cli("status").stdout  # nothing was applied

    broken = tmp_path / "broken.yaml"
    broken.write_text("mailboxes:\n  - name: a\n   protocol: imap\n", encoding="utf-8")
    result = cli("validate", str(broken))
    assert result.returncode == 2
    assert result.stdout.startswith(f"{broken}: line 3, column")
    result = cli("validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "no such file" in result.stdout


def test_servers_and_mailboxes_commands(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", str(config(tmp_path))).returncode == 0
    result = cli(
        "servers", "add", "corp-idp",
        "--set", "token_endpoint=https://idp.example.com/token",
        "--set", "authorization_endpoint=https://idp.example.com/authorize",
        "--set", "scopes.imap=[mail.read, offline_access]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "authorization_server corp-idp: created" in result.stdout
    result = cli(
        "mailboxes", "add", "orders",
        "--protocol", "imap", "--host", "mail.example.com", "--username", "orders@example.com",
        "--server", "corp-idp", "--grant-type", "authorization_code", "--client-id", "orders-app",
        "--output", "capture",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mailboxes[orders].oauth.redirect_uri: required for grant_type authorization_code"
    )
    result = cli(
        "mailboxes", "add", "orders",
        "--protocol", "imap", "--host", "mail.example.com", "--username", "orders@example.com",
        "--server", "corp-idp", "--grant-type", "authorization_code", "--client-id", "orders-app",
        "--redirect-uri", "http://127.0.0.1/", "--output", "capture",
        "--ask", "oauth.client_secret", input="orders-client-secret\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "mailbox orders: created" in result.stdout

    result = cli("servers", "delete", "corp-idp")
    assert result.returncode == 2
    assert "used by mailbox(es) orders" in result.stderr
    result = cli("servers", "delete", "MICROSOFT")
    assert result.returncode == 2
    assert "built in" in result.stderr
    result = cli("mailboxes", "disable", "orders")
    assert result.returncode == 0
    assert "mailbox orders: updated" in result.stdout
    shown = yaml.safe_load(cli("mailboxes", "show", "orders").stdout)
    assert shown["enabled"] is False
    assert shown["oauth"]["client_secret"] == "<redacted>"
    listed = json.loads(cli("mailboxes", "list", "--json").stdout)
    assert [m["name"] for m in listed] == ["claims", "invoices", "orders"]
    servers = json.loads(cli("servers", "list", "--json").stdout)
    assert [s["name"] for s in servers] == [
        "MICROSOFT",
        "GOOGLE",
        "MICROSOFT_US_GCC_HIGH",
        "MICROSOFT_US_DOD",
        "MICROSOFT_CHINA",
        "corp-idp",
    ]
    result = cli("mailboxes", "edit", "orders", "--set", "oauth.grant_type=password")
    assert result.returncode == 2
    assert "password is not supported for protocol imap" in result.stderr
    assert cli("mailboxes", "delete", "orders").returncode == 0
    assert cli("servers", "delete", "corp-idp").returncode == 0
    result = cli("mailboxes", "show", "orders")
    assert result.returncode == 2
    assert "no mailbox named 'orders'" in result.stderr


def test_secret_key_rotation(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", str(config(tmp_path))).returncode == 0
    key_file = cli.home / "secret.key"
    old_key = key_file.read_text().strip()
    result = cli("secrets", "rotate-key")
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 3 secret(s)" in result.stdout
    assert key_file.read_text().strip() != old_key
    assert not (cli.home / "secret.key.new").exists()
    # Everything still decrypts: an unchanged apply compares the stored secrets.
    result = cli("apply", str(config(tmp_path)), "--json")
    assert {c["action"] for c in json.loads(result.stdout)["changes"]} == {"unchanged"}
    # The old key no longer opens the database.
    old = dict(cli.env, MAILINTAKE_SECRET_KEY=old_key)
    result = subprocess.run(
        [sys.executable, "-m", "mailintake", "status"],
        env=old, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "is not the key this database's secrets were encrypted with" in result.stderr


def test_no_secret_in_any_output_or_log(cli: Cli, tmp_path: Path) -> None:
    file = config(tmp_path)
    runs = [
        cli("validate", str(file)),
        cli("apply", str(file)),
        cli("apply", str(file)),
        cli("export"),
        cli("export", "--json"),
        cli("status"),
        cli("status", "--json"),
        cli("mailboxes", "list"),
        cli("mailboxes", "list", "--json"),
        cli("mailboxes", "show", "invoices"),
        cli("mailboxes", "show", "claims", "--json"),
        cli("mailboxes", "edit", "invoices", "--set", "poll_interval=120"),
        cli("mailboxes", "edit", "claims", "--set", "oauth.password=new-Pass-Word-123"),
        cli("secrets", "rotate-key"),
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert any("config.changed" in r.stderr for r in runs)  # the log is there, and read
    text = "".join(r.stdout + r.stderr for r in runs)
    for secret in (CLIENT_SECRET, PASSWORD, PROXY_PASSWORD, "new-Pass-Word-123"):
        assert secret not in text
    db = b"".join(p.read_bytes() for p in cli.home.glob("mailintake.db*"))
    for secret in (CLIENT_SECRET, PASSWORD, PROXY_PASSWORD, "new-Pass-Word-123"):
        assert secret.encode() not in db


def test_serve_answers_on_the_given_port(cli: Cli) -> None:
    import time

    import httpx2

    from sandbox import http_clients

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailintake", "serve", "--port", str(port)],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = http_clients.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "mailintake serve did not answer in 60 s"
                time.sleep(0.2)
        assert answer.json()["status"] == "ok"
        spec_url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
        assert http_clients.get(spec_url, timeout=5).status_code == 401
        token = cli("admin", "token", "create", "ci").stdout.strip()
        bearer = {"Authorization": f"Bearer {token}"}
        spec = http_clients.get(spec_url, headers=bearer, timeout=5).json()
        assert spec["info"]["title"] == "mailintake"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"serving on http://127.0.0.1:{port}" in stderr


def test_status_shows_health_and_the_next_end(cli: Cli, tmp_path: Path) -> None:
    import datetime as dt

    file = config(tmp_path)
    doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).date().isoformat()
    doc["mailboxes"][0]["oauth"]["client_secret_expires"] = soon
    doc["mailboxes"][1]["enabled"] = False
    file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert cli("apply", str(file)).returncode == 0
    exported = yaml.safe_load(cli("export").stdout)
    assert exported["mailboxes"][1]["oauth"]["client_secret_expires"] == soon

    rows = {m["name"]: m for m in json.loads(cli("status", "--json").stdout)["mailboxes"]}
    assert rows["claims"]["health"] == "disabled"
    invoices = rows["invoices"]
    assert (invoices["health"], invoices["failures_in_a_row"]) == ("healthy", 0)
    assert invoices["health_since"]
    assert invoices["next_expiry"]["kind"] == "client_secret"
    assert invoices["next_expiry"]["state"] == "expiring"
    assert invoices["next_expiry"]["ends_at"].startswith(soon)
    text = cli("status").stdout
    assert f"invoices: client secret ends {soon} 00:00 UTC" in text
    assert "what to do: create a new client secret" in text
