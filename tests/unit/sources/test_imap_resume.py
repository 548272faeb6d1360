"""What an IMAP poll asks the server given the folder's checkpoint (sources.imap_resume)."""

from __future__ import annotations

from mailintake.sources.base import Resume
from mailintake.sources.imap_resume import Plan, plan
from mailintake.sources.pop3_listing import screen
from mailintake.store.checkpoints import Checkpoint, Failure


def resume(saved: Checkpoint | None, *failures: Failure) -> Resume:
    return Resume(saved, list(failures), lambda: set())


def failure(uid: int, *, due: bool, uidvalidity: int = 7, folder: str = "INBOX") -> Failure:
    source = {"folder": folder, "uidvalidity": uidvalidity, "uid": uid}
    return Failure(f"imap-{uid}", source, due)


SAVED = Checkpoint("INBOX", 7, 120)


def test_nothing_new_and_nothing_due_asks_nothing() -> None:
    assert plan(resume(SAVED), "INBOX", 7, 121).criteria is None
    waiting = plan(resume(SAVED, failure(5, due=False)), "INBOX", 7, 121)
    assert (waiting.criteria, waiting.retry) == (None, frozenset({5}))


def test_new_mail_is_searched_above_the_checkpoint_with_the_failures() -> None:
    assert plan(resume(SAVED), "INBOX", 7, 125).criteria == "UID 121:*"
    both = plan(resume(SAVED, failure(5, due=False), failure(6, due=True)), "INBOX", 7, 121)
    assert both.criteria == "UID 5:6,121:*"
    # failures of another folder or an earlier UIDVALIDITY are not this folder's UIDs
    other = plan(resume(SAVED, failure(9, due=True, uidvalidity=3)), "INBOX", 7, 121)
    assert other.criteria is None


def test_the_highest_uid_that_n_star_always_answers_is_left_out() -> None:
    searched = Plan("UID 5,121:*", 120, frozenset({5}))
    assert searched.kept([120]) == []
    assert searched.kept([5, 121, 130]) == [5, 121, 130]


def test_a_new_uidvalidity_lists_the_folder_whole_and_says_the_former_one() -> None:
    recreated = plan(resume(SAVED), "INBOX", 9, 3)
    assert (recreated.criteria, recreated.base, recreated.former) == ("ALL", 0, 7)


def test_without_a_checkpoint_the_folder_is_listed_whole() -> None:
    assert plan(resume(None), "INBOX", 7, 121) == Plan("ALL", 0, frozenset())
    assert plan(resume(Checkpoint("Other", 7, 120)), "INBOX", 7, 121).criteria == "ALL"


def test_a_uidl_answer_is_read_at_once_or_line_by_line() -> None:
    plain = screen(b"1 AAA\r\n2 BBB\r\n")
    assert (plain.numbers, plain.uidls(), plain.keys) == (
        ["1", "2"],
        ["AAA", "BBB"],
        ["pop3-AAA", "pop3-BBB"],
    )
    assert plain.explicit is None  # the UIDLs are the ends of the keys
    odd = screen(b"1 AAA\r\n2\r\n3 C+C\r\n")  # a line without a UIDL is passed over
    assert (odd.numbers, odd.uidls()) == (["1", "3"], ["AAA", "C+C"])
    assert odd.keys[1].startswith("pop3-C_C~")
    assert odd.uidl(1) == "C+C"
    inner = screen(b"1 a.b\r\n2 c_d\r\n")  # '.' and '_' inside a UIDL: plain
    assert (inner.keys, inner.explicit) == (["pop3-a.b", "pop3-c_d"], None)
    edge = screen(b"1 a.b\r\n2 .c_\r\n")  # at its start or end: keyed with a hash
    assert edge.uidls() == ["a.b", ".c_"]
    assert edge.keys[0] == "pop3-a.b"
    assert edge.keys[1] != "pop3-.c_"
