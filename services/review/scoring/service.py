"""Shenzhen expert review, scoring and tiering (notice 02(一), 02(二), 02(四)), as the decision
service's checks and records apply them (idempotency key, scope and role, audit of every refusal).

- Panel (`assign_panel`): the administrator assigns experts to a product at `expert_scoring`; after
  the request its active panel has at least `[scoring] min_experts`. An expert unknown to the
  registry, or with a conflict of interest (rules/expert_conflicts.py: own organisation = the
  applicant or a consortium member, or a declared affiliation), refuses the whole request (422,
  naming the conflict; the conflict is recorded and the attempt audited). Each new expert gets an
  `expert_scoring` task of their own; the administrator's task closes.
- Decline (`decline`): an assigned expert who has not scored declares a conflict: the assignment
  is kept as declined (the expert no longer sees the application), the conflict recorded, their task
  closed and the administrator's task opened again (to assign another expert).
- Score (`submit_score`): an assigned expert scores every configured criterion, whole points on
  0..scale_max, each with a justification, once. Experts never see others' scores.
- Aggregation (`aggregate_if_complete`): when every active expert of a panel of at least
  `min_experts` has scored, `product_score` (awards/shenzhen.py) gives the product's score and tier;
  the lifecycle receives, from the platform (actor `system:review`, role review_service), each
  criterion's mean over the experts the score counts (rounded half up to whole points), the number
  of experts excluded for a conflict, and the product's score (its timeline names that one, not the
  unweighted means). Update id `sz-expert-scoring:<no>`: asked twice, applied once
  (an official's Idempotency-Key cannot be it: their update ids are `api:<key>`); recorded in
  review.decisions as `platform/sz-expert-scoring:<no>`.
- Tiering (`proposal`, `confirm_tiering`): every product of the program at `tiering`, with the
  amounts of `shenzhen_amounts` (tier maximum, the applicant's yearly cap across its products and
  its amounts accepted earlier that cap year, the year's budget less what earlier confirmations of the
  program recorded). The administrator confirms: under
  an advisory lock the amounts are recomputed and kept (review.tier_amounts), then each is recorded
  in its lifecycle with the administrator as actor (update id `sz-tiering:<no>`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.review import repository
from services.review.api.access import Action, can, in_scope, role_for
from services.review.audit.chain import AuditEntry
from services.review.awards.money import round_fraction
from services.review.awards.shenzhen import ProductScore, ScoredProduct, ScoringError, format_score, product_score, shenzhen_amounts
from services.review.decisions.actions import UPDATES
from services.review.decisions.refusals import Refusal, refusal
from services.review.decisions.service import Attempt, Context, DecisionService, Refused, api_error, parse_input, program_role
from services.review.rules.expert_conflicts import expert_conflicts, units_of
from services.review.scoring import registry
from subsidy.contracts.lifecycle import (
    UPDATE_RECORD_EXPERT_SCORING,
    Actor,
    DecisionAccepted,
    RecordExpertScoring,
    RecordTiering,
    Role,
)
from subsidy.contracts.workflow_ids import application_workflow_id, expert_scoring_update_id, tiering_update_id
from subsidy.identity.claims import Principal, StaffRole
from subsidy.programs import programs
from subsidy.programs.batch import Rounding, ShenzhenScoring
from subsidy.web import ApiError

log = structlog.get_logger(__name__)

REVIEW_SERVICE = Actor(id="system:review", role=Role.REVIEW_SERVICE)
SCORING_STATUS = "expert_scoring"
CONTRACT_CRITERIA = ("practicality", "innovation", "replicability")  # RecordExpertScoring's fields


# --- inputs -------------------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PanelInput(_Input):
    experts: list[str] = Field(min_length=1, max_length=30)  # subjects at the issuer = expert ids of the registry

    @field_validator("experts")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        cleaned = [e.strip() for e in value]
        if any(not e or len(e) > 128 for e in cleaned) or len(set(cleaned)) != len(cleaned):
            raise ValueError("experts must be distinct, non-empty ids")
        return cleaned


class DeclineInput(_Input):
    reason: str = Field(min_length=1, max_length=500)  # the conflict the expert declares

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return value.strip()


class CriterionScore(_Input):
    points: int
    justification: str = Field(min_length=1, max_length=2000)

    @field_validator("justification")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a justification is required")
        return value.strip()


class ScoreInput(_Input):
    criteria: dict[str, CriterionScore]  # criterion key ([scoring] criteria) -> points and justification


class ConfirmTieringInput(_Input):
    # The products the administrator saw in the proposal: refused (409) if the batch changed since.
    applications: list[str] | None = Field(default=None, max_length=1000)


# --- the service ----------------------------------------------------------------------------------------


def scoring_of(program: str | None) -> ShenzhenScoring:
    config = programs().get(program or "")
    if config is None or config.scoring is None:
        raise Refused(refusal("wrong_state", f"wrong_state: {program} has no expert scoring", "该项目不进行专家评审"))
    return config.scoring


def platform_decision_key(update_id: str) -> str:
    """The review.decisions key of an action the platform takes itself: `platform/<update id>`. No
    Idempotency-Key has a `/` (services/review/api/common.py), so no official's request recorded
    earlier under that key can take the row, and with it the audit row, of the platform's action."""
    return f"platform/{update_id}"


