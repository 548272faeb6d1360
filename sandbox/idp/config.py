"""A small YAML (or JSON) description of a tenant, for ``python -m sandbox.idp --config``::

    tenant_id: 0b6a6d2e-1234-4c1e-9b5e-123456789abc   # all top-level keys optional
    domain: contoso.onmicrosoft.com
    access_token_lifetime: 3599
    device_interval: 5
    introspection_open: true
    apps:
      - client_id: 11111111-2222-3333-4444-555555555555
        name: desktop
        redirect_uris: {"http://localhost/": public}
        allow_public_client: true
      - client_id: 66666666-7777-8888-9999-000000000000
        secrets: {"the-secret-value": 2027-06-30T00:00:00Z}   # or null: never expires
        certificates: [cert.pem]                           # PEM text or a file path
        application_permissions: {"https://outlook.office365.com": [IMAP.AccessAsApp]}
        assertion_forms: [RS256+x5t]     # optional: the only assertion form accepted
    users:
      - username: anna@contoso.onmicrosoft.com
        password: Anna-Password-1!
        consented_apps: [11111111-2222-3333-4444-555555555555]
        mfa: false

App and user keys are the fields of ``App`` and ``User``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sandbox.idp.model import App, User
from sandbox.idp.server import IdentityProvider

_PROVIDER_KEYS = (
    "tenant_id",
    "domain",
    "access_token_lifetime",
    "device_interval",
    "device_code_lifetime",
    "introspection_open",
)


def load_config(path: Path) -> IdentityProvider:
    """An identity provider with the tenant, apps and users ``path`` describes."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    provider = IdentityProvider(**{k: data[k] for k in _PROVIDER_KEYS if k in data})
    for item in data.get("apps") or []:
        provider.add_app(_app(dict(item), path.parent))
    for item in data.get("users") or []:
        item = dict(item)
        item["consented_apps"] = set(item.get("consented_apps") or [])
        provider.add_user(User(**item))
    return provider


def _app(item: dict[str, Any], folder: Path) -> App:
    item["secrets"] = {
        str(value): _expiry(expiry) for value, expiry in (item.get("secrets") or {}).items()
    }
    item["certificates"] = [
        pem if "-----BEGIN" in pem else (folder / pem).read_text(encoding="utf-8")
        for pem in item.get("certificates") or []
    ]
    return App(**item)


def _expiry(value: object) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
