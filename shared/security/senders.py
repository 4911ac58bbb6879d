"""Who may send events to a function: the broker, the timers and the object store's notifier, nobody else.

Checked once where an event enters (the first line of every event and tick view, after ``/healthz``):

- on a laptop, the platform's secret (``REFSYS_EVENT_SECRET``, made once into the data directory): the
  local broker, the PingTimer and SeaweedFS's webhook send ``Authorization: Bearer <secret>``;
- on a cluster, Knative Eventing's sender identity (feature ``authentication-oidc``): the broker and the
  sources send a JWT of the cluster's OIDC issuer for the subscriber's audience, checked against its JWKS.

Neither configured: events are accepted from anyone, with one warning line per process.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from functools import lru_cache

import flask

from shared.catalog.odata.auth import TokenVerifier, verifier_from_settings
from shared.catalog.odata.errors import Unauthorized
from shared.responses import error_response
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SenderCheck:
    secret: str | None
    verifier: TokenVerifier | None

    @property
    def open(self) -> bool:
        return not self.secret and self.verifier is None

    def refuse(self, request: flask.Request) -> flask.Response | None:
        """A 401 for an event from an unknown sender, None for one from ours."""
        if self.open:
            return None
        authorization = request.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("events come from the platform's broker: Authorization: Bearer <token> missing")
        # Constant time: how long a refusal takes must not tell how much of the secret was right.
        if self.secret and hmac.compare_digest(token.encode(), self.secret.encode()):
            return None
        if self.verifier is not None:
            try:
                self.verifier.verify(authorization)
                return None
            except Unauthorized as exc:
                return _unauthorized(f"not a sender of this platform: {exc.message}")
        return _unauthorized("not a sender of this platform: wrong bearer token")


def _unauthorized(message: str) -> flask.Response:
    response = error_response(401, "Unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="events"'
    return response


def check_from_settings(settings: Settings) -> SenderCheck:
    verifier = verifier_from_settings(
        settings.event_oidc_issuer, settings.event_oidc_audience, settings.event_oidc_jwks_url
    )
    check = SenderCheck(settings.event_secret or None, verifier)
    if check.open:
        log.warning("events are accepted from anyone: neither REFSYS_EVENT_SECRET nor REFSYS_EVENT_OIDC_ISSUER is set")
    return check


@lru_cache(maxsize=1)
def sender_check() -> SenderCheck:
    return check_from_settings(get_settings())


def refuse_unknown_sender(request: flask.Request) -> flask.Response | None:
    """The one call each event view makes first: a 401 response to return, or None to go on."""
    return sender_check().refuse(request)


def sender_headers(secret: str | None) -> dict[str, str]:
    """What the platform's own senders add to each delivery."""
    return {"Authorization": f"Bearer {secret}"} if secret else {}
