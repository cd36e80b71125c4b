"""The SMS log for operators over HTTP: `GET /sms` (newest first) and `GET /sms/<application_no>`.
Numbers are masked; texts are as sent."""

from __future__ import annotations

from typing import Any

from services.notify import repository
from subsidy.http import ReadEndpoint

PREFIX = "/sms"


class SmsLogApi(ReadEndpoint):
    prefix = PREFIX

    async def answer(self, resources: Any, application_no: str | None) -> tuple[int, Any]:
        async with resources.pool.acquire() as conn:
            rows = await repository.sms_log(conn, application_no=application_no, limit=200)
        return 200, {"messages": rows}
