"""Starting the demo: the sandbox identity provider, the Graph emulator and Dovecot with seeded
mail, a demo home with demo.yaml applied and a web admin password, and ``mailintake serve``'s
application on the chosen port, until Ctrl-C (or SIGTERM) stops everything."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

import uvicorn
import yaml

from mailintake.observability.logging import configure as configure_logging
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.admin import set_admin_password
from mailintake.web.app import create_app
from sandbox.demo import mail
from sandbox.demo.banner import Running, banner
from sandbox.demo.tenant import (
    ALICE,
    CLAIMS,
    GRAPH_BOX,
    IMAP_BOX,
    ORDERS,
    OUTPUT,
    POP3_BOX,
    build_idp,
    demo_config,
    seed_dovecot,
    seed_graph,
)
from sandbox.dovecot import start_dovecot
from sandbox.graph import GraphEmulator

CONFIG = "demo.yaml"
# What a previous demo left in its home; removed when it starts again (its tokens and
# checkpoints belong to servers that are gone).
LEFTOVERS = ("mailintake.db*", "secret.key", CONFIG)
COUNTS = {IMAP_BOX: 20, POP3_BOX: 8, GRAPH_BOX: 12}


class DemoError(Exception):
    """The demo cannot start (a busy port, a folder that is not a demo home)."""


def prepare_home(home: Path | None) -> tuple[Path, bool]:
    """The demo home (a fresh temporary folder when none is given) and whether it is
    temporary. A home a previous demo used is emptied of that demo's state; any other
    folder with files in it is refused."""
    if home is None:
        return Path(tempfile.mkdtemp(prefix="mailintake-demo-")), True
    home = home.expanduser().absolute()
    if home.exists() and any(home.iterdir()) and not (home / CONFIG).exists():
        raise DemoError(
            f"{home} has files but no {CONFIG}: not a demo home; choose another with --home"
        )
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for pattern in LEFTOVERS:
        for path in home.glob(pattern):
            path.unlink(missing_ok=True)
    shutil.rmtree(home / OUTPUT, ignore_errors=True)
    return home, False


def check_port(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DemoError(
                f"port {port} is in use ({exc.strerror}); choose another with --port "
                "(make demo PORT=8081)"
            ) from None


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(home_arg: Path | None, port: int, log_level: str = "info") -> None:
    """Run the demo until interrupted; everything it started is stopped, and its temporary
    folders removed, on the way out."""
    check_port(port)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    configure_logging(log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-ins' request lines
    home, temporary = prepare_home(home_arg)
    with contextlib.ExitStack() as stack:
        if temporary:
            stack.callback(shutil.rmtree, home, ignore_errors=True)
        idp = build_idp()
        idp_url = idp.start()
        stack.callback(idp.stop)
        graph = GraphEmulator(idp)
        seed_graph(graph, mail.corpus(4, ALICE, seed=2), mail.corpus(COUNTS[GRAPH_BOX], CLAIMS, 3))
        graph_url = graph.start()
        stack.callback(graph.stop)
        folder = Path(tempfile.mkdtemp(prefix="mailintake-demo-dovecot-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        dovecot = start_dovecot(folder, f"{idp_url}/introspect")
        stack.callback(dovecot.stop)
        seed_dovecot(
            dovecot, mail.corpus(COUNTS[IMAP_BOX], ALICE), mail.corpus(COUNTS[POP3_BOX], ORDERS, 1)
        )
        config = home / CONFIG
        document = demo_config(idp_url, graph_url, dovecot, home / OUTPUT)
        config.write_text(
            "# The mailintake demo's configuration (python -m sandbox.demo); apply it with\n"
            f"# MAILINTAKE_HOME={home} mailintake apply {CONFIG}\n"
            + yaml.safe_dump(document, sort_keys=False),
            encoding="utf-8",
        )
        settings = Settings(home=home, database_url=None, secret_key=None)
        password = secrets.token_urlsafe(12)
        store = open_store(settings)
        try:
            apply_document(store, document, {}, base_dir=home)
            set_admin_password(store, password)
        finally:
            store.engine.dispose()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, scheduler=True),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
                proxy_headers=False,  # as `mailintake serve`: no forwarded headers believed
            )
        )
        running = Running(
            home=home,
            config=config,
            web_url=f"http://127.0.0.1:{port}/",
            admin_password=password,
            idp_url=idp_url,
            graph_url=graph_url,
            dovecot=dovecot,
            counts=COUNTS,
            bin_dir=Path(os.path.abspath(sys.executable)).parent,
        )
        threading.Thread(target=_announce, args=(server, running), daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        print("\nmailintake demo: stopping …", flush=True)
    kept = "removed" if temporary else "kept"
    print(f"mailintake demo stopped; demo home {home} {kept}", flush=True)


def _announce(server: uvicorn.Server, running: Running) -> None:
    """Print the banner once the server accepts connections."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    print(banner(running), flush=True)
