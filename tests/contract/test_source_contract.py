"""What every source promises the engine (mailintake.sources.base.MailSource, and the order of
a pass in mailintake.engine.poll): the listing gives each message of the folder once, under
a key that stays the same from one pass to the next, with its size where the protocol gives
one; fetch gives each listed message's bytes as the server holds them; acknowledge applies
the mailbox's after-import action to the messages given, and to no other; a message the
action took out of the folder is no longer listed, one it left there is listed again under
its key."""

from __future__ import annotations

from mailintake.enums import AfterImport
from mailintake.sources.base import MailSource, SourceItem
from mailintake.spool import Body
from tests.support.dovecot import opened
from tests.support.mail import raw
from tests.support.sources import AFTER_ACKNOWLEDGE, SourceCase


def listing(source: MailSource) -> list[SourceItem]:
    return [item for page in source.list_pages() for item in page]


def as_bytes(body: Body) -> bytes:
    return body if isinstance(body, bytes) else body.read_bytes()


def test_the_listing_gives_each_message_once_with_its_size(source: SourceCase) -> None:
    messages = [raw(n) for n in range(3)]
    source.deliver(messages)
    with opened(source.source()) as session:
        pages = listing(session)
        items = session.list_items()
    assert [item.key for item in pages] == [item.key for item in items]
    assert len({item.key for item in items}) == len(items) == 3
    assert {item.size for item in items} <= {None, *map(len, messages)}
    assert all(item.size is not None for item in items) or source.name == "graph"


def test_fetch_gives_the_bytes_the_server_holds(source: SourceCase) -> None:
    messages = [raw(n) for n in range(3)]
    source.deliver(messages)
    with opened(source.source()) as session:
        items = session.list_items()
        fetched = [(item, as_bytes(body)) for item, body in session.fetch(items)]
    assert [item.key for item, _ in fetched] == [item.key for item in items]  # in order
    assert sorted(body for _, body in fetched) == sorted(messages)
    for item, body in fetched:
        assert item.size in (None, len(body))


def test_keys_stay_the_same_from_one_pass_to_the_next(source: SourceCase) -> None:
    source.deliver([raw(n) for n in range(3)])
    with opened(source.source()) as first:
        keys = [item.key for item in first.list_items()]
    source.deliver([raw(3)])
    with opened(source.source()) as second:
        again = [item.key for item in second.list_items()]
    assert set(keys) < set(again)  # the earlier messages under the same keys, in any order
    assert len(set(again)) == len(again) == 4


def test_acknowledge_applies_the_after_import_action_to_those_given(
    source: SourceCase, after_import: AfterImport
) -> None:
    messages = [raw(n) for n in range(3)]
    source.deliver(messages)
    with opened(source.source(after_import)) as session:
        fetched = {
            item.key: (item, as_bytes(body)) for item, body in session.fetch(session.list_items())
        }
        done = [fetched[key] for key in sorted(fetched)][:2]
        acknowledged = {body for _, body in done}
        session.acknowledge([item.source for item, _ in done])
        session.commit()  # where the protocol makes it final only then (POP3: QUIT)
    kept = [message for message in messages if message not in acknowledged]
    assert [source.state(body) for body in acknowledged] == [AFTER_ACKNOWLEDGE[after_import]] * 2
    assert [source.state(message) for message in kept] == ["unread"]

    with opened(source.source()) as next_pass:
        listed = {item.key for item in next_pass.list_items()}
    still_there = after_import in (AfterImport.KEEP, AfterImport.MARK_READ)
    for key, (_item, body) in fetched.items():
        assert (key in listed) is (still_there or body not in acknowledged), key
