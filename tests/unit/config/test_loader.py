"""Reading documents with limits: no input hangs or crashes the reader, a key given twice is
refused with both lines, every problem is a ConfigError."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mailintake.config.loader import (
    MAX_DEPTH,
    MAX_NODES,
    load_file,
    load_json_text,
    load_yaml_text,
)
from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError
from tests.support.documents import BOMB


# 549 bytes: six levels of ten aliases each expand to 10^6 values.
def yaml_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_yaml_text(text, "f.yaml")
    return caught.value.problems


def json_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_json_text(text, "(body)")
    return caught.value.problems


def test_an_alias_bomb_is_refused_at_once() -> None:
    started = time.monotonic()
    found = yaml_problems(BOMB)
    assert time.monotonic() - started < 0.5
    assert len(BOMB.encode()) < 600
    assert found == [
        "f.yaml: line 5, column 45: expands to more than 100,000 values (with its aliases expanded)"
    ]


def test_aliases_count_as_what_they_expand_to() -> None:
    item = "{" + ", ".join(f"k{i}: v" for i in range(9)) + "}"  # 19 values
    fits = MAX_NODES // 20 - 10
    assert load_yaml_text(f"a: &a {item}\nb: [" + ", ".join(["*a"] * fits) + "]\n", "f")
    over = MAX_NODES // 19 + 1
    found = yaml_problems(f"a: &a {item}\nb: [" + ", ".join(["*a"] * over) + "]\n")
    assert "expands to more than 100,000 values" in found[0]


@pytest.mark.parametrize("levels", [5000, MAX_DEPTH + 1])
def test_deep_yaml_is_refused(levels: int) -> None:
    for text in (
        "mailboxes: " + "[" * levels + "]" * levels,
        "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, min(levels, 1000) + 1)),
    ):
        found = yaml_problems(text)
        assert len(found) == 1
        assert found[0].startswith("f.yaml: line ")
        assert found[0].endswith(f": nested more than {MAX_DEPTH} levels deep")


def test_deep_yaml_through_an_alias_is_refused() -> None:
    deep = "[" * 30 + "]" * 30
    found = yaml_problems(f"a: &a {deep}\nb: {'[' * 25}*a{']' * 25}\n")
    assert found[0].endswith(f"nested more than {MAX_DEPTH} levels deep")


def test_nesting_up_to_the_limit_is_read() -> None:
    value = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load_yaml_text(f"a: {value}", "f") is not None
    assert load_json_text(f'{{"a": {value}}}', "f") is not None


@pytest.mark.parametrize("levels", [3000, MAX_DEPTH + 1])
def test_deep_json_is_refused(levels: int) -> None:
    found = json_problems('{"mailboxes": ' + "[" * levels + "]" * levels + "}")
    assert found == [f"(body): nested more than {MAX_DEPTH} levels deep"]


def test_brackets_inside_json_strings_do_not_count() -> None:
    data = load_json_text('{"a": "' + "[" * 100 + '\\"{"}', "f")
    assert data == {"a": "[" * 100 + '"{'}


def test_an_alias_to_the_value_that_holds_it_is_refused() -> None:
    assert yaml_problems("a: &x [1, *x]\n") == [
        "f.yaml: line 1, column 11: an alias refers to a value that contains it"
    ]


def test_a_key_given_twice_is_refused_with_both_lines() -> None:
    text = """\
mailboxes:
  - name: invoices
    protocol: imap
    host: a.example.com
    oauth: {grant_type: x, grant_type: y}
    port: 993
    host: b.example.com
outputs: []
outputs: []
"""
    assert yaml_problems(text) == [
        "mailboxes[0].oauth: duplicate key 'grant_type' (twice on line 5)",
        "mailboxes[0]: duplicate key 'host' (lines 4 and 7)",
        "(document): duplicate key 'outputs' (lines 8 and 9)",
    ]


def test_merge_keys_are_not_duplicates() -> None:
    text = "base: &b {host: a, port: 1}\nm:\n  <<: *b\n  host: c\n"
    assert load_yaml_text(text, "f")["m"] == {"host": "c", "port": 1}


def test_a_json_key_given_twice_is_refused_with_both_lines() -> None:
    text = """{
  "mailboxes": [
    {"name": "a",
     "host": "x",
     "host": "y"}
  ],
  "outputs": [], "outputs": []
}"""
    assert json_problems(text) == [
        "(document): duplicate key 'outputs' (twice on line 7)",
        "mailboxes[0]: duplicate key 'host' (lines 4 and 5)",
    ]
    text = '{"a": [1, {"k": "\\"{[", "k": 2}], "b": {"k": 1}}'
    assert json_problems(text) == ["a[1]: duplicate key 'k' (twice on line 1)"]


@pytest.mark.parametrize(
    "text",
    ["a: 2024-13-45", "a: " + "9" * 5000, "a: !!float abc", "a: !!python/object:os.system x"],
)
def test_values_that_cannot_be_read_are_config_errors(text: str) -> None:
    found = yaml_problems(text)
    assert len(found) == 1
    assert found[0].startswith("f.yaml: line 1, column ")


def test_json_values_that_cannot_be_read_are_config_errors() -> None:
    assert json_problems("[" + "9" * 5000 + "]")[0].startswith("(body): a value cannot be read")
    assert json_problems("{'a': 1}")[0].startswith("(body): not valid JSON (line 1, column 2)")


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [("a: \x07", "line 1, column 4", "0007"), ("a: 1\nb: x\x00", "line 2, column 5", "0000")],
)
def test_a_character_yaml_never_allows_is_named_with_its_place(
    text: str, where: str, code: str
) -> None:
    assert yaml_problems(text) == [
        f"f.yaml: {where}: character U+{code} is not allowed in YAML "
        "(control characters are not allowed)"
    ]


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin-1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert caught.value.problems == [f"{path}: not UTF-8 text"]


def test_a_document_larger_than_a_mebibyte_is_refused() -> None:
    text = "# " + "x" * (1024 * 1024) + "\n"
    assert yaml_problems(text) == ["f.yaml: larger than 1 MiB; split it into several documents"]


def test_validation_refuses_deep_values_however_they_were_read() -> None:
    deep: Any = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ConfigError) as caught:
        validate_document({"mailboxes": [{"name": "a", "protocol": deep}]}, Context())
    assert caught.value.problems == [f"(document): nested more than {MAX_DEPTH} levels deep"]
