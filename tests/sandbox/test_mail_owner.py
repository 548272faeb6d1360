"""The system user that owns a sandbox Dovecot's mail files: made once when several test
processes start their Dovecot at the same moment on a new machine."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import subprocess
from collections.abc import Iterator
from multiprocessing.synchronize import Event

import pytest

from sandbox.dovecot.launch import _mail_owner

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root makes system users")


@pytest.fixture
def new_user_name() -> Iterator[str]:
    name = f"mi-race-{os.getpid()}"
    yield name
    subprocess.run(["userdel", name], check=False, capture_output=True)


def _owner_when_told(go: Event, name: str, answers: multiprocessing.Queue[object]) -> None:
    go.wait()
    try:
        answers.put(_mail_owner(name))
    except Exception as error:  # the answer is what the test compares
        answers.put(repr(error))


def test_processes_starting_together_make_the_user_once(new_user_name: str) -> None:
    context = multiprocessing.get_context("fork")
    go = context.Event()
    answers: multiprocessing.Queue[object] = context.Queue()
    processes = [
        context.Process(target=_owner_when_told, args=(go, new_user_name, answers))
        for _ in range(6)
    ]
    for process in processes:
        process.start()
    go.set()
    got = [answers.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    entry = pwd.getpwnam(new_user_name)
    assert got == [(new_user_name, entry.pw_uid, entry.pw_gid)] * len(processes)
