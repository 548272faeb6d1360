"""Structured logging (structlog) with redaction: no secret reaches a log line in clear.

Two guards: values under secret-looking keys (``*secret*``, ``*password*``, ``*token*``,
``authorization``…) are masked, and every secret value mailintake has handled (registered by
``register_secret`` when it is read, stored or decrypted) is masked wherever it appears in
any value or message.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_SECRET_KEY = re.compile(r"secret|passw|token|authorization|assertion|cookie|api_key", re.I)
_known: set[str] = set()
_lock = threading.Lock()
_MIN_LENGTH = 4  # shorter values would mask ordinary words


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked in every later log line."""
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _known.add(value)


def redact_text(text: str) -> str:
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{value.__class__.__name__}: {value}")
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every key and value of the event."""
    for key in list(event):
        event[key] = _redact_value(str(key), event[key])
    return event


def _render_redacted(
    logger: Any, name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # exception text is rendered before this point; mask it too
    if "exception" in event and isinstance(event["exception"], str):
        event["exception"] = redact_text(event["exception"])
    return event


def configure(level: str = "warning", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Send log lines to ``stream`` (stderr) at ``level``, redacted."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            _render_redacted,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    if not structlog.is_configured():  # used as a library: still stderr, still redacted
        configure("info")
    return structlog.get_logger(name)
