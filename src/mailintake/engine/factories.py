"""Turning a stored mailbox and output into the source and sink that serve them."""

from __future__ import annotations

from pathlib import Path

from mailintake.config import resolve
from mailintake.config.models import MailboxSpec, OutputSpec
from mailintake.errors import ConfigError
from mailintake.sinks.base import MessageSink
from mailintake.sinks.folder import FolderSink
from mailintake.sinks.webhook import WebhookSink
from mailintake.sinks.writers import WriterPool
from mailintake.sources.base import MailSource, TokenProvider
from mailintake.sources.graph import build_graph_source
from mailintake.sources.graph_limits import Book
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.pop3 import Pop3Settings, Pop3Source


def build_source(
    spec: MailboxSpec,
    token: TokenProvider,
    renew: TokenProvider | None = None,
    *,
    spool: Path | None = None,
    throttle: Book | None = None,
) -> MailSource:
    """The mailbox's source; ``renew`` gives a new token when a server refuses the current
    one mid-session (Graph's 401); ``spool`` is where large downloads are written;
    ``throttle`` keeps Graph's waits for every worker (store.throttle)."""
    host, port = resolve.host(spec), resolve.port(spec)
    if spec.protocol is None or spec.username is None:
        raise ConfigError([f"mailboxes[{spec.name}]: incomplete (validate the configuration)"])
    login_as = spec.shared_mailbox or spec.username
    if spec.protocol.value == "imap":
        return ImapSource(imap_settings(spec), token, spec.name)
    if spec.protocol.value == "pop3":
        if host is None or port is None:
            raise ConfigError([f"mailboxes[{spec.name}].host: required"])
        return Pop3Source(
            Pop3Settings(
                host=host,
                port=port,
                security=resolve.security(spec),
                username=spec.username,
                login_as=login_as,
                after_import=resolve.after_import(spec),
            ),
            token,
            spec.name,
        )
    return build_graph_source(spec, token, renew, spool=spool, throttle=throttle)


def imap_settings(spec: MailboxSpec) -> ImapSettings:
    """Where and how an IMAP mailbox is read (its source's settings)."""
    host, port = resolve.host(spec), resolve.port(spec)
    if spec.username is None:
        raise ConfigError([f"mailboxes[{spec.name}]: incomplete (validate the configuration)"])
    if host is None or port is None:
        raise ConfigError([f"mailboxes[{spec.name}].host: required"])
    return ImapSettings(
        host=host,
        port=port,
        security=resolve.security(spec),
        username=spec.username,
        login_as=spec.shared_mailbox or spec.username,
        folder=resolve.folder(spec) or "INBOX",
        after_import=resolve.after_import(spec),
        move_to=spec.move_to,
    )


def build_sink(
    output: OutputSpec | None, home: Path, *, writers: WriterPool | None = None
) -> MessageSink:
    """The mailbox's output; without one, the built-in folder ``$MAILINTAKE_HOME/output``.
    ``writers``: a folder output's worker processes (engine.runtime.ImportRuntime)."""
    if output is None:
        return FolderSink(home / "output", writers=writers)
    if output.type == "folder":
        return FolderSink(Path(output.path or home / "output"), writers=writers)
    headers = {k: v.get_secret_value() for k, v in (output.headers or {}).items()}
    return WebhookSink(output.url or "", headers)
