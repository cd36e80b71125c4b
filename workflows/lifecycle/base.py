"""What both programs' lifecycle workflows share: state, transitions, decisions, withdrawal,
return-for-modification rounds and the paper deadline.

How a decision travels: an update's validator checks role and state without touching history (a
rejected update leaves no trace); the accepted update hands its command to `run()` through one
slot and waits until `run()` has applied it, then returns the status the application is in. So
`run()` stays a readable sequence of steps, and every state change happens in one place.

Every transition is recorded by the intake activity `lifecycle.record_state_change`, which writes
the state-changed event through intake's outbox (event id from `workflow.uuid4()`, so a retried
activity writes one event). What the other services act on travels in the change's typed fields,
decided here: the SMS the change calls for (`notice_kind`), the official's reasons, the award and
tier, the public notice, the human step the application now waits for (`awaiting_step`, a key of
`HUMAN_STEPS`). `reason` is for people reading the history; no service parses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.contracts.workflow_ids import publication_batch_workflow_id
    from subsidy.contracts.lifecycle import (
        BUSY_REFUSAL,
        ACTIVITY_COMPUTE_PAPER_DEADLINE,
        ACTIVITY_ENLIST_FOR_PUBLICATION,
        ACTIVITY_RECORD_REMINDER,
        ACTIVITY_RECORD_STATE_CHANGE,
        QUERY_STATUS,
        SIGNAL_DELIST,
        SIGNAL_PUBLISHED,
        STATE_CHANGE_REVISION,
        STEP_PUBLISH,
        TERMINAL,
        UPDATE_RESUBMIT,
        UPDATE_WITHDRAW,
        Actor,
        ComputePaperDeadline,
        DeadlineRecord,
        DecisionAccepted,
        EnlistForPublication,
        HumanStep,
        LifecycleStatus,
        NoticeKind,
        RecordPaperReceipt,
        RecordPublication,
        ReminderDue,
        Resubmit,
        Role,
        StartLifecycle,
        StateChange,
        Status,
        Withdraw,
    )

C = TypeVar("C")
# Patches (workflow.patched): recorded histories of older runs replay without them.
REMOVED_FROM_LIST = "publication-removed-from-list"  # an upheld objection took it off the list
SZ_ENLIST = "sz-enlist-for-publication"  # Shenzhen applications are enlisted like Longgang's
DECISION_AT_A_PAST_TIME = "decision-at-a-past-time"  # a wait whose time had passed still takes what arrived
LATE_DEADLINE_GRACE = "late-deadline-grace"  # a deadline known only after it passed: the grace runs from then
NO_REMINDER_AFTER_DEADLINE = "no-reminder-after-deadline"  # reminders due before a deadline that has passed
SYSTEM = Actor(id="system:lifecycle", role=Role.REVIEW_SERVICE)
PORTAL = Actor(id="portal", role=Role.PORTAL)

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Until an operator loads a missing year's official calendar: retried hourly, never guessed.
DEADLINE_RETRY = RetryPolicy(initial_interval=timedelta(minutes=1), backoff_coefficient=2.0, maximum_interval=timedelta(hours=1))


# The failure of a decision accepted by its validator but overtaken by the enterprise's withdrawal.
WITHDRAWN_REFUSAL = "wrong_state: the application was withdrawn"
# ... or by the publication of the application's list (a revised award that came too late).
PUBLISHED_REFUSAL = "wrong_state: the list was published before the decision was applied"


class Ended(Exception):
    """The application reached a terminal status; `run()` stops its steps."""


class LifecycleBase:
    """State and steps shared by the Longgang and Shenzhen lifecycles (not a workflow itself)."""

    # Per lifecycle: the human step (HUMAN_STEPS key) an application waits for in a status, and the
    # notice the publication of its list calls for.
    AWAITING: dict[Status, str] = {}
    PUBLISHED_NOTICE: NoticeKind = NoticeKind.PUBLISHED

    def __init__(self) -> None:
        self.start: StartLifecycle | None = None
        self.status: Status = Status.SUBMITTED
        self.version = 1
        self.round = 0
        self.deadline: DeadlineRecord | None = None
        self.form_id: str | None = None
        self.form_sha256: str | None = None
        self.gd_case_no: str | None = None
        self.award_fen: int | None = None
        self.tier: int | None = None
        self._pending: Any = None  # the accepted decision run() has yet to apply
        self._applied = 0  # decisions applied so far; handlers wait for theirs
        self._accepted = 0
        self._refused: dict[int, str] = {}  # tickets of accepted decisions a withdrawal (or publication) refused
        self._withdrawal: Withdraw | None = None
        self.publication: RecordPublication | None = None

    # --- query -----------------------------------------------------------------------------

    def status_view(self) -> LifecycleStatus:
        assert self.start is not None
        return LifecycleStatus(
            program=self.start.program,
            application_no=self.start.application_no,
            status=self.status,
            version=self.version,
            round=self.round,
            deadline=self.deadline,
            form_id=self.form_id,
            award_fen=self.award_fen,
            tier=self.tier,
            history_length=workflow.info().get_current_history_length(),
        )

    # --- transitions -----------------------------------------------------------------------

    async def transition(
        self,
        to: Status,
        *,
        reason: str | None,
        actor: Actor,
        deadline: datetime | None = None,
        notice: NoticeKind | None = None,
        reasons: tuple[str, ...] = (),
        awaiting: str | None = None,
        window_code: str | None = None,
    ) -> None:
        """Move to `to` and record it. `notice`: the SMS this change calls for; `awaiting`: the human
        step, when it is not the one `AWAITING` names for `to`. Award, tier, notice id, form and
        Guangdong case travel as the lifecycle knows them at this moment."""
        assert self.start is not None
        change = StateChange(
            event_id=str(workflow.uuid4()),
            program=self.start.program,
            application_no=self.start.application_no,
            from_status=self.status,
            to_status=to,
            reason=reason,
            actor=actor.id,
            deadline=deadline,
            occurred_at=workflow.now(),
            correlation_id=self.start.correlation_id,
            version=self.version,
            contract_revision=STATE_CHANGE_REVISION,
            notice_kind=notice,
            reasons=reasons,
            award_fen=self.award_fen,
            tier=self.tier,
            notice_id=self.publication.notice_id if self.publication is not None else None,
            awaiting_step=awaiting or (self.AWAITING.get(to) if to not in TERMINAL else None),
            window_code=window_code,
            gd_case_no=self.gd_case_no,
            form_id=self.form_id,
        )
        self.status = to
        await workflow.execute_activity(
            ACTIVITY_RECORD_STATE_CHANGE,
            change,
            task_queue=task_queues.INTAKE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )

    async def end(
        self, to: Status, *, reason: str | None, actor: Actor, notice: NoticeKind | None = None, reasons: tuple[str, ...] = ()
    ) -> None:
        """Move to a terminal status and stop the steps."""
        self.deadline = None if to is not Status.ABANDONED else self.deadline
        await self.transition(to, reason=reason, actor=actor, notice=notice, reasons=reasons)
        raise Ended

    # --- decisions -------------------------------------------------------------------------

    def require(self, actor: Actor, roles: Iterable[Role], statuses: Iterable[Status]) -> None:
        """For validators: raise (rejecting the update, before history) when the actor's role or
        the application's status does not allow the decision."""
        roles, statuses = set(roles), set(statuses)
        if actor.role not in roles:
            raise ValueError(f"forbidden: role {actor.role.value} may not take this decision (allowed: {sorted(r.value for r in roles)})")
        if self.status not in statuses:
            raise ValueError(f"wrong_state: the application is {self.status.value}, this decision needs {sorted(s.value for s in statuses)}")
        if self._pending is not None:
            raise ValueError(f"{BUSY_REFUSAL} another decision is being applied; retry")

    async def deliver(self, command: Any) -> DecisionAccepted:
        """For update handlers: hand the command to run() and return once it is applied."""
        if self._pending is not None:  # two updates validated in the same activation
            raise ApplicationError("another decision is being applied; retry", type="Conflict", non_retryable=True)
        self._pending = command
        self._accepted += 1
        ticket = self._accepted
        await workflow.wait_condition(lambda: self._applied >= ticket)
        if ticket in self._refused:  # the update fails (not a command: histories replay unchanged)
            reason = self._refused[ticket]
            raise ApplicationError(reason, type="Withdrawn" if reason == WITHDRAWN_REFUSAL else "Overtaken", non_retryable=True)
        return DecisionAccepted(status=self.status, deadline=self.deadline.deadline if self.deadline else None)

    async def next_decision(
        self, kind: type[C], *, until: datetime | None = None, also: Callable[[], bool] | None = None
    ) -> C | None:
        """Wait for the next decision of `kind`; None when `until` passes first or `also` (a fact
        from a signal) becomes true. A withdrawal that arrives meanwhile ends the application."""
        timeout = None if until is None else max(until - workflow.now(), timedelta(0))

        def arrived() -> bool:
            return self._pending is not None or self._withdrawal is not None or (also is not None and also())

        try:
            await workflow.wait_condition(arrived, timeout=timeout)
        except asyncio.TimeoutError:
            # A time already past times out at once, without looking: what had arrived (a paper
            # receipt accepted meanwhile, a withdrawal) was ignored, and its update never answered.
            if not (arrived() and workflow.patched(DECISION_AT_A_PAST_TIME)):
                return None
        if self._withdrawal is not None:
            await self._apply_withdrawal()
        if self._pending is None:
            return None
        command = self._pending
        if not isinstance(command, kind):  # validators make this unreachable
            raise ApplicationError(f"unexpected decision {type(command).__name__} in {self.status.value}", non_retryable=True)
        return command

    def applied(self) -> None:
        """run() has applied the pending decision: release its update handler."""
        self._pending = None
        self._applied += 1

    def refuse_pending(self, reason: str) -> None:
        """run() will not apply the pending decision: its update fails with `reason`."""
        self._refused[self._accepted] = reason
        self.applied()

    # --- withdrawal (any step before publication) --------------------------------------------

    def validate_withdrawal(self, command: Withdraw) -> None:
        if command.actor.role is not Role.PORTAL:
            raise ValueError("forbidden: only the enterprise (through its portal) withdraws an application")
        if self.status in TERMINAL:
            raise ValueError(f"wrong_state: the application is already {self.status.value}")
        if self._withdrawal is not None:
            raise ValueError("wrong_state: a withdrawal is already being applied")

    async def withdraw_and_wait(self, command: Withdraw) -> DecisionAccepted:
        self._withdrawal = command
        await workflow.wait_condition(lambda: self.status is Status.WITHDRAWN)
        return DecisionAccepted(status=self.status)

    async def _apply_withdrawal(self) -> None:
        assert self._withdrawal is not None and self.start is not None
        if self._pending is not None:  # a decision accepted just before: refused by the withdrawal,
            self.refuse_pending(WITHDRAWN_REFUSAL)  # never reported applied (issue 14, defect 6)
        if self.status is Status.AWAITING_PUBLICATION:  # off the public-notice list
            batch = workflow.get_external_workflow_handle(publication_batch_workflow_id(self.start.program))
            try:
                await batch.signal(SIGNAL_DELIST, self.start.application_no)
            except Exception:  # no batch (yet): nothing to take the application off
                workflow.logger.warning("no publication batch to delist from")
        await self.end(Status.WITHDRAWN, reason=self._withdrawal.reason or "withdrawn", actor=self._withdrawal.actor)

    # --- return for modification -------------------------------------------------------------

    def validate_resubmission(self, command: Resubmit) -> None:
        self.require(command.actor, {Role.PORTAL}, {Status.RETURNED})
        assert self.deadline is not None
        if command.version <= self.version:
            raise ValueError(f"stale: version {command.version} is not newer than {self.version}")
        if command.submitted_at > self.deadline.deadline:
            raise ValueError("late: resubmitted after the date in the return notice")

    async def returned_for_modification(self, *, reasons: tuple[str, ...], resubmit_by: datetime, actor: Actor) -> Resubmit:
        """One round: RETURNED until a resubmission (new version) or the notice's date passes.

        The caller makes its next transition, then calls `applied()` to release the resubmission."""
        self.round += 1
        self.deadline = DeadlineRecord(
            kind="resubmission", deadline=resubmit_by, trigger=workflow.now(), trigger_kind="return_notice"
        )
        await self.transition(
            Status.RETURNED, reason="; ".join(reasons), actor=actor, deadline=resubmit_by, notice=NoticeKind.RETURNED, reasons=reasons
        )
        self.applied()
        assert self.start is not None
        resubmission = await self.next_decision(Resubmit, until=resubmit_by + self.start.policy.late_event_grace)
        if resubmission is None:
            await self.end(Status.ABANDONED, reason="resubmission_deadline_passed", actor=SYSTEM, notice=NoticeKind.RESUBMISSION_LAPSED)
        assert resubmission is not None
        self.version = resubmission.version
        self.deadline = None
        return resubmission

    # --- paper materials at a window within N working days -----------------------------------

    def validate_paper_receipt(self, command: RecordPaperReceipt, *, step: HumanStep, copies_required: int) -> None:
        self.require(command.actor, step.roles, step.statuses)
        if self.deadline is not None and self.deadline.kind == "paper" and command.received_at > self.deadline.deadline:
            raise ValueError("late: paper received after the deadline (逾期视作放弃)")
        if command.copies < copies_required or not command.bound_and_stamped:
            raise ValueError(f"incomplete: {copies_required} bound and stamped copies are required")
        if self.form_id is not None and command.form_id is not None and command.form_id != self.form_id:
            raise ValueError("wrong_form: the paper form is not the one the platform issued")

    async def paper_within_deadline(
        self, *, trigger: datetime, trigger_kind: str, reason: str, started_by: Any = None
    ) -> RecordPaperReceipt:
        """Compute the deadline, send reminders, and wait for the paper until the deadline's close of
        business; none in time ends the application as abandoned (逾期视作放弃)."""
        assert self.start is not None
        policy = self.start.policy
        self.deadline = await workflow.execute_activity(
            ACTIVITY_COMPUTE_PAPER_DEADLINE,
            ComputePaperDeadline(
                program=self.start.program,
                application_no=self.start.application_no,
                trigger=trigger,
                trigger_kind=trigger_kind,  # type: ignore[arg-type]
                policy=policy,
                correlation_id=self.start.correlation_id,
            ),
            task_queue=task_queues.REVIEW,
            result_type=DeadlineRecord,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DEADLINE_RETRY,
        )
        deadline = self.deadline
        await self.transition(Status.AWAITING_PAPER, reason=reason, actor=SYSTEM, deadline=deadline.deadline)
        if started_by is not None and self._pending is started_by:  # the decision that started the clock
            self.applied()  # learns its deadline; any other pending decision (the paper!) is waited for below
        for due_at in deadline.reminders:
            paper = await self.next_decision(RecordPaperReceipt, until=due_at)
            if paper is not None:
                return paper
            if workflow.now() >= deadline.deadline and workflow.patched(NO_REMINDER_AFTER_DEADLINE):
                continue  # no SMS telling of a deadline already past
            await self._remind(deadline, due_at)
        last_call = deadline.deadline
        if last_call < workflow.now() and workflow.patched(LATE_DEADLINE_GRACE):
            last_call = workflow.now()  # known only after it passed (a call recorded late): the window still records paper received in time
        paper = await self.next_decision(RecordPaperReceipt, until=last_call + policy.late_event_grace)
        if paper is None:
            await self.end(Status.ABANDONED, reason="paper_deadline_passed", actor=SYSTEM, notice=NoticeKind.ABANDONED)
        assert paper is not None
        return paper

    async def _remind(self, deadline: DeadlineRecord, due_at: datetime) -> None:
        assert self.start is not None
        local_day = due_at.astimezone(deadline.deadline.tzinfo).date()
        await workflow.execute_activity(
            ACTIVITY_RECORD_REMINDER,
            ReminderDue(
                event_id=str(workflow.uuid4()),
                program=self.start.program,
                application_no=self.start.application_no,
                deadline=deadline.deadline,
                due_at=due_at,
                working_days_left=sum(1 for day in deadline.working_days if day >= local_day),
                correlation_id=self.start.correlation_id,
            ),
            task_queue=task_queues.INTAKE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )

    # --- public notice ------------------------------------------------------------------------

    async def enlist_for_publication(self) -> None:
        """Put the application on its program's public-notice list (review starts the batch)."""
        assert self.start is not None
        await workflow.execute_activity(
            ACTIVITY_ENLIST_FOR_PUBLICATION,
            EnlistForPublication(
                program=self.start.program,
                application_no=self.start.application_no,
                workflow_id=workflow.info().workflow_id,
                award_fen=self.award_fen or 0,
                tier=self.tier,
            ),
            task_queue=task_queues.REVIEW,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )

    async def wait_for_publication(self) -> None:
        """On the list for public notice until its batch is published (a signal from the batch).

        Meanwhile a decision accepted in awaiting_publication (Longgang: `revise_award`, the batch's
        budget applied) is applied by `while_listed`; one still pending when the publication arrives
        is refused, never applied. After a notice period the batch tells the final entry: the award
        an upheld objection set, or that the application was taken off the list (it ends rejected,
        with the reason)."""
        while True:
            # `_pending` is only ever set here by an update new with `revise_award`: older histories
            # never accepted a decision in awaiting_publication, so they wait and replay as before.
            await workflow.wait_condition(
                lambda: self.publication is not None or self._withdrawal is not None or self._pending is not None
            )
            if self._withdrawal is not None:
                await self._apply_withdrawal()
            if self.publication is not None:
                break
            await self.while_listed(self._pending)
        if self._pending is not None:
            self.refuse_pending(PUBLISHED_REFUSAL)
        assert self.publication is not None
        if self.publication.removed and workflow.patched(REMOVED_FROM_LIST):
            reasons = ("公示期间异议成立，取消拟资助",)
            await self.end(Status.REJECTED, reason=f"removed_from_notice:{self.publication.notice_id}",
                           actor=self.publication.actor, notice=NoticeKind.REJECTED, reasons=reasons)
        if self.publication.award_fen is not None:  # the final list's amount (None from older batches)
            self.award_fen, self.tier = self.publication.award_fen, self.publication.tier
        await self.end(
            Status.PUBLISHED, reason=f"notice:{self.publication.notice_id}", actor=self.publication.actor, notice=self.PUBLISHED_NOTICE
        )

    async def while_listed(self, command: Any) -> None:
        """A decision accepted while the application is on the list; the lifecycles that accept
        one override this (Longgang's `revise_award`). Anything else is refused, never applied."""
        self.refuse_pending(f"wrong_state: {type(command).__name__} is not taken in awaiting_publication")

    def record_publication(self, publication: RecordPublication) -> None:
        """For the `published` signal: only an application on the list can be published, by whoever
        may publish the list (the batch passes on its publisher: the administrator, or `publication`)."""
        if self.status is Status.AWAITING_PUBLICATION and publication.actor.role in STEP_PUBLISH.roles:
            self.publication = publication
        else:
            workflow.logger.warning("publication ignored", extra={"status": self.status.value})

    async def finish(self) -> LifecycleStatus:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status_view()

    # --- handlers both lifecycles have ---------------------------------------------------------

    @workflow.update(name=UPDATE_RESUBMIT)
    async def resubmit(self, resubmission: Resubmit) -> DecisionAccepted:
        return await self.deliver(resubmission)

    @resubmit.validator
    def _validate_resubmit(self, resubmission: Resubmit) -> None:
        self.validate_resubmission(resubmission)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, withdrawal: Withdraw) -> DecisionAccepted:
        return await self.withdraw_and_wait(withdrawal)

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdraw) -> None:
        self.validate_withdrawal(withdrawal)

    @workflow.signal(name=SIGNAL_PUBLISHED)
    def published(self, publication: RecordPublication) -> None:
        self.record_publication(publication)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> LifecycleStatus:
        return self.status_view()
