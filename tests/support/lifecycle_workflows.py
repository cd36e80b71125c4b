"""Small workflows that drive the services' lifecycle activities from tests (not platform workflows)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.contracts.lifecycle import ACTIVITY_RECORD_STATE_CHANGE, StateChange


@workflow.defn(name="TestRecordStateChangeTwice")
class RecordStateChangeTwiceWorkflow:
    """Runs intake's `lifecycle.record_state_change` twice with the same input, as a retry would."""

    @workflow.run
    async def run(self, change: StateChange) -> None:
        for _ in range(2):
            await workflow.execute_activity(
                ACTIVITY_RECORD_STATE_CHANGE,
                change,
                task_queue=task_queues.INTAKE,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
