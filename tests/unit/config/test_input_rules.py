"""Rules on what a document may hold: names that are not folders, no credentials in URLs,
an empty document never taken for "delete everything", a custom server's Graph scopes."""

from __future__ import annotations

from typing import Any

import pytest

from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError
from tests.support.documents import (
    CONTRACT_EXAMPLE,
    GRAPH_UNUSED,
    NATIONAL,
    claims_mailbox,
    folder_output,
)


def problems(doc: Any) -> list[str]:
    try:
        validate_document(doc, Context())
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".", "'.' is not a name: it means a folder ('.' this one, '..' its parent)"),
        ("..", "'..' is not a name: it means a folder ('.' this one, '..' its parent)"),
        (
            ".incoming",
            "must not start with '.' (a name is also a folder name, which would be hidden)",
        ),
    ],
)
def test_dot_names_are_refused_for_every_kind_of_item(name: str, message: str) -> None:
    mailbox = claims_mailbox("pw", output=name)
    mailbox["name"] = name
    doc = {
        "authorization_servers": [{"name": name, "token_endpoint": "https://idp.example.com/t"}],
        "outputs": [{**folder_output("/srv/capture"), "name": name}],
        "mailboxes": [mailbox],
    }
    found = problems(doc)
    assert found == [
        f"authorization_servers[0].name: {message}",
        f"outputs[0].name: {message}",
        f"mailboxes[0].name: {message}",
        f"mailboxes[0].output: {message}",
    ]


@pytest.mark.parametrize("name", ["a.b", "a..b", "invoices.", "x" * 64, "_hidden-not", "-x"])
def test_dots_inside_a_name_stay_allowed(name: str) -> None:
    doc = {"outputs": [{**folder_output("/srv/capture"), "name": name}]}
    assert problems(doc) == []


# --- no credentials inside a URL ----------------------------------------------------------------

PASSWORD = "Pw-In-Url-7Hq2Zx"
CREDENTIALS = "must not contain a user name or password"
CLIENT = f"{CREDENTIALS}; the application signs in with oauth.client_id and oauth.client_secret"


def graph_box(**changes: Any) -> dict[str, Any]:
    box = claims_mailbox("pw", output="default")
    for path, value in changes.items():
        holder = box
        *parents, last = path.split(".")
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[last] = value
    return box


def imap_code_box(**oauth: Any) -> dict[str, Any]:
    return {
        "name": "claims",
        "protocol": "imap",
        "username": "claims@contoso.com",
        "oauth": {
            "authorization_server": "MICROSOFT",
            "grant_type": "authorization_code",
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "app",
            "redirect_uri": "http://localhost:8765/",
            **oauth,
        },
    }


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"mailboxes": [graph_box(**{"proxy.address": f"http://svc:{PASSWORD}@proxy:3128"})]},
            "mailboxes[claims].proxy.address: must not contain a user name or password; "
            "put them in proxy.username and proxy.password",
        ),
        (
            {"mailboxes": [graph_box(**{"proxy.address": f"svc:{PASSWORD}@proxy:3128"})]},
            "mailboxes[claims].proxy.address: must not contain a user name or password; "
            "put them in proxy.username and proxy.password",
        ),
        (
            {"mailboxes": [graph_box(graph_url=f"https://me:{PASSWORD}@graph.example.com/v1")]},
            f"mailboxes[claims].graph_url: {CREDENTIALS}",
        ),
        (
            {"mailboxes": [imap_code_box(token_endpoint=f"https://a:{PASSWORD}@x.io/t")]},
            f"mailboxes[claims].oauth.token_endpoint: {CLIENT}",
        ),
        (
            {"mailboxes": [imap_code_box(redirect_uri=f"http://u:{PASSWORD}@localhost:8765/")]},
            f"mailboxes[claims].oauth.redirect_uri: {CREDENTIALS}",
        ),
        (
            {"mailboxes": [imap_code_box(authorization_endpoint=f"https://u:{PASSWORD}@x.io/a")]},
            f"mailboxes[claims].oauth.authorization_endpoint: {CLIENT}",
        ),
        (
            {"mailboxes": [{**imap_code_box(), "host": f"u:{PASSWORD}@mail.example.com"}]},
            f"mailboxes[claims].host: {CREDENTIALS}; the mailbox signs in as username, with OAuth",
        ),
        (
            {
                "outputs": [
                    {"name": "hook", "type": "webhook", "url": f"https://u:{PASSWORD}@hook.io/in"}
                ]
            },
            f"outputs[hook].url: {CREDENTIALS}; send them in headers (e.g. Authorization), "
            "which are stored encrypted",
        ),
        *(
            (
                {
                    "authorization_servers": [
                        {
                            "name": "corp",
                            "token_endpoint": "https://idp.example.com/t",
                            key: f"https://client:{PASSWORD}@idp.example.com/x",
                        }
                    ]
                },
                f"authorization_servers[corp].{key}: {CLIENT}",
            )
            for key in (
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "device_authorization_endpoint",
            )
        ),
    ],
)
def test_a_url_with_a_password_is_refused_without_repeating_it(
    doc: dict[str, Any], expected: str
) -> None:
    found = problems(doc)
    assert found == [expected]
    assert PASSWORD not in "\n".join(found)


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.com/oauth2/token",
        "https://idp.example.com/u/someone@example.com/token",
        "https://idp.example.com/token?login_hint=a@b.example",
        "http://127.0.0.1:8765/",
    ],
)
def test_an_at_sign_after_the_host_is_no_password(url: str) -> None:
    doc = {"authorization_servers": [{"name": "corp", "token_endpoint": url}]}
    assert problems(doc) == []


