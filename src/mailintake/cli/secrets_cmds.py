"""``secrets``: key generation and rotation (every stored secret re-encrypted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import out, state
from mailintake.errors import SecretKeyError

if TYPE_CHECKING:
    from mailintake.crypto import (
        SecretBox,
    )
    from mailintake.store.repo import Store

app = typer.Typer(help="Manage the key that encrypts stored secrets.", no_args_is_help=True)


@app.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new key (for MAILINTAKE_SECRET_KEY)."""
    from mailintake.crypto import generate_key

    typer.echo(generate_key())


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    new_key: Annotated[
        str | None,
        typer.Option(
            "--new-key",
            help="With MAILINTAKE_SECRET_KEY: the new key to encrypt with (default: a new one).",
        ),
    ] = None,
) -> None:
    """Re-encrypt every stored secret with a new key."""
    from mailintake.crypto import (
        NEW_KEY_FILE,
        SecretBox,
        finish_rotation,
        generate_key,
        load_box,
        write_key_file,
    )

    cli = state(ctx)
    settings = cli.settings()
    store = cli.store()  # opens with the current key and checks that it is the right one
    if settings.secret_key is not None:
        key = new_key or generate_key()
        box = SecretBox([key, *store.box.keys], source="the new key")
        count = _rotate(store, box)
        out.print(
            f"re-encrypted {count} secret(s). Set MAILINTAKE_SECRET_KEY to the new key before "
            "the next start:",
            markup=False,
        )
        typer.echo(key)
        return
    if new_key is not None:
        raise SecretKeyError(
            "--new-key is for keys given in MAILINTAKE_SECRET_KEY; the key file is rotated "
            "with a new random key"
        )
    new_path = settings.home / NEW_KEY_FILE
    if not new_path.exists():  # else: resume a rotation that was interrupted
        write_key_file(new_path, generate_key())
    file_box = load_box(None, settings.home, create=False)
    assert file_box is not None
    count = _rotate(store, file_box)
    finish_rotation(settings.home)
    out.print(f"re-encrypted {count} secret(s) with a new key in {settings.home / 'secret.key'}")


def _rotate(store: Store, box: SecretBox) -> int:
    from mailintake.store.repo import Store

    rotated = Store(store.engine, box)
    with rotated.begin() as repo:
        return repo.rotate_secrets()
