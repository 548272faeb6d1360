"""The fast readers give exactly what the standard library gives: header fields, address
lists, base64 (which, besides, never raises)."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.utils

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.corpus import corpus
from mailintake.mime import split
from mailintake.mime.headers import read_headers
from mailintake.mime.parse import _address_pairs
from tests.support.malformed import malformed

STANDARD = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def same_as_standard(block: bytes) -> None:
    ours, theirs = read_headers(block), STANDARD.parsebytes(block)
    assert list(ours.raw_items()) == list(theirs.raw_items()), block
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects], block
    assert ours.get_unixfrom() == theirs.get_unixfrom()


def header_block(raw: bytes) -> bytes:
    try:
        end, _ = split.split_head(raw, 0, len(raw))
    except ValueError:  # no end within the first megabyte: not a header block
        return raw[: split.MAX_HEAD]
    return raw[:end]


def test_the_header_blocks_of_real_and_malformed_mail() -> None:
    for raw in corpus(50) + list(malformed().values()):
        same_as_standard(header_block(raw))
        same_as_standard(raw[:4000])  # a block followed by a body: read by the standard parser


PIECES = [
    b"Subject",
    b"X-Tag",
    b"From ",
    b":",
    b": ",
    b" ",
    b"\t",
    b"\r\n",
    b"\n",
    b"\r",
    b"value",
    b"=?utf-8?q?caf=C3=A9?=",
    b"\xe9",
    b"\x00",
    b";",
    b'"',
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_any_block_reads_as_the_standard_parser_reads_it(pieces: list[bytes]) -> None:
    same_as_standard(b"".join(pieces))


def test_folded_and_unusual_fields() -> None:
    for block in (
        b"Subject: a\r\n  folded\r\n\tagain\r\nTo:x@y\r\n\r\n",
        b"Subject:   \r\n only continuation\r\n\r\n",
        b"Subject: trailing spaces   \r\n\r\n",
        b"Subject: no end of line",
        b"From someone Tue Nov 24 2026\r\nSubject: mbox\r\n\r\n",
        b" first is a continuation\r\nSubject: x\r\n\r\n",
        b": no name\r\nSubject: x\r\n\r\n",
        b"Subject: x\r\nnot a field\r\nTo: y\r\n\r\n",
        b"Subject: bare\rCR\r\n\r\n",
        b"Subject: 8-bit \xfc\xe9\r\n\r\n",
    ):
        same_as_standard(block)


def standard_b64(data: bytes) -> bytes:
    return binascii.a2b_base64(data.translate(None, split._NOT_BASE64))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=100))
def test_base64_as_the_standard_library_decodes_it(payload: bytes, width: int) -> None:
    encoded = base64.b64encode(payload)
    if width:
        encoded = b"\r\n".join(
            encoded[i : i + width * 4] for i in range(0, len(encoded), width * 4)
        )
    assert split.b64(encoded + b"\r\n") == payload == standard_b64(encoded)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"QUJD", b"RA", b"=", b"\r\n", b" ", b"!", b"Q"]), max_size=30))
def test_base64_never_raises(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    decoded = split.b64(data)  # never raises
    try:
        expected = standard_b64(data)
    except binascii.Error:  # the standard library cannot read it: what can be read is
        return
    assert decoded == expected


ADDRESS_PIECES = [
    "a",
    "Bob",
    "o'neil",
    "x.y",
    "@",
    "example.com",
    "<",
    ">",
    ",",
    " ",
    "\r\n ",
    '"',
    "Doe, John",
    "\\",
    "(c)",
    ":",
    ";",
    ".",
    "=?utf-8?q?J=C3=BC?=",
]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=25))
def test_address_lists_read_as_the_standard_library_reads_them(pieces: list[str]) -> None:
    value = "".join(pieces)
    assert _address_pairs([value]) == email.utils.getaddresses([value])


def test_usual_address_lists() -> None:
    values = [
        "a@example.com",
        "Some  Name <some.name@example.com>",
        '"Doe, John" <john@example.com>, <x@y.example>, Bob<bob@example.com>',
        "=?utf-8?q?J=C3=BCrgen?= <j@example.com>",
        "J. Smith <j@example.com>",
        "a@example.com (comment)",
        "undisclosed-recipients:;",
        "a@example.com,",
    ]
    for value in values:
        assert _address_pairs([value]) == email.utils.getaddresses([value]), value
    assert _address_pairs(values[:3]) == email.utils.getaddresses(values[:3])
