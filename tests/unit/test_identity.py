"""Bearer tokens: what the verifier accepts and every attack it refuses, each with its reason, and
the 401 a protected route answers. Keys are real (ES256 from the local issuer's code, RS256 made
here); the JWKS comes from an in-memory fetcher so key rotation can be staged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from subsidy.identity import InvalidToken, Principal, StaffRole, TokenVerifier
from subsidy.identity.http import Authenticated
from subsidy.identity.local_issuer import LocalIssuer

ISSUER = "http://127.0.0.1:8400"
AUDIENCE = "subsidy-platform"
LG = "LG-AI-MODEL-2025"


class Jwks:
    """The issuer's published key set, changeable (rotation), counting how often it is fetched."""

    def __init__(self, *issuers: LocalIssuer):
        self.keys: list[dict[str, Any]] = [k for i in issuers for k in i.jwks()["keys"]]
        self.fetches = 0

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": list(self.keys)}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    return LocalIssuer.for_run_dir(tmp_path, ISSUER)


def verifier_for(jwks: Jwks, clock: Clock | None = None, **kw: Any) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, fetch_jwks=jwks, leeway=30, clock=clock or time.time, **kw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A JWS put together by hand (what an attacker does; PyJWT refuses to make these)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "lg-rev-01", "name": "张敏", "roles": ["lg_online_reviewer"],
            "programs": [LG], "iat": now, "nbf": now, "exp": now + 600, **overrides}


async def refused(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(token)
    return info.value.reason


# --- accepted -----------------------------------------------------------------------------------


async def test_a_good_token_gives_the_principal_of_its_claims(issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="lg-w03-01", name="李娜", roles=[StaffRole.WINDOW_CLERK], programs=[LG], window="LG-W03")
    principal = await verifier_for(Jwks(issuer)).verify(token)
    assert principal == Principal(
        subject="lg-w03-01", name="李娜", roles=frozenset({StaffRole.WINDOW_CLERK}), programs=frozenset({LG}),
        window="LG-W03", token_id=principal.token_id,
    )
    assert principal.token_id and principal.actor_id == "staff:lg-w03-01"
    assert principal.in_program(LG) and not principal.in_program("SZ-GOV-AI-SCENARIO-2025")


async def test_an_rs256_token_of_a_keycloak_like_issuer_is_accepted() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "kc-1", "use": "sig", "alg": "RS256"}
    jwks = Jwks()
    jwks.keys = [jwk]
    token = jwt.encode(claims(roles=["auditor", "another_apps_role"]), key, algorithm="RS256", headers={"kid": "kc-1"})
    principal = await verifier_for(jwks).verify(token)
    assert principal.roles == frozenset({StaffRole.AUDITOR})  # roles of other applications are ignored


async def test_clock_skew_within_the_leeway_is_tolerated(issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], programs=[LG], ttl_s=60, now=time.time() - 80)
    assert (await verifier_for(Jwks(issuer)).verify(token)).subject == "lg-rev-01"  # expired 20 s ago, leeway 30 s


# --- refused ------------------------------------------------------------------------------------


async def test_no_token_or_garbage_is_refused(issuer: LocalIssuer) -> None:
    verifier = verifier_for(Jwks(issuer))
    assert await refused(verifier, None) == "missing_token"
    assert await refused(verifier, "") == "missing_token"
    assert await refused(verifier, "not.a.jwt") == "malformed_token"


async def test_an_expired_token_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], programs=[LG], ttl_s=60, now=time.time() - 600)
    assert await refused(verifier_for(Jwks(issuer)), token) == "expired"


async def test_a_token_not_valid_yet_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], programs=[LG], now=time.time() + 600)
    assert await refused(verifier_for(Jwks(issuer)), token) == "not_yet_valid"


async def test_an_unknown_kid_is_refused(issuer: LocalIssuer, tmp_path: Path) -> None:
    other = LocalIssuer.for_run_dir(tmp_path / "other", ISSUER)
    token = other.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], programs=[LG])
    assert await refused(verifier_for(Jwks(issuer)), token) == "unknown_kid"


async def test_a_token_signed_by_another_key_under_the_issuers_kid_is_refused(issuer: LocalIssuer) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), attacker, algorithm="ES256", headers={"kid": issuer.kid})
    assert await refused(verifier_for(Jwks(issuer)), token) == "bad_signature"


async def test_alg_none_is_refused(issuer: LocalIssuer) -> None:
    token = forged({"alg": "none", "kid": issuer.kid, "typ": "JWT"}, claims(), secret=None)
    assert await refused(verifier_for(Jwks(issuer)), token) == "algorithm_not_allowed"


@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
async def test_hs256_signed_with_the_issuers_public_key_is_refused(issuer: LocalIssuer, secret_form: str) -> None:
    jwk = issuer.jwks()["keys"][0]
    public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    secret = (
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        if secret_form == "pem" else json.dumps(jwk).encode()
    )
    token = forged({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}, claims(), secret=secret)
    assert await refused(verifier_for(Jwks(issuer)), token) == "algorithm_not_allowed"


