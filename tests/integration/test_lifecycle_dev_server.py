"""A lifecycle on the real stack: the Temporal dev server, the intake service as a real process
recording each transition (PostgreSQL + outbox), the state-changed events on Kafka."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from temporalio.client import WorkflowUpdateFailedError

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import (
    UPDATE_DECIDE_BACK_OFFICE_REVIEW,
    UPDATE_DECIDE_ONLINE_REVIEW,
    DecideBackOfficeReview,
    DecideOnlineReview,
    StartLifecycle,
    Status,
)
from subsidy.contracts.platform_events import ApplicationStateChanged
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.programs import PROGRAMS
from subsidy.temporal import connect_from_env
from tests.support.processes import running_service
from tests.workflows.harness import BACK_OFFICE_REVIEWER, CLERK, ONLINE_REVIEWER, Harness, StandInServices, sh, workflows_with_stand_in_review

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


async def test_rejected_updates_leave_history_length_unchanged_and_transitions_reach_kafka(stack, tmp_path: Path) -> None:
    application_no = f"LG2025-{uuid.uuid4().int % 1_000_000:06d}"
    client = await connect_from_env(stack.env)
    stand_in = StandInServices()  # review's activities; intake's are the real service below
    h = Harness(env=None, services=stand_in)  # type: ignore[arg-type]

    with running_service("intake", stack.env, tmp_path / "intake.log"):
        async with workflows_with_stand_in_review(client, stand_in):
            handle = await client.start_workflow(
                PROGRAMS[LG].lifecycle,
                StartLifecycle(program=LG, application_no=application_no, version=1, submitted_at=sh("2025-12-09 10:31"),
                               correlation_id=str(uuid.uuid4()), policy=PROGRAMS[LG].policy),
                id=application_workflow_id(LG, application_no),
                task_queue=task_queues.WORKFLOWS,
            )
            await h.reach(handle, Status.ONLINE_REVIEW)
            before = len((await handle.fetch_history()).events) if await h.at_rest(handle) else 0
            for name, command in [
                (UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=CLERK, decision="approve")),  # wrong role
                (UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview(actor=BACK_OFFICE_REVIEWER, decision="approve")),  # wrong state
            ]:
                with pytest.raises(WorkflowUpdateFailedError):
                    await h.update(handle, name, command)
            assert len((await handle.fetch_history()).events) == before  # not a single event

            accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
            assert accepted.status is Status.APPROVED_ONLINE
            await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
            await h.at_rest(handle)
            await handle.terminate("test over")

    expected = ["pre_check", "online_review", "approved_online", "awaiting_gd_submission"]
    conn = await asyncpg.connect(stack.database_url)
    try:
        status = await conn.fetchval("SELECT status FROM intake.applications WHERE application_no = $1", application_no)
        rows = await conn.fetch(
            "SELECT to_status FROM intake.state_changes WHERE application_no = $1 ORDER BY occurred_at", application_no)
    finally:
        await conn.close()
    assert status == "awaiting_gd_submission"
    assert [r["to_status"] for r in rows] == expected

    consumer = AIOKafkaConsumer(APPLICATION_STATE_CHANGED, bootstrap_servers=stack.kafka,
                                group_id=f"t-{uuid.uuid4()}", auto_offset_reset="earliest")
    await consumer.start()
    seen: list[ApplicationStateChanged] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(seen) < len(expected) and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.key == application_no.encode():
                        seen.append(ApplicationStateChanged.model_validate_json(record.value))
    finally:
        await consumer.stop()
    assert [e.to_state for e in seen] == expected  # in order: one partition per application
    # The typed fields the workflow set travel through intake's activity and outbox into the event.
    assert [(e.contract_revision, e.notice_kind, e.awaiting_step) for e in seen] == [
        (2, None, None), (2, None, "lg_online_review"), (2, "online_approved", None), (2, None, None)]
    assert seen[-1].form_id == f"WF-{application_no}-v1"
