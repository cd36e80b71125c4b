"""The plain ASGI endpoints the services expose besides FastStream's answer with `send_json`."""

from __future__ import annotations

import json
from typing import Any


async def send_json(send: Any, status: int, body: Any) -> None:
    payload = json.dumps(body, ensure_ascii=False, default=str).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})
