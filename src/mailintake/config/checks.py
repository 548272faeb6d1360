"""Value checks users get wrong: endpoints, redirect URIs, tenants, scopes, proxies.

Each check returns an error message (without the path) or ``None``. Provider facts are cited
from shared reference material (oauth-facts §N).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from mailintake.config import clouds
from mailintake.config.clouds import Cloud
from mailintake.config.matrix import REFUSED_TENANT_ALIASES, TENANT_ALIASES, Grant, Protocol

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(
    r"^(?=.{4,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# user info (``user:password@``) before the host, with or without a scheme
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://)?)[^/?#@]*@")
# The fields of a document that hold a URL (or a host), by their path in an item.
URL_FIELDS = frozenset(
    {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "url",
        "graph_url",
        "host",
        "proxy.address",
        "oauth.authorization_endpoint",
        "oauth.token_endpoint",
        "oauth.device_authorization_endpoint",
        "oauth.redirect_uri",
    }
)

# Where the credentials a URL must not carry go instead. The messages never repeat the value:
# it holds a password.
NO_CREDENTIALS = "must not contain a user name or password"
PROXY_CREDENTIALS = f"{NO_CREDENTIALS}; put them in proxy.username and proxy.password"
CLIENT_CREDENTIALS = (
    f"{NO_CREDENTIALS}; the application signs in with oauth.client_id and oauth.client_secret"
)
WEBHOOK_CREDENTIALS = (
    f"{NO_CREDENTIALS}; send them in headers (e.g. Authorization), which are stored encrypted"
)
HOST_CREDENTIALS = f"{NO_CREDENTIALS}; the mailbox signs in as username, with OAuth"


def has_credentials(value: str) -> bool:
    """Whether ``value`` (a URL, or a host with or without a scheme) carries user info."""
    return bool(_USERINFO.match(value))


_PASSWORD = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://)?[^:/?#@]*):[^/?#@]*@")


def redact_password(value: str) -> str:
    """``value`` with the password of its user info (if any) shown as ``<redacted>``: for
    values stored before such URLs were refused."""
    return _PASSWORD.sub(r"\1:<redacted>@", value, count=1)


def without_credentials(value: str) -> str:
    """``value`` without its user info: what a form may show again after refusing it."""
    return _USERINFO.sub(r"\1", value, count=1)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(value: str) -> str | None:
    if has_credentials(value):
        return HOST_CREDENTIALS
    host = value.strip("[]")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not _HOST.match(value):
        return f"'{value}' is not a host name or IP address"
    return None


def check_endpoint(value: str, credentials: str = NO_CREDENTIALS) -> str | None:
    """An absolute https URL; plain http only on a loopback host. ``{tenant}`` may appear.
    ``credentials``: the message for a URL with a user name or password in it."""
    if has_credentials(value):
        return credentials
    parts = urlsplit(value.replace("{tenant}", "tenant"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"'{value}' is not an absolute http(s) URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"must use https (plain http is only allowed on a loopback host): '{value}'"
    if parts.fragment:
        return f"must not contain a fragment (#…): '{value}'"
    return None


def check_redirect_uri(value: str, *, microsoft: bool) -> str | None:
    """An absolute URI; http only for loopback (RFC 8252 §7.3, RFC 9700); no fragment."""
    if has_credentials(value):
        return NO_CREDENTIALS
    if re.match(r"^[A-Za-z0-9.-]+:\d+(/.*)?$", value):
        return f"'{value}' is not an absolute URI: it needs a scheme, e.g. http://{value}"
    parts = urlsplit(value)
    if not parts.scheme or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", parts.scheme):
        return f"'{value}' is not an absolute URI (it needs a scheme such as http:// or https://)"
    if parts.fragment:
        return f"must not contain a fragment (#…): '{value}'"
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            return f"'{value}' has no host"
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            return (
                "plain http is only allowed for a loopback redirect URI "
                f"(http://localhost or http://127.0.0.1): '{value}'"
            )
        # Entra does not support the IPv6 loopback in redirect URIs (oauth-facts §1.2).
        if microsoft and parts.hostname == "::1":
            return (
                "Microsoft does not accept [::1] in redirect URIs; "
                "use http://localhost or http://127.0.0.1"
            )
    return None


def check_tenant(value: str, grant: Grant) -> str | None:
    lowered = value.lower()
    if lowered in TENANT_ALIASES:
        if lowered in REFUSED_TENANT_ALIASES.get(grant, ()):
            if grant is Grant.CLIENT_CREDENTIALS:
                return (
                    f"grant_type client_credentials cannot use '{value}': app-only tokens need a "
                    "specific tenant; give your directory (tenant) ID or its verified domain"
                )
            return (
                f"grant_type {grant.value} cannot use '{value}': use 'organizations', your tenant "
                "ID or its verified domain (Microsoft refuses it with AADSTS9001023)"
            )
        return None
    if _GUID.match(value) or _DOMAIN.match(value):
        return None
    return (
        f"'{value}' is not a tenant: give the directory (tenant) ID GUID, a verified domain "
        "such as contoso.onmicrosoft.com, or one of organizations, common, consumers"
    )


def check_proxy_address(value: str) -> str | None:
    if has_credentials(value):
        return PROXY_CREDENTIALS
    text = value if "://" in value else f"http://{value}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        return f"'{value}' must be an http:// or https:// proxy address"
    if not parts.hostname:
        return f"'{value}' has no host"
    try:
        port = parts.port
    except ValueError:
        return f"'{value}' has an invalid port"
    if port is None:
        return f"'{value}' needs a port, for example http://proxy.example.com:3128"
    if parts.path not in ("", "/") or parts.query:
        return f"'{value}' must be only scheme, host and port"
    return None


# --- Microsoft scopes (oauth-facts §1.3, §1.8, §2.2; national clouds: config.clouds) -------

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def _exchange(cloud: Cloud) -> str:
    """How messages name the cloud's Exchange Online resource; both of its host names are
    App ID URIs of the one "Office 365 Exchange Online" resource (§2.2)."""
    return f"Exchange Online ({cloud.exchange_user_resource})"


def scope_resource(scope: str, cloud: Cloud = clouds.GLOBAL) -> str | None:
    """The resource a Microsoft scope asks for; ``None`` for OpenID Connect scopes."""
    if scope in OIDC_SCOPES:
        return None
    if "://" in scope:
        parts = urlsplit(scope)
        base = f"{parts.scheme}://{parts.netloc}".lower()
        return _exchange(cloud) if base in cloud.exchange_resources else base
    return cloud.graph_resource  # a bare name is a Microsoft Graph permission ([N3])


def _wanted(protocol: Protocol, cloud: Cloud) -> str:
    return cloud.graph_resource if protocol is Protocol.GRAPH else _exchange(cloud)


def _cloud_of(resource: str) -> Cloud | None:
    """The cloud a resource belongs to, when it is another cloud's Graph or Exchange."""
    return next(
        (
            c
            for c in clouds.CLOUDS
            if resource in (c.graph_resource, _exchange(c), *c.exchange_resources)
        ),
        None,
    )


