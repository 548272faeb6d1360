"""``status``: per mailbox, enabled, authorization state, last poll, last error and the
last poll's warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailintake.cli.context import out, print_json, state

if TYPE_CHECKING:
    pass


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show every mailbox's state."""
    from rich.table import Table

    from mailintake.status import mailbox_status, scheduling_status

    with state(ctx).store().read() as repo:
        rows = mailbox_status(repo)
        scheduling = scheduling_status(repo)
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
