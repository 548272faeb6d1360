"""TLS contexts are made once per process and setting: one that trusts a private authority's
file is made again when that file changes, and a missing file is an error every time."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from mailintake.net import tls
from sandbox.certs import pem_certificate, rsa_key, self_signed


def authority(path: Path, name: str) -> str:
    path.write_bytes(pem_certificate(self_signed(rsa_key(), name, ca=True)))
    return str(path)


def subjects(context: ssl.SSLContext) -> set[str]:
    return {
        value
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for key, value in rdn
        if key == "commonName"
    }


def test_a_file_is_read_once_until_it_changes(tmp_path: Path) -> None:
    ca_file = authority(tmp_path / "ca.pem", "first authority")
    context = tls.context_trusting(ca_file)
    assert "first authority" in subjects(context)
    assert tls.context_trusting(ca_file) is context

    authority(tmp_path / "next.pem", "second authority")
    os.replace(tmp_path / "next.pem", ca_file)  # replaced as a deployment would
    renewed = tls.context_trusting(ca_file)
    assert renewed is not context
    assert "second authority" in subjects(renewed)


def test_a_missing_file_is_refused_each_time(tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            tls.context_trusting(str(tmp_path / "missing.pem"))


def test_no_file_is_the_shared_default() -> None:
    assert tls.context_trusting(None) is tls.default_context()
