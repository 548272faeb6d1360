"""Malformed messages as they arrive from real mail servers: each must import whole, with its
bytes unchanged and what could not be read recorded as defects."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage


def malformed() -> dict[str, bytes]:
    nested = EmailMessage()
    nested["Subject"] = "forwarded"
    nested.set_content("inner")
    nested.add_attachment(b"%PDF inner", maintype="application", subtype="pdf", filename="i.pdf")
    outer = EmailMessage()
    outer["Subject"] = "outer"
    outer.set_content("see attached")
    outer.add_attachment(nested)
    deep = b"hidden"
    for level in range(40):
        deep = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
            + deep
            + f"\r\n--b{level}--\r\n".encode()
        )
    return {
        "broken boundary": b'Subject: a\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--yy\r\nContent-Type: text/plain\r\n\r\nnot the boundary\r\n--yy--\r\n",
        "unterminated": b'Subject: b\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Disposition: attachment; filename=x.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n",
        "bad base64": b'Subject: c\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n'
        b"Content-Disposition: attachment; filename=y.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n@@@ not base64 !!!\r\n--q--\r\n",
        "padding inside base64": b'Subject: e\r\nContent-Type: multipart/mixed; boundary="q"\r\n'
        b"\r\n--q\r\nContent-Disposition: attachment; filename=z.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBE=Ri0xLjQK\r\n--q--\r\n",
        "bad encodings": b"Subject: =?x-unknown?Q?caf=E9?= =?utf-8?B?####?=\r\n"
        b"From: =?utf-8?Q?J=FCrgen?= <j@example.com>\r\nDate: the day after tomorrow\r\n\r\nbody",
        "8-bit headers": "Subject: Rechnung für März\r\nFrom: Müller <m@x.de>\r\n\r\nü".encode(
            "latin-1"
        ),
        "nested rfc822": outer.as_bytes(policy=email.policy.SMTP),
        "empty": b"",
        "headers only": b"Subject: no body, no blank line",
        "huge headers": b"Subject: "
        + b"x" * 2_000_000
        + b"\r\n"
        + b"".join(b"X-Trace-%d: %d\r\n" % (i, i) for i in range(20_000))
        + b"\r\nbody",
        "bare CR and NUL": b"Subject: d\rFrom: e@example.com\r\r\x00\x00body\x00",
        "nested too deeply": b"Subject: deep\r\n" + deep,
    }
