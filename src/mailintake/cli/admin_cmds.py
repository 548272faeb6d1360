"""``admin``: the web admin's password and the REST API's tokens."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import out, print_json, state
from mailintake.errors import ConfigError

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Sign-in to the web admin and tokens for the REST API.", no_args_is_help=True
)
token_app = typer.Typer(help="API tokens for the REST API.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from one line of stdin."),
    ] = False,
) -> None:
    """Set the password that signs in to the web admin (ends every session)."""
    from mailintake.store import admin

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConfigError(["password: nothing was read from stdin"])
    else:
        password = typer.prompt("New admin password", hide_input=True, confirmation_prompt=True)
    admin.set_admin_password(state(ctx).store(), password)
    out.print("admin password set; sign in to the web admin with it")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci or monitoring.")],
) -> None:
    """Make an API token and print it (it is shown only this once)."""
    from mailintake.store import admin

    token = admin.create_api_token(state(ctx).store(), name)
    typer.echo(token)
    if sys.stderr.isatty():
        typer.echo(
            "Keep this token now: it cannot be shown again. "
            "Send it as: Authorization: Bearer <token>",
            err=True,
        )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """List the API tokens by name (the tokens themselves are not kept)."""
    from mailintake.store import admin

    tokens = admin.list_api_tokens(state(ctx).store())
    if as_json:
        print_json(
            [
                {
                    "name": t.name,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                }
                for t in tokens
            ]
        )
        return
    if not tokens:
        out.print("no API tokens")
        return
    for t in tokens:
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        out.print(
            f"{t.name}  created {t.created_at:%Y-%m-%d %H:%M} UTC  last used {used}",
            markup=False,
        )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name.")],
) -> None:
    """Revoke an API token: requests carrying it are refused from now on."""
    from mailintake.store import admin

    admin.revoke_api_token(state(ctx).store(), name)
    out.print(f"API token {name} revoked", markup=False)
