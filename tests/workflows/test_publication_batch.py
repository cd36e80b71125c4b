"""The publication batch: a long list, continue-as-new along the way, then publication in chunks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowContinuedAsNewError, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import (
    ACTIVITY_NOTIFY_PUBLISHED,
    ACTIVITY_RECORD_NOTICE,
    EnlistForPublication,
    NotifyPublished,
    PublicationBatchState,
    PublicationSummary,
    PublishNotice,
    RecordNotice,
)
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from tests.support.time_skipping import time_skipping_at
from tests.workflows.harness import ADMIN, ONLINE_REVIEWER, keep_history, sh
from workflows.publication.workflows import NOTIFY_CHUNK, PublicationBatch

LG = "LG-AI-MODEL-2025"


@dataclass
class StandInPublication:
    notices: list[RecordNotice] = field(default_factory=list)
    told: list[str] = field(default_factory=list)

    @activity.defn(name=ACTIVITY_RECORD_NOTICE)
    async def record_notice(self, request: RecordNotice) -> None:
        self.notices.append(request)

    @activity.defn(name=ACTIVITY_NOTIFY_PUBLISHED)
    async def notify_published(self, request: NotifyPublished) -> None:
        self.told.extend(request.workflow_ids)


async def to_current_run(call) -> object:
    """The Java time-skipping server answers a signal or update that reaches a run in the very moment
    it continues as new with "Completed workflow" / "update not found" (the real server fails the
    closing run's completion and redelivers). Retried here, as a client of that server must."""
    for _ in range(100):
        try:
            return await call()
        except RPCError as exc:
            if "Completed workflow" not in exc.message and "not found" not in exc.message:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("the batch never settled on a current run")


def entry(n: int) -> EnlistForPublication:
    no = f"LG2025-{n:06d}"
    return EnlistForPublication(program=LG, application_no=no, workflow_id=f"Application:{LG}:{no}", award_fen=1_000_000 + n)


async def test_a_long_list_continues_as_new_and_every_application_is_told_once() -> None:
    """The list arrives before any worker runs (the signals wait in the history), so the first run
    sees a long history, continues as new once with every entry, and the new run publishes.
    (Signals racing a continue-as-new are answered "Completed workflow" by the Java test server,
    which the real server redirects; this test keeps clear of that race, see `to_current_run`.)"""
    stand_in = StandInPublication()
    count = NOTIFY_CHUNK + 50
    async with time_skipping_at(sh("2026-01-20 09:00")) as env:
        workflow_id = publication_batch_workflow_id(LG)
        first = await env.client.start_workflow(
            PublicationBatch.run, PublicationBatchState(program=LG, max_history_events=40),
            id=workflow_id, task_queue=task_queues.WORKFLOWS,
        )
        for n in [*range(1, count + 1), 7]:  # 7 twice: on the list once
            await first.signal(PublicationBatch.enlist, entry(n))
        await first.signal(PublicationBatch.delist, "LG2025-000003")

        async with (
            Worker(env.client, task_queue=task_queues.WORKFLOWS, workflows=[PublicationBatch]),
            Worker(env.client, task_queue=task_queues.REVIEW, activities=[stand_in.record_notice, stand_in.notify_published]),
        ):
            first_run = env.client.get_workflow_handle(workflow_id, run_id=first.result_run_id)
            with pytest.raises(WorkflowContinuedAsNewError):  # the long history made it continue as new
                await asyncio.wait_for(first_run.result(follow_runs=False), timeout=60)
            latest = env.client.get_workflow_handle(workflow_id)
            with pytest.raises(WorkflowUpdateFailedError):
                await to_current_run(lambda: latest.execute_update(PublicationBatch.publish, PublishNotice(
                    actor=ONLINE_REVIEWER, notice_id="GS-LG-2025-01", published_at=sh("2026-01-20 09:00"))))
            summary = await to_current_run(lambda: latest.execute_update(PublicationBatch.publish, PublishNotice(
                actor=ADMIN, notice_id="GS-LG-2025-01", published_at=sh("2026-01-20 09:00"))))  # the program's administrator
            assert summary.entries == count - 1 and summary.notice_id == "GS-LG-2025-01"
            result = await env.client.get_workflow_handle(workflow_id, result_type=PublicationSummary).result()

            first_history = await first_run.fetch_history()
            assert EventType.Name(first_history.events[-1].event_type) == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
            await keep_history(first_run, "publication_batch_first_run")

    assert result.entries == count - 1 and result.notified == count - 1
    assert result.total_award_fen == sum(1_000_000 + n for n in range(1, count + 1) if n != 3)
    assert len(stand_in.notices) == 1 and len(stand_in.notices[0].entries) == count - 1
    assert sorted(stand_in.told) == sorted(entry(n).workflow_id for n in range(1, count + 1) if n != 3)
