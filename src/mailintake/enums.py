"""Values the database, the API, JSON and YAML spell as strings, defined once.

Each is a ``StrEnum``: a member is its string (``AuthState.ERROR == "error"``), so what is
stored, sent and compared stays the same text. This module imports nothing of mailintake:
config, store, oauth, sources and errors all use it without a cycle.
"""

from __future__ import annotations

from enum import StrEnum


class AuthState(StrEnum):
    """A mailbox's authorization state (CONTRACT §4)."""

    NOT_AUTHORIZED = "not_authorized"
    AUTHORIZED = "authorized"
    REAUTHORIZATION_REQUIRED = "reauthorization_required"
    PASSWORD_UPDATE_REQUIRED = "password_update_required"
    ERROR = "error"


class AfterImport(StrEnum):
    """What happens on the server to a message once it is safely delivered."""

    MARK_READ = "mark_read"
    MOVE = "move"
    DELETE = "delete"
    KEEP = "keep"


class Health(StrEnum):
    """A mailbox's health at a glance (mailintake.health decides it)."""

    HEALTHY = "healthy"
    LAGGING = "lagging"  # no successful poll for 3 intervals
    NEEDS_PERSON = "needs_a_person"  # its authorization state waits for a person
    FAILING = "failing"  # 3 or more polls in a row failed
    DISABLED = "disabled"


__all__ = ["AfterImport", "AuthState", "Health"]