def _refused(status: int, code: str, message: str, reason: str | None = None) -> Refused:
    return Refused(Refusal(status=status, code=code, message=message, reason=reason or code))


class ScoringService(DecisionService):
    # --- the panel -----------------------------------------------------------------------------------

    async def assign_panel(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/applications/{no}/experts` `{"experts": [...]}` (program administrator)."""
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        app = attempt.application_no
        assert app is not None
        async with self.refusals_answered(attempt, ctx):
            await self.locate(attempt, ctx)
            ctx.role = role_for(attempt.principal, Action.ASSIGN_EXPERT)
            if ctx.role is None:
                raise Refused(refusal("forbidden", "forbidden: assigning experts needs program_admin"))
            scoring = scoring_of(ctx.program)
            data: PanelInput = parse_input(PanelInput, attempt.input)
            if ctx.status != SCORING_STATUS:
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}", "该申报当前不在专家评审环节"))
            async with self.pool.acquire() as conn:
                submission = await repository.latest_submission(conn, app)
                panel = await repository.panel_of(conn, app)
                experts = {e: await registry.expert(conn, e) for e in data.experts}
            active = {p["expert_subject"] for p in panel if p["declined_at"] is None}
            declined = {p["expert_subject"] for p in panel if p["declined_at"] is not None}
            unknown = [e for e, found in experts.items() if found is None]
            if unknown:
                raise _refused(422, "expert_not_registered", f"专家 {'、'.join(unknown)} 不在专家库中，无法核查利益冲突，不能分配",
                               f"expert_not_registered: {', '.join(unknown)}")
            if again := sorted(set(data.experts) & declined):
                raise _refused(409, "expert_declined", f"专家 {'、'.join(again)} 已声明回避本申报，不能再分配",
                               f"expert_declined: {', '.join(again)}")
            if submission is None:  # nothing to check the conflicts against (yet)
                raise _refused(409, "facts_missing", "申报材料尚未到达评审服务，暂不能核查利益冲突，请稍后再试",
                               "wrong_state: no submission recorded")
            units = units_of(json.loads(submission["facts"]))
            conflicts = {e: expert_conflicts(found, units) for e, found in experts.items() if found is not None}
            conflicts = {e: reasons for e, reasons in conflicts.items() if reasons}
            if conflicts:
                async with self.pool.acquire() as conn, conn.transaction():
                    for expert_id, reasons in conflicts.items():
                        await repository.record_conflict(conn, ctx.program or "", app, expert_id, "assignment", list(reasons),
                                                         attempt.principal.actor_id)
                named = "；".join(r for reasons in conflicts.values() for r in reasons)
                raise _refused(422, "conflict_of_interest", f"存在利益冲突，不能分配：{named}",
                               f"conflict_of_interest: {', '.join(sorted(conflicts))}")
            new = [e for e in data.experts if e not in active]
            size = len(active) + len(new)
            if size < scoring.min_experts:
                raise _refused(422, "too_few_experts", f"评审专家组至少 {scoring.min_experts} 人，本次分配后为 {size} 人",
                               f"too_few_experts: {size} < {scoring.min_experts}")
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            for expert_id in new:
                await repository.assign_expert(conn, ctx.program or "", app, expert_id, attempt.principal.actor_id)
                await repository.open_expert_task(conn, ctx.program or "", app, expert_id, now, f"assign:{app}:{expert_id}")
            await repository.close_expert_scoring_task(conn, app, role=StaffRole.PROGRAM_ADMIN.value, assignee=None,
                                                       closed_by=attempt.principal.actor_id)
            answer = {"application_no": app, "assigned": new, "panel": sorted(active | set(new)), "min_experts": scoring.min_experts}
            return await self.record(attempt, ctx, outcome_status=None, answer=answer, conn=conn)

    async def decline(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/applications/{no}/expert-assignment/decline` `{"reason": ...}` (the assigned expert)."""
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        app = attempt.application_no
        assert app is not None
        subject = attempt.principal.subject
        async with self.refusals_answered(attempt, ctx):
            await self._assigned(attempt, ctx, Action.DECLINE_ASSIGNMENT)
            data: DeclineInput = parse_input(DeclineInput, attempt.input)
            async with self.pool.acquire() as conn:
                scored = await repository.expert_scores_of(conn, app, subject)
            if scored:
                raise _refused(409, "already_scored", "您已提交评分，不能再回避", "wrong_state: already scored")
            if ctx.status != SCORING_STATUS:
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}", "该申报当前不在专家评审环节"))
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repository.decline_assignment(conn, app, subject, data.reason):
                raise api_error(Refusal(409, "already_scored", "您已提交评分，不能再回避", "wrong_state: scored meanwhile"))
            await repository.record_conflict(conn, ctx.program or "", app, subject, "declined", [data.reason], attempt.principal.actor_id)
            await repository.close_expert_scoring_task(conn, app, role=StaffRole.EXPERT.value, assignee=subject,
                                                       closed_by=attempt.principal.actor_id)
            await repository.open_panel_task(conn, ctx.program or "", app, self.clock(), f"decline:{app}:{subject}")
            answer = {"application_no": app, "expert": subject, "declined": True}
            return await self.record(attempt, ctx, outcome_status=None, answer=answer, conn=conn)

    async def _assigned(self, attempt: Attempt, ctx: Context, action: Action) -> None:
        """The application in scope, the role for `action`, and an active assignment of the caller
        (else 404: an application not assigned to an expert does not exist for them)."""
        await self.locate(attempt, ctx)
        ctx.role = role_for(attempt.principal, action)
        if ctx.role is None:
            raise Refused(refusal("forbidden", f"forbidden: {action.value} needs the expert role"))
        async with self.pool.acquire() as conn:
            assigned = await repository.active_assignment(conn, attempt.application_no or "", attempt.principal.subject)
        if not assigned:
            raise Refused(refusal("not_found", "not_found: not assigned to the caller"))

    # --- scores --------------------------------------------------------------------------------------

    async def submit_score(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/applications/{no}/scores` (the assigned expert, once)."""
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        app = attempt.application_no
        assert app is not None
        subject = attempt.principal.subject
        async with self.refusals_answered(attempt, ctx):
            await self._assigned(attempt, ctx, Action.SUBMIT_SCORE)
            scoring = scoring_of(ctx.program)
            data: ScoreInput = parse_input(ScoreInput, attempt.input)
            points = _checked_points(data, scoring)
            if ctx.status != SCORING_STATUS:
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}", "该申报当前不在专家评审环节"))
            async with self.pool.acquire() as conn:
                if await repository.expert_scores_of(conn, app, subject):
                    raise _refused(409, "already_scored", "您已提交过该申报的评分，不能再次提交", "wrong_state: already scored")
        weighted = sum(c.weight * points[c.key] for c in scoring.criteria)
        stored_scores = {k: {"points": v.points, "justification": v.justification} for k, v in data.criteria.items()}
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repository.insert_expert_score(conn, ctx.program or "", app, subject, stored_scores, weighted,
                                                        attempt.idempotency_key):
                raise api_error(Refusal(409, "already_scored", "您已提交过该申报的评分，不能再次提交", "wrong_state: scored meanwhile"))
            await repository.close_expert_scoring_task(conn, app, role=StaffRole.EXPERT.value, assignee=subject,
                                                       closed_by=attempt.principal.actor_id)
            text = format_score(round_fraction(weighted * 10**scoring.score_decimals, 100, Rounding.HALF_UP), scoring.score_decimals)
            answer = {"application_no": app, "expert": subject, "weighted_score": text, "submitted": True}
            answer = await self.record(attempt, ctx, outcome_status=None, answer=answer, conn=conn)
        try:
            await self.aggregate_if_complete(ctx.program or "", app)
        except Exception:  # the score is kept either way; the administrator can ask again (record_panel_result)
            log.exception("the panel's result could not be recorded")
        return answer

    async def aggregate_if_complete(self, program: str, app: str) -> ProductScore | None:
        """The panel complete: the product's score, and the lifecycle moved on by the platform. None
        while experts are missing, or when the lifecycle could not be asked (logged; the scores and
        the product's score stay, and the administrator asks again: `record_panel_result`)."""
        scoring = scoring_of(program)
        async with self.pool.acquire() as conn:
            panel = await repository.panel_of(conn, app)
            active = [p for p in panel if p["declined_at"] is None]
            if len(active) < scoring.min_experts or any(p["scored_at"] is None for p in active):
                return None
            rows = await repository.expert_scores_of(conn, app)
            submission = await repository.latest_submission(conn, app)
            excluded = await repository.excluded_experts(conn, app)
        scores = {r["expert_subject"]: {k: v["points"] for k, v in json.loads(r["scores"]).items()} for r in rows}
        try:
            result = product_score(app, scores, scoring)
        except ScoringError as exc:
            log.warning("expert scores cannot be aggregated", code=exc.code)
            return None
        criteria = counted_means(result, scoring)
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.store_product_score(
                conn, program=program, application_no=app, applicant_uscc=submission["applicant_uscc"] if submission else "",
                score_units=result.score_units, score_text=result.score_text, tier=result.tier, criteria=criteria,
                excluded=excluded, breakdown=result.model_dump(mode="json"))
        try:
            cmd = panel_result(result, criteria, excluded)
        except (KeyError, ValidationError):
            log.error("the scoring criteria do not fit the lifecycle's RecordExpertScoring", criteria=sorted(criteria))
            return None
        key = expert_scoring_update_id(app)
        try:
            accepted = await self.execute(application_workflow_id(program, app), UPDATE_RECORD_EXPERT_SCORING, cmd, key,
                                           DecisionAccepted)
        except (Refused, ApiError) as exc:
            log.warning("expert scoring not recorded in the lifecycle yet", error=getattr(exc, "refusal", exc))
            return None
        input_ = {"criteria": criteria, "score": result.score_text, "tier": result.tier, "excluded_experts": excluded,
                  "experts": sorted(scores)}
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.mark_product_score_recorded(conn, app)
            inserted = await repository.insert_decision(
                conn, idempotency_key=platform_decision_key(key), program=program, application_no=app, action="record_expert_scoring",
                actor_subject="review_service", actor_id=REVIEW_SERVICE.id, actor_role=Role.REVIEW_SERVICE.value,
                input=input_, outcome_status=accepted.status.value, answer={"status": accepted.status.value})
            if inserted:
                await repository.append_audit(conn, AuditEntry(
                    occurred_at=self.clock(), subject="review_service", role=Role.REVIEW_SERVICE.value,
                    action="record_expert_scoring", program=program, application_no=app, input=input_, outcome="accepted",
                    reason=None, request_id=None))
        log.info("expert scoring recorded", score=result.score_text, tier=result.tier)
        return result

    async def record_panel_result(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/applications/{no}/scores/aggregate` (program administrator): the panel is
        complete but its result did not reach the lifecycle (it could not be asked when the last
        expert scored): the platform records it now. Same update id: never applied twice."""
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        app = attempt.application_no
        assert app is not None
        async with self.refusals_answered(attempt, ctx):
            await self.locate(attempt, ctx)
            ctx.role = role_for(attempt.principal, Action.RECORD_PANEL_RESULT)
            if ctx.role is None:
                raise Refused(refusal("forbidden", "forbidden: record_panel_result needs program_admin"))
            scoring = scoring_of(ctx.program)
            if ctx.status != SCORING_STATUS:
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}", "该申报当前不在专家评审环节"))
            async with self.pool.acquire() as conn:
                active = [p for p in await repository.panel_of(conn, app) if p["declined_at"] is None]
            if len(active) < scoring.min_experts or any(p["scored_at"] is None for p in active):
                raise _refused(409, "panel_incomplete", f"专家组尚未全部评分（至少 {scoring.min_experts} 位专家）",
                               "wrong_state: the panel has not all scored")
            result = await self.aggregate_if_complete(ctx.program or "", app)
            if result is None:
                raise _refused(503, "unavailable", "系统暂时无法记录评审结果，请稍后再试", "unavailable: the lifecycle was not reached")
        answer = {"application_no": app, "score": result.score_text, "tier": result.tier}
        return await self.record(attempt, ctx, outcome_status=None, answer=answer)

    async def scores(self, principal: Principal, app: str) -> dict[str, Any]:
        """`GET /api/applications/{no}/scores`: administrators and auditors see every expert's scores
        and the product's; an assigned expert sees their own only, never another's."""
        from services.review.api.applications import NOT_FOUND_ZH, visible

        async with self.pool.acquire() as conn:
            row = await visible(conn, principal, app)
            if row is None:
                raise ApiError(404, "unknown_application", NOT_FOUND_ZH, detail={"application_no": app})
            if can(principal, Action.VIEW_SCORES, row["program"]):
                rows = await repository.expert_scores_of(conn, app)
                panel = await repository.panel_of(conn, app)
                product = await repository.product_score_of(conn, app)
                amount = await repository.tier_amount_of(conn, app)
                everything = True
            elif principal.has(StaffRole.EXPERT) and await repository.active_assignment(conn, app, principal.subject):
                rows = await repository.expert_scores_of(conn, app, principal.subject)
                panel, product, amount, everything = [], None, None, False
            else:
                raise ApiError(403, "forbidden", "您的角色无权查看专家评分")
        answer: dict[str, Any] = {
            "application_no": app,
            "scores": [{"expert": r["expert_subject"], "criteria": json.loads(r["scores"]), "submitted_at": _iso(r["submitted_at"])}
                       for r in rows],
        }
        if everything:
            answer["panel"] = [
                {"expert": p["expert_subject"], "assigned_by": p["assigned_by"], "assigned_at": _iso(p["assigned_at"]),
                 "declined": p["declined_at"] is not None, "decline_reason": p["decline_reason"], "scored": p["scored_at"] is not None}
                for p in panel
            ]
            answer["product_score"] = None if product is None else {
                "score": product["score_text"], "tier": product["tier"], "criteria": json.loads(product["criteria"]),
                "excluded_experts": product["excluded_experts"], "breakdown": json.loads(product["breakdown"]),
                "recorded": product["recorded_at"] is not None,
            }
            answer["amount"] = None if amount is None else {
                "tier": amount["tier"], "amount_fen": amount["amount_fen"], "recorded": amount["recorded_at"] is not None,
                "breakdown": json.loads(amount["breakdown"]),
            }
        return answer

    # --- tiers and amounts ----------------------------------------------------------------------------

    async def proposal(self, principal: Principal, program: str) -> dict[str, Any]:
        """`GET /api/programs/{program}/tiering` (administrators and auditors)."""
        if not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        if role_for(principal, Action.VIEW_SCORES) is None:
            raise ApiError(403, "forbidden", "您的角色无权查看档次方案")
        try:
            scoring = scoring_of(program)
        except Refused as refused:
            raise api_error(refused.refusal) from None
        async with self.pool.acquire() as conn:
            rows, amounts, already = await _compute(conn, program, scoring)
        return _proposal_answer(program, scoring, rows, amounts, already)

    async def confirm_tiering(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/programs/{program}/tiering/confirm` (program administrator)."""
        assert attempt.program is not None
        program = attempt.program
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context(program=program)
        async with self.refusals_answered(attempt, ctx):
            ctx.role = program_role(attempt.principal, program, Action.CONFIRM_TIERING, "confirming tiers needs program_admin")
            scoring = scoring_of(program)
            data: ConfirmTieringInput = parse_input(ConfirmTieringInput, attempt.input)
            async with self.pool.acquire() as conn, conn.transaction():
                await repository.lock_tier_amounts(conn)
                rows, amounts, already = await _compute(conn, program, scoring)
                if not rows:
                    raise _refused(409, "empty", "暂无待确定档次的产品", "empty: no product at tiering")
                if data.applications is not None and sorted(data.applications) != sorted(r["application_no"] for r in rows):
                    raise _refused(409, "proposal_changed", "待确定档次的产品已有变化，请刷新档次方案后再确认",
                                   "wrong_state: the proposal changed")
                for row, line in zip(rows, amounts.lines, strict=True):
                    await repository.store_tier_amount(
                        conn, program=program, application_no=line.application_no, applicant_uscc=line.applicant_uscc,
                        cap_year=scoring.cap_year, tier=line.tier, amount_fen=line.amount_fen,
                        breakdown={**line.model_dump(mode="json"), "score": row["score_text"]},
                        idempotency_key=attempt.idempotency_key, confirmed_by=attempt.principal.actor_id)
        actor = Actor(id=attempt.principal.actor_id, role=UPDATES[Action.CONFIRM_TIERING].role)
        confirmed, failed = [], []
        for line in amounts.lines:
            app = line.application_no
            cmd = RecordTiering(actor=actor, tier=line.tier, award_fen=line.amount_fen)
            try:
                accepted = await self.execute(application_workflow_id(program, app), UPDATES[Action.CONFIRM_TIERING].update, cmd,
                                               tiering_update_id(app), DecisionAccepted)
            except Refused as refused:
                per_app = Attempt(principal=attempt.principal, action=Action.CONFIRM_TIERING, idempotency_key=attempt.idempotency_key,
                                  input={"tier": line.tier, "award_fen": line.amount_fen}, application_no=app,
                                  request_id=attempt.request_id)
                await self.audit_refusal(per_app, ctx, refused.refusal)
                failed.append({"application_no": app, "code": refused.refusal.code, "message": refused.refusal.message})
                continue
            except ApiError as error:
                failed.append({"application_no": app, "code": error.code, "message": error.message})
                continue
            entry = {"application_no": app, "tier": line.tier, "award_fen": line.amount_fen, "status": accepted.status.value}
            async with self.pool.acquire() as conn, conn.transaction():
                await repository.mark_tier_amount_recorded(conn, app)
                per_app = Attempt(principal=attempt.principal, action=Action.CONFIRM_TIERING,
                                  idempotency_key=f"{attempt.idempotency_key}:{app}",
                                  input={"tier": line.tier, "award_fen": line.amount_fen, "batch_key": attempt.idempotency_key},
                                  application_no=app, request_id=attempt.request_id)
                await self.record(per_app, ctx, outcome_status=accepted.status.value, answer=entry,
                                   step=UPDATES[Action.CONFIRM_TIERING], conn=conn)
            confirmed.append(entry)
        answer = {"program": program, "confirmed": confirmed, "failed": failed,
                  "total_fen": sum(e["award_fen"] for e in confirmed), "rule": scoring.amount_rule.value}
        return await self.record(attempt, ctx, outcome_status=None, answer=answer)


# --- helpers ------------------------------------------------------------------------------------------


def _checked_points(data: ScoreInput, scoring: ShenzhenScoring) -> dict[str, int]:
    names = {c.key: c.name for c in scoring.criteria}
    missing = [names[k] for k in names if k not in data.criteria]
    unknown = sorted(set(data.criteria) - set(names))
    if missing or unknown:
        raise _refused(422, "invalid_input", ("评分缺少：" + "、".join(missing)) if missing else ("含未知评分项：" + "、".join(unknown)),
                       f"invalid_input: missing {missing}, unknown {unknown}")
    out = {}
    for key, entry in data.criteria.items():
        if not 0 <= entry.points <= scoring.scale_max:
            raise _refused(422, "invalid_input", f"“{names[key]}”评分须为 0 至 {scoring.scale_max} 的整数",
                           f"invalid_input: {key} out of scale")
        out[key] = entry.points
    return out


def counted_means(result: ProductScore, scoring: ShenzhenScoring) -> dict[str, int]:
    """Each criterion's mean over the experts the product's score counts (the trimmed mean drops
    the same experts), rounded half up to whole points: what the lifecycle records."""
    counted = [e for e in result.experts if not e.dropped]
    return {c.key: round_fraction(sum(e.scores[c.key] for e in counted), len(counted), Rounding.HALF_UP) for c in scoring.criteria}


def panel_result(result: ProductScore, criteria: dict[str, int], excluded: int) -> RecordExpertScoring:
    """What the lifecycle records of the panel: the criterion means (`counted_means`), the exclusions,
    and the product's score that sets the tier, which its timeline shows (the means are not weighted:
    their sum is not the score). Raises KeyError / ValidationError when the criteria do not fit."""
    return RecordExpertScoring(actor=REVIEW_SERVICE, excluded_experts=excluded, score=result.score_text,
                               **{k: criteria[k] for k in CONTRACT_CRITERIA})


async def _compute(conn: asyncpg.Connection, program: str, scoring: ShenzhenScoring) -> tuple[Sequence[Any], Any, dict[str, int]]:
    """The products at tiering and their amounts. Each confirmation is a round: the applicants' caps
    and the year's budget count what earlier rounds recorded (a product whose recording failed, or
    that reached tiering later, is prorated against what the budget still holds, not all of it)."""
    rows = await repository.products_to_tier(conn, program)
    apps = [r["application_no"] for r in rows]
    already = await repository.awarded_in_year(conn, sorted({r["applicant_uscc"] for r in rows}), scoring.cap_year, apps)
    used = await repository.recorded_against_budget(conn, program, scoring.cap_year, apps) if scoring.budget_fen is not None else 0
    amounts = shenzhen_amounts([ScoredProduct(application_no=r["application_no"], applicant_uscc=r["applicant_uscc"], tier=r["tier"])
                                for r in rows], scoring, already, budget_used_fen=used)
    return rows, amounts, already


def _proposal_answer(program: str, scoring: ShenzhenScoring, rows: Sequence[Any], amounts: Any, already: dict[str, int]) -> dict[str, Any]:
    return {
        "program": program,
        "rule": {
            "amount_rule": scoring.amount_rule.value,
            "description": ("各产品先按档次最高额；同一申报单位年度累计超过上限的，按比例核减至剩余额度；"
                            "本批合计超过年度预算剩余额度（年度预算减去此前已确定的资助金额）的，全部按同一比例核减"
                            "（到分，余数按最大余数分配）"),
            "tiers": [t.model_dump(mode="json") for t in scoring.tiers],
            "per_applicant_yearly_cap_fen": scoring.per_applicant_yearly_cap_fen,
            "cap_year": scoring.cap_year,
            "budget_fen": scoring.budget_fen,
            "budget_used_fen": amounts.budget_used_fen,  # recorded by earlier confirmations of the year
            "budget_available_fen": amounts.budget_available_fen,  # what this round may total (None: no budget)
            "clauses": dict(scoring.clauses),
        },
        "products": [
            {"application_no": line.application_no, "applicant_uscc": line.applicant_uscc, "score": row["score_text"],
             "tier": line.tier, "tier_max_fen": line.tier_max_fen, "after_applicant_cap_fen": line.after_applicant_cap_fen,
             "amount_fen": line.amount_fen, "reasons": [r.model_dump(mode="json") for r in line.reasons]}
            for row, line in zip(rows, amounts.lines, strict=True)
        ],
        "already_awarded_fen": already,
        "total_fen": amounts.total_fen,
        "over_budget": amounts.over_budget,
    }


def _iso(moment: Any) -> str | None:
    from services.review.api.common import local

    return local(moment)
