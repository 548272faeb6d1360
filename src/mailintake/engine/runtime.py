"""What an importing process holds for as long as it imports: the folder output's worker
processes, the interpreter's switch interval and its garbage collector's frozen objects. The
commands that own such a process (``poll``, ``worker``, ``serve``) make one
``ImportRuntime``, start it, pass it to the Poller (and the web application), and close it
when they end; nothing of it exists before."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from types import TracebackType

from mailintake.config.models import OutputSpec
from mailintake.engine.factories import build_sink
from mailintake.sinks.base import MessageSink
from mailintake.sinks.writer_pool import WriterPool

# How long a thread may keep the interpreter while another waits for it. An import's threads
# (fetching, writing, recording) each run short stretches of Python between waits on the
# network, the disk or the store; with the interpreter's default of 5 ms, a thread whose
# wait is over often waits that long again for a busy one to hand over (measured: see
# docs/importing.md, "Speed").
SWITCH_INTERVAL = 0.0002


class ImportRuntime:
    """The folder output's writer processes (``writers``) and, between ``start`` and
    ``close``, the switch interval ``switch_interval`` (None: left alone; a shorter one set
    elsewhere stays). The writers start in the background when a pass has listed a batch
    large enough for them (sinks.folder.FolderSink.expect), while it is fetched; a pass with
    nothing or little to import starts none. ``close`` ends them, waits for them, and puts
    the switch interval back. Also a context manager.

    Between ``start`` and ``close``, what the process holds at ``start`` (its modules, its
    configuration, its connections) is frozen (``gc.freeze``): the collections that an
    import's many short-lived objects set off do not go through it again each time (measured:
    docs/importing.md, "Speed"). ``close`` unfreezes it."""

    def __init__(
        self,
        *,
        switch_interval: float | None = SWITCH_INTERVAL,
        workers: int | None = None,
    ) -> None:
        self.writers = WriterPool(workers)
        self._switch_interval = switch_interval
        self._lock = threading.Lock()
        self._restore: float | None = None  # the interval before start, while changed
        self._froze = False

    def start(self) -> ImportRuntime:
        with self._lock:
            if not self._froze:
                gc.freeze()
                self._froze = True
            wanted = self._switch_interval
            if self._restore is None and wanted is not None:
                before = sys.getswitchinterval()
                if before > wanted:  # put back only when changed: it reads back rounded
                    self._restore = before
                    sys.setswitchinterval(wanted)
        return self

    def close(self) -> None:
        try:
            self.writers.close()
        finally:
            with self._lock:
                if self._restore is not None:
                    sys.setswitchinterval(self._restore)
                    self._restore = None
                if self._froze:
                    gc.unfreeze()
                    self._froze = False

    def __enter__(self) -> ImportRuntime:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def build_sink(self, output: OutputSpec | None, home: Path) -> MessageSink:
        """The mailbox's output (engine.factories.build_sink) writing with this runtime's
        writers."""
        return build_sink(output, home, writers=self.writers)
