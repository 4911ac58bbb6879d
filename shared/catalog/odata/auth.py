"""Bearer tokens of an OIDC issuer: signature against the issuer's keys (JWKS), audience, expiry.

PyJWT is imported only when an issuer is configured: the open embedded default never pays for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shared.catalog.odata.errors import Unauthorized

log = logging.getLogger(__name__)

# Asymmetric algorithms only: a token signed with HS256 and the public key as secret must fail.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
KeyForToken = Callable[[str], Any]


class TokenVerifier:
    """Checks ``Authorization: Bearer <jwt>``; ``key_for_token`` finds the token's signing key."""

    def __init__(self, issuer: str, audience: str | None, key_for_token: KeyForToken) -> None:
        self.issuer = issuer
        self.audience = audience
        self._key_for_token = key_for_token

    def verify(self, authorization: str | None) -> dict[str, Any]:
        import jwt

        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("this service needs a bearer token: Authorization: Bearer <access token>")
        try:
            key = self._key_for_token(token.strip())
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the bearer token is not for this service (audience)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the bearer token is from another issuer") from None
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise Unauthorized(f"the bearer token is not valid: {exc}") from None
        return claims


def jwks_keys(jwks_url: str) -> KeyForToken:
    """Signing keys from a JWKS URL, cached (and refetched for an unknown key id)."""
    import jwt

    client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=600, timeout=5)
    return lambda token: client.get_signing_key_from_jwt(token).key


def discover_jwks_url(issuer: str) -> str:
    import requests

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    jwks_uri: str = response.json()["jwks_uri"]
    return jwks_uri


def verifier_from_settings(issuer: str | None, audience: str | None, jwks_url: str | None) -> TokenVerifier | None:
    if not issuer:
        return None
    resolved: dict[str, KeyForToken] = {}

    def key_for_token(token: str) -> Any:
        # Discovery on first use: a function must start even when the issuer is briefly down.
        if "keys" not in resolved:
            try:
                resolved["keys"] = jwks_keys(jwks_url or discover_jwks_url(issuer))
            except Exception as exc:
                raise ValueError(f"the issuer's keys cannot be fetched: {exc}") from exc
        return resolved["keys"](token)

    return TokenVerifier(issuer, audience, key_for_token)
