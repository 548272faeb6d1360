"""A Microsoft Entra ID v2.0 stand-in for tests and demos (``python -m sandbox.idp``).

    idp = IdentityProvider(tenant_id=..., domain=..., access_token_lifetime=3599,
                           device_interval=5, device_code_lifetime=900,
                           introspection_open=False)
    idp.add_app(App(...)); idp.add_user(User(...))
    with idp.serve() as base_url: ...          # or idp.start(port) / idp.stop()
    idp.change_password(u, p); idp.expire_refresh_tokens(u); idp.lock_user(u)
    idp.token_requests; idp.reset_counters()

Modules: ``server`` (the directory and the server thread), ``routes`` (HTTP endpoints),
``grants`` (Authlib's grants and endpoints), ``clients`` (Entra's client authentication),
``tokens`` (what a token response holds), ``pages`` (login, consent, device pages),
``errors`` (Entra's error shape), ``config`` (YAML/JSON tenants), ``model`` (records).
"""

from sandbox.idp.model import App, User, daemon_app, desktop_app
from sandbox.idp.server import IdentityProvider

__all__ = ["App", "IdentityProvider", "User", "daemon_app", "desktop_app"]
