"""The public notice (公示) paths added by issue 13, under time skipping:

- a Shenzhen application is enlisted for publication like a Longgang one (it used to wait forever);
- the final list tells a lifecycle its final entry: an amended award, or removal by an upheld objection;
- the batch waits out the notice period (a durable timer), waits while objections are open, and an
  application enlisted after publication reaches the next list (the batch continues as new with it).

Histories are kept (RECORD_HISTORIES=1) under new names, so the older recordings keep replaying the
code paths of runs started before the patches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowContinuedAsNewError
from temporalio.worker import Worker

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import (
    ACTIVITY_CLOSE_NOTICE,
    ACTIVITY_NOTIFY_PUBLISHED,
    ACTIVITY_RECORD_NOTICE,
    SIGNAL_PUBLISHED,
    UPDATE_DECIDE_FORMAL_PRE_REVIEW,
    UPDATE_RECORD_EXPERT_SCORING,
    UPDATE_RECORD_TIERING,
    CloseNotice,
    DecideFormalPreReview,
    EnlistForPublication,
    NoticeClosed,
    NoticeKind,
    NotifyPublished,
    PublicationBatchState,
    PublicationEntry,
    PublicationSummary,
    PublishNotice,
    RecordExpertScoring,
    RecordNotice,
    RecordPublication,
    RecordTiering,
    Status,
)
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from tests.support.time_skipping import time_skipping_at
from tests.workflows.harness import ADMIN, PRE_REVIEWER, REVIEW_SERVICE, keep_history, lifecycle_env, sh
from workflows.publication.workflows import PublicationBatch

SZ = "SZ-GOVAI-SCENARIO-2025"
LG = "LG-AI-MODEL-2025"
APP = "SZ2025-004600"


async def to_tiered(h, handle) -> None:
    await h.reach(handle, Status.FORMAL_PRE_REVIEW)
    await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
    await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
        actor=REVIEW_SERVICE, practicality=90, innovation=85, replicability=80))
    accepted = await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=REVIEW_SERVICE, tier=2, award_fen=250_000_000))
    assert accepted.status is Status.AWAITING_PUBLICATION
    for _ in range(200):  # the enlisting activity runs right after the transition
        if h.services.enlisted:
            break
        await asyncio.sleep(0.05)


async def test_a_shenzhen_application_is_enlisted_and_published_with_the_final_lists_amount() -> None:
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await to_tiered(h, handle)
        assert [(e.application_no, e.tier, e.award_fen) for e in h.services.enlisted] == [(APP, 2, 250_000_000)]
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(
            actor=ADMIN, notice_id="GS-SZ-2025-01", published_at=sh("2026-01-20 09:00"), award_fen=200_000_000, tier=2))
        result = await handle.result()
        await h.keep_history(handle, "sz_enlisted_published_with_amended_award")
    assert (result.status, result.award_fen, result.tier) == (Status.PUBLISHED, 200_000_000, 2)
    published = h.services.changes[-1]
    assert (published.notice_kind, published.award_fen, published.notice_id) == (NoticeKind.PUBLISHED, 200_000_000, "GS-SZ-2025-01")


async def test_an_upheld_objection_that_removes_the_entry_ends_the_application_rejected() -> None:
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await to_tiered(h, handle)
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(
            actor=ADMIN, notice_id="GS-SZ-2025-01", published_at=sh("2026-01-20 09:00"), removed=True))
        result = await handle.result()
        await h.keep_history(handle, "sz_removed_from_notice_by_objection")
    assert result.status is Status.REJECTED
    last = h.services.changes[-1]
    assert last.notice_kind is NoticeKind.REJECTED and last.reasons == ("公示期间异议成立，取消拟资助",)
    assert last.reason == "removed_from_notice:GS-SZ-2025-01"


@dataclass
class StandInReview:
    notices: list[RecordNotice] = field(default_factory=list)
    told: list[NotifyPublished] = field(default_factory=list)
    closes: list[CloseNotice] = field(default_factory=list)
    open_objections: int = 1

    @activity.defn(name=ACTIVITY_RECORD_NOTICE)
    async def record_notice(self, request: RecordNotice) -> None:
        self.notices.append(request)

    @activity.defn(name=ACTIVITY_NOTIFY_PUBLISHED)
    async def notify_published(self, request: NotifyPublished) -> None:
        self.told.append(request)

    @activity.defn(name=ACTIVITY_CLOSE_NOTICE)
    async def close_notice(self, request: CloseNotice) -> NoticeClosed:
        """The first time an objection is still open; then the final list: entry 2 amended by an
        upheld objection, entry 3 removed."""
        self.closes.append(request)
        if len(self.closes) == 1:
            return NoticeClosed(open_objections=1)
        return NoticeClosed(open_objections=0, final_version=2, entries=(entry(1).model_copy(), entry(2, award=900_000)),
                            removed=("LG2025-000003",))


def enlisting(n: int) -> EnlistForPublication:
    no = f"LG2025-{n:06d}"
    return EnlistForPublication(program=LG, application_no=no, workflow_id=f"Application:{LG}:{no}", award_fen=1_000_000 + n)


def entry(n: int, award: int | None = None) -> PublicationEntry:
    e = enlisting(n)
    return PublicationEntry(application_no=e.application_no, workflow_id=e.workflow_id, award_fen=award or e.award_fen)


async def test_the_batch_waits_out_the_period_and_its_objections_and_a_late_application_reaches_the_next_list() -> None:
    review = StandInReview()
    published_at = sh("2026-01-20 09:00")
    period_end = sh("2026-01-28 17:30")
    async with time_skipping_at(published_at) as env:
        workflow_id = publication_batch_workflow_id(LG)
        async with (
            Worker(env.client, task_queue=task_queues.WORKFLOWS, workflows=[PublicationBatch]),
            Worker(env.client, task_queue=task_queues.REVIEW,
                   activities=[review.record_notice, review.notify_published, review.close_notice]),
        ):
            first = await env.client.start_workflow(
                PublicationBatch.run, PublicationBatchState(program=LG), id=workflow_id, task_queue=task_queues.WORKFLOWS)
            for n in (1, 2, 3):
                await first.signal(PublicationBatch.enlist, enlisting(n))
            summary = await first.execute_update(PublicationBatch.publish, PublishNotice(
                actor=ADMIN, notice_id="GS-LG-2026-01", published_at=published_at,
                period_starts_at=published_at, period_ends_at=period_end))
            assert summary.entries == 3 and summary.period_ends_at == period_end and not summary.final
            await first.signal(PublicationBatch.enlist, enlisting(4))  # late: the next list
            await first.signal(PublicationBatch.enlist, enlisting(2))  # again: already on this one
            waiting = await first.query(PublicationBatch.summary)
            assert waiting.waiting_for_next == 1 and waiting.notified == 0
            assert not review.told  # nobody is told during the period

            with pytest.raises(WorkflowContinuedAsNewError):  # final, then the next batch with the late one
                await asyncio.wait_for(first.result(follow_runs=False), timeout=60)
            # The run that waited out the period (`first` without its run id would be the next list's run).
            await keep_history(env.client.get_workflow_handle(workflow_id, run_id=first.result_run_id),
                               "publication_batch_period_objection_next_list")
            now = await env.get_current_time()
            assert now >= period_end + timedelta(hours=1)  # the period, then an hour's recheck

            nxt = env.client.get_workflow_handle(workflow_id, result_type=PublicationSummary)
            next_summary = await nxt.query(PublicationBatch.summary)
            assert (next_summary.entries, next_summary.notice_id, next_summary.waiting_for_next) == (1, None, 0)
            assert [e.application_no for e in await nxt.query(PublicationBatch.entries_query)] == ["LG2025-000004"]

    assert [c.notice_id for c in review.closes] == ["GS-LG-2026-01", "GS-LG-2026-01"]
    assert len(review.notices) == 1 and [e.application_no for e in review.notices[0].entries] == [
        "LG2025-000001", "LG2025-000002", "LG2025-000003"]
    told = review.told[0]
    assert told.workflow_ids == (entry(1).workflow_id, entry(2).workflow_id, entry(3).workflow_id)
    assert [(e.application_no, e.award_fen) for e in told.final_entries] == [("LG2025-000001", 1_000_001), ("LG2025-000002", 900_000)]
    assert told.removed == (entry(3).workflow_id,)
