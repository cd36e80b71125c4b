"""The officials' actions: one endpoint per human step, each with an `Idempotency-Key` header.

Every route hands the decision service (services/review/decisions/service.py) the verified
principal, the JSON body (its ID and mobile numbers masked by `Attempt`; validated there, so a
refused input is audited and answered in Chinese) and the key. Answers: 200 with the outcome; 400 without a key; 403 / 404 / 409 / 422
with `{"code", "message", "detail"}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from services.review.api.access import Action
from services.review.api.common import checked_application_no, decisions, idempotency_key, request_id
from services.review.decisions import actions as inputs
from services.review.decisions.service import Attempt
from subsidy.identity.http import Authenticated
from subsidy.web import Started

Key = Annotated[str, Depends(idempotency_key)]
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
REFUSALS = {
    400: {"description": "no Idempotency-Key"}, 401: {"description": "no or invalid token"},
    403: {"description": "the caller's role does not take this action"},
    404: {"description": "unknown, or outside the caller's scope"},
    409: {"description": "not in a step that takes this action, or another official's decision came first"},
    422: {"description": "late, invalid or incomplete; or idempotency_key_reused: the key was sent before with another request"},
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body's schema in the OpenAPI (the route validates it itself)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["decisions"], responses=REFUSALS)

    def attempt(principal: Any, action: Action, key: str, body: dict[str, Any], request: Request, **where: Any) -> Attempt:
        return Attempt(principal=principal, action=action, idempotency_key=key, input=body, request_id=request_id(request), **where)

    @api.post("/applications/{application_no}/decisions", openapi_extra=_body(inputs.ReviewDecisionInput),
              summary="The review step's decision: approve / return / reject (SZ also request_paper)")
    async def decide(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                     resources: Started) -> dict[str, Any]:
        return await decisions(resources).decide_review(
            attempt(principal, Action.DECIDE, key, body, request, application_no=checked_application_no(application_no)))

    steps: list[tuple[str, Action, type[BaseModel], str]] = [
        ("paper", Action.RECORD_PAPER_RECEIPT, inputs.PaperInput, "Paper received at the clerk's own window"),
        ("phone-confirmation", Action.CONFIRM_NOTICE_BY_PHONE, inputs.PhoneConfirmationInput,
         "The enterprise reached by phone (no SMS receipt): the paper clock starts"),
    ]
    for path, action, model, summary in steps:
        def route(action: Action = action, model: type[BaseModel] = model) -> Any:
            async def take(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                           resources: Started) -> dict[str, Any]:
                return await decisions(resources).take_step(
                    attempt(principal, action, key, body, request, application_no=checked_application_no(application_no)), model)
            return take

        api.add_api_route(f"/applications/{{application_no}}/{path}", route(), methods=["POST"], summary=summary,
                          openapi_extra=_body(model), name=action.value)

    @api.post("/tasks/{task_id}/assignee", openapi_extra=_body(inputs.AssigneeInput),
              summary="Give an open task to one official (program administrator)")
    async def reassign(task_id: int, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                       resources: Started) -> dict[str, Any]:
        return await decisions(resources).reassign_task(
            attempt(principal, Action.REASSIGN_TASK, key, body, request, target=("task_id", task_id)))

    @api.post("/programs/{program}/publication", openapi_extra=_body(inputs.PublicationInput),
              summary="Publish the program batch's list for public notice (公示)")
    async def publish(program: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                      resources: Started) -> dict[str, Any]:
        return await decisions(resources).publish(attempt(principal, Action.PUBLISH, key, body, request, program=program))

    return api
