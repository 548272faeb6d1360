"""docs/testing.md's examples do what the page says: the import from a mailbox in memory runs
as written, and the failing source it shows keeps its messages for the next pass."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.store.repo import Store
from tests.support.memory import message, setup

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_import_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its mkdtemp() under tmp_path
    exec(compile(examples()[0], str(DOC), "exec"), {"__name__": "__main__"})  # noqa: S102
    assert capsys.readouterr().out.strip() == "['message.eml']"


def test_the_failing_source_keeps_its_messages_for_the_next_pass(
    store: Store, home: Path, tmp_path: Path
) -> None:
    scope: dict[str, Any] = {}
    exec(compile(examples()[1], str(DOC), "exec"), scope)  # noqa: S102
    setup(store, tmp_path / "out")
    mailbox = MemoryMailbox({1: message(1)})
    failing = Poller(
        store, home, source_factory=lambda *_a, **_o: scope["LosesTheConnection"](mailbox)
    )
    assert failing.poll("invoices").error is not None
    assert mailbox.seen == set()
    again = Poller(store, home, source_factory=lambda *_a, **_o: MemorySource(mailbox))
    result = again.poll("invoices")
    assert (result.imported, result.skipped, result.error) == (0, 1, None)
    assert mailbox.seen == {1}  # acknowledged first thing
