"""``/health``, ``/status`` and ``/matrix`` (the seed's table as data, for clients and the UI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from mailintake import __version__
from mailintake.config import matrix
from mailintake.health import refresh as record_health
from mailintake.status import mailbox_status, scheduling_status
from mailintake.web.deps import StoreDep

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness and database reachability")
def health(store: StoreDep) -> dict[str, Any]:
    with store.read() as repo:
        repo.list_outputs()
    return {"status": "ok", "version": __version__}


@router.get(
    "/status",
    summary="Per mailbox: health (why, since when, what to do), enabled, authorization state, "
    "last poll, last error; the workers and whether intervals are kept",
)
def status(store: StoreDep) -> dict[str, Any]:
    now = datetime.now(UTC)
    record_health(store, now)  # a health that changed since is recorded with when it began
    with store.read() as repo:
        return {
            "mailboxes": mailbox_status(repo, now),
            "scheduling": scheduling_status(repo, now),
        }


@router.get("/matrix", summary="Which grant works with which protocol, and each field's rule")
def get_matrix() -> dict[str, object]:
    return matrix.as_data()
