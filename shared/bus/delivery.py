"""Delivery policy: retry/backoff math and the dead-letter error extensions, as Knative does it.

Math from knative/eventing pkg/kncloudevents/retries.go (retry index ``i`` starts at 0):
exponential waits ``delay * 2**i``, linear waits ``delay * i`` (the first linear retry is
immediate). Total attempts = ``retry + 1``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from shared.bus.manifests import BackoffPolicy, DeliverySpec

# Used when a delivery spec sets retries but no backoff (the cluster default, default-broker.yaml).
DEFAULT_BACKOFF_DELAY = 0.2
# Used when no `timeout` is set: Knative Serving's maximum request timeout (600 s), so a stuck
# subscriber cannot hold a worker forever.
DEFAULT_TIMEOUT = 600.0
# Retried besides transport errors and 5xx (SelectiveRetry in retries.go).
RETRYABLE_4XX = frozenset({404, 408, 409, 429})
ERROR_DATA_MAX_CHARS = 1024


def backoff_seconds(policy: BackoffPolicy, delay: float, attempt_index: int) -> float:
    """Wait before retry number ``attempt_index + 1`` (index 0 = wait after the first failure)."""
    if attempt_index < 0:
        raise ValueError("attempt_index starts at 0")
    if policy == "exponential":
        return float(delay * 2**attempt_index)
    if policy == "linear":
        return float(delay * attempt_index)
    raise ValueError(f"unknown backoff policy {policy!r}")


def is_retryable(status: int | None) -> bool:
    """None = no response (transport error, timeout): retried, like 5xx, 404, 408, 409 and 429."""
    return status is None or status >= 500 or status in RETRYABLE_4XX


@dataclass(frozen=True)
class RetryPlan:
    """A delivery spec with Knative's defaults filled in."""

    retry: int = 0
    policy: BackoffPolicy = "exponential"
    delay: float = DEFAULT_BACKOFF_DELAY
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_spec(cls, spec: DeliverySpec | None) -> RetryPlan:
        spec = spec or DeliverySpec()
        return cls(
            retry=spec.retry or 0,
            policy=spec.backoff_policy or "exponential",
            delay=DEFAULT_BACKOFF_DELAY if spec.backoff_delay is None else spec.backoff_delay,
            timeout=spec.timeout or DEFAULT_TIMEOUT,
        )

    @property
    def total_attempts(self) -> int:
        return self.retry + 1

    def wait_after(self, failed_attempts: int) -> float | None:
        """Seconds until the next attempt after ``failed_attempts`` failures; None when exhausted."""
        if failed_attempts >= self.total_attempts:
            return None
        return backoff_seconds(self.policy, self.delay, failed_attempts - 1)

    def schedule(self) -> list[float]:
        """Every wait between attempts, in order (``retry`` values)."""
        return [backoff_seconds(self.policy, self.delay, i) for i in range(self.retry)]


def error_extensions(destination: str, status: int | None, body: bytes) -> dict[str, str | int]:
    """Extensions Knative puts on an event sent to the dead-letter sink.

    ``knativeerrorcode`` is 0 when no HTTP response was received (transport error, timeout).
    ``knativeerrordata`` is the last response body, base64-encoded then cut to 1024 characters
    (pkg/kncloudevents/attributes/knative_error.go); absent when the body was empty.
    """
    extensions: dict[str, str | int] = {"knativeerrordest": destination, "knativeerrorcode": status or 0}
    if body:
        extensions["knativeerrordata"] = base64.b64encode(body).decode("ascii")[:ERROR_DATA_MAX_CHARS]
    return extensions
