"""Turning a stored mailbox and output into the source and sink that serve them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailintake.config import resolve
from mailintake.config.matrix import Protocol
from mailintake.config.models import MailboxSpec, OutputSpec
from mailintake.errors import ConfigError
from mailintake.net.http import ProxySettings
from mailintake.sinks.base import MessageSink
from mailintake.sinks.folder import FolderSink
from mailintake.sinks.webhook import WebhookSink
from mailintake.sinks.writer_pool import WriterPool
from mailintake.sources.base import MailSource, TokenProvider
from mailintake.sources.graph import GraphSettings, GraphSource
from mailintake.sources.graph_limits import Book
from mailintake.sources.graph_subscriptions import GraphSubscriptions
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.pop3 import Pop3Settings, Pop3Source


@dataclass(frozen=True)
class Needs:
    """What building a source may use besides the mailbox: ``renew`` gives a new token when
    a server refuses the current one (Graph's 401, IMAP's refused sign-in); ``spool`` is
    where large downloads are written; ``throttle`` keeps Graph's waits for every worker
    (store.throttle)."""

    token: TokenProvider
    renew: TokenProvider | None = None
    spool: Path | None = None
    throttle: Book | None = None


def build_source(
    spec: MailboxSpec,
    token: TokenProvider,
    renew: TokenProvider | None = None,
    *,
    spool: Path | None = None,
    throttle: Book | None = None,
) -> MailSource:
    """The mailbox's source, built by its protocol's entry of ``BUILDERS``."""
    builder = BUILDERS.get(spec.protocol) if spec.protocol is not None else None
    if builder is None:
        raise ConfigError([f"mailboxes[{spec.name}].protocol: {_protocols(spec.protocol)}"])
    return builder(spec, Needs(token, renew, spool, throttle))


def _protocols(given: object) -> str:
    known = ", ".join(str(protocol) for protocol in BUILDERS)
    return f"required, one of {known}" if given is None else f"{given!r} is not one of {known}"


def _username(spec: MailboxSpec, why: str = " (validate the configuration)") -> str:
    if spec.username is None:
        raise ConfigError([f"mailboxes[{spec.name}].username: required{why}"])
    return spec.username


def _address(spec: MailboxSpec) -> tuple[str, int]:
    host, port = resolve.host(spec), resolve.port(spec)
    if host is None or port is None:
        raise ConfigError([f"mailboxes[{spec.name}].host: required"])
    return host, port


def imap_settings(spec: MailboxSpec) -> ImapSettings:
    """Where and how an IMAP mailbox is read (its source's settings)."""
    username = _username(spec)
    host, port = _address(spec)
    return ImapSettings(
        host=host,
        port=port,
        security=resolve.security(spec),
        username=username,
        login_as=spec.shared_mailbox or username,
        folder=resolve.folder(spec) or "INBOX",
        after_import=resolve.after_import(spec),
        move_to=spec.move_to,
    )


def pop3_settings(spec: MailboxSpec) -> Pop3Settings:
    """Where and how a POP3 mailbox is read (its source's settings)."""
    username = _username(spec)
    host, port = _address(spec)
    return Pop3Settings(
        host=host,
        port=port,
        security=resolve.security(spec),
        username=username,
        login_as=spec.shared_mailbox or username,
        after_import=resolve.after_import(spec),
    )


def graph_settings(spec: MailboxSpec, spool: Path | None = None) -> GraphSettings:
    """Which Graph mailbox is read and how (its source's settings): the Graph root of its
    cloud unless it names another (config.resolve.graph_url)."""
    username = _username(spec, " for Microsoft Graph (the mailbox to read)")
    proxy = None
    if spec.proxy is not None and spec.proxy.address:
        password = spec.proxy.password
        proxy = ProxySettings(
            spec.proxy.address,
            spec.proxy.username,
            password.get_secret_value() if password else None,
        )
    return GraphSettings(
        graph_url=resolve.graph_url(spec),
        mailbox=spec.shared_mailbox or username,
        folder=resolve.folder(spec) or "inbox",
        after_import=resolve.after_import(spec),
        move_to=spec.move_to,
        proxy=proxy,
        spool=spool,
        max_size=resolve.max_message_size(spec),
        user=None if resolve.app_only(spec) else username,
        client_id=spec.oauth.client_id if spec.oauth is not None else None,
    )


def _imap(spec: MailboxSpec, needs: Needs) -> MailSource:
    return ImapSource(imap_settings(spec), needs.token, spec.name, needs.renew)


def _pop3(spec: MailboxSpec, needs: Needs) -> MailSource:
    return Pop3Source(pop3_settings(spec), needs.token, spec.name)


def _graph(spec: MailboxSpec, needs: Needs) -> GraphSource:
    settings = graph_settings(spec, needs.spool)
    return GraphSource(settings, needs.token, spec.name, needs.renew, needs.throttle)


def build_graph_source(
    spec: MailboxSpec,
    token: TokenProvider,
    renew: TokenProvider | None = None,
    *,
    spool: Path | None = None,
    throttle: Book | None = None,
) -> GraphSource:
    """A Graph mailbox's source (``build_source``'s, typed as a GraphSource)."""
    return _graph(spec, Needs(token, renew, spool, throttle))


def build_graph_subscriptions(
    spec: MailboxSpec, token: TokenProvider, renew: TokenProvider | None = None
) -> GraphSubscriptions:
    """The subscription calls of a Graph mailbox, through its source (engine.graph_push)."""
    return GraphSubscriptions(build_graph_source(spec, token, renew))


BUILDERS: dict[Protocol, Callable[[MailboxSpec, Needs], MailSource]] = {
    Protocol.IMAP: _imap,
    Protocol.POP3: _pop3,
    Protocol.GRAPH: _graph,
}


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
