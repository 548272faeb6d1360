"""The web admin's pages over the same functions as the REST API: forms shaped by the
matrix, problems beside their fields, secrets never sent back."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store import imports
from mailintake.store.imports import ImportEntry
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.oauth import microsoft_at
from tests.support.proxy import Proxy
from tests.support.web import (
    CLIENT,
    PROXY_SECRET,
    SECRET,
    errors_beside,
    graph_form,
    notice_of,
)


def assert_no_inline_code(page: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\s(style|onclick|onload|onchange|hx-on[:\w-]*)=", page)
    assert "<style" not in page


def test_pages_render_without_inline_script(ui: TestClient) -> None:
    for path in ("/", "/mailboxes", "/mailboxes/new", "/servers", "/servers/new", "/imports"):
        answer = ui.get(path)
        assert answer.status_code == 200, path
        assert_no_inline_code(answer.text)
    for asset in ("app.js", "app.css", "htmx.min.js", "callback.js"):
        assert ui.get(f"/static/{asset}").status_code == 200


def test_the_form_follows_the_matrix(ui: TestClient) -> None:
    htmx = {"HX-Request": "true", "HX-Trigger-Name": "protocol"}
    imap = ui.post(
        "/mailboxes/form", data={"protocol": "imap", "oauth.grant_type": "password"}, headers=htmx
    ).text
    offered = re.findall(r'<option value="(\w+)"', imap.split('name="oauth.grant_type"')[1])
    assert "password" not in offered
    assert offered[0] == "client_credentials"
    graph = ui.post(
        "/mailboxes/form",
        data={"protocol": "graph", "oauth.grant_type": "client_credentials"},
        headers=htmx,
    ).text
    assert '<option value="MICROSOFT" selected>' in graph
    assert re.search(r'data-need="not_applicable" id="row-oauth-redirect_uri"', graph)
    assert re.search(r'name="oauth.redirect_uri" value="[^"]*" disabled', graph)
    # the server's values are filled in for the chosen grant
    assert "https://graph.microsoft.com/.default" in graph
    code = ui.post(
        "/mailboxes/form",
        data={"protocol": "imap", "oauth.grant_type": "authorization_code"},
        headers={**htmx, "HX-Trigger-Name": "oauth.grant_type"},
    ).text
    assert re.search(r'data-need="mandatory" id="row-oauth-redirect_uri"', code)
    assert "IMAP.AccessAsUser.All" in code
    assert 'name="push"' in code
    pop3 = ui.post("/mailboxes/form", data={"protocol": "pop3"}, headers=htmx).text
    assert 'name="push"' not in pop3  # POP3 has no push


def test_a_graph_mailbox_picks_its_cloud_and_the_form_follows(
    ui: TestClient, ui_store: tuple[Settings, Store]
) -> None:
    htmx = {"HX-Request": "true", "HX-Trigger-Name": "oauth.authorization_server"}
    data = {
        "protocol": "graph",
        "oauth.grant_type": "client_credentials",
        "oauth.authorization_server": "MICROSOFT_US_GCC_HIGH",
    }
    page = ui.post("/mailboxes/form", data=data, headers=htmx).text
    picker = page.split('name="oauth.authorization_server"')[1].split("</select>")[0]
    # Graph offers Microsoft's clouds only, the picked one selected.
    assert re.findall(r'<option value="(\w+)"', picker) == [
        "MICROSOFT",
        "MICROSOFT_US_GCC_HIGH",
        "MICROSOFT_US_DOD",
        "MICROSOFT_CHINA",
    ]
    assert '<option value="MICROSOFT_US_GCC_HIGH" selected>' in picker
    assert "default https://graph.microsoft.us/v1.0" in page
    assert "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token" in page
    assert "https://graph.microsoft.us/.default" in page
    assert "graph.microsoft.com" not in page
    # Another server than Microsoft's is not kept for Graph.
    data["oauth.authorization_server"] = "GOOGLE"
    page = ui.post("/mailboxes/form", data=data, headers=htmx).text
    assert '<option value="MICROSOFT" selected>' in page
    # Saved, the mailbox keeps the pick and stores no copy of the cloud's values.
    form = graph_form(
        **{
            "oauth.authorization_server": "MICROSOFT_US_GCC_HIGH",
            "oauth.scopes": "https://graph.microsoft.us/.default",
            "oauth.token_endpoint": "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token",
        }
    )
    answer = ui.post("/mailboxes/new", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    with ui_store[1].read() as repo:
        record = repo.get_mailbox("claims")
    assert record.authorization_server == "MICROSOFT_US_GCC_HIGH"
    assert record.spec.oauth.token_endpoint is None  # type: ignore[union-attr]
    assert record.spec.oauth.scopes is None  # type: ignore[union-attr]


def test_problems_appear_beside_their_fields(ui: TestClient) -> None:
    form = graph_form(**{"oauth.client_id": "", "oauth.redirect_uri": "http://localhost/"})
    del form["oauth.client_secret"]
    answer = ui.post("/mailboxes/new", data=form)
    assert answer.status_code == 422
    errors = errors_beside(answer.text)
    assert errors["oauth.client_id"] == "required for grant_type client_credentials"
    assert errors["oauth.client_secret"] == "required for grant_type client_credentials"
    assert errors["oauth.redirect_uri"].startswith("not applicable to grant_type")
    assert SECRET not in answer.text
    assert PROXY_SECRET not in answer.text
    # through htmx the same problems come back as a swappable 200
    htmx = ui.post("/mailboxes/new", data=form, headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert errors_beside(htmx.text) == errors


def test_add_edit_and_keep_secrets(ui: TestClient, ui_store: tuple[Settings, Store]) -> None:
    store = ui_store[1]
    answer = ui.post("/mailboxes/new", data=graph_form(), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/mailboxes/claims")
    for path in ("/mailboxes/claims", "/mailboxes/claims/edit", "/", "/mailboxes"):
        page = ui.get(path).text
        assert SECRET not in page, path
        assert PROXY_SECRET not in page, path
        assert_no_inline_code(page)
    edit = ui.get("/mailboxes/claims/edit").text
    assert 'data-secret-state="oauth.client_secret">set<' in edit
    # values the server fills in are not stored as overrides
    with store.read() as repo:
        assert repo.get_mailbox("claims").spec.oauth.token_endpoint is None  # type: ignore[union-attr]
    assert 'name="push"' in edit
    changed = graph_form(
        **{"oauth.client_secret": "", "proxy.password": "", "folder": "Invoices", "push": "off"}
    )
    answer = ui.post("/mailboxes/claims/edit", data=changed, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    with store.read() as repo:
        record = repo.get_mailbox("claims", reveal=True)
    assert (record.spec.folder, record.spec.push) == ("Invoices", "off")
    assert '<option value="off" selected>' in ui.get("/mailboxes/claims/edit").text
    assert record.spec.oauth.client_secret.get_secret_value() == SECRET  # type: ignore[union-attr]
    assert record.spec.proxy.password.get_secret_value() == PROXY_SECRET  # type: ignore[union-attr]
    assert "Test connection" in ui.get("/mailboxes/claims").text
    result = ui.post("/mailboxes/claims/proxy/test", headers={"HX-Request": "true"}).text
    assert 'class="error"' in result
    assert PROXY_SECRET not in result
    ui.post("/mailboxes/claims/disable")
    assert ">no<" in ui.get("/mailboxes").text
    ui.post("/mailboxes/claims/enable")
    answer = ui.post("/mailboxes/claims/delete", follow_redirects=False)
    assert answer.status_code == 303
    assert 'data-mailbox="claims"' not in ui.get("/mailboxes").text


def test_banner_offers_the_one_fix(ui: TestClient, ui_store: tuple[Settings, Store]) -> None:
    store = ui_store[1]
    ui.post("/mailboxes/new", data=graph_form())
    password = graph_form(
        name="orders",
        **{"oauth.grant_type": "password", "oauth.password": "pw-Xy1!", "oauth.scopes": ""},
    )
    for key in ("oauth.client_secret", "oauth.token_endpoint"):
        del password[key]
    ui.post("/mailboxes/new", data=password)
    with store.begin() as repo:
        repo.set_auth_state("claims", "reauthorization_required", "AADSTS50173: sign in again")
        repo.set_auth_state("orders", "password_update_required", "AADSTS50126: wrong password")
    claims = ui.get("/mailboxes/claims").text
    assert 'id="banner"' in claims
    assert "Authorize again</button>" in claims
    orders = ui.get("/mailboxes/orders").text
    assert 'href="/mailboxes/orders/edit#row-oauth-password"' in orders
    assert "Test sign-in" in orders
    assert 'id="password-grant-note"' in orders
    dashboard = ui.get("/").text
    assert 'id="attention"' in dashboard
    assert "AADSTS50126" in dashboard


def test_manage_authorization_servers(ui: TestClient) -> None:
    form = {
        "name": "corp-idp",
        "authorization_endpoint": "https://idp.example.com/oauth2/authorize",
        "token_endpoint": "https://idp.example.com/oauth2/token",
        "scopes.imap": "imap offline_access",
    }
    answer = ui.post("/servers/new", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert 'data-server="corp-idp"' in ui.get("/servers").text
    bad = ui.post("/servers/corp-idp/edit", data={**form, "token_endpoint": "not a url"})
    assert bad.status_code == 422
    assert "token_endpoint" in errors_beside(bad.text)
    imap = {
        "name": "orders",
        "protocol": "imap",
        "host": "imap.example.com",
        "username": "orders@example.com",
        "output": "capture",
        "oauth.authorization_server": "corp-idp",
        "oauth.grant_type": "authorization_code",
        "oauth.client_id": CLIENT,
        "oauth.redirect_uri": "http://127.0.0.1:8080/api/v1/oauth/callback",
    }
    assert ui.post("/mailboxes/new", data=imap, follow_redirects=False).status_code == 303
    refused = ui.post("/servers/corp-idp/delete").text
    assert "used by mailbox(es) orders" in refused
    ui.post("/servers/MICROSOFT/edit", data={"token_endpoint": "https://login.example/token"})
    assert "edited" in ui.get("/servers").text
    reset = ui.post("/servers/MICROSOFT/reset").text
    assert "Reset MICROSOFT" in reset
    discovered = ui.post("/servers/discover", data={"issuer": "not a url"}).text
    assert "issuer" in errors_beside(discovered)


def test_notices_are_chosen_by_id_never_written_by_the_address(ui: TestClient) -> None:
    """A link can choose one of the page's own messages; it cannot put its words there."""
    phishing = "Your session expired: sign in at https://evil.example/login"
    for path in ("/", "/mailboxes", "/servers", "/imports"):
        page = ui.get(path, params={"notice": phishing}).text
        assert notice_of(page) is None, path
        assert "evil.example" not in page
    assert notice_of(ui.get("/mailboxes", params={"notice": "saved"}).text) == "Saved"
    assert notice_of(ui.get("/mailboxes", params={"notice": "nonsense"}).text) is None
    # A name is shown only when it is one of the names the page lists.
    servers = "/servers?notice=server_saved&name="
    assert notice_of(ui.get(servers + "MICROSOFT").text) == "Saved MICROSOFT"
    assert notice_of(ui.get(servers + "call-555-0100-to-unlock").text) is None
    # Counts are numbers, or nothing is shown.
    polled = "/mailboxes?notice=polled&imported=3&skipped=0&failed=1"
    assert notice_of(ui.get(polled).text) == "Polled: 3 imported, 0 skipped, 1 failed"
    for bad in ("imported=3%20messages%2C%20call%20us", "imported=-1", "imported=1e9", ""):
        page = ui.get(f"/mailboxes?notice=polled&skipped=0&failed=0&{bad}").text
        assert notice_of(page) is None, bad


