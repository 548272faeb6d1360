"""Bad configuration input at every entry point (CLI, REST API, web form): refused with
``PATH: message``, exit 2 or 422, never a crash."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mailintake.settings import Settings
from mailintake.store.repo import Store
from mailintake.web.app import create_app
from sandbox.ports import free_port
from tests.support.documents import (
    BOMB,
    CONTRACT_EXAMPLE,
    GRAPH_UNUSED,
    claims_mailbox,
    folder_output,
)
from tests.support.web import Cli, errors_beside, graph_form

DOT = "'..' is not a name: it means a folder ('.' this one, '..' its parent)"


def test_cli_refuses_a_dot_name(cli: Cli, tmp_path: Path) -> None:
    result = cli("outputs", "add", "..", "--type", "folder", "--path", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"outputs[0].name: {DOT}"]
    result = cli("outputs", "add", ".incoming", "--type", "folder", "--path", str(tmp_path))
    assert result.returncode == 2
    assert "outputs[0].name: must not start with '.'" in result.stderr
    assert cli("outputs", "list", "--json").stdout.strip() == "[]"


def test_api_refuses_a_dot_name(api: TestClient, tmp_path: Path) -> None:
    answer = api.post("/api/v1/outputs", json={**folder_output(str(tmp_path)), "name": ".."})
    assert answer.status_code == 422
    assert answer.json()["problems"] == [f"outputs[0].name: {DOT}"]
    mailbox = {**claims_mailbox("pw", output="default"), "name": ".."}
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [f"mailboxes[0].name: {DOT}"]
    answer = api.post("/api/v1/config/apply", json={"mailboxes": [mailbox]})
    assert answer.status_code == 422
    assert api.get("/api/v1/mailboxes").json() == []


def test_web_form_refuses_a_dot_name(ui: TestClient) -> None:
    answer = ui.post("/mailboxes/new", data=graph_form(name=".."))
    assert answer.status_code == 422
    assert html.unescape(errors_beside(answer.text)["name"]) == DOT
    assert "claims" not in ui.get("/mailboxes").text


# --- documents that would hang or crash a reader ------------------------------------------------


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


YAML = {"Content-Type": "application/yaml"}


def test_api_refuses_what_would_hang_or_crash_the_reader(api: TestClient) -> None:
    answer = api.post("/api/v1/config/validate", content=BOMB, headers=YAML)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "(body): line 5, column 45: expands to more than 100,000 values (with its aliases expanded)"
    ]
    answer = api.post("/api/v1/config/validate", content=f"mailboxes: {deep(5000)}", headers=YAML)
    assert answer.status_code == 422
    assert answer.json()["problems"][0].endswith("nested more than 50 levels deep")
    answer = api.post("/api/v1/config/apply", content=f'{{"mailboxes": {deep(3000)}}}')
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["(body): nested more than 50 levels deep"]
    answer = api.post("/api/v1/mailboxes", json={"name": "a", "protocol": json_deep(500)})
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["(body): nested more than 50 levels deep"]
    too_big = "# " + "x" * (1024 * 1024) + "\n"
    answer = api.post("/api/v1/config/apply", content=too_big, headers=YAML)
    assert answer.status_code == 413
    assert answer.json()["problems"] == [
        "(body): larger than 1 MiB; split it into several documents"
    ]
    assert api.get("/api/v1/mailboxes").json() == []


def json_deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_api_refuses_a_key_given_twice(api: TestClient) -> None:
    text = "outputs:\n  - name: a\n    type: folder\n    path: /srv/a\n    path: /srv/b\n"
    answer = api.post("/api/v1/config/apply", content=text, headers=YAML)
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["outputs[0]: duplicate key 'path' (lines 4 and 5)"]
    body = '{"outputs": [{"name": "a", "type": "folder", "path": "/a", "path": "/b"}]}'
    answer = api.post("/api/v1/config/apply", content=body)
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["outputs[0]: duplicate key 'path' (twice on line 1)"]
    assert api.get("/api/v1/outputs").json() == []


def test_cli_refuses_what_would_hang_or_crash_the_reader(cli: Cli, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB, encoding="utf-8")
    result = cli("validate", str(bomb))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{bomb}: line 5, column 45: expands to more than 100,000 values "
        "(with its aliases expanded)"
    ]
    nested = tmp_path / "deep.yaml"
    nested.write_text(f"mailboxes: {deep(5000)}\n", encoding="utf-8")
    result = cli("apply", str(nested))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith("nested more than 50 levels deep")
    twice = tmp_path / "twice.yaml"
    twice.write_text("outputs: []\noutputs: []\n", encoding="utf-8")
    result = cli("apply", str(twice))
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["(document): duplicate key 'outputs' (lines 1 and 2)"]


@pytest.fixture
def server(settings: Settings, store: Store) -> Iterator[tuple[str, dict[str, str]]]:
    """The app served by uvicorn on a free port, as ``serve`` runs it."""
    import threading

    import uvicorn

    from mailintake.store.admin import create_api_token

    port = free_port()
    app = create_app(settings, store=store, environ=dict)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        token = create_api_token(store, "tests")
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        running.should_exit = True
        thread.join(timeout=30)


def test_healthz_answers_while_documents_are_read(server: tuple[str, dict[str, str]]) -> None:
    """Reading and validating run in worker threads: the event loop keeps answering."""
    import threading

    from sandbox import http_clients

    base, bearer = server
    mailboxes = []
    for i in range(4000):  # about 90,000 values: a second or more to read and validate
        mailbox = claims_mailbox("pw", output="default")
        mailboxes.append({**mailbox, "name": f"m{i}"})
    # safe_dump with libyaml (the same text, in a quarter of the time)
    big = yaml.dump({"mailboxes": mailboxes}, Dumper=yaml.CSafeDumper)
    answers: list[tuple[int, float]] = []

    def post(body: str) -> None:
        started = time.monotonic()
        answer = http_clients.post(
            f"{base}/api/v1/config/validate",
            content=body,
            headers={**bearer, **YAML},
            timeout=120,
        )
        answers.append((answer.status_code, time.monotonic() - started))

    workers = [threading.Thread(target=post, args=(body,)) for body in (BOMB, big, BOMB)]
    for worker in workers:
        worker.start()
    slowest = 0.0
    with http_clients.Client(base_url=base, timeout=30) as client:
        while any(w.is_alive() for w in workers):
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)
    for worker in workers:
        worker.join()
    assert sorted(code for code, _ in answers) == [200, 422, 422]
    longest = max(seconds for _, seconds in answers)
    assert longest > 0.5  # the measurement covered real work
    # On the event loop, /healthz waited for the whole document (11-14 s measured); in
    # worker threads it waits only for its turn at the interpreter lock.
    assert slowest < min(1.5, longest / 2), f"/healthz took {slowest:.2f} s of {longest:.2f} s"


# --- an empty document is never "delete everything" -------------------------------------------

EMPTY_PRUNE = (
    "(document): empty; with prune it would delete every mailbox, output and custom server. "
    "List what to keep (to delete every mailbox on purpose, give mailboxes: [])"
)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("", {}),
        ("null", {}),
        ("{}", {}),
        ('{"mailboxes": null}', {}),
        ("  \n", {}),
        ("", YAML),
        ("# nothing to see\n\n", YAML),
        ("null\n", YAML),
        ("{}\n", YAML),
        ("mailboxes:\noutputs:\n", YAML),
    ],
)
def test_api_refuses_to_prune_with_an_empty_document(
    api: TestClient, tmp_path: Path, body: str, headers: dict[str, str]
) -> None:
    doc = {"outputs": [folder_output(str(tmp_path))], "mailboxes": [claims_mailbox("pw")]}
    assert api.post("/api/v1/config/apply", json=doc).status_code == 200
    for dry_run in ("true", "false"):
        answer = api.post(
            f"/api/v1/config/apply?prune=true&dry_run={dry_run}", content=body, headers=headers
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["problems"] == [EMPTY_PRUNE]
    assert [m["name"] for m in api.get("/api/v1/mailboxes").json()] == ["claims"]
    # without prune, an empty document is a valid document that changes nothing
    answer = api.post("/api/v1/config/apply", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["changes"] == []
    # deleting every mailbox stays possible, said in so many words
    answer = api.post("/api/v1/config/apply?prune=true", json={"mailboxes": []})
    assert answer.status_code == 200
    assert {(c["name"], c["action"]) for c in answer.json()["changes"]} == {
        ("claims", "deleted"),
        ("capture", "deleted"),
    }


def test_cli_refuses_to_prune_with_an_empty_file(cli: Cli, tmp_path: Path) -> None:
    full = tmp_path / "full.yaml"
    full.write_text(
        yaml.safe_dump(
            {"outputs": [folder_output(str(tmp_path))], "mailboxes": [claims_mailbox("pw")]}
        ),
        encoding="utf-8",
    )
    assert cli("apply", str(full)).returncode == 0
    empty = tmp_path / "empty.yaml"
    empty.write_text("# MAILBOXES=$(...) came back empty\n", encoding="utf-8")
    result = cli("apply", "--prune", str(empty))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [EMPTY_PRUNE]
    assert "claims" in cli("mailboxes", "list").stdout
    result = cli("apply", str(empty))
    assert result.returncode == 0, result.stderr
    assert "changed 0 of 0 item(s)" in result.stdout


def test_api_refuses_a_password_inside_a_url(api: TestClient, store: Store) -> None:
    password = "Url-Pw-9Kd3Lm"
    mailbox = claims_mailbox("pw", output="default")
    mailbox["proxy"] = {"address": f"http://svc:{password}@proxy.example.com:3128"}
    answer = api.post("/api/v1/config/apply", json={"mailboxes": [mailbox]})
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "mailboxes[claims].proxy.address: must not contain a user name or password; "
        "put them in proxy.username and proxy.password"
    ]
    assert password not in answer.text
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 422
    assert password not in answer.text
    assert password not in api.get("/api/v1/config/export?format=yaml").text
    with store.read() as repo:
        assert repo.list_mailboxes() == []


def test_cli_validates_the_contract_example_with_a_warning(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "contract.yaml"
    file.write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    cli.env["HOOK_TOKEN"] = "hook-token"
    result = cli("validate", str(file))
    assert result.returncode == 0, result.stdout
    assert f"warning: {GRAPH_UNUSED}" in result.stderr.splitlines()
    assert result.stdout.strip().endswith(
        "valid (1 authorization server(s), 2 output(s), 0 mailbox(es))"
    )
    result = cli("validate", str(file), "--json")
    assert json.loads(result.stdout)["warnings"] == [GRAPH_UNUSED]
    result = cli("apply", str(file))
    assert result.returncode == 0, result.stderr
    assert f"warning: {GRAPH_UNUSED}" in result.stderr.splitlines()


def test_web_form_refuses_a_password_inside_the_proxy_address(ui: TestClient) -> None:
    password = "Form-Url-Pw-4Rt6"
    form = graph_form(**{"proxy.address": f"http://svc:{password}@proxy.example.com:3128"})
    answer = ui.post("/mailboxes/new", data=form)
    assert answer.status_code == 422
    assert html.unescape(errors_beside(answer.text)["proxy.address"]) == (
        "must not contain a user name or password; put them in proxy.username and proxy.password"
    )
    assert password not in answer.text
    # the address is shown again without the credentials, the rest of the form as typed
    assert 'value="http://proxy.example.com:3128"' in answer.text


def test_server_form_refuses_a_password_inside_an_endpoint(ui: TestClient) -> None:
    password = "Form-Url-Pw-8Yu1"
    answer = ui.post(
        "/servers/new",
        data={"name": "corp", "token_endpoint": f"https://app:{password}@idp.example.com/token"},
    )
    assert answer.status_code == 422
    assert password not in answer.text
    assert 'value="https://idp.example.com/token"' in answer.text


def test_api_refuses_to_prune_with_a_section_left_empty(api: TestClient, tmp_path: Path) -> None:
    doc = {"outputs": [folder_output(str(tmp_path))], "mailboxes": [claims_mailbox("pw")]}
    assert api.post("/api/v1/config/apply", json=doc).status_code == 200
    body = f"outputs:\n  - {{name: capture, type: folder, path: {tmp_path}}}\nmailboxes:\n"
    answer = api.post("/api/v1/config/apply?prune=true", content=body, headers=YAML)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "mailboxes: empty; with prune it would delete every one of them. List what to keep "
        "(to delete them all on purpose, give mailboxes: [])"
    ]
    assert [m["name"] for m in api.get("/api/v1/mailboxes").json()] == ["claims"]


def test_api_apply_answers_with_the_warnings(api: TestClient) -> None:
    answer = api.post(
        "/api/v1/config/apply",
        content=CONTRACT_EXAMPLE.split("outputs:")[0],
        headers=YAML,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == [GRAPH_UNUSED]
    assert [(c["name"], c["action"]) for c in answer.json()["changes"]] == [("corp-idp", "created")]


def test_item_endpoints_read_their_bodies_with_the_same_limits(api: TestClient) -> None:
    json_type = {"Content-Type": "application/json"}
    deep_body = '{"name": "a", "protocol": ' + deep(3000) + "}"
    answer = api.post("/api/v1/mailboxes", content=deep_body, headers=json_type)
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["(body): nested more than 50 levels deep"]
    twice = '{"name": "a", "type": "folder", "path": "/srv/a",\n "path": "/srv/b"}'
    answer = api.post("/api/v1/outputs", content=twice, headers=json_type)
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["(document): duplicate key 'path' (lines 1 and 2)"]
    answer = api.patch(
        "/api/v1/outputs/a", content='{"set": {}, "set": {"path": "/x"}}', headers=json_type
    )
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["(document): duplicate key 'set' (twice on line 1)"]
    big = '{"name": "a", "type": "folder", "path": "' + "x" * (1024 * 1024) + '"}'
    answer = api.put("/api/v1/outputs/a", content=big, headers=json_type)
    assert answer.status_code == 413
    assert api.get("/api/v1/outputs").json() == []
    # bodies within the limits work as before
    answer = api.post("/api/v1/outputs", json={"name": "a", "type": "folder", "path": "/srv/a"})
    assert answer.status_code == 201, answer.text


def test_a_password_stored_inside_a_url_by_earlier_versions_is_never_shown(
    api: TestClient, store: Store, ui: TestClient, ui_store: tuple[Settings, Store]
) -> None:
    from mailintake.config.models import MailboxSpec, OutputSpec

    password = "Legacy-Url-Pw-2Wq9"
    mailbox = claims_mailbox("pw", output="hook")
    mailbox["proxy"] = {"address": f"http://svc:{password}@proxy.example.com:3128"}
    mailbox["graph_url"] = f"https://me:{password}@graph.example.com/v1.0"
    url = f"https://hook:{password}@hook.example.com/in"
    for where in (store, ui_store[1]):  # stored as earlier versions did, without validation
        with where.begin() as repo:
            repo.put_output(OutputSpec(name="hook", type="webhook", url=url), {})
            repo.put_mailbox(MailboxSpec.model_validate(mailbox), {})
    answers = [
        api.get("/api/v1/config/export"),
        api.get("/api/v1/config/export?format=yaml"),
        api.get("/api/v1/mailboxes"),
        api.get("/api/v1/mailboxes/claims"),
        api.get("/api/v1/mailboxes/claims/effective"),
        api.get("/api/v1/outputs/hook"),
        ui.get("/mailboxes/claims"),
        ui.get("/mailboxes/claims/edit"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.url
        assert password not in answer.text, answer.url
    shown = api.get("/api/v1/mailboxes/claims").json()
    assert shown["proxy"]["address"] == "http://svc:<redacted>@proxy.example.com:3128"
    # saving it again asks for the credentials where they belong
    answer = api.put("/api/v1/mailboxes/claims", json=shown)
    assert answer.status_code == 422
    assert "put them in proxy.username and proxy.password" in answer.text
