"""SecretBox: encrypts secrets at rest (Fernet), with key loading and rotation.

The key comes from ``MAILINTAKE_SECRET_KEY`` (one key, or several separated by commas: the
first encrypts, all decrypt) or from ``$MAILINTAKE_HOME/secret.key`` (created mode 0600 on
first use). During a rotation the new key is written to ``secret.key.new`` first, so a crash
at any point leaves a key that opens every stored secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mailintake.errors import SecretKeyError
from mailintake.observability.logging import register_secret

KEY_FILE = "secret.key"
NEW_KEY_FILE = "secret.key.new"
_KEY_HINT = "a key is 44 URL-safe base64 characters; make one with: mailintake secrets generate-key"


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:12]


def _fernet(key: str, source: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretKeyError(f"{source} does not hold a valid secret key ({_KEY_HINT})") from None


class SecretBox:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: Sequence[str], source: str = "the secret key") -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        self.keys = tuple(k.strip() for k in keys)
        self.source = source
        self._fernet = MultiFernet([_fernet(k, source) for k in self.keys])

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.keys[0])

    def encrypt(self, plaintext: str) -> str:
        register_secret(plaintext)
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            plaintext = self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"a stored secret cannot be decrypted with {self.source}: it was encrypted "
                "with another key, or the database was changed outside mailintake"
            ) from None
        register_secret(plaintext)
        return plaintext

    def keyed_digest(self, purpose: str, material: str) -> str:
        """An HMAC-SHA256 of ``material`` under a key derived from the first secret key for
        ``purpose``: the same for every process with that key, and without the key it
        reveals nothing of ``material`` (a client secret in it cannot be guessed by hashing
        candidates). It changes when the key is rotated."""
        derived = hmac.new(self.keys[0].encode("ascii"), purpose.encode(), hashlib.sha256)
        return hmac.new(derived.digest(), material.encode(), hashlib.sha256).hexdigest()

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` (readable by any key) with the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(
                f"a stored secret cannot be decrypted with {self.source}"
            ) from None

    def __repr__(self) -> str:
        return f"SecretBox(fingerprint={self.fingerprint})"


def _read_key_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"{path} can be read by other users (mode {mode:o}); run: chmod 600 {path}"
        )
    text = path.read_text(encoding="ascii").strip()
    _fernet(text, str(path))
    return text


def write_key_file(path: Path, key: str) -> None:
    """Create ``path`` with mode 0600 holding ``key``, atomically; FileExistsError if it exists.

    The key is written to a private temporary file first and then linked into place, so
    another process never reads a half-written key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_box(env_value: str | None, home: Path, *, create: bool) -> SecretBox | None:
    """The box from MAILINTAKE_SECRET_KEY, else from the key file(s) in ``home``.

    Returns ``None`` when there is no key and ``create`` is false; with ``create`` a new key
    file is made (mode 0600).
    """
    if env_value:
        keys = [k for k in env_value.split(",") if k.strip()]
        return SecretBox(keys, source="MAILINTAKE_SECRET_KEY")
    key_path = home / KEY_FILE
    new_path = home / NEW_KEY_FILE
    keys = []
    if key_path.exists():
        keys.append(_read_key_file(key_path))
    if new_path.exists():
        keys.insert(0, _read_key_file(new_path))
    if keys:
        return SecretBox(keys, source=str(key_path))
    if not create:
        return None
    with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
        write_key_file(key_path, generate_key())
    return SecretBox([_read_key_file(key_path)], source=str(key_path))


def finish_rotation(home: Path) -> None:
    """After every secret is re-encrypted with secret.key.new, make it the key file."""
    new_path = home / NEW_KEY_FILE
    if new_path.exists():
        os.replace(new_path, home / KEY_FILE)
        dir_fd = os.open(home, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
