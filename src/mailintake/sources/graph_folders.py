"""The folders of a Graph mailbox by name: a well-known name (inbox, archive…), a display
name at the top of the mailbox, or a path of display names such as ``Inbox/Invoices``; a
name that is not there is answered with the names that are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2

from mailintake.errors import SourceError
from mailintake.oauth import graph_access
from mailintake.oauth.graph_access import Caller
from mailintake.sources.graph_answers import GraphRefused

WELL_KNOWN = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)

Request = Callable[..., httpx2.Response]  # (method, url, **options): a successful answer


class Folders:
    """Folder ids of one mailbox, each looked up once."""

    def __init__(
        self, name: str, mailbox: str, base: str, caller: Caller, request: Request
    ) -> None:
        self.name = name
        self.mailbox = mailbox
        self.base = base
        self.caller = caller
        self._request = request
        self._folder_ids: dict[str, str] = {}

    def folder_id(self, name: str) -> str:
        """The id of the folder ``name``: a well-known name (inbox, archive…), a display name
        at the top of the mailbox, or a path of display names below one another such as
        ``Inbox/Invoices``."""
        if name in self._folder_ids:
            return self._folder_ids[name]
        if name.lower() in WELL_KNOWN:
            # Resolved like any other: a mailbox may lack some (no Archive folder until
            # Outlook's one-click Archive was set up), and 404 would only come at the move.
            known = self._well_known(name.lower())
            self._folder_ids[name] = known
            return known
        found = self._child(None, name)
        if found is None and "/" in name:
            found = self._walk(name)
        if found is None:
            raise self._no_folder(name, None, [])
        self._folder_ids[name] = found
        return found

    def _walk(self, path: str) -> str:
        parent: str | None = None
        above: list[str] = []
        for segment in path.split("/"):
            if parent is None and segment.lower() in WELL_KNOWN:
                child: str | None = segment.lower()
            else:
                child = self._child(parent, segment)
            if child is None:
                raise self._no_folder(segment, parent, above)
            parent = child
            above.append(segment)
        assert parent is not None
        return parent

    def _well_known(self, name: str) -> str:
        try:
            answer = self._request(
                "GET",
                f"{self.base}/mailFolders/{quote(name, safe='')}",
                params={"$select": "id,displayName"},
            )
        except GraphRefused as exc:
            if exc.status != 404:
                raise
            raise self._no_folder(name, None, []) from None
        return str(answer.json()["id"])

    def _folders(self, parent: str | None, params: dict[str, str]) -> list[dict[str, Any]]:
        """A folder list; a 404 on it is Exchange saying the caller has no rights here."""
        try:
            answer = self._request("GET", self._folders_url(parent), params=params)
        except GraphRefused as exc:
            if exc.status == 404 and exc.code in graph_access.NOT_FOUND_MEANS_NO_RIGHTS:
                raise graph_access.no_rights(self.caller, exc.code, exc.detail) from None
            raise
        found: list[dict[str, Any]] = answer.json().get("value", [])
        return found

    def _folders_url(self, parent: str | None) -> str:
        if parent is None:
            return f"{self.base}/mailFolders"
        return f"{self.base}/mailFolders/{quote(parent, safe='')}/childFolders"

    def _child(self, parent: str | None, display_name: str) -> str | None:
        """The id of the folder called ``display_name`` at the top (``parent`` None) or
        below ``parent``."""
        escaped = display_name.replace("'", "''")
        found = self._folders(
            parent, {"$filter": f"displayName eq '{escaped}'", "$select": "id,displayName"}
        )
        return str(found[0]["id"]) if found else None

    def _no_folder(self, name: str, parent: str | None, above: list[str]) -> SourceError:
        """The folder is not there: say which ones are, to pick the right name."""
        listed = self._folders(parent, {"$select": "displayName", "$top": "50"})
        names = sorted(str(f.get("displayName", "")) for f in listed)
        where = f" in '{'/'.join(above)}'" if above else ""
        there = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") or "none"
        return SourceError(
            f"{self.name}: Graph has no folder named '{name}'{where} in {self.mailbox}; "
            f"the folders there: {there} (a folder below another is written as its path, "
            "for example Inbox/Invoices)"
        )
