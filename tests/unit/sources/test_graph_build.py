"""Building a Graph source from a mailbox's settings: what it needs, named as a setting."""

from __future__ import annotations

import pytest

from mailintake.config import resolve
from mailintake.config.matrix import Protocol
from mailintake.config.models import MailboxSpec
from mailintake.engine.factories import BUILDERS, build_graph_source, build_source, graph_settings
from mailintake.enums import AfterImport
from mailintake.errors import ConfigError


def test_a_missing_username_is_a_configuration_problem_naming_the_field() -> None:
    spec = MailboxSpec(name="sales", protocol="graph")
    with pytest.raises(ConfigError) as caught:
        build_graph_source(spec, lambda: "token")
    assert caught.value.exit_code == 2
    assert caught.value.problems == [
        "mailboxes[sales].username: required for Microsoft Graph (the mailbox to read)"
    ]


def test_every_protocol_has_its_builder_and_a_missing_one_is_named() -> None:
    assert set(BUILDERS) == set(Protocol)
    with pytest.raises(ConfigError) as caught:
        build_source(MailboxSpec(name="sales", username="a@contoso.com"), lambda: "token")
    assert caught.value.problems == [
        "mailboxes[sales].protocol: required, one of imap, pop3, graph"
    ]


def test_the_graph_settings_follow_the_mailbox_and_its_grant() -> None:
    spec = MailboxSpec.model_validate(
        {
            "name": "ap",
            "protocol": "graph",
            "username": "me@contoso.com",
            "shared_mailbox": "ap@contoso.com",
            "after_import": "move",
            "move_to": "Imported",
            "oauth": {"grant_type": "client_credentials", "client_id": "app"},
        }
    )
    settings = graph_settings(spec)
    assert (settings.graph_url, settings.mailbox, settings.folder) == (
        resolve.graph_url(spec),
        "ap@contoso.com",
        "inbox",
    )
    assert (settings.after_import, settings.move_to) == (AfterImport.MOVE, "Imported")
    assert (settings.user, settings.client_id) == (None, "app")
    assert settings.max_size == resolve.max_message_size(spec)
    assert spec.oauth is not None
    oauth = spec.oauth.model_copy(update={"grant_type": "authorization_code"})
    assert graph_settings(spec.model_copy(update={"oauth": oauth})).user == "me@contoso.com"
