"""``python -m sandbox.idp [--port 9000] [--config tenant.yaml]``: the identity provider alone,
with a demo tenant (or the one a config file describes, see ``sandbox.idp.config``), for
trying mailintake's Authorize action without a Microsoft tenant."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sandbox.idp.config import load_config
from sandbox.idp.model import User, daemon_app, desktop_app
from sandbox.idp.server import IdentityProvider

DEMO_APP = "11111111-2222-3333-4444-555555555555"
DEMO_DAEMON = "66666666-7777-8888-9999-000000000000"
DEMO_SECRET = "demo-client-secret"
DEMO_PASSWORD = "Demo-Password-1!"


def demo() -> IdentityProvider:
    idp = IdentityProvider(introspection_open=True)
    idp.add_app(desktop_app(DEMO_APP, "mailintake demo (desktop)"))
    idp.add_app(
        daemon_app(
            DEMO_DAEMON,
            "mailintake demo (daemon)",
            DEMO_SECRET,
            {
                "https://graph.microsoft.com": ["Mail.ReadWrite"],
                "https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"],
            },
        )
    )
    idp.add_user(User(username=f"demo@{idp.domain}", password=DEMO_PASSWORD))
    return idp


def describe(idp: IdentityProvider, base: str) -> list[str]:
    lines = [
        f"identity provider: {base}  (tenant {idp.tenant_id}, {idp.domain})",
        f"  authorize: {base}/{idp.tenant_id}/oauth2/v2.0/authorize",
        f"  token:     {base}/{idp.tenant_id}/oauth2/v2.0/token",
    ]
    for app in idp.apps.values():
        kind = "public client flows" if app.allow_public_client else "confidential"
        uris = ", ".join(f"{uri} ({platform})" for uri, platform in app.redirect_uris.items())
        secrets = ", ".join(app.secrets)
        lines.append(
            f"  app {app.client_id} '{app.name}' ({kind})"
            + (f" redirect {uris}" if uris else "")
            + (f" secret {secrets}" if secrets else "")
        )
    for user in idp.users.values():
        lines.append(f"  user {user.username}, password {user.password}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--config", type=Path, help="a YAML or JSON tenant description")
    args = parser.parse_args()
    idp = load_config(args.config) if args.config else demo()
    base = idp.start(args.port)
    for line in describe(idp, base):
        print(line, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        idp.stop()


if __name__ == "__main__":
    main()
