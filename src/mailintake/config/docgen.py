"""The generated parts of docs/configuration.md: the matrix tables and the list of fields.

``python -m mailintake.config.docgen docs/configuration.md`` rewrites the block between
``<!-- matrix:begin -->`` and ``<!-- matrix:end -->``; a test checks it is current and that
every field of the schema is documented.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mailintake.config.matrix import FIELD_PATH, FIELDS, GRANTS, RULES, SUPPORT, Grant, Need
from mailintake.config.matrix import Protocol as P
from mailintake.config.models import ConfigDocument

BEGIN = "<!-- matrix:begin -->"
END = "<!-- matrix:end -->"
NEED = {Need.MANDATORY: "Mandatory", Need.OPTIONAL: "Optional", Need.NOT_APPLICABLE: "NA"}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in typing.get_args(annotation))


def field_paths(model: type[BaseModel] = ConfigDocument, prefix: str = "") -> list[str]:
    """Every field of the configuration file, e.g. ``mailboxes[].oauth.client_id``."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = _model_of(info.annotation)
        if nested is None:
            paths.append(path)
            continue
        if prefix:
            paths.append(path)
        sep = "[]." if _is_list(info.annotation) else "."
        paths.extend(field_paths(nested, f"{path}{sep}"))
    return paths


def _cell(grant: Grant, protocol: P) -> str:
    support = SUPPORT[(grant, protocol)]
    if not support.supported:
        return "no"
    return "yes (extension)" if support.extension else "yes"


def matrix_markdown() -> str:
    grants = list(Grant)
    head = "| | " + " | ".join(GRANTS[g].label for g in grants) + " |"
    rule = "|---" * (len(grants) + 1) + "|"
    lines = [
        "Which grant type each protocol accepts (*extension*: beyond the seed's table):",
        "",
        head,
        rule,
        "| `grant_type` | " + " | ".join(f"`{g.value}`" for g in grants) + " |",
    ]
    lines += [
        f"| {p.value} | " + " | ".join(_cell(g, p) for g in grants) + " |"
        for p in (P.GRAPH, P.IMAP, P.POP3)
    ]
    lines += [
        "| level | " + " | ".join(GRANTS[g].level for g in grants) + " |",
        "| after a password change | "
        + " | ".join(GRANTS[g].password_change for g in grants)
        + " |",
        "| login popup | " + " | ".join(GRANTS[g].login_popup for g in grants) + " |",
        "",
        "What each grant type needs (*from server*: left out, it is filled in from the "
        "authorization server; an NA field that is given is an error):",
        "",
        head,
        rule,
    ]
    for field in FIELDS:
        cells = []
        for grant in grants:
            r = RULES[grant][field]
            text = NEED[r.need]
            if r.populated and r.need is not Need.NOT_APPLICABLE:
                text += " (from server)"
            elif r.populated:
                text += " (server's value is used)"
            cells.append(text)
        lines.append(f"| `{FIELD_PATH[field]}` | " + " | ".join(cells) + " |")
    notes = [
        f"- `{FIELD_PATH[f]}` with `{g.value}`: {RULES[g][f].note}"
        for g in grants
        for f in FIELDS
        if RULES[g][f].note
    ]
    for grant in grants:
        by_note: dict[str, list[str]] = {}
        for p in (P.GRAPH, P.IMAP, P.POP3):
            note = (
                SUPPORT[(grant, p)].note.replace("imap", "{protocol}").replace("pop3", "{protocol}")
            )
            if note:
                by_note.setdefault(note, []).append(p.value)
        notes += [
            f"- `{grant.value}` with {' and '.join(ps)}: "
            + note.replace("{protocol}", "/".join(ps))
            for note, ps in by_note.items()
        ]
    lines += ["", "Notes:", "", *notes]
    return "\n".join(lines).replace("<resource>", "&lt;resource&gt;") + "\n"


def render(document: str) -> str:
    """``document`` with its matrix block replaced by the current one."""
    start = document.index(BEGIN) + len(BEGIN)
    end = document.index(END)
    return document[:start] + "\n" + matrix_markdown() + document[end:]


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
