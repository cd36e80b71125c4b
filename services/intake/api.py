"""Intake's read side over HTTP: `GET /applications/{application_no}` (bearer token).

Program, current status, deadline, versions and the history of inbound events (with what became of
each) and state changes, in time order. No personal data.

Any role granted for the application's program may read it (reviewers, clerks, experts,
administrators, auditors: review's API narrows what an expert sees). An application of another
program answers 404 like an unknown one: its existence is not revealed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.intake import repository
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started, checked_application_no

NOT_FOUND_ZH = "未找到该申报"


def router() -> APIRouter:
    api = APIRouter(tags=["applications"])

    @api.get(
        "/applications/{application_no}",
        summary="An application: program, status, deadline, versions and history (no personal data)",
        responses={401: {"description": "no or invalid token"}, 404: {"description": "unknown, or not of the caller's programs"}},
    )
    async def application(application_no: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        checked_application_no(application_no)
        async with resources.pool.acquire() as conn:
            view = await repository.application_view(conn, application_no)
        if view is None or not principal.in_program(view["program"]):
            raise ApiError(404, "unknown_application", NOT_FOUND_ZH, detail={"application_no": application_no})
        return view

    return api
