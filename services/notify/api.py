"""The SMS log over HTTP (bearer token): `GET /sms` (newest first) and `GET /sms/{application_no}`.
Numbers are masked; texts are as sent. A caller sees only the messages of the programs its token
grants: `/sms/{application_no}` answers 404 when it sees none (an application notify never texted
and one of another program look the same)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from services.notify import repository
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started, checked_application_no

MAX_LIMIT = 1000


def router() -> APIRouter:
    api = APIRouter(tags=["sms"])

    async def log(resources: Any, principal: Any, application_no: str | None, limit: int) -> dict[str, Any]:
        async with resources.pool.acquire() as conn:
            rows = await repository.sms_log(
                conn, application_no=application_no, limit=limit, programs=sorted(principal.programs)
            )
        return {"messages": rows}

    @api.get("/sms", summary="The SMS log of the caller's programs, newest first (numbers masked)")
    async def sms_log(
        principal: Authenticated, resources: Started, limit: int = Query(200, ge=1, le=MAX_LIMIT)
    ) -> dict[str, Any]:
        return await log(resources, principal, None, limit)

    @api.get("/sms/{application_no}", summary="The SMS sent about one application (numbers masked)")
    async def sms_of_application(
        application_no: str, principal: Authenticated, resources: Started, limit: int = Query(200, ge=1, le=MAX_LIMIT)
    ) -> dict[str, Any]:
        checked_application_no(application_no)
        found = await log(resources, principal, application_no, limit)
        if not found["messages"]:
            raise ApiError(404, "no_sms", "未找到该申报的短信记录", detail={"application_no": application_no})
        return found

    return api
