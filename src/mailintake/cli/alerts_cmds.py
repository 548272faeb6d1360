"""``alerts test``: sends a test alert to each channel and prints per channel ``ok`` or the
reason it was not sent."""

from __future__ import annotations

from typing import Annotated

import typer

from mailintake.cli.context import out, print_json, state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

app = typer.Typer(help="Alerts by webhook and email: send a test alert.", no_args_is_help=True)


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
