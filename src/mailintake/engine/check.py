"""``mailintake check``: obtain a token, sign in, open the folder, and say what was found or
exactly which step failed and why — without importing or changing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mailintake.config import resolve
from mailintake.config.clouds import cloud_for
from mailintake.config.matrix import Protocol
from mailintake.engine.factories import build_source
from mailintake.errors import AuthError, MailintakeError, SourceError
from mailintake.oauth.audience import wrong_audience
from mailintake.oauth.tokens import TokenManager, load_auth, stored_access
from mailintake.store import imports
from mailintake.store.repo import Store


@dataclass
class CheckResult:
    mailbox: str
    steps: list[dict[str, object]] = field(default_factory=list)
    ok: bool = True
    exit_code: int = 0

    def step(self, name: str, ok: bool, detail: str) -> None:
        self.steps.append({"step": name, "ok": ok, "detail": detail})
        if not ok:
            self.ok = False

    def as_dict(self) -> dict[str, object]:
        return {"mailbox": self.mailbox, "ok": self.ok, "steps": self.steps}


def check_mailbox(store: Store, name: str, tokens: TokenManager | None = None) -> CheckResult:
    manager = tokens or TokenManager(store)
    result = CheckResult(name)
    with store.read() as repo:
        spec = repo.get_mailbox(name, reveal=True).spec
    try:
        token = manager.access_token(name)
        with store.read() as repo:
            grant = repo.grant(name)
            access = stored_access(repo, load_auth(repo, name))
        who = f" for {grant.account}" if grant and grant.account else ""
        until = f", valid until {access.expires_at:%Y-%m-%d %H:%M} UTC" if access else ""
        result.step("token", True, f"obtained{who}{until}")
    except MailintakeError as exc:
        result.step("token", False, str(exc))
        result.exit_code = exc.exit_code
        return result
    folder = resolve.folder(spec) or "(no folders: POP3)"
    source = build_source(spec, lambda: token)
    try:
        source.open()
        login = spec.shared_mailbox or spec.username
        result.step("sign-in", True, f"signed in to {source.protocol.upper()} as {login}")
        items = source.list_items()
        with store.read() as repo:
            known = imports.statuses(repo.conn, name, [i.key for i in items])
        new = sum(
            1 for i in items if known.get(i.key) not in (imports.RECORDED, imports.ACKNOWLEDGED)
        )
        result.step("folder", True, f"{folder}: {len(items)} message(s), {new} not imported yet")
    except AuthError as exc:
        result.step("sign-in", False, _with_audience(manager, name, spec.protocol, str(exc)))
        result.exit_code = exc.exit_code
    except MailintakeError as exc:
        # What the server said of the folders (folder, move_to) is the folder step's, even
        # when opening the mailbox stopped there.
        signed_in = result.steps[-1]["step"] == "sign-in"
        step = "folder" if signed_in or isinstance(exc, SourceError) else "sign-in"
        result.step(step, False, str(exc))
        result.exit_code = exc.exit_code
    finally:
        source.close()
    return result


def _with_audience(manager: TokenManager, name: str, protocol: Protocol | None, text: str) -> str:
    """The refusal, and the resource the token was for when that is why (mail servers do not
    say; oauth.audience)."""
    if protocol is None:
        return text
    with manager.store.read() as repo:
        auth = load_auth(repo, name)
    host = urlsplit(auth.token_endpoint.replace("{tenant}", "t")).hostname
    hint = wrong_audience(auth.scopes, protocol, auth.grant, cloud=cloud_for(auth.server, host))
    return f"{text}. {hint}" if hint else text
