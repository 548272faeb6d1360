"""What one pass over a mailbox did: counts, the error that stopped it, what a person must do,
and why it was put off (a wait every worker keeps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

BUSY = "another poll of this mailbox is running"


@dataclass
class PollResult:
    mailbox: str
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    # Failed before and not tried in this pass: their next try is later, they are parked,
    # or a person skipped them (``mailintake messages NAME``).
    waiting: int = 0
    error: str | None = None
    state: str | None = None  # the authorization state when a person must act
    # What the pass overcame but someone should know (a source's ``warnings``).
    warnings: list[str] = field(default_factory=list)
    # Why the pass did not run though nothing failed (Graph asked every worker to wait):
    # not an error, so no back-off either.
    deferred: str | None = None
    deferred_until: datetime | None = None  # when the wait ends (the next poll's time)

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "waiting": self.waiting,
            "error": self.error,
            "authorization_state": self.state,
            "warnings": list(self.warnings),
            "deferred": self.deferred,
        }
