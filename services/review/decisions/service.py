"""The decision service: every action an official takes through the API, checked, taken, recorded.

For one attempt, in order:

1. `Idempotency-Key` seen before: for the same request again (the same official, action, object
   and body) the stored answer, nothing else happens (review.decisions); for any other request
   422 `idempotency_key_reused`, audited;
2. the object from review's read model: unknown, or outside the caller's programs (an expert: not
   assigned to them) -> 404, its existence not revealed;
3. the caller's role for the action (services/review/api/access.py) -> 403; a clerk at another
   window -> 403; input the contract refuses -> 422;
4. the workflow update, with the principal as actor and `api:<key>` as update id (its own
   namespace: subsidy.contracts.workflow_ids.api_update_id). `busy:` (the
   lifecycle still settling its previous step) is asked again with backoff for up to
   `busy_window` seconds; the validator's refusals become answers (decisions/refusals.py);
5. accepted: the decision, the closing of its task and the audit row in one transaction.

Every refusal from step 2 on is audited too (outcome `refused`, with the reason).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from services.review import repository
from services.review.api.access import Action, can, in_scope, role_for
from services.review.audit.chain import AuditEntry
from services.review.decisions.actions import (
    REVIEW_ACTION_BY_STATUS,
    SHANGHAI,
    UPDATES,
    AssigneeInput,
    PublicationInput,
    ReviewDecisionInput,
    Update,
    command,
    notice_id_for,
    resubmit_deadline,
    review_actions,
)
from services.review.decisions.refusals import Refusal, refusal, refusal_of
from services.review.notice.period import notice_period
from subsidy.contracts.lifecycle import BUSY_REFUSAL, TERMINAL, Actor, DecisionAccepted, PublicationSummary
from subsidy.contracts.workflow_ids import api_update_id, application_workflow_id, publication_batch_workflow_id
from subsidy.failpoints import crash_if_armed
from subsidy.identifiers import mask_personal_data_in
from subsidy.identity.claims import Principal, StaffRole
from subsidy.text import UNSTORABLE_MESSAGE, unstorable_reason
from subsidy.web import ApiError

log = structlog.get_logger(__name__)

BUSY_WINDOW_S = 15.0
_CLOSED = {RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION}


@dataclass(frozen=True)
class Attempt:
    """One call of a decision endpoint, as the route received it, its body masked.

    The body's ID and mobile numbers (a justification "已电话联系 13800138000 核实", an ID number in
    a reason) are masked here, once for every route that builds an attempt (decisions, scoring,
    awards, flags; the console posts through them): everything taken from `input` afterwards (the
    parsed input, the workflow command, review.decisions, the audit, the tables of reasons and
    notes) holds the masked text only. Masking is idempotent, so `replace()` may copy an attempt."""

    principal: Principal
    action: Action
    idempotency_key: str
    input: dict[str, Any]
    application_no: str | None = None
    program: str | None = None  # the program of a publication (no application)
    request_id: str | None = None
    # An object the path names that neither the application nor the program is: ("task_id", 7),
    # ("flag_id", 3). Its answer names it too; the same key for another one is another request.
    target: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", mask_personal_data_in(self.input))

    @property
    def update_id(self) -> str:
        """The workflow update id of this attempt: the key in the API's own namespace, never one
        of the platform's update ids."""
        return api_update_id(self.idempotency_key)


@dataclass
class Context:
    """What the checks found: the object's program and status, the role that grants the action."""

    program: str | None = None
    status: str | None = None
    role: StaffRole | None = None
    action: Action | None = None  # the action the checks settled on (a review decision's, by step)


class Refused(Exception):
    def __init__(self, refusal: Refusal):
        super().__init__(refusal.code)
        self.refusal = refusal


def _roles(principal: Principal) -> str:
    return ",".join(sorted(r.value for r in principal.roles)) or "none"


