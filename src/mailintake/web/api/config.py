"""``/config``: validate, apply and export whole configuration documents (CONTRACT §3).

Bodies are the configuration document as JSON, or the YAML file itself with
``Content-Type: application/yaml``, up to 1 MiB (413 beyond). Reading and validating run in a
worker thread, never on the event loop: a document near the limits takes a second or more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from mailintake.config.loader import (
    dump_yaml,
    load_json_text,
    load_yaml_text,
)
from mailintake.config.validate import Validated
from mailintake.engine.graph_push import unsubscriber
from mailintake.errors import ConfigError
from mailintake.services.apply import apply_document, validate_only
from mailintake.services.export import export_document
from mailintake.store.repo import Change
from mailintake.web.api.documents import read_body
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


def _parse(raw: bytes, content_type: str) -> Any:
    """The document in a body: YAML with a YAML content type, otherwise JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(["(body): not UTF-8 text"]) from None
    if content_type in YAML_TYPES:
        return load_yaml_text(text, "(body)")
    try:
        return load_json_text(text, "(body)")
    except ConfigError as exc:
        if exc.problems and exc.problems[0].startswith("(body): not valid JSON"):
            hint = "; send YAML with Content-Type: application/yaml"
            raise ConfigError([exc.problems[0] + hint, *exc.problems[1:]]) from None
        raise


async def _document(request: Request) -> Callable[[], Any]:
    """A function that reads the body's document; call it in a worker thread: reading and
    validating a document takes time the event loop must not spend."""
    raw = await read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return lambda: _parse(raw, content_type)


@router.post(
    "/validate",
    summary="Check a document; every problem as PATH: message",
    openapi_extra=DOCUMENT_BODY,
)
async def validate(request: Request, store: StoreDep, env: EnvDep) -> dict[str, Any]:
    document = await _document(request)

    def work() -> Validated:
        return validate_only(store, document(), env, None)

    validated = await run_in_threadpool(work)
    return {
        "valid": True,
        "counts": {
            "authorization_servers": len(validated.servers),
            "outputs": len(validated.outputs),
            "mailboxes": len(validated.mailboxes),
        },
        "warnings": list(validated.warnings),
    }


@router.post(
    "/apply", summary="Apply a document: all of it, or nothing", openapi_extra=DOCUMENT_BODY
)
async def apply(
    request: Request, store: StoreDep, env: EnvDep, prune: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    document = await _document(request)

    warnings: list[str] = []

    def work() -> list[Change]:
        return apply_document(
            store,
            document(),
            env,
            prune=prune,
            dry_run=dry_run,
            warnings=warnings,
            before_pruning=unsubscriber(store),  # Graph subscriptions of pruned mailboxes
        )

    changes = await run_in_threadpool(work)
    return {
        "applied": not dry_run,
        "changes": [{"kind": c.kind, "name": c.name, "action": c.action} for c in changes],
        "warnings": warnings,
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
