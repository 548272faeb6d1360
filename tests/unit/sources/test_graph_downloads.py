"""Graph downloads: in listing order across batches, a bounded number ahead of what the import
asked for, and what nobody asked for removed when the source closes."""

from __future__ import annotations

import threading
from pathlib import Path

from mailintake.sources.base import SourceItem
from mailintake.sources.graph_downloads import Downloads
from mailintake.spool import Body, Spooled


def items(count: int) -> list[SourceItem]:
    return [SourceItem(f"graph-{n}", {"id": str(n)}) for n in range(count)]


def test_downloads_follow_the_listing_order_across_batches() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def download(item: SourceItem) -> Body:
        with lock:
            started.append(item.key)
        return item.key.encode()

    listed = items(30)
    downloads = Downloads(download, ahead=5)
    downloads.offer(listed[:20])
    downloads.offer(listed[20:])
    second = [downloads.claim(i) for i in listed[10:20]]  # a later batch asked for first
    first = [downloads.claim(i) for i in listed[:10]]
    assert [f.result() for f in first + second] == [i.key.encode() for i in listed[:20]]
    downloads.close()
    assert started[:20] == [i.key for i in listed[:20]]  # started in listing order
    assert len(started) <= 25  # at most five beyond what was asked for


def test_nothing_is_downloaded_before_the_import_asks() -> None:
    started: list[str] = []
    downloads = Downloads(lambda item: started.append(item.key) or b"", ahead=5)
    downloads.offer(items(10))
    assert started == []
    downloads.close()


def test_what_nobody_asked_for_is_removed_on_close(tmp_path: Path) -> None:
    release = threading.Event()

    def download(item: SourceItem) -> Body:
        path = tmp_path / item.key
        path.write_bytes(b"x" * 10)
        if item.key != "graph-0":
            release.wait(5)
        return Spooled(path, 10)

    listed = items(6)
    downloads = Downloads(download, ahead=3)
    downloads.offer(listed)
    body = downloads.claim(listed[0]).result()
    release.set()
    downloads.close()
    assert isinstance(body, Spooled)
    assert body.path.exists()  # the one asked for stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph-0"]


def test_a_failed_download_nobody_asked_for_is_dropped_on_close() -> None:
    def download(item: SourceItem) -> Body:
        if item.key != "graph-0":
            raise ConnectionResetError("the connection dropped")
        return b"asked for"

    listed = items(4)
    downloads = Downloads(download, ahead=3)
    downloads.offer(listed)
    assert downloads.claim(listed[0]).result() == b"asked for"
    downloads.close()  # the three failed ones ahead are not raised here
