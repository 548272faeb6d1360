"""Shared by the OAuth tests: a sandbox tenant like a customer's (``build_idp``; the
``certificate`` and ``idp`` fixtures of tests/integration/conftest.py serve it), mailboxes
pointing at it, and a "browser" that signs in through the sandbox's real login and consent
pages over HTTP."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx2

from mailintake.oauth.authorize import Interaction
from mailintake.services.apply import apply_document
from mailintake.store.repo import Store
from sandbox import http_clients
from sandbox.certs import pem_certificate, pem_key, rsa_key, self_signed
from sandbox.demo.tenant import microsoft_at
from sandbox.idp import App, IdentityProvider, User

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
DOMAIN = "contoso.onmicrosoft.com"
GRAPH_APP = "a0000000-0000-4000-8000-00000000000a"
CERT_APP = "c0000000-0000-4000-8000-00000000000c"
NATIVE_APP = "d0000000-0000-4000-8000-00000000000d"
WEB_APP = "e0000000-0000-4000-8000-00000000000e"
CONFIDENTIAL_ROPC_APP = "f0000000-0000-4000-8000-00000000000f"
GRAPH_SECRET = "graph-app-secret-Value~123"
OLD_SECRET = "graph-app-old-secret~456"
WEB_SECRET = "web-app-secret-Value~789"
ANNA = f"anna@{DOMAIN}"
ANNA_PASSWORD = "Anna-Password-1!"
BORIS = f"boris@{DOMAIN}"  # must do MFA
FEDERATED = f"fed@{DOMAIN}"
NATIVE_REDIRECT = "https://login.microsoftonline.com/common/oauth2/nativeclient"


@dataclass
class Certificate:
    cert_pem: str
    path: Path


def make_certificate(tmp: Path) -> Certificate:
    key = rsa_key()
    cert_pem = pem_certificate(self_signed(key)).decode()
    path = tmp / "app-cert.pem"
    path.write_text(cert_pem + pem_key(key).decode())
    path.chmod(0o600)
    return Certificate(cert_pem, path)


def build_idp(certificate: Certificate) -> IdentityProvider:
    idp = IdentityProvider(
        tenant_id=TENANT, domain=DOMAIN, access_token_lifetime=3599, device_interval=1
    )
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    idp.add_app(
        App(
            client_id=GRAPH_APP,
            name="mail intake (app-only)",
            secrets={GRAPH_SECRET: None, OLD_SECRET: past},
            application_permissions={
                "https://graph.microsoft.com": ["Mail.ReadWrite"],
                "https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"],
            },
        )
    )
    idp.add_app(
        App(
            client_id=CERT_APP,
            name="mail intake (certificate)",
            certificates=[certificate.cert_pem],
            application_permissions={"https://graph.microsoft.com": ["Mail.ReadWrite"]},
        )
    )
    idp.add_app(
        App(
            client_id=NATIVE_APP,
            name="mail intake (desktop)",
            redirect_uris={"http://localhost/": "public", NATIVE_REDIRECT: "public"},
            allow_public_client=True,
        )
    )
    idp.add_app(
        App(
            client_id=WEB_APP,
            name="mail intake (web)",
            secrets={WEB_SECRET: None},
            redirect_uris={"http://127.0.0.1/api/v1/oauth/callback": "web"},
        )
    )
    idp.add_app(
        App(client_id=CONFIDENTIAL_ROPC_APP, name="confidential", secrets={"x-secret": None})
    )
    idp.add_user(User(username=ANNA, password=ANNA_PASSWORD, consented_apps={NATIVE_APP}))
    idp.add_user(
        User(username=BORIS, password="Boris-Password-2!", mfa=True, consented_apps={NATIVE_APP})
    )
    idp.add_user(User(username=f"carla@{DOMAIN}", password="Carla-Password-4!"))  # no consent
    idp.add_user(
        User(
            username=FEDERATED,
            password="Fed-Password-3!",
            federated=True,
            consented_apps={NATIVE_APP},
        )
    )
    return idp


def mailbox(name: str, grant: str, **oauth: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"grant_type": grant, "tenant_id": TENANT}
    fields.update(oauth)
    box: dict[str, Any] = {
        "name": name,
        "protocol": "graph",
        "username": fields.pop("username", ANNA),
        "oauth": fields,
    }
    proxy = fields.pop("proxy", None)
    if proxy is not None:
        box["proxy"] = proxy
    return box


def configure(store: Store, base: str, *boxes: dict[str, Any]) -> None:
    apply_document(
        store,
        {"authorization_servers": [microsoft_at(base)], "mailboxes": list(boxes)},
        {},
    )


def cert_mailbox(store: Store, idp: IdentityProvider, certificate: Certificate) -> None:
    """The Graph mailbox "cert", signed in by CERT_APP with its certificate."""
    configure(
        store,
        idp.base_url,
        mailbox(
            "cert",
            "client_credentials",
            client_id=CERT_APP,
            client_certificate=str(certificate.path),
        ),
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "fields": {}, "buttons": {}}
            self.forms[a.get("id", f"form{len(self.forms)}")] = self._current
        elif self._current is not None and tag == "input" and a.get("name"):
            self._current["fields"][a["name"]] = a.get("value", "")
        elif self._current is not None and tag == "button" and a.get("name"):
            self._current["buttons"].setdefault(a["name"], []).append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(page: str) -> dict[str, dict[str, Any]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


class Browser:
    """Signs in on the sandbox's pages the way a person would, over plain HTTP."""

    def __init__(self, username: str, password: str, *, consent: str = "accept") -> None:
        self.username = username
        self.password = password
        self.consent = consent
        self.final_url: str | None = None
        self.pages: list[str] = []

    def _submit(
        self, client: httpx2.Client, url: str, form: dict[str, Any], extra: dict[str, str]
    ) -> httpx2.Response:
        return client.post(urljoin(url, form["action"] or url), data={**form["fields"], **extra})

    def sign_in(self, url: str, *, follow_loopback: bool = True) -> str:
        """Returns the URL the login flow finally redirects to (the redirect URI)."""
        with http_clients.Client(follow_redirects=False, timeout=30) as client:
            answer = client.get(url)
            for _ in range(10):
                if answer.status_code in (301, 302, 303, 307):
                    location = urljoin(str(answer.url), answer.headers["location"])
                    if location.startswith(
                        str(answer.url).split("/", 3)[0] + "//" + str(answer.url).split("/", 3)[2]
                    ):
                        answer = client.get(location)
                        continue
                    self.final_url = location
                    if follow_loopback and re.match(
                        r"http://(127\.0\.0\.1|localhost)[:/]", location
                    ):
                        client.get(location)
                    return location
                page = answer.text
                self.pages.append(page)
                found = forms(page)
                if "login" in found:
                    extra = {"username": self.username, "password": self.password}
                    answer = self._submit(client, str(answer.url), found["login"], extra)
                elif "consent" in found:
                    answer = self._submit(
                        client, str(answer.url), found["consent"], {"consent": self.consent}
                    )
                else:
                    raise AssertionError(f"unexpected page: {page[:500]}")
        raise AssertionError("the sign-in did not end in a redirect")

    def sign_in_in_background(self, url: str) -> threading.Thread:
        thread = threading.Thread(target=self.sign_in, args=(url,), daemon=True)
        thread.start()
        return thread

    def device_sign_in(self, verification_uri: str, user_code: str) -> None:
        with http_clients.Client(follow_redirects=True, timeout=30) as client:
            answer = client.get(verification_uri)
            for _ in range(10):
                found = forms(answer.text)
                if "devicelogin" in found:
                    answer = self._submit(
                        client, str(answer.url), found["devicelogin"], {"user_code": user_code}
                    )
                elif "login" in found:
                    extra = {"username": self.username, "password": self.password}
                    answer = self._submit(client, str(answer.url), found["login"], extra)
                elif "consent" in found:
                    answer = self._submit(
                        client, str(answer.url), found["consent"], {"consent": self.consent}
                    )
                else:
                    return


def interaction(browser: Browser | None = None, pasted: list[str] | None = None) -> Interaction:
    """How a sign-in reaches the person: ``browser`` signs in at the URL shown, ``pasted``
    are the answers typed at the prompt."""
    shown: list[str] = []

    def open_url(url: str) -> None:
        if browser is not None:
            browser.sign_in(url)

    return Interaction(
        show=shown.append,
        open_url=open_url,
        ask=lambda _prompt: (pasted or [""]).pop(0),
        timeout=30,
    )
