"""Where a benchmark writes (mailboxes, outputs, state): a fresh folder under
``$MAILINTAKE_BENCH_DIR``, by default /var/tmp, and a check that creating files there is as
fast as it usually is before anything that writes is timed.

Why the check: ext4 without a journal (as on some virtual machines) does not reuse an inode
freed in the last minute (six minutes while its inode table block is not yet written) and
searches past every such inode to find a free one. Right after many files were deleted near
the benchmark's folder (the previous run's clean-up, a test suite's temporary folders),
creating a file there was measured at 480 µs against 24 µs in a settled folder on the same
disk, so a timing would measure the file system's state, not the import."""

from __future__ import annotations

import os
import tempfile
import time

BENCH_DIR = os.environ.get("MAILINTAKE_BENCH_DIR", "/var/tmp")  # noqa: S108 (mkdtemp: 0700)
SETTLED_US = 80.0  # a settled ext4 folder on this kind of machine: ~25 µs per file created
PROBE = 300


def workdir() -> tempfile.TemporaryDirectory[str]:
    os.makedirs(BENCH_DIR, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="mailintake-bench-", dir=BENCH_DIR)


def creation_us(folder: str) -> float:
    """Microseconds to create one file or folder in ``folder`` (what each imported message
    costs several times). The probe's files stay until the work folder is removed: removing
    them here would slow the next creations down."""
    probe = tempfile.mkdtemp(prefix="probe-", dir=folder)
    started = time.perf_counter()
    for n in range(PROBE):
        os.mkdir(f"{probe}/{n}")
        os.close(os.open(f"{probe}/{n}/f", os.O_CREAT | os.O_WRONLY, 0o600))
    return (time.perf_counter() - started) / (2 * PROBE) * 1e6


def wait_until_settled(folder: str, patience: float = 420.0) -> None:
    """Wait (up to ``patience`` seconds) until creating files in ``folder`` is fast again."""
    waited = 0.0
    while (spent := creation_us(folder)) > SETTLED_US and waited < patience:
        print(
            f"creating a file takes {spent:.0f} µs here (settled: < {SETTLED_US:.0f} µs): "
            "many files were deleted nearby in the last minutes; waiting for it to settle",
            flush=True,
        )
        time.sleep(20)
        waited += 20
    if spent > SETTLED_US:
        print(f"warning: still {spent:.0f} µs per file created; results will be low")
