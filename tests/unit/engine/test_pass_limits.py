"""PassLimits: the lease, its renewals and the margin fit together."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailintake.engine.guard import PassLimits


def test_the_defaults_renew_well_before_the_margin() -> None:
    limits = PassLimits()
    ttl = limits.lease.total_seconds()
    assert ttl <= 30  # a dead worker's poll is taken over within 30 s
    assert limits.renew_every < ttl - limits.margin


@pytest.mark.parametrize(
    ("renew_every", "margin"), [(20.0, 8.0), (16.0, 8.0), (30.0, 1.0), (4.0, 30.0)]
)
def test_limits_that_would_stop_a_healthy_pass_are_refused(
    renew_every: float, margin: float
) -> None:
    with pytest.raises(ValueError, match="PassLimits"):
        PassLimits(lease=timedelta(seconds=24), renew_every=renew_every, margin=margin)