class DecisionService:
    def __init__(self, pool: asyncpg.Pool, temporal: Client, *, busy_window: float = BUSY_WINDOW_S,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.pool = pool
        self.temporal = temporal
        self.busy_window = busy_window
        self.clock = clock

    # --- the entry points the routes call ----------------------------------------------------

    async def decide_review(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/applications/{no}/decisions`: the decision of the review step the
        application is in (LG online review, LG back-office review, SZ formal pre-review)."""
        async def checks(ctx: Context, attempt: Attempt) -> tuple[Attempt, Update, BaseModel]:
            assert ctx.program is not None and ctx.status is not None
            action = REVIEW_ACTION_BY_STATUS.get(ctx.status)
            if action is None or action not in review_actions(ctx.program):
                held = [a for a in review_actions(ctx.program) if role_for(attempt.principal, a) is not None]
                if not held:
                    raise Refused(refusal("forbidden", "forbidden: no review role for this program"))
                ctx.action, ctx.role = held[0], role_for(attempt.principal, held[0])
                raise Refused(refusal("wrong_state", f"wrong_state: the application is {ctx.status}"))
            attempt, ctx.action = _with_action(attempt, action), action
            ctx.role = role_for(attempt.principal, action)
            if ctx.role is None:
                raise Refused(refusal("forbidden", f"forbidden: {action.value} needs another role"))
            data = parse_input(ReviewDecisionInput, attempt.input)
            if data.resubmit_by is not None and _resubmit_is_past(data.resubmit_by, self.clock()):
                raise Refused(refusal("invalid", "invalid: resubmit_by is in the past", "重新提交截止日期不能早于今天"))
            return attempt, UPDATES[action], data

        return await self._take(attempt, checks)

    async def take_step(self, attempt: Attempt, model: type[BaseModel]) -> dict[str, Any]:
        """Another human step of a lifecycle (paper, phone confirmation, award, scoring, tiering)."""

        async def checks(ctx: Context, attempt: Attempt) -> tuple[Attempt, Update, BaseModel]:
            assert ctx.program is not None
            ctx.role = role_for(attempt.principal, attempt.action)
            if ctx.role is None:
                raise Refused(refusal("forbidden", f"forbidden: {attempt.action.value} needs another role"))
            data = parse_input(model, attempt.input)
            if not can(attempt.principal, attempt.action, ctx.program, window=getattr(data, "window_code", None)):
                raise Refused(refusal("forbidden", "forbidden: paper is recorded at the clerk's own window only",
                                          "只能登记本窗口收取的纸质材料"))
            return attempt, UPDATES[attempt.action], data

        return await self._take(attempt, checks)

    async def publish(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/programs/{program}/publication`: the batch's list published (公示)."""
        assert attempt.program is not None
        program = attempt.program
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context(program=program)
        async with self.refusals_answered(attempt, ctx):
            ctx.role = program_role(attempt.principal, program, Action.PUBLISH, "publish needs program_admin")
            data = parse_input(PublicationInput, attempt.input)
            published_at = data.published_at or self.clock()
            data = data.model_copy(update={"published_at": published_at,
                                           "notice_id": data.notice_id or notice_id_for(program, published_at)})
            actor = Actor(id=attempt.principal.actor_id, role=UPDATES[Action.PUBLISH].role)
            cmd = _build(Action.PUBLISH, actor, data, self.clock(), None)
            cmd = _with_notice_period(program, cmd, data, self.clock())  # issue 13: the 公示 period
            summary = await self._publish_within_budget(program, cmd, attempt.update_id)
        answer = {"notice_id": summary.notice_id, "entries": summary.entries, "total_award_fen": summary.total_award_fen,
                  "period_starts_at": shanghai_iso(cmd.period_starts_at), "period_ends_at": shanghai_iso(cmd.period_ends_at),
                  "waiting_for_next": summary.waiting_for_next}
        return await self.record(attempt, ctx, outcome_status=None, answer=answer)

    async def _publish_within_budget(self, program: str, cmd: BaseModel, update_id: str) -> PublicationSummary:
        """The publish update; for a Longgang batch with a budget, only when its list is within it
        (services/review/awards/budget.py), holding the program's budget lock so that the list
        cannot change between the check and the publication."""
        from services.review.awards.budget import over_budget_refusal
        from services.review.awards.service import award_config

        config = award_config(program)
        if config is None or config.budget_fen is None:
            return await self.execute(publication_batch_workflow_id(program), UPDATES[Action.PUBLISH].update, cmd, update_id,
                                       PublicationSummary, closed_means="empty")
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.lock_program_budget(conn, program)
            if (over := await over_budget_refusal(conn, self.temporal, program)) is not None:
                raise Refused(over)
            return await self.execute(publication_batch_workflow_id(program), UPDATES[Action.PUBLISH].update, cmd, update_id,
                                       PublicationSummary, closed_means="empty")

    async def reassign_task(self, attempt: Attempt) -> dict[str, Any]:
        """`POST /api/tasks/{task_id}/assignee`: the administrator gives an open task to one person
        (the task: `attempt.target`, as the route names it)."""
        assert attempt.target is not None and attempt.target[0] == "task_id"
        task_id = attempt.target[1]
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        async with self.pool.acquire() as conn:
            task = await repository.task(conn, task_id)
        ctx = Context(program=task["program"] if task else None)
        attempt = replace(attempt, application_no=task["application_no"] if task else None)
        async with self.refusals_answered(attempt, ctx):
            if task is None or not in_scope(attempt.principal, task["program"]):
                raise Refused(refusal("task_not_found", "not_found: task unknown or outside the caller's scope"))
            ctx.role = role_for(attempt.principal, Action.REASSIGN_TASK)
            if ctx.role is None:
                raise Refused(refusal("forbidden", "forbidden: reassigning needs program_admin"))
            data = parse_input(AssigneeInput, attempt.input)
            async with self.pool.acquire() as conn, conn.transaction():
                if not await repository.assign_task(conn, task_id, data.assignee):
                    raise Refused(refusal("task_closed", "wrong_state: the task is closed"))
                answer = {"task_id": task_id, "assignee": data.assignee}
                return await self.record(attempt, ctx, outcome_status=None, answer=answer, conn=conn)

    # --- the common path -------------------------------------------------------------------------

    async def _take(
        self, attempt: Attempt, checks: Callable[[Context, Attempt], Awaitable[tuple[Attempt, Update, BaseModel]]]
    ) -> dict[str, Any]:
        if (stored := await self.stored_answer(attempt)) is not None:
            return stored
        ctx = Context()
        try:
            await self.locate(attempt, ctx)
            attempt, update, data = await checks(ctx, attempt)
            assert ctx.program is not None and ctx.status is not None and attempt.application_no is not None
            if ctx.status in TERMINAL:
                raise Refused(refusal("lifecycle_closed", f"lifecycle_closed: the application is {ctx.status}"))
            actor = Actor(id=attempt.principal.actor_id, role=update.role)
            cmd = _build(attempt.action, actor, data, self.clock(), attempt.principal.window)
            accepted = await self.execute(application_workflow_id(ctx.program, attempt.application_no), update.update, cmd,
                                           attempt.update_id, DecisionAccepted)
            crash_if_armed("review.after_update")  # the workflow took the decision; review's own commit has not happened
        except Refused as refused:
            earlier = await self._taken_earlier(attempt, ctx, refused.refusal)
            if earlier is None:
                await self.audit_refusal(attempt, ctx, refused.refusal)
                raise api_error(refused.refusal) from None
            accepted, update = earlier, None  # the task was closed by the state change already
        answer = {"status": accepted.status.value, "deadline": shanghai_iso(accepted.deadline)}
        return await self.record(attempt, ctx, outcome_status=accepted.status.value, answer=answer, step=update)

    async def _taken_earlier(self, attempt: Attempt, ctx: Context, refused: Refusal) -> DecisionAccepted | None:
        """The workflow's answer to an earlier request under this key, when the application has moved
        on because of it: review stopped between the workflow's accept and its own commit (a crash,
        a lost connection), and the official's client sends the request again with the same key.
        The update id is made from the key, so the workflow keeps that answer; without this the repeat was
        refused (409 wrong_state) and the decision never recorded nor audited (issue 14, faults)."""
        if refused.code not in ("wrong_state", "lifecycle_closed") or ctx.program is None or attempt.application_no is None:
            return None
        handle = self.temporal.get_workflow_handle(application_workflow_id(ctx.program, attempt.application_no))
        try:
            return await asyncio.wait_for(
                handle.get_update_handle(attempt.update_id, result_type=DecisionAccepted).result(), 15)
        except (RPCError, WorkflowUpdateFailedError, TimeoutError):
            return None  # no such update (the usual case): the refusal stands

    async def locate(self, attempt: Attempt, ctx: Context) -> None:
        """The application from the read model, in the caller's scope, or 404."""
        assert attempt.application_no is not None
        async with self.pool.acquire() as conn:
            row = await repository.application(conn, attempt.application_no)
            assigned = row is not None and await _expert_may_see(conn, attempt.principal, attempt.application_no)
        if row is not None:
            ctx.program, ctx.status = row["program"], row["status"]  # for the audit; the answer does not say
        if row is None or not in_scope(attempt.principal, row["program"]) or not assigned:
            raise Refused(refusal("not_found", "not_found: unknown or outside the caller's scope"))

    async def stored_answer(self, attempt: Attempt, conn: asyncpg.Connection | None = None) -> dict[str, Any] | None:
        """The answer stored for the attempt's Idempotency-Key, or None. A caller that holds a connection
        passes it: taking a second one while holding one deadlocks the pool once as many requests
        as it has connections do so at once (nine award confirmations did, in the lifecycle benchmark).

        The key names one request: the same official's same action on the same object with the same
        body. Sent with anything else it is refused (422 `idempotency_key_reused`) and the refusal
        audited; answering the first request's answer told the official that an action was taken
        that never was (a second program's publication answered with the first one's notice id).
        Without `conn` the refusal is audited here and raised as the API's error; with it, raised as
        `Refused`, for the caller's `refusals_answered` to audit once its transaction is over.

        Every action's first step (without `conn`): so it is here too that a body with text no row
        can hold (NUL, a lone surrogate: subsidy/text.py) is refused, 422 `invalid_input`, audited,
        before anything is looked up or sent to a workflow. Checked after it, the workflow applied
        the decision and review's own records of it failed (500, and nothing recorded nor audited)."""
        if conn is not None:
            return await self._stored_answer(attempt, conn)
        async with self.pool.acquire() as own:
            try:
                refuse_unstorable(attempt.input)
                return await self._stored_answer(attempt, own)
            except Refused as exc:
                refused, program = exc.refusal, await _program_named(own, attempt)
        await self.audit_refusal(attempt, Context(program=program), refused)
        raise api_error(refused) from None

    async def _stored_answer(self, attempt: Attempt, conn: asyncpg.Connection) -> dict[str, Any] | None:
        row = await repository.stored_decision(conn, attempt.idempotency_key)
        if row is None:
            return None
        if (other := _another_request(row, attempt)) is not None:
            raise Refused(refusal("idempotency_key_reused", f"idempotency_key_reused: the key was used for {other}"))
        return json.loads(row["answer"])

    async def execute(self, workflow_id: str, update: str, cmd: BaseModel, key: str, result_type: type[Any],
                       *, closed_means: str = "lifecycle_closed") -> Any:
        """The update, `busy:` asked again with backoff within the busy window; refusals raised as Refused."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        give_up_at = time.monotonic() + self.busy_window
        delay, asked = 0.05, 0
        while True:
            asked += 1
            try:
                result = await handle.execute_update(update, cmd, id=key, result_type=result_type)
                if asked > 1:
                    log.info("decision applied after the lifecycle settled", update=update, attempts=asked)
                return result
            except WorkflowUpdateFailedError as failed:
                cause = failed.cause
                reason = getattr(cause, "message", None) or str(failed)
                if reason.startswith(BUSY_REFUSAL) and time.monotonic() + delay < give_up_at:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if reason.startswith(BUSY_REFUSAL):
                    raise Refused(Refusal(503, "busy", "该申报正在处理上一步，请稍后再试", reason)) from None
                raise Refused(refusal_of(reason, error_type=getattr(cause, "type", None))) from None
            except RPCError as exc:
                if exc.status in _CLOSED:
                    raise Refused(refusal(closed_means, f"{closed_means}: {exc.status.name.lower()}")) from None
                log.warning("workflow service unavailable for a decision", update=update, status=exc.status.name)
                # Not an answer about the decision: nothing was decided, the official may try again.
                raise ApiError(503, "unavailable", "系统暂时无法处理该决定，请稍后再试", headers={"Retry-After": "5"}) from None

    async def record(self, attempt: Attempt, ctx: Context, *, outcome_status: str | None, answer: dict[str, Any],
                      step: Update | None = None, conn: asyncpg.Connection | None = None) -> dict[str, Any]:
        """Decision, its task closed, and the audit row: one transaction. A concurrent repeat of the
        same key finds the first one's answer (and audits nothing)."""
        if conn is None:
            async with self.pool.acquire() as own, own.transaction():
                return await self.record(attempt, ctx, outcome_status=outcome_status, answer=answer, step=step, conn=own)
        assert ctx.program is not None
        role = (ctx.role.value if ctx.role else _roles(attempt.principal))
        inserted = await repository.insert_decision(
            conn, idempotency_key=attempt.idempotency_key, program=ctx.program, application_no=attempt.application_no,
            action=attempt.action.value, actor_subject=attempt.principal.subject, actor_id=attempt.principal.actor_id,
            actor_role=role, input=attempt.input, outcome_status=outcome_status, answer=answer,
        )
        if not inserted:
            stored = await repository.stored_decision(conn, attempt.idempotency_key)
            assert stored is not None
            return json.loads(stored["answer"])
        if step is not None and step.step is not None and attempt.application_no is not None:
            await repository.close_task_by_decision(conn, attempt.application_no, step.step, attempt.principal.actor_id,
                                                    outcome_status)
        await repository.append_audit(conn, AuditEntry(
            occurred_at=self.clock(), subject=attempt.principal.subject, role=role, action=attempt.action.value,
            program=ctx.program, application_no=attempt.application_no, input=attempt.input, outcome="accepted",
            reason=None, request_id=attempt.request_id,
        ))
        log.info("decision taken", action=attempt.action.value, outcome_status=outcome_status)
        return answer

    async def audit_refusal(self, attempt: Attempt, ctx: Context, refused: Refusal) -> None:
        role = ctx.role.value if ctx.role else _roles(attempt.principal)
        action = ctx.action or attempt.action
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.append_audit(conn, AuditEntry(
                occurred_at=self.clock(), subject=attempt.principal.subject, role=role, action=action.value,
                program=ctx.program,
                application_no=attempt.application_no, input=attempt.input, outcome="refused",
                reason=f"{refused.code}: {refused.reason or ''}"[:500], request_id=attempt.request_id,
            ))
        log.info("decision refused", action=action.value, code=refused.code, status=refused.status)

    @asynccontextmanager
    async def refusals_answered(self, attempt: Attempt, ctx: Context) -> AsyncIterator[None]:
        """Around an action's checks and work: a refusal raised inside is audited in the caller's
        name (with what `ctx` knows by then) and answered as the API's error."""
        try:
            yield
        except Refused as refused:
            await self.audit_refusal(attempt, ctx, refused.refusal)
            raise api_error(refused.refusal) from None


def _with_notice_period(program: str, cmd: Any, data: PublicationInput, now: datetime) -> Any:
    """The notice period of a publication: from `starts_at` (default: published_at), N working days
    of the program's configuration, to the office's closing time (services/review/notice/period.py)."""
    starts_at = data.starts_at or cmd.published_at
    if starts_at > now + timedelta(minutes=5):
        raise Refused(refusal("invalid", "invalid: the notice cannot start in the future", "公示开始时间不能晚于当前时间"))
    try:
        period = notice_period(program, starts_at)
    except KeyError:
        raise Refused(refusal("program_not_found", "not_found: unknown program")) from None
    return cmd.model_copy(update={"period_starts_at": period.starts_at, "period_ends_at": period.ends_at})


def program_role(principal: Principal, program: str, action: Action, forbidden: str) -> StaffRole:
    """The role a program-level action (publish, confirm tiering) is taken in: a program outside the
    caller's scope is not found (404), a role without the action forbidden (403)."""
    if not in_scope(principal, program):
        raise Refused(refusal("program_not_found", "not_found: program outside the caller's scope"))
    role = role_for(principal, action)
    if role is None:
        raise Refused(refusal("forbidden", f"forbidden: {forbidden}"))
    return role


_REVIEW_DECISIONS = frozenset(action.value for action in REVIEW_ACTION_BY_STATUS.values())


def _action_family(action: str) -> str:
    """`POST .../decisions` is attempted as `decide` and recorded as the step's own decision
    (decide_online_review, ...): one action for the Idempotency-Key."""
    return Action.DECIDE.value if action in _REVIEW_DECISIONS else action


def _another_request(row: Any, attempt: Attempt) -> str | None:
    """What makes `attempt` another request than the one recorded under its key (review.decisions
    `row`), or None when it is the same one again. The body is compared as recorded (masked, as
    the audit has it)."""
    if row["actor_id"] != attempt.principal.actor_id:
        return "another official's request"
    if _action_family(row["action"]) != _action_family(attempt.action.value):
        return "another action"
    target = attempt.target
    if ((attempt.application_no is not None and row["application_no"] != attempt.application_no)
            or (attempt.program is not None and row["program"] != attempt.program)
            or (target is not None and json.loads(row["answer"]).get(target[0]) != target[1])):
        return "another object"
    if json.loads(row["input"]) != json.loads(json.dumps(attempt.input)):
        return "another body"
    return None


async def _program_named(conn: asyncpg.Connection, attempt: Attempt) -> str | None:
    """The program of the object an attempt names, for the audit of a refusal given before the
    object was looked up (None for an object that does not exist)."""
    if attempt.program is not None:
        return attempt.program
    row = None
    if attempt.application_no is not None:
        row = await repository.application(conn, attempt.application_no)
    elif attempt.target is not None and attempt.target[0] == "task_id":
        row = await repository.task(conn, attempt.target[1])
    return row["program"] if row is not None else None


def _with_action(attempt: Attempt, action: Action) -> Attempt:
    return replace(attempt, action=action)


async def _expert_may_see(conn: asyncpg.Connection, principal: Principal, application_no: str) -> bool:
    """An expert and nothing else (no other role of the program) sees only assigned applications."""
    if principal.roles != {StaffRole.EXPERT}:
        return True
    return await repository.is_assigned_expert(conn, application_no, principal.subject)


def refuse_unstorable(data: Any) -> None:
    """Refused (422 `invalid_input`) when a string or key of the body holds NUL or a lone surrogate."""
    if (reason := unstorable_reason(data)) is not None:
        raise Refused(refusal("invalid_input", f"invalid_input: {reason}"[:300], UNSTORABLE_MESSAGE))


def parse_input(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise Refused(refusal("invalid_input", "invalid_input: " + ", ".join(fields)[:300])) from None


def _build(action: Action, actor: Actor, data: BaseModel, now: datetime, window: str | None) -> BaseModel:
    try:
        return command(action, actor, data, now=now, window=window)
    except ValidationError as exc:
        messages = "; ".join(str(e.get("msg", "")) for e in exc.errors())[:300]
        raise Refused(refusal("invalid", f"invalid: {messages}", "决定内容不完整：退回须写明理由和重新提交截止日期，驳回须写明理由")) from None
    except ValueError as exc:
        raise Refused(refusal_of(str(exc))) from None


def _resubmit_is_past(day: Any, now: datetime) -> bool:
    return resubmit_deadline(day) <= now


def shanghai_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


def api_error(refused: Refusal) -> ApiError:
    headers = {"Retry-After": "2"} if refused.status == 503 else None
    return ApiError(refused.status, refused.code, refused.message, detail={"reason": refused.reason} if refused.status != 404 else None,
                    headers=headers)
