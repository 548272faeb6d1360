"""A real ``mailintake serve`` process on a loopback port, as an administrator starts it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from sandbox import http_clients
from sandbox.ports import free_port
from tests.support import launcher


@contextmanager
def serving(
    home: Path, *options: str, database_url: str | None = None
) -> Iterator[tuple[str, list[str]]]:
    """The base URL of ``serve`` with ``options`` on ``home`` (and ``database_url``), once it
    answers /healthz; its console (stderr) is in the list once it has ended."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env["MAILINTAKE_HOME"] = str(home)
    if database_url:
        env["MAILINTAKE_DATABASE_URL"] = database_url
    port = free_port()
    command = ["-m", "mailintake", "serve", "--port", str(port), *options]
    process = launcher.start(command, env=env, cwd=os.getcwd())
    console: list[str] = []
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http_clients.get(f"{base}/healthz", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "mailintake serve did not answer in 60 s"
                time.sleep(0.2)
        yield base, console
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
        console.append(stderr)
