"""A UIDL answer read as the listing of a POP3 mailbox: message numbers, UIDLs, message keys.

POP3 has no cursor, so every poll reads the whole answer (``n uidl`` a line, RFC 1939 §7)
and its cost is per message the server keeps. Servers make their UIDLs plain (letters,
digits, ``.``, ``_``, ``-``): such an answer is read as one text, with one replace and one
split, and each UIDL's key is ``pop3-`` and the UIDL (keys.pop3_key), taken from the same
split; the UIDL of a key is then its end, made only for the few messages that are new. Any
other answer is read as before (a line without a UIDL is passed over), so that its keys stay
the ones its messages were imported under.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailintake.keys import pop3_keys

PREFIX = "pop3-"
_PLAIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
# A UIDL that starts or ends with '.' or '_' is keyed with a hash (keys.key_part): looked
# for only in an answer that has one of them at all.
_EDGES = (b" .", b" _", b".\r", b"_\r", b".\n", b"_\n")
LONGEST = 100  # longer UIDLs are keyed with a hash


@dataclass(frozen=True)
class Listing:
    numbers: list[str]  # the message numbers, as the server wrote them (digits)
    keys: list[str]  # the message keys, in the same order
    # The UIDLs, when they are not the ends of their keys (None: they are).
    explicit: list[str] | None = None

    def uidl(self, index: int) -> str:
        if self.explicit is not None:
            return self.explicit[index]
        return self.keys[index][len(PREFIX) :]

    def uidls(self) -> list[str]:
        if self.explicit is not None:
            return self.explicit
        return [key[len(PREFIX) :] for key in self.keys]


def screen(answer: bytes) -> Listing:
    """The listing of a UIDL answer (its lines, each ending in CRLF or LF)."""
    lines = answer.count(b"\n") + (not answer.endswith(b"\n") and bool(answer))
    plain = not answer.translate(None, _PLAIN + b" \r\n")
    if plain and (b"." in answer or b"_" in answer):
        plain = not any(edge in answer for edge in _EDGES)
    if plain:
        # "n uidl" a line becomes "n pop3-uidl": one split gives numbers and keys in turn.
        words = answer.decode("ascii").replace(" ", f" {PREFIX}").split()
        numbers, keys = words[0::2], words[1::2]
        if (
            len(words) == 2 * lines
            and "".join(numbers).isdigit()
            and (not keys or len(PREFIX) < min(map(len, keys)))  # no empty UIDL
            and (not keys or max(map(len, keys)) <= len(PREFIX) + LONGEST)
        ):
            return Listing(numbers, keys)
    return _read(answer.splitlines())


def _read(lines: list[bytes]) -> Listing:
    """Any other answer, read as it always was (so its keys stay the ones its messages were
    imported under): as one text when it is a number and one word a line, else line by line."""
    words = b" ".join(lines).decode("ascii", "replace").split()
    numbers, uidls = words[0::2], words[1::2]
    if len(words) != 2 * len(lines) or not "".join(numbers).isdigit():
        numbers, uidls = [], []  # not one number and one UIDL a line: read line by line
        for line in lines:
            number, _, uidl = line.decode(errors="replace").strip().partition(" ")
            if number.isdigit() and uidl.strip():
                numbers.append(number)
                uidls.append(uidl.strip())
    return Listing(numbers, pop3_keys(uidls), uidls)
