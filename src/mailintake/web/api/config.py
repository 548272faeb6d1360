"""``/config``: validate, apply and export whole configuration documents (CONTRACT §3).

Bodies are the configuration document as JSON, or the YAML file itself with
``Content-Type: application/yaml``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from mailintake.config.apply import apply_document, validate_only
from mailintake.config.export import export_document
from mailintake.config.loader import dump_yaml, load_yaml_text
from mailintake.errors import ConfigError
from mailintake.web.deps import EnvDep, StoreDep

router = APIRouter(prefix="/config", tags=["configuration"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


async def _document(request: Request) -> Any:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(["(body): not UTF-8 text"]) from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in YAML_TYPES:
        return load_yaml_text(text, "(body)")
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [
                f"(body): not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}; "
                "send YAML with Content-Type: application/yaml"
            ]
        ) from None


@router.post(
    "/validate",
    summary="Check a document; every problem as PATH: message",
    openapi_extra=DOCUMENT_BODY,
)
async def validate(request: Request, store: StoreDep, env: EnvDep) -> dict[str, Any]:
    validated = validate_only(store, await _document(request), env, None)
    return {
        "valid": True,
        "counts": {
            "authorization_servers": len(validated.servers),
            "outputs": len(validated.outputs),
            "mailboxes": len(validated.mailboxes),
        },
    }


@router.post(
    "/apply", summary="Apply a document: all of it, or nothing", openapi_extra=DOCUMENT_BODY
)
async def apply(
    request: Request, store: StoreDep, env: EnvDep, prune: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    document = await _document(request)
    changes = apply_document(store, document, env, prune=prune, dry_run=dry_run)
    return {
        "applied": not dry_run,
        "changes": [{"kind": c.kind, "name": c.name, "action": c.action} for c in changes],
    }


@router.get("/export", summary="The current configuration, secrets redacted", response_model=None)
def export(store: StoreDep, format: str = "json") -> Response | dict[str, Any]:
    with store.read() as repo:
        document = export_document(repo)
    if format == "yaml":
        return PlainTextResponse(
            dump_yaml(document) if document else "{}\n", media_type="application/yaml"
        )
    if format != "json":
        raise ConfigError([f"format: '{format}' is not json or yaml"])
    return document
