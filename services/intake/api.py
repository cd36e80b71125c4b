"""Intake's read side over HTTP: `GET /applications/{application_no}`.

Program, current status, deadline, versions and the history of inbound events (with what became of
each) and state changes, in time order. No personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from services.intake import repository
from subsidy.http import send_json
from subsidy.runtime import Resources

PREFIX = "/applications/"
_APPLICATION_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApplicationsApi:
    def __init__(self, resources: Callable[[], Resources | None]):
        self.resources = resources

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"reason": "method_not_allowed"})
            return
        application_no = scope["path"][len(PREFIX):]
        if not _APPLICATION_NO.match(application_no):
            await send_json(send, 400, {"reason": "bad_application_no"})
            return
        resources = self.resources()
        if resources is None:
            await send_json(send, 503, {"reason": "starting"})
            return
        async with resources.pool.acquire() as conn:
            view = await repository.application_view(conn, application_no)
        if view is None:
            await send_json(send, 404, {"reason": "unknown_application", "application_no": application_no})
            return
        await send_json(send, 200, view)
