"""``status``: per mailbox, enabled, authorization state, last poll and last error."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mailintake.cli.context import out, print_json, state


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show every mailbox's state."""
    with state(ctx).store().read() as repo:
        rows: list[dict[str, Any]] = [
            {
                "name": r.spec.name,
                "protocol": str(r.spec.protocol),
                "enabled": r.spec.enabled is not False,
                "authorization_server": r.authorization_server,
                "grant_type": str(r.spec.oauth.grant_type) if r.spec.oauth else None,
                "authorization_state": r.auth_state,
                "authorization_detail": r.auth_detail,
                "last_poll_at": r.last_poll_at.isoformat() if r.last_poll_at else None,
                "last_error": r.last_error,
            }
            for r in repo.list_mailboxes()
        ]
    if as_json:
        print_json({"mailboxes": rows})
        return
    if not rows:
        out.print(
            "no mailboxes yet: add one with mailintake apply FILE or mailintake mailboxes add"
        )
        return
    table = Table("mailbox", "protocol", "enabled", "authorization", "last poll", "last error")
    for row in rows:
        table.add_row(
            row["name"],
            row["protocol"],
            "yes" if row["enabled"] else "no",
            row["authorization_state"],
            row["last_poll_at"] or "never",
            row["last_error"] or "",
        )
    out.print(table)
