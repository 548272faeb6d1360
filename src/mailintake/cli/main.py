"""The ``mailintake`` command: global options, the command groups, and exit codes.

Exit codes (CONTRACT §4): 0 success; 1 unexpected failure; 2 invalid input or
configuration; 3 a person must act; 4 a remote failure.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mailintake.cli import (
    admin_cmds,
    alerts_cmds,
    authorize_cmd,
    check_cmd,
    config_cmds,
    items,
    messages_cmds,
    poll_cmd,
    secrets_cmds,
    serve_cmd,
    status_cmd,
)
from mailintake.cli.context import CliState, err
from mailintake.errors import ConfigError, MailintakeError

app = typer.Typer(
    name="mailintake",
    help="Import mail from OAuth 2.0 mailboxes into a document-capture pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="State folder (default: $MAILINTAKE_HOME or ~/.local/share/mailintake)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL (default: $MAILINTAKE_DATABASE_URL or SQLite in the home).",
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="MAILINTAKE_LOG_LEVEL",
            help="debug, info, warning or error (log lines go to stderr, secrets masked).",
        ),
    ] = "warning",
    log_json: Annotated[bool, typer.Option("--log-json", help="Log lines as JSON.")] = False,
) -> None:
    from mailintake.observability.logging import configure as configure_logging

    configure_logging(log_level, json=log_json)
    ctx.obj = CliState(home=home, database_url=database_url)
    ctx.call_on_close(ctx.obj.close)


config_cmds.register(app)
status_cmd.register(app)
authorize_cmd.register(app)
check_cmd.register(app)
poll_cmd.register(app)
serve_cmd.register(app)
app.add_typer(items.group("server"), name="servers")
app.add_typer(items.group("mailbox"), name="mailboxes")
app.add_typer(items.group("output"), name="outputs")
app.add_typer(secrets_cmds.app, name="secrets")
app.add_typer(admin_cmds.app, name="admin")
app.add_typer(messages_cmds.app, name="messages")
app.add_typer(alerts_cmds.app, name="alerts")


def redact_text(text: str) -> str:
    """The text with secrets masked (the logging module is imported only when needed)."""
    from mailintake.observability.logging import redact_text as redact

    return redact(text)


# The global options that take a value: the word after one is not the command.
_VALUED = frozenset({"--home", "--database-url", "--log-level"})


def _command_word(argv: list[str]) -> str | None:
    """The command or group named on the command line, past the global options."""
    valued = False
    for word in argv:
        if valued:
            valued = False
        elif word == "--":
            return None
        elif word.startswith("-"):
            valued = word in _VALUED  # "--home=PATH" carries its value
        else:
            return word
    return None


def for_command(argv: list[str]) -> typer.Typer:
    """The app with only the command or group that ``argv`` names, and the global options.

    Typer makes a click command of every registered command at each run, reading each one's
    signature and annotations: ~35 ms of CPU for the whole tree, in every ``poll`` that cron
    starts, where one command is used. The whole app stays for ``--help``, a name it does not
    know (click suggests the nearest) and no command at all."""
    word = _command_word(argv)
    commands = [c for c in app.registered_commands if c.name == word]
    groups = [g for g in app.registered_groups if g.name == word]
    if not commands and not groups:
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = commands, groups
    return one


def run(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns errors into messages and exit codes."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = for_command(args)(args=args, prog_name="mailintake", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit's code here
            sys.exit(code)
    except ConfigError as exc:
        for line in exc.problems:
            err.print(line, markup=False)
        sys.exit(exc.exit_code)
    except MailintakeError as exc:
        err.print(f"error: {redact_text(str(exc))}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:  # the click usage errors, and the unexpected
        import click

        # Typer raises its own copies of click's usage errors (typer._click); both show
        # what was wrong with the command line.
        if isinstance(exc, click.ClickException | typer.exceptions.TyperException):
            show = getattr(exc, "show", None)
            if callable(show):
                show()
                sys.exit(2)
        if os.environ.get("MAILINTAKE_DEBUG"):
            raise
        message = redact_text(f"{exc.__class__.__name__}: {exc}")
        err.print(f"unexpected error: {message}", markup=False)
        sys.exit(1)
