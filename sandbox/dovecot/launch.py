"""Starting a sandbox Dovecot: Debian's Dovecot 2.3 as an ordinary foreground process
(``dovecot -F -c CONFIG``) with a self-contained configuration in a folder of its own, on free
loopback ports, validating OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER) by RFC 7662
introspection against the sandbox identity provider. The settings follow
shared/reference/dovecot-oauth2.md.

As root, the mail files belong to a system user ``vmail`` (made when missing) and Dovecot's
own processes run as Debian's ``dovecot`` and ``dovenull``; as another user, everything runs
as that user."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pwd
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.certs import pem_certificate, pem_key, rsa_key, self_signed
from sandbox.dovecot.server import Dovecot, binary
from sandbox.ports import free_port

MAIL_USER = "vmail"
# The resource server Dovecot stands for. Exchange Online refuses a token for another
# resource (a Graph token, or a bare scope name that Entra reads as Graph's) with a bare
# "NO AUTHENTICATE failed." (oauth-facts §0 items 1-2, §1.8, §2.3). Dovecot 2.3.19's own
# ``scope`` setting cannot say this: it requires every listed scope in the token (measured),
# while a mail token holds IMAP or POP scopes under either Exchange host name, or ".default".
# So Dovecot names itself to the introspection endpoint, which answers active=false for a
# token that is not for this resource or carries no mail scope (RFC 7662 §2.2).
MAIL_RESOURCE = "https://outlook.office.com"
PROGRAMS = ("imap", "imap-login", "pop3", "pop3-login")


class DovecotMissing(RuntimeError):
    """Dovecot is not installed (Debian packages dovecot-core dovecot-imapd dovecot-pop3d)."""


class _PortTaken(RuntimeError):
    """Another process took one of the ports between the choosing and Dovecot's bind."""


def dovecot_installed() -> bool:
    return binary("dovecot") is not None and all(
        Path("/usr/lib/dovecot", p).exists() for p in PROGRAMS
    )


def _write_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost; (cert, key) paths."""
    key = rsa_key()
    cert = self_signed(
        key,
        "localhost",
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
        ip_address="127.0.0.1",
        dns_names=("localhost",),
        ca=True,
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(pem_certificate(cert))
    key_path.write_bytes(pem_key(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def _mail_owner(name: str = MAIL_USER) -> tuple[str, int, int]:
    """The system user that owns the mail files: ``vmail`` (made when missing) as root, the
    current user otherwise.

    Several test processes start their Dovecot at once on a new machine, so the user is made
    under a lock, and looked up again after ``useradd`` fails (another process made it
    first: exit status 9)."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _make_system_user(name)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _make_system_user(name: str) -> pwd.struct_passwd:
    lock = Path(tempfile.gettempdir()) / "mailintake-useradd.lock"  # one for every name
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(name)
        except KeyError:
            made = subprocess.run(  # noqa: S603
                ["useradd", "--system", "--user-group", "--no-create-home", name],  # noqa: S607
                check=False,
                capture_output=True,
                text=True,
            )
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise RuntimeError(
                f"cannot make the system user {name!r} for the mail files: useradd exited "
                f"{made.returncode}: {made.stderr.strip()}"
            ) from None


def _oauth2_conf(introspection_url: str, username_attribute: str, username_format: str) -> str:
    separator = "&" if "?" in introspection_url else "?"
    return (
        f"introspection_url = {introspection_url}{separator}resource={MAIL_RESOURCE}\n"
        "introspection_mode = post\n"
        f"username_attribute = {username_attribute}\n"
        f"username_format = {username_format}\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "timeout_msecs = 5000\n"
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


def start_dovecot(folder: Path, introspection_url: str) -> Dovecot:
    """Start Dovecot (IMAP, IMAPS, POP3, POP3S on 127.0.0.1 free ports) validating tokens
    at ``introspection_url`` (RFC 7662, POST, no client authentication); return once all
    four listeners greet. Should another process take one of the ports before Dovecot
    binds it, start again on others (three tries)."""
    for tries_left in (2, 1, 0):
        try:
            return _start(folder, introspection_url)
        except _PortTaken:
            if not tries_left:
                raise
    raise AssertionError("unreachable")


def _start(folder: Path, introspection_url: str) -> Dovecot:
    program = binary("dovecot")
    if program is None or not dovecot_installed():
        raise DovecotMissing(
            "dovecot (Debian packages dovecot-core dovecot-imapd dovecot-pop3d) is not installed"
        )
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
    (delegations / ".passwords").touch()
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
        f"""# written by sandbox/dovecot/launch.py; reads nothing from /etc/dovecot
instance_name = mailintake-test-{ports["imap"]}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log}
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {min(uid, 500) if uid else 1}
auth_mechanisms = xoauth2 oauthbearer plain login
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
# Many sessions at once (push benchmarks keep hundreds in IDLE): Dovecot's default of 100
# processes per service would queue the rest.
default_process_limit = 1000
default_client_limit = 5000
# IDLE learns of new mail by inotify, limited to 128 instances per user by default
# (fs.inotify.max_user_instances), and every session runs as the one mail user: past that,
# Dovecot looks at the folder every mailbox_idle_check_interval (default 30 s).
mailbox_idle_check_interval = 1 secs
# Session processes named after their user ("dovecot/imap [user 127.0.0.1 IDLE]"), so that
# a test can find the one serving a connection (Dovecot.sessions).
verbose_proctitle = yes
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
# Password logins, for reference clients without OAuth (fetchmail) only: accounts given a
# password with Dovecot.set_password; plaintext only over TLS (disable_plaintext_auth).
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%Lu {delegations}/.passwords
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
        process = subprocess.Popen(  # noqa: S603 (Debian's dovecot)
            [program, "-F", "-c", str(config)],
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
                failure = _PortTaken if "Address already in use" in said else RuntimeError
                raise failure(f"dovecot did not start: {said}") from None
            if time.monotonic() > deadline:
                server.stop()
                said = server.log_text()
                raise RuntimeError(f"dovecot did not listen within 15 s: {said}") from None
            time.sleep(0.05)
    return server
