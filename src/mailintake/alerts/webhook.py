"""Alerts by webhook: one HTTP POST of the alert's JSON body; only a 2xx counts."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from mailintake.alerts.message import AlertMessage
from mailintake.errors import AlertNotSent
from mailintake.net.http import build_client, translate


class WebhookChannel:
    def __init__(
        self,
        name: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
        client: httpx2.Client | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.headers = dict(headers or {})
        self.client = client or build_client(timeout=httpx2.Timeout(timeout))

    def send(self, message: AlertMessage) -> None:
        try:
            response = self.client.post(self.url, json=message.body(), headers=self.headers)
        except httpx2.HTTPError as exc:
            raise AlertNotSent(str(translate(exc, f"sending an alert to {self.url}"))) from exc
        if not response.is_success:
            raise AlertNotSent(
                f"{self.url} answered {response.status_code} {response.reason_phrase}".rstrip()
            )

    def close(self) -> None:
        self.client.close()