def check_microsoft_scopes(
    scopes: Sequence[str], protocol: Protocol, grant: Grant, cloud: Cloud | None = None
) -> list[str]:
    cloud = cloud or clouds.GLOBAL
    problems: list[str] = []
    resources = {r for r in (scope_resource(s, cloud) for s in scopes) if r is not None}
    wanted = _wanted(protocol, cloud)
    for scope in scopes:
        resource = scope_resource(scope, cloud)
        if resource is None or resource == wanted:
            continue
        if protocol is not Protocol.GRAPH and "://" not in scope:
            user = cloud.exchange_user_resource
            full = f"{user}/IMAP.AccessAsUser.All"
            if protocol is Protocol.POP3:
                full = f"{user}/POP.AccessAsUser.All"
            if scope.startswith(("IMAP.", "POP.")):
                full = f"{user}/{scope}"
            problems.append(
                f"'{scope}' has no resource prefix, so Microsoft reads it as a Microsoft Graph "
                f"permission and the {protocol.value.upper()} server would reject the token; "
                f"write '{full}'"
            )
        elif (other := _cloud_of(resource)) is not None and other is not cloud:
            if resource in other.exchange_resources:
                resource = f"Exchange Online ({resource})"
            problems.append(
                f"'{scope}' is for {resource} in the {other.label}, but this mailbox signs in "
                f"to the {cloud.label}, whose tokens are for {_wanted(protocol, cloud)} "
                "(tokens of one cloud are not accepted in another)"
            )
        else:
            problems.append(
                f"'{scope}' is for {resource}, but protocol {protocol.value} needs a token for "
                f"{wanted}"
            )
    if len(resources) > 1:
        problems.append(
            "one token request may not mix resources ("
            + ", ".join(sorted(resources))
            + "); Microsoft answers AADSTS70011/AADSTS700022"
        )
    dynamic = [s for s in scopes if scope_resource(s, cloud) is not None]
    defaults = [s for s in dynamic if s.endswith("/.default")]
    if defaults and len(dynamic) > 1:
        problems.append("a <resource>/.default scope cannot be combined with other scopes")
    if grant is Grant.CLIENT_CREDENTIALS and (len(dynamic) != 1 or not defaults):
        example = (
            f"{cloud.graph_resource}/.default"
            if protocol is Protocol.GRAPH
            else f"{cloud.exchange_app_resource}/.default"
        )
        problems.append(
            f"grant_type client_credentials takes exactly one <resource>/.default scope, "
            f"for protocol {protocol.value}: '{example}'"
        )
    elif grant is Grant.CLIENT_CREDENTIALS and len(scopes) != len(dynamic):
        problems.append(
            "grant_type client_credentials gets no refresh token or ID token: "
            "remove offline_access/openid/profile/email"
        )
    return problems