async def test_an_algorithm_that_does_not_fit_the_key_is_refused(issuer: LocalIssuer) -> None:
    # RS256 named in the header, the issuer's EC key behind the kid
    token = forged({"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}, claims(), secret=b"x")
    assert await refused(verifier_for(Jwks(issuer)), token) == "algorithm_not_allowed"


async def test_a_symmetric_key_slipped_into_the_jwks_is_never_used(issuer: LocalIssuer) -> None:
    jwks = Jwks(issuer)
    jwks.keys.append({"kty": "oct", "kid": "hmac-1", "k": b64(b"shared-secret-0123456789"), "use": "sig"})
    token = forged({"alg": "HS256", "kid": "hmac-1", "typ": "JWT"}, claims(), secret=b"shared-secret-0123456789")
    assert await refused(verifier_for(jwks), token) == "algorithm_not_allowed"


async def test_the_wrong_issuer_or_audience_is_refused(issuer: LocalIssuer, tmp_path: Path) -> None:
    verifier = verifier_for(Jwks(issuer))
    key = serialization.load_pem_private_key((tmp_path / "identity" / "signing-key.pem").read_bytes(), password=None)
    wrong_iss = jwt.encode(claims(iss="https://evil.example"), key, algorithm="ES256", headers={"kid": issuer.kid})
    wrong_aud = jwt.encode(claims(aud="another-app"), key, algorithm="ES256", headers={"kid": issuer.kid})
    no_exp = jwt.encode({k: v for k, v in claims().items() if k != "exp"}, key, algorithm="ES256", headers={"kid": issuer.kid})
    assert await refused(verifier, wrong_iss) == "wrong_issuer"
    assert await refused(verifier, wrong_aud) == "wrong_audience"
    assert await refused(verifier, no_exp) == "missing_claim:exp"


# --- key rotation -------------------------------------------------------------------------------


async def test_a_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_issuer(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    clock = Clock()
    jwks = Jwks(issuer)
    verifier = verifier_for(jwks, clock, refresh_interval=30)
    old = issuer.mint(subject="a", roles=["auditor"], programs=[LG])
    await verifier.verify(old)
    await verifier.verify(old)
    assert jwks.fetches == 1  # cached

    rotated = LocalIssuer.for_run_dir(tmp_path / "rotated", ISSUER)
    jwks.keys = [*rotated.jwks()["keys"], *issuer.jwks()["keys"]]  # the issuer publishes its new key
    new = rotated.mint(subject="b", roles=["auditor"], programs=[LG])
    clock.now += 31
    assert (await verifier.verify(new)).subject == "b"
    assert jwks.fetches == 2

    stranger = LocalIssuer.for_run_dir(tmp_path / "stranger", ISSUER).mint(subject="c", roles=["auditor"])
    for _ in range(5):
        assert await refused(verifier, stranger) == "unknown_kid"
    assert jwks.fetches == 2  # within the refresh interval: no refetch per unknown kid

    jwks.keys = rotated.jwks()["keys"]  # the old key retired
    clock.now += 31
    assert await refused(verifier, stranger) == "unknown_kid"
    assert jwks.fetches == 3
    assert await refused(verifier, old) == "unknown_kid"  # gone from the refreshed set


# --- the 401 of a protected route ---------------------------------------------------------------


async def test_a_protected_route_answers_401_with_the_reason_and_200_with_a_good_token(issuer: LocalIssuer) -> None:
    app = FastAPI()
    app.state.verifier = verifier_for(Jwks(issuer))

    @app.get("/me")
    async def me(principal: Authenticated) -> dict[str, Any]:
        return {"actor": principal.actor_id, "programs": sorted(principal.programs)}

    good = issuer.mint(subject="sz-pre-01", roles=["sz_pre_reviewer"], programs=["SZ-GOV-AI-SCENARIO-2025"])
    expired = issuer.mint(subject="sz-pre-01", roles=["sz_pre_reviewer"], ttl_s=1, now=time.time() - 600)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        none = await client.get("/me")
        old = await client.get("/me", headers={"Authorization": f"Bearer {expired}"})
        basic = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        ok = await client.get("/me", headers={"Authorization": f"Bearer {good}"})
    assert none.status_code == old.status_code == basic.status_code == 401
    assert none.json()["detail"]["reason"] == "missing_token" and old.json()["detail"]["reason"] == "expired"
    assert none.json()["detail"]["message"] == "未登录或登录已失效，请重新登录"
    assert none.headers["www-authenticate"].startswith("Bearer")
    assert expired not in old.text
    assert ok.status_code == 200 and ok.json() == {"actor": "staff:sz-pre-01", "programs": ["SZ-GOV-AI-SCENARIO-2025"]}
