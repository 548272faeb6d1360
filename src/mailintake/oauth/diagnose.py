"""A provider's refusal → the mailbox's authorization state and a sentence naming the fix.

Classified by the OAuth ``error`` field first and by Microsoft's AADSTS numbers second:
Microsoft says both the texts and the numbers may change (oauth-facts §1.9), so every standard
``error`` value has a diagnosis of its own (``ERRORS``), and a known AADSTS number only refines
it (``CODES``, ``CODES_BY_GRANT``). Google sends no numbers; its few well-known descriptions
refine its ``error`` values the same way (``GOOGLE``).

A fix whose ``state`` is ``None`` keeps the state the ``error`` field gives in that situation:
the same "invalid_grant" means *authorize again* when a stored refresh token is refused,
*store the new password* for the password grant and *start again* when a fresh code is refused
(the seed's password-change rule). Messages say ``mailintake authorize <mailbox>``;
``to_exception`` puts the mailbox's name in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailintake.config import clouds
from mailintake.config.clouds import Cloud
from mailintake.config.matrix import USER_GRANTS, Grant
from mailintake.enums import AuthState
from mailintake.errors import (
    AuthError,
    AuthorizationRequired,
    MailintakeError,
    NetworkError,
    PasswordUpdateRequired,
    RateLimited,
)
from mailintake.oauth.aadsts_fixes import CODES, CODES_BY_GRANT, FEDERATED
from mailintake.oauth.error_fixes import APP_PORTAL, CAUSES, CONSENT, ERRORS, GOOGLE, SCOPE_HINT
from mailintake.oauth.fix import MAILBOX, Fix
from mailintake.oauth.provider_error import (
    ProviderError,
    clip,
    parse_redirect_error,
    parse_token_error,
)

DESCRIPTION_LIMIT = 200


class UnconfirmedRefusal(AuthorizationRequired):
    """A refusal of a stored refresh token that is not documented as final (e.g. AADSTS70000,
    or ``invalid_grant`` without a known number): it may be a momentary fault of the provider,
    so the token manager keeps the refresh token and asks a person to sign in again only after
    repeated refusals (``mailintake.oauth.refusals``)."""


# --- the situation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    grant: Grant
    phase: str  # "authorize" | "refresh" | "token"
    server: str = "MICROSOFT"
    username: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    federated: bool | None = None  # from Microsoft's user realm lookup, when known
    login_host: str | None = None  # the token endpoint's host: which Microsoft cloud

    @property
    def cloud(self) -> Cloud | None:
        """The Microsoft cloud of the server (built in, or by its sign-in host)."""
        return clouds.cloud_for(self.server, self.login_host)


@dataclass(frozen=True)
class Diagnosis:
    state: str
    message: str
    code: str
    transient: bool
    retry_after: float | None = None
    # Documented as final for a stored refresh token (``Fix.final``); otherwise a refusal to
    # authorize again may be a momentary fault and the refresh token is kept.
    final: bool = True


THROTTLED = frozenset({"http_429", "AADSTS50196", "AADSTS90055", "slow_down"})


def _flavor(error: ProviderError, ctx: Context) -> str:
    server = ctx.server.upper()
    if server == "GOOGLE":
        return "google"
    return "microsoft" if ctx.cloud is not None or error.codes else "other"


def _provider(flavor: str, ctx: Context) -> str:
    """Who refused: Microsoft, naming the national cloud when it is one; Google; the server."""
    if flavor == "microsoft":
        cloud = ctx.cloud or clouds.GLOBAL
        return "Microsoft" if cloud is clouds.GLOBAL else f"Microsoft ({cloud.short})"
    return "Google" if flavor == "google" else ctx.server


def _situation(ctx: Context) -> str:
    if ctx.grant in USER_GRANTS:
        return "refresh" if ctx.phase == "refresh" else "authorize"
    return ctx.grant.value


def _error_key(error: ProviderError) -> str:
    if error.error in ERRORS:
        return error.error
    match = re.fullmatch(r"http_(\d+)", error.error)
    if match is None:
        return "*"
    status = int(match.group(1))
    if status in (408, 425, 429) or status >= 500:
        return "http_transient"
    return "http_auth" if status in (401, 403, 407) else "http_other"


def _for(table: Mapping[str, Fix], ctx: Context) -> Fix:
    for key in (ctx.grant.value, _situation(ctx), "*"):
        if key in table:
            return table[key]
    return ERRORS["*"]["*"]


def _refine(error: ProviderError, ctx: Context, flavor: str) -> tuple[Fix | None, int | None]:
    """The fix a known AADSTS number (or Google description) gives, and that number."""
    for number in error.codes:
        for key in (ctx.grant.value, _situation(ctx)):
            if (number, key) in CODES_BY_GRANT:
                return CODES_BY_GRANT[(number, key)], number
        if number in CODES:
            return CODES[number], number
    if flavor == "google":
        text = error.description.lower()
        for name, phrase, fix in GOOGLE:
            if name == error.error and phrase in text:
                return fix, None
    return None, None


def diagnose(error: ProviderError, ctx: Context) -> Diagnosis:
    """The state and the fix for one refusal: the ``error`` field decides, numbers refine."""
    flavor = _flavor(error, ctx)
    base = _for(ERRORS[_error_key(error)], ctx)
    refined, known = _refine(error, ctx, flavor)
    if ctx.grant is Grant.PASSWORD and ctx.federated and not base.transient:
        refined = FEDERATED
    fix = refined or base
    transient = fix.transient or base.transient
    state: str
    if transient:  # the authorization itself is unchanged
        state = AuthState.NOT_AUTHORIZED if ctx.phase == "authorize" else AuthState.AUTHORIZED
    else:
        state = fix.state or base.state or AuthState.ERROR
    if known is not None:
        code = f"AADSTS{known}"
    else:
        code = f"AADSTS{error.codes[0]}" if error.codes else error.error
    provider = _provider(flavor, ctx)
    cloud = ctx.cloud or clouds.GLOBAL
    correlation = f" (correlation ID {error.correlation_id})" if error.correlation_id else ""
    values = {
        "provider": provider,
        "server": ctx.server,
        "account": f"the account {ctx.username}" if ctx.username else "the account",
        "client_id": ctx.client_id or "<oauth.client_id>",
        "tenant": ctx.tenant or "organizations",
        "grant": ctx.grant.value,
        "error": error.error,
        "correlation": correlation,
        "detail": error.description or f"HTTP {error.status}",
        "login_host": cloud.login_host,
        "exchange": cloud.exchange_user_resource,
        "graph": cloud.graph_resource,
    }
    for name, table in (
        ("app", APP_PORTAL),
        ("causes", CAUSES),
        ("scope_hint", SCOPE_HINT),
        ("consent", CONSENT),
    ):
        values[name] = table[flavor].format(**values)
    message = fix.text.format(**values)
    message = message[0].upper() + message[1:]
    if refined is None and error.description and not error.error.startswith("http_"):
        said = clip(error.description, DESCRIPTION_LIMIT).replace('"', "'")
        message += f' {provider} said: "{said}"{correlation}'
    if code not in message:
        message += f" [{code}]"
    return Diagnosis(
        state=state,
        message=message,
        code=code,
        transient=transient,
        retry_after=error.retry_after,
        final=fix.final or base.final or ctx.phase != "refresh",
    )


def to_exception(d: Diagnosis, mailbox: str) -> MailintakeError:
    """The error to raise: it says what to do, prefixed with the mailbox's name."""
    message = f"{mailbox}: " + d.message.replace(MAILBOX, mailbox)
    if d.transient:
        if d.retry_after is not None or d.code in THROTTLED:
            return RateLimited(message, retry_after=d.retry_after)
        return NetworkError(message)
    if d.state == AuthState.REAUTHORIZATION_REQUIRED:
        if not d.final:
            return UnconfirmedRefusal(message, state=d.state, code=d.code)
        return AuthorizationRequired(message, state=d.state, code=d.code)
    if d.state == AuthState.PASSWORD_UPDATE_REQUIRED:
        return PasswordUpdateRequired(message, state=d.state, code=d.code)
    return AuthError(message, state=d.state, code=d.code)


__all__ = [
    "CODES",
    "CODES_BY_GRANT",
    "ERRORS",
    "GOOGLE",
    "Context",
    "Diagnosis",
    "ProviderError",
    "UnconfirmedRefusal",
    "diagnose",
    "parse_redirect_error",
    "parse_token_error",
    "to_exception",
]
