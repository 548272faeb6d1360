"""Graph's answers: refusals with their code, the wait before a retry, and giving up."""

from __future__ import annotations

from typing import Any

import httpx2

from mailintake.errors import MailintakeError, NetworkError, RateLimited, SourceError


class GraphRefused(SourceError):
    """Graph refused a request with an HTTP status and (usually) an error code."""

    def __init__(self, message: str, status: int, code: str, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


def retry_after(answer: httpx2.Response, attempt: int, backoff: float = 1.0) -> float:
    fallback = min(backoff * 2.0**attempt, 60.0)
    value = answer.headers.get("retry-after")
    try:
        return max(0.0, min(float(value), 300.0)) if value else fallback
    except ValueError:
        return fallback


def gave_up(
    name: str,
    method: str,
    url: str,
    answer: httpx2.Response,
    failures: list[int],
    wait: float,
) -> MailintakeError:
    """After the last attempt: throttled, or Graph's service failing (503/504)."""
    if answer.status_code == 429:
        return RateLimited(
            f"{name}: Graph kept throttling ({answer.status_code})", retry_after=wait
        )
    return NetworkError(
        f"{name}: Graph kept failing: {method} {url.split('?')[0]} answered "
        f"{', '.join(str(f) for f in failures)} ({error_text(answer)}) in {len(failures)} "
        "attempts with growing pauses; Microsoft's service is failing, not the mailbox's "
        "settings, and the next poll tries again"
    )


def _body(answer: httpx2.Response) -> dict[str, Any]:
    try:
        error = answer.json().get("error", {})
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def error_code(answer: httpx2.Response) -> str:
    return str(_body(answer).get("code", ""))


def error_message(answer: httpx2.Response) -> str:
    return str(_body(answer).get("message", ""))


def error_text(answer: httpx2.Response) -> str:
    error = _body(answer)
    if not error:
        return answer.reason_phrase
    return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")


__all__ = ["GraphRefused", "error_code", "error_message", "error_text", "gave_up", "retry_after"]
