"""Message keys are one to one and safe as directory names; plain identifiers keep the key
earlier versions gave them; the migration's frozen copy of the rules agrees with them."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailintake.keys import (
    MARK,
    former_key_part,
    former_keys,
    graph_key,
    imap_key_prefix,
    key_part,
    pop3_key,
    pop3_keys,
)
from mailintake.sources.pop3_listing import _read, screen

migration: Any = importlib.import_module(
    "mailintake.store.migrations.versions.0007_one_to_one_message_keys"
)

# Exchange-style UIDLs that differ only in '+', '/', '=', '_' and '.': earlier versions gave
# all six the key pop3-AAMk_x1.
SIX = ["AAMk+x1", "AAMk/x1", "AAMk=x1", "AAMk_x1", "AAMk+/x1", ".AAMk_x1."]
# What identifiers are made of: base64 and its URL form, dots, and any other text.
IDENTIFIER = st.one_of(
    st.text(alphabet="AaBb01+/=_.-~ ", max_size=12),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=90, max_size=130),
)


def safe_name(name: str, limit: int) -> None:
    assert name
    assert len(name) <= limit
    assert name not in (".", "..")
    assert not name.startswith(".")
    assert not {"/", "\\", "\0"} & set(name)
    assert name.isascii()
    assert name.isprintable()


def test_uidls_that_differ_in_punctuation_get_different_keys() -> None:
    assert {former_key_part(uidl, 100) for uidl in SIX} == {"AAMk_x1"}
    keys = [pop3_key(uidl) for uidl in SIX]
    assert len(set(keys)) == len(SIX)
    assert keys[3] == "pop3-AAMk_x1"  # plain: the key it had
    assert all(key.startswith("pop3-AAMk_x1~") for key in keys[:3] + keys[4:])


@pytest.mark.parametrize(
    "identifier",
    ["00000001591e6c4a", "UID123-abc.def", "GmailId18c2f", "INBOX", "Sent-Items_2026", "-x"],
)
def test_plain_identifiers_keep_their_key(identifier: str) -> None:
    assert key_part(identifier, 100) == former_key_part(identifier, 100) == identifier
    assert former_keys({"uidl": identifier}) == []
    assert former_keys({"folder": identifier, "uidvalidity": 7, "uid": 3}) == []


def test_other_identifiers_say_which_key_they_had() -> None:
    assert former_keys({"uidl": "AAMk+x1"}) == ["pop3-AAMk_x1"]
    folder = "INBOX/Rechnungen 2026"
    (former,) = former_keys({"folder": folder, "uidvalidity": 7, "uid": 3})
    assert former.startswith("imap-INBOX_Rechnungen_2026-")
    assert former.endswith("-7-3")
    assert f"{imap_key_prefix(folder, 7)}-3" != former
    assert former_keys({"id": "AAMkAGI2"}) == []  # Graph keys did not change


def test_a_part_too_short_for_a_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="limit 17"):
        key_part("a+b", 17)


@settings(max_examples=400, deadline=None)
@given(st.lists(IDENTIFIER, min_size=2, max_size=8, unique=True))
def test_distinct_identifiers_give_distinct_safe_keys(identifiers: list[str]) -> None:
    for make, limit in ((pop3_key, 105), (graph_key, 46)):
        keys = [make(identifier) for identifier in identifiers]
        assert len(set(keys)) == len(identifiers)
        for key in keys:
            safe_name(key, limit)
    prefixes = [imap_key_prefix(folder, 1700000000) for folder in identifiers]
    assert len({f"{prefix}-1" for prefix in prefixes}) == len(identifiers)
    for prefix in prefixes:
        safe_name(f"{prefix}-4294967295", 5 + 30 + 8 + 10 + 11)


@settings(max_examples=400, deadline=None)
@given(IDENTIFIER, st.integers(min_value=18, max_value=120))
def test_a_part_is_plain_or_marked(identifier: str, limit: int) -> None:
    part = key_part(identifier, limit)
    safe_name(part, limit)
    if part == identifier:
        assert MARK not in part  # a plain part can never be mistaken for a marked one
    else:
        assert part.count(MARK) == 1
        assert part == key_part(identifier, limit)  # stable


@settings(max_examples=300, deadline=None)
@given(IDENTIFIER, st.integers(min_value=0, max_value=2**32), st.integers(min_value=1))
def test_the_migration_gives_the_keys_sources_give(
    identifier: str, validity: int, uid: int
) -> None:
    assert migration.keys_of({"uidl": identifier}) == (
        f"pop3-{former_key_part(identifier, 100)}",
        pop3_key(identifier),
    )
    imap = {"folder": identifier, "uidvalidity": validity, "uid": uid}
    former, today = migration.keys_of(imap)
    assert today == f"{imap_key_prefix(identifier, validity)}-{uid}"
    assert former_keys(imap) == ([former] if former != today else [])


@settings(max_examples=300)
@given(
    st.lists(
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
        max_size=30,
    )
)
def test_a_whole_uidl_listing_gets_the_keys_of_each_uidl(uidls: list[str]) -> None:
    assert pop3_keys(uidls) == [pop3_key(uidl) for uidl in uidls]


def test_a_plain_uidl_listing_is_keyed_at_once() -> None:
    uidls = [f"{n:08X}5f3a2b1c" for n in range(1, 2001)] + ["a.b-c_d", "x" * 100]
    assert pop3_keys(uidls) == [f"pop3-{uidl}" for uidl in uidls]
    edges = [*uidls, "_leading"]
    assert pop3_keys(edges) == [pop3_key(uidl) for uidl in edges]
    assert pop3_keys(edges)[-1] != "pop3-_leading"


UIDL_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="AZaz09._-", min_size=1, max_size=110),
            st.text(alphabet=UIDL_CHARS, min_size=1, max_size=12),
            st.text(min_size=0, max_size=5),
        ),
        max_size=40,
    ),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_a_uidl_answer_read_at_once_keys_each_message_as_before(
    uidls: list[str], ending: bytes
) -> None:
    """Read as one text or line by line, an answer's keys are the ones every earlier version
    gave its messages (the line-by-line reading is the one they used)."""
    answer = b"".join(
        f"{n} {uidl}".encode(errors="surrogateescape") + ending
        for n, uidl in enumerate(uidls, 1)
        if "\n" not in uidl and "\r" not in uidl
    )
    listing = screen(answer)
    before = _read(answer.splitlines())
    assert (listing.numbers, listing.keys, listing.uidls()) == (
        before.numbers,
        before.keys,
        before.uidls(),
    )
    assert [listing.uidl(i) for i in range(len(listing.keys))] == before.uidls()
