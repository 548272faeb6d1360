"""``python -m sandbox.idp [--port 9000]``: the identity provider alone, with a demo tenant,
for trying mailintake's Authorize action without a Microsoft tenant."""

from __future__ import annotations

import argparse
import time

from sandbox.idp.model import App, User
from sandbox.idp.server import IdentityProvider

DEMO_APP = "11111111-2222-3333-4444-555555555555"
DEMO_DAEMON = "66666666-7777-8888-9999-000000000000"
DEMO_SECRET = "demo-client-secret"


def demo() -> IdentityProvider:
    idp = IdentityProvider(introspection_open=True)
    idp.add_app(
        App(
            client_id=DEMO_APP,
            name="mailintake demo (desktop)",
            redirect_uris={"http://localhost/": "public"},
            allow_public_client=True,
        )
    )
    idp.add_app(
        App(
            client_id=DEMO_DAEMON,
            name="mailintake demo (daemon)",
            secrets={DEMO_SECRET: None},
            application_permissions={
                "https://graph.microsoft.com": ["Mail.ReadWrite"],
                "https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"],
            },
        )
    )
    idp.add_user(User(username=f"demo@{idp.domain}", password="Demo-Password-1!"))
    return idp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    port = parser.parse_args().port
    idp = demo()
    base = idp.start(port)
    print(f"identity provider: {base}  (tenant {idp.tenant_id}, {idp.domain})")
    print(f"  authorize: {base}/{idp.tenant_id}/oauth2/v2.0/authorize")
    print(f"  token:     {base}/{idp.tenant_id}/oauth2/v2.0/token")
    print(f"  public client {DEMO_APP} (redirect http://localhost/)")
    print(f"  daemon client {DEMO_DAEMON}, secret {DEMO_SECRET}")
    print(f"  user demo@{idp.domain}, password Demo-Password-1!")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        idp.stop()


if __name__ == "__main__":
    main()
