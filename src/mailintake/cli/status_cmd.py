"""``status``: per mailbox, its health (why, since when, what to do), enabled, authorization
state, last poll, last error and the last poll's warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailintake.cli.context import out, print_json, state

if TYPE_CHECKING:
    pass


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def _short(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` (UTC), for the table."""
    if not iso:
        return "never"
    from datetime import UTC, datetime

    return f"{datetime.fromisoformat(iso).astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show every mailbox's state."""
    from datetime import UTC, datetime

    from rich.table import Table

    from mailintake.health import refresh
    from mailintake.status import mailbox_status, scheduling_status

    store = state(ctx).store()
    now = datetime.now(UTC)
    refresh(store, now)  # records a health that changed since, with when it began
    with store.read() as repo:
        rows = mailbox_status(repo, now)
        scheduling = scheduling_status(repo, now)
    if as_json:
        print_json({"mailboxes": rows, "scheduling": scheduling})
        return
    if not rows:
        out.print(
            "no mailboxes yet: add one with mailintake apply FILE or mailintake mailboxes add"
        )
        return
    table = Table(
        "mailbox",
        "health",
        "protocol",
        "enabled",
        "authorization",
        "last poll",
        "imported",
        "failed",
        "last error",
    )
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['health']} since {_short(row['health_since'])}",
            row["protocol"],
            "yes" if row["enabled"] else "no",
            row["authorization_state"]
            + (f": {row['authorization_detail']}" if row["authorization_detail"] else ""),
            row["last_poll_at"] or "never",
            str(row["imported"]),
            str(row["failed"]),
            row["last_error"] or "",
        )
    out.print(table)
    for row in rows:
        if row["health"] not in ("healthy", "disabled"):
            out.print(f"{row['name']} is {row['health']}: {row['health_reason']}", markup=False)
            if row["health_action"]:
                out.print(f"  what to do: {row['health_action']}", markup=False)
        end = row["next_expiry"]
        if end and end["state"]:
            verb = "ended" if end["state"] == "expired" else "ends"
            out.print(
                f"{row['name']}: {end['kind'].replace('_', ' ')} {verb} "
                f"{_short(end['ends_at'])}: {end['detail']}",
                markup=False,
            )
            out.print(f"  what to do: {end['action']}", markup=False)
    for row in rows:
        if row.get("last_warning"):  # what the last poll overcame (a folder recreated…)
            out.print(f"\n{row['name']}: the last poll says: {row['last_warning']}")
    from mailintake.cli.messages_cmds import print_table

    for row in rows:
        if row["failed_messages"]:
            out.print(
                f"\n{row['name']}: messages that could not be imported "
                f"(mailintake messages retry|skip {row['name']} KEY)"
            )
            print_table(row["failed_messages"])
    _print_scheduling(scheduling)


def _print_scheduling(scheduling: dict[str, Any]) -> None:
    """The workers, and why intervals are not kept when they are not."""
    from rich.table import Table

    if scheduling["workers"]:
        table = Table("worker", "last heartbeat", "polls running", "concurrency")
        for w in scheduling["workers"]:
            beat = w["heartbeat_at"] + ("" if w["alive"] else " (stopped beating)")
            table.add_row(w["id"], beat, str(w["running"]), str(w["concurrency"]))
        out.print()
        out.print(table)
    if scheduling["problem"]:
        out.print(f"\nintervals not kept: {scheduling['problem']}", markup=False)
