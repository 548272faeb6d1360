"""``make demo`` as a newcomer uses it: ``python -m sandbox.demo`` starts, prints what to try,
and the printed commands work as written (the sign-in page is filled in over HTTP, the way a
person would in a browser); the web admin takes the printed password; Ctrl-C stops everything
and leaves no Dovecot behind."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox import http_clients
from sandbox.demo.banner import READY
from sandbox.demo.run import COUNTS
from sandbox.demo.tenant import ALICE, IMAP_BOX, OUTPUT, PASSWORDS
from sandbox.dovecot import dovecot_installed
from sandbox.ports import free_port
from tests.support.oauth import Browser
from tests.support.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
BUSY = "another poll of this mailbox is running"  # serve's own scheduler has it right now


@dataclass
class Shell:
    """Runs the printed lines: ``export``, ``unset``, ``cd`` and ``mailintake …``."""

    env: dict[str, str]
    cwd: Path = ROOT
    ran: list[str] = field(default_factory=list)

    def apply(self, line: str) -> list[str] | None:
        """Carries out a shell built-in; returns the argv of a command to run instead."""
        words = shlex.split(line)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value.replace("$PATH", self.env.get("PATH", ""))
            return None
        if words[0] == "unset":
            for name in words[1:]:
                self.env.pop(name, None)
            return None
        if words[0] == "cd":
            self.cwd = Path(words[1].replace("$MAILINTAKE_HOME", self.env["MAILINTAKE_HOME"]))
            return None
        assert words[0] == "mailintake", line
        self.ran.append(line)
        return words

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )


def wait_for_banner(out: Path, demo: subprocess.Popen[str], err: Path) -> str:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        text = out.read_text()
        if READY in text and "Ctrl-C" in text:
            return text
        if demo.poll() is not None:
            pytest.fail(f"the demo ended ({demo.returncode}): {err.read_text()[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"the demo did not say it was ready: {err.read_text()[-3000:]}")


def printed_steps(banner: str) -> list[str]:
    block = banner.split("Try next, in another terminal:", 1)[1].strip("\n")
    return [line.strip() for line in block.split("\n\n", 1)[0].splitlines()]


def dovecot_processes(parent: int) -> dict[int, str]:
    """The Dovecot master started by ``parent`` and its children: pid → command line."""
    found: dict[int, str] = {}
    parents = {parent}
    for _ in range(3):  # the master, its services, their children
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in found:
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid in parents and (ppid != parent or "dovecot" in command):
                found[int(entry.name)] = command
        parents = {parent, *found}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def authorize(shell: Shell, argv: list[str], password: str) -> None:
    """``mailintake authorize NAME`` as printed, with --no-browser: the sign-in page is
    completed the way a person would, and the redirect lands on the command's listener."""
    with subprocess.Popen(
        [*argv, "--no-browser"],
        cwd=shell.cwd,
        env=shell.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as command:
        assert command.stderr is not None
        url = ""
        for line in command.stderr:
            if line.startswith("http"):
                url = line.strip()
                break
        assert url, "authorize printed no sign-in URL"
        final = Browser(ALICE, password).sign_in(url)
        assert final.startswith("http://localhost:")
        stdout, stderr = command.communicate(timeout=30)
    assert command.returncode == 0, stderr
    assert f"{IMAP_BOX}: Login successful" in stdout


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path, Path]]:
    if not dovecot_installed():
        service_missing("dovecot (Debian packages dovecot-core dovecot-imapd dovecot-pop3d)")
    home, port = tmp_path / "demo-home", free_port()
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env["PYTHONPATH"] = str(ROOT)
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.demo", "--home", str(home), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        yield process, home, out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_printed_walkthrough_works_and_ctrl_c_stops_everything(
    demo: tuple[subprocess.Popen[str], Path, Path, Path],
) -> None:
    process, home, out, err = demo
    banner = wait_for_banner(out, process, err)
    web = re.search(r"web admin\s+(\S+)\s+password: (\S+)", banner)
    assert web is not None, banner
    web_url, admin_password = web.groups()
    alice_password = re.search(rf"{re.escape(ALICE)}\s+(\S+)", banner)
    assert alice_password is not None
    assert alice_password.group(1) == PASSWORDS[ALICE]

    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    shell = Shell(env)
    mailintake = "mailintake"
    for line in printed_steps(banner):
        argv = shell.apply(line)
        if argv is None:
            continue
        argv[0] = mailintake = str(Path(shell.env["PATH"].split(":")[0]) / "mailintake")
        step = argv[1]
        if step == "authorize":
            authorize(shell, argv, alice_password.group(1))
            continue
        result = shell.run(argv)
        for _ in range(20):
            if step != "poll" or BUSY not in result.stdout:
                break
            time.sleep(0.5)
            result = shell.run(argv)
        assert result.returncode == 0, f"{line}: {result.stdout}{result.stderr}"
    assert [line.split()[1] for line in shell.ran] == [
        "validate",
        "apply",
        "authorize",
        "poll",
        "status",
    ]
    assert shell.env["MAILINTAKE_HOME"] == str(home)
    assert shell.cwd == home

    for name, count in COUNTS.items():
        assert len(list((home / OUTPUT / name).glob("*/*/message.eml"))) == count, name
    status = shell.run([mailintake, "status", "--json"])
    assert status.returncode == 0, status.stderr
    states = {m["name"]: m["authorization_state"] for m in json.loads(status.stdout)["mailboxes"]}
    assert set(states.values()) == {"authorized"}, states

    # The web admin takes the printed password.
    origin = web_url.rstrip("/")
    with http_clients.Client(base_url=origin, timeout=10) as browser:
        wrong = browser.post("/login", data={"password": "nope"}, headers={"Origin": origin})
        assert wrong.status_code == 401
        signed_in = browser.post(
            "/login", data={"password": admin_password}, headers={"Origin": origin}
        )
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get("/")
        assert page.status_code == 200
        assert IMAP_BOX in page.text

    # Ctrl-C stops the demo, Dovecot with it, and removes the temporary folders.
    dovecot = dovecot_processes(process.pid)
    assert dovecot, "no Dovecot runs under the demo"
    config = re.search(r"-c (\S+/dovecot\.conf)", " ".join(dovecot.values()))
    assert config is not None
    imap = re.search(r"IMAP 127\.0\.0\.1:(\d+)", banner)
    assert imap is not None
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0, err.read_text()[-3000:]
    assert "mailintake demo stopped" in out.read_text()
    assert not [pid for pid in dovecot if alive(pid)]
    assert not Path(config.group(1)).parent.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(imap.group(1))), timeout=2).close()
    assert (home / "demo.yaml").exists()  # the demo home given with --home is kept
