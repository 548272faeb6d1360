"""Certificate sign-in when the tenant refuses the documented assertion form (PS256 +
``x5t#S256``) with AADSTS700027: the token request is sent once more as RS256 + ``x5t``, the
form that worked is logged and used first from then on. Against the sandbox identity
provider, told which forms the application's tenant accepts."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import pytest

from mailintake.errors import AuthError
from mailintake.oauth import assertion_forms
from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.observability.logging import configure as configure_logging
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.oauth import CERT_APP, Certificate, cert_mailbox

PS256 = "PS256+x5t#S256"
RS256 = "RS256+x5t"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    yield stream
    configure_logging("info")


@pytest.fixture
def accepting(idp: IdentityProvider) -> Iterator[list[str]]:
    """The forms the certificate application's tenant accepts (set by the test)."""
    assertion_forms.forget_all()
    forms: list[str] = []
    idp.apps[CERT_APP].assertion_forms = forms
    idp.reset_counters()
    yield forms
    idp.apps[CERT_APP].assertion_forms = None
    assertion_forms.forget_all()


def interaction() -> Interaction:
    return Interaction(show=lambda _: None, open_url=lambda _: None, ask=lambda _: "", timeout=5)


def test_after_aadsts700027_the_older_form_is_tried_and_remembered(
    store: Store,
    idp: IdentityProvider,
    certificate: Certificate,
    accepting: list[str],
    logs: io.StringIO,
) -> None:
    accepting.append(RS256)
    cert_mailbox(store, idp, certificate)
    clock = [dt.datetime.now(dt.UTC)]
    manager = TokenManager(store, now=lambda: clock[0])
    assert authorize(manager, "cert", interaction()).message.startswith("Login successful")
    sent = [(r["assertion_form"], r["status"]) for r in idp.token_requests]
    assert sent == [(PS256, 401), (RS256, 200)]
    text = logs.getvalue()
    assert "token.assertion_form" in text
    assert f"form={RS256}" in text
    # Remembered for this application: the next token is asked for in the form that worked.
    clock[0] += dt.timedelta(hours=2)
    assert manager.access_token("cert")
    assert [r["assertion_form"] for r in idp.token_requests] == [PS256, RS256, RS256]


def test_the_documented_form_is_sent_alone_where_it_is_accepted(
    store: Store, idp: IdentityProvider, certificate: Certificate, accepting: list[str]
) -> None:
    accepting.append(PS256)
    cert_mailbox(store, idp, certificate)
    authorize(TokenManager(store), "cert", interaction())
    assert [r["assertion_form"] for r in idp.token_requests] == [PS256]


def test_a_certificate_refused_in_both_forms_says_so_once(
    store: Store, idp: IdentityProvider, certificate: Certificate, accepting: list[str]
) -> None:
    cert_mailbox(store, idp, certificate)  # no form accepted: as an unregistered certificate
    with pytest.raises(AuthError) as caught:
        authorize(TokenManager(store), "cert", interaction())
    assert caught.value.code == "AADSTS700027"
    assert "upload it" in str(caught.value)
    assert [r["assertion_form"] for r in idp.token_requests] == [PS256, RS256]
