"""Intake's read side over HTTP: `GET /applications/{application_no}` (bearer token).

Program, current status, deadline, versions and the history of inbound events (with what became of
each) and state changes, in time order. No personal data.

Any role granted for the application's program may read it (reviewers, clerks, experts,
administrators, auditors: review's API narrows what an expert sees). An application of another
program answers 404 like an unknown one: its existence is not revealed. An expert who is neither
administrator nor auditor reads the state changes out of the panel's statuses without their reason
(the panel's score, the tier, the award), as review's application view shows them to an expert.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.intake import repository
from subsidy.contracts.lifecycle import without_panel_result
from subsidy.identity.claims import Principal, StaffRole
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started, checked_application_no

NOT_FOUND_ZH = "未找到该申报"
PANEL_READERS = frozenset({StaffRole.PROGRAM_ADMIN, StaffRole.AUDITOR})  # review's view_scores


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
        return view if sees_panel_result(principal) else without_panel_result(view)

    return api


def sees_panel_result(principal: Principal) -> bool:
    """An expert does not, unless also administrator or auditor (review's `access.sees_panel`)."""
    return not principal.has(StaffRole.EXPERT) or principal.any_of(PANEL_READERS)

