"""``servers``, ``mailboxes`` and ``outputs``: list / show / add / edit / delete, validated by
the same rules as ``apply`` (each change is checked as a one-item configuration document).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mailintake.cli.context import environ, out, print_json, state
from mailintake.errors import ConfigError

INT_PATHS = {"port", "poll_interval"}
BOOL_PATHS = {"enabled"}
TITLES = {"server": "authorization server", "mailbox": "mailbox", "output": "output"}
PLURALS = {"server": "authorization servers", "mailbox": "mailboxes", "output": "outputs"}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="PATH=VALUE, e.g. oauth.client_id=… or oauth.scopes='\\[a, b]' (a list)."
    ),
]
UnsetOpt = Annotated[list[str] | None, typer.Option("--unset", help="Remove the field at PATH.")]
AskOpt = Annotated[
    list[str] | None,
    typer.Option("--ask", help="Prompt (hidden) for the value at PATH, e.g. oauth.client_secret."),
]
FileOpt = Annotated[
    Path | None, typer.Option("--file", "-f", help="A YAML file holding the item's fields.")
]


PATH_VALUES = {"oauth.client_certificate", "oauth.client_certificate_key"}


def parse_value(path: str, text: str) -> Any:
    from mailintake.config.loader import load_yaml_text
    from mailintake.config.models import MAILBOX_SECRET_FIELDS

    if path in MAILBOX_SECRET_FIELDS or path.startswith("headers."):
        return text
    if path in PATH_VALUES and text:
        return str(Path(text).expanduser().resolve())  # files are named from here
    if path in INT_PATHS:
        try:
            return int(text)
        except ValueError:
            return text  # validation reports it with its path
    if path in BOOL_PATHS and text.lower() in ("true", "false", "yes", "no", "on", "off"):
        return text.lower() in ("true", "yes", "on")
    if text.startswith(("[", "{")):
        try:
            return load_yaml_text(text, path)
        except ConfigError:
            raise ConfigError([f"{path}: '{text}' is not a valid list or mapping"]) from None
    return text


def collect(sets: list[str] | None, asks: list[str] | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for item in sets or []:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise ConfigError([f"--set {item}: expected PATH=VALUE"])
        changes[path.strip()] = parse_value(path.strip(), text)
    for path in asks or []:
        if sys.stdin.isatty():
            changes[path] = typer.prompt(f"{path}", hide_input=True)
        else:  # scripts: one line per --ask on standard input
            line = sys.stdin.readline()
            if not line:
                raise ConfigError([f"{path}: --ask found no line on standard input"])
            changes[path] = line.rstrip("\r\n")
    return changes


def _nested(changes: dict[str, Any]) -> dict[str, Any]:
    from mailintake.services.edit import set_path

    data: dict[str, Any] = {}
    for path, value in changes.items():
        set_path(data, path, value)
    return data


def _report(change: Any) -> None:
    out.print(str(change), markup=False)


COLUMNS = {
    "server": ("name", "builtin", "edited", "token_endpoint"),
    "output": ("name", "type", "path", "url"),
    "mailbox": (
        "name",
        "protocol",
        "enabled",
        "username",
        "authorization_server",
        "grant_type",
        "output",
        "authorization_state",
    ),
}


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "grant_type":
        value = (row.get("oauth") or {}).get("grant_type")
    if column == "enabled" and value is None:
        value = True
    return "" if value is None else str(value)


def group(kind: str) -> typer.Typer:
    app = typer.Typer(help=f"Manage {PLURALS[kind]}.", no_args_is_help=True)

    @app.command("list")
    def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """List them all."""
        from rich.table import Table

        from mailintake.services.edit import list_items

        rows = list_items(state(ctx).store(), kind)
        if as_json:
            print_json(rows)
            return
        table = Table(*COLUMNS[kind], box=None, pad_edge=False)
        for row in rows:
            table.add_row(*(_cell(row, c) for c in COLUMNS[kind]))
        out.print(table)

    @app.command("show")
    def show(
        ctx: typer.Context,
        name: str,
        as_json: JsonOpt = False,
        effective: Annotated[
            bool,
            typer.Option(
                "--effective",
                help="Mailboxes: show the settings in use, defaults and server values filled in.",
            ),
        ] = False,
    ) -> None:
        """Show one in the configuration-file form (secrets redacted)."""
        from mailintake.config.loader import dump_yaml
        from mailintake.services.edit import current_item, effective_item

        if effective and kind != "mailbox":
            raise ConfigError(["--effective: only for mailboxes"])
        store = state(ctx).store()
        data = effective_item(store, name) if effective else current_item(store, kind, name)
        if as_json:
            print_json(data)
        else:
            typer.echo(dump_yaml(data), nl=False)

    @app.command("edit")
    def edit(
        ctx: typer.Context,
        name: str,
        sets: SetOpt = None,
        unset: UnsetOpt = None,
        ask: AskOpt = None,
    ) -> None:
        """Change fields; the result is validated whole, like apply."""
        from mailintake.services.edit import edit_item

        changes = collect(sets, ask)
        if not changes and not unset:
            raise ConfigError([f"{kind}: nothing to change (use --set, --unset or --ask)"])
        _report(edit_item(state(ctx).store(), kind, name, changes, unset or [], environ()))

    @app.command("delete")
    def delete(ctx: typer.Context, name: str) -> None:
        """Delete it (refused while mailboxes use it)."""
        from mailintake.services.edit import delete_item

        store = state(ctx).store()
        if kind == "mailbox":  # its Graph subscription, while its credentials are there
            from mailintake.engine.graph_push import unsubscribe
            from mailintake.oauth.tokens import TokenManager

            unsubscribe(store, TokenManager(store), name)
        _report(delete_item(store, kind, name))

    if kind == "server":
        _server_commands(app)
    elif kind == "mailbox":
        _mailbox_commands(app)
    else:
        _output_commands(app)
    return app


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def _add(
    ctx: typer.Context,
    kind: str,
    name: str,
    file: Path | None,
    options: dict[str, Any],
    changes: dict[str, Any],
) -> None:
    """Add from --file, then the named options, then --set/--ask (later ones win)."""
    from mailintake.config.loader import load_file
    from mailintake.services.edit import put_item

    data: dict[str, Any] = {}
    if file is not None:
        loaded = load_file(file)
        if not isinstance(loaded, dict):
            raise ConfigError([f"{file}: must be a mapping of the {TITLES[kind]}'s fields"])
        data = loaded
    data = deep_merge(deep_merge(data, options), _nested(changes))
    data["name"] = name
    _report(put_item(state(ctx).store(), kind, data, environ(), must_exist=False))


def _server_commands(app: typer.Typer) -> None:
    @app.command("add")
    def add(
        ctx: typer.Context,
        name: str,
        issuer: Annotated[
            str | None,
            typer.Option(help="Fill the endpoints from this issuer's metadata (discovery)."),
        ] = None,
        file: FileOpt = None,
        sets: SetOpt = None,
        ask: AskOpt = None,
    ) -> None:
        """Add a custom authorization server."""
        from mailintake.net.http import build_client
        from mailintake.oauth.discovery import discover

        found: dict[str, Any] = {}
        if issuer:
            with build_client() as client:
                found.update(discover(issuer, client))
        _add(ctx, "server", name, file, found, collect(sets, ask))

    @app.command("reset")
    def reset(ctx: typer.Context, name: str) -> None:
        """Reset a built-in server (MICROSOFT, GOOGLE) to its shipped values."""
        with state(ctx).store().begin() as repo:
            _report(repo.reset_server(name))

    @app.command("discover")
    def discover_cmd(issuer: str, as_json: JsonOpt = False) -> None:
        """Print the endpoints an issuer's metadata gives (changes nothing)."""
        from mailintake.config.loader import dump_yaml
        from mailintake.net.http import build_client
        from mailintake.oauth.discovery import discover

        with build_client() as client:
            found = discover(issuer, client)
        if as_json:
            print_json(found)
        else:
            typer.echo(dump_yaml(found), nl=False)


