"""The Longgang batch budget applied before publication (按比例核减, the district's rule for its funds).

What it applies to: the program batch's public-notice list **as it will be published** (the
PublicationBatch workflow's entries while its list is unpublished). The batch's `[award] budget_fen`
covers every list of the program batch: what earlier lists of the program already published counts
against it (`published_before_fen`, as published), and the rest (`available_fen`, never negative) is
what this list may total.

`position()` reads the list, the amount each application was confirmed at (review.award_computations,
never a previous revision) and what each enterprise's yearly cap still allows, and computes with
`money.prorate_to_budget` (floor of amount x available / total, the missing fen to the largest
remainders, ties by application number ascending): the list then totals exactly `available_fen`, no
amount is above what was confirmed nor above what the enterprise's cap allows. Within the budget the
confirmed amounts stand (a revision earlier lowered an amount that is now within it: restored).

`BudgetService.apply` (`POST /api/programs/{program}/awards/budget`, program administrator,
Idempotency-Key; audited): under a per-program advisory lock that publication also takes, it stores
the plan (review.budget_applications, review.award_revisions), then for each application whose
listed amount changes asks its lifecycle (`revise_award`, update id `<key>:<application_no>`) while
holding its enterprise's ledger row, lowers the reservation to the new amount in that transaction
(the ledger holds what is granted), and records a decision per application and one for the whole.

`over_budget_refusal()` is publication's check: an LG list whose total exceeds what the budget
leaves is not published (409 `over_budget`, in Chinese) until the budget is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from services.review import repository
from services.review.api.access import Action
from services.review.awards.money import prorate_to_budget, remaining_cap, yuan
from services.review.awards.service import award_config
from services.review.decisions.refusals import Refusal, refusal
from subsidy.contracts.lifecycle import (
    QUERY_ENTRIES,
    QUERY_SUMMARY,
    UPDATE_REVISE_AWARD,
    Actor,
    DecisionAccepted,
    PublicationEntry,
    PublicationSummary,
    ReviseAward,
    Role,
)
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from subsidy.programs.batch import LonggangAward
from subsidy.web import ApiError

log = structlog.get_logger(__name__)


class ApplyBudgetInput(BaseModel):
    """`{}`, or the applications the administrator saw on the list (refused, 409, if it changed since)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    applications: list[str] | None = Field(default=None, max_length=10_000)


@dataclass(frozen=True)
class Line:
    application_no: str
    workflow_id: str
    applicant_uscc: str | None
    cap_year: int | None
    confirmed_fen: int  # as the administrator confirmed it (or adjusted it)
    listed_fen: int  # on the list now (a previous revision may have lowered it)
    cap_fen: int  # the most it may be: confirmed, and what the enterprise's yearly cap leaves
    prorated_fen: int  # after the budget

    def view(self) -> dict[str, Any]:
        return {"application_no": self.application_no, "confirmed_fen": self.confirmed_fen, "listed_fen": self.listed_fen,
                "cap_fen": self.cap_fen, "prorated_fen": self.prorated_fen, "prorated": yuan(self.prorated_fen)}


