"""Mailbox leases: which poll imports a mailbox now. A lease belongs to one poll, not to a
process: each poll makes its own owner id (``new_owner``), so a second poll of the same
mailbox is refused whether it runs in another process or in the same one.

An owner id is ``host:pid:nonce``. A lease expires unless its poll renews it; one whose
process has ended on this host is taken over at once (``claim``)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mailintake.observability.logging import get_logger
from mailintake.store.tables import leases

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def host_name() -> str:
    """The host name in this process's owner ids: $MAILINTAKE_WORKER_NAME, else the host's."""
    return os.environ.get("MAILINTAKE_WORKER_NAME") or socket.gethostname()


def new_owner(host: str | None = None) -> str:
    """A fresh owner id for one poll (or worker): its host, this process, and a nonce."""
    return f"{host or host_name()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def acquire(conn: Connection, mailbox: str, owner: str, ttl: timedelta) -> bool:
    """Take the mailbox for ``ttl`` unless another owner holds an unexpired lease."""
    now = _now()
    taken = conn.execute(
        update(leases)
        .where(
            leases.c.mailbox == mailbox,
            or_(leases.c.owner == owner, leases.c.expires_at < now),
        )
        .values(owner=owner, expires_at=now + ttl)
    ).rowcount
    if taken:
        return True
    try:
        with conn.begin_nested():
            conn.execute(insert(leases).values(mailbox=mailbox, owner=owner, expires_at=now + ttl))
    except IntegrityError:
        return False
    return True


_RENEW = (
    update(leases)
    .where(leases.c.mailbox == bindparam("of"), leases.c.owner == bindparam("by"))
    .values(expires_at=bindparam("until"))
)  # built once: it runs after every batch


def renew(conn: Connection, mailbox: str, owner: str, ttl: timedelta) -> bool:
    """Extend ``owner``'s lease by ``ttl`` from now; False when it holds it no longer."""
    kept = conn.execute(_RENEW, {"of": mailbox, "by": owner, "until": _now() + ttl}).rowcount
    return bool(kept)


def holder(conn: Connection, mailbox: str) -> str | None:
    """Who holds the mailbox's lease (expired or not), if anyone."""
    owner: str | None = conn.execute(
        select(leases.c.owner).where(leases.c.mailbox == mailbox)
    ).scalar_one_or_none()
    return owner


def take_over(conn: Connection, mailbox: str, old: str, owner: str, ttl: timedelta) -> bool:
    """Take the lease from ``old`` (a poll known to be gone), if it still holds it."""
    taken = conn.execute(
        update(leases)
        .where(leases.c.mailbox == mailbox, leases.c.owner == old)
        .values(owner=owner, expires_at=_now() + ttl)
    ).rowcount
    return bool(taken)


def claim(conn: Connection, mailbox: str, owner: str, ttl: timedelta) -> bool:
    """``acquire``, or take over the lease of a poll whose process has ended on this host."""
    if acquire(conn, mailbox, owner, ttl):
        return True
    held_by = holder(conn, mailbox)
    if held_by is None or not gone(held_by):
        return False
    log.warning("lease.taken_over", mailbox=mailbox, previous=held_by)
    return take_over(conn, mailbox, held_by, owner, ttl)


def release(conn: Connection, mailbox: str, owner: str) -> None:
    conn.execute(delete(leases).where(and_(leases.c.mailbox == mailbox, leases.c.owner == owner)))


def forget(conn: Connection, mailbox: str) -> None:
    conn.execute(delete(leases).where(leases.c.mailbox == mailbox))


def gone(owner: str) -> bool:
    """Whether the poll ``owner`` (host:pid:nonce) ran on this host in a process that has
    ended. A poll of this very process is never gone: it is running."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host_name() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
