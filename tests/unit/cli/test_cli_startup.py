"""`mailintake --help` (and a cron-driven command's start) loads no database, HTTP or
validation library: the commands import what they use when they run. `mailintake status`
loads the store, not the poll engine, the token client or the certificate libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "pydantic", "httpx2", "alembic", "authlib", "fastapi", "imapclient")

PROBE = """
import json, sys
from mailintake.cli.main import run
try:
    run(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules(*argv: str) -> set[str]:
    """The modules a run of ``mailintake ARGV`` has loaded when it ends."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def loaded(*argv: str) -> set[str]:
    """The packages a run of ``mailintake ARGV`` has loaded when it ends."""
    return {name.split(".")[0] for name in modules(*argv)}


def test_help_loads_no_heavy_library() -> None:
    modules = loaded("--help")
    assert modules & set(HEAVY) == set()
    assert "typer" in modules  # the probe did run the command line


def test_every_group_help_loads_no_heavy_library() -> None:
    # Typer's own adapters load pydantic for a group's help; the rest stays out.
    for group in ("mailboxes", "servers", "outputs", "secrets", "admin"):
        assert loaded(group, "--help") & (set(HEAVY) - {"pydantic"}) == set(), group


def test_status_loads_the_store_but_not_what_polls(tmp_path: Path) -> None:
    found = modules("--home", str(tmp_path), "status")
    assert "sqlalchemy" in found  # it did read the store
    assert {m for m in found if m.startswith(("mailintake.engine", "mailintake.oauth"))} == set()
    assert found & {"cryptography.x509", "joserfc", "httpx"} == set()  # certificates, HTTP
