"""``serve``: the web admin, the REST API and the poll scheduler in one process."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import IDLE_CONNECTIONS, err, idle_connections_option, state

if TYPE_CHECKING:
    from mailintake.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _listed(values: list[str] | None) -> tuple[str, ...]:
    """Repeated options, each possibly comma-separated, as one tuple."""
    return tuple(p.strip() for v in values or () for p in v.split(",") if p.strip())


def set_password_command(settings: Settings) -> str:
    """The command that sets the admin password of the database ``settings`` name (no
    secret in it: a database password is left for the reader to fill in)."""
    from sqlalchemy.engine import make_url

    words = ["mailintake", "--home", str(settings.home)]
    if settings.database_url:
        url = make_url(settings.database_url)
        shown = url.render_as_string(hide_password=url.password is not None)
        words += ["--database-url", shown.replace("***", "PASSWORD")]
    return shlex.join([*words, "admin", "set-password"])


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve only; leave polling to workers.")
    ] = False,
    idle_connections: Annotated[
        int,
        idle_connections_option(
            "the scheduler", " With --no-scheduler, none: the workers keep them."
        ),
    ] = IDLE_CONNECTIONS,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A host name the web admin answers to (repeat or comma-separate; default: "
            "$MAILINTAKE_ALLOWED_HOSTS, else the --host address, localhost, 127.0.0.1, [::1]).",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network (CIDR) of a reverse proxy whose X-Forwarded-For and "
            "X-Forwarded-Proto are believed (repeat or comma-separate; default: "
            "$MAILINTAKE_TRUSTED_PROXIES, else none).",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The https:// address at which Microsoft Graph reaches this server; set, "
            "Graph mailboxes with push: auto get change notifications (default: "
            "$MAILINTAKE_PUBLIC_URL, else none).",
        ),
    ] = None,
) -> None:
    """Serve the web admin and the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json)
    and poll mailboxes."""
    import uvicorn

    from mailintake.engine.runtime import ImportRuntime
    from mailintake.store import admin
    from mailintake.web.app import create_app
    from mailintake.web.hosts import default_hosts

    settings = state(ctx).settings()
    changes: dict[str, object] = {}
    if allowed_host:
        changes["allowed_hosts"] = _listed(allowed_host)
    if trusted_proxy:
        changes["trusted_proxies"] = _listed(trusted_proxy)
    if public_url:
        from mailintake.errors import ConfigError
        from mailintake.settings import public_url_problem

        problem = public_url_problem(public_url)
        if problem is not None:
            raise ConfigError([problem.replace("public_url", "--public-url", 1)])
        changes["public_url"] = public_url.strip().rstrip("/")
    settings = settings.model_copy(update=changes)
    # This process imports (its scheduler, "Poll now"): the runtime is the server's.
    runtime = ImportRuntime()
    app = create_app(
        settings,
        scheduler=not no_scheduler,
        bound_host=host,
        runtime=runtime,
        idle_connections=idle_connections,
    )
    err.print(f"mailintake: serving on http://{host}:{port} (API under /api/v1)", markup=False)
    if settings.public_url:
        err.print(
            f"mailintake: Graph notifications at {settings.public_url}/notifications/graph",
            markup=False,
        )
    if not settings.allowed_hosts and host not in ("127.0.0.1", "localhost", "::1"):
        names = ", ".join(default_hosts(host))
        err.print(
            f"mailintake: answering to the host names {names}; allow the names users type "
            "with --allowed-host NAME",
            markup=False,
        )
    store = state(ctx).store()
    try:
        password_set = admin.admin_password_is_set(store)
    finally:
        store.engine.dispose()
    if not password_set:
        err.print(
            "mailintake: no admin password is set, so nobody can sign in to the web admin "
            f"yet. Set one with:\n  {set_password_command(settings)}",
            markup=False,
        )
    # The forwarded headers are read by the application, from trusted proxies only
    # (web/proxies.py); uvicorn's own reading would believe any local peer.
    with runtime:
        uvicorn.run(
            app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False
        )