@dataclass(frozen=True)
class Position:
    program: str
    budget_fen: int
    published: bool  # the list is published (in its notice period): nothing to apply until the next list
    notice_id: str | None
    published_before_fen: int
    lines: tuple[Line, ...]

    @property
    def available_fen(self) -> int:
        return max(0, self.budget_fen - self.published_before_fen)

    @property
    def confirmed_total_fen(self) -> int:
        return sum(line.confirmed_fen for line in self.lines)

    @property
    def listed_total_fen(self) -> int:
        return sum(line.listed_fen for line in self.lines)

    @property
    def prorated_total_fen(self) -> int:
        return sum(line.prorated_fen for line in self.lines)

    @property
    def over_budget(self) -> bool:
        """The confirmed amounts exceed what the budget leaves for this list."""
        return self.confirmed_total_fen > self.available_fen

    @property
    def applied(self) -> bool:
        """The list's amounts are the prorated ones (nothing left to revise)."""
        return not self.to_revise

    @property
    def to_revise(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.prorated_fen != line.listed_fen)

    def view(self) -> dict[str, Any]:
        return {
            "budget_fen": self.budget_fen, "published_before_fen": self.published_before_fen, "available_fen": self.available_fen,
            "list_published": self.published, "notice_id": self.notice_id,
            "confirmed_total_fen": self.confirmed_total_fen, "listed_total_fen": self.listed_total_fen,
            "prorated_total_fen": self.prorated_total_fen, "over_budget": self.over_budget,
            "publishable": self.published or self.listed_total_fen <= self.available_fen,
            "rule": ("预算（扣除本批次已公示金额后）不足以按核定金额资助时，名单上各项资助金额按同一比例核减："
                     "各项取 核定金额 × 可用预算 ÷ 核定金额合计 向下取整到分，差额的每 1 分按余数从大到小分配"
                     "（余数相同按申报编号升序），合计恰好等于可用预算，任何一项不高于其核定金额和企业年度剩余额度"),
            "applications": [line.view() for line in self.lines],
        }


async def listed(temporal: Client, program: str) -> tuple[PublicationSummary | None, tuple[PublicationEntry, ...]]:
    """The program's PublicationBatch: its summary and the entries of the list it holds (none: no batch)."""
    handle = temporal.get_workflow_handle(publication_batch_workflow_id(program))
    try:
        summary = await handle.query(QUERY_SUMMARY, result_type=PublicationSummary)
        entries = await handle.query(QUERY_ENTRIES, result_type=tuple[PublicationEntry, ...])
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None, ()
        raise
    return summary, tuple(entries)


async def position(conn: asyncpg.Connection, temporal: Client, program: str, config: LonggangAward) -> Position | None:
    """The list against the budget; None when the batch has no budget."""
    if config.budget_fen is None:
        return None
    summary, entries = await listed(temporal, program)
    published = summary is not None and summary.notice_id is not None
    before = await repository.published_award_total(conn, program)
    if published:  # its entries are counted in `before` already; the next list is not composed yet
        return Position(program, config.budget_fen, True, summary.notice_id if summary else None, before, ())
    confirmed = await repository.confirmed_awards(conn, [e.application_no for e in entries])
    raw: list[tuple[PublicationEntry, int, int, str | None, int | None]] = []
    for entry in entries:
        row = confirmed.get(entry.application_no)
        amount = int(row["confirmed_fen"]) if row is not None else entry.award_fen
        cap = amount
        uscc, year = (row["applicant_uscc"], row["cap_year"]) if row is not None else (None, None)
        if row is not None:
            others = await repository.reserved_for_others(conn, uscc, year, entry.application_no)
            cap = min(amount, remaining_cap(config.enterprise_yearly_cap_fen, others))
        raw.append((entry, amount, cap, uscc, year))
    available = max(0, config.budget_fen - before)
    prorated = prorate_to_budget({e.application_no: amount for e, amount, _, _, _ in raw}, available,
                                 caps={e.application_no: cap for e, _, cap, _, _ in raw})
    lines = tuple(
        Line(application_no=e.application_no, workflow_id=e.workflow_id, applicant_uscc=uscc, cap_year=year,
             confirmed_fen=amount, listed_fen=e.award_fen, cap_fen=cap, prorated_fen=prorated[e.application_no])
        for e, amount, cap, uscc, year in raw
    )
    return Position(program, config.budget_fen, False, None, before, lines)


