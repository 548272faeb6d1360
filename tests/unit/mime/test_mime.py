"""The message reader: the fast MIME walker finds exactly what the standard parser finds,
never raises on broken input, and attachment names are made safe."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.corpus import corpus
from mailintake.mime.parse import parse, safe_filename


def standard(raw: bytes) -> list[tuple[str, str, bytes]]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if (part.get_content_disposition() or "") != "attachment" and not filename:
            continue
        payload = part.get_payload(decode=True)
        found.append((str(filename or ""), part.get_content_type(), payload or b""))
    return found


def tricky() -> list[bytes]:
    nested = EmailMessage()
    nested["Subject"] = "=?utf-8?q?R=C3=A9sum=C3=A9?="
    nested["From"] = "=?utf-8?b?SsO8cmdlbg==?= <j@example.com>"
    nested.set_content("body")
    nested.add_attachment("Grüße".encode(), maintype="text", subtype="plain", filename="grüße.txt")
    inner = EmailMessage()
    inner.set_content("inner")
    inner.add_attachment(
        b"\x00\x01" * 500, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    nested.add_attachment(inner)
    qp = EmailMessage()
    qp.set_content("caf\u00e9 " * 100, cte="quoted-printable")
    qp.add_attachment(
        b"a=b\r\n" * 50, maintype="text", subtype="csv", filename="x.csv", cte="quoted-printable"
    )
    return [nested.as_bytes(), qp.as_bytes(policy=email.policy.SMTP)]


def test_fast_reader_matches_the_standard_parser() -> None:
    for raw in corpus(60) + tricky():
        ours = [(a.filename, a.content_type, a.data) for a in parse(raw).attachments]
        assert ours == standard(raw)


def test_headers_are_decoded() -> None:
    parsed = parse(tricky()[0])
    assert parsed.subject == "Résumé"
    assert parsed.sender == "Jürgen <j@example.com>"
    assert parsed.attachments[0].filename == "grüße.txt"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_never_raises_on_garbage(raw: bytes) -> None:
    parse(raw)
    parse(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + raw)


def test_broken_multipart_still_gives_metadata() -> None:
    raw = (
        b'Subject: broken\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b"filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@"
    )
    parsed = parse(raw)
    assert parsed.subject == "broken"
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]


def test_safe_filenames() -> None:
    taken: set[str] = set()
    assert safe_filename("../../etc/passwd", 1, taken) == "1_passwd"
    assert safe_filename("C:\\Windows\\evil.exe", 2, taken) == "2_evil.exe"
    assert safe_filename("CON.txt", 3, taken) == "3__CON.txt"
    assert safe_filename("", 4, taken) == "4_attachment"
    assert safe_filename("a\x00b\nc.pdf", 5, taken) == "5_a_b_c.pdf"
    long = safe_filename("x" * 300 + ".pdf", 6, taken)
    assert long.endswith(".pdf")
    assert len(long.encode()) <= 200
    first = safe_filename("same.pdf", 7, taken)
    assert safe_filename("same.pdf", 7, taken) != first
