"""A writer pool starts all its processes, even when the first is ready before the next is
asked for; writer processes that cannot start (the fork server's socket cannot be made, as
under a TMPDIR too long for it) leave the writing to the importing process, and say why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from multiprocessing.context import ForkServerContext, ForkServerProcess

from mailintake.sinks.writer_pool import WriterPool, _alive, _hint


class Unbindable(ForkServerContext):
    """A fork server whose socket cannot be made."""

    class Process(ForkServerProcess):
        def start(self) -> None:
            raise OSError("AF_UNIX path too long")


class SlowToReturn(ForkServerContext):
    """A fork server that hands back each new process late, as on a busy machine: the
    process started before runs its first task meanwhile."""

    class Process(ForkServerProcess):
        def start(self) -> None:
            super().start()
            time.sleep(0.3)


def test_every_process_starts_when_each_comes_back_late() -> None:
    pool = WriterPool(3, context=SlowToReturn())
    try:
        started = pool.get()
        assert started is not None
        assert len(started._processes) == 3
    finally:
        pool.close()


def test_a_pool_that_cannot_start_is_none_and_stays_so() -> None:
    pool = WriterPool(2, context=Unbindable())
    assert pool.get() is None  # the caller writes the batch itself
    assert not pool.started
    assert pool.workers == 1
    pool.warm()  # nothing more is tried
    assert pool.get() is None
    pool.close()


def test_the_warning_says_what_it_means_and_what_to_do() -> None:
    too_long = _hint(OSError("AF_UNIX path too long"))
    assert "the importing process writes every message itself" in too_long
    assert "set TMPDIR to a shorter folder" in too_long
    other = _hint(OSError(24, "Too many open files"))
    assert "the importing process writes every message itself" in other
    assert "TMPDIR" not in other


def test_a_worker_sees_whether_the_importing_process_is_there() -> None:
    """What a worker checks when it starts, for the process that started the pool."""
    assert _alive(os.getpid())
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert not _alive(int(ended.stdout))
