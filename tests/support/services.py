"""A real service a test needs and cannot find: skipped, or a failure when CI requires every
service (``MAILINTAKE_REQUIRE_SERVICES=1``, CONTRACT §1)."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("MAILINTAKE_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip, or fail when CI requires every real service (CONTRACT §1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)
