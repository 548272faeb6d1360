"""Reading JSON configuration documents (REST API bodies) with the limits of ``limits.py``;
a key given twice in one object is refused, naming the object and both lines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from mailintake.config.limits import MAX_DEPTH, MAX_NODES, check_size, join, key_text
from mailintake.errors import ConfigError

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_depth(text: str) -> int:
    """How deeply the arrays and objects of ``text`` nest (strings do not count)."""
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _Pairs(dict[str, Any]):
    """A JSON object, with the keys it gave more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = _Pairs(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = []
        for key, _ in pairs:
            if key in seen and key not in twice:
                twice.append(key)
            seen.add(key)
        result.duplicates = tuple(twice)
    return result


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        yield where, item
        if isinstance(item, dict):
            stack.extend((join(where, str(k)), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((join(where, i), v) for i, v in reversed(list(enumerate(item))))


def load_json_text(text: str, source: str) -> Any:
    """The JSON document in ``text`` (``None`` if it is empty), with the same limits."""
    check_size(text, source)
    if not text.strip():
        return None
    if _json_depth(text) > MAX_DEPTH:
        raise ConfigError([f"{source}: nested more than {MAX_DEPTH} levels deep"])
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. a number of more than 4,300 digits
        raise ConfigError([f"{source}: a value cannot be read: {exc}"]) from None
    twice: list[tuple[str, str]] = []
    for count, (where, item) in enumerate(_walk(data, ""), start=1):
        if count > MAX_NODES:
            raise ConfigError([f"{source}: holds more than {MAX_NODES:,} values"])
        twice.extend((where, key) for key in getattr(item, "duplicates", ()))
    if twice:
        lines = _key_lines(text)
        raise ConfigError(
            [
                f"{where or '(document)'}: duplicate key '{key_text(key)}' "
                f"({_lines(lines.get((where, key), []))})"
                for where, key in twice
            ]
        )
    return _plain(data)


def _lines(numbers: list[int]) -> str:
    if len(numbers) < 2:
        return "given twice"
    if len(numbers) == 2:
        return (
            f"lines {numbers[0]} and {numbers[1]}"
            if numbers[0] != numbers[1]
            else (f"twice on line {numbers[0]}")
        )
    return "lines " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _key_lines(text: str) -> dict[tuple[str, str], list[int]]:
    """The lines each key of each object is on, by (the object's path, key): read again only
    when a key was given twice, from text that is known to be valid JSON."""
    found: dict[tuple[str, str], list[int]] = {}
    # one entry per open container: its kind, its path, the key or index now, key expected
    stack: list[list[Any]] = []
    line, counted, at = 1, 0, 0
    while at < len(text):
        char = text[at]
        if char == '"':
            value, end = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
            top = stack[-1] if stack else None
            if top is not None and top[0] == "{" and top[3]:
                line += text.count("\n", counted, at)
                counted = at
                found.setdefault((top[1], value), []).append(line)
                top[2], top[3] = value, False
            at = end
            continue
        if char in "{[":
            path = join(stack[-1][1], stack[-1][2]) if stack else ""
            stack.append([char, path, 0 if char == "[" else "", char == "{"])
        elif char in "}]":
            stack.pop()
        elif char == "," and stack:
            top = stack[-1]
            if top[0] == "[":
                top[2] += 1
            else:
                top[3] = True
        at += 1
    return found


def _plain(value: Any) -> Any:
    """Plain dicts again (the walk above bounded the depth, so recursion is safe)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
