"""The Graph emulator's delta query for a folder's messages (sandbox.graph.delta), driven over
HTTP as Microsoft documents it (message-delta.md, delta-query-messages.md): rounds of
nextLinks ending in a deltaLink, only what changed since, ``@removed`` for what left the
folder, ``changeType``, ``Prefer: odata.maxpagesize``, and 410 Gone for a lost sync state."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from sandbox.graph import GraphEmulator
from tests.support.graph_sandbox import IMMUTABLE, error_code, mime

PAGED = {"Prefer": 'IdType="ImmutableId", odata.maxpagesize=2'}


def round_of(
    http: httpx2.Client, url: str, params: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """One whole round: every value, the deltaLink, how many requests it took."""
    values: list[dict[str, Any]] = []
    requests = 0
    next_url: str | None = url
    while next_url is not None:
        answer = http.get(next_url, params=params, headers=PAGED)
        requests += 1
        params = None
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        values.extend(body["value"])
        next_url = body.get("@odata.nextLink")
        if next_url is None:
            return values, body["@odata.deltaLink"], requests
    raise AssertionError("unreachable")


def start(base: str, address: str, folder: str = "inbox") -> str:
    return f"{base}/users/{address}/mailFolders/{folder}/messages/delta"


def test_a_first_round_gives_every_message_in_pages_then_a_delta_link(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    ids = [graph.deliver(mailbox, mime(n)) for n in range(5)]
    graph.deliver(mailbox, mime(99), "archive")  # another folder: not in this round
    values, link, requests = round_of(client, start(base, mailbox), {"$select": "subject,isRead"})
    assert [v["id"] for v in values] == ids
    assert requests == 3  # 2 + 2 + 1
    assert set(values[0]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}
    query = parse_qs(urlsplit(link).query)
    assert list(query) == ["$deltatoken"]  # $select is encoded in the token
    assert "mailFolders('" in link


def test_the_next_round_gives_only_what_changed_and_removed_entries(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    kept, read, moved = (graph.deliver(mailbox, mime(n)) for n in range(3))
    _, link, _ = round_of(client, start(base, mailbox), {"$select": "subject"})
    nothing, same, requests = round_of(client, link)
    assert (nothing, same, requests) == ([], link, 1)  # nothing changed: the same link
    new = graph.deliver(mailbox, mime(3))
    assert client.patch(
        f"{base}/users/{mailbox}/messages/{read}", json={"isRead": True}, headers=IMMUTABLE
    ).is_success
    archive = graph.folder_id(mailbox, "archive")
    assert client.post(
        f"{base}/users/{mailbox}/messages/{moved}/move",
        json={"destinationId": archive},
        headers=IMMUTABLE,
    ).is_success
    values, after, _ = round_of(client, link)
    assert after != link
    changed = {v["id"]: v for v in values}
    assert set(changed) == {read, moved, new}
    assert kept not in changed
    assert changed[moved]["@removed"] == {"reason": "deleted"}
    assert "@removed" not in changed[read]
    assert "@removed" not in changed[new]
    assert changed[new]["subject"] == "Invoice 003"
    assert round_of(client, after)[0] == []


def test_change_type_created_leaves_out_changed_messages(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    first = graph.deliver(mailbox, mime(1))
    values, link, _ = round_of(client, start(base, mailbox), {"changeType": "created"})
    assert [v["id"] for v in values] == [first]  # the first round gives everything
    client.patch(f"{base}/users/{mailbox}/messages/{first}", json={"isRead": True})
    second = graph.deliver(mailbox, mime(2))
    values, _, _ = round_of(client, link)
    assert [v["id"] for v in values] == [second]


def test_a_message_moved_back_in_is_new_there(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    message = graph.deliver(mailbox, mime(1))
    _, link, _ = round_of(client, start(base, mailbox), {"changeType": "created"})
    for folder in ("archive", "inbox"):
        target = graph.folder_id(mailbox, folder)
        client.post(
            f"{base}/users/{mailbox}/messages/{message}/move",
            json={"destinationId": target},
            headers=IMMUTABLE,
        )
    values, _, _ = round_of(client, link)
    assert [v["id"] for v in values] == [message]  # out and back: new in the inbox


def test_a_forgotten_sync_state_answers_410_with_the_restart_url(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.deliver(mailbox, mime(1))
    graph.deliver(mailbox, mime(2))
    graph.deliver(mailbox, mime(3))
    _, link, _ = round_of(client, start(base, mailbox))
    first = client.get(start(base, mailbox), headers=PAGED).json()
    graph.faults.forget_sync_states()
    for url in (link, first["@odata.nextLink"]):
        answer = client.get(url, headers=PAGED)
        assert answer.status_code == 410
        assert error_code(answer) == "syncStateNotFound"
        assert answer.headers["Location"].endswith("/messages/delta?$deltatoken=")
    graph.faults.forget_sync_states("resyncRequired")
    _, fresh, _ = round_of(client, start(base, mailbox))
    graph.faults.forget_sync_states("resyncRequired")
    assert error_code(client.get(fresh, headers=PAGED)) == "resyncRequired"
    unknown = f"{start(base, mailbox)}?$deltatoken=never-given"
    assert client.get(unknown, headers=PAGED).status_code == 410


def test_a_token_of_another_folder_is_not_followed(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    _, link, _ = round_of(client, start(base, mailbox))
    token = parse_qs(urlsplit(link).query)["$deltatoken"][0]
    elsewhere = f"{start(base, mailbox, 'archive')}?$deltatoken={token}"
    assert client.get(elsewhere, headers=PAGED).status_code == 410


def test_only_the_documented_query_options(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    url = start(base, mailbox)
    refused = [
        {"$filter": "isRead eq false"},
        {"$orderby": "subject"},
        {"$search": '"invoice"'},
        {"changeType": "moved"},
    ]
    for params in refused:
        assert client.get(url, params=params).status_code == 400, params
    allowed = {"$filter": "receivedDateTime ge 2020-01-01T00:00:00Z"}
    graph.deliver(mailbox, mime(1))
    assert len(client.get(url, params=allowed).json()["value"]) == 1


@pytest.mark.no_cover  # the emulator's work (sandbox/ is not in the coverage report)
def test_a_no_op_round_costs_what_changed_not_what_is_kept(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    box = graph.store.mailbox(mailbox)
    assert box is not None
    inbox = box.folder("inbox")
    assert inbox is not None
    # mime(n) for each n, from one that the standard library wrote (it takes a millisecond
    # a message): the number is all that differs between them.
    template = mime(7)
    for n in range(1000):  # four pages of 250 kept: the round after them asks one
        raw = template.replace(b"Invoice 007", b"Invoice %03d" % n)
        graph.store.deliver(box, raw.replace(b"invoice-7@", b"invoice-%d@" % n), inbox)
    pages = {"Prefer": "odata.maxpagesize=250"}
    answer = client.get(start(base, mailbox), headers=pages)
    url: str | None = answer.json()["@odata.nextLink"]
    rounds = 1
    while url:
        rounds += 1
        body = client.get(url, headers=pages).json()
        url = body.get("@odata.nextLink")
        link = body.get("@odata.deltaLink")
    assert rounds == 4  # four pages, the last with the delta link
    graph.reset_stats()
    assert client.get(link).json()["value"] == []
    assert graph.stats["requests"] == 1
