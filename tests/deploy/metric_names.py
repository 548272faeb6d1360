"""The metric names the deploy/ files may query: what the process registry holds, the
families collected when scraped, and Prometheus's own ``up``."""

from __future__ import annotations

import re

from mailintake.observability.exposition import HeartbeatCollector
from mailintake.observability.metrics import REGISTRY

# Served by every process of a fleet (docs/deployment.md, monitoring); some are read from
# the database when scraped rather than held in the registry.
FLEET = frozenset(
    {
        "mailintake_polls_running",
        "mailintake_poll_concurrency",
        "mailintake_mailbox_lag_seconds",
        "mailintake_mailboxes",
        "mailintake_expiry_seconds",
        "mailintake_earliest_expiry_seconds",
        HeartbeatCollector.NAME,
    }
)
NAME = re.compile(r"\bmailintake_[a-z0-9_]+")


def known() -> set[str]:
    """Every sample name a scrape may carry (counters' ``_total``, histograms' ``_bucket``,
    ``_count``, ``_sum``), and ``up``."""
    names = {"up", *FLEET}
    for family in REGISTRY.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}{end}" for end in ("_bucket", "_count", "_sum"))
    return names


def queried(expression: str) -> set[str]:
    """The mailintake metric names a PromQL expression reads."""
    return set(NAME.findall(expression))
