"""Where an import's CPU time goes: the importing process (every thread), the folder output's
worker processes, the mail server's processes, and the whole machine; read from /proc
(Linux), as microseconds per message.

The worker processes are this process's other descendants (the forkserver and the workers it
started). The mail server's processes are the server's master and its children: an IMAP or
POP3 session process ends when its connection does, and its time is then counted in the
master's ``cutime``/``cstime`` once reaped, so both are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Process:
    parent: int
    own: int  # utime + stime, in ticks
    reaped: int  # cutime + cstime: children that ended and were waited for
    system: int  # stime + cstime: the part of both spent in the kernel


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as file:
                text = file.read()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        found[int(name)] = _Process(
            int(fields[1]),
            int(fields[11]) + int(fields[12]),
            int(fields[13]) + int(fields[14]),
            int(fields[12]) + int(fields[14]),
        )
    return found


def _tree(processes: dict[int, _Process], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found or pid not in processes:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _machine() -> tuple[int, int]:
    """(busy, all) ticks of every CPU since boot."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class Sample:
    importing: float  # seconds
    workers: float
    importing_system: float  # of which in the kernel
    workers_system: float
    server: float
    machine_busy: int
    machine_all: int


def sample(server_pid: int) -> Sample:
    processes = _processes()
    own = os.times()
    server = _tree(processes, server_pid)
    mine = _tree(processes, os.getpid()) - server - {os.getpid()}
    busy, everything = _machine()
    return Sample(
        own.user + own.system,
        sum(processes[p].own + processes[p].reaped for p in mine) / TICK,
        own.system,
        sum(processes[p].system for p in mine) / TICK,
        sum(processes[p].own for p in server) / TICK + processes[server_pid].reaped / TICK,
        busy,
        everything,
    )


def report(label: str, before: Sample, after: Sample, messages: int) -> str:
    def per_message(seconds: float) -> str:
        return f"{seconds / messages * 1e6:,.0f} µs"

    busy = after.machine_busy - before.machine_busy
    share = busy / max(1, after.machine_all - before.machine_all)
    return (
        f"{label}: CPU per message: importing process "
        f"{per_message(after.importing - before.importing)} "
        f"({per_message(after.importing_system - before.importing_system)} in the kernel), "
        f"output workers {per_message(after.workers - before.workers)} "
        f"({per_message(after.workers_system - before.workers_system)} in the kernel), mail server "
        f"{per_message(after.server - before.server)}; whole machine "
        f"{per_message(busy / TICK)} ({share:.0%} of its CPUs busy)"
    )


def tree_seconds(root: int) -> float:
    """CPU seconds of the process ``root`` and its descendants (their own time, and that of
    children they waited for)."""
    processes = _processes()
    tree = _tree(processes, root)
    return sum(processes[p].own + processes[p].reaped for p in tree) / TICK
