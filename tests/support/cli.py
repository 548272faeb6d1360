"""The ``mailintake`` command run inside the test's process, as a user's shell would run it:
``mailintake.cli.main.run`` with the given arguments, environment and standard input, its
standard output and error captured and its exit code taken from ``SystemExit``. It costs
milliseconds where a new interpreter costs a second; a test that needs a real process (a
signal, a terminal, a server that keeps running) starts one with ``subprocess``::

    from tests.support.cli import run_cli

    result = run_cli(["status", "--json"], env={"MAILINTAKE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import structlog

from mailintake.cli.main import run

_ONE_AT_A_TIME = threading.Lock()  # the environment and the standard streams are global


@dataclass
class Completed:
    """What ``subprocess.run(..., capture_output=True, text=True)`` would have given."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def _exit_code(code: object, stderr: io.StringIO) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    stderr.write(f"{code}\n")  # as the interpreter does with sys.exit("message")
    return 1


def run_cli(args: Sequence[str], *, env: Mapping[str, str], input: str | None = None) -> Completed:
    """Run ``mailintake ARGS`` with exactly ``env`` as its environment (restored after)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with _ONE_AT_A_TIME:
        configured, logging = structlog.is_configured(), structlog.get_config()
        try:
            with (
                _environment(env),
                _stdin(input or ""),
                redirect_stdout(stdout),
                redirect_stderr(stderr),
            ):
                try:
                    run(list(args))
                except SystemExit as exc:
                    code = _exit_code(exc.code, stderr)
        finally:  # the command's log lines went to its stderr: back to what was before
            if configured:
                structlog.configure(**logging)
            else:
                structlog.reset_defaults()
    return Completed(list(args), code, stdout.getvalue(), stderr.getvalue())


def run_in(home: Path, database_url: str, *args: str, **env: str) -> Completed:
    """``mailintake ARGS`` on this home and database, with ``env`` added to the test's own
    environment (none of its MAILINTAKE_ variables)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    environ.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url, **env)
    return run_cli(args, env=environ)
