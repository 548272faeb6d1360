"""The line a page shows after a change ("Saved", "Polled: 3 imported, …"), chosen by a
message id in the address (``?notice=saved``), never written by it: a link from anyone
(an e-mail, another site) could otherwise put its own words in the admin's page, and keep
them through the sign-in that the link leads to.

Each id names a fixed text. Its fields are filled from the address only when they are what
they claim to be: counts (``imported``, ``skipped``, ``failed``) are small whole numbers,
and ``name`` must be one of the names the page lists (``names``). An unknown id, or a field
that does not pass, shows nothing.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping
from urllib.parse import urlencode

NOTICES = {
    "saved": "Saved",
    "enabled": "Enabled",
    "disabled": "Disabled",
    "mailbox_deleted": "Mailbox deleted",
    "server_saved": "Saved {name}",
    "server_deleted": "Server deleted",
    "server_reset": "Reset {name} to its shipped values",
    "polled": "Polled: {imported} imported, {skipped} skipped, {failed} failed",
    "poll_failed": (
        "Polled: {imported} imported, {skipped} skipped, {failed} failed. "
        "The poll did not finish: the reason is under Last error"
    ),
    "message_retried": "The message is tried again at the next poll",
    "message_skipped": "The message is skipped: never imported, never tried again",
}
COUNTS = frozenset({"imported", "skipped", "failed"})
_MAX_DIGITS = 9


def _fields(text: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(text) if field]


def notice_url(url: str, notice: str, **fields: str | int) -> str:
    """``url`` with the notice ``notice`` (one of NOTICES) and its fields."""
    if notice not in NOTICES:
        raise ValueError(f"unknown notice '{notice}'")
    return f"{url}?{urlencode({'notice': notice, **fields})}"


def notice_text(params: Mapping[str, str], names: Collection[str] = ()) -> str | None:
    """The text of the notice the address ``params`` asks for, or None (see the module)."""
    template = NOTICES.get(params.get("notice", ""))
    if template is None:
        return None
    values: dict[str, str] = {}
    for field in _fields(template):
        value = params.get(field, "")
        if field in COUNTS:
            if not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
                return None
            values[field] = str(int(value))
        elif field == "name" and value in names:
            values[field] = value
        else:
            return None
    return template.format(**values)
