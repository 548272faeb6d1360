"""``check``: try a mailbox end to end without importing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import out, print_json, state

if TYPE_CHECKING:
    pass


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    ctx: typer.Context,
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Obtain a token, sign in, open the folder; print what was found or why it failed."""
    from mailintake.engine.check import check_mailbox

    result = check_mailbox(state(ctx).store(), name)
    if as_json:
        print_json(result.as_dict())
    else:
        for step in result.steps:
            mark = "ok" if step["ok"] else "FAILED"
            out.print(f"{name}: {step['step']}: {mark}: {step['detail']}", markup=False)
    if not result.ok:
        raise typer.Exit(result.exit_code or 1)
