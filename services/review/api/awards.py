"""Longgang awards and duplicate-claim flags through the API (awards-api, issue 11).

- `GET  /api/applications/{no}/award`: the computed award and its breakdown (administrator, auditor);
- `POST /api/applications/{no}/award/confirm` (Idempotency-Key): `{}` confirms the computed amount,
  `{"adjusted_award_fen": N, "reason": "..."}` adjusts it (administrator; audited). The lifecycle
  moves on with the confirmed amount. Nobody types the award in;
- `GET  /api/programs/{program}/awards`: the batch's awards and, over its `[award] budget_fen`, the
  pro-rata amounts as they would fall; `budget`: the unpublished list against the budget, as
  `POST .../awards/budget` would apply it (services/review/awards/budget.py);
- `POST /api/programs/{program}/awards/budget` (Idempotency-Key, optional `{"applications": [...]}`):
  the administrator applies the budget (按比例核减) to the unpublished list: each lifecycle's award is
  revised before publication (audited). Publication refuses an LG list over its budget until then;
- `POST /api/applications/{no}/duplicate-flags/{flag_id}/acknowledge` (Idempotency-Key, optional
  `{"note": "..."}`): a reviewer of the program has seen the flag (audited). Never a rejection.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.review import repository
from services.review.api.access import Action, can, in_scope, role_for
from services.review.api.applications import NOT_FOUND_ZH, visible
from services.review.api.common import checked_application_no, decisions, idempotency_key, local, request_id
from services.review.awards import budget as budgets
from services.review.awards.longgang import prorate_batch
from services.review.awards.service import AWARD_CALCULATION, AwardService, ConfirmAwardInput, award_config, award_view, compute
from services.review.decisions.refusals import refusal
from services.review.decisions.service import Attempt, Context, Refused, parse_input
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started

Key = Annotated[str, Depends(idempotency_key)]
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]


class AcknowledgeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: str | None = Field(default=None, max_length=500)


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["awards"])

    @api.get("/applications/{application_no}/award", summary="LG: the computed award, contract by contract, with clauses")
    async def award(application_no: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        checked_application_no(application_no)
        async with resources.pool.acquire() as conn:
            row = await visible(conn, principal, application_no)
            if row is None:
                raise ApiError(404, "unknown_application", NOT_FOUND_ZH, detail={"application_no": application_no})
            if not can(principal, Action.VIEW_AWARD, row["program"]):
                raise ApiError(403, "forbidden", "只有项目管理员和审计人员可以查看资助金额核定明细")
            if award_config(row["program"]) is None:
                raise ApiError(404, "no_award_config", "该项目不按核准制计算资助金额")
            computed = await repository.award_computation(conn, application_no)
            if computed is None and row["status"] == AWARD_CALCULATION:
                async with conn.transaction():  # the state change came before the facts: compute now
                    await compute(conn, row["program"], application_no)
                computed = await repository.award_computation(conn, application_no)
            revision = await repository.recorded_revision(conn, application_no) if computed is not None else None
        if computed is None:
            raise ApiError(404, "award_not_computed", "该申报尚未进入资助金额核定环节", detail={"status": row["status"]})
        view = award_view(computed)
        # The batch budget (按比例核减) lowered the confirmed amount before publication (awards/budget.py).
        view["budget_revision"] = None if revision is None else {
            "revised_fen": revision["revised_fen"], "confirmed_fen": revision["confirmed_fen"],
            "applied_by": revision["applied_by"], "applied_at": local(revision["applied_at"])}
        return view

    @api.post("/applications/{application_no}/award/confirm", openapi_extra=_body(ConfirmAwardInput),
              summary="LG: confirm the computed award, or adjust it with a reason (program administrator)")
    async def confirm(application_no: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                      resources: Started) -> dict[str, Any]:
        attempt = Attempt(principal=principal, action=Action.RECORD_AWARD, idempotency_key=key, input=body,
                          application_no=checked_application_no(application_no), request_id=request_id(request))
        return await AwardService(decisions(resources)).confirm(attempt)

    @api.post("/applications/{application_no}/duplicate-flags/{flag_id}/acknowledge", openapi_extra=_body(AcknowledgeInput),
              summary="A reviewer has seen a duplicate / multi-source claim flag (audited; never a rejection)")
    async def acknowledge(application_no: str, flag_id: int, body: JsonBody, key: Key, request: Request,
                          principal: Authenticated, resources: Started) -> dict[str, Any]:
        attempt = Attempt(principal=principal, action=Action.ACKNOWLEDGE_DUPLICATE, idempotency_key=key, input=body,
                          application_no=checked_application_no(application_no), request_id=request_id(request),
                          target=("flag_id", flag_id))
        svc = decisions(resources)
        if (stored := await svc.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        async with svc.refusals_answered(attempt, ctx):
            await svc.locate(attempt, ctx)
            ctx.role = role_for(principal, Action.ACKNOWLEDGE_DUPLICATE)
            if ctx.role is None:
                raise Refused(refusal("forbidden", "forbidden: acknowledging a duplicate flag needs a reviewer role"))
            data: AcknowledgeInput = parse_input(AcknowledgeInput, attempt.input)
            async with resources.pool.acquire() as conn, conn.transaction():
                done = await repository.acknowledge_flag(conn, application_no, flag_id, principal.actor_id, data.note)
                if done is None:
                    raise Refused(refusal("flag_not_found", "not_found: no such active flag", "未找到该重复申报提示"))
                if done == "already":
                    raise Refused(refusal("wrong_state", "wrong_state: the flag was acknowledged already", "该提示已确认"))
                answer = {"application_no": application_no, "flag_id": flag_id, "acknowledged_by": principal.actor_id}
                return await svc.record(attempt, ctx, outcome_status=None, answer=answer, conn=conn)

    @api.get("/programs/{program}/awards", summary="A batch's awards: computed, confirmed, and against its budget (preview)")
    async def batch(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        if not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        if not can(principal, Action.VIEW_AWARD, program):
            raise ApiError(403, "forbidden", "只有项目管理员和审计人员可以查看资助金额核定明细")
        config = award_config(program)
        if config is None:
            raise ApiError(404, "no_award_config", "该项目不按核准制计算资助金额")
        async with resources.pool.acquire() as conn:
            rows = await repository.batch_awards(conn, program)
            revisions = await repository.recorded_revisions(conn, program)
            try:
                position = await budgets.position(conn, resources.temporal, program, config)
            except Exception as exc:  # noqa: BLE001 - the list cannot be read now: the awards are still shown
                budgets.log.warning("budget position unavailable", program=program, error=type(exc).__name__)
                position = None
        confirmed = {r["application_no"]: r["confirmed_fen"] for r in rows if r["confirmed_fen"] is not None}
        total = sum(confirmed.values())
        over = config.budget_fen is not None and total > config.budget_fen
        return {
            "program": program,
            "budget_fen": config.budget_fen,
            "confirmed_total_fen": total,
            "over_budget": over,
            # 按比例核减 over every confirmed award of the batch as it would fall (money.prorate_to_budget);
            # `budget` is the unpublished list, as POST .../awards/budget applies it.
            "prorated_preview": prorate_batch(confirmed, config) if over else None,
            "budget": position.view() if position is not None else None,
            "applications": [
                {"application_no": r["application_no"], "version": r["version"], "status": r["status"],
                 "computed_fen": r["computed_fen"], "award_fen": r["award_fen"], "confirmed_fen": r["confirmed_fen"],
                 "revised_fen": revisions[r["application_no"]]["revised_fen"] if r["application_no"] in revisions else None}
                for r in rows
            ],
        }

    @api.post("/programs/{program}/awards/budget", openapi_extra=_body(budgets.ApplyBudgetInput),
              summary="LG: apply the batch budget to the unpublished list (按比例核减; program administrator)")
    async def apply_budget(program: str, body: JsonBody, key: Key, request: Request, principal: Authenticated,
                           resources: Started) -> dict[str, Any]:
        attempt = Attempt(principal=principal, action=Action.APPLY_BUDGET, idempotency_key=key, input=body, program=program,
                          request_id=request_id(request))
        return await budgets.BudgetService(decisions(resources)).apply(attempt)

    return api
