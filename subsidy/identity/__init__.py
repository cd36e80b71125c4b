"""Identity: who is acting (claims.py), how a bearer token is verified (verifier.py), the FastAPI
dependency every protected route uses (http.py), and the embedded stack's local issuer
(local_issuer.py)."""

from subsidy.identity.claims import ROLE_NAMES_ZH, InvalidClaims, Principal, StaffRole
from subsidy.identity.verifier import InvalidToken, TokenVerifier

__all__ = ["ROLE_NAMES_ZH", "InvalidClaims", "InvalidToken", "Principal", "StaffRole", "TokenVerifier"]
