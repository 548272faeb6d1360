"""``/health``, ``/status`` and ``/matrix`` (the seed's table as data, for clients and the UI)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mailintake import __version__
from mailintake.config import matrix
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
    summary="Per mailbox: enabled, authorization state, last poll, last error; the workers "
    "and whether intervals are kept",
)
def status(store: StoreDep) -> dict[str, Any]:
    with store.read() as repo:
        return {"mailboxes": mailbox_status(repo), "scheduling": scheduling_status(repo)}


@router.get("/matrix", summary="Which grant works with which protocol, and each field's rule")
def get_matrix() -> dict[str, object]:
    return matrix.as_data()
