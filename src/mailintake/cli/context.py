"""What every command shares: settings from options/environment, the store, output helpers."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from mailintake.settings import Settings
    from mailintake.store.repo import Store


@dataclass
class CliState:
    home: Path | None = None
    database_url: str | None = None
    connections: int | None = None  # kept open by the store (a worker's polls at once)
    _store: Store | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        from mailintake.settings import Settings

        overrides: dict[str, Any] = {}
        if self.home is not None:
            overrides["home"] = self.home
        if self.database_url is not None:
            overrides["database_url"] = self.database_url
        return Settings(**overrides)

    def store(self) -> Store:
        from mailintake.runtime import open_store

        if self._store is None:
            self._store = open_store(self.settings(), self.connections)
        return self._store

    def store_if_present(self) -> Store | None:
        """The store when one exists already (validation must not create a database)."""
        settings = self.settings()
        if settings.database_url or (settings.home / "mailintake.db").exists():
            return self.store()
        return None

    def close(self) -> None:
        """Close the store's connections (when the command ends)."""
        if self._store is not None:
            self._store.engine.dispose()
            self._store = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def environ() -> dict[str, str]:
    return dict(os.environ)


# Off a terminal (pipes, files) tables are not cut to 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


IDLE_CONNECTIONS = 100  # engine.push.DEFAULT_CONNECTIONS


def idle_connections_option(keeper: str, more: str = "") -> Any:
    """``--idle-connections`` of the commands that keep IMAP IDLE connections."""
    return typer.Option(
        "--idle-connections",
        envvar="MAILINTAKE_IDLE_CONNECTIONS",
        min=0,
        help=f"IMAP IDLE connections {keeper} keeps at most (push: new mail imported within "
        f"seconds); mailboxes beyond them are polled at their interval. 0: none.{more}",
    )
