"""Running workers and their heartbeats: each worker records one every few seconds; one whose
heartbeat stopped is dead, wherever it ran, and its polls are taken over (store/schedule.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from mailintake.store.schedule import aware
from mailintake.store.tables import workers

HEARTBEAT_EVERY = 3.0  # seconds between a worker's heartbeats
# A worker that has not beaten for this long is dead: its polls are taken over (as soon as
# their leases, renewed by the same process, expire). Its row is kept a day for `status`.
DEAD_AFTER = timedelta(seconds=15)
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Worker:
    id: str  # host:pid:nonce
    host: str
    started_at: datetime
    heartbeat_at: datetime
    concurrency: int
    running: int


def beat(
    conn: Connection,
    worker: str,
    host: str,
    started_at: datetime,
    now: datetime,
    concurrency: int,
    running: int,
) -> None:
    """Record ``worker``'s heartbeat at ``now`` (its first creates its row)."""
    values = {"heartbeat_at": now, "concurrency": concurrency, "running": running}
    if not conn.execute(update(workers).where(workers.c.id == worker).values(**values)).rowcount:
        conn.execute(insert(workers).values(id=worker, host=host, started_at=started_at, **values))
    conn.execute(delete(workers).where(workers.c.heartbeat_at < now - FORGET_AFTER))


def stopped(conn: Connection, worker: str) -> None:
    """``worker`` stopped in order: it is no longer listed."""
    conn.execute(delete(workers).where(workers.c.id == worker))


def listed(conn: Connection) -> list[Worker]:
    """Every worker that beat in the last day, the latest heartbeat first."""
    rows = conn.execute(select(workers).order_by(workers.c.heartbeat_at.desc(), workers.c.id))
    return [
        Worker(
            r.id,
            r.host,
            aware(r.started_at) or r.started_at,
            aware(r.heartbeat_at) or r.heartbeat_at,
            r.concurrency,
            r.running,
        )
        for r in rows
    ]
