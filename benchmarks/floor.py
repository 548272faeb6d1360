"""The CPU the folder output needs for each message at the least, whoever calls it: the same
messages written from memory by the output's own functions (message.eml, attachments,
metadata.json, one file-system sync per batch of 100, renamed into place, the parents synced,
the written pages released), serially, in this one process: no server, no store, no worker
processes, no threads waiting on each other.

An import does all of this and more (reading from the server, recording in the store), on
the machine's CPUs, beside the mail server; so ``CPUs / floor`` bounds its rate from above,
however its work is arranged. The machine's CPU time is counted, not only this process's:
the kernel's writeback threads do part of each sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mailintake.sinks import writers
from mailintake.sinks.base import Delivery

BATCH = 100


@dataclass(frozen=True)
class Floor:
    user: float  # seconds of CPU per message in user space (this process)
    system: float  # in the kernel for this process
    machine: float  # every CPU of the machine, busy, per message (includes writeback)

    def ceiling(self, also: float = 0.0) -> float:
        """Messages per second the machine's CPUs could write at most, with ``also`` more
        seconds of CPU per message spent elsewhere (the mail server sending it)."""
        return (os.cpu_count() or 1) / (self.machine + also)

    def report(self, raw_rate: float, server: float) -> str:
        """``server``: the mail server's CPU per message, as measured during the import."""
        alone, served = self.ceiling(), self.ceiling(server)
        return (
            f"folder output alone (serial, in one process): CPU per message "
            f"{self.user * 1e6:,.0f} µs user + {self.system * 1e6:,.0f} µs system here, "
            f"{self.machine * 1e6:,.0f} µs for the whole machine; so on "
            f"{os.cpu_count()} CPUs at most {alone:,.0f} msg/s = {alone / raw_rate:.2f}x the "
            f"raw read, and with the mail server's {server * 1e6:,.0f} µs per message at most "
            f"{served:,.0f} msg/s = {served / raw_rate:.2f}x, before anything is read from the "
            "socket or recorded"
        )


def _busy_ticks() -> int:
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:9]]
    return sum(values) - values[3] - values[4]  # all but idle and iowait


def measure(messages: list[bytes], root: Path) -> Floor:
    """Write every message under ``root`` (which must exist, and be empty) as the folder
    output does, and return the CPU time it took per message."""
    incoming, placed_root = root / "incoming", root / "placed"
    incoming.mkdir()
    placed_root.mkdir()
    tick = os.sysconf("SC_CLK_TCK")
    before, busy = os.times(), _busy_ticks()
    for start in range(0, len(messages), BATCH):
        written: list[tuple[str, str, list[str]]] = []
        for number in range(start, min(len(messages), start + BATCH)):
            delivery = Delivery("floor", "imap", str(number), {}, messages[number], None)
            temp, final = f"{incoming}/{number}", f"{placed_root}/{number}"
            _subject, _sender, _sha256, files, _id = writers.write_message(temp, delivery, "now")
            written.append((temp, final, files))
        writers.sync_filesystem(root)
        for temp, final, _files in written:
            os.rename(temp, final)
        writers.fsync_dir(placed_root)
        writers.forget([f"{final}/{name}" for _temp, final, files in written for name in files])
    after = os.times()
    count = len(messages)
    return Floor(
        (after.user - before.user) / count,
        (after.system - before.system) / count,
        (_busy_ticks() - busy) / tick / count,
    )
