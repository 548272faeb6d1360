"""One alert as it is sent: the webhook's JSON body and the email's subject and text.

``event`` is ``alert`` (a condition began, or changed state), ``reminder`` (it still holds,
at most daily), ``recovered`` (it cleared) or ``test`` (``mailintake alerts test``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

Event = Literal["alert", "reminder", "recovered", "test"]
PRODUCT = "mailintake"


@dataclass(frozen=True)
class AlertMessage:
    event: Event
    key: str
    mailbox: str | None
    kind: str
    state: str
    summary: str
    since: datetime
    sent_at: datetime
    ends_at: datetime | None = None

    def body(self) -> dict[str, Any]:
        """The webhook's JSON document (docs/configuration.md, "Alerts")."""
        return {
            "event": self.event,
            "key": self.key,
            "mailbox": self.mailbox,
            "kind": self.kind,
            "state": self.state,
            "summary": self.summary,
            "since": self.since.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "sent_at": self.sent_at.isoformat(),
            "product": PRODUCT,
        }

    def about(self) -> str:
        if self.kind == "health":
            return f"mailbox {self.mailbox}" if self.mailbox else "mailintake"
        what = self.kind.replace("_", " ")
        return f"{what} of mailbox {self.mailbox}" if self.mailbox else what

    def subject(self) -> str:
        if self.event == "test":
            return "[mailintake] test alert"
        if self.event == "reminder":
            return f"[mailintake] still {self.state}: {self.about()}"
        if self.event == "recovered":
            return f"[mailintake] recovered: {self.about()} (was {self.state})"
        return f"[mailintake] {self.state}: {self.about()}"

    def text(self) -> str:
        lines = [self.summary, ""]
        if self.event == "recovered":
            lines = [f"Recovered: {self.about()} is no longer {self.state}.", "", self.summary, ""]
        elif self.event == "reminder":
            lines = [f"Still {self.state}: {self.about()}.", "", self.summary, ""]
        lines += [f"{name}: {value}" for name, value in self.body().items() if value is not None]
        return "\n".join(lines) + "\n"


class Channel(Protocol):
    """Where alerts go. ``send`` raises AlertNotSent with the reason (no secret in it)."""

    name: str

    def send(self, message: AlertMessage) -> None: ...
