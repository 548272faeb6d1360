"""A mailbox between its HTML form and its configuration-file form.

The form's field names are the configuration file's dotted paths (``oauth.client_id``), so
every ``PATH: message`` problem the validation reports lands beside its own field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mailintake.config.checks import URL_FIELDS, has_credentials, without_credentials
from mailintake.config.models import MAILBOX_SECRET_FIELDS
from mailintake.config.validate import REDACTED
from mailintake.services.edit import set_path

TEXT_FIELDS = (
    "name",
    "protocol",
    "host",
    "port",
    "security",
    "graph_url",
    "username",
    "shared_mailbox",
    "folder",
    "after_import",
    "move_to",
    "poll_interval",
    "push",
    "output",
    "oauth.authorization_server",
    "oauth.grant_type",
    "oauth.authorization_endpoint",
    "oauth.token_endpoint",
    "oauth.device_authorization_endpoint",
    "oauth.scopes",
    "oauth.tenant_id",
    "oauth.client_id",
    "oauth.redirect_uri",
    "oauth.client_secret_expires",
    "oauth.publishing_status",
    "proxy.address",
    "proxy.username",
)
NUMBER_FIELDS = ("port", "poll_interval")
SECRET_FIELDS = tuple(f for f in MAILBOX_SECRET_FIELDS if f != "oauth.client_certificate_password")
_LABEL = re.compile(r"^(mailboxes|authorization_servers)\[[^\]]*\]\.?")


def values_of(item: Mapping[str, Any]) -> dict[str, str]:
    """The form's text values of a mailbox in file form (secrets are never among them)."""
    out: dict[str, str] = {}
    for key in TEXT_FIELDS:
        value: Any = item
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, list):
            out[key] = " ".join(str(v) for v in value)
        elif value is not None:
            out[key] = str(value)
    out["enabled"] = "" if item.get("enabled") is False else "on"
    return out


def stored_secrets(item: Mapping[str, Any]) -> set[str]:
    """The secret fields that hold a stored value (shown as "set")."""
    found: set[str] = set()
    for key in SECRET_FIELDS:
        section, _, attr = key.partition(".")
        holder = item.get(section)
        if isinstance(holder, Mapping) and holder.get(attr) is not None:
            found.add(key)
    return found


def mailbox_of(
    form: Mapping[str, str],
    *,
    stored: set[str],
    populated: Mapping[str, str],
) -> dict[str, Any]:
    """The mailbox in file form from submitted values. A value equal to what the
    authorization server fills in is left out (it follows the server); an empty secret keeps
    the stored one; a field the browser did not submit (not applicable) is absent."""
    data: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = form.get(key, "").strip()
        if not value or populated.get(key) == value:
            continue
        if key in NUMBER_FIELDS and value.isdigit():
            set_path(data, key, int(value))
        elif key == "oauth.scopes":
            set_path(data, key, value.split())
        else:
            set_path(data, key, value)
    for key in SECRET_FIELDS:
        if key not in form:
            continue
        if form[key]:
            set_path(data, key, form[key])
        elif key in stored:
            set_path(data, key, REDACTED)
    data["enabled"] = bool(form.get("enabled"))
    return data


def field_errors(
    problems: list[str], known: set[str] | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Problems by form field; those that belong to no field of the form come second."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    known = known or set(TEXT_FIELDS) | set(SECRET_FIELDS) | {"enabled"}
    for problem in problems:
        path, sep, message = problem.partition(": ")
        key = re.sub(r"\[\d+\]$", "", _LABEL.sub("", path))
        if sep and key in known:
            by_field.setdefault(key, []).append(message)
        else:
            general.append(problem)
    return by_field, general


def shown_again(values: Mapping[str, str]) -> dict[str, str]:
    """A refused form's values to show again: no URL keeps a password typed into it."""
    return {
        k: without_credentials(v) if k in URL_FIELDS and has_credentials(v) else v
        for k, v in values.items()
    }
