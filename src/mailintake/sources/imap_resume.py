"""What an IMAP poll asks the server, given where the import of the folder stood (its
checkpoint: UIDVALIDITY and the highest UID at or below which every message is handled).

A poll costs what is new, not what is kept. UIDs are given in ascending order and a new
message always gets a UID at least the folder's UIDNEXT (RFC 3501 §2.3.1.1; RFC 9051
§2.3.1.1), which SELECT and EXAMINE report (RFC 3501 §6.3.1, a required response). So:

- UIDVALIDITY as saved and UIDNEXT ≤ last_uid + 1, and no failed message due for a try:
  nothing is new; the poll ends after SELECT, one round trip after sign-in.
- Otherwise one ``UID SEARCH UID <failures>,<last_uid+1>:*``: the new messages, and which
  of the failed ones are still there (those not are forgotten as gone). ``n:*`` always
  includes the highest UID of the folder even when it is below n (RFC 3501 §6.4.8, §9
  "seq-range"): a UID at or below last_uid that is not a failure is left out.
- A new UIDVALIDITY: the folder was recreated (deleted and made again, or restored), every
  UID may name another message. The folder is listed whole; each message not imported under
  its new key is asked for its Message-ID and size, and one whose Message-ID and size match
  a message imported before from this mailbox is left out (counted as skipped, and said in
  the mailbox's status). A message without Message-ID, or imported before the import
  records kept Message-IDs, cannot be matched and is imported again. Until that pass ends,
  the checkpoint stays at the former UIDVALIDITY: a pass stopped half way screens again.
- No checkpoint yet (the first poll, or the first since upgrading): the folder is listed
  whole and screened by message key, as before.

Failed messages are tried again from the store's list of failures (their UIDs go into the
SEARCH when one is due), never by listing the folder again.

CONDSTORE and QRESYNC (RFC 7162) are not used. CONDSTORE's HIGHESTMODSEQ (§3.1.2.1) grows
with any change of metadata, flags included (§3.1: ours as well, mark_read sets ``\\Seen``),
so it says "nothing changed" less often than UIDNEXT says "nothing new", and new mail is
all an import looks for. QRESYNC's SELECT parameter (§3.2.5) and ``VANISHED (EARLIER)``
(§3.2.5.1, §3.2.10) would tell which known UIDs were expunged: the only known UIDs a poll
needs to check are the few of failed messages, which the one SEARCH above already checks,
and enabling QRESYNC costs an ``ENABLE`` round trip (§3.2.3) on every poll. UIDNEXT comes
with the SELECT the poll sends anyway, from every server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailintake.sources.base import Resume
from mailintake.sources.imap_wire import uid_set
from mailintake.store.checkpoints import Checkpoint


@dataclass(frozen=True)
class Plan:
    criteria: str | None  # what UID SEARCH asks; None: nothing to list
    base: int  # the saved last_uid the listing goes on from (0: none)
    retry: frozenset[int]  # UIDs of failed or parked messages, checked in the same SEARCH
    former: int | None = None  # the former UIDVALIDITY, when the folder was recreated
    due: int = 0  # failed messages whose next try has come

    def kept(self, uids: Iterable[int]) -> list[int]:
        """The SEARCH's answer without the highest UID ``n:*`` brings when nothing is new."""
        return sorted(uid for uid in uids if uid > self.base or uid in self.retry)


def plan(resume: Resume | None, folder: str, uidvalidity: int | None, uidnext: int | None) -> Plan:
    saved = resume.saved if resume is not None else None
    if saved is None or saved.folder != folder or uidvalidity is None:
        return Plan("ALL", 0, frozenset())
    if saved.uidvalidity != uidvalidity:
        return Plan("ALL", 0, frozenset(), former=saved.uidvalidity)
    here = [
        f
        for f in (resume.failures if resume is not None else ())
        if f.source.get("folder") == folder
        and f.source.get("uidvalidity") == uidvalidity
        and isinstance(f.source.get("uid"), int)
    ]
    retry = frozenset(int(f.source["uid"]) for f in here)
    due = sum(1 for f in here if f.due)
    if not due and uidnext is not None and uidnext <= saved.last_uid + 1:
        return Plan(None, saved.last_uid, retry)
    wanted = uid_set(retry)
    criteria = f"UID {wanted},{saved.last_uid + 1}:*" if wanted else f"UID {saved.last_uid + 1}:*"
    return Plan(criteria, saved.last_uid, retry, due=due)


def recreated(folder: str, former: int, now: int | None, matched: int) -> str:
    return (
        f"{folder} was recreated on the server (UIDVALIDITY {former} → {now}): {matched} "
        f"message{'' if matched == 1 else 's'} matched earlier imports by Message-ID and size "
        "and were skipped"
    )


def advanced(plan: Plan, folder: str, uidvalidity: int | None, uids: Iterable[int]) -> Checkpoint:
    """The checkpoint once the listed ``uids`` and everything listed before are handled."""
    return Checkpoint(folder, uidvalidity, max([plan.base, *uids]))


__all__ = ["Plan", "advanced", "plan", "recreated"]
