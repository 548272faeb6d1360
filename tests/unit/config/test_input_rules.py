"""Rules on what a document may hold: names that are not folders, no credentials in URLs,
an empty document never taken for "delete everything", a custom server's Graph scopes."""

from __future__ import annotations

from typing import Any

import pytest

from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError
from tests.support.documents import claims_mailbox, folder_output


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
