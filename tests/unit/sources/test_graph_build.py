"""Building a Graph source from a mailbox's settings: what it needs, named as a setting."""

from __future__ import annotations

import pytest

from mailintake.config.models import MailboxSpec
from mailintake.errors import ConfigError
from mailintake.sources.graph import build_graph_source


def test_a_missing_username_is_a_configuration_problem_naming_the_field() -> None:
    spec = MailboxSpec(name="sales", protocol="graph")
    with pytest.raises(ConfigError) as caught:
        build_graph_source(spec, lambda: "token")
    assert caught.value.exit_code == 2
    assert caught.value.problems == [
        "mailboxes[sales].username: required for Microsoft Graph (the mailbox to read)"
    ]
