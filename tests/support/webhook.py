"""A portal's POST to intake's signed webhook, for the integration tests that send one."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def post_webhook(port: int, slug: str, body: bytes, *, signature: str, timestamp: int | None = None) -> tuple[int, dict]:
    """POST `body` to intake's webhook as `slug` with this signature (blocking: call it in a thread):
    (status, answer)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/{slug}",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "X-Signature": signature,
            "X-Timestamp": str(int(time.time()) if timestamp is None else timestamp),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:  # not the webhook answering (e.g. the route is not mounted)
            return exc.code, {"not_json": text[:200]}
