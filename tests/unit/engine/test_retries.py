"""The back-off of a message the server cannot give, and when it is parked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailintake.engine.retries import Retries

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_each_try_waits_longer_then_the_message_is_parked() -> None:
    retries = Retries(max_tries=7)
    waits = [retries.after(tries, NOW) for tries in range(1, 8)]
    assert [w - NOW if w else None for w in waits] == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=6),  # the last wait repeats
        None,  # the seventh try failed: parked
    ]


def test_the_default_parks_after_five_tries() -> None:
    assert Retries().after(4, NOW) is not None
    assert Retries().after(5, NOW) is None


@pytest.mark.parametrize("bad", [{"max_tries": 0}, {"delays": ()}])
def test_nonsense_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Retries"):
        Retries(**bad)  # type: ignore[arg-type]