def test_every_action_still_says_what_it_did(ui: TestClient) -> None:
    saved = ui.post("/mailboxes/new", data=graph_form())
    assert notice_of(saved.text) == "Saved", saved.text
    assert notice_of(ui.post("/mailboxes/claims/disable").text) == "Disabled"
    assert notice_of(ui.post("/mailboxes/claims/enable").text) == "Enabled"
    poll_page = ui.post("/mailboxes/claims/poll").text
    polled = notice_of(poll_page)
    assert polled is not None
    assert re.search(r'id="last-error">[^<]*could not connect to the proxy', poll_page)
    assert polled.startswith("Polled: 0 imported, 0 skipped, 0 failed. The poll did not finish")
    assert notice_of(ui.post("/mailboxes/claims/delete").text) == "Mailbox deleted"
    form = {"name": "corp-idp", "token_endpoint": "https://idp.example.com/oauth2/token",
            "authorization_endpoint": "https://idp.example.com/oauth2/authorize"}  # fmt: skip
    assert notice_of(ui.post("/servers/new", data=form).text) == "Saved corp-idp"
    assert notice_of(ui.post("/servers/corp-idp/delete").text) == "Server deleted"
    reset = ui.post("/servers/GOOGLE/reset").text
    assert notice_of(reset) == "Reset GOOGLE to its shipped values"
    refused = ui.post("/servers/MICROSOFT/delete")
    assert refused.status_code == 409
    assert (notice_of(refused.text) or "").startswith("Not deleted: authorization server MICROSOFT")


