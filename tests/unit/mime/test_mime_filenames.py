"""Attachment file names stay readable in every script and safe on every file system."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailintake.mime.filenames import MAX_NAME_BYTES, safe_filename

WINDOWS_RESERVED = set('<>:"/\\|?*')


def name_of(original: str, index: int = 1) -> str:
    return safe_filename(original, index, set())


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("請求書 2026年11月.pdf", "1_請求書 2026年11月.pdf"),  # CJK
        ("חשבונית מס 17.pdf", "1_חשבונית מס 17.pdf"),  # right to left
        ("فاتورة.xlsx", "1_فاتورة.xlsx"),
        ("Rechnung Ma\u0308rz.pdf", "1_Rechnung März.pdf"),  # combining: NFC
        ("Счёт-фактура №5.docx", "1_Счёт-фактура №5.docx"),
        ("🧾 receipt 🎉.png", "1_🧾 receipt 🎉.png"),
        ("../../etc/passwd", "1_passwd"),
        ("..\\..\\Windows\\win.ini", "1_win.ini"),
        (".htaccess", "1_htaccess"),
        ("invoice\u202efdp.exe", "1_invoice_fdp.exe"),  # a bidi override: no spoofing
        ('a<b>c:"d|e?f*g.txt', "1_a_b_c_d_e_f_g.txt"),
        ("trailing dots... ", "1_trailing dots"),
        ("CON.tar.gz", "1__CON.tar.gz"),
        ("lpt¹.txt", "1__lpt¹.txt"),
        ("", "1_attachment"),
        ("....", "1_attachment"),
        ("\u202e\u200b.pdf", "1_attachment.pdf"),  # nothing readable: a stable name
        ("\x00\x01\x7f", "1_attachment"),
    ],
)
def test_readable_names_are_kept_and_unsafe_parts_replaced(original: str, expected: str) -> None:
    assert name_of(original) == expected


def test_eighty_emoji_stay_emoji() -> None:
    name = name_of("🎉" * 80 + ".txt", 20)
    assert name == "20_" + "🎉" * 48 + ".txt"  # 4 bytes each: as many as fit
    assert len(name.encode()) <= MAX_NAME_BYTES


@pytest.mark.parametrize("letter", ["a", "ß", "請", "🎉", "q\u0323\u0307"])
def test_a_thousand_characters_are_cut_between_characters(letter: str) -> None:
    name = name_of(letter * 1000 + ".pdf", 7)
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert len(name.encode()) > MAX_NAME_BYTES - len(letter.encode()) - 1
    assert name.endswith(".pdf")
    kept = name.removeprefix("7_").removesuffix(".pdf")
    assert kept == letter * (len(kept) // len(letter))  # whole letters, marks included


def test_names_are_unique_in_a_message_whatever_their_case() -> None:
    taken: set[str] = set()
    names = [safe_filename(n, 1, taken) for n in ("Straße.pdf", "STRASSE.pdf", "straße.PDF")]
    assert names[0] == "1_Straße.pdf"
    assert len({n.casefold() for n in names}) == 3


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=1, max_value=10_000))
def test_every_name_is_safe(original: str, index: int) -> None:
    taken: set[str] = set()
    first = safe_filename(original, index, taken)
    second = safe_filename(original, index, taken)
    for name in (first, second):
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert name.startswith(f"{index}_") or name.split("_", 1)[0].isdigit()
        assert not WINDOWS_RESERVED & set(name)
        assert all(unicodedata.category(c)[0] != "C" for c in name)
        assert name == unicodedata.normalize("NFC", name)
        assert not name.endswith((".", " "))
    assert first.casefold() != second.casefold()
    assert first == safe_filename(original, index, set())  # stable
