"""Which mailboxes a worker keeps a push connection for (engine/push.py): the enabled IMAP
mailboxes with ``push: auto`` that wait for no person, those it holds already first, then by
name, up to its budget, claimed in the store (store/push.py) so that another worker does not
keep one too; the ones it no longer keeps are let go of."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mailintake.config.models import MailboxSpec
from mailintake.engine.factories import imap_settings
from mailintake.errors import MailintakeError
from mailintake.health.rules import mailbox_waits_for_a_person
from mailintake.sources.imap import ImapSettings
from mailintake.store import push, workers
from mailintake.store.mailboxes import schedule_of
from mailintake.store.repo import Store


def pushed(candidate: push.Candidate) -> ImapSettings | None:
    """The IMAP settings of a mailbox to keep a push connection for, or None."""
    definition = candidate.definition
    if definition.get("protocol") != "imap" or definition.get("push") == "off":
        return None
    if mailbox_waits_for_a_person(
        schedule_of(candidate.name, True, candidate.auth_state, definition)
    ):
        return None
    try:
        return imap_settings(MailboxSpec.model_validate(definition))
    except (MailintakeError, ValueError):  # incomplete: its polls say why
        return None


@dataclass(frozen=True)
class PushClaims:
    store: Store
    worker: str
    budget: int

    def refresh(self, skipped: Iterable[str] = ()) -> dict[str, ImapSettings]:
        """Claim the mailboxes to push (``skipped`` aside), up to the budget, and let go of
        the others; the settings of those held now."""
        left_out = set(skipped)
        wanted: dict[str, ImapSettings] = {}
        live = datetime.now(UTC) - workers.DEAD_AFTER
        with self.store.begin() as repo:
            found = push.candidates(repo.conn, self.worker, live)
            for candidate in found:
                if len(wanted) >= self.budget or candidate.name in left_out:
                    continue
                settings = pushed(candidate)
                if settings is not None and (
                    candidate.mine or push.claim(repo.conn, candidate.name, self.worker, live)
                ):
                    wanted[candidate.name] = settings
            mine = {c.name for c in found if c.mine}
            push.release(repo.conn, self.worker, mine - wanted.keys())
        return wanted

    def release(self, names: Iterable[str] | None = None) -> None:
        """Let go of these mailboxes (None: of every one held)."""
        with self.store.begin() as repo:
            push.release(repo.conn, self.worker, names)
