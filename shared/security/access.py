"""One access policy for every HTTP API: roles from the token of an OIDC issuer, one check per endpoint.

``viewer`` reads metadata (catalog queries, OData), ``downloader`` gets ``$value`` (and may find what it
downloads: it implies viewer), ``operator`` replays, restarts and releases (implies viewer), ``admin`` may do
all. Without an issuer the policy is open (the embedded platform on loopback; ``refsys up`` warns).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import flask

from shared.catalog.odata.auth import TokenVerifier, verifier_from_settings
from shared.catalog.odata.errors import Unauthorized
from shared.responses import error_response
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

VIEWER = "viewer"
DOWNLOADER = "downloader"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, DOWNLOADER, OPERATOR, ADMIN)
IMPLIES: dict[str, frozenset[str]] = {
    VIEWER: frozenset({VIEWER}),
    DOWNLOADER: frozenset({DOWNLOADER, VIEWER}),
    OPERATOR: frozenset({OPERATOR, VIEWER}),
    ADMIN: frozenset(ROLES),
}
OPEN_WARNING = "access control is off: anyone who can reach these ports can read, download and operate"


class Denied(Exception):
    """A refused request: 401 (no valid token) or 403 (a valid token without the role)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> flask.Response:
        response = error_response(self.status, self.code, self.message)
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        elif self.status == 403:
            response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
        return response


def roles_of(claims: dict[str, Any]) -> set[str]:
    """Roles a token grants, wherever the issuer puts them: ``roles``, Keycloak's ``realm_access.roles``
    and ``resource_access.<client>.roles``, or ``groups``."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, list):
            found.update(str(item) for item in value)

    add(claims.get("roles"))
    add(claims.get("groups"))
    realm = claims.get("realm_access")
    if isinstance(realm, dict):
        add(realm.get("roles"))
    resources = claims.get("resource_access")
    if isinstance(resources, dict):
        for client in resources.values():
            if isinstance(client, dict):
                add(client.get("roles"))
    return found


@dataclass(frozen=True)
class AccessPolicy:
    """``verifier`` None: open. ``names`` maps a role to what the issuer calls it (e.g. operator -> ops)."""

    verifier: TokenVerifier | None
    names: dict[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.verifier is None

    def granted(self, claims: dict[str, Any]) -> set[str]:
        """Our roles a token holds, implied ones included."""
        held = roles_of(claims)
        return {implied for role in ROLES if self.names.get(role, role) in held for implied in IMPLIES[role]}

    def require(self, authorization: str | None, role: str) -> dict[str, Any]:
        """The token's claims if it may act as ``role``; raises :class:`Denied` otherwise."""
        if self.verifier is None:
            return {}
        try:
            claims = self.verifier.verify(authorization)
        except Unauthorized as exc:
            raise Denied(401, "Unauthorized", exc.message) from None
        if role not in self.granted(claims):
            raise Denied(403, "Forbidden", f"this needs the {self.names.get(role, role)!r} role")
        return claims

    def refuse(self, request: flask.Request, role: str) -> flask.Response | None:
        """The refusal to answer, or None when the request may go on (one call at the top of a view)."""
        try:
            self.require(request.headers.get("Authorization"), role)
        except Denied as exc:
            return exc.response()
        return None


def policy_from_settings(settings: Settings) -> AccessPolicy:
    verifier = verifier_from_settings(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    return AccessPolicy(verifier, {OPERATOR: settings.operator_role})


@lru_cache(maxsize=1)
def access_policy() -> AccessPolicy:
    """The policy of this process, from its settings."""
    return policy_from_settings(get_settings())
