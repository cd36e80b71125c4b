"""Small helpers for the plain ASGI endpoints the services expose besides FastStream's."""

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


async def read_body(receive: Any, *, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