def test_what_a_sender_writes_is_shown_as_text(
    ui: TestClient, ui_store: tuple[Settings, Store]
) -> None:
    """A message's subject and sender come from whoever sent it: the pages show them as text,
    never as markup."""
    _, store = ui_store
    assert ui.post("/mailboxes/new", data=graph_form()).status_code == 200
    subject = "<script>alert('subject')</script>"
    sender = '"><img src=x onerror=alert(1)> <evil@example.com>'
    with store.begin() as repo:
        imports.record(
            repo.conn,
            "claims",
            [ImportEntry("k1", {"id": "1"}, "/tmp/x", subject=subject, sender=sender, size=1)],
        )
    for path in ("/imports", "/mailboxes/claims", "/"):
        page = ui.get(path).text
        assert subject not in page, path
        assert "<img" not in page, path
        assert_no_inline_code(page)
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;" in ui.get("/imports").text


def test_test_connection_goes_through_the_real_proxy(
    ui: TestClient, ui_store: tuple[Settings, Store], proxy: Proxy, idp: IdentityProvider
) -> None:
    """ "Test connection" reaches the token endpoint through the mailbox's proxy (tinyproxy
    logs it), and says exactly what is wrong with wrong proxy credentials."""
    store = ui_store[1]

    def configure(password: str) -> None:
        apply_document(
            store,
            {
                "authorization_servers": [microsoft_at(idp.base_url)],
                "mailboxes": [
                    {
                        "name": "proxied",
                        "protocol": "graph",
                        "username": "claims@contoso.com",
                        "output": "capture",
                        "proxy": {
                            "address": proxy.url,
                            "username": proxy.username,
                            "password": password,
                        },
                        "oauth": {
                            "grant_type": "client_credentials",
                            "tenant_id": idp.tenant_id,
                            "client_id": CLIENT,
                            "client_secret": SECRET,
                        },
                    }
                ],
            },
            {},
        )

    configure(proxy.password)
    token_path = f"/{idp.tenant_id}/oauth2/v2.0/token"
    before = proxy.requests_seen(token_path)
    works = ui.post("/mailboxes/proxied/proxy/test", headers={"HX-Request": "true"}).text
    assert "the connection works" in works, works
    assert f"through {proxy.url}" in works
    assert proxy.requests_seen(token_path) == before + 1
    configure("not-the-proxy-password")
    refused = ui.post("/mailboxes/proxied/proxy/test", headers={"HX-Request": "true"}).text
    assert 'class="error"' in refused
    assert "proxy" in refused.lower(), refused
    assert "not-the-proxy-password" not in refused
    assert proxy.password not in refused


