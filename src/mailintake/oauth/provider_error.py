"""What the provider answered: a token or authorize endpoint's refusal, parsed without secrets.

A JSON OAuth error keeps its ``error``, the first line of its description, Microsoft's AADSTS
numbers and trace and correlation IDs; anything else (a proxy's page) becomes ``http_<status>``
with a short, safe description.
"""

from __future__ import annotations

import datetime as dt
import html
import http
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class ProviderError:
    """What the token or authorize endpoint answered, without secrets."""

    error: str  # the OAuth "error", or "http_<status>" when the body is not OAuth JSON
    description: str = ""  # first line of error_description (no Trace ID ... lines)
    codes: tuple[int, ...] = ()  # Entra error_codes, or the AADSTS numbers in the description
    status: int | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    retry_after: float | None = None


_AADSTS = re.compile(r"AADSTS(\d+)")
_TRAILER = re.compile(r"\s*\b(?:Trace ID|Correlation ID|Timestamp):.*$", re.IGNORECASE)
_CORRELATION = re.compile(r"Correlation ID:\s*([0-9A-Za-z-]+)", re.IGNORECASE)
_TRACE = re.compile(r"Trace ID:\s*([0-9A-Za-z-]+)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def clip(text: str, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = _TRAILER.sub("", line).strip()
        if line:
            return clip(line, 1000)
    return ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value if isinstance(value, str) else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = (_header(headers, "retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _ids(description: str) -> tuple[str | None, str | None]:
    correlation = _CORRELATION.search(description)
    trace = _TRACE.search(description)
    return (correlation.group(1) if correlation else None, trace.group(1) if trace else None)


def _not_oauth(status: int, body: bytes, data: object) -> str:
    """A short, safe description of an answer that is not an OAuth error."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = f"HTTP {status} {phrase}".rstrip()
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return f"{head} with an empty body"
    if data is not None:
        return f"{head} with JSON that is not an OAuth error"
    if text.startswith("<") or "<html" in text[:500].lower():
        title = _TITLE.search(text)
        name = clip(html.unescape(title.group(1)), 80) if title else ""
        return f"{head} with an HTML page" + (f" titled '{name}'" if name else "")
    return f"{head} with the text '{clip(text.splitlines()[0], 80)}'"


def parse_token_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """The refusal of a token (or device authorization) request. Never raises: a body that is
    not OAuth JSON (a proxy's page) becomes ``http_<status>`` with a short safe description."""
    retry = _retry_after(headers)
    try:
        data: object = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str) or not data["error"]:
        return ProviderError(
            error=f"http_{status}",
            description=_not_oauth(status, body, data),
            status=status,
            retry_after=retry,
        )
    raw = data.get("error_description")
    description = raw if isinstance(raw, str) else ""
    listed = data.get("error_codes")
    codes: tuple[int, ...] = ()
    if isinstance(listed, list):
        codes = tuple(
            int(c)
            for c in listed
            if (isinstance(c, int) and not isinstance(c, bool))
            or (isinstance(c, str) and c.isdigit())
        )
    if not codes:
        codes = tuple(int(c) for c in _AADSTS.findall(description))
    found_correlation, found_trace = _ids(description)
    correlation = data.get("correlation_id")
    trace = data.get("trace_id")
    return ProviderError(
        error=data["error"],
        description=_first_line(description),
        codes=codes,
        status=status,
        correlation_id=correlation if isinstance(correlation, str) else found_correlation,
        trace_id=trace if isinstance(trace, str) else found_trace,
        retry_after=retry,
    )


def parse_redirect_error(params: Mapping[str, str]) -> ProviderError | None:
    """An error the authorize endpoint sent back on the redirect URI, if any."""
    error = params.get("error")
    if not error:
        return None
    description = params.get("error_description") or ""
    correlation, trace = _ids(description)
    return ProviderError(
        error=error,
        description=_first_line(description),
        codes=tuple(int(c) for c in _AADSTS.findall(description)),
        correlation_id=correlation,
        trace_id=trace,
    )


__all__ = ["ProviderError", "clip", "parse_redirect_error", "parse_token_error"]
