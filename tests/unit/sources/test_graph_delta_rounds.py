"""A round of Graph delta requests (sources.graph_delta.Round), given the answers one after
the other: nextLinks followed as given, the query sent only with the first request,
``@removed`` entries left out, the deltaLink kept once the round is complete; which refusals
mean a lost sync state; which saved links belong to the configured Graph."""

from __future__ import annotations

from typing import Any

from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_delta import Round, lost, ours

FIRST = "https://graph.microsoft.com/v1.0/users/a@contoso.com/mailFolders/AAMk/messages/delta"
NEXT = "https://graph.microsoft.com/v1.0/users/a@contoso.com/mailfolders('AAMk')/messages/delta"


class Answers:
    """Graph's answers in order, and what each request asked."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = list(bodies)
        self.asked: list[tuple[str, dict[str, str] | None, dict[str, str]]] = []

    def __call__(
        self, url: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        self.asked.append((url, params, headers))
        return self.bodies.pop(0)


def test_a_round_follows_next_links_to_the_delta_link_and_leaves_out_removed() -> None:
    answers = Answers(
        {"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": f"{NEXT}?$skiptoken=s1"},
        {"value": [], "@odata.nextLink": f"{NEXT}?$skiptoken=s2"},  # empty, yet more follows
        {
            "value": [{"id": "3", "@removed": {"reason": "deleted"}}, {"id": "4"}],
            "@odata.deltaLink": f"{NEXT}?$deltatoken=d1",
        },
    )
    round_ = Round(answers, FIRST, {"$select": "id", "changeType": "created"})
    pages = list(round_.pages())
    assert pages == [[{"id": "1"}, {"id": "2"}], [{"id": "4"}]]
    assert round_.delta_link == f"{NEXT}?$deltatoken=d1"
    assert round_.requests == 3
    assert [(url, params) for url, params, _ in answers.asked] == [
        (FIRST, {"$select": "id", "changeType": "created"}),
        (f"{NEXT}?$skiptoken=s1", None),
        (f"{NEXT}?$skiptoken=s2", None),
    ]
    prefer = answers.asked[0][2]["Prefer"]
    assert 'IdType="ImmutableId"' in prefer
    assert "odata.maxpagesize=100" in prefer


def test_a_round_that_ends_without_a_link_has_no_delta_link() -> None:
    round_ = Round(Answers({"value": [{"id": "1"}]}), FIRST)
    assert list(round_.pages()) == [[{"id": "1"}]]
    assert round_.delta_link is None


def test_a_no_op_round_is_one_request_and_gives_nothing() -> None:
    answers = Answers({"value": [], "@odata.deltaLink": f"{NEXT}?$deltatoken=d1"})
    round_ = Round(answers, f"{NEXT}?$deltatoken=d1")
    assert list(round_.pages()) == []
    assert (round_.requests, round_.delta_link) == (1, f"{NEXT}?$deltatoken=d1")


def test_which_refusals_mean_the_sync_state_is_lost() -> None:
    def refused(status: int, code: str) -> GraphRefused:
        return GraphRefused("refused", status, code, "")

    assert lost(refused(410, ""))
    assert lost(refused(410, "resyncRequired"))
    assert lost(refused(400, "syncStateNotFound"))
    assert lost(refused(400, "SyncStateInvalid"))
    assert not lost(refused(400, "BadRequest"))
    assert not lost(refused(404, "ErrorItemNotFound"))


def test_a_saved_link_is_followed_only_on_the_configured_graph() -> None:
    assert ours(f"{NEXT}?$deltatoken=d1", "https://graph.microsoft.com/v1.0")
    assert not ours(f"{NEXT}?$deltatoken=d1", "http://127.0.0.1:8123/v1.0")
    assert not ours(None, "https://graph.microsoft.com/v1.0")
    assert not ours("", "https://graph.microsoft.com/v1.0")
