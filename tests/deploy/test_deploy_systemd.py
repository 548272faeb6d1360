"""deploy/systemd: the serve and worker units pass ``systemd-analyze verify`` without a
warning, run as their own user with the hardening and stop behaviour a fleet relies on,
and start commands and an environment file the ``mailintake`` command accepts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailintake.settings import Settings
from tests.support.services import service_missing

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = ("mailintake-serve.service", "mailintake-worker.service")
INSTALLED = "/opt/mailintake/bin/mailintake"
COMMAND = Path(sys.executable).with_name("mailintake")
Unit = dict[str, dict[str, list[str]]]


def parse(text: str) -> Unit:
    """A unit file's sections, each key with its values in order (keys may repeat; a line
    ending in a backslash goes on)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    pairs = (shlex.split(value) for value in service.get("Environment", []))
    return dict(pair.split("=", 1) for values in pairs for pair in values)


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_runs_hardened_as_its_own_user(name: str) -> None:
    service = parse((FOLDER / name).read_text())["Service"]

    def one(key: str) -> str:
        (value,) = service[key]
        return value

    assert (one("User"), one("Group")) == ("mailintake", "mailintake")
    assert one("Restart") == "on-failure"
    assert one("KillMode") in {"mixed", "control-group"}  # helper processes stop with it
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("PrivateTmp") == "yes"
    assert one("ProtectHome") == "yes"
    assert one("CapabilityBoundingSet") == ""
    home = environment(service)["MAILINTAKE_HOME"]
    assert home == "/var/lib/mailintake"
    assert home in one("ReadWritePaths").split()
    assert one("StateDirectory") == "mailintake"  # made, owned by the user, at start
    assert one("EnvironmentFile") == "/etc/mailintake/mailintake.env"
    assert parse((FOLDER / name).read_text())["Install"]["WantedBy"] == ["multi-user.target"]


def start_command(name: str) -> list[str]:
    """ExecStart with the unit's own Environment= filled in, as systemd does."""
    service = parse((FOLDER / name).read_text())["Service"]
    (line,) = service["ExecStart"]
    values = environment(service)
    return [re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], word) for word in line.split()]


@pytest.mark.parametrize("name", UNITS)
def test_the_start_command_is_one_mailintake_accepts(name: str, tmp_path: Path) -> None:
    program, *args = start_command(name)
    assert program == INSTALLED
    env = {**os.environ, "MAILINTAKE_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(COMMAND), *args, "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr  # an unknown option exits 2


def test_the_worker_stops_after_its_polls_and_the_serve_at_once() -> None:
    worker = parse((FOLDER / "mailintake-worker.service").read_text())["Service"]
    serve = parse((FOLDER / "mailintake-serve.service").read_text())["Service"]
    assert worker["KillSignal"] == ["SIGINT"]  # Ctrl-C: the scheduler stops, polls finish
    assert "KillSignal" not in serve
    assert "--no-scheduler" in start_command("mailintake-serve.service")


def test_the_environment_file_names_only_what_mailintake_reads() -> None:
    names = set()
    for line in (FOLDER / "mailintake.env.example").read_text().splitlines():
        line = line.lstrip("#").strip()
        if re.match(r"^[A-Z_]+=", line):
            names.add(line.split("=", 1)[0])
    settings = {f"MAILINTAKE_{field.upper()}" for field in Settings.model_fields}
    options = {"MAILINTAKE_METRICS_PORT", "MAILINTAKE_METRICS_HOST", "MAILINTAKE_LOG_LEVEL"}
    units = {"MAILINTAKE_SERVE_HOST", "MAILINTAKE_SERVE_PORT"}
    assert names <= settings | options | units, names - settings - options - units
    assert {"MAILINTAKE_DATABASE_URL", "MAILINTAKE_SECRET_KEY"} <= names
    help_text = subprocess.run(
        [str(COMMAND), "worker", "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "MAILINTAKE_METRICS_PORT" in help_text


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        service_missing("systemd-analyze (Debian package systemd)")
        raise AssertionError("unreachable")
    for name in UNITS:  # verify checks the program exists: this checkout's mailintake
        text = (FOLDER / name).read_text().replace(INSTALLED, str(COMMAND))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [tool, "verify", *UNITS], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # an unknown key or a bad value is only a warning
