"""Real processes of ``python -m MODULE ...`` without Python's start-up cost each time.

A test that needs a process of its own (killed with SIGKILL, stopped with SIGINT or SIGTERM,
several of them on one database) pays about a second of CPU for each one to import
mailintake, SQLAlchemy, Pydantic, httpx…, before it does anything. Here they are forked
from a server process that imported those once (``multiprocessing``'s forkserver, with the
heavy modules preloaded): each is still a process of its own, with its own pid, environment,
working directory, standard streams and exit status, killed and signalled like any other;
only its imports are inherited.

    completed = run(["-m", "mailintake", "poll", "box"], env=env, cwd=ROOT)
    process = start(["-m", "mailintake", "worker"], env=env, cwd=ROOT, stderr=path)
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

from mailintake.settings import Settings

# What ``python -m mailintake`` and the crash tests' module import, once for every process.
PRELOAD = [
    "mailintake.cli.main",
    "mailintake.cli.context",
    "mailintake.settings",
    "mailintake.runtime",
    "mailintake.engine.poll",
    "mailintake.engine.scheduler",
    "mailintake.engine.factories",
    "mailintake.health",
    "mailintake.health.keepalive",
    "mailintake.alerts.runner",
    "mailintake.oauth.tokens",
    "mailintake.services.apply",
    "mailintake.observability.exposition",
    "mailintake.sinks.writers",  # the folder output's writer processes start from these too
    "mailintake.sinks.writer_pool",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite",
    "alembic.command",
    "tests.support.preloaded",  # made once: the TLS contexts
]
_context: ForkServerContext | None = None


def _server() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _main(
    args: list[str],
    env: dict[str, str],
    cwd: str,
    stdin: str | None,
    stdout: str,
    stderr: str,
    new_session: bool,
) -> None:
    """In the new process: its environment, directory and streams, then the module."""
    if new_session:
        os.setsid()
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # read TMPDIR again: the server's was read when it started
    os.chdir(cwd)
    for fd, path, flags in (
        (0, stdin or os.devnull, os.O_RDONLY),
        (1, stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND),
        (2, stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if args[:1] != ["-m"] or len(args) < 2:
        raise ValueError(f"only python -m MODULE is launched here, not {args}")
    module, argv = args[1], args[2:]
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


class Launched:
    """A started process, as much of ``subprocess.Popen`` as the tests use."""

    def __init__(self, process: Any, stdout: Path, stderr: Path, own: list[Path]) -> None:
        self._process = process
        self.pid: int = process.pid
        self._stdout, self._stderr, self._own = stdout, stderr, own

    @property
    def returncode(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(["launched", str(self.pid)], timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end; what it wrote on its standard output and error."""
        self.wait(timeout)
        found = (
            self._stdout.read_text(errors="replace"),
            self._stderr.read_text(errors="replace"),
        )
        for path in self._own:
            path.unlink(missing_ok=True)
        return found


def start(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    stdin: str | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    new_session: bool = False,
) -> Launched:
    """Start ``python ARGS`` (``-m MODULE ...``); its output goes to the files given, else
    to files of its own that ``communicate`` reads."""
    own: list[Path] = []

    def scratch(suffix: str) -> Path:
        handle, name = tempfile.mkstemp(prefix="launched-", suffix=suffix)
        os.close(handle)
        own.append(Path(name))
        return own[-1]

    input_path = None
    if stdin is not None:
        input_path = scratch(".in")
        input_path.write_text(stdin)
    out = stdout or scratch(".out")
    err = stderr or scratch(".err")
    process = _server().Process(
        target=_main,
        args=(
            list(args),
            dict(env),
            str(cwd),
            str(input_path) if input_path else None,
            str(out),
            str(err),
            new_session,
        ),
        daemon=False,
    )
    process.start()
    return Launched(process, out, err, own)


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    input: str | None = None,
    timeout: float = 300,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` to its end, as ``subprocess.run(..., capture_output=True,
    text=True)`` does."""
    process = start(args, env=env, cwd=cwd, stdin=input, new_session=new_session)
    try:
        out, err = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(30)
        raise
    return subprocess.CompletedProcess([sys.executable, *args], process.returncode or 0, out, err)


REPOSITORY = Path(__file__).resolve().parents[2]
# This checkout's sources first, whatever the environment's installed copy points at: the
# processes a launched one starts itself (the folder output's writers) import them too.
PYTHONPATH = os.pathsep.join([str(REPOSITORY / "src"), str(REPOSITORY)])


def run_on(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the repository on the store of ``settings`` (its home and
    database), as a process of its own. Its temporary files are in a folder of its own,
    removed once it has ended: what a killed process leaves (multiprocessing's ``pymp-*``
    folders) goes too. (Not under ``tmp_path``: a socket's path must be short.)"""
    scratch = tempfile.mkdtemp(prefix="run-")
    env = {
        **os.environ,
        "MAILINTAKE_HOME": str(settings.home),
        "MAILINTAKE_DATABASE_URL": settings.database_url or "",
        "PYTHONPATH": PYTHONPATH,
        "TMPDIR": scratch,
    }
    try:
        return run(args, env=env, cwd=REPOSITORY, timeout=300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
