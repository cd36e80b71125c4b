"""Verifying bearer tokens: OIDC-style JWTs signed RS256 or ES256 by the configured issuer.

PyJWT does the JOSE work; this module only decides what is acceptable:

- the algorithm must be one of `ALGORITHMS` *and* match the key type of the JWKS key named by the
  token's `kid` (so `alg: none`, or HS256 "signed" with the issuer's public key, never verify);
- the key comes from the issuer's JWKS (fetched over HTTP, cached; refetched, at most every
  `refresh_interval` seconds, when a token names a `kid` the cache does not have: key rotation);
- `iss`, `aud`, `exp` are required and checked, `nbf` and `iat` when present, with a bounded
  clock skew (`leeway`).

Every refusal is an `InvalidToken` with a short machine reason (`expired`, `unknown_kid`, ...);
the token itself is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from subsidy.identity.claims import InvalidClaims, Principal

ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


class InvalidToken(Exception):
    """401: the request carries no acceptable token. `reason` is safe to show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


def http_jwks_fetcher(url: str, *, timeout: float = 5.0) -> JwksFetcher:
    async def fetch() -> Mapping[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            return response.json()

    return fetch


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        fetch_jwks: JwksFetcher,
        leeway: float = 30.0,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        self.issuer = issuer
        self.audience = audience
        self._fetch_jwks = fetch_jwks
        self.leeway = leeway
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> TokenVerifier:
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            fetch_jwks=http_jwks_fetcher(settings.oidc_jwks_url),
            leeway=settings.oidc_leeway_seconds,
        )

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise InvalidToken("missing_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed_token") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken("algorithm_not_allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no_kid")
        key = await self._key(kid)
        if key is None:
            raise InvalidToken("unknown_kid")
        if _KEY_TYPES[alg] != key.key_type:
            raise InvalidToken("algorithm_not_allowed")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad_signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing_claim:{exc.claim}") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid_token") from None
        try:
            return Principal.from_claims(claims)
        except InvalidClaims as exc:
            raise InvalidToken(f"invalid_claims:{exc}") from None

    async def _key(self, kid: str) -> PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < self.refresh_interval:
                return None  # a burst of tokens with made-up kids does not hammer the issuer
            try:
                jwks = await self._fetch_jwks()
            except (httpx.HTTPError, ValueError, json.JSONDecodeError) as exc:
                raise InvalidToken(f"jwks_unavailable:{type(exc).__name__}") from None
            self._fetched_at = now
            self._keys = _parse_jwks(jwks)
            return self._keys.get(kid)


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
            continue
        if entry.get("kty") not in ("RSA", "EC"):
            continue  # symmetric ("oct") keys are never accepted from a JWKS
        try:
            keys[entry["kid"]] = PyJWK(entry)
        except jwt.PyJWTError:
            continue
    return keys
