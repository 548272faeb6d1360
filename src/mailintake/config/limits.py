"""The limits every configuration document is read with, however it is written.

- at most ``MAX_DOCUMENT_BYTES`` of text;
- at most ``MAX_NODES`` values once every YAML alias is expanded (a few hundred bytes of
  nested aliases otherwise expand to millions of values);
- at most ``MAX_DEPTH`` levels of nesting (deeper input would exhaust Python's stack).
"""

from __future__ import annotations

from typing import Any

from mailintake.errors import ConfigError

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 50


def key_text(key: str) -> str:
    return key if len(key) <= 60 else key[:57] + "..."


def join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def too_large(source: str) -> ConfigError:
    limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
    return ConfigError([f"{source}: larger than {limit} MiB; split it into several documents"])


def check_size(text: str, source: str) -> None:
    if len(text) > MAX_DOCUMENT_BYTES:
        raise too_large(source)


def check_shape(data: Any, source: str) -> None:
    """Refuse a document (however it was read) that nests too deeply or holds too much."""
    stack = [(data, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError([f"{source}: holds more than {MAX_NODES:,} values"])
        if depth > MAX_DEPTH:
            raise ConfigError([f"{source}: nested more than {MAX_DEPTH} levels deep"])
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
