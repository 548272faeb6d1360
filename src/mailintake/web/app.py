"""The ASGI application: the REST API under /api/v1 (the web UI joins it later)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Response
from fastapi.staticfiles import StaticFiles

from mailintake import __version__
from mailintake.alerts.runner import AlertLoop, alerter_for
from mailintake.engine.graph_notices import Notices
from mailintake.engine.graph_push import GraphPush, waker
from mailintake.engine.heartbeats import heartbeat_collector
from mailintake.engine.poll import Poller
from mailintake.engine.push import DEFAULT_CONNECTIONS, start_push
from mailintake.engine.runtime import ImportRuntime
from mailintake.engine.scheduler import Scheduler
from mailintake.health import gauge_source
from mailintake.health.keepalive import HealthLoop
from mailintake.oauth.tokens import TokenManager
from mailintake.observability import metrics
from mailintake.observability.exposition import Scrape
from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.repo import Store
from mailintake.web import notifications, ui
from mailintake.web.api import config, imports, items, oauth, system
from mailintake.web.api.oauth import Flows
from mailintake.web.deps import Services, StoreDep
from mailintake.web.errors import install_error_handlers
from mailintake.web.hosts import HostCheckMiddleware, default_hosts, parse_hosts
from mailintake.web.notifications import Limits as NotificationLimits
from mailintake.web.proxies import ForwardedMiddleware, parse_proxies
from mailintake.web.security import PasswordCheck
from mailintake.web.security import install as install_security

API = "/api/v1"

# Seconds serve waits at shutdown for a pass under way, a health check or an alert to end.
LOOPS_END_WITHIN = 60.0


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    environ: Callable[[], Mapping[str, str]] | None = None,
    scheduler: bool = False,
    bound_host: str | None = None,
    verify_password: PasswordCheck | None = None,
    runtime: ImportRuntime | None = None,
    idle_connections: int = DEFAULT_CONNECTIONS,
) -> FastAPI:
    """Build the application. ``store`` and ``environ`` are passed in by tests and workers;
    by default the store is opened from ``settings`` when the application starts. With
    ``scheduler`` the poll scheduler runs in the same process (``mailintake serve``). With
    ``settings.public_url`` the Graph subscriptions are kept here (engine.graph_push) and
    Graph's notifications received (web/notifications.py).
    ``bound_host`` (the address the server listens on) is one of the host names answered
    when ``settings.allowed_hosts`` names none (web/hosts.py); ``verify_password`` replaces
    the admin password check (tests count the checks with it). ``runtime``: what the
    scheduler and "Poll now" import with, owned by the caller (``mailintake serve``); without
    one, the application makes its own (leaving the switch interval alone) and closes it
    when it stops. ``idle_connections``: the scheduler's budget of IMAP IDLE connections
    (engine.push; 0: none), as a worker's ``--idle-connections``; without ``scheduler``,
    none (the workers keep them)."""
    import os

    hosts = (
        parse_hosts(settings.allowed_hosts) if settings.allowed_hosts else default_hosts(bound_host)
    )
    if settings.public_url:  # Graph's notifications arrive with the public URL's host name
        hosts = (*hosts, *parse_hosts([urlsplit(settings.public_url).hostname or ""]))
    proxies = parse_proxies(settings.trusted_proxies)
    owned = runtime is None
    services = Services(
        store=store,
        environ=environ or (lambda: dict(os.environ)),
        runtime=runtime or ImportRuntime(switch_interval=None),
        tokens=None if store is None else TokenManager(store),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = services.store is None
        if opened:
            services.store = open_store(settings)
        assert services.store is not None
        if opened:
            services.tokens = TokenManager(services.store)
        if owned:
            services.runtime.start()
        running = None
        checks = None
        alerts = None
        pushing = None
        graph_push = None
        loops: list[threading.Thread] = []  # joined before the store they use is closed
        metrics.watch_health(gauge_source(services.store))
        try:
            if scheduler:
                running = Scheduler(Poller(services.store, settings.home, runtime=services.runtime))
                loops.append(running.start())
                assert services.tokens is not None
                # IDLE connections wake their mailboxes when mail arrives
                pushing = start_push(services.store, services.tokens, running, idle_connections)
                checks = HealthLoop(services.store, services.tokens)
                loops.append(checks.start())
                alerts = AlertLoop(alerter_for(services.store))  # every minute
                loops.append(alerts.start())
            if settings.public_url:
                assert services.tokens is not None
                wake = running.wake if running is not None else waker(services.store)
                graph_push = GraphPush(services.store, settings.public_url, services.tokens, wake)
                app.state.notices = Notices(services.store, wake, graph_push.poke)
                graph_push.start()
            yield
        finally:
            metrics.watch_health(None)
            if graph_push is not None:
                graph_push.stop()
            if alerts is not None:
                alerts.stop()
            if checks is not None:
                checks.stop()
            if pushing is not None:
                pushing.stop()
            if running is not None:
                running.stop()
            for loop in loops:  # the passes under way end before the runtime and the store
                loop.join(timeout=LOOPS_END_WITHIN)
            if owned:
                services.runtime.close()
            if opened and services.store is not None:
                services.tokens = None
                services.store.engine.dispose()
                services.store = None

    app = FastAPI(
        title="mailintake",
        version=__version__,
        summary="Imports mail from mailboxes (IMAP, POP3, Microsoft Graph) with OAuth 2.0.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # the interactive page needs inline script, which the CSP forbids
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.get("/metrics", include_in_schema=False)
    def prometheus(store: StoreDep) -> Response:
        # the process's own metrics, and the workers' heartbeats read from the store now
        body = Scrape(metrics.REGISTRY, heartbeat_collector(store)).render()
        return Response(body, media_type="text/plain; version=0.0.4")

    @app.get("/healthz", include_in_schema=False)
    def liveness(store: StoreDep) -> dict[str, Any]:
        """For load balancers and Kubernetes probes, without credentials."""
        return system.health(store)

    app.state.services = services
    app.state.settings = settings
    app.state.flows = Flows()  # sign-ins under way
    app.state.notices = None  # Graph's notifications, with a public URL (web/notifications.py)
    app.state.notification_limits = NotificationLimits()
    install_error_handlers(app)
    install_security(app, services, verify_password)
    app.include_router(system.router, prefix=API)
    app.include_router(config.router, prefix=API)
    app.include_router(oauth.router, prefix=API)
    app.include_router(imports.router, prefix=API)
    app.include_router(notifications.router)
    for kind in ("server", "output", "mailbox"):
        app.include_router(items.router_for(kind), prefix=API)
    for page_router in ui.routers():
        app.include_router(page_router)
    app.mount("/static", StaticFiles(packages=[("mailintake.web", "static")]), name="static")
    # Added last, run first: the Host check before anything else, then the forwarded client.
    app.add_middleware(ForwardedMiddleware, proxies=proxies)
    app.add_middleware(HostCheckMiddleware, names=hosts)
    return app
