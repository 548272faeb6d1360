"""A running sandbox Dovecot and the mail files it serves: accounts' delegations, seeding and
reading Maildir++ folders directly (``deliver``, ``messages``, ``flags``), and stopping it.
``sandbox.dovecot.launch`` starts one."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.processes import ServerProcess

_FLAG_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}


def _encode_mutf7(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3), as Dovecot stores it."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )


def _doveadm() -> str:
    return binary("doveadm") or "doveadm"


@dataclass
class Dovecot(ServerProcess):
    stop_timeout = 15.0  # the master takes over a second to end its children
    host: str
    imap_port: int  # plain, STARTTLS offered
    imaps_port: int  # implicit TLS
    pop3_port: int  # plain, STLS offered
    pop3s_port: int  # implicit TLS
    ca_file: Path  # the server's self-signed certificate: what clients trust
    folder: Path
    config: Path
    mail_root: Path
    delegations: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    uid: int = field(repr=False)
    gid: int = field(repr=False)
    _counter: int = field(default=0, repr=False)

    # --- accounts -----------------------------------------------------------------------

    def add_delegate(self, owner: str, shared: str) -> None:
        """Let ``owner``'s tokens (a user's address, or an app's client id for app-only
        tokens) open the mailbox ``shared`` (XOAUTH2 ``user=shared``); effective at once."""
        entry = self.delegations / owner.lower() / shared.lower()
        entry.parent.mkdir(exist_ok=True)
        entry.write_text(f"{shared.lower()}:::::::nopassword\n")

    def set_password(self, user: str, password: str) -> None:
        """Let ``user`` also sign in with a password (PLAIN/LOGIN over TLS), as clients
        without OAuth do; no account has one unless given here."""
        passwords = self.delegations / ".passwords"
        kept = [
            line
            for line in (passwords.read_text().splitlines() if passwords.exists() else [])
            if not line.startswith(f"{user.lower()}:")
        ]
        passwords.write_text("".join(f"{line}\n" for line in [*kept, f"{user.lower()}:{password}"]))

    def remove_delegate(self, owner: str, shared: str) -> None:
        """Undo ``add_delegate``. Dovecot rechecks a passwd-file at most once a second, so
        this returns when the next second has begun."""
        (self.delegations / owner.lower() / shared.lower()).unlink(missing_ok=True)
        time.sleep(1.05 - time.time() % 1)

    # --- mail files ---------------------------------------------------------------------

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir of ``folder`` (INBOX, or a Maildir++ subfolder: ``Processed`` is
        ``~/Maildir/.Processed``, ``A/B`` is ``.A.B``)."""
        root = self.mail_root / user.lower() / "Maildir"
        if folder.upper() == "INBOX":
            return root
        return root / ("." + _encode_mutf7(folder).replace("/", "."))

    def _mkdir(self, path: Path) -> None:
        missing: list[Path] = []
        walk = path
        while not walk.exists():
            missing.append(walk)
            walk = walk.parent
        for directory in reversed(missing):
            directory.mkdir(mode=0o700)
            os.chown(directory, self.uid, self.gid)

    def create_folder(self, user: str, name: str) -> Path:
        """Make ``name`` (and ``user``'s INBOX) exist; returns its Maildir."""
        inbox = self.maildir(user)
        target = self.maildir(user, name)
        for box in (inbox, target):
            for sub in ("cur", "new", "tmp"):
                self._mkdir(box / sub)
        if target != inbox and not (target / "maildirfolder").exists():
            marker = target / "maildirfolder"
            marker.touch()
            os.chown(marker, self.uid, self.gid)
        return target

    def deliver(self, user: str, raw: bytes, *, folder: str = "INBOX", seen: bool = False) -> None:
        """Put one message into ``user``'s ``folder`` (``new/``, or ``cur/`` with ``:2,S``)."""
        self.deliver_many(user, [raw], folder=folder, seen=seen)

    def deliver_many(
        self, user: str, raws: Iterable[bytes], *, folder: str = "INBOX", seen: bool = False
    ) -> int:
        """Put messages into ``user``'s ``folder`` in order (Dovecot numbers them by name);
        returns how many. Thousands take well under a second."""
        box = self.create_folder(user, folder)
        target = box / ("cur" if seen else "new")
        suffix = ":2,S" if seen else ""
        stamp, pid, count = int(time.time()), os.getpid(), 0
        for raw in raws:
            self._counter += 1
            name = f"{stamp}.M{self._counter:09d}P{pid}.mailintake,S={len(raw)}{suffix}"
            tmp = box / "tmp" / name
            tmp.write_bytes(raw)
            os.chown(tmp, self.uid, self.gid)
            tmp.rename(target / name)
            count += 1
        return count

    def deliver_with_uidls(self, user: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Put messages into ``user``'s INBOX with these POP3 UIDLs (as a mailbox migrated
        from another server keeps them, or Exchange's base64-like ones): Dovecot serves the
        UIDL its ``dovecot-uidlist`` holds for a message (the ``P`` field) in place of
        ``pop3_uidl_format``. Only for an INBOX Dovecot has not seen yet."""
        box = self.create_folder(user, "INBOX")
        uidlist = box / "dovecot-uidlist"
        if uidlist.exists() or any((box / "new").iterdir()) or any((box / "cur").iterdir()):
            raise ValueError(f"{user}: INBOX is not new; its UIDLs are Dovecot's already")
        self.deliver_many(user, [message for _uidl, message in messages])
        names = sorted(path.name for path in (box / "new").iterdir())  # in delivery order
        for uidl, _message in messages:
            if not uidl or any(c <= " " or c > "~" for c in uidl):
                raise ValueError(f"UIDL {uidl!r}: RFC 1939 allows 0x21-0x7E only")
        lines = [f"3 V{int(time.time())} N{len(names) + 1}"]
        lines += [
            f"{uid} P{uidl} :{name}"
            for uid, ((uidl, _), name) in enumerate(zip(messages, names, strict=True), start=1)
        ]
        uidlist.write_text("".join(f"{line}\n" for line in lines))
        os.chown(uidlist, self.uid, self.gid)

    def _files(self, user: str, folder: str) -> list[Path]:
        """The message files of a folder in Dovecot's UID order (then by name)."""
        box = self.maildir(user, folder)
        files = [p for sub in ("new", "cur") if (box / sub).is_dir() for p in (box / sub).iterdir()]
        order: dict[str, int] = {}
        uidlist = box / "dovecot-uidlist"
        if uidlist.exists():
            for line in uidlist.read_text(errors="replace").splitlines()[1:]:
                head, _, name = line.partition(":")
                uid = head.split(" ", 1)[0]
                if uid.isdigit() and name:
                    order[name.split(":2,", 1)[0]] = int(uid)
        unknown = 1 << 62

        def key(path: Path) -> tuple[int, str]:
            base = path.name.split(":2,", 1)[0]
            return order.get(base, unknown), base

        return sorted(files, key=key)

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in ``folder``, in the order Dovecot numbers them."""
        return [path.read_bytes() for path in self._files(user, folder)]

    def flags(self, user: str, folder: str = "INBOX") -> list[set[str]]:
        """Each message's IMAP flags (``\\Seen``, ``\\Deleted``… and keywords), same order
        as ``messages``; a message still in ``new/`` has none."""
        box = self.maildir(user, folder)
        keywords: dict[str, str] = {}
        names = box / "dovecot-keywords"
        if names.exists():
            for line in names.read_text(errors="replace").splitlines():
                index, _, word = line.partition(" ")
                if index.isdigit() and int(index) < 26:
                    keywords[chr(ord("a") + int(index))] = word
        result: list[set[str]] = []
        for path in self._files(user, folder):
            letters = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            result.append(
                {_FLAG_LETTERS.get(c) or keywords.get(c, c) for c in letters if c.isalpha()}
            )
        return result

    def mailbox_status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """``doveadm mailbox status`` (messages, unseen, uidnext, uidvalidity)."""
        answer = subprocess.run(  # noqa: S603 (Debian's doveadm)
            [
                _doveadm(),
                "-f",
                "flow",
                "-c",
                str(self.config),
                "mailbox",
                "status",
                "-u",
                user,
                "messages unseen uidnext uidvalidity",
                folder,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        fields = dict(part.split("=", 1) for part in answer.stdout.split() if "=" in part)
        return {name: int(value) for name, value in fields.items()}

    # --- sessions -----------------------------------------------------------------------

    def sessions(self, user: str, protocol: str = "imap") -> list[int]:
        """The process ids of ``user``'s ``protocol`` sessions: each session process's title
        names its instance and user (``verbose_proctitle``)."""
        prefix = f"dovecot-mailintake-test-{self.imap_port}/{protocol} [{user.lower()} ".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
            if title.lower().startswith(prefix):
                found.append(int(entry.name))
        return found

    def kill_sessions(self, user: str, protocol: str = "imap") -> int:
        """Kill (SIGKILL) every ``protocol`` session process of ``user``, as a crash or a
        dropped connection ends it: the client sees its connection closed without a BYE.
        Returns how many."""
        killed = 0
        for pid in self.sessions(user, protocol):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed += 1
        return killed

    # --- the process --------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
