"""What every service's FastAPI surface shares: answers officials understand, and the resources
the lifespan owns.

An `ApiError` is an answer with a status, a machine `code` and a Chinese `message` (what an official
reads), rendered as `{"code": ..., "message": ..., "detail": ...}` by the handler that
subsidy/runtime.py installs. `Started` gives a route the service's `Resources` (503 while starting).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from subsidy.contracts.workflow_ids import is_application_no


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


URL_NUL_MESSAGE = "请求地址含有无法处理的控制字符（%00），请检查后重试"


class RefuseNulInUrl:
    """ASGI middleware: a path or query holding `%00` is answered 400 `bad_url` before any route.
    Decoded, a NUL reaches SQL as a filter or a name (PostgreSQL refuses it in text: a 500) or a
    workflow id; the request bodies' own check is subsidy/text.py's. (A NUL byte itself cannot be in
    an HTTP request line; a lone surrogate cannot be percent-encoded UTF-8, it decodes to U+FFFD.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", "")):
            await JSONResponse(ApiError(400, "bad_url", URL_NUL_MESSAGE).body(), status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def resources_of(request: Request) -> Any:
    """The service's started resources, or 503 while it starts."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None:
        raise ApiError(503, "starting", "服务正在启动，请稍后再试", headers={"Retry-After": "1"})
    return resources


async def get_resources(request: Request) -> Any:
    """The `Started` dependency. async: FastAPI runs a plain `def` dependency in its thread pool, a
    thread hop on every request (3% of review's CPU in the lifecycle benchmark, with
    `idempotency_key`'s)."""
    return resources_of(request)


Started = Annotated[Any, Depends(get_resources)]  # subsidy.runtime.Resources


def checked_application_no(application_no: str) -> str:
    """An application number from a path or query, checked with the contracts' one type
    (`subsidy.contracts.workflow_ids.ApplicationNo`): every service answers the same 400 for a
    text that cannot be one (issue 14, defect 7)."""
    if not is_application_no(application_no):
        raise ApiError(400, "bad_application_no", "申报编号格式不正确（例：LG2025-000123）")
    return application_no