def _mailbox_commands(app: typer.Typer) -> None:
    @app.command("add")
    def add(
        ctx: typer.Context,
        name: str,
        protocol: Annotated[str | None, typer.Option(help="imap, pop3 or graph.")] = None,
        username: Annotated[str | None, typer.Option(help="The mailbox address.")] = None,
        host: Annotated[str | None, typer.Option(help="IMAP/POP3 server host.")] = None,
        server: Annotated[
            str | None, typer.Option(help="Authorization server (MICROSOFT, GOOGLE, …).")
        ] = None,
        grant_type: Annotated[
            str | None,
            typer.Option(help="client_credentials, authorization_code, password or device_code."),
        ] = None,
        tenant_id: Annotated[str | None, typer.Option(help="Directory (tenant) ID.")] = None,
        client_id: Annotated[str | None, typer.Option(help="Application (client) ID.")] = None,
        redirect_uri: Annotated[str | None, typer.Option(help="Redirect URI.")] = None,
        output: Annotated[str | None, typer.Option(help="Output name.")] = None,
        file: FileOpt = None,
        sets: SetOpt = None,
        ask: AskOpt = None,
    ) -> None:
        """Add a mailbox. Secrets: --ask oauth.client_secret, or --set …=${env:NAME}."""
        oauth = {
            "authorization_server": server,
            "grant_type": grant_type,
            "tenant_id": tenant_id,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
        }
        options = {
            "protocol": protocol,
            "username": username,
            "host": host,
            "output": output,
            "oauth": {k: v for k, v in oauth.items() if v is not None} or None,
        }
        _add(ctx, "mailbox", name, file, options, collect(sets, ask))

    @app.command("enable")
    def enable(ctx: typer.Context, name: str) -> None:
        """Poll this mailbox again."""
        from mailintake.services.edit import edit_item

        _report(edit_item(state(ctx).store(), "mailbox", name, {"enabled": True}, [], environ()))

    @app.command("disable")
    def disable(ctx: typer.Context, name: str) -> None:
        """Stop polling this mailbox (its settings and tokens are kept)."""
        from mailintake.services.edit import edit_item

        _report(edit_item(state(ctx).store(), "mailbox", name, {"enabled": False}, [], environ()))


def _output_commands(app: typer.Typer) -> None:
    @app.command("add")
    def add(
        ctx: typer.Context,
        name: str,
        type_: Annotated[str | None, typer.Option("--type", help="folder or webhook.")] = None,
        path: Annotated[str | None, typer.Option(help="Folder (type folder).")] = None,
        url: Annotated[str | None, typer.Option(help="URL (type webhook).")] = None,
        file: FileOpt = None,
        sets: SetOpt = None,
        ask: AskOpt = None,
    ) -> None:
        """Add an output."""
        if path is not None:
            path = str(Path(path).expanduser().resolve())
        options = {"type": type_, "path": path, "url": url}
        _add(ctx, "output", name, file, options, collect(sets, ask))
