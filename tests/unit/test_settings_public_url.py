"""The public URL Graph's notifications are sent to: HTTPS (plain HTTP on loopback only),
without a query or fragment, from MAILINTAKE_PUBLIC_URL or ``serve --public-url``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailintake.settings import Settings
from tests.support.cli import run_cli


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://intake.example.com/", "https://intake.example.com"),
        (" https://intake.example.com/mailintake ", "https://intake.example.com/mailintake"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("", None),
    ],
)
def test_accepted(tmp_path: Path, given: str, kept: str | None) -> None:
    assert Settings(home=tmp_path, public_url=given).public_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "http://intake.example.com",
        "intake.example.com",
        "https://intake.example.com/?a=1",
        "ftp://x",
    ],
)
def test_refused(tmp_path: Path, given: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(home=tmp_path, public_url=given)


def test_serve_refuses_a_plain_http_public_url(tmp_path: Path) -> None:
    result = run_cli(
        ["serve", "--public-url", "http://intake.example.com"],
        env={"MAILINTAKE_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "--public-url: 'http://intake.example.com' is not an https:// URL" in result.stderr
