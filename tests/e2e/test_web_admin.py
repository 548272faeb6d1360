"""An administrator's journeys through the web admin in Chromium, in order: log in, add an
authorization server by discovery, add an IMAP mailbox and authorize it in the login popup,
import, add a Graph mailbox with client credentials, break the matrix in the form, and recover
a mailbox after its user's password changed. Each step saves a screenshot for the docs."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page, expect

from tests.support.web_admin import (
    ADMIN_PASSWORD,
    ALICE,
    ALICE_PASSWORD,
    CLAIMS,
    DEVICE_APP,
    GRAPH_APP,
    GRAPH_SECRET,
    TENANT,
    WEB_APP,
    WEB_SECRET,
    Sandbox,
    screenshot,
)

# Steps on one browser page, in order (tests/conftest.py: IN_ORDER_MODULES); long: started
# first when the tests run in several processes.
pytestmark = pytest.mark.slow

NEW_PASSWORD = "Alice-Changed-Password-2!"
IMAP_SCOPES = "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"


def message(subject: str, sender: str = "orders@shop.example") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ALICE
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@shop.example>"
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg.set_content(f"{subject}\r\n")
    msg.add_attachment(b"%PDF-1.7 " + subject.encode(), "application", "pdf", filename="a.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def settled(page: Page) -> None:
    """Wait until htmx has swapped the form in and made its selects live again."""
    page.wait_for_function(
        """() => {
            const grant = document.querySelector("select[name='oauth.grant_type']");
            return grant && grant["htmx-internal-data"]
                && !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling");
        }"""
    )


def choose(page: Page, select: str, value: str) -> None:
    """Choose in a select that re-renders the form (protocol, server, grant type)."""
    settled(page)
    page.select_option(select, value)
    page.wait_for_function(
        "([s, v]) => { const e = document.querySelector(s); return e && e.value === v; }",
        arg=[select, value],
    )
    settled(page)


def sign_in_in_popup(page: Page, button: str, password: str) -> None:
    with page.expect_popup() as opened:
        page.click(button)
    popup = opened.value
    popup.wait_for_selector("form#login")
    popup.fill("form#login input[name=username]", ALICE)
    popup.fill("form#login input[name=password]", password)
    popup.click("form#login button[type=submit]")
    expect(page.locator("#authorize-outcome")).to_contain_text("Login successful")


def test_log_in(page: Page, sandbox: Sandbox) -> None:
    page.goto("/")
    expect(page).to_have_url(f"{sandbox.base_url}/login?next=/")
    page.fill("input[name=password]", "wrong")
    page.press("input[name=password]", "Enter")
    expect(page.locator("#login-error")).to_be_visible()
    page.fill("input[name=password]", ADMIN_PASSWORD)
    screenshot(page, "01-login")
    page.press("input[name=password]", "Enter")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_add_a_custom_authorization_server(page: Page, sandbox: Sandbox) -> None:
    page.goto("/servers/new")
    page.fill("input[name=name]", "sandbox-idp")
    page.fill("input[name=issuer]", f"{sandbox.idp.base_url}/{TENANT}/v2.0")
    page.click("#discover")
    token = page.locator("input[name=token_endpoint]")
    expect(token).to_have_value(f"{sandbox.idp.base_url}/{TENANT}/oauth2/v2.0/token")
    page.fill("input[name='scopes.imap']", IMAP_SCOPES)
    screenshot(page, "02-add-authorization-server")
    page.click("button.primary")
    row = page.locator("tr[data-server=sandbox-idp]")
    expect(row).to_contain_text(f"{TENANT}/oauth2/v2.0/authorize")
    screenshot(page, "03-authorization-servers")


def test_imap_mailbox_authorized_in_the_login_popup(page: Page, sandbox: Sandbox) -> None:
    page.goto("/mailboxes/new")
    choose(page, "select[name='oauth.authorization_server']", "sandbox-idp")
    expect(page.locator("textarea[name='oauth.scopes']")).to_have_value(IMAP_SCOPES)
    page.fill("input[name=name]", "invoices")
    page.fill("input[name=host]", sandbox.dovecot.host)
    page.fill("input[name=port]", str(sandbox.dovecot.imap_port))
    page.select_option("select[name=security]", "none")
    page.fill("input[name=username]", ALICE)
    page.fill("input[name='oauth.client_id']", WEB_APP)
    page.fill("input[name='oauth.client_secret']", WEB_SECRET)
    redirect = page.locator("input[name='oauth.redirect_uri']")
    expect(redirect).to_have_value(f"{sandbox.base_url}/api/v1/oauth/callback")
    page.select_option("select[name=output]", "capture")
    screenshot(page, "04-imap-mailbox-authorization-code")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Mailbox invoices")
    expect(page.locator("#auth-state")).to_contain_text("not authorized")
    sign_in_in_popup(page, "#authorize", ALICE_PASSWORD)
    expect(page.locator("#auth-state")).to_contain_text("authorized")
    screenshot(page, "05-login-successful")


def test_poll_and_see_the_imported_messages(page: Page, sandbox: Sandbox) -> None:
    for n in (1, 2, 3):
        sandbox.dovecot.deliver(ALICE, message(f"Order {n}"))
    page.goto("/mailboxes/invoices")
    page.click("#poll-now")
    expect(page.locator(".notice")).to_contain_text("Polled: 3 imported")
    table = page.locator("table.imports")
    for n in (1, 2, 3):
        expect(table).to_contain_text(f"Order {n}")
    expect(table).to_contain_text("orders@shop.example")
    screenshot(page, "06-imported-messages")


def test_graph_mailbox_with_client_credentials(page: Page, sandbox: Sandbox) -> None:
    sandbox.graph.add_mailbox(CLAIMS)
    sandbox.graph.deliver(CLAIMS, message("Claim 7", "claims@insurer.example"))
    page.goto("/mailboxes/new")
    choose(page, "select[name=protocol]", "graph")
    expect(page.locator("#row-oauth-authorization_server")).to_contain_text("MICROSOFT")
    choose(page, "select[name='oauth.grant_type']", "client_credentials")
    expect(page.locator("#row-oauth-redirect_uri")).to_contain_text("not applicable")
    expect(page.locator("input[name='oauth.redirect_uri']")).to_be_disabled()
    offered = page.locator("select[name='oauth.grant_type'] option").all_inner_texts()
    assert "Resource Owner Password Credentials" in offered
    page.fill("input[name=name]", "claims")
    page.fill("input[name=graph_url]", sandbox.graph.base_url)
    page.fill("input[name=username]", CLAIMS)
    page.fill("input[name='oauth.tenant_id']", TENANT)
    page.fill("input[name='oauth.client_id']", GRAPH_APP)
    page.fill("input[name='oauth.client_secret']", GRAPH_SECRET)
    page.select_option("select[name=output]", "capture")
    screenshot(page, "07-graph-mailbox-client-credentials")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Mailbox claims")
    page.click("#authorize")
    expect(page.locator("#authorize-outcome")).to_contain_text("Login successful")
    page.click("#poll-now")
    expect(page.locator(".notice")).to_contain_text("Polled: 1 imported")
    expect(page.locator("table.imports")).to_contain_text("Claim 7")
    assert GRAPH_SECRET not in page.content()
    page.goto("/")
    expect(page.locator("article[data-mailbox=claims] .imported")).to_have_text("1")
    expect(page.locator("article[data-mailbox=invoices] .imported")).to_have_text("3")
    expect(page.locator("#health-counts [data-health=healthy] strong")).to_have_text("2")
    expect(page.locator("#health-counts [data-health=failing] strong")).to_have_text("0")
    expect(page.locator("article[data-mailbox=claims] .health")).to_have_text("healthy")
    expect(page.locator("#attention")).to_have_count(0)
    expect(page.locator("#activity")).to_contain_text("4 imported")
    expect(page.locator("#activity svg rect.bar-imported").first).to_be_attached()
    screenshot(page, "08-dashboard")


def test_matrix_problems_beside_their_fields(page: Page) -> None:
    page.goto("/mailboxes/new")
    choose(page, "select[name='oauth.authorization_server']", "sandbox-idp")
    expect(page.locator("textarea[name='oauth.scopes']")).to_have_value(IMAP_SCOPES)
    page.fill("input[name=name]", "broken")
    page.fill("input[name=host]", "imap.example.com")
    page.fill("input[name='oauth.redirect_uri']", "")
    page.select_option("select[name=output]", "capture")
    page.click("button[type=submit].primary")
    problems = {
        "username": "required",
        "oauth.client_id": "required for grant_type authorization_code",
        "oauth.redirect_uri": "required for grant_type authorization_code",
    }
    for field, text in problems.items():
        beside = page.locator(f"#row-{field.replace('.', '-')} [data-error-for='{field}']")
        expect(beside).to_contain_text(text)
    screenshot(page, "09-matrix-problems")


def test_device_code_shows_the_code_and_waits_for_the_sign_in(page: Page, sandbox: Sandbox) -> None:
    page.goto("/mailboxes/new")
    choose(page, "select[name='oauth.authorization_server']", "sandbox-idp")
    choose(page, "select[name='oauth.grant_type']", "device_code")
    expect(page.locator("input[name='oauth.redirect_uri']")).to_be_disabled()
    page.fill("input[name=name]", "scans")
    page.fill("input[name=host]", sandbox.dovecot.host)
    page.fill("input[name=port]", str(sandbox.dovecot.imap_port))
    page.select_option("select[name=security]", "none")
    page.fill("input[name=username]", ALICE)
    page.fill("input[name='oauth.client_id']", DEVICE_APP)
    device = page.locator("input[name='oauth.device_authorization_endpoint']")
    if not device.input_value():
        device.fill(f"{sandbox.idp.base_url}/{TENANT}/oauth2/v2.0/devicecode")
    page.select_option("select[name=output]", "capture")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Mailbox scans")
    page.click("#authorize")
    code = page.locator("#authorize-outcome code.user-code")
    expect(code).to_have_count(1)
    link = page.locator("#authorize-outcome a").get_attribute("href")
    assert link is not None
    screenshot(page, "12-device-code")
    phone = page.context.new_page()  # the user signs in elsewhere, with the code shown
    phone.goto(link)
    phone.fill("form#devicelogin input[name=user_code]", code.inner_text())
    phone.click("form#devicelogin button[type=submit]")
    phone.locator("form#login, form#consent").first.wait_for()
    if phone.locator("form#login").count():  # not signed in to the provider in this browser
        phone.fill("form#login input[name=username]", ALICE)
        phone.fill("form#login input[name=password]", ALICE_PASSWORD)
        phone.click("form#login button[type=submit]")
    phone.click("form#consent button[value=accept]")
    expect(phone.locator("#done")).to_be_visible()
    phone.close()
    expect(page.locator("#authorize-outcome")).to_contain_text("Login successful")
    expect(page.locator("#auth-state")).to_contain_text("authorized")


def test_password_change_then_authorize_again(page: Page, sandbox: Sandbox) -> None:
    sandbox.idp.change_password(ALICE, NEW_PASSWORD)
    with sandbox.idp.lock:  # a password change also ends the user's sign-in sessions
        for session in [k for k, v in sandbox.idp.sessions.items() if v == ALICE]:
            del sandbox.idp.sessions[session]
    # The access token in hand ends now (it is refused): a refresh is due, and refused.
    sandbox.idp.expire_access_tokens(ALICE)
    sandbox.dovecot.deliver(ALICE, message("Order 4"))
    page.goto("/mailboxes/invoices")
    page.click("#poll-now")
    expect(page.locator("#auth-state")).to_contain_text("authorize again")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Authorize again")
    screenshot(page, "10-reauthorization-required")
    page.goto("/")
    expect(page.locator("#attention")).to_contain_text("invoices")
    person = page.locator("#attention li[data-mailbox=invoices][data-health=needs_a_person]")
    expect(person).to_contain_text("What to do: authorize it again")
    expect(page.locator("#health-counts [data-health=needs_a_person] strong")).to_have_text("1")
    page.goto("/mailboxes/invoices")
    sign_in_in_popup(page, "#banner [data-authorize]", NEW_PASSWORD)
    expect(page.locator("#banner")).to_have_count(0)
    page.click("#poll-now")
    expect(page.locator(".notice")).to_contain_text("Polled: 1 imported")
    expect(page.locator("#auth-state")).to_contain_text("authorized")
    expect(page.locator("table.imports")).to_contain_text("Order 4")
    screenshot(page, "11-recovered")
