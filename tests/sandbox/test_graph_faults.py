"""The faults the Graph emulator can be told to produce (sandbox.graph.faults), driven over
HTTP the way a client meets them on graph.microsoft.com."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from sandbox import http_clients
from sandbox.graph import GraphEmulator
from sandbox.graph.faults import LargeValues
from sandbox.idp import IdentityProvider
from tests.support.graph_sandbox import APP, BORIS, CARLA, IMMUTABLE, error_code, mime, user_token


def pages(http: httpx2.Client, url: str | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while url is not None:
        answer = http.get(url, headers=IMMUTABLE)
        assert answer.status_code == 200, answer.text
        found.append(answer.json())
        url = answer.json().get("@odata.nextLink")
    return found


def test_next_links_skip_over_items_that_are_not_messages(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    delivered = [graph.deliver(mailbox, mime(n)) for n in range(12)]
    graph.faults.interleave = 4  # one non-message item after every four messages
    start = f"{base}/users/{mailbox}/mailFolders/inbox/messages?$top=5&$select=id"
    bodies = pages(client, start)
    sizes = [len(b["value"]) for b in bodies]
    assert sizes == [4, 4, 4]  # shorter than $top: the slot went to an item not returned
    assert "$skip=5" in bodies[0]["@odata.nextLink"]
    assert "$skip=10" in bodies[1]["@odata.nextLink"]
    # Nothing lost; newest first (receivedDateTime desc).
    assert [m["id"] for b in bodies for m in b["value"]] == delivered[::-1]


def test_pages_capped_below_top(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    delivered = [graph.deliver(mailbox, mime(n)) for n in range(7)]
    graph.faults.page_cap = 3
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages?$top=100&$select=id"
    bodies = pages(client, url)
    assert [len(b["value"]) for b in bodies] == [3, 3, 1]
    assert [m["id"] for b in bodies for m in b["value"]] == delivered[::-1]


def test_a_next_link_goes_missing_while_more_mail_exists(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    for n in range(6):
        graph.deliver(mailbox, mime(n))
    graph.faults.drop_next_links = 1
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages?$top=2&$select=id"
    assert [len(b["value"]) for b in pages(client, url)] == [2]  # and no nextLink
    assert [len(b["value"]) for b in pages(client, url)] == [2, 2, 2]  # once only
    folder = client.get(f"{base}/users/{mailbox}/mailFolders/inbox").json()
    assert folder["totalItemCount"] == 6


def test_a_large_top_without_select_times_out(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.deliver(mailbox, mime(1))
    graph.faults.timeout_without_select = 100
    url = f"{base}/users/{mailbox}/mailFolders/inbox/messages"
    slow = client.get(f"{url}?$top=500")
    assert slow.status_code == 504
    assert error_code(slow) == "GatewayTimeout"
    assert client.get(f"{url}?$top=500&$select=id").status_code == 200
    assert client.get(f"{url}?$top=50").status_code == 200


def test_value_fails_for_one_message_as_often_as_told(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    bad = graph.deliver(mailbox, mime(1))
    good = graph.deliver(mailbox, mime(2))
    graph.faults.fail_message(bad, "value", 500, "ErrorMimeContentConversionFailed", times=2)
    graph.faults.fail_message(good, "value", 504, "GatewayTimeout", times=1)
    url = f"{base}/users/{mailbox}/messages/{{}}/$value"
    for _ in range(2):
        answer = client.get(url.format(bad))
        assert answer.status_code == 500
        assert error_code(answer) == "ErrorMimeContentConversionFailed"
    assert client.get(url.format(bad)).content == mime(1)
    assert client.get(url.format(good)).status_code == 504
    assert client.get(url.format(good)).content == mime(2)
    graph.faults.fail_message(good, "value", 404, "ErrorItemNotFound")
    assert error_code(client.get(url.format(good))) == "ErrorItemNotFound"


@pytest.mark.parametrize("fault", ["drop", "504"])
def test_value_of_a_large_message_never_arrives(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str, fault: str
) -> None:
    big = mime(2, attachment=b"x" * 4000)
    assert len(mime(1)) < 3000 < len(big)
    small = graph.deliver(mailbox, mime(1))
    large = graph.deliver(mailbox, big)
    graph.faults.large_values = LargeValues(above=3000, fault=fault, after=0.2)
    url = f"{base}/users/{mailbox}/messages/{{}}/$value"
    for _ in range(2):  # every time
        started = time.monotonic()
        if fault == "drop":
            with pytest.raises(httpx2.TransportError):
                client.get(url.format(large))
        else:
            answer = client.get(url.format(large))
            assert answer.status_code == 504
            assert error_code(answer) == "GatewayTimeout"
        assert time.monotonic() - started >= 0.2
    assert client.get(url.format(small)).content == mime(1)  # smaller ones come
    assert client.get(f"{base}/users/{mailbox}/mailFolders/inbox").status_code == 200
    graph.faults.reset()
    assert client.get(url.format(large)).content == big


def test_a_change_answers_404_although_the_message_stays(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    message_id = graph.deliver(mailbox, mime(1))
    graph.faults.fail_message(message_id, "patch", 404, "ErrorItemNotFound")
    url = f"{base}/users/{mailbox}/messages/{message_id}"
    answer = client.patch(url, json={"isRead": True})
    assert (answer.status_code, error_code(answer)) == (404, "ErrorItemNotFound")
    assert graph.messages(mailbox)[0]["isRead"] is False  # nothing happened


def test_delegates_with_read_only_or_no_folder_rights(
    idp: IdentityProvider, graph: GraphEmulator, base: str, mailbox: str
) -> None:
    message_id = graph.deliver(mailbox, mime(1))
    graph.add_delegate(mailbox, CARLA, rights="read")
    with http_clients.Client(headers={"Authorization": f"Bearer {user_token(idp, CARLA)}"}) as http:
        assert http.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages").status_code == 200
        url = f"{base}/users/{mailbox}/messages/{message_id}"
        for answer in (
            http.patch(url, json={"isRead": True}),
            http.post(f"{url}/move", json={"destinationId": "archive"}),
            http.delete(url),
        ):
            assert (answer.status_code, error_code(answer)) == (403, "ErrorAccessDenied")
        graph.add_delegate(mailbox, CARLA, rights="no_folders")
        answer = http.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages")
        assert (answer.status_code, error_code(answer)) == (404, "ErrorFolderNotFound")
        graph.add_delegate(mailbox, CARLA)
        assert http.patch(url, json={"isRead": True}).status_code == 200


def test_no_rights_can_look_like_not_found(
    idp: IdentityProvider, graph: GraphEmulator, base: str, mailbox: str
) -> None:
    headers = {"Authorization": f"Bearer {user_token(idp, CARLA)}"}
    url = f"{base}/users/{mailbox}/mailFolders"
    for code in ("ErrorItemNotFound", "MailboxNotEnabledForRESTAPI"):
        graph.faults.no_rights_as = code
        answer = http_clients.get(url, headers=headers)
        assert (answer.status_code, error_code(answer)) == (404, code)
    delegate = {"Authorization": f"Bearer {user_token(idp, BORIS)}"}
    assert http_clients.get(url, headers=delegate).status_code == 200


def test_an_application_access_policy_disables_odata(
    idp: IdentityProvider, graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.faults.app_policies[APP] = {"someone-else@contoso.onmicrosoft.com"}
    answer = client.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages")
    assert (answer.status_code, error_code(answer)) == (403, "ErrorAccessDenied")
    assert answer.json()["error"]["message"] == "Access to OData is disabled."
    graph.faults.app_policies[APP] = {mailbox}
    assert client.get(f"{base}/users/{mailbox}/mailFolders/inbox/messages").status_code == 200


def test_a_mailbox_without_an_archive_folder(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.remove_folder(mailbox, "archive")
    answer = client.get(f"{base}/users/{mailbox}/mailFolders/archive")
    assert (answer.status_code, error_code(answer)) == (404, "ErrorItemNotFound")
    names = {
        f["displayName"] for f in client.get(f"{base}/users/{mailbox}/mailFolders").json()["value"]
    }
    assert "Archive" not in names
    assert "Inbox" in names


def test_the_request_budget_per_app_and_mailbox(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.faults.budget = (3, 2.0)
    url = f"{base}/users/{mailbox}/mailFolders/inbox"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(url)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)
    assert client.get(url).status_code == 200


def test_503_and_504_for_the_next_requests(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str
) -> None:
    graph.faults.fail_next(1, 503, retry_after=2)
    graph.faults.fail_next(1, 504)
    url = f"{base}/users/{mailbox}/mailFolders/inbox"
    unavailable = client.get(url)
    assert (unavailable.status_code, error_code(unavailable)) == (503, "ServiceUnavailable")
    assert unavailable.headers["Retry-After"] == "2"
    timeout = client.get(url)
    assert (timeout.status_code, error_code(timeout)) == (504, "GatewayTimeout")
    assert client.get(url).status_code == 200


def test_the_listing_can_expand_the_message_size(
    graph: GraphEmulator, base: str, client: httpx2.Client, mailbox: str, token: str
) -> None:
    raw = mime(1, attachment=b"x" * 5000)
    graph.deliver(mailbox, raw)
    expand = "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08')"
    answer = client.get(
        f"{base}/users/{mailbox}/mailFolders/inbox/messages",
        params={"$select": "id", "$expand": expand},
    )
    assert answer.status_code == 200, answer.text
    (message,) = answer.json()["value"]
    assert message["singleValueExtendedProperties"] == [
        {"id": "Integer 0xe08", "value": str(len(raw))}
    ]
    other = client.get(
        f"{base}/users/{mailbox}/mailFolders/inbox/messages",
        params={"$expand": "attachments"},
    )
    assert other.status_code == 400
