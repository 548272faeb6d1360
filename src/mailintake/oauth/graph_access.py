"""Graph's refusals of a mailbox (403, and the 404s Exchange gives when it means "no rights")
→ the error to raise, with a sentence naming the fix.

Exchange Online answers a caller without rights on a mailbox in several ways: 403
ErrorAccessDenied "Access is denied." (no permission), 403 ErrorAccessDenied "Access to OData
is disabled." (an application access policy or RBAC for Applications scope leaves the mailbox
out: concepts/auth-limit-mailbox-access.md, "Handling API errors"), and for another user's or
a shared mailbox often 404 — ErrorItemNotFound "The specified object was not found in the
store." (O365/python-o365#170, microsoftgraph/msgraph-sdk-powershell#622),
ErrorFolderNotFound (microsoft-graph-docs-contrib#4029) or MailboxNotEnabledForRESTAPI
(O365/python-o365#438).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailintake.enums import AuthState
from mailintake.errors import AuthorizationRequired

# 404 codes that, on the mailbox or its folder list, mean "you may not see this mailbox".
NOT_FOUND_MEANS_NO_RIGHTS = frozenset(
    {"ErrorItemNotFound", "ErrorFolderNotFound", "MailboxNotEnabledForRESTAPI"}
)
ODATA_DISABLED = "access to odata is disabled"

AAP_PAGE = (
    'Microsoft Learn "Limiting application permissions to specific Exchange Online mailboxes" '
    "(https://learn.microsoft.com/graph/auth-limit-mailbox-access)"
)
RBAC_PAGE = (
    'Microsoft Learn "Role Based Access Control for Applications in Exchange Online" '
    "(https://learn.microsoft.com/exchange/permissions-exo/application-rbac)"
)


@dataclass(frozen=True)
class Caller:
    """Who asked: the mailbox's name in mailintake, the address read, the signed-in user
    (None for an application token) and the application's client id."""

    name: str
    mailbox: str
    user: str | None
    client_id: str | None

    @property
    def app_only(self) -> bool:
        return self.user is None


def access_policy_fix(caller: Caller) -> str:
    app = caller.client_id or "<oauth.client_id>"
    return (
        f"An Exchange administrator has limited this application to some mailboxes and "
        f"{caller.mailbox} is not one of them: with RBAC for Applications, assign the role "
        f"to a scope that includes it (New-ServicePrincipal -AppId {app} -ObjectId <object id "
        "of the enterprise application>; New-ManagementRoleAssignment -App <that object id> "
        '-Role "Application Mail.ReadWrite" -CustomResourceScope <a management scope '
        f"including {caller.mailbox}>); with an application access policy, add the mailbox "
        "to the policy's mail-enabled security group (Add-DistributionGroupMember -Identity "
        f"<the group> -Member {caller.mailbox}) and check with Test-ApplicationAccessPolicy "
        f"-Identity {caller.mailbox} -AppId {app}. Changes can take an hour or more. "
        f"See {RBAC_PAGE} and {AAP_PAGE}."
    )


def denied(caller: Caller, detail: str, *, writing: bool) -> AuthorizationRequired:
    """A 403 from Graph; ``writing``: the request changes a message (mark read, move,
    delete)."""
    said = f"Graph denied access to {caller.mailbox}: {detail}"
    if ODATA_DISABLED in detail.lower():
        fix = access_policy_fix(caller) if caller.app_only else _delegate_read_fix(caller)
    elif writing and caller.app_only:
        fix = (
            "the application can read but not change messages: grant it the application "
            "permission Mail.ReadWrite (with admin consent), or set after_import: keep"
        )
    elif writing:
        fix = (
            f"{caller.user} may read {caller.mailbox} but not change its messages (read-only "
            "delegate or folder permission): give the user Full Access (Add-MailboxPermission "
            f"-Identity {caller.mailbox} -User {caller.user} -AccessRights FullAccess) or "
            "folder rights that allow editing, and the app Mail.ReadWrite.Shared; or set "
            "after_import: keep"
        )
    elif caller.app_only:
        fix = (
            "grant the application permission Mail.ReadWrite with admin consent; if it has it, "
            + access_policy_fix(caller)
        )
    else:
        fix = _delegate_read_fix(caller)
    return AuthorizationRequired(f"{caller.name}: {said} ({fix})", state=AuthState.ERROR)


def no_rights(caller: Caller, code: str, detail: str) -> AuthorizationRequired:
    """A 404 on the mailbox's folders: Exchange's way of saying "no rights" for another
    user's or a shared mailbox."""
    said = (
        f"Graph answered 404 {code} for the folders of {caller.mailbox}: {detail} Exchange "
        "answers so when the caller has no rights on the mailbox"
    )
    if caller.app_only:
        fix = (
            "check that the address is right and has an Exchange Online mailbox; "
            + access_policy_fix(caller)
        )
    else:
        fix = _delegate_read_fix(caller)
    return AuthorizationRequired(f"{caller.name}: {said} ({fix})", state=AuthState.ERROR)


def _delegate_read_fix(caller: Caller) -> str:
    if caller.user is not None and caller.user.lower() == caller.mailbox.lower():
        return (
            "the delegated permission Mail.ReadWrite is needed; authorize again after granting it"
        )
    return (
        f"{caller.user} needs Full Access to {caller.mailbox} (Add-MailboxPermission -Identity "
        f"{caller.mailbox} -User {caller.user} -AccessRights FullAccess; it can take an hour "
        "to apply) and the app the delegated permission Mail.ReadWrite.Shared"
    )


__all__ = ["NOT_FOUND_MEANS_NO_RIGHTS", "Caller", "access_policy_fix", "denied", "no_rights"]
