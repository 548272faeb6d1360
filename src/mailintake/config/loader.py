"""Reading configuration documents, YAML or JSON, with errors that name the line.

Every document is read with limits, so that no input can make reading it hang or crash:

- at most ``MAX_DOCUMENT_BYTES`` of text;
- at most ``MAX_NODES`` values once every YAML alias is expanded (a few hundred bytes of
  nested aliases otherwise expand to millions of values);
- at most ``MAX_DEPTH`` levels of nesting (deeper input would exhaust Python's stack).

A key given twice in one mapping is refused, naming both lines (YAML) or the mapping (JSON):
the last one silently winning hides a mistake. Every problem is a ``ConfigError`` whose
lines read ``PATH: message``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, SequenceEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from mailintake.errors import ConfigError

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 50
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooLarge(Exception):
    def __init__(self, message: str, node_mark: Any = None) -> None:
        super().__init__(message)
        self.mark = node_mark


def _key_text(key: str) -> str:
    return key if len(key) <= 60 else key[:57] + "..."


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


class _Events(Protocol):
    def __init__(self, text: str) -> None: ...


def _event_source() -> type[_Events]:
    """libyaml's parser when PyYAML has it (seven times faster), else PyYAML's own."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml

        class _Parser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
            def __init__(self, text: str) -> None:
                yaml.reader.Reader.__init__(self, text)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)

        return _Parser
    return CParser


_EVENTS = _event_source()


class _SafeLoader(Composer, _EVENTS, SafeConstructor, Resolver):  # type: ignore[misc,valid-type]
    """A safe loader (PyYAML's safe constructor and resolver) whose composer counts what it
    composes (aliases expanded), bounds the nesting and notes keys given twice."""

    def __init__(self, text: str) -> None:
        _EVENTS.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._count = 0
        self._depth = 0
        self._deepest = 0
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels)
        self._path: list[str] = [""]
        self.duplicates: list[str] = []

    def _add(self, values: int, mark: Any) -> None:
        self._count += values
        if self._count > MAX_NODES:
            raise _TooLarge(
                f"expands to more than {MAX_NODES:,} values (with its aliases expanded)", mark
            )

    def _reach(self, depth: int, mark: Any) -> None:
        if depth > MAX_DEPTH:
            raise _TooLarge(f"nested more than {MAX_DEPTH} levels deep", mark)
        self._deepest = max(self._deepest, depth)

    def _next(self) -> Any:
        return self.get_event()

    def _mark(self) -> Any:
        return self.peek_event().start_mark

    def _tag(self, kind: type[Node], event: Any) -> str:
        if event.tag is None or event.tag == "!":
            tag: str = self.resolve(kind, None, event.implicit)  # type: ignore[no-untyped-call]
            return tag
        return str(event.tag)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            mark = self._mark()
            node = super().compose_node(parent, index)
            measured = self._measured.get(id(node))
            if measured is None:
                raise _TooLarge("an alias refers to a value that contains it", mark)
            values, levels = measured
            self._add(values, mark)
            self._reach(self._depth + levels, mark)
            return node
        mark = self._mark()
        self._depth += 1
        self._reach(self._depth, mark)
        self._add(1, mark)
        start, deepest = self._count - 1, self._deepest
        self._deepest = self._depth
        node = super().compose_node(parent, index)
        self._measured[id(node)] = (self._count - start, self._deepest - self._depth + 1)
        self._deepest = max(deepest, self._deepest)
        self._depth -= 1
        return node

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        start_event = self._next()
        tag = self._tag(SequenceNode, start_event)
        node = SequenceNode(
            tag, [], start_event.start_mark, None, flow_style=start_event.flow_style
        )
        if anchor is not None:
            self.anchors[anchor] = node
        index = 0
        while not self.check_event(SequenceEndEvent):
            self._path.append(_join(self._path[-1], index))
            node.value.append(self.compose_node(node, index))
            self._path.pop()
            index += 1
        node.end_mark = self._next().end_mark
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        start_event = self._next()
        tag = self._tag(MappingNode, start_event)
        node = MappingNode(tag, [], start_event.start_mark, None, flow_style=start_event.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        seen: dict[tuple[str, str], int] = {}
        here = self._path[-1]
        while not self.check_event(MappingEndEvent):
            key = self.compose_node(node, None)
            part = "?"
            before = len(seen)
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                part = str(key.value)
                line = key.start_mark.line + 1
                first = seen.setdefault((key.tag, part), line)
                if len(seen) == before:  # given before
                    lines = f"lines {first} and {line}"
                    if first == line:
                        lines = f"twice on line {line}"
                    self.duplicates.append(
                        f"{here or '(document)'}: duplicate key '{_key_text(part)}' ({lines})"
                    )
            self._path.append(_join(here, part))
            value = self.compose_node(node, key)
            self._path.pop()
            node.value.append((key, value))
        node.end_mark = self._next().end_mark
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # e.g. a date 2024-13-45, a huge number, an empty !!int
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {_reason(exc)}", node.start_mark
            ) from None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"


def load_yaml_text(text: str, source: str) -> Any:
    """The document in ``text`` (``None`` if it holds none); ``source`` names it in errors."""
    _check_size(text, source)
    loader = _SafeLoader(text)
    try:
        data = loader.get_single_data()
    except _TooLarge as exc:
        raise ConfigError([f"{source}: {_where(exc.mark)}: {exc}"]) from None
    except yaml.MarkedYAMLError as exc:
        problem = str(exc.problem or exc)
        if "maximum nesting depth" in problem:  # libyaml's own limit, met while reading ahead
            problem = f"nested more than {MAX_DEPTH} levels deep"
        raise ConfigError([f"{source}: {_where(exc.problem_mark)}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from None
    except Exception as exc:  # what the constructors raise on a value they cannot build
        raise ConfigError([f"{source}: a value cannot be read: {_reason(exc)}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return data


# --- JSON ------------------------------------------------------------------------------------

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
            stack.extend((_join(where, str(k)), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((_join(where, i), v) for i, v in reversed(list(enumerate(item))))


def load_json_text(text: str, source: str) -> Any:
    """The JSON document in ``text`` (``None`` if it is empty), with the same limits."""
    _check_size(text, source)
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
    problems = []
    for count, (where, item) in enumerate(_walk(data, ""), start=1):
        if count > MAX_NODES:
            raise ConfigError([f"{source}: holds more than {MAX_NODES:,} values"])
        for key in getattr(item, "duplicates", ()):
            problems.append(f"{where or '(document)'}: duplicate key '{_key_text(key)}'")
    if problems:
        raise ConfigError(problems)
    return _plain(data)


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


def _plain(value: Any) -> Any:
    """Plain dicts again (the walk above bounded the depth, so recursion is safe)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def too_large(source: str) -> ConfigError:
    limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
    return ConfigError([f"{source}: larger than {limit} MiB; split it into several documents"])


def _check_size(text: str, source: str) -> None:
    if len(text) > MAX_DOCUMENT_BYTES:
        raise too_large(source)


def load_file(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not a file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise too_large(str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return load_yaml_text(text, str(path))


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