async def over_budget_refusal(conn: asyncpg.Connection, temporal: Client, program: str) -> Refusal | None:
    """Publication's check (call holding `repository.lock_program_budget`): an LG list over what the
    budget leaves is refused until the budget is applied. None: publish."""
    config = award_config(program)
    if config is None or config.budget_fen is None:
        return None
    try:
        pos = await position(conn, temporal, program, config)
    except RPCError:  # the batch cannot be read: publication itself will answer
        return None
    if pos is None or pos.published or pos.listed_total_fen <= pos.available_fen:
        return None
    return Refusal(
        409, "over_budget",
        f"本批公示名单拟资助金额合计 {yuan(pos.listed_total_fen)}，超过预算可用额度 {yuan(pos.available_fen)}"
        f"（预算 {yuan(pos.budget_fen)}，本批次已公示 {yuan(pos.published_before_fen)}）。"
        "请先按预算比例核减资助金额，再发布公示",
        f"over_budget: the list totals {pos.listed_total_fen} fen, {pos.available_fen} available",
    )


# --- the administrator's action -------------------------------------------------------------------


class BudgetService:
    """Applying the budget: a decision of the administrator through the decision service's checks,
    idempotency, recording and audit."""

    def __init__(self, decisions: Any):
        self.decisions = decisions
        self.pool: asyncpg.Pool = decisions.pool
        self.temporal: Client = decisions.temporal

    async def apply(self, attempt: Any) -> dict[str, Any]:
        from services.review.decisions.service import Context, Refused, parse_input, program_role

        svc = self.decisions
        assert attempt.program is not None
        program = attempt.program
        if (stored := await svc.stored_answer(attempt)) is not None:
            return stored
        ctx = Context(program=program)
        async with svc.refusals_answered(attempt, ctx):
            ctx.role = program_role(attempt.principal, program, Action.APPLY_BUDGET, "applying the budget needs program_admin")
            data: ApplyBudgetInput = parse_input(ApplyBudgetInput, attempt.input)
            config = award_config(program)
            if config is None:
                raise Refused(Refusal(404, "no_award_config", "该项目不按核准制计算资助金额，不适用按比例核减",
                                      "not_found: the program computes no Longgang award"))
            if config.budget_fen is None:
                raise Refused(Refusal(409, "no_budget", "该批次未设定预算（[award] budget_fen），无需按比例核减",
                                      "wrong_state: the batch has no budget"))
            async with self.pool.acquire() as conn, conn.transaction():
                await repository.lock_program_budget(conn, program)
                if (stored := await svc.stored_answer(attempt, conn)) is not None:  # the same key, applied while we waited
                    return stored
                pos = await position(conn, self.temporal, program, config)
                assert pos is not None
                if pos.published:
                    raise Refused(Refusal(409, "list_published",
                                          f"本批公示名单（{pos.notice_id}）已发布，其金额不能再核减；下一批名单形成后再按预算核减",
                                          "wrong_state: the list is published"))
                if not pos.lines:
                    raise Refused(refusal("empty", "empty: no application is on the list", "暂无待公示的申报"))
                if data.applications is not None and sorted(data.applications) != sorted(line.application_no for line in pos.lines):
                    raise Refused(Refusal(409, "list_changed", "公示名单已有变化，请刷新后再按比例核减",
                                          "wrong_state: the list changed"))
                if pos.applied and pos.over_budget:
                    raise Refused(Refusal(409, "already_applied", "公示名单上的金额已按预算比例核减，无需重复操作",
                                          "wrong_state: the list's amounts are the prorated ones already"))
                if pos.applied:
                    raise Refused(Refusal(
                        409, "within_budget",
                        f"本批拟资助金额合计 {yuan(pos.confirmed_total_fen)} 未超过预算可用额度 {yuan(pos.available_fen)}，无需按比例核减",
                        "wrong_state: within the budget"))
                budget_id = await repository.store_budget_application(
                    conn, program=program, idempotency_key=attempt.idempotency_key, budget_fen=pos.budget_fen,
                    published_before_fen=pos.published_before_fen, available_fen=pos.available_fen,
                    confirmed_total_fen=pos.confirmed_total_fen, revised_total_fen=pos.prorated_total_fen,
                    applied_by=attempt.principal.actor_id,
                    revisions=[(line.application_no, line.confirmed_fen, line.listed_fen, line.prorated_fen) for line in pos.to_revise],
                )
                revised, failed = [], []
                for line in pos.to_revise:
                    outcome = await self._revise(attempt, ctx, pos, line)
                    if "status" in outcome:  # the plan's rows are this transaction's: marked here
                        await repository.mark_revision_recorded(conn, budget_id, line.application_no)
                    (revised if "status" in outcome else failed).append(outcome)
        answer = {
            "program": program, "budget_fen": pos.budget_fen, "published_before_fen": pos.published_before_fen,
            "available_fen": pos.available_fen, "confirmed_total_fen": pos.confirmed_total_fen,
            "prorated_total_fen": pos.prorated_total_fen,
            "revised": revised, "failed": failed, "unchanged": [line.application_no for line in pos.lines if line not in pos.to_revise],
        }
        log.info("budget applied", program=program, revised=len(revised), failed=len(failed))
        return await svc.record(attempt, ctx, outcome_status=None, answer=answer)

    async def _revise(self, attempt: Any, ctx: Any, pos: Position, line: Line) -> dict[str, Any]:
        """One application: its lifecycle's award revised, its reservation lowered, a decision recorded."""
        from services.review.decisions.service import Attempt, Refused

        svc = self.decisions
        per_app = Attempt(principal=attempt.principal, action=Action.APPLY_BUDGET, idempotency_key=f"{attempt.idempotency_key}:{line.application_no}",
                               input={"confirmed_fen": line.confirmed_fen, "listed_fen": line.listed_fen, "award_fen": line.prorated_fen,
                                      "budget_key": attempt.idempotency_key},
                               application_no=line.application_no, request_id=attempt.request_id)
        reason = (f"按比例核减：本批拟资助金额合计 {yuan(pos.confirmed_total_fen)}，预算可用额度 {yuan(pos.available_fen)}，"
                  f"核定金额 {yuan(line.confirmed_fen)} 核减为 {yuan(line.prorated_fen)}")
        if line.prorated_fen >= line.confirmed_fen:
            reason = f"预算可用额度 {yuan(pos.available_fen)} 足以按核定金额资助，恢复核定金额 {yuan(line.confirmed_fen)}"
        cmd = ReviseAward(actor=Actor(id=attempt.principal.actor_id, role=Role.PROGRAM_ADMIN), award_fen=line.prorated_fen,
                          confirmed_award_fen=line.confirmed_fen, reason=reason)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if line.applicant_uscc is not None and line.cap_year is not None:
                    config = award_config(pos.program)
                    assert config is not None
                    others = await repository.lock_enterprise_year(conn, line.applicant_uscc, line.cap_year,
                                                                   config.enterprise_yearly_cap_fen, line.application_no)
                    if line.prorated_fen > remaining_cap(config.enterprise_yearly_cap_fen, others):
                        raise Refused(refusal("over_cap", "over_cap: the enterprise's yearly cap changed meanwhile",
                                              "企业年度剩余额度已有变化，该项不能恢复至此金额，请重新按比例核减"))
                accepted = await svc.execute(line.workflow_id, UPDATE_REVISE_AWARD, cmd, per_app.update_id, DecisionAccepted)
                await repository.revise_reservation(conn, line.application_no, line.prorated_fen)
                entry = {"application_no": line.application_no, "confirmed_fen": line.confirmed_fen, "from_fen": line.listed_fen,
                         "award_fen": line.prorated_fen, "status": accepted.status.value}
                return await svc.record(per_app, ctx, outcome_status=accepted.status.value, answer=entry, conn=conn)
        except Refused as refused:
            await svc.audit_refusal(per_app, ctx, refused.refusal)
            return {"application_no": line.application_no, "code": refused.refusal.code, "message": refused.refusal.message}
        except ApiError as error:
            return {"application_no": line.application_no, "code": error.code, "message": error.message}
