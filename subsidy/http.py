"""The plain ASGI endpoints the services expose besides FastStream's answer with `send_json`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


async def send_json(send: Any, status: int, body: Any) -> None:
    payload = json.dumps(body, ensure_ascii=False, default=str).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})


APPLICATION_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Download:
    """An answer that is a file, not JSON (e.g. review's watermarked form)."""

    content_type: str
    body: bytes
    filename: str
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, send: Any, status: int) -> None:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            (b"content-disposition", f'attachment; filename="{self.filename}"'.encode()),
            *((name.encode(), value.encode()) for name, value in self.headers.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class ReadEndpoint:
    """A GET endpoint under `prefix` that answers from the service's resources once it has started:
    `GET <prefix>` or `GET <prefix>/<key>` (an application number unless `key_pattern` says
    otherwise). Subclasses implement `answer`, which returns JSON or a `Download`."""

    prefix: str = "/"
    needs_application_no: bool = False
    key_pattern: re.Pattern[str] = APPLICATION_NO
    bad_key_reason: str = "bad_application_no"

    def __init__(self, resources: Callable[[], Any]):
        self.resources = resources

    async def answer(self, resources: Any, application_no: str | None) -> tuple[int, Any]:
        raise NotImplementedError

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"reason": "method_not_allowed"})
            return
        rest = scope["path"][len(self.prefix):].strip("/")
        if (rest or self.needs_application_no) and not self.key_pattern.match(rest):
            await send_json(send, 400, {"reason": self.bad_key_reason})
            return
        resources = self.resources()
        if resources is None:
            await send_json(send, 503, {"reason": "starting"})
            return
        status, body = await self.answer(resources, rest or None)
        if isinstance(body, Download):
            await body.send(send, status)
        else:
            await send_json(send, status, body)
