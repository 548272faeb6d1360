"""``authorize``: run the mailbox's grant and store the tokens (the seed's Authorize action)."""

from __future__ import annotations

import sys
import webbrowser
from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import err, out, print_json, state
from mailintake.errors import AuthError

if TYPE_CHECKING:
    pass


def register(app: typer.Typer) -> None:
    app.command("authorize")(authorize_cmd)


def _ask(prompt: str) -> str:
    if sys.stdin.isatty():
        return str(typer.prompt(prompt))
    err.print(f"{prompt}:", markup=False)
    return sys.stdin.readline()


def authorize_cmd(
    ctx: typer.Context,
    name: str,
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Print the login URL instead of opening a browser."),
    ] = False,
    device_code: Annotated[
        bool,
        typer.Option(
            "--device-code",
            help="Sign in on any device with a code (needs 'Allow public client flows').",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the sign-in to arrive.")
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Obtain and store the mailbox's tokens; says "Login successful" or exactly why not."""
    from mailintake.oauth.authorize import Interaction, authorize
    from mailintake.oauth.tokens import TokenManager

    interaction = Interaction(
        show=lambda text: err.print(text, markup=False, soft_wrap=True),
        open_url=None if no_browser else webbrowser.open,
        ask=_ask,
        timeout=timeout,
    )
    manager = TokenManager(state(ctx).store())
    try:
        result = authorize(manager, name, interaction, device_code=device_code)
    except AuthError as exc:
        if as_json:
            print_json(
                {
                    "mailbox": name,
                    "authorization_state": exc.state,
                    "message": str(exc),
                    "code": exc.code,
                }
            )
            raise typer.Exit(exc.exit_code) from None
        err.print(f"authorization state: {exc.state}", markup=False)
        raise
    if as_json:
        print_json(result.as_dict())
    else:
        out.print(f"{name}: {result.message}", markup=False)
