"""A real IMAP and POP3 server for tests: Debian's Dovecot 2.3, run as an ordinary foreground
process (``dovecot -F -c CONFIG``) with a self-contained configuration in a temporary folder,
on free loopback ports, validating OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER) by RFC 7662
introspection against the sandbox identity provider. The settings follow
shared/reference/dovecot-oauth2.md.

Use the ``mail_server`` fixture (one identity provider and one Dovecot per test module)::

    from tests.support.dovecot import DOMAIN, MailServer, answer_once, mail_server, xoauth2

    __all__ = ["mail_server"]  # fixtures

    def test_it(mail_server: MailServer) -> None:
        user = mail_server.add_user(f"someone@{DOMAIN}")  # or ALICE / BOB, shared by the module
        mail_server.dovecot.deliver(user, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        token = mail_server.token(user)  # password grant, public client MAIL_APP
        with imaplib.IMAP4(mail_server.dovecot.host, mail_server.dovecot.imap_port) as imap:
            imap.authenticate("XOAUTH2", answer_once(xoauth2(user, token)))

or start one yourself with ``start_dovecot(tmp_path, idp.base_url + "/introspect")`` (the
identity provider must be made with ``introspection_open=True``); stop it with ``stop()`` or
use it in a ``with`` block.

Logins (Exchange Online's rules, mirrored):

- a token whose introspection ``username`` equals the login name opens that mailbox;
- a token with ``user=`` another address opens it when the token's owner (its ``sub``: the
  user's address, or the app's client id for an app-only token) was made a delegate of it with
  ``add_delegate(owner, shared)`` (Exchange's Add-MailboxPermission); otherwise it fails.
  Each grant is a one-line passwd-file ``delegations/OWNER/SHARED`` (reference: a file per
  owner; one per pair here, because Dovecot rereads a changed passwd-file at most once a
  second, while a new file is read at once).

Scopes and roles are not checked. Mail lives in Maildir++ folders (``.Processed``), owned by a
system user ``vmail`` (made when missing; as non-root, the current user), and the test reads
and writes the files directly with ``deliver``, ``messages`` and ``flags``.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from sandbox.idp import App, IdentityProvider, User
from tests.conftest import service_missing
from tests.support.certs import pem_certificate, pem_key, rsa_key
from tests.support.proxy import free_port

MAIL_USER = "vmail"
DOMAIN = "contoso.onmicrosoft.com"
MAIL_APP = "b0000000-0000-4000-8000-0000000000b1"  # public client (password grant, device code)
DAEMON_APP = "b0000000-0000-4000-8000-0000000000b2"  # confidential, app-only IMAP/POP
DAEMON_SECRET = "daemon-app-secret~Value-1"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
SHARED = f"invoices@{DOMAIN}"  # a shared mailbox: nobody signs in as it
USER_PASSWORD = "User-Password-9!"  # of users added with MailServer.add_user
PASSWORDS = {ALICE: "Alice-Password-1!", BOB: "Bob-Password-2!", SHARED: "Shared-Unused-3!"}
OUTLOOK_SCOPES = (
    "https://outlook.office365.com/IMAP.AccessAsUser.All "
    "https://outlook.office365.com/POP.AccessAsUser.All offline_access"
)
OUTLOOK_APP_SCOPE = "https://outlook.office365.com/.default"

_FLAG_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}


def xoauth2(user: str, token: str) -> bytes:
    """The XOAUTH2 client response (before base64)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str) -> bytes:
    """The OAUTHBEARER client response (RFC 7628, before base64)."""
    return f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()


def answer_once(payload: bytes, *, on_error: bytes = b"") -> Callable[[bytes], bytes]:
    """An imaplib authentication callback: ``payload`` first; when the server refuses the
    token it sends an error challenge and imaplib calls back again: then ``on_error`` (empty
    for XOAUTH2, ``b"\\x01"`` for OAUTHBEARER)."""
    calls: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        calls.append(challenge)
        return payload if len(calls) == 1 else on_error

    return respond


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


