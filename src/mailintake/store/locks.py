"""Locks by name across every thread and process using one database, each held by one
transaction: on PostgreSQL a transaction-level advisory lock (``pg_advisory_xact_lock``,
released at commit or rollback, so a crashed holder never keeps it); on SQLite a lock file
beside the database, plus SQLite's own write lock for what the transaction writes.

Token renewal holds one across its request to the token endpoint: whoever waited finds the
token the holder stored and sends nothing (oauth.tokens). ``wait`` bounds the wait: a holder
that hangs makes the others give up with a TransientError, tried again at the next poll."""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from mailintake.errors import TransientError

_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def held(engine: Engine, key: str, wait: float | None = None) -> Iterator[Connection]:
    """A transaction holding the lock ``key``; ``wait`` seconds at most for it (None: as
    long as it takes)."""
    digest = hashlib.sha256(key.encode()).digest()
    with _thread_lock(engine.url.render_as_string(), key, wait):
        if engine.dialect.name == "postgresql":
            number = int.from_bytes(digest[:8], "big", signed=True)
            with engine.begin() as conn:
                _advisory_lock(conn, number, key, wait)
                yield conn
            return
        database = engine.url.database or ""
        if not database or database == ":memory:":
            with engine.begin() as conn:
                yield conn
            return
        with open(f"{database}.lock-{digest.hex()[:16]}", "a+b") as handle:
            _flock(handle.fileno(), key, wait)
            try:
                with engine.begin() as conn:
                    yield conn
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _busy(key: str, wait: float) -> TransientError:
    return TransientError(
        f"{key}: another process has held this lock for over {wait:.0f} s; the next poll "
        "tries again"
    )


def _advisory_lock(conn: Connection, number: int, key: str, wait: float | None) -> None:
    if wait is not None:  # lock_timeout bounds advisory locks too; for this transaction only
        conn.execute(text(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}"))
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
    except OperationalError as exc:
        if wait is not None and getattr(exc.orig, "sqlstate", None) == "55P03":
            raise _busy(key, wait) from None  # lock_not_available
        raise


def _flock(fd: int, key: str, wait: float | None) -> None:
    if wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _busy(key, wait) from None
            time.sleep(0.05)


@contextmanager
def _thread_lock(database: str, key: str, wait: float | None) -> Iterator[None]:
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault((database, key), threading.Lock())
    if not lock.acquire(timeout=-1 if wait is None else wait):
        raise _busy(key, wait or 0.0)
    try:
        yield
    finally:
        lock.release()
