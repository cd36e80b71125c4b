"""The FastAPI side of identity: every protected route takes `Authenticated` (a `Principal` from a
verified bearer token) or answers 401 with `WWW-Authenticate: Bearer`.

The app holds its `TokenVerifier` in `app.state.verifier` (set by subsidy/runtime.py from the
settings); tests may put another verifier there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from subsidy.identity.claims import Principal
from subsidy.identity.verifier import InvalidToken, TokenVerifier

UNAUTHENTICATED_ZH = "未登录或登录已失效，请重新登录"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_principal(request: Request) -> Principal:
    verifier: TokenVerifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:
        raise HTTPException(503, detail={"code": "starting", "message": "服务正在启动，请稍后再试"})
    try:
        principal = await verifier.verify(bearer_token(request))
    except InvalidToken as exc:
        raise HTTPException(
            401,
            detail={"code": "unauthenticated", "reason": exc.reason, "message": UNAUTHENTICATED_ZH},
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'},
        ) from None
    request.state.principal = principal
    return principal


Authenticated = Annotated[Principal, Depends(current_principal)]