def _write_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost; (cert, key) paths."""
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(pem_certificate(cert))
    key_path.write_bytes(pem_key(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def _mail_owner() -> tuple[str, int, int]:
    """The system user that owns the mail files: ``vmail`` (made when missing) as root, the
    current user otherwise."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", MAIL_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _oauth2_conf(introspection_url: str, username_attribute: str, username_format: str) -> str:
    return (
        f"introspection_url = {introspection_url}\n"
        "introspection_mode = post\n"
        f"username_attribute = {username_attribute}\n"
        f"username_format = {username_format}\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "timeout_msecs = 5000\n"
    )


@dataclass
class Dovecot:
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
        answer = subprocess.run(
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

    # --- the process --------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the master and wait for it to exit (it takes over a second)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Dovecot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )


def _let_others_through(folder: Path) -> None:
    """Dovecot's mail processes run as the mail user: let it reach the folder (pytest's
    temporary folders are private, mode 0700) by adding search permission (o+x, not read)
    where it is missing, on the folder and its parents inside the system temporary folder."""
    temp = Path(tempfile.gettempdir()).resolve()
    for path in (folder.resolve(), *folder.resolve().parents):
        if path == temp or temp not in path.parents:
            break
        status = path.stat()
        if not status.st_mode & 0o001 and status.st_uid == os.geteuid():
            path.chmod((status.st_mode & 0o7777) | 0o011)


def _doveadm() -> str:
    return _binary("doveadm") or "doveadm"


def start_dovecot(folder: Path, introspection_url: str) -> Dovecot:
    """Start Dovecot (IMAP, IMAPS, POP3, POP3S on 127.0.0.1 free ports) validating tokens
    at ``introspection_url`` (RFC 7662, POST, no client authentication); return once all
    four listeners greet."""
    binary = _binary("dovecot")
    programs = ("imap", "imap-login", "pop3", "pop3-login")
    if binary is None or not all(Path("/usr/lib/dovecot", p).exists() for p in programs):
        service_missing("dovecot (Debian packages dovecot-core dovecot-imapd dovecot-pop3d)")
        raise AssertionError("unreachable")
    folder.mkdir(parents=True, exist_ok=True)
    _let_others_through(folder)
    user, uid, gid = _mail_owner()
    if os.geteuid() == 0:
        internal_user, login_user = "dovecot", "dovenull"
    else:
        internal_user = login_user = user
    base_dir, state_dir = folder / "run", folder / "state"
    mail_root, delegations = folder / "mail", folder / "delegations"
    for path in (base_dir, state_dir, mail_root, delegations):
        path.mkdir(exist_ok=True)
    os.chown(mail_root, uid, gid)
    cert, key = _write_certificate(folder)
    log = folder / "dovecot.log"
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    oauth2 = folder / "oauth2.conf.ext"
    oauth2.write_text(_oauth2_conf(introspection_url, "username", "%Lu"))
    # The delegate check: any active token; its owner (sub: the user, or the app's client
    # id) is kept for the passwd-file lookup that follows.
    delegate = folder / "oauth2-delegate.conf.ext"
    delegate.write_text(
        _oauth2_conf(introspection_url, "active", "any")
        + "pass_attrs = token_owner=%{oauth2:sub}\n"
    )
    config = folder / "dovecot.conf"
    config.write_text(
        f"""# written by tests/support/dovecot.py; reads nothing from /etc/dovecot
instance_name = mailintake-test-{ports["imap"]}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log}
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {min(uid, 500) if uid else 1}
auth_mechanisms = xoauth2 oauthbearer
auth_verbose = yes
auth_failure_delay = 0
auth_cache_size = 0
disable_plaintext_auth = yes
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 100
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {delegate}
  result_success = continue-ok
  result_failure = return-fail
  result_internalfail = return-fail
}}
passdb {{
  driver = passwd-file
  mechanisms = xoauth2 oauthbearer
  args = {delegations}/%L{{passdb:token_owner}}/%Lu
  result_failure = return-fail
  result_internalfail = return-fail
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail_root}/%Lu allow_all_users=yes
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
"""
    )
    if not Path("/usr/share/dovecot/dh.pem").exists():
        config.write_text(config.read_text().replace("ssl_dh = </usr/share/dovecot/dh.pem\n", ""))
    errors = folder / "dovecot.stderr"
    with errors.open("wb") as stderr:  # a file, not a pipe nobody drains
        process = subprocess.Popen(
            [binary, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Dovecot(
        "127.0.0.1",
        ports["imap"],
        ports["imaps"],
        ports["pop3"],
        ports["pop3s"],
        cert,
        folder,
        config,
        mail_root,
        delegations,
        log,
        process,
        uid,
        gid,
    )
    deadline = time.monotonic() + 15
    waiting = [ports["imap"], ports["pop3"], ports["imaps"], ports["pop3s"]]
    while waiting:
        try:
            with socket.create_connection(("127.0.0.1", waiting[0]), timeout=2) as sock:
                if waiting[0] in (ports["imap"], ports["pop3"]):
                    sock.recv(100)  # the greeting: a login process is up
            waiting.pop(0)
        except OSError:
            if process.poll() is not None:
                said = errors.read_text(errors="replace").strip() or server.log_text()
                raise AssertionError(f"dovecot did not start: {said}") from None
            if time.monotonic() > deadline:
                server.stop()
                said = server.log_text()
                raise AssertionError(f"dovecot did not listen within 15 s: {said}") from None
            time.sleep(0.05)
    return server


# --- the identity provider and Dovecot together ---------------------------------------


@dataclass
class MailServer:
    """The sandbox identity provider and a Dovecot that trusts its tokens."""

    idp: IdentityProvider
    dovecot: Dovecot
    passwords: dict[str, str] = field(default_factory=lambda: dict(PASSWORDS))

    def add_user(self, username: str, password: str = USER_PASSWORD) -> str:
        """Register another user (consented to ``MAIL_APP``); returns the address."""
        self.passwords[username] = password
        self.idp.add_user(User(username=username, password=password, consented_apps={MAIL_APP}))
        return username

    @property
    def token_endpoint(self) -> str:
        return f"{self.idp.base_url}/{self.idp.tenant_id}/oauth2/v2.0/token"

    def token(self, username: str = ALICE, password: str | None = None) -> str:
        """An access token for ``username`` (password grant with the public client
        ``MAIL_APP``, IMAP and POP scopes)."""
        answer = httpx2.post(
            self.token_endpoint,
            data={
                "grant_type": "password",
                "client_id": MAIL_APP,
                "username": username,
                "password": password or self.passwords[username],
                "scope": OUTLOOK_SCOPES,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def app_token(self) -> str:
        """An app-only access token (client credentials of ``DAEMON_APP``); it opens only
        mailboxes the app was made a delegate of (``add_delegate(DAEMON_APP, mailbox)``)."""
        answer = httpx2.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": DAEMON_APP,
                "client_secret": DAEMON_SECRET,
                "scope": OUTLOOK_APP_SCOPE,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


def build_mail_idp(*, access_token_lifetime: int = 3599) -> IdentityProvider:
    """An identity provider (open introspection) with ALICE, BOB and the SHARED mailbox's
    account, a public client app they consented to, and an app-only daemon app."""
    idp = IdentityProvider(
        introspection_open=True, domain=DOMAIN, access_token_lifetime=access_token_lifetime
    )
    idp.add_app(
        App(
            client_id=MAIL_APP,
            name="mail intake (desktop)",
            redirect_uris={"http://localhost/": "public"},
            allow_public_client=True,
        )
    )
    idp.add_app(
        App(
            client_id=DAEMON_APP,
            name="mail intake (daemon)",
            secrets={DAEMON_SECRET: None},
            application_permissions={
                "https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"]
            },
        )
    )
    for username, password in PASSWORDS.items():
        idp.add_user(User(username=username, password=password, consented_apps={MAIL_APP}))
    return idp


@pytest.fixture(scope="module")
def mail_server() -> Iterator[MailServer]:
    """The sandbox identity provider and a Dovecot wired to it (one per test module). Its
    folder is its own (not pytest's numbered temporary folders, which another pytest run on
    the machine may clean up while this one still uses them)."""
    idp = build_mail_idp()
    folder = Path(tempfile.mkdtemp(prefix="mailintake-dovecot-"))
    try:
        with idp.serve() as base, start_dovecot(folder, f"{base}/introspect") as server:
            yield MailServer(idp, server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
