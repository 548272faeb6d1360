"""The Graph mail emulator, driven over HTTP with real tokens from the sandbox identity
provider, the way mailintake's Graph source will drive graph.microsoft.com."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx2

from sandbox import http_clients
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph_sandbox import (
    BORIS,
    CARLA,
    DOMAIN,
    GRAPH,
    IMMUTABLE,
    READ_APP,
    app_token,
    error_code,
    mime,
    user_token,
)

# --- listing and reading ------------------------------------------------------------------


def test_paging_follows_the_whole_next_link_across_three_pages(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    delivered = [graph.deliver(mailbox, mime(n)) for n in range(25)]
    url: str | None = (
        f"{base}/users/{mailbox}/mailFolders/Inbox/messages"
        "?$top=10&$select=subject,isRead,internetMessageId"
    )
    pages: list[list[dict[str, Any]]] = []
    while url is not None:
        answer = client.get(url, headers=IMMUTABLE)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["@odata.context"].endswith("(subject,isRead,internetMessageId)")
        pages.append(body["value"])
        url = body.get("@odata.nextLink")
        if url is not None:
            assert "$skip=" in url
            assert "$top=10" in url
    assert [len(p) for p in pages] == [10, 10, 5]
    values = [m for p in pages for m in p]  # newest first (receivedDateTime desc)
    assert [m["id"] for m in values] == delivered[::-1]
    assert [m["subject"] for m in values] == [f"Invoice {n:03d}" for n in range(24, -1, -1)]
    assert set(values[0]) == {"@odata.etag", "id", "subject", "isRead", "internetMessageId"}
    # Without $top the page holds 10, newest first (receivedDateTime desc).
    default = client.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages").json()
    assert [m["subject"] for m in default["value"]] == [
        f"Invoice {n:03d}" for n in range(24, 14, -1)
    ]
    assert default["value"][0]["from"]["emailAddress"]["address"] == "billing@fabrikam.example"


def test_value_returns_the_mime_bytes_unchanged(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    raw = mime(1, attachment=bytes(range(256)) * 800)
    message_id = graph.deliver(mailbox, raw)
    with client.stream("GET", f"{base}/users/{mailbox}/messages/{message_id}/$value") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert b"".join(answer.iter_bytes()) == raw
    listed = client.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages", headers=IMMUTABLE)
    assert listed.json()["value"][0]["hasAttachments"] is True


def test_filter_keeps_the_messages_every_clause_keeps(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.deliver(mailbox, mime(1), is_read=True)
    unread = graph.deliver(mailbox, mime(2))
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages"
    found = client.get(url, params={"$filter": "isRead eq false"}, headers=IMMUTABLE).json()
    assert [m["id"] for m in found["value"]] == [unread]
    both = "receivedDateTime ge 2000-01-01T00:00:00Z and isRead eq false"
    accepted = client.get(url, params={"$filter": both}, headers=IMMUTABLE)
    assert [m["id"] for m in accepted.json()["value"]] == [unread]
    none = client.get(url, params={"$filter": "receivedDateTime lt 2000-01-01T00:00:00Z"})
    assert none.json()["value"] == []


def test_query_options_not_emulated_answer_400(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.deliver(mailbox, mime(1))
    for url in (
        f"{base}/users/{mailbox}/mailFolders/inbox/messages",
        f"{base}/users/{mailbox}/mailFolders",
    ):
        for option in ("$orderby", "$count", "$skiptoken", "$search"):
            refused = client.get(url, params={option: "true"})
            assert refused.status_code == 400, (url, option)
            assert error_code(refused) == "BadRequest"
            assert option in refused.json()["error"]["message"]


# --- ids and mutations --------------------------------------------------------------------


def test_regular_ids_change_on_a_move_and_immutable_ids_do_not(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    immutable = graph.deliver(mailbox, mime(1))
    inbox = f"{base}/users/{mailbox}/mailFolders/inbox/messages"
    regular = client.get(inbox).json()["value"][0]["id"]
    assert regular != immutable
    answer = client.get(inbox, headers=IMMUTABLE)
    assert answer.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    assert answer.json()["value"][0]["id"] == immutable

    moved = client.post(
        f"{base}/users/{mailbox}/messages/{regular}/move", json={"destinationId": "archive"}
    )
    assert moved.status_code == 201
    new_regular = moved.json()["id"]
    assert new_regular not in (regular, immutable)
    assert moved.json()["parentFolderId"] == graph.folder_id(mailbox, "archive")
    gone = client.get(f"{base}/users/{mailbox}/messages/{regular}")
    assert gone.status_code == 404
    assert error_code(gone) == "ErrorItemNotFound"
    assert client.get(f"{base}/users/{mailbox}/messages/{new_regular}").status_code == 200

    again = client.post(
        f"{base}/users/{mailbox}/messages/{immutable}/move",
        json={"destinationId": "inbox"},
        headers=IMMUTABLE,
    )
    assert again.status_code == 201
    assert again.json()["id"] == immutable
    assert graph.folder_of(mailbox, immutable) == "inbox"


def test_mark_read_with_patch(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    message_id = graph.deliver(mailbox, mime(1))
    answer = client.patch(
        f"{base}/users/{mailbox}/messages/{message_id}", json={"isRead": True}, headers=IMMUTABLE
    )
    assert answer.status_code == 200
    assert answer.json()["isRead"] is True
    assert graph.messages(mailbox)[0]["isRead"] is True
    refused = client.patch(f"{base}/users/{mailbox}/messages/{message_id}", json={"subject": "x"})
    assert refused.status_code == 400


def test_move_to_a_folder_found_by_display_name(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    processed = graph.add_folder(mailbox, "Processed")
    message_id = graph.deliver(mailbox, mime(1))
    found = client.get(
        f"{base}/users/{mailbox}/mailFolders", params={"$filter": "displayName eq 'processed'"}
    )
    assert found.status_code == 200
    assert [f["id"] for f in found.json()["value"]] == [processed]
    # A display name is not an id (the client must resolve it first).
    malformed = client.post(
        f"{base}/users/{mailbox}/messages/{message_id}/move", json={"destinationId": "Processed"}
    )
    assert malformed.status_code == 400
    assert error_code(malformed) == "ErrorInvalidIdMalformed"
    moved = client.post(
        f"{base}/users/{mailbox}/messages/{message_id}/move",
        json={"destinationId": processed},
        headers=IMMUTABLE,
    )
    assert moved.status_code == 201
    assert graph.folder_of(mailbox, message_id) == "Processed"
    inbox = client.get(f"{base}/users/{mailbox}/mailFolders('Inbox')").json()
    assert (inbox["displayName"], inbox["totalItemCount"]) == ("Inbox", 0)
    child = graph.add_folder(mailbox, "2026", parent=processed)
    children = client.get(f"{base}/users/{mailbox}/mailFolders/{processed}/childFolders").json()
    assert [f["id"] for f in children["value"]] == [child]


def test_delete_moves_to_deleted_items_then_out_of_sight(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    message_id = graph.deliver(mailbox, mime(1))
    url = f"{base}/users/{mailbox}/messages/{message_id}"
    assert client.delete(url).status_code == 204
    assert graph.folder_of(mailbox, message_id) == "deleteditems"
    assert client.delete(url).status_code == 204
    assert graph.folder_of(mailbox, message_id) == "recoverableitemsdeletions"
    assert client.get(f"{base}/users/{mailbox}/messages").json()["value"] == []
    assert client.get(f"{base}/users/{mailbox}/messages/AAkALgNoSuchMessage=").status_code == 404


# --- authentication and authorization -----------------------------------------------------


def test_a_bad_token_gets_401_with_a_bearer_challenge(
    idp: IdentityProvider, graph: GraphEmulator, base: str, mailbox: str
) -> None:
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages"
    imap_token = app_token(idp, resource="https://outlook.office365.com")
    for headers in (
        {"Authorization": "Bearer not-a-token"},
        {},
        {"Authorization": f"Bearer {imap_token}"},  # a token for another resource
    ):
        answer = http_clients.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert error_code(answer) == "InvalidAuthenticationToken"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer ")


def test_permissions_decide_what_a_token_may_do(
    idp: IdentityProvider, graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    message_id = graph.deliver(mailbox, mime(1))
    reader = {"Authorization": f"Bearer {app_token(idp, READ_APP)}"}
    url = f"{base}/users/{mailbox}/messages/{message_id}"
    assert http_clients.get(url, headers=reader, timeout=10).status_code == 200
    refused = http_clients.patch(url, json={"isRead": True}, headers=reader, timeout=10)
    assert refused.status_code == 403
    assert error_code(refused) == "ErrorAccessDenied"
    unknown = client.get(f"{base}/users/nobody@{DOMAIN}/messages")
    assert unknown.status_code == 404
    assert error_code(unknown) == "ErrorInvalidUser"
    me = client.get(f"{base}/me/messages")  # app-only tokens have no /me
    assert me.status_code == 400


def test_a_user_who_is_not_a_delegate_is_denied(
    idp: IdentityProvider, graph: GraphEmulator, base: str, mailbox: str
) -> None:
    headers = {"Authorization": f"Bearer {user_token(idp, CARLA)}"}
    answer = http_clients.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages", headers=headers)
    assert answer.status_code == 403
    assert error_code(answer) == "ErrorAccessDenied"
    assert answer.json()["error"]["message"] == "Access is denied. Check credentials and try again."


def test_a_delegate_reads_the_shared_mailbox_and_its_own(
    idp: IdentityProvider, graph: GraphEmulator, base: str, mailbox: str
) -> None:
    shared_id = graph.deliver(mailbox, mime(1))
    if graph.store.mailbox(BORIS) is None:
        graph.add_mailbox(BORIS)
    own_id = graph.deliver(BORIS, mime(2))
    with http_clients.Client(
        headers={"Authorization": f"Bearer {user_token(idp, BORIS)}", **IMMUTABLE}, timeout=10
    ) as http:
        shared = http.get(f"{base}/users/{mailbox}/mailFolders('Inbox')/messages")
        assert shared.status_code == 200
        assert [m["id"] for m in shared.json()["value"]] == [shared_id]
        assert http.patch(
            f"{base}/users/{mailbox}/messages/{shared_id}", json={"isRead": True}
        ).is_success
        own = http.get(f"{base}/me/mailFolders/inbox/messages")
        assert own_id in [m["id"] for m in own.json()["value"]]
    # Without a .Shared permission the delegate cannot open someone else's mailbox.
    plain = user_token(idp, BORIS, scope=f"{GRAPH}/Mail.ReadWrite")
    answer = http_clients.get(
        f"{base}/users/{mailbox}/messages", headers={"Authorization": f"Bearer {plain}"}
    )
    assert answer.status_code == 403


# --- throttling and latency ---------------------------------------------------------------


def test_throttle_next_answers_429_with_retry_after(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.throttle_next(2, retry_after=3)
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages"
    for _ in range(2):
        answer = client.get(url)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "3"
        assert error_code(answer) == "TooManyRequests"
    assert client.get(url).status_code == 200
    assert graph.stats["throttled"] == 2
    assert graph.stats["requests"] == 3


def test_more_than_four_concurrent_requests_per_app_and_mailbox_are_refused(
    graph: GraphEmulator, base: str, token: str, mailbox: str
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    graph.add_mailbox(other)
    graph.latency = 0.5
    targets = [mailbox] * 5 + [other] * 2
    barrier = threading.Barrier(len(targets))
    results: list[tuple[str, httpx2.Response]] = []

    def call(address: str) -> None:
        with http_clients.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            barrier.wait()
            answer = http.get(f"{base}/users/{address}/mailFolders/inbox/messages")
            results.append((address, answer))

    threads = [threading.Thread(target=call, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mine = [a for t, a in results if t == mailbox]
    refused = [a for a in mine if a.status_code == 429]
    assert len(refused) >= 1
    assert sum(a.status_code == 200 for a in mine) >= 1
    assert refused[0].headers["Retry-After"] == "1"
    assert error_code(refused[0]) == "ApplicationThrottled"
    # Another mailbox has its own allowance.
    assert all(a.status_code == 200 for t, a in results if t == other)
    assert graph.stats["max_concurrency_seen"] <= 4


def test_latency_is_added_to_every_request(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.latency = 0.2
    started = time.monotonic()
    assert client.get(f"{base}/users/{mailbox}/mailFolders/inbox").status_code == 200
    assert time.monotonic() - started >= 0.2
    path = f"/v1.0/users/{mailbox}/mailFolders/inbox"
    assert graph.stats["by_path"] == {f"GET {path}": 1}
