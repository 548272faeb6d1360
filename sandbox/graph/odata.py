"""The OData query options of Graph's mail lists that mailintake sends: $top, $select, $filter
(on folders), $expand (api/user-list-messages.md, user-list-mailfolders.md, "Optional query
parameters"), and paging by ``@odata.nextLink`` (concepts/paging.md), whose ``$skip`` is
the emulator's too. Graph accepts more ($orderby, $count, $search…); the emulator answers
400 BadRequest to an option it does not emulate, as Graph answers one an operation does not
support (concepts/query-parameters.md: support "varies from one API operation to another";
concepts/errors.md: 400 "Cannot process the request because it is malformed or incorrect").
A list comes in Graph's default order: messages newest first (receivedDateTime desc)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sandbox.graph.errors import bad_request

DEFAULT_TOP = 10  # "The default page size is 10 messages."
MAX_TOP = 1000  # "Use $top to customize the page size, within the range of 1 and 1000."
SUPPORTED = {"$top", "$skip", "$select", "$filter", "$expand"}
# $expand=singleValueExtendedProperties($filter=id eq '...') (singlevaluelegacyextendedproperty-
# get.md, "GET resource instances using $expand"): the only expansion the emulator knows.
_EXPAND = re.compile(
    r"^singleValueExtendedProperties\(\$filter=id\s+eq\s+'([^']+)'\)$", re.IGNORECASE
)
_CLAUSE = re.compile(r"^\s*([A-Za-z/]+)\s+(eq|ne|gt|ge|lt|le)\s+(.+?)\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)
_OR = re.compile(r"\s+or\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")

Getter = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Clause:
    name: str
    op: str
    value: Any

    def test(self, actual: Any) -> bool:
        if actual is None or self.value is None:
            return {"eq": actual is self.value, "ne": actual is not self.value}.get(self.op, False)
        if isinstance(actual, str) and isinstance(self.value, str):
            actual, value = actual.lower(), self.value.lower()  # Exchange compares ignoring case
        else:
            value = self.value
        try:
            return bool(
                {
                    "eq": actual == value,
                    "ne": actual != value,
                    "gt": actual > value,
                    "ge": actual >= value,
                    "lt": actual < value,
                    "le": actual <= value,
                }[self.op]
            )
        except TypeError:
            raise bad_request(
                f"Invalid filter clause: cannot compare '{self.name}' with that value."
            ) from None


@dataclass(frozen=True)
class Query:
    top: int
    skip: int
    select: tuple[str, ...] | None
    clauses: tuple[Clause, ...]
    order: tuple[tuple[str, bool], ...]  # (property, descending)
    params: tuple[tuple[str, str], ...]  # what the client sent
    expand: tuple[str, ...] = ()  # extended property ids asked for with $expand


def parse(
    args: Mapping[str, str], properties: Sequence[str], kind: str, default_order: str | None
) -> Query:
    """Validates the options against the entity's property names (case-insensitive)."""
    canonical = {p.lower(): p for p in properties}

    def prop(name: str) -> str:
        found = canonical.get(name.lower())
        if found is None:
            raise bad_request(
                f"Could not find a property named '{name}' on type "
                f"'Microsoft.OutlookServices.{kind}'.",
                "RequestBroker--ParseUri",
            )
        return found

    for key in args:
        if key.startswith("$") and key not in SUPPORTED:
            raise bad_request(f"The query parameter '{key}' is not supported by the emulator.")
    top = _integer(args.get("$top"), DEFAULT_TOP, "$top")
    if top < 1:
        raise bad_request(f"Invalid page size specified: '{top}'. Must be between 1 and 1000.")
    skip = _integer(args.get("$skip"), 0, "$skip")
    select = None
    if args.get("$select"):
        select = tuple(prop(p.strip()) for p in args["$select"].split(",") if p.strip())
    clauses = tuple(_clause(text, prop) for text in _clauses(args.get("$filter", "")))
    order = ((default_order, True),) if default_order else ()
    params = tuple(args.items())
    expand: tuple[str, ...] = ()
    if args.get("$expand"):
        found = _EXPAND.match(args["$expand"].strip())
        if found is None:
            raise bad_request(
                "The emulator expands only singleValueExtendedProperties($filter=id eq '...')."
            )
        expand = (found.group(1),)
    return Query(
        min(top, MAX_TOP),
        skip,
        select,
        clauses,
        order,
        params,
        expand,
    )


def _integer(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"Invalid {name} value '{text}'.") from None
    if value < 0:
        raise bad_request(f"Invalid {name} value '{text}'.")
    return value


def _clauses(text: str) -> list[str]:
    if not text.strip():
        return []
    if _OR.search(text) or "(" in text:
        raise bad_request("The emulator supports $filter clauses joined by 'and' only.")
    return _AND.split(text.strip())


def _clause(text: str, prop: Callable[[str], str]) -> Clause:
    match = _CLAUSE.match(text)
    if match is None:
        raise bad_request(f"Invalid filter clause: '{text}'.")
    name, op, raw = match.groups()
    return Clause(prop(name), op.lower(), _literal(raw))


def _literal(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if _DATETIME.match(raw):
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Invalid literal in $filter: '{raw}'.") from None


# --- paging -----------------------------------------------------------------------------


def page(
    items: list[Any],
    query: Query,
    get: Getter,
    url: str,
    *,
    interleave: int = 0,
    cap: int | None = None,
    drop: Callable[[], bool] = lambda: False,
) -> tuple[list[Any], str | None]:
    """Filters, sorts and cuts one page; returns it with the nextLink (None on the last
    page).

    The nextLink carries ``$skip``, as Graph's do for mail ("$top=5&$skip=5",
    microsoftgraph/microsoft-graph-docs#5029); ``$skip`` counts the store's items, of which
    ``interleave`` puts one that is not a message after every that many (never returned),
    ``cap`` bounds a page whatever ``$top`` says, and ``drop`` (asked only when a nextLink is
    due) leaves it out (see sandbox.graph.faults)."""
    selected = [i for i in items if all(c.test(get(i, c.name)) for c in query.clauses)]
    for name, descending in reversed(query.order):

        def key(item: Any, name: str = name) -> tuple[int, Any]:
            return _sort_key(get(item, name))

        selected.sort(key=key, reverse=descending)
    view: list[Any] = selected
    if interleave > 0:
        view = []
        for number, item in enumerate(selected, 1):
            view.append(item)
            if number % interleave == 0:
                view.append(None)
    size = min(query.top, cap) if cap else query.top
    chunk = [i for i in view[query.skip : query.skip + size] if i is not None]
    next_link = None
    if query.skip + size < len(view) and not drop():
        params = dict(query.params)
        params.pop("$skip", None)
        query_string = urlencode([*params.items(), ("$skip", str(query.skip + size))], safe="$',")
        next_link = f"{url}?{query_string}"
    return chunk, next_link


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.lower())
    return (1, value)
