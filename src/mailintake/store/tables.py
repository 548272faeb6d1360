"""The database schema (SQLAlchemy Core). Changes go through Alembic migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Custom servers, and built-in servers that were edited (a reset deletes the row).
authorization_servers = Table(
    "authorization_servers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("definition", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outputs = Table(
    "outputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("type", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("protocol", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("authorization_server", String(64), nullable=False),
    Column("output", String(64), nullable=False),
    # the mailbox as configured, without its secrets (those are in `secrets`)
    Column("definition", JSON, nullable=False),
    Column("auth_state", String(32), nullable=False),
    Column("auth_detail", Text, nullable=True),
    Column("last_poll_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_warning", Text, nullable=True),  # the last poll's warnings, if any
    # Health (mailintake.health): the last poll that succeeded, the failed polls since then
    # and when the first of them was, and the health last recorded with when it began.
    Column("last_success_at", DateTime(timezone=True), nullable=True),
    Column("failures_in_a_row", Integer, nullable=False, server_default="0"),
    Column("first_failure_at", DateTime(timezone=True), nullable=True),
    Column("health", String(16), nullable=True),
    Column("health_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The scheduler's (store/schedule.py): when the next poll is due (NULL: now), failed
    # polls in a row (back-off), the worker whose poll it is now, and when a wake came
    # during that poll (its end makes the mailbox due again at once).
    Column("next_poll_at", DateTime(timezone=True), nullable=True, index=True),
    Column("poll_failures", Integer, nullable=False, server_default="0"),
    Column("polled_by", String(128), nullable=True),
    Column("wake_requested_at", DateTime(timezone=True), nullable=True),
    # The worker that keeps the mailbox's push connection (store/push.py), if one does.
    Column("push_by", String(128), nullable=True),
)

# Every secret, encrypted. `template` keeps a ${env:NAME} form (no secret in it) for exports.
secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_name", String(64), nullable=False),
    Column("field", String(128), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("template", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner_kind", "owner_name", "field", name="uq_secrets_owner_field"),
)

# What an authorization left behind, per mailbox: the (newest) refresh token and who signed in.
# `fingerprint` identifies the OAuth settings it was obtained with; when they change, the
# grant no longer applies and the mailbox must be authorized again.
oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("mailbox", String(64), primary_key=True),
    Column("grant_type", String(32), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("account", String(320), nullable=True),
    Column("refresh_token", Text, nullable=True),  # encrypted
    Column("refresh_obtained_at", DateTime(timezone=True), nullable=True),
    Column("authorized_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Refusals of the refresh token not documented as final, since the last token obtained.
    Column("refusals", Integer, nullable=False, server_default="0"),
    Column("first_refused_at", DateTime(timezone=True), nullable=True),
)

# Access tokens, one per mailbox and resource (one token request = one resource).
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox", String(64), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("token", Text, nullable=False),  # encrypted
    Column("scopes", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("obtained_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("mailbox", "resource", name="uq_access_tokens_mailbox_resource"),
)

# One row per message seen in a mailbox: delivered to the output and recorded, then
# acknowledged on the server (the after-import action). `key` is the message key (CONTRACT §5).
imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    # recorded | acknowledged | failed (tried again at next_try_at) | parked (tried too often:
    # waits for a person) | skipped (by a person: never imported)
    Column("status", String(16), nullable=False),
    Column("source", JSON, nullable=False),  # imap: folder/uidvalidity/uid; pop3: uidl; graph: id
    Column("location", Text, nullable=True),  # where the output put it
    Column("subject", Text, nullable=True),
    Column("sender", Text, nullable=True),
    Column("size", Integer, nullable=True),
    Column("sha256", String(64), nullable=True),
    # the message's Message-ID (screening a folder recreated on the server: checkpoints)
    Column("message_id", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False),  # for a failed message: its tries
    Column("next_try_at", DateTime(timezone=True), nullable=True),  # a failed one, tried again
    Column("imported_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("mailbox", "key", name="uq_imports_mailbox_key"),
    # the few failed or unacknowledged ones of a mailbox, without reading the others
    Index("ix_imports_mailbox_status", "mailbox", "status"),
)

# Where a mailbox's import stands in one folder: the folder's UIDVALIDITY and the highest UID
# at or below which every message is handled (IMAP), or a source's resume token (``cursor``).
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("mailbox", String(64), nullable=False),
    Column("folder", String(400), nullable=False),
    Column("uidvalidity", BigInteger, nullable=True),
    Column("last_uid", BigInteger, nullable=True),
    Column("cursor", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("mailbox", "folder", name="pk_checkpoints"),
)

# Who polls a mailbox now: one worker at a time, for a limited time (several workers).
leases = Table(
    "leases",
    metadata,
    Column("mailbox", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Running workers (store/workers.py): each records a heartbeat every few seconds.
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),  # host:pid:nonce
    Column("host", String(128), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("running", Integer, nullable=False),  # polls running at the last heartbeat
)

# API tokens for the REST API: only a SHA-256 hash of each token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

# Signed-in web admin sessions: the SHA-256 hash of each session's identifier (the cookie
# carries the identifier, signed). Signing out deletes the row, so a copy of the cookie
# stops working too.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

# Wrong admin passwords, by the address they came from, for the sign-in throttle: shared by
# every `serve` process on the database. Rows older than the throttle's window are removed.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)

# Client-credentials access tokens, one per application (token endpoint, client id, tenant,
# scopes and credential), shared by every mailbox signing in with it. `app_key` is a keyed
# hash of those (SecretBox.keyed_digest): the client secret is in it, never in clear.
app_tokens = Table(
    "app_tokens",
    metadata,
    Column("app_key", String(64), primary_key=True),
    Column("client_id", String(255), nullable=False),  # shown, not used to find the row
    Column("resource", String(512), nullable=False),
    Column("token", Text, nullable=False),  # encrypted
    Column("scopes", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("obtained_at", DateTime(timezone=True), nullable=False),
)

# Microsoft Graph's "not before" per application and mailbox (a 429's Retry-After), so that
# every worker waits for it, not only the one that was told.
graph_throttle = Table(
    "graph_throttle",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("mailbox", String(320), primary_key=True),  # the address Graph reads, lower case
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What was sent about each alert condition to each alert channel (the alerter's memory):
# `state` is the state last delivered (NULL: nothing yet), so a change of state, a reminder
# due, or a condition that cleared is one send. A send is claimed first (`claimed_by` until
# `claimed_until`, on the row's `version`), so several workers send it once.
alert_state = Table(
    "alert_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("mailbox", String(64), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(32), nullable=True),
    Column("summary", Text, nullable=True),
    Column("since", DateTime(timezone=True), nullable=True),
    Column("ends_at", DateTime(timezone=True), nullable=True),
    Column("first_sent_at", DateTime(timezone=True), nullable=True),
    Column("last_sent_at", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("last_tried_at", DateTime(timezone=True), nullable=True),
)

# Microsoft Graph change-notification subscriptions (store/graph_subscriptions.py), one per
# mailbox: Graph's id (NULL: to be created again), the URL it notifies, when it expires, and
# whether Graph asked for it to be renewed now. Its clientState is in `secrets`, encrypted.
graph_subscriptions = Table(
    "graph_subscriptions",
    metadata,
    Column("mailbox", String(64), primary_key=True),
    Column("folder", String(400), nullable=False),
    Column("subscription_id", String(128), nullable=True, unique=True),
    Column("notification_url", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("renew_now", Boolean, nullable=False, server_default=false()),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
