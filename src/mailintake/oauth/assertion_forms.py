"""Which client assertion form an application's tenant accepts, learnt per application.

The token request signs the documented form first (PS256 + ``x5t#S256``). Microsoft engineers
have reported AADSTS700027 for it where RS256 + SHA-1 ``x5t`` works
(https://github.com/MicrosoftDocs/entra-docs/pull/1301), and MSAL keeps that older form as
its fallback (msal/application.py, oauth-facts §1.4 [M1]). So after AADSTS700027 the request
is sent once more with the other form; the form that worked is logged
(``token.assertion_form``) and used first for that application from then on, in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from mailintake.errors import AuthError
from mailintake.oauth.assertion import PS256_FORM, RS256_FORM
from mailintake.observability.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
SIGNATURE_REFUSED = "AADSTS700027"

_working: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def preferred(token_endpoint: str, client_id: str) -> str:
    """The form to try first: the one that last worked for this application, or PS256."""
    with _lock:
        return _working.get((token_endpoint, client_id), PS256_FORM)


def remember(token_endpoint: str, client_id: str, form: str) -> None:
    with _lock:
        _working[(token_endpoint, client_id)] = form


def forget_all() -> None:
    """Forget what was learnt (a new process starts so; tests)."""
    with _lock:
        _working.clear()


def other(form: str) -> str:
    return RS256_FORM if form == PS256_FORM else PS256_FORM


def with_fallback(token_endpoint: str, client_id: str, mailbox: str, send: Callable[[str], T]) -> T:
    """``send(form)``, and once more with the other form if the signature was refused."""
    first = preferred(token_endpoint, client_id)
    try:
        return send(first)
    except AuthError as refused:
        if refused.code != SIGNATURE_REFUSED:
            raise
        second = other(first)
        try:
            answer = send(second)
        except AuthError as again:
            if again.code == SIGNATURE_REFUSED:
                raise refused from None  # neither form: the certificate itself is unknown
            raise
    remember(token_endpoint, client_id, second)
    log.info(
        "token.assertion_form",
        mailbox=mailbox,
        client_id=client_id,
        form=second,
        refused_form=first,
    )
    return answer
