"""``alerts``: the conditions that hold now and what each channel was sent; ``alerts test``
sends a test alert to each channel and prints per channel ``ok`` or the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from mailintake.cli.context import out, print_json, state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

app = typer.Typer(
    help="Alerts: what holds now and what was sent (no command), or send a test alert.",
    invoke_without_command=True,
)


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@app.callback()
def overview(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the conditions that hold now and what was sent about them to each channel."""
    if ctx.invoked_subcommand is not None:
        return
    from mailintake.health import active_conditions
    from mailintake.store import alert_settings
    from mailintake.store import alerts as sent

    store = state(ctx).store()
    conditions = active_conditions(store, datetime.now(UTC))
    with store.read() as repo:
        settings = alert_settings.read(repo.conn, repo.box)
        records = sent.records(repo.conn)
    document: dict[str, Any] = {
        "channels": [c.name for c in settings.channels] if settings else [],
        "conditions": [
            {
                "key": c.key,
                "mailbox": c.mailbox,
                "kind": c.kind,
                "state": c.state,
                "summary": c.summary,
                "since": _when(c.since),
                "ends_at": _when(c.ends_at),
                "alerts": settings is not None and settings.alerts_on(c.kind, c.state),
            }
            for c in conditions
        ],
        "sent": [
            {
                "key": r.key,
                "channel": r.channel,
                "state": r.state,
                "first_sent_at": _when(r.first_sent_at),
                "last_sent_at": _when(r.last_sent_at),
                "failures": r.failures,
                "last_error": r.last_error,
            }
            for r in records
        ],
    }
    if as_json:
        print_json(document)
        return
    _print(document)


def _print(document: dict[str, Any]) -> None:
    if not document["channels"]:
        out.print("no alert channels: add an alerts section to the configuration", markup=False)
    if not document["conditions"]:
        out.print("all well: no condition holds", markup=False)
    for c in document["conditions"]:
        chosen = "" if c["alerts"] else " (not alerted: left out by alerts.kinds/states)"
        out.print(f"{c['key']}: {c['state']} since {c['since']}{chosen}", markup=False)
        out.print(f"  {c['summary']}", markup=False)
    for r in document["sent"]:
        if r["state"] is None:
            said = f"not sent yet ({r['failures']} failed tries: {r['last_error']})"
        else:
            said = f"{r['state']} sent {r['first_sent_at']}, last {r['last_sent_at']}"
            if r["last_error"]:
                said += f"; the last try failed: {r['last_error']}"
        out.print(f"{r['key']} -> {r['channel']}: {said}", markup=False)


@app.command("test")
def send_test_alert(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Send a test alert to each channel; print per channel ok or the reason (exit 4 if any
    failed, 2 if no channel is configured)."""
    from mailintake.alerts.runner import send_test

    outcomes = send_test(state(ctx).store())
    if as_json:
        print_json({"channels": [{"name": o.channel, "error": o.error} for o in outcomes]})
    else:
        if not outcomes:
            out.print("no alert channels: add an alerts section to the configuration")
        for o in outcomes:
            out.print(f"{o.channel}: {'ok' if o.ok else o.error}", markup=False)
    if not outcomes:
        raise typer.Exit(2)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(4)
