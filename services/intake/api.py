"""Intake's read side over HTTP: `GET /applications/{application_no}`.

Program, current status, deadline, versions and the history of inbound events (with what became of
each) and state changes, in time order. No personal data.
"""

from __future__ import annotations

from typing import Any

from services.intake import repository
from subsidy.http import ReadEndpoint

PREFIX = "/applications/"


class ApplicationsApi(ReadEndpoint):
    prefix = PREFIX
    needs_application_no = True

    async def answer(self, resources: Any, application_no: str | None) -> tuple[int, Any]:
        async with resources.pool.acquire() as conn:
            view = await repository.application_view(conn, application_no or "")
        if view is None:
            return 404, {"reason": "unknown_application", "application_no": application_no}
        return 200, view
