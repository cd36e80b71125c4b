"""PublicationBatch: the public-notice list (公示) of one program batch.

Lifecycles that reach `awaiting_publication` are enlisted (signal-with-start by the review
service's `publication.enlist`); the program's administrator publishes the list (update `publish`,
role `program_admin`, or `publication` for an operator's tooling); the list is recorded and
announced by the review service, then every enlisted lifecycle is told, in chunks, with the
publisher as the actor of the `published` signal (which the lifecycles accept from the same roles).

With a notice period (`PublishNotice.period_ends_at`, computed by review from the program's
configuration): the batch waits on a durable timer until the period ends, asks review
(`publication.close_notice`) whether objections are open, and waits while they are (review
signals `objections_changed` on every decision; hourly otherwise); then the list is final and the
lifecycles are told with their final entry (an upheld objection may change or remove it).

An application enlisted after the list was published waits for the next list: once this batch is
done it continues as new, same workflow id, with those applications as the next batch's list.

A batch may hold thousands of applications and live for months, so its history must not grow
without bound: it continues as new, carrying its state, whenever Temporal suggests it or the
history passes `max_history_events`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.contracts.lifecycle import (
        ACTIVITY_CLOSE_NOTICE,
        ACTIVITY_NOTIFY_PUBLISHED,
        ACTIVITY_RECORD_NOTICE,
        PUBLICATION_BATCH,
        QUERY_ENTRIES,
        QUERY_SUMMARY,
        SIGNAL_DELIST,
        SIGNAL_ENLIST,
        SIGNAL_OBJECTIONS_CHANGED,
        STEP_PUBLISH,
        UPDATE_PUBLISH,
        CloseNotice,
        EnlistForPublication,
        NoticeClosed,
        NotifyPublished,
        PublicationBatchState,
        PublicationEntry,
        PublicationSummary,
        PublishNotice,
        RecordNotice,
    )

    from workflows.lifecycle.base import RECORD_RETRY

NOTIFY_CHUNK = 100
RECHECK = timedelta(hours=1)  # objections open after the period: asked again at least hourly
# Patches (workflow.patched): recorded histories of older runs replay without them.
NEXT_LIST = "publication-next-list"  # enlisted after publication: kept for the next list
NOTICE_PERIOD = "publication-notice-period"  # wait for the period's end and the objections


@workflow.defn(name=PUBLICATION_BATCH)
class PublicationBatch:
    @workflow.init
    def __init__(self, state: PublicationBatchState) -> None:
        # Set before any handler runs: the batch is started by signal-with-start (publication.enlist),
        # and the start's signal is handled before run() begins.
        self.state: PublicationBatchState = state
        self.entries: dict[str, PublicationEntry] = {e.application_no: e for e in state.entries}
        self.next_entries: dict[str, PublicationEntry] = {e.application_no: e for e in state.next_entries}
        self._objections_changed = False

    @workflow.run
    async def run(self, state: PublicationBatchState) -> PublicationSummary:
        await workflow.wait_condition(lambda: self.state.notice is not None or self._history_is_long())
        if self.state.notice is None:
            await self._continue_as_new()
        notice = self.state.notice
        assert notice is not None
        if self.state.notified == 0 and self.state.final is None:
            await workflow.execute_activity(
                ACTIVITY_RECORD_NOTICE,
                RecordNotice(program=state.program, notice=notice, entries=self._ordered()),
                task_queue=task_queues.REVIEW,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RECORD_RETRY,
            )
        with_period = notice.period_ends_at is not None and workflow.patched(NOTICE_PERIOD)
        if with_period and self.state.final is None:
            await self._until_final(notice)
        targets = self._targets()
        while self.state.notified < len(targets):
            chunk = targets[self.state.notified : self.state.notified + NOTIFY_CHUNK]
            final = self.state.final
            await workflow.execute_activity(
                ACTIVITY_NOTIFY_PUBLISHED,
                NotifyPublished(
                    notice=notice,
                    workflow_ids=tuple(e.workflow_id for e, _ in chunk),
                    final_entries=tuple(e for e, removed in chunk if not removed) if final is not None else (),
                    removed=tuple(e.workflow_id for e, removed in chunk if removed),
                ),
                task_queue=task_queues.REVIEW,
                start_to_close_timeout=timedelta(minutes=5),
                # It heartbeats after each lifecycle told: a review that died mid-chunk is noticed in
                # 30 s, not 5 minutes (those already told ignore the repeat).
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
            self.state = self.state.model_copy(update={"notified": self.state.notified + len(chunk)})
            if self._history_is_long():
                await self._continue_as_new()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.next_entries and workflow.patched(NEXT_LIST):
            # The late ones are the next batch's list: same workflow id, a fresh history.
            workflow.continue_as_new(
                PublicationBatchState(
                    program=self.state.program,
                    entries=tuple(sorted(self.next_entries.values(), key=lambda e: e.application_no)),
                    max_history_events=self.state.max_history_events,
                    batch_no=self.state.batch_no + 1,
                )
            )
        return self.summary()

    async def _until_final(self, notice: PublishNotice) -> None:
        """Wait until the notice period ends (a durable timer), then ask review whether objections
        are open; while some are, ask again when one is decided (signal) or hourly. The list is
        final when none is open: review answers with its latest version."""
        assert notice.period_ends_at is not None
        while True:
            remaining = notice.period_ends_at - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(self._history_is_long, timeout=remaining)
                except asyncio.TimeoutError:
                    pass
                else:
                    await self._continue_as_new()
                continue
            closed = await workflow.execute_activity(
                ACTIVITY_CLOSE_NOTICE,
                CloseNotice(program=self.state.program, notice_id=notice.notice_id),
                task_queue=task_queues.REVIEW,
                result_type=NoticeClosed,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RECORD_RETRY,
            )
            if closed.open_objections == 0:
                self.state = self.state.model_copy(update={"final": closed})
                return
            self._objections_changed = False
            try:
                await workflow.wait_condition(lambda: self._objections_changed or self._history_is_long(), timeout=RECHECK)
            except asyncio.TimeoutError:
                pass
            if self._history_is_long():
                await self._continue_as_new()

    def _targets(self) -> tuple[tuple[PublicationEntry, bool], ...]:
        """Who is told, in a stable order: without a period, every entry; with one, the final list's
        entries, then those an upheld objection removed."""
        final = self.state.final
        if final is None:
            return tuple((e, False) for e in self._ordered())
        kept = tuple((e, False) for e in sorted(final.entries, key=lambda e: e.application_no))
        gone = tuple((self.entries[no], True) for no in sorted(final.removed) if no in self.entries)
        return kept + gone

    def _ordered(self) -> tuple[PublicationEntry, ...]:
        return tuple(sorted(self.entries.values(), key=lambda e: e.application_no))

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self.state.max_history_events

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self.state.model_copy(
                update={"entries": self._ordered(), "next_entries": tuple(sorted(self.next_entries.values(), key=lambda e: e.application_no))}
            )
        )

    # --- handlers ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_ENLIST)
    def enlist(self, request: EnlistForPublication) -> None:
        """Idempotent: an application is on the list once, with its latest award."""
        entry = PublicationEntry(
            application_no=request.application_no, workflow_id=request.workflow_id, award_fen=request.award_fen, tier=request.tier
        )
        if self.state.notice is not None:
            if request.application_no in self.entries:
                return  # a repeated enlisting of an application already on this notice
            if workflow.patched(NEXT_LIST):  # never dropped: on the next batch's list
                self.next_entries[request.application_no] = entry
                return
            workflow.logger.warning("enlisted after publication: not on this notice", extra={"application_no": request.application_no})
            return
        self.entries[request.application_no] = entry

    @workflow.signal(name=SIGNAL_DELIST)
    def delist(self, application_no: str) -> None:
        """A withdrawal before publication takes the application off the list."""
        if self.state.notice is None:
            self.entries.pop(application_no, None)
        else:
            self.next_entries.pop(application_no, None)

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
            waiting_for_next=len(self.next_entries),
            period_ends_at=self.state.notice.period_ends_at if self.state.notice else None,
            final=self.state.final is not None,
        )

    @workflow.query(name=QUERY_ENTRIES)
    def entries_query(self) -> tuple[PublicationEntry, ...]:
        return self._ordered()

    @workflow.signal(name=SIGNAL_OBJECTIONS_CHANGED)
    def objections_changed(self) -> None:
        """Review decided an objection: if the period is over, check again now."""
        self._objections_changed = True
