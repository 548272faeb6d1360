"""Graph's refusals of a mailbox → the fix (mailintake.oauth.graph_access)."""

from __future__ import annotations

from mailintake.errors import AuthorizationRequired
from mailintake.oauth.graph_access import Caller, denied, no_rights

APP = "11111111-2222-3333-4444-555555555555"
APP_CALLER = Caller("claims", "claims@contoso.com", None, APP)
DELEGATE = Caller("team", "team@contoso.com", "anna@contoso.com", APP)


def test_odata_disabled_for_an_application_names_rbac_and_the_access_policy() -> None:
    error = denied(APP_CALLER, "ErrorAccessDenied: Access to OData is disabled.", writing=False)
    assert isinstance(error, AuthorizationRequired)
    assert error.state == "error"
    text = str(error)
    assert text.startswith(
        "claims: Graph denied access to claims@contoso.com: ErrorAccessDenied: Access to "
        "OData is disabled. (An Exchange administrator has limited this application"
    )
    assert f"New-ServicePrincipal -AppId {APP} -ObjectId" in text
    assert '-Role "Application Mail.ReadWrite" -CustomResourceScope' in text
    assert f"Test-ApplicationAccessPolicy -Identity claims@contoso.com -AppId {APP}" in text
    assert "Limiting application permissions to specific Exchange Online mailboxes" in text
    assert "Role Based Access Control for Applications in Exchange Online" in text


def test_a_refused_change_offers_write_rights_or_keep() -> None:
    app = str(denied(APP_CALLER, "ErrorAccessDenied: Access is denied.", writing=True))
    assert "application permission Mail.ReadWrite" in app
    assert "after_import: keep" in app
    user = str(denied(DELEGATE, "ErrorAccessDenied: Access is denied.", writing=True))
    assert "anna@contoso.com may read team@contoso.com but not change its messages" in user
    assert "-AccessRights FullAccess" in user
    assert "after_import: keep" in user


def test_a_refused_read_for_a_delegate_asks_for_full_access() -> None:
    text = str(denied(DELEGATE, "ErrorAccessDenied: Access is denied.", writing=False))
    assert "anna@contoso.com needs Full Access to team@contoso.com" in text
    assert "Mail.ReadWrite.Shared" in text
    own = Caller("anna", "anna@contoso.com", "anna@contoso.com", APP)
    assert "delegated permission Mail.ReadWrite" in str(denied(own, "x", writing=False))


def test_not_found_meaning_no_rights() -> None:
    text = str(no_rights(DELEGATE, "MailboxNotEnabledForRESTAPI", "REST API is not yet supported."))
    assert "404 MailboxNotEnabledForRESTAPI for the folders of team@contoso.com" in text
    assert "needs Full Access" in text
    app = str(no_rights(APP_CALLER, "ErrorItemNotFound", "Not found."))
    assert "has an Exchange Online mailbox" in app
    assert "New-ManagementRoleAssignment" in app
