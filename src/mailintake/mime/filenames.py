"""Attachment file names for the folder output (CONTRACT §5: ``attachments/<n>_<safe file
name>``): readable in any script, safe on the file systems captures are read from.

Kept: letters, digits, marks, punctuation and symbols of every script (NFC, the form Linux,
Windows and macOS shares agree on), so ``Rechnung März.pdf``, ``請求書.pdf``, ``חשבונית.pdf``
and emoji stay as they are. Replaced by ``_``: what is unsafe or deceptive in a name —
folder separators (the name's last part is kept), control and format characters
(bidirectional overrides such as U+202E make ``exe.pdf`` look like ``fdp.exe``), the
characters Windows reserves (``<>:"/\\|?*``), line and paragraph separators. Leading dots
(hidden files) and trailing dots and spaces (Windows drops them) are removed; Windows'
device names get a ``_`` in front. The whole name is at most ``MAX_NAME_BYTES`` bytes of
UTF-8 (file systems count bytes: 255 on most), cut between characters and never inside
a letter with its accents, the extension kept. A name with nothing readable left becomes
``attachment`` (with its extension).
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 200  # the whole "<n>_<name>", in UTF-8
MAX_EXTENSION = 16  # characters after the last dot still taken for an extension
FALLBACK = "attachment"
_WINDOWS = frozenset('<>:"/\\|?*')
_REPLACED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_READABLE = ("L", "N", "S")  # letters, numbers, symbols (emoji)
_RESERVED = frozenset(
    {
        "CON",
        "PRN",
        "AUX",
        "NUL",
        "CONIN$",
        "CONOUT$",
        *(f"{port}{n}" for port in ("COM", "LPT") for n in ("123456789¹²³")),
    }
)


def _replace_unsafe(text: str) -> str:
    """Each run of unsafe characters as one ``_``."""
    out: list[str] = []
    replaced = False
    for char in text:
        if char in _WINDOWS or unicodedata.category(char) in _REPLACED:
            if not replaced:
                out.append("_")
            replaced = True
        else:
            out.append(char)
            replaced = False
    return "".join(out)


def _cut(text: str, most_bytes: int) -> str:
    """The longest start of ``text`` of at most ``most_bytes`` bytes of UTF-8 that ends
    between two characters, and not between a letter and its combining marks."""
    if len(text.encode("utf-8")) <= most_bytes:
        return text
    cut = text.encode("utf-8")[: max(0, most_bytes)].decode("utf-8", "ignore")
    while cut and unicodedata.combining(text[len(cut)]):
        cut = cut[:-1]  # the mark that follows belongs to the last letter kept
    return cut


def _readable(text: str) -> bool:
    return any(unicodedata.category(char).startswith(_READABLE) for char in text)


def safe_filename(name: str, index: int, taken: set[str]) -> str:
    """``<n>_<name>`` safe on every file system: no path, no control or reserved names,
    at most ``MAX_NAME_BYTES`` bytes, unique within the message (``taken``, compared as
    case-insensitive file systems do)."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _replace_unsafe(base).strip(" .")
    stem, dot, extension = base.rpartition(".")
    if not dot or not stem or len(extension) > MAX_EXTENSION or not _readable(extension):
        stem, extension = base, ""
    stem = stem.rstrip(" .")
    if not _readable(stem):
        stem = FALLBACK
    if stem.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        stem = f"_{stem}"
    suffix = f".{extension}" if extension else ""
    while True:
        prefix = f"{index}_"
        room = MAX_NAME_BYTES - len(prefix.encode()) - len(suffix.encode("utf-8"))
        kept = _cut(stem, room).rstrip(" .")
        candidate = f"{prefix}{kept if _readable(kept) else FALLBACK}{suffix}"
        if candidate.casefold() not in taken:
            taken.add(candidate.casefold())
            return candidate
        index += 1000
