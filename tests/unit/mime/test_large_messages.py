"""Large messages: spooled to disk while they arrive, read in place (memory map) and decoded
piece by piece — with exactly the result of reading them whole in memory."""

from __future__ import annotations

import base64
import binascii
import mmap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.corpus import corpus
from mailintake.mime import split
from mailintake.mime.parse import parse
from mailintake.spool import Spooled, SpoolWriter, read_all, sha256_of
from tests.support.malformed import malformed


def spooled(folder: Path, raw: bytes) -> Spooled:
    writer = SpoolWriter(folder, threshold=0)
    for at in range(0, len(raw), 1000):
        writer.write(raw[at : at + 1000])
    body = writer.finish()
    assert isinstance(body, Spooled)
    return body


def test_a_spooled_message_reads_as_the_same_message(tmp_path: Path) -> None:
    for raw in corpus(60):
        body = spooled(tmp_path, raw)
        assert read_all(body) == raw
        assert sha256_of(body) == sha256_of(raw)
        whole, spool = parse(raw), parse(body)
        assert (spool.subject, spool.sender) == (whole.subject, whole.sender)
        assert [(a.filename, a.content_type, a.data) for a in spool.attachments] == [
            (a.filename, a.content_type, a.data) for a in whole.attachments
        ]
        body.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_spooled_message_of_unusual_structure_reads_as_in_memory(tmp_path: Path) -> None:
    """Up to 8 MB, a spooled message the fast reader cannot walk goes to the standard parser
    as it would in memory (Graph spools every message over 640 KB)."""
    for name, raw in malformed().items():
        if not raw:  # nothing to spool
            continue
        body = spooled(tmp_path, raw)
        whole, spool = parse(raw), parse(body)
        assert spool.defects == whole.defects, name
        assert (spool.subject, spool.sender, spool.to) == (whole.subject, whole.sender, whole.to)
        assert [(a.filename, a.content_type, a.data) for a in spool.attachments] == [
            (a.filename, a.content_type, a.data) for a in whole.attachments
        ], name
        body.discard()


def test_small_downloads_stay_in_memory_and_abandoned_ones_leave_nothing(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, threshold=10)
    writer.write(b"0123456789")
    assert writer.finish() == b"0123456789"
    writer = SpoolWriter(tmp_path, threshold=10)
    writer.write(b"0123456789")
    writer.write(b"A")
    assert list(tmp_path.iterdir()) != []
    writer.abandon()
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=2000),
    line=st.integers(min_value=1, max_value=120),
    chunk=st.integers(min_value=1, max_value=300),
    crlf=st.booleans(),
)
def test_base64_decoded_in_pieces_equals_decoded_whole(
    data: bytes, line: int, chunk: int, crlf: bool
) -> None:
    flat = base64.b64encode(data)
    newline = b"\r\n" if crlf else b"\n"
    encoded = newline.join(flat[i : i + line] for i in range(0, len(flat), line)) + newline
    pieces = split.decoded(lambda a, b: encoded[a:b], "base64", 0, len(encoded), chunk)
    assert b"".join(pieces) == data


@settings(max_examples=150, deadline=None)
@given(text=st.binary(max_size=2000), chunk=st.integers(min_value=1, max_value=300))
def test_quoted_printable_decoded_in_pieces_equals_decoded_whole(text: bytes, chunk: int) -> None:
    encoded = binascii.b2a_qp(text)
    pieces = split.decoded(lambda a, b: encoded[a:b], "quoted-printable", 0, len(encoded), chunk)
    assert b"".join(pieces) == binascii.a2b_qp(encoded)


def test_quoted_printable_pieces_end_at_line_breaks_never_inside_a_soft_one() -> None:
    """Each piece ends after a line break, so that "=" at the end of a line (a soft break)
    and "=E9" are never cut; a line longer than the look-ahead ends its piece anyway."""
    encoded = b"Factura n=C3=BAmero 7, =\nimporte 120 =E2=82=AC\n" * 40 + b"x" * 5000 + b"\n"
    pieces = list(
        split.decoded(lambda a, b: encoded[a:b], "quoted-printable", 0, len(encoded), 100)
    )
    assert b"".join(pieces) == binascii.a2b_qp(encoded)
    assert len(pieces) > 10
    assert not any(b"=" in piece for piece in pieces)  # no escape cut in two


def test_base64_missing_its_padding_is_completed() -> None:
    encoded = base64.b64encode(b"invoice")[:-1]  # "aW52b2ljZQ=" without its last "="
    assert b"".join(split.decoded(lambda a, b: encoded[a:b], "base64", 0, 10, 3)) == b"invoice"


def test_search_across_windows_of_a_memory_map(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_bytes(b"x" * 5000 + b"--boundary" + b"y" * 5000)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
        for window in (4096, 5001, 5003, 5005, 8192):  # the needle across a window's edge
            assert split.find(view, b"--boundary", 0, len(view), window) == 5000
        assert split.find(view, b"--missing", 0, len(view), 4096) == -1
