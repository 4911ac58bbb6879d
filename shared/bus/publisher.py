"""Posting events to a sink (the broker ingress, or whatever Knative injected as K_SINK)."""

from __future__ import annotations

import requests
from cloudevents.http import CloudEvent

from events import to_http


class SinkUnavailable(Exception):
    """The sink did not accept the event; the caller should fail its own delivery so it is retried."""


class SinkPublisher:
    def __init__(self, sink_url: str, timeout: float = 10.0) -> None:
        self.sink_url = sink_url
        self._session = requests.Session()
        self._timeout = timeout

    def publish(self, event: CloudEvent) -> None:
        headers, body = to_http(event)
        try:
            response = self._session.post(self.sink_url, data=body, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise SinkUnavailable(f"sink {self.sink_url} unreachable: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise SinkUnavailable(f"sink {self.sink_url} answered {response.status_code}: {response.text[:200]}")
