"""PublicationBatch: the public-notice list (公示) of one program batch.

Lifecycles that reach `awaiting_publication` are enlisted (signal-with-start by the review
service's `publication.enlist`); the program's administrator publishes the list (update `publish`,
role `program_admin`, or `publication` for an operator's tooling); the list is recorded and
announced by the review service, then every enlisted lifecycle is told, in chunks, with the
publisher as the actor of the `published` signal (which the lifecycles accept from the same roles).

A batch may hold thousands of applications and live for months, so its history must not grow
without bound: it continues as new, carrying its state, whenever Temporal suggests it or the
history passes `max_history_events`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.contracts.lifecycle import (
        ACTIVITY_NOTIFY_PUBLISHED,
        ACTIVITY_RECORD_NOTICE,
        PUBLICATION_BATCH,
        QUERY_SUMMARY,
        SIGNAL_DELIST,
        SIGNAL_ENLIST,
        STEP_PUBLISH,
        UPDATE_PUBLISH,
        EnlistForPublication,
        NotifyPublished,
        PublicationBatchState,
        PublicationEntry,
        PublicationSummary,
        PublishNotice,
        RecordNotice,
    )

    from workflows.lifecycle.base import RECORD_RETRY

NOTIFY_CHUNK = 100


@workflow.defn(name=PUBLICATION_BATCH)
class PublicationBatch:
    @workflow.init
    def __init__(self, state: PublicationBatchState) -> None:
        # Set before any handler runs: the batch is started by signal-with-start (publication.enlist),
        # and the start's signal is handled before run() begins.
        self.state: PublicationBatchState = state
        self.entries: dict[str, PublicationEntry] = {e.application_no: e for e in state.entries}

    @workflow.run
    async def run(self, state: PublicationBatchState) -> PublicationSummary:
        await workflow.wait_condition(lambda: self.state.notice is not None or self._history_is_long())
        if self.state.notice is None:
            await self._continue_as_new()
        notice = self.state.notice
        assert notice is not None
        if self.state.notified == 0:
            await workflow.execute_activity(
                ACTIVITY_RECORD_NOTICE,
                RecordNotice(program=state.program, notice=notice, entries=self._ordered()),
                task_queue=task_queues.REVIEW,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RECORD_RETRY,
            )
        ordered = self._ordered()
        while self.state.notified < len(ordered):
            chunk = ordered[self.state.notified : self.state.notified + NOTIFY_CHUNK]
            await workflow.execute_activity(
                ACTIVITY_NOTIFY_PUBLISHED,
                NotifyPublished(notice=notice, workflow_ids=tuple(e.workflow_id for e in chunk)),
                task_queue=task_queues.REVIEW,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RECORD_RETRY,
            )
            self.state = self.state.model_copy(update={"notified": self.state.notified + len(chunk)})
            if self._history_is_long():
                await self._continue_as_new()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.summary()

    def _ordered(self) -> tuple[PublicationEntry, ...]:
        return tuple(sorted(self.entries.values(), key=lambda e: e.application_no))

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self.state.max_history_events

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.state.model_copy(update={"entries": self._ordered()}))

    # --- handlers ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_ENLIST)
    def enlist(self, request: EnlistForPublication) -> None:
        """Idempotent: an application is on the list once, with its latest award."""
        if self.state.notice is not None:
            workflow.logger.warning("enlisted after publication: not on this notice", extra={"application_no": request.application_no})
            return
        self.entries[request.application_no] = PublicationEntry(
            application_no=request.application_no, workflow_id=request.workflow_id, award_fen=request.award_fen, tier=request.tier
        )

    @workflow.signal(name=SIGNAL_DELIST)
    def delist(self, application_no: str) -> None:
        """A withdrawal before publication takes the application off the list."""
        if self.state.notice is None:
            self.entries.pop(application_no, None)

    @workflow.update(name=UPDATE_PUBLISH)
    async def publish(self, notice: PublishNotice) -> PublicationSummary:
        self.state = self.state.model_copy(update={"notice": notice})
        return self.summary()

    @publish.validator
    def _validate_publish(self, notice: PublishNotice) -> None:
        if notice.actor.role not in STEP_PUBLISH.roles:
            raise ValueError(f"forbidden: role {notice.actor.role.value} may not publish the list (allowed: {sorted(r.value for r in STEP_PUBLISH.roles)})")
        if self.state.notice is not None:
            raise ValueError(f"wrong_state: already published as {self.state.notice.notice_id}")
        if not self.entries:
            raise ValueError("empty: no application is on the list")

    @workflow.query(name=QUERY_SUMMARY)
    def summary(self) -> PublicationSummary:
        return PublicationSummary(
            program=self.state.program,
            entries=len(self.entries),
            total_award_fen=sum(e.award_fen for e in self.entries.values()),
            notice_id=self.state.notice.notice_id if self.state.notice else None,
            notified=self.state.notified,
        )
