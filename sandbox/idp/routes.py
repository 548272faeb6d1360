"""The HTTP surface: Entra's v2.0 endpoints under a tenant segment (oauth-facts §1.1), the
user-realm lookup MSAL uses, RFC 7662 introspection, and two sandbox-only helpers.

Introspection for Dovecot's ``passdb oauth2`` (introspection_mode = post): Dovecot sends
``POST /introspect`` with the form body ``token=<bearer token>`` (plus ``client_id`` and
``client_secret`` when configured); the answer's ``active`` must be true and, with
``username_attribute = username``, its ``username`` (the UPN; null for app-only tokens) must
equal the login name. Without ``introspection_open=True`` the caller must authenticate as a
registered app (HTTP Basic or body)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from sandbox.idp import pages
from sandbox.idp.clients import b64url_decode
from sandbox.idp.errors import EntraError, unknown_tenant
from sandbox.idp.grants import build_server
from sandbox.idp.tokens import DEVICE_GRANT, introspection, jwks

if TYPE_CHECKING:
    from sandbox.idp.server import IdentityProvider

ALIASES = ("organizations", "common", "consumers")


def create_app(provider: IdentityProvider) -> Flask:
    app = Flask("sandbox.idp")
    server = build_server(provider, app)
    json_response = provider.json_response

    @app.before_request
    def tenant_segment() -> Response | None:
        tenant = (request.view_args or {}).get("tenant")
        if tenant is not None:
            g.tenant = tenant
            # The token endpoint records its request first, then answers 90002 itself.
            if not provider.tenant_ok(tenant) and request.endpoint != "token":
                status, body, _headers = unknown_tenant(tenant)()
                return json_response(body, status)
        return None

    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def discovery(tenant: str) -> Response:
        base = f"{provider.base_url}/{tenant}/oauth2/v2.0"
        return json_response(
            {
                "issuer": f"{provider.base_url}/{provider.tenant_id}/v2.0",
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "device_authorization_endpoint": f"{base}/devicecode",
                "introspection_endpoint": f"{provider.base_url}/introspect",
                "jwks_uri": f"{provider.base_url}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "password",
                    DEVICE_GRANT,
                ],
                "code_challenge_methods_supported": ["S256", "plain"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    @app.get("/<tenant>/discovery/v2.0/keys")
    def keys(tenant: str) -> Response:
        return json_response(jwks(provider.signing_key))

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str) -> Any:
        grant_type = request.form.get("grant_type", "")
        auth = request.authorization
        entry: dict[str, Any] = {
            "grant_type": grant_type,
            "client_id": request.form.get("client_id") or (auth.username if auth else None),
            "tenant": tenant,
            "username": request.form.get("username"),
            "via": request.headers.get("Via"),
            "via_proxy": request.headers.get("Via") is not None,
            "assertion_form": _assertion_form(request.form.get("client_assertion")),
        }
        with provider.lock:
            provider.token_requests.append(entry)
        if provider.token_delay:
            time.sleep(provider.token_delay)
        refusal = (
            _tenant_refusal(grant_type, tenant.lower())
            if provider.tenant_ok(tenant)
            else unknown_tenant(tenant)
        )
        if refusal is not None:
            status, body, _headers = refusal()
            entry["status"] = status
            return json_response(body, status)
        answer = server.create_token_response()
        entry["status"] = answer.status_code
        return answer

    @app.post("/<tenant>/oauth2/v2.0/devicecode")
    def devicecode(tenant: str) -> Any:
        return server.create_endpoint_response("device_authorization")

    @app.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
    def authorize(tenant: str) -> Any:
        return pages.authorize(provider, server)

    @app.route("/devicelogin", methods=["GET", "POST"])
    def devicelogin() -> Any:
        return pages.devicelogin(provider)

    @app.get("/common/userrealm/<path:username>")
    def userrealm(username: str) -> Response:
        user = provider.user(username)
        domain = username.split("@")[-1]
        if user is None:
            known = domain.lower() == provider.domain.lower()
            return json_response(
                {
                    "ver": "1.0",
                    "account_type": "Managed" if known else "Unknown",
                    "domain_name": domain,
                    "cloud_instance_name": "microsoftonline.com",
                }
            )
        body: dict[str, Any] = {
            "ver": "1.0",
            "account_type": "Federated" if user.federated else "Managed",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
        if user.federated:
            body["federation_protocol"] = "WSTrust"
            body["federation_metadata_url"] = f"https://adfs.{domain}/adfs/services/trust/mex"
            body["federation_active_auth_url"] = (
                f"https://adfs.{domain}/adfs/services/trust/2005/usernamemixed"
            )
        return json_response(body)

    @app.post("/introspect")
    def introspect() -> Any:
        if provider.introspection_open:
            record = provider.access_tokens.get(request.form.get("token", ""))
            return json_response(introspection(record, request.args.get("resource")))
        return server.create_endpoint_response("introspection")

    @app.post("/_sandbox/users/<path:username>/password")
    def set_password(username: str) -> Response:
        data = request.get_json(silent=True) or {}
        if provider.user(username) is None:
            return json_response({"error": f"no user {username}"}, 404)
        provider.change_password(username, str(data.get("password", "")))
        return json_response({"changed": username})

    @app.post("/_sandbox/refresh-refusals")
    def refresh_refusals() -> Response:
        """``{"error", "code", "times", "client_id", "username", "text"}``: the next refresh
        requests are refused so (see ``IdentityProvider.refuse_next_refresh``)."""
        data = request.get_json(silent=True) or {}
        try:
            code, times = int(data.get("code", 70000)), int(data.get("times", 1))
        except (TypeError, ValueError):
            return json_response({"error": "code and times must be integers"}, 400)
        provider.refuse_next_refresh(
            str(data.get("error", "invalid_grant")),
            code,
            times=times,
            client_id=data.get("client_id"),
            username=data.get("username"),
            text=data.get("text"),
        )
        return json_response({"refusing": times})

    @app.get("/_sandbox/token-requests")
    def token_requests() -> Response:
        with provider.lock:
            return json_response({"token_requests": list(provider.token_requests)})

    return app


def _assertion_form(assertion: str | None) -> str | None:
    """The form of a client assertion, from its header: "PS256+x5t#S256", "RS256+x5t"."""
    if not assertion:
        return None
    try:
        header = json.loads(b64url_decode(assertion.split(".")[0]))
    except ValueError:
        return "malformed"
    if not isinstance(header, dict):
        return "malformed"
    thumbprint = "x5t#S256" if "x5t#S256" in header else "x5t" if "x5t" in header else "none"
    return f"{header.get('alg')}+{thumbprint}"


def _tenant_refusal(grant_type: str, tenant: str) -> EntraError | None:
    """Grants Entra refuses on a multi-tenant segment (oauth-facts §1.1, §1.3)."""
    if grant_type == "password" and tenant in ("common", "consumers"):
        return EntraError(
            "invalid_request",
            9001023,
            "The grant type isn't supported over the /common or /consumers endpoints. "
            "Please use the /organizations or tenant-specific endpoint.",
        )
    if grant_type == "client_credentials" and tenant in ALIASES:
        return EntraError(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by "
            "any provided credentials. Use a tenant-specific endpoint for client credentials.",
        )
    return None
