"""What request handlers receive: the store, the environment (for ``${env:NAME}``), and what
the application built for them (web/app.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mailintake.engine.runtime import ImportRuntime
from mailintake.oauth.tokens import TokenManager
from mailintake.store.repo import Store


@dataclass
class Services:
    store: Store | None  # None until the application has started (opened from the settings)
    environ: Callable[[], Mapping[str, str]]
    runtime: ImportRuntime  # what "Poll now" and the scheduler import with
    tokens: TokenManager | None = None  # built with the store

    def token_manager(self) -> TokenManager:
        if self.tokens is None:  # pragma: no cover - only before startup
            raise RuntimeError("the application has not started")
        return self.tokens


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
