"""Servers the sandbox starts as ordinary processes (Dovecot, tinyproxy): stopped on request or
at the end of a ``with`` block, politely first."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import ClassVar, Self


class ServerProcess:
    process: subprocess.Popen[bytes]
    stop_timeout: ClassVar[float] = 10.0

    def stop(self) -> None:
        """Ask the server to end (SIGTERM), wait, and kill it if it does not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
