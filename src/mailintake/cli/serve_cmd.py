"""``serve``: the REST API (and, later, the web UI and scheduler) in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from mailintake.cli.context import err, state


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve only; leave polling to workers.")
    ] = False,
) -> None:
    """Serve the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json) and poll mailboxes."""
    import uvicorn

    from mailintake.web.app import create_app

    app = create_app(state(ctx).settings(), scheduler=not no_scheduler)
    err.print(f"mailintake: serving on http://{host}:{port} (API under /api/v1)", markup=False)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
