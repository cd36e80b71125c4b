"""The SMS log for operators over HTTP: `GET /sms` (newest first) and `GET /sms/<application_no>`.
Numbers are masked; texts are as sent."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from services.notify import repository
from subsidy.http import send_json
from subsidy.runtime import Resources

PREFIX = "/sms"
_APPLICATION_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SmsLogApi:
    def __init__(self, resources: Callable[[], Resources | None]):
        self.resources = resources

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"reason": "method_not_allowed"})
            return
        rest = scope["path"][len(PREFIX):].strip("/")
        if rest and not _APPLICATION_NO.match(rest):
            await send_json(send, 400, {"reason": "bad_application_no"})
            return
        resources = self.resources()
        if resources is None:
            await send_json(send, 503, {"reason": "starting"})
            return
        async with resources.pool.acquire() as conn:
            rows = await repository.sms_log(conn, application_no=rest or None, limit=200)
        await send_json(send, 200, {"messages": rows})
