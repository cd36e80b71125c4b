"""Shenzhen expert review's routes under `/api` (services/review/scoring/service.py does the work).

- `POST /api/applications/{no}/experts` `{"experts": ["exp-01", ...]}`: the panel (program administrator)
- `POST /api/applications/{no}/expert-assignment/decline` `{"reason": ...}`: the assigned expert declines
- `POST /api/applications/{no}/scores` `{"criteria": {"practicality": {"points", "justification"}, ...}}`: the assigned expert, once
- `POST /api/applications/{no}/scores/aggregate`: the administrator asks again to record a complete panel's result
- `GET  /api/applications/{no}/scores`: all (administrator, auditor) or one's own (expert)
- `GET  /api/programs/{program}/tiering`: the proposal (scores, tiers, amounts, the rule)
- `POST /api/programs/{program}/tiering/confirm` `{"applications": [...]}` (optional): the administrator confirms
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.review.api.access import Action
from services.review.api.actions import REFUSALS, JsonBody, Key, _body
from services.review.api.common import checked_application_no, request_id
from services.review.decisions.service import Attempt
from services.review.scoring.service import ConfirmTieringInput, DeclineInput, PanelInput, ScoreInput, ScoringService
from subsidy.identity.http import Authenticated
from subsidy.web import Started


def service(resources: Any) -> ScoringService:
    settings = resources.settings
    return ScoringService(resources.pool, resources.temporal, busy_window=getattr(settings, "decision_busy_window_seconds", 15.0))


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["expert review"], responses=REFUSALS)

    def attempt(principal: Any, action: Action, key: str, body: dict[str, Any], request: Request, **where: Any) -> Attempt:
        return Attempt(principal=principal, action=action, idempotency_key=key, input=body, request_id=request_id(request), **where)

    @api.post("/applications/{application_no}/experts", openapi_extra=_body(PanelInput),
              summary="SZ: assign a panel of experts (at least [scoring] min_experts; conflicts of interest refused)")
    async def assign_panel(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                           resources: Started) -> dict[str, Any]:
        return await service(resources).assign_panel(
            attempt(principal, Action.ASSIGN_EXPERT, key, body, request, application_no=checked_application_no(application_no)))

    @api.post("/applications/{application_no}/expert-assignment/decline", openapi_extra=_body(DeclineInput),
              summary="SZ: the assigned expert declines, declaring a conflict (the task returns to the administrator)")
    async def decline(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                      resources: Started) -> dict[str, Any]:
        return await service(resources).decline(
            attempt(principal, Action.DECLINE_ASSIGNMENT, key, body, request, application_no=checked_application_no(application_no)))

    @api.post("/applications/{application_no}/scores", openapi_extra=_body(ScoreInput),
              summary="SZ: the assigned expert's scores (实用性、创新性、可复制推广性), each with a justification; once")
    async def submit_score(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                           resources: Started) -> dict[str, Any]:
        return await service(resources).submit_score(
            attempt(principal, Action.SUBMIT_SCORE, key, body, request, application_no=checked_application_no(application_no)))

    @api.post("/applications/{application_no}/scores/aggregate",
              summary="SZ: the administrator asks the platform again to record a complete panel's result in the lifecycle")
    async def record_panel_result(application_no: str, key: Key, request: Request, principal: Authenticated,
                                  resources: Started) -> dict[str, Any]:
        return await service(resources).record_panel_result(
            attempt(principal, Action.RECORD_PANEL_RESULT, key, {}, request, application_no=checked_application_no(application_no)))

    @api.get("/applications/{application_no}/scores",
             summary="SZ: the experts' scores (administrator, auditor); an expert sees only their own")
    async def scores(application_no: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        return await service(resources).scores(principal, checked_application_no(application_no))

    @api.get("/programs/{program}/tiering", summary="SZ: the tiering proposal: scores, tiers, amounts and the rule")
    async def proposal(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        return await service(resources).proposal(principal, program)

    @api.post("/programs/{program}/tiering/confirm", openapi_extra=_body(ConfirmTieringInput),
              summary="SZ: the administrator confirms the batch's tiers and amounts; each lifecycle moves on")
    async def confirm(program: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                      resources: Started) -> dict[str, Any]:
        return await service(resources).confirm_tiering(attempt(principal, Action.CONFIRM_TIERING, key, body, request, program=program))

    return api
