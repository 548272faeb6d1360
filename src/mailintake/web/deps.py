"""What request handlers receive: the store and the environment (for ``${env:NAME}``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mailintake.store.repo import Store


@dataclass
class Services:
    store: Store | None
    environ: Callable[[], Mapping[str, str]]


def services(request: Request) -> Services:
    found = request.app.state.services
    assert isinstance(found, Services)
    return found


def store(request: Request) -> Store:
    found = services(request).store
    if found is None:  # pragma: no cover - only before startup
        raise RuntimeError("the application has not started")
    return found


def environ(request: Request) -> Mapping[str, str]:
    return services(request).environ()


StoreDep = Annotated[Store, Depends(store)]
EnvDep = Annotated[Mapping[str, str], Depends(environ)]
