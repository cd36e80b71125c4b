"""The embedded stack's own issuer: one ES256 signing key per run directory, its JWKS, and tokens
for operators and tests (`subsidy token`) and, later, the console's development login.

Production never uses this: services verify tokens of whatever OIDC issuer the settings name
(`OIDC_ISSUER`, `OIDC_AUDIENCE`, `OIDC_JWKS_URL`). The key is made once (`identity/signing-key.pem`,
mode 0600, in the run directory) so tokens stay valid across restarts of the stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from subsidy.identity.claims import StaffRole

AUDIENCE = "subsidy-platform"
DEFAULT_TTL_S = 3600
KEY_FILE = "identity/signing-key.pem"


class LocalIssuer:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issuer: str, audience: str = AUDIENCE):
        self._key = private_key
        self.issuer = issuer
        self.audience = audience
        public = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(public).hexdigest()[:16]

    @classmethod
    def for_run_dir(cls, run_dir: Path, issuer: str, audience: str = AUDIENCE) -> LocalIssuer:
        return cls(load_or_create_key(run_dir / KEY_FILE), issuer, audience)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks.json",
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "claims_supported": ["sub", "name", "roles", "programs", "window"],
        }

    def mint(
        self,
        *,
        subject: str,
        roles: Iterable[StaffRole | str],
        programs: Iterable[str] = (),
        name: str | None = None,
        window: str | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "name": name or subject,
            "roles": [StaffRole(r).value for r in roles],
            "programs": sorted(set(programs)),
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_s,
            "jti": str(uuid.uuid4()),
        }
        if window:
            claims["window"] = window
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)
    return key
