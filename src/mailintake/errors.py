"""The exception tree, grouped by what the caller must do.

::

    MailintakeError                  base; never raised itself
    ├── ConfigError                  invalid input; .problems lists "PATH: message" (exit 2, 422)
    │     └── DocumentTooLarge       a request body past the size a document may have (413)
    ├── NotFound                     no server, mailbox or output of that name (exit 2, 404)
    ├── Conflict                     refused as it stands: in use, built in (exit 2, 409)
    ├── SecretKeyError               secret key missing, malformed or not the one used (exit 2)
    ├── AuthError                    a person must act (exit 3); .state, .code
    │     ├── AuthorizationRequired  authorize (again)
    │     └── PasswordUpdateRequired store the new password
    ├── TransientError               a remote failure; retrying later may help (exit 4)
    │     ├── NetworkError           connection refused, DNS, TLS, timeout, proxy
    │     ├── RateLimited            the server asked us to wait retry_after seconds
    │     │     └── Throttled        a wait still running: the poll is skipped, not failed
    │     └── AuthorizationPending   device code: not signed in yet; poll again (.slow_down)
    ├── SourceError                  the mailbox server refused an operation (exit 4)
    │     └── MessageUnavailable     the server cannot give one message: it fails alone
    ├── SinkError                    the output refused a message (exit 4)
    │     └── OutputUnavailable      the output failed to take it now (no answer, 5xx)
    ├── AlertNotSent                 an alert channel did not take an alert (exit 4)
    └── LeaseLost                    another poll took over this mailbox, or its lease ran out

Adapters translate library exceptions into these once, at their edge
(``raise NetworkError(...) from exc``); callers branch on what they must do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from mailintake.enums import AuthState


class MailintakeError(Exception):
    """Base of every error mailintake raises on purpose."""

    exit_code = 1


class ConfigError(MailintakeError):
    """The input is invalid; ``problems`` lists every problem as ``PATH: message``."""

    exit_code = 2

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) or "invalid configuration")


class DocumentTooLarge(ConfigError):
    """A request body larger than a configuration document may be."""


class NotFound(MailintakeError):
    exit_code = 2


class Conflict(MailintakeError):
    exit_code = 2


class SecretKeyError(MailintakeError):
    exit_code = 2


class AuthError(MailintakeError):
    """A person must act. ``state`` is the authorization state it leaves the mailbox in
    (CONTRACT §4); ``code`` the provider's error (e.g. ``AADSTS7000215``) when there is one."""

    exit_code = 3
    default_state: str = AuthState.ERROR

    def __init__(self, message: str, *, state: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.state = state or self.default_state
        self.code = code


class AuthorizationRequired(AuthError):
    """Authorize (again): never authorized, or the refresh token was rejected."""

    default_state = AuthState.REAUTHORIZATION_REQUIRED


class PasswordUpdateRequired(AuthError):
    """Password grant: the stored password was rejected; store the new one."""

    default_state = AuthState.PASSWORD_UPDATE_REQUIRED


class TransientError(MailintakeError):
    exit_code = 4


class NetworkError(TransientError):
    pass


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(RateLimited):
    """The server's wait (a Retry-After another request was given) lasts until ``until``:
    the poll is skipped with this reason and does not count as a failure."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message, retry_after=max(0.0, (until - datetime.now(UTC)).total_seconds()))
        self.until = until


class AuthorizationPending(TransientError):
    """Device code flow: the user has not finished signing in yet; poll the token endpoint
    again after the interval (5 seconds longer when ``slow_down``). The device flow's
    polling loop catches it; it leaves the loop only if a server answers it elsewhere."""

    def __init__(self, slow_down: bool) -> None:
        super().__init__("authorization pending")
        self.slow_down = slow_down


class SourceError(MailintakeError):
    exit_code = 4


class MessageUnavailable(SourceError):
    """The server cannot give this one message (Graph cannot convert it, it vanished, a
    FETCH or RETR of it alone fails): a source yields it in the message's place, and the
    message fails on its own while the pass goes on with the others (engine.retries)."""


class SinkError(MailintakeError):
    exit_code = 4


class OutputUnavailable(SinkError):
    """The output did not answer or failed on its side (timeout, 5xx, 408, 429): the same
    message may go through later; several in a row stop a pass (engine.guard)."""


class AlertNotSent(MailintakeError):
    """An alert channel (webhook, SMTP server) did not take an alert; the message says why,
    without any secret. The alerter tries again at its next evaluation."""

    exit_code = 4


class LeaseLost(MailintakeError):
    exit_code = 1