def test_dashboard_shows_health_ends_and_activity(
    ui: TestClient, ui_store: tuple[Settings, Store]
) -> None:
    from datetime import UTC, date, datetime, timedelta

    from mailintake.store import health as health_store
    from mailintake.store import imports
    from mailintake.store.imports import ImportEntry

    store = ui_store[1]
    soon = (date.today() + timedelta(days=5)).isoformat()
    answer = ui.post("/mailboxes/new", data=graph_form(**{"oauth.client_secret_expires": soon}))
    assert answer.status_code in (200, 303), answer.text
    assert soon in ui.get("/mailboxes/claims/edit").text  # the form shows it again
    for name in ("orders", "invoices"):
        ui.post("/mailboxes/new", data=graph_form(name=name))
    now = datetime.now(UTC)
    with store.begin() as repo:
        repo.set_auth_state("orders", "reauthorization_required", "AADSTS50173: sign in again")
        for _ in range(3):
            repo.set_poll_result("invoices", "connection refused")
            health_store.record_poll(repo.conn, "invoices", "connection refused", now)
        imports.record(repo.conn, "claims", [ImportEntry(f"k{n}", {"id": n}) for n in range(4)])
        imports.failed(repo.conn, "claims", "bad", {"id": "bad"}, "gone")
    page = ui.get("/").text
    assert_no_inline_code(page)
    counts = dict(re.findall(r'data-health="(\w+)"><strong>(\d+)</strong>', page))
    assert counts == {
        "needs_a_person": "1",
        "failing": "1",
        "lagging": "0",
        "disabled": "0",
        "healthy": "1",
    }
    attention = page[page.index('id="attention"') : page.index('id="ends"')]
    listed = re.findall(r'<li data-mailbox="(\w+)" data-health="(\w+)"', attention)
    assert listed == [("orders", "needs_a_person"), ("invoices", "failing")]  # a person first
    assert "AADSTS50173: sign in again" in attention
    assert "mailintake authorize orders" in attention  # what to do
    assert "3 polls in a row failed; the last: connection refused" in attention
    ends = page[page.index('id="ends"') : page.index('id="activity"')]
    assert 'data-mailbox="claims" data-kind="client_secret" data-expiry="expiring"' in ends
    assert "oauth.client_secret_expires" in ends
    chart = page[page.index('id="activity"') :]
    assert "4 imported" in chart
    assert "1 failed" in chart
    assert len(re.findall(r'<rect class="bar bar-imported"', chart)) == 1  # one hour, 4 bars high
    assert re.search(r"<title>[^<]*: 4 imported</title>", chart)
    assert re.search(r"<title>[^<]*: 1 failed</title>", chart)
    invoices = ui.get("/mailboxes/invoices").text
    assert 'data-health="failing"' in invoices
    assert "What to do: fix what the last error says" in invoices
    claims = ui.get("/mailboxes/claims").text
    assert 'id="next-expiry" class="warning"' in claims
    assert f"its client secret expires on {soon}" in claims
    listing = ui.get("/mailboxes").text
    assert 'data-health="needs_a_person"' in listing
