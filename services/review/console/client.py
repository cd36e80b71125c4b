"""The console is a pure client of the reviewers' API: every call goes to `/api/...` of the same
app, in-process (no socket), with the official's own bearer token, so what they may see and do is
exactly what the API allows them.

Errors come back as `ApiProblem(status, code, message)` with the API's Chinese message; a 401 is
`SessionExpired` (the console sends the official back to login and then to the page).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from starlette.types import ASGIApp

API_TIMEOUT_S = 30.0  # a decision may wait while the lifecycle settles its previous step (bounded by the API)


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None):
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class SessionExpired(ApiProblem):
    pass


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if isinstance(body, dict) and isinstance(body.get("detail"), dict) and "message" not in body:
        body = body["detail"]  # FastAPI's HTTPException shape: {"detail": {"code", "message"}}
    code = str(body.get("code") or f"http_{response.status_code}") if isinstance(body, dict) else f"http_{response.status_code}"
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = {400: "请求有误", 403: "无权限执行此操作", 404: "未找到或无权查看", 409: "当前状态不允许此操作",
                   422: "填写内容有误"}.get(response.status_code, "服务暂时不可用，请稍后再试")
    cls = SessionExpired if response.status_code == 401 else ApiProblem
    return cls(response.status_code, code, message, body.get("detail") if isinstance(body, dict) else None)


class ReviewApi:
    """`/api` of the review service, as the signed-in official."""

    def __init__(self, app: ASGIApp, token: str, *, request_id: str | None = None):
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        if request_id:
            headers["x-request-id"] = request_id
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review",
                                         headers=headers, timeout=API_TIMEOUT_S)

    async def __aenter__(self) -> ReviewApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._client.get(path, params=clean)
        if response.status_code != 200:
            raise _problem(response)
        return response.json()

    async def post(self, path: str, body: Mapping[str, Any], idempotency_key: str) -> Any:
        response = await self._client.post(path, json=dict(body), headers={"Idempotency-Key": idempotency_key})
        if response.status_code not in (200, 201):
            raise _problem(response)
        return response.json()

    async def all_pages(self, path: str, params: Mapping[str, Any], *, page_size: int = 100, limit: int = 10_000) -> list[Any]:
        """Every item of a paged list (`{"total", "items"}`), up to `limit` (exports)."""
        items: list[Any] = []
        page = 1
        while len(items) < limit:
            answer = await self.get(path, {**params, "page": page, "page_size": page_size})
            batch = answer.get("items", [])
            items.extend(batch)
            if len(batch) < page_size or len(items) >= int(answer.get("total", 0)):
                break
            page += 1
        return items[:limit]
