"""The web admin's credentials: the admin password, API tokens, sessions and the
session-signing key.

Nothing here is kept in clear: the password as an argon2id hash (in ``meta``), each API token
as the SHA-256 hash of its value (in ``api_tokens``; the value is shown once, when it is
made), each session as the SHA-256 hash of its identifier (in ``web_sessions``; the cookie
carries the identifier), and the key that signs session cookies encrypted with the secret
key like every other secret (in ``secrets``, so ``mailintake secrets rotate-key``
re-encrypts it and every worker sharing the database signs and checks sessions with the
same key).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from mailintake.errors import ConfigError, Conflict, NotFound
from mailintake.observability.logging import register_secret
from mailintake.store import secrets
from mailintake.store.repo import Store
from mailintake.store.tables import api_tokens, meta, sign_in_failures, web_sessions

MIN_PASSWORD_LENGTH = 12  # characters, not counting spaces before or after
MIN_DISTINCT_CHARACTERS = 5
TOKEN_PREFIX = "mit_"
_PASSWORD_KEY = "admin_password"
_SESSION_OWNER = ("web", "session", "signing_key")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# last_used_at is written at most this often per token (not on every request).
_TOUCH_INTERVAL = timedelta(minutes=1)
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


@dataclass(frozen=True)
class ApiToken:
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


# --- the admin password -----------------------------------------------------------------


def _read_hash(conn: Connection) -> str | None:
    row = conn.execute(select(meta.c.value).where(meta.c.key == _PASSWORD_KEY)).first()
    return None if row is None else str(row.value)


def _write_hash(conn: Connection, hashed: str) -> None:
    if _read_hash(conn) is None:
        conn.execute(meta.insert().values(key=_PASSWORD_KEY, value=hashed))
    else:
        conn.execute(update(meta).where(meta.c.key == _PASSWORD_KEY).values(value=hashed))


def password_problem(password: str) -> str | None:
    """Why ``password`` will not do as the admin password, or None. Spaces around it do not
    count towards its length; blank and few-character passwords are refused."""
    core = password.strip()
    rule = f"use at least {MIN_PASSWORD_LENGTH} characters, not counting spaces around them"
    if not core:
        return f"password: it is blank (only spaces or nothing); {rule}"
    if len(core) < MIN_PASSWORD_LENGTH:
        return f"password: too short ({len(core)} characters); {rule}"
    if len(set(core)) < MIN_DISTINCT_CHARACTERS:
        return (
            "password: too easy to guess: it repeats a few characters; use at least "
            f"{MIN_DISTINCT_CHARACTERS} different ones"
        )
    return None


def set_admin_password(store: Store, password: str, hasher: PasswordHasher = _hasher) -> None:
    """Set the password of the web admin (every session signed in before ends); a weak one
    (see ``password_problem``) is refused with ConfigError. ``hasher``'s parameters are
    written into the hash, and checking a password reads them from there."""
    problem = password_problem(password)
    if problem is not None:
        raise ConfigError([problem])
    register_secret(password)
    hashed = hasher.hash(password)
    with store.begin() as repo:
        _write_hash(repo.conn, hashed)
        repo.conn.execute(delete(web_sessions))


def admin_password_is_set(store: Store) -> bool:
    with store.read() as repo:
        return _read_hash(repo.conn) is not None


def verify_admin_password(store: Store, password: str) -> bool:
    with store.read() as repo:
        hashed = _read_hash(repo.conn)
    if hashed is None:
        return False
    try:
        _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def password_tag(store: Store) -> str | None:
    """A short digest of the stored hash: sessions carry it, so a new password ends them."""
    with store.read() as repo:
        hashed = _read_hash(repo.conn)
    return None if hashed is None else hashlib.sha256(hashed.encode()).hexdigest()[:16]


# --- the session-signing key ------------------------------------------------------------


def session_key(store: Store) -> str:
    """The key that signs session cookies, made on first use and kept encrypted."""
    kind, owner, field = _SESSION_OWNER
    for _ in range(2):
        with store.read() as repo:
            stored = secrets.read_all(repo.conn, kind, owner).get(field)
            if stored is not None:
                return repo.box.decrypt(stored.ciphertext)
        key = random.token_urlsafe(48)
        try:
            with store.begin() as repo:
                secrets.write(repo.conn, repo.box, kind, owner, field, key, None, None)
            return key
        except IntegrityError:  # another worker made it at the same moment: use theirs
            continue
    raise RuntimeError("the session-signing key could not be read or created")


# --- sessions ---------------------------------------------------------------------------


def start_session(store: Store, lifetime: timedelta) -> str:
    """A new session's identifier (kept only as its hash). Sessions older than ``lifetime``
    are removed meanwhile: they can no longer be used."""
    session = random.token_urlsafe(32)
    register_secret(session)
    now = _now()
    with store.begin() as repo:
        repo.conn.execute(delete(web_sessions).where(web_sessions.c.created_at < now - lifetime))
        repo.conn.execute(
            web_sessions.insert().values(
                session_hash=_digest(session), created_at=now, last_seen_at=now
            )
        )
    return session


def session_active(store: Store, session: str, idle: timedelta, lifetime: timedelta) -> bool:
    """Whether ``session`` was started here, is not signed out, was used within ``idle`` and
    started within ``lifetime``; its use is noted (at most once a minute)."""
    digest = _digest(session)
    with store.read() as repo:
        row = repo.conn.execute(
            select(web_sessions.c.created_at, web_sessions.c.last_seen_at).where(
                web_sessions.c.session_hash == digest
            )
        ).first()
    if row is None:
        return False
    now = _now()
    created, seen = _utc(row.created_at), _utc(row.last_seen_at)
    assert created is not None
    assert seen is not None
    if now - created > lifetime or now - seen > idle:
        return False
    if now - seen > _TOUCH_INTERVAL:
        with store.begin() as repo:
            repo.conn.execute(
                update(web_sessions)
                .where(web_sessions.c.session_hash == digest)
                .values(last_seen_at=now)
            )
    return True


def end_session(store: Store, session: str) -> None:
    """Sign ``session`` out: its cookie, and every copy of it, stops working."""
    with store.begin() as repo:
        repo.conn.execute(
            delete(web_sessions).where(web_sessions.c.session_hash == _digest(session))
        )


# --- sign-in attempts (the sign-in throttle) --------------------------------------------

_ATTEMPTS_LOCK = "web.sign_in_attempts"


def count_sign_in_attempt(
    store: Store, address: str, at: datetime, since: datetime, limit: int
) -> list[datetime]:
    """Count a sign-in attempt from ``address`` before its password is checked, and return
    when the attempts still counted against it were made (oldest first, since ``since``,
    without this one). With ``limit`` or more of them this attempt is not counted: it must be
    refused unchecked. Attempts before ``since`` (of every address) are removed.

    The count and the insert happen under one lock shared by every process using the
    database, so parallel attempts cannot all read a count below the limit and all be
    checked. A right password removes the address's attempts (``sign_in_succeeded``)."""
    with store.exclusive(_ATTEMPTS_LOCK) as repo:
        repo.conn.execute(delete(sign_in_failures).where(sign_in_failures.c.failed_at <= since))
        rows = repo.conn.execute(
            select(sign_in_failures.c.failed_at)
            .where(sign_in_failures.c.address == address[:64])
            .where(sign_in_failures.c.failed_at > since)
            .order_by(sign_in_failures.c.failed_at)
        ).all()
        earlier = [moment for row in rows if (moment := _utc(row.failed_at)) is not None]
        if len(earlier) < limit:
            repo.conn.execute(sign_in_failures.insert().values(address=address[:64], failed_at=at))
    return earlier