# --- a custom server's Graph scopes: accepted, unused -------------------------------------------


def test_the_contract_example_is_valid_with_a_warning() -> None:
    from mailintake.config.loader import load_yaml_text

    doc = load_yaml_text(CONTRACT_EXAMPLE, "contract")
    validated = validate_document(doc, Context(environ={"HOOK_TOKEN": "t"}))
    assert [s.name for s in validated.servers] == ["corp-idp"]
    assert validated.warnings == (GRAPH_UNUSED,)


def test_app_scopes_for_graph_on_a_custom_server_are_a_warning_too() -> None:
    doc = {
        "authorization_servers": [
            {
                "name": "corp",
                "token_endpoint": "https://idp.example.com/t",
                "app_scopes": {"graph": ["x/.default"]},
            }
        ]
    }
    validated = validate_document(doc, Context())
    assert validated.warnings == (
        "authorization_servers[corp].app_scopes.graph: unused: Microsoft Graph mailboxes always "
        f"use the MICROSOFT authorization server (or that of a national cloud: {NATIONAL})",
    )
    microsoft = {"name": "MICROSOFT", "scopes": {"graph": ["https://graph.microsoft.com/.default"]}}
    assert validate_document({"authorization_servers": [microsoft]}, Context()).warnings == ()
    china = {"name": "MICROSOFT_CHINA", "app_scopes": {"graph": ["x/.default"]}}
    assert validate_document({"authorization_servers": [china]}, Context()).warnings == ()


@pytest.mark.parametrize(("push", "problem"), [("auto", None), ("off", None), ("on", "must be")])
def test_push_is_auto_or_off(push: str, problem: str | None) -> None:
    mailbox = {**claims_mailbox("pw", output="default"), "push": push}
    found = problems({"mailboxes": [mailbox]})
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith("mailboxes[claims].push: must be 'auto' or 'off'")


@pytest.mark.parametrize(("written", "read"), [("off", "off"), ("no", "off"), ("on", "auto")])
def test_push_as_written_in_yaml(written: str, read: str) -> None:
    """YAML 1.1 reads an unquoted off, no, on as booleans: they mean what they say."""
    from mailintake.config.loader import load_yaml_text

    document = load_yaml_text(f"push: {written}\n", "file")
    assert isinstance(document["push"], bool)
    mailbox = {**claims_mailbox("pw", output="default"), "push": document["push"]}
    validated = validate_document({"mailboxes": [mailbox]}, Context())
    assert validated.mailboxes[0].push == read


def test_warnings_of_an_item_reach_the_document() -> None:
    from mailintake.config.problems import Problems, ProblemsAt

    document = Problems()
    item = ProblemsAt(document, "mailboxes[a]")
    item.warn("push", "unused")
    item.add("host", "required")
    assert document.warnings == ["mailboxes[a].push: unused"]
    assert document.items == ["mailboxes[a].host: required"]
