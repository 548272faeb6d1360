"""Message keys: what names a message in the store (one import record per key and mailbox)
and in the folder output (one directory per key), so two messages must never share one.

A key is made of parts derived from the server's identifiers (a POP3 UIDL, an IMAP folder
name). ``key_part`` is one to one: an identifier that is already a plain, short, safe name
is its own part; any other is given a readable part, ``~`` (never in a plain part) and a
hash of the whole identifier. Plain identifiers keep the key earlier versions gave them.

Earlier versions (before migration 0007) replaced every run of other characters with ``_``
and stripped dots, so that ``AAMk+x1`` and ``AAMk/x1`` shared one key and the second message
was never imported. ``former_keys`` says which key a message may still have on disk from
them (the migration renames the import records).
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Plain: ASCII letters, digits, '.', '_', '-'; not starting with '.' or '_', not ending with
# either (earlier versions stripped those: such a name was not its own key).
_PLAIN = re.compile(r"[A-Za-z0-9-](?:[A-Za-z0-9._-]*[A-Za-z0-9-])?")
HASH_LENGTH = 16  # hex digits of SHA-256: 64 bits
MARK = "~"  # between the readable part and the hash; never in a plain part


def key_part(text: str, limit: int = 60) -> str:
    """A part of a message key for ``text``: at most ``limit`` characters, safe in a
    directory name (no separator, no leading dot), and different for different texts."""
    if limit < HASH_LENGTH + 2:
        raise ValueError(f"key_part: limit {limit} leaves no room for a hash")
    if len(text) <= limit and _PLAIN.fullmatch(text):
        return text
    readable = _UNSAFE.sub("_", text)[: limit - HASH_LENGTH - 1].strip("._") or "x"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable}{MARK}{digest[:HASH_LENGTH]}"


def former_key_part(text: str, limit: int = 60) -> str:
    """The part earlier versions gave ``text`` (not one to one)."""
    return _UNSAFE.sub("_", text)[:limit].strip("._") or "x"


def pop3_key(uidl: str) -> str:
    return f"pop3-{key_part(uidl, 100)}"


_PLAIN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


def pop3_keys(uidls: list[str]) -> list[str]:
    """``pop3_key`` of each UIDL, for a whole listing at once: when every UIDL is plain (as
    servers make them), checked and joined on the whole text, not one at a time."""
    if not uidls:
        return []
    text = "\n".join(uidls)
    plain = (
        text.isascii()
        and not text.encode("ascii").translate(None, _PLAIN_BYTES).strip(b"\n")
        and "\n\n" not in text
        and max(map(len, uidls)) <= 100
        and not any(edge in f"\n{text}\n" for edge in ("\n.", "\n_", ".\n", "_\n"))
    )
    if plain:  # each key is "pop3-" and the UIDL
        return f"pop3-{text}".replace("\n", "\npop3-").split("\n")
    return [pop3_key(uidl) for uidl in uidls]


def graph_key(identifier: str) -> str:
    """Graph's immutable ids are long and case-sensitive: the key is a hash of the id."""
    return f"graph-{hashlib.sha256(identifier.encode()).hexdigest()[:40]}"


@functools.lru_cache(maxsize=64)
def _folder_parts(folder: str) -> tuple[str, str, str]:
    """An IMAP folder's part of its keys: (earlier versions', today's, a short hash that
    both have). A mailbox has one folder: this runs once per folder, not per message."""
    digest = hashlib.sha256(folder.encode()).hexdigest()[:6]
    return former_key_part(folder, 30), key_part(folder, 30), digest


def imap_key_prefix(folder: str, uidvalidity: object) -> str:
    """What every key of an IMAP folder starts with; ``-<uid>`` follows."""
    _former, part, digest = _folder_parts(folder)
    return f"imap-{part}-{digest}-{uidvalidity}"


def former_keys(source: dict[str, Any]) -> list[str]:
    """The key earlier versions gave the message with this ``source`` (metadata.json's),
    where it differs from today's; several messages may have shared it."""
    if isinstance(source.get("uidl"), str):
        uidl = source["uidl"]
        former, today = f"pop3-{former_key_part(uidl, 100)}", pop3_key(uidl)
    elif {"folder", "uidvalidity", "uid"} <= source.keys():
        earlier, part, digest = _folder_parts(str(source["folder"]))
        tail = f"{digest}-{source['uidvalidity']}-{source['uid']}"
        former, today = f"imap-{earlier}-{tail}", f"imap-{part}-{tail}"
    else:
        return []
    return [former] if former != today else []
