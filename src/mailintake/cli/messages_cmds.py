"""``messages``: a mailbox's messages that could not be imported (failed, parked, skipped),
and a person's say on one: ``retry`` (at the next pass) or ``skip`` (never imported)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mailintake.cli.context import out, print_json, state

NameArg = Annotated[str, typer.Argument(help="The mailbox's name.")]
KeyArg = Annotated[str, typer.Argument(help="The message key, as `messages NAME` lists it.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


class _ListByDefault(TyperGroup):
    """``messages NAME`` is ``messages list NAME``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ListByDefault,
    help="Messages that could not be imported: list them, retry or skip one.",
    no_args_is_help=True,
)


@app.command("list")
def list_messages(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """List the mailbox's failed, parked and skipped messages, the newest first."""
    from mailintake.failed_messages import listing

    rows = listing(state(ctx).store(), name)
    if as_json:
        print_json({"mailbox": name, "messages": rows})
        return
    if not rows:
        out.print(f"{name}: every message was imported")
        return
    print_table(rows)


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("key", "status", "subject", "from", "size", "tries", "next try", "reason")
    for row in rows:
        table.add_row(
            row["key"],
            row["status"],
            row["subject"] or "(unknown)",
            row["from"] or "(unknown)",
            "" if row["size"] is None else str(row["size"]),
            str(row["tries"]),
            row["next_try_at"] or ("waits for a person" if row["status"] == "parked" else ""),
            row["reason"] or "",
        )
    out.print(table)


@app.command("retry")
def retry(ctx: typer.Context, name: NameArg, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Try the message again at the next pass (a parked or skipped one too)."""
    _act(ctx, name, key, "retry", as_json, "is tried again at the next pass")


@app.command("skip")
def skip(ctx: typer.Context, name: NameArg, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Never import the message and never try it again (it stays listed as skipped)."""
    _act(ctx, name, key, "skip", as_json, "is skipped: never imported, never tried again")


def _act(ctx: typer.Context, name: str, key: str, action: str, as_json: bool, said: str) -> None:
    from mailintake.failed_messages import act

    row = act(state(ctx).store(), name, key, action)
    if as_json:
        print_json({"mailbox": name, "message": row})
    else:
        out.print(f"{name}: message {key} {said}")
