"""``validate``, ``apply`` and ``export``: the configuration file (CONTRACT §3)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import environ, err, out, print_json, state
from mailintake.errors import ConfigError

if TYPE_CHECKING:
    pass

FileArg = Annotated[Path, typer.Argument(help="The YAML configuration file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("apply")(apply)
    app.command("export")(export)


def validate(ctx: typer.Context, file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a configuration file; print every problem as PATH: message (exit 2)."""
    from mailintake.config.loader import load_file
    from mailintake.services.apply import validate_only

    try:
        raw = load_file(file)
        validated = validate_only(
            state(ctx).store_if_present(), raw, environ(), file.resolve().parent
        )
    except ConfigError as exc:
        if as_json:
            print_json({"valid": False, "problems": exc.problems})
        else:
            for line in exc.problems:
                out.print(line, markup=False)
        raise typer.Exit(2) from None
    counts = {
        "authorization_servers": len(validated.servers),
        "outputs": len(validated.outputs),
        "mailboxes": len(validated.mailboxes),
    }
    if as_json:
        print_json({"valid": True, "counts": counts, "warnings": list(validated.warnings)})
        return
    for line in validated.warnings:
        err.print(f"warning: {line}", markup=False)
    out.print(
        f"{file}: valid ({counts['authorization_servers']} authorization server(s), "
        f"{counts['outputs']} output(s), {counts['mailboxes']} mailbox(es))",
        markup=False,
    )


def apply(
    ctx: typer.Context,
    file: FileArg,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete mailboxes, outputs and custom servers the file does not list "
            "(and reset built-in servers it does not edit). An empty file is refused.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a configuration file: all of it, or nothing if any part is invalid."""
    from mailintake.config.loader import load_file
    from mailintake.engine.graph_push import unsubscriber
    from mailintake.services.apply import apply_document

    raw = load_file(file)
    warnings: list[str] = []
    store = state(ctx).store()
    try:
        changes = apply_document(
            store,
            raw,
            environ(),
            base_dir=file.resolve().parent,
            prune=prune,
            dry_run=dry_run,
            warnings=warnings,
            before_pruning=unsubscriber(store),  # Graph subscriptions of pruned mailboxes
        )
    except ConfigError as exc:
        if as_json:
            print_json({"applied": False, "problems": exc.problems})
            raise typer.Exit(2) from None
        raise
    if as_json:
        print_json(
            {
                "applied": not dry_run,
                "changes": [{"kind": c.kind, "name": c.name, "action": c.action} for c in changes],
                "warnings": warnings,
            }
        )
        return
    for line in warnings:
        err.print(f"warning: {line}", markup=False)
    for change in changes:
        out.print(str(change), markup=False)
    changed = sum(1 for c in changes if c.action != "unchanged")
    verb = "would change" if dry_run else "changed"
    out.print(f"{verb} {changed} of {len(changes)} item(s)", markup=False)


def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the current configuration in the file format, secrets redacted."""
    from mailintake.config.loader import dump_yaml
    from mailintake.services.export import export_document

    with state(ctx).store().read() as repo:
        document = export_document(repo)
    if as_json:
        print_json(document)
        return
    text = dump_yaml(document) if document else "{}\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
