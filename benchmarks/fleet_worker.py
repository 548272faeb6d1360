"""``mailintake`` (its own entry point, ``mailintake.cli.main.run``, with the arguments given)
counting the SQL statements its database engines execute: a SQLAlchemy
``before_cursor_execute`` listener on every engine adds one per statement, and a thread
writes the total to ``$FLEET_STATEMENTS_FILE`` twice a second. The product itself counts
nothing; this is the benchmark's wrapper, so a worker run without it has no such cost.

    FLEET_STATEMENTS_FILE=/tmp/n python -m benchmarks.fleet_worker --log-json worker
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from mailintake.cli.main import run

_lock = threading.Lock()
_count = 0


def _counted(*_args: Any) -> None:
    global _count
    with _lock:
        _count += 1


def _write(path: Path, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        temporary = path.with_suffix(".tmp")
        temporary.write_text(str(_count))
        temporary.replace(path)


if __name__ == "__main__":
    target = os.environ.get("FLEET_STATEMENTS_FILE")
    if target:
        event.listen(Engine, "before_cursor_execute", _counted)
        threading.Thread(target=_write, args=(Path(target), threading.Event()), daemon=True).start()
    run(sys.argv[1:])
