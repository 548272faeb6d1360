"""`mailintake --help` (and a cron-driven command's start) loads no database, HTTP or
validation library: the commands import what they use when they run."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "pydantic", "httpx2", "alembic", "authlib", "fastapi", "imapclient")

PROBE = """
import json, sys
from mailintake.cli.main import run
try:
    run(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def loaded(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_loads_no_heavy_library() -> None:
    modules = loaded("--help")
    assert modules & set(HEAVY) == set()
    assert "typer" in modules  # the probe did run the command line


def test_every_group_help_loads_no_heavy_library() -> None:
    # Typer's own adapters load pydantic for a group's help; the rest stays out.
    for group in ("mailboxes", "servers", "outputs", "secrets", "admin"):
        assert loaded(group, "--help") & (set(HEAVY) - {"pydantic"}) == set(), group
