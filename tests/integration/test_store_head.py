"""A store at the newest revision opens without Alembic: what a cron-started command pays
(store.db.HEAD, kept equal to the newest migration script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from mailintake.store.db import HEAD, MIGRATIONS

PROBE = """
import json, sys
from pathlib import Path
from mailintake.runtime import open_store
from mailintake.settings import Settings
open_store(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2])).engine.dispose()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def opened(home: Path, url: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), url], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_head_is_the_newest_migration() -> None:
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD


def test_a_store_at_the_newest_revision_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "alembic" in opened(tmp_path, url)  # a new store is migrated
    assert "alembic" not in opened(tmp_path, url)  # then only read
