"""``python -m sandbox.graph``: an identity provider and the Graph emulator with a demo
mailbox, until Ctrl-C."""

from __future__ import annotations

import contextlib
import threading
from email.message import EmailMessage

from sandbox.graph.server import GraphEmulator
from sandbox.idp import IdentityProvider, User, daemon_app, desktop_app

DEMO_APP = "a0000000-0000-4000-8000-00000000000a"
DEMO_SECRET = "demo-secret-Value~1"
DEMO_PUBLIC_APP = "d0000000-0000-4000-8000-00000000000d"


def demo_message(number: int, to: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Supplier <billing@fabrikam.example>"
    message["To"] = to
    message["Subject"] = f"Invoice {number:04d}"
    message["Message-ID"] = f"<invoice-{number}@fabrikam.example>"
    message.set_content(f"Please find invoice {number:04d} attached.")
    message.add_attachment(
        b"%PDF-1.4 demo",
        maintype="application",
        subtype="pdf",
        filename=f"invoice-{number:04d}.pdf",
    )
    return message.as_bytes()


def main() -> None:
    idp = IdentityProvider()
    address, user = f"invoices@{idp.domain}", f"anna@{idp.domain}"
    idp.add_app(
        daemon_app(
            DEMO_APP,
            "mail intake (app-only)",
            DEMO_SECRET,
            {"https://graph.microsoft.com": ["Mail.ReadWrite"]},
        )
    )
    idp.add_app(desktop_app(DEMO_PUBLIC_APP, "mail intake (desktop)"))
    idp.add_user(User(username=user, password="Anna-Password-1!", consented_apps={DEMO_PUBLIC_APP}))
    graph = GraphEmulator(idp)
    graph.add_mailbox(user)
    graph.add_mailbox(address, delegates={user})
    graph.add_folder(address, "Processed")
    for number in range(1, 13):
        graph.deliver(address, demo_message(number, address))
    with idp.serve() as login, graph.serve() as base:
        print(f"identity provider: {login}  (token: {login}/{idp.tenant_id}/oauth2/v2.0/token)")
        print(f"graph_url:         {base}")
        print(
            f"app-only:          client_id={DEMO_APP} secret={DEMO_SECRET} "
            "scope=https://graph.microsoft.com/.default"
        )
        print(
            f"delegated:         client_id={DEMO_PUBLIC_APP} {user} / Anna-Password-1! "
            f"(shared mailbox {address}: Mail.ReadWrite.Shared)"
        )
        print(f"try:               GET {base}/users/{address}/mailFolders/inbox/messages")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
