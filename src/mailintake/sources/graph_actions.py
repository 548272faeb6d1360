"""The after-import actions on Graph (oauth-facts §3.3): mark read, move, delete, one
request a message, four at once; a 404 counts as done only when a GET confirms it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mailintake.enums import AfterImport
from mailintake.errors import SourceError
from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_downloads import CONCURRENCY
from mailintake.sources.graph_folders import Request

if TYPE_CHECKING:
    from mailintake.sources.graph import GraphSettings


class Actions:
    """The mailbox's after-import action, applied to imported messages."""

    def __init__(
        self,
        name: str,
        settings: GraphSettings,
        base: str,
        request: Request,
        folder_id: Callable[[str], str],
    ) -> None:
        self.name = name
        self.settings = settings
        self.base = base
        self._request = request
        self._folder_id = folder_id

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        if self.settings.after_import == AfterImport.KEEP or not sources:
            return
        if self.settings.after_import == AfterImport.MOVE:
            self._folder_id(self.settings.move_to or "")
        # Every message's action is tried, whatever another's answer: a refusal must not
        # cancel the actions queued behind it (Executor.map would), which would be done
        # only at the next poll. The first refusal is then reported.
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            tried = [pool.submit(self._ack_one, source) for source in sources]
        for outcome in tried:
            if (refused := outcome.exception()) is not None:
                raise refused

    def _ack_one(self, source: dict[str, Any]) -> None:
        url = f"{self.base}/messages/{quote(str(source['id']), safe='')}"
        action = self.settings.after_import
        try:
            if action == AfterImport.MARK_READ:
                self._request("PATCH", url, json={"isRead": True})
            elif action == AfterImport.MOVE:
                target = self._folder_id(self.settings.move_to or "")
                self._request("POST", f"{url}/move", json={"destinationId": target})
            elif action == AfterImport.DELETE:
                self._request("DELETE", url)
        except GraphRefused as exc:
            if exc.status != 404 or exc.code != "ErrorItemNotFound":
                raise
            self._confirm(url, str(source["id"]), exc)

    def _confirm(self, url: str, identifier: str, refused: GraphRefused) -> None:
        """Graph said the message is not there: done only if a GET agrees (gone, or already
        where the action puts it); else the action failed. A 404 has been seen for messages
        that still existed (kellylford/QuickMail#366) and for moves that were done
        (microsoftgraph/msgraph-sdk-php#285): it decides nothing by itself."""
        try:
            answer = self._request("GET", url, params={"$select": "id,parentFolderId,isRead"})
        except GraphRefused as exc:
            if exc.status == 404:
                return  # gone from the mailbox: moved or deleted before
            raise
        message = answer.json()
        action = self.settings.after_import
        where = str(message.get("parentFolderId", ""))
        if action == AfterImport.MARK_READ and message.get("isRead") is True:
            return
        if action == AfterImport.MOVE and where == self._folder_id(self.settings.move_to or ""):
            return
        if action == AfterImport.DELETE and where != self._folder_id(self.settings.folder):
            return
        if where == self._folder_id(self.settings.folder):
            state = f"still in '{self.settings.folder}'"
        else:
            state = "in another folder" + (
                "" if action == AfterImport.MARK_READ else f" than '{self.settings.move_to}'"
            )
        raise SourceError(
            f"{self.name}: Graph answered 404 {refused.code} to {action} of message "
            f"{identifier}, but the message is {state}"
            + (" and unread" if action == AfterImport.MARK_READ else "")
            + "; the action is not recorded as done and is tried again at the next poll"
        )


__all__ = ["Actions"]
