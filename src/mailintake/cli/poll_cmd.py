"""``poll`` (one import pass now) and ``worker`` (the scheduler alone)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mailintake.cli.context import (
    IDLE_CONNECTIONS,
    err,
    idle_connections_option,
    out,
    print_json,
    state,
)
from mailintake.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import TaskID

    from mailintake.engine.poll import Poller, PollResult
    from mailintake.observability.exposition import MetricsServer
    from mailintake.store.repo import Store

OWN_CONNECTIONS = 4  # a worker's heartbeat, scheduler, health and alert loops
PUSH_CONNECTIONS = 5  # engine.push: its store thread and PushOptions.connectors


def register(app: typer.Typer) -> None:
    app.command("poll")(poll)
    app.command("worker")(worker)


def poll(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Mailboxes to poll.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every enabled mailbox.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """One import pass now; per mailbox: imported, skipped (already imported), failed."""
    from mailintake.engine.poll import Poller
    from mailintake.engine.runtime import ImportRuntime

    cli = state(ctx)
    store = cli.store()
    with store.read() as repo:
        records = repo.list_mailboxes()
    known = {r.spec.name for r in records}
    if all_:
        chosen = [r.spec.name for r in records if r.spec.enabled is not False]
    elif names:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError([f"{n}: no mailbox of that name" for n in unknown])
        chosen = list(names)
    else:
        raise ConfigError(["poll: name one or more mailboxes, or use --all"])
    with ImportRuntime() as runtime:  # this process imports
        results = _poll_all(Poller(store, cli.settings().home, runtime=runtime), chosen, as_json)
    if as_json:
        print_json({"mailboxes": [r.as_dict() for r in results]})
    else:
        for r in results:
            line = f"{r.mailbox}: imported {r.imported}, skipped {r.skipped}, failed {r.failed}"
            if r.waiting:  # failed before, not tried now (see mailintake messages NAME)
                line += f", waiting {r.waiting}"
            if r.error:
                line += f"; error: {r.error}"
            for warning in r.warnings:
                line += f"; warning: {warning}"
            out.print(line, markup=False)
    if any(r.state for r in results):
        raise typer.Exit(3)
    if any(r.error for r in results):
        raise typer.Exit(4)


def _poll_all(poller: Poller, chosen: list[str], as_json: bool) -> list[PollResult]:
    """One pass over each mailbox, with a progress bar on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    results: list[PollResult] = []
    if sys.stderr.isatty() and not as_json:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(mailbox: str, done: int, total: int) -> None:
                if mailbox not in tasks:
                    tasks[mailbox] = bar.add_task(mailbox, total=total)
                bar.update(tasks[mailbox], completed=done, total=total)

            poller.progress = progress
            results = [poller.poll(name) for name in chosen]
    else:
        results = [poller.poll(name) for name in chosen]
    return results


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Mailboxes this worker polls at once.")
    ] = 16,  # engine.scheduler.DEFAULT_CONCURRENCY
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="MAILINTAKE_WORKER_NAME",
            help="The host name in this worker's id and its leases (default: the host's).",
        ),
    ] = None,
    idle_connections: Annotated[int, idle_connections_option("this worker")] = IDLE_CONNECTIONS,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="MAILINTAKE_METRICS_PORT",
            min=0,
            max=65535,
            help="Serve Prometheus metrics at http://HOST:PORT/metrics (default: "
            "$MAILINTAKE_METRICS_PORT, else not served; 0 picks a free port).",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host",
            envvar="MAILINTAKE_METRICS_HOST",
            help="Address the metrics are served on (with --metrics-port).",
        ),
    ] = "127.0.0.1",
) -> None:
    """Poll every enabled mailbox at its interval until stopped (several workers may share
    one PostgreSQL database: each mailbox is polled by one of them per interval)."""
    import os
    import signal

    from mailintake.alerts.runner import AlertLoop, alerter_for
    from mailintake.engine.poll import Poller
    from mailintake.engine.push import start_push
    from mailintake.engine.runtime import ImportRuntime
    from mailintake.engine.scheduler import Scheduler
    from mailintake.health import gauge_source
    from mailintake.health.keepalive import HealthLoop
    from mailintake.oauth.tokens import TokenManager
    from mailintake.observability import metrics
    from mailintake.store import leases

    if name:  # every owner id this process makes, and whose it recognises as its host's
        os.environ["MAILINTAKE_WORKER_NAME"] = name
    cli = state(ctx)
    # A connection per poll, and for the heartbeat, the scheduler, health and alert loops
    # and the metrics: connections opened and closed again for every transaction of a busy
    # worker cost the database a process each.
    cli.connections = concurrency + OWN_CONNECTIONS
    if idle_connections:  # push: its store thread and the threads that open connections
        cli.connections += PUSH_CONNECTIONS
    if metrics_port is not None:  # served until the process ends
        serve_metrics(metrics_host, metrics_port, cli.store)
    with ImportRuntime() as runtime:  # this process imports
        store = cli.store()
        poller = Poller(store, cli.settings().home, runtime=runtime)
        scheduler = Scheduler(poller, concurrency=concurrency, host=leases.host_name())
        tokens = poller.tokens or TokenManager(store)
        # health recorded, idle refresh tokens kept alive, health gauges read on scrape
        checks = HealthLoop(store, tokens)
        metrics.watch_health(gauge_source(store))
        checks.start()
        err.print(
            f"mailintake worker {scheduler.id}: polling up to {concurrency} mailboxes at once; "
            "stop with Ctrl-C or SIGTERM (the polls under way finish first)",
            markup=False,
        )
        # Ctrl-C and SIGTERM ask the loop to stop between steps; a KeyboardInterrupt raised
        # in the middle of a step could leave a lock or a transaction half done, and the
        # worker would then hang while it waits for its polls to end.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, lambda *_: scheduler.stop())
        alerts = AlertLoop(alerter_for(poller.store))  # every minute: by webhook and email
        alerts.start()
        # IDLE connections wake their mailboxes when mail arrives
        pushing = start_push(store, tokens, scheduler, idle_connections)
        try:
            scheduler.run_forever()
        except KeyboardInterrupt:
            scheduler.stop()
        finally:
            if pushing is not None:
                pushing.stop()
            alerts.stop()
            checks.stop()


def serve_metrics(host: str, port: int, store: Callable[[], Store]) -> MetricsServer:
    """The worker's /metrics, started; a port that cannot be had is the user's to change."""
    from mailintake.engine.heartbeats import fleet_scrape
    from mailintake.observability.exposition import MetricsServer

    try:
        served = MetricsServer(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([f"--metrics-port: cannot listen on {host}:{port}: {reason}"]) from exc
    served.scrape = fleet_scrape(store())
    served.start()
    shown = f"[{host}]" if ":" in host else host
    err.print(f"mailintake worker: metrics on http://{shown}:{served.port}/metrics", markup=False)
    return served
