"""Reading configuration documents, YAML or JSON, with errors that name the line.

Every document is read with the limits of ``limits.py`` (size, values with aliases expanded,
nesting), so that no input can make reading it hang or crash. A key given twice in one
mapping is refused, naming both lines: the last one silently winning hides a mistake. Every
problem is a ``ConfigError`` whose lines read ``PATH: message``. JSON is read by
``json_loader.py``; this module reads YAML and files.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, SequenceEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from mailintake.config.json_loader import load_json_text
from mailintake.config.limits import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_NODES,
    check_shape,
    check_size,
    join,
    key_text,
    too_large,
)
from mailintake.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NODES",
    "check_shape",
    "dump_yaml",
    "load_file",
    "load_json_text",
    "load_yaml_text",
    "too_large",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooLarge(Exception):
    def __init__(self, message: str, node_mark: Any = None) -> None:
        super().__init__(message)
        self.mark = node_mark


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
            self._path.append(join(self._path[-1], index))
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
                        f"{here or '(document)'}: duplicate key '{key_text(part)}' ({lines})"
                    )
            self._path.append(join(here, part))
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


def _character(text: str, exc: yaml.reader.ReaderError) -> str:
    """Where the character is, by line and column, and which it is."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - before.rfind("\n")
    code = exc.character if isinstance(exc.character, int) else ord(exc.character or "?")
    reason = f"not allowed in YAML ({exc.reason})"
    return f"line {line}, column {column}: character U+{code:04X} is {reason}"


def load_yaml_text(text: str, source: str) -> Any:
    """The document in ``text`` (``None`` if it holds none); ``source`` names it in errors."""
    check_size(text, source)
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
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow anywhere
        raise ConfigError([f"{source}: {_character(text, exc)}"]) from None
    except Exception as exc:  # what the constructors raise on a value they cannot build
        raise ConfigError([f"{source}: a value cannot be read: {_reason(exc)}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return data


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


class _Dumper(yaml.SafeDumper):
    """Safe YAML that writes a StrEnum member (an authorization state, a grant) as its text."""


_Dumper.add_multi_representer(StrEnum, lambda dumper, value: dumper.represent_str(str(value)))


def dump_yaml(data: Any) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