def sign_in_succeeded(store: Store, address: str) -> None:
    """A right password from ``address``: its count starts again."""
    with store.begin() as repo:
        repo.conn.execute(
            delete(sign_in_failures).where(sign_in_failures.c.address == address[:64])
        )


# --- API tokens -------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(store: Store, name: str) -> str:
    """Make a token called ``name`` and return it; this is the only time it is shown."""
    if not _TOKEN_NAME.fullmatch(name):
        raise ConfigError([f"name: '{name}' must be 1-64 of A-Z a-z 0-9 . _ -"])
    token = TOKEN_PREFIX + random.token_urlsafe(32)
    register_secret(token)
    try:
        with store.begin() as repo:
            repo.conn.execute(
                api_tokens.insert().values(name=name, token_hash=_digest(token), created_at=_now())
            )
    except IntegrityError:
        raise Conflict(f"an API token named '{name}' exists already") from None
    return token


def list_api_tokens(store: Store) -> list[ApiToken]:
    with store.read() as repo:
        rows = repo.conn.execute(
            select(api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at).order_by(
                api_tokens.c.name
            )
        ).all()
    result = []
    for row in rows:
        created = _utc(row.created_at)
        assert created is not None
        result.append(ApiToken(row.name, created, _utc(row.last_used_at)))
    return result


def revoke_api_token(store: Store, name: str) -> None:
    with store.begin() as repo:
        removed = repo.conn.execute(delete(api_tokens).where(api_tokens.c.name == name)).rowcount
    if not removed:
        raise NotFound(f"no API token named '{name}'")


def check_api_token(store: Store, token: str) -> str | None:
    """The name of the token when ``token`` is a valid one (and note its use), else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(token)
    with store.read() as repo:
        row = repo.conn.execute(
            select(api_tokens.c.name, api_tokens.c.token_hash, api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == digest
            )
        ).first()
    if row is None or not hmac.compare_digest(str(row.token_hash), digest):
        return None
    now = _now()
    last = _utc(row.last_used_at)
    if last is None or now - last > _TOUCH_INTERVAL:
        with store.begin() as repo:
            repo.conn.execute(
                update(api_tokens).where(api_tokens.c.name == row.name).values(last_used_at=now)
            )
    return str(row.name)
