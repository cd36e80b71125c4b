"""Longgang awards as the platform computes them (guide 二(一), 二(二), 二(三)), and the administrator's
confirmation (README, "Awards and duplicate claims").

- When an application reaches `award_calculation` (the state change review's task read model
  receives), `compute_on_arrival` computes its `AwardBreakdown` from the version's stored facts
  (review.submissions) and the batch's `[award]` (subsidy.programs), and keeps it
  (review.award_computations, status `computed`). The administrator's `award` task opens at the same
  moment. Nothing is typed in.
- `GET /api/applications/{no}/award` shows the breakdown (each contract included or excluded, why,
  with its clause) to the administrator and the auditor.
- `POST /api/applications/{no}/award/confirm` (administrator, Idempotency-Key): `{}` confirms the
  computed amount; `{"adjusted_award_fen": N, "reason": "..."}` adjusts it, never above the computed
  amount (eligible total x rate, rounded) nor above what remains of the enterprise's yearly cap.
- The yearly cap (二(二), CNY 2M per USCC per year across all its applications and batches) is a
  ledger row per (USCC, year) in PostgreSQL: the confirmation locks it (`SELECT ... FOR UPDATE`),
  recomputes the award against what the enterprise's other applications hold, asks the lifecycle
  (`record_award`, the `lg_award` step, actor program_admin), and writes the reservation, the
  decision, the task's closing and the audit row in that same transaction. Two confirmations of one
  enterprise at the same moment run one after the other, whichever comes first.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.review import repository
from services.review.api.access import Action, role_for
from services.review.awards.longgang import AwardBreakdown, longgang_award_from_facts
from services.review.awards.money import remaining_cap, yuan
from services.review.decisions.actions import UPDATES
from services.review.decisions.refusals import refusal
from services.review.decisions.service import Attempt, Context, DecisionService, Refused, shanghai_iso, parse_input
from subsidy.contracts.lifecycle import Actor, DecisionAccepted, RecordAward
from subsidy.contracts.platform_events import ApplicationStateChanged
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.programs import programs
from subsidy.programs.batch import LonggangAward

log = structlog.get_logger(__name__)

AWARD_CALCULATION = "award_calculation"


class ConfirmAwardInput(BaseModel):
    """`{}`: confirm the computed amount. Or adjust it, with a reason (audited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adjusted_award_fen: int | None = Field(default=None, ge=0)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _reason_with_adjustment(self) -> ConfirmAwardInput:
        if self.adjusted_award_fen is not None and not (self.reason or "").strip():
            raise ValueError("reason: an adjusted award needs a reason")
        return self


def award_config(program: str) -> LonggangAward | None:
    batch = programs().get(program)
    return batch.award if batch is not None else None


def _min_level(program: str) -> int:
    batch = programs().get(program)
    return getattr(batch.pre_checks, "min_assessment_level", 3) if batch is not None and batch.pre_checks else 3


async def compute(conn: asyncpg.Connection, program: str, application_no: str, version: int | None = None,
                  *, already_awarded_fen: int | None = None) -> AwardBreakdown | None:
    """Compute and keep the award of a version (the latest stored when None); None when the program
    has no `[award]` or the facts have not reached review."""
    config = award_config(program)
    if config is None:
        return None
    if version is None:
        version = await repository.latest_version(conn, application_no)
    row = await repository.submission(conn, application_no, version) if version is not None else None
    if row is None:
        log.warning("award not computed: the version's facts have not reached review", version=version)
        return None
    uscc = row["applicant_uscc"]
    if already_awarded_fen is None:
        already_awarded_fen = await repository.reserved_for_others(conn, uscc, config.cap_year, application_no)
    breakdown = longgang_award_from_facts(
        json.loads(row["facts"]), config=config, already_awarded_fen=already_awarded_fen,
        min_assessment_level=_min_level(program), program=program, application_no=application_no,
    )
    await repository.store_award_computation(
        conn, application_no=application_no, version=version, program=program, applicant_uscc=uscc,
        cap_year=config.cap_year, breakdown=breakdown.model_dump(mode="json"), eligible_total_fen=breakdown.eligible_total_fen,
        computed_fen=breakdown.computed_fen, award_fen=breakdown.award_fen,
    )
    return breakdown


async def compute_on_arrival(conn: asyncpg.Connection, event: ApplicationStateChanged) -> None:
    """The state change's effect on the awards (in the task read model's transaction)."""
    if event.to_state != AWARD_CALCULATION or award_config(event.program) is None:
        return
    try:
        async with conn.transaction():  # a savepoint: the read model never fails because of the award
            await compute(conn, event.program, event.application_no, event.version)
    except Exception as exc:  # noqa: BLE001 - computed again on GET or at confirmation
        log.error("award not computed on arrival; it will be on first read", error=type(exc).__name__)


def award_view(row: asyncpg.Record) -> dict[str, Any]:
    breakdown = json.loads(row["breakdown"])
    return {
        "application_no": row["application_no"],
        "version": row["version"],
        "program": row["program"],
        "status": row["status"],
        "computed_fen": row["computed_fen"],
        "award_fen": row["award_fen"],
        "award": yuan(row["award_fen"]),
        "confirmed_fen": row["confirmed_fen"],
        "adjustment_reason": row["adjustment_reason"],
        "decided_by": row["decided_by"],
        "decided_at": shanghai_iso(row["decided_at"]),
        "computed_at": shanghai_iso(row["computed_at"]),
        "breakdown": breakdown,
    }


class AwardService:
    """The confirmation: a decision of the administrator, through the decision service's checks,
    refusals, idempotency, recording and audit."""

    def __init__(self, decisions: DecisionService):
        self.decisions = decisions
        self.pool = decisions.pool

    async def confirm(self, attempt: Attempt) -> dict[str, Any]:
        svc = self.decisions
        if (stored := await svc.stored_answer(attempt)) is not None:
            return stored
        assert attempt.application_no is not None
        ctx = Context()
        async with svc.refusals_answered(attempt, ctx):
            await svc.locate(attempt, ctx)
            assert ctx.program is not None
            ctx.role = role_for(attempt.principal, Action.RECORD_AWARD)
            if ctx.role is None:
                raise Refused(refusal("forbidden", "forbidden: confirming an award needs program_admin"))
            data: ConfirmAwardInput = parse_input(ConfirmAwardInput, attempt.input)
            config = award_config(ctx.program)
            if config is None:
                raise Refused(refusal("wrong_state", "wrong_state: the program computes no Longgang award"))
            if ctx.status != AWARD_CALCULATION:
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}"))
            async with self.pool.acquire() as conn, conn.transaction():
                answer = await self._confirm_locked(conn, attempt, ctx, data, config)
            return answer

    async def _confirm_locked(self, conn: asyncpg.Connection, attempt: Attempt, ctx: Context, data: ConfirmAwardInput,
                              config: LonggangAward) -> dict[str, Any]:
        assert ctx.program is not None and attempt.application_no is not None
        app = attempt.application_no
        current = await repository.award_computation(conn, app)
        if current is None and await compute(conn, ctx.program, app) is None:
            raise Refused(refusal("wrong_state", "wrong_state: the award cannot be computed yet (facts missing)",
                                  "该申报的申报信息尚未送达，暂不能核定资助金额"))
        current = await repository.award_computation(conn, app)
        assert current is not None
        uscc = current["applicant_uscc"]
        # The ledger: this enterprise's year locked until this transaction ends. Whatever was read
        # before may have changed while waiting: the same key's answer, or the award confirmed.
        already = await repository.lock_enterprise_year(conn, uscc, config.cap_year, config.enterprise_yearly_cap_fen, app)
        if (stored := await self.decisions.stored_answer(attempt, conn)) is not None:
            return stored
        current = await repository.award_computation(conn, app)
        assert current is not None
        if current["status"] != "computed":
            raise Refused(refusal("wrong_state", f"wrong_state: the award is {current['status']} already",
                                  "该申报的资助金额已确认"))
        breakdown = await compute(conn, ctx.program, app, current["version"], already_awarded_fen=already)
        assert breakdown is not None
        remaining = remaining_cap(config.enterprise_yearly_cap_fen, already)
        bound = min(breakdown.computed_fen, remaining)
        if data.adjusted_award_fen is None:
            amount, status, reason = breakdown.award_fen, "confirmed", None
        else:
            if data.adjusted_award_fen > bound:
                raise Refused(refusal(
                    "over_cap", f"over_cap: adjusted {data.adjusted_award_fen} > {bound} (computed {breakdown.computed_fen}, remaining cap {remaining})",
                    f"调整后的金额不能超过核定金额 {yuan(breakdown.computed_fen)} 及企业年度剩余额度 {yuan(remaining)}"))
            amount, status, reason = data.adjusted_award_fen, "adjusted", (data.reason or "").strip()
        update = UPDATES[Action.RECORD_AWARD]
        cmd = RecordAward(actor=Actor(id=attempt.principal.actor_id, role=update.role),
                          eligible_amount_fen=breakdown.eligible_total_fen, award_fen=amount)
        accepted = await self.decisions.execute(application_workflow_id(ctx.program, app), update.update, cmd,
                                                 attempt.update_id, DecisionAccepted)
        await repository.reserve_award(conn, application_no=app, uscc=uscc, cap_year=config.cap_year, program=ctx.program,
                                       amount_fen=amount, idempotency_key=attempt.idempotency_key)
        await repository.decide_award(conn, app, current["version"], status=status, confirmed_fen=amount, reason=reason,
                                      decided_by=attempt.principal.actor_id)
        answer = {"status": accepted.status.value, "deadline": shanghai_iso(accepted.deadline), "award_status": status,
                  "award_fen": amount, "computed_fen": breakdown.computed_fen, "eligible_total_fen": breakdown.eligible_total_fen,
                  "already_awarded_fen": already, "capped": amount < breakdown.computed_fen and status == "confirmed"}
        return await self.decisions.record(attempt, ctx, outcome_status=accepted.status.value, answer=answer, step=update, conn=conn)
