"""Workflows on the real Temporal dev server, including across a restart of the server."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from deploy.embedded import stack as embedded_stack
from tests.support.smoke_workflows import Greeting, TwoStepWorkflow, greet

pytestmark = pytest.mark.integration


async def test_a_workflow_with_an_activity_completes(temporal_client: Client) -> None:
    queue = f"smoke-{uuid.uuid4()}"
    async with Worker(temporal_client, task_queue=queue, workflows=[TwoStepWorkflow], activities=[greet]):
        handle = await temporal_client.start_workflow(
            TwoStepWorkflow.run, Greeting("龙岗"), id=f"smoke-{uuid.uuid4()}", task_queue=queue
        )
        await handle.signal(TwoStepWorkflow.go_on)
        assert await handle.result() == ["hello 龙岗", "hello 龙岗 again"]


async def test_a_workflow_survives_a_restart_of_the_dev_server(stack) -> None:
    queue = f"smoke-{uuid.uuid4()}"
    workflow_id = f"smoke-restart-{uuid.uuid4()}"
    client = await Client.connect(stack.temporal)
    async with Worker(client, task_queue=queue, workflows=[TwoStepWorkflow], activities=[greet]):
        handle = await client.start_workflow(TwoStepWorkflow.run, Greeting("深圳"), id=workflow_id, task_queue=queue)
        assert await handle.query(TwoStepWorkflow.waiting) is True  # first activity done, now waiting

    embedded_stack.stop_component("temporal", stack.run_dir)
    embedded_stack.up(stack.run_dir)  # starts it again on the same port, from its database file

    client = await Client.connect(stack.temporal)
    async with Worker(client, task_queue=queue, workflows=[TwoStepWorkflow], activities=[greet]):
        handle = client.get_workflow_handle(workflow_id)
        await handle.signal(TwoStepWorkflow.go_on)
        assert await handle.result() == ["hello 深圳", "hello 深圳 again"]
