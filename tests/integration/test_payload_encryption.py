"""Temporal payloads encrypted on the real stack (issue 14, defect 8): the embedded stack gives
every process the same TEMPORAL_PAYLOAD_KEYS; the dev server stores only ciphertext, while the
platform runs as before (a lifecycle started, an official's decision applied, the transition
recorded by the intake service, a process of its own that opens the activity's input)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview, LifecycleStatus, StartLifecycle, Status
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.payload_codec import ENCODING
from subsidy.programs import PROGRAMS
from subsidy.temporal import connect_from_env
from tests.support.processes import running_service
from tests.workflows.harness import ONLINE_REVIEWER, Harness, StandInServices, sh, workflows_with_stand_in_review

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


async def test_the_dev_server_stores_only_ciphertext_and_the_platform_still_runs(stack, tmp_path: Path) -> None:
    assert stack.env.get("TEMPORAL_PAYLOAD_KEYS"), "the embedded stack gives every process payload keys"
    marker = f"MARKER-{uuid.uuid4().hex}"
    application_no = f"LG2025-{uuid.uuid4().int % 1_000_000:06d}"
    client = await connect_from_env(stack.env)
    stand_in = StandInServices()
    h = Harness(env=None, services=stand_in)  # type: ignore[arg-type]

    with running_service("intake", stack.env, tmp_path / "intake.log"):
        async with workflows_with_stand_in_review(client, stand_in):
            handle = await client.start_workflow(
                PROGRAMS[LG].lifecycle,
                StartLifecycle(program=LG, application_no=application_no, version=1, submitted_at=sh("2025-12-09 10:31"),
                               correlation_id=marker, policy=PROGRAMS[LG].policy),
                id=application_workflow_id(LG, application_no),
                task_queue=task_queues.WORKFLOWS,
                result_type=LifecycleStatus,
            )
            await h.reach(handle, Status.ONLINE_REVIEW)
            accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW,
                                      DecideOnlineReview(actor=ONLINE_REVIEWER, decision="reject", reasons=(f"不符合条件 {marker}",)))
            assert accepted.status is Status.REJECTED
            final = await handle.result()
            assert final.status is Status.REJECTED

    # What the server holds, read by a client without the keys (as the UI or a database dump would).
    plain = await Client.connect(stack.temporal, namespace=stack.env["TEMPORAL_NAMESPACE"])
    history = await plain.get_workflow_handle(application_workflow_id(LG, application_no)).fetch_history()
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert ENCODING in stored
    assert marker.encode() not in stored and "不符合条件".encode() not in stored and application_no.encode() in stored  # the id only

    # The intake service (its own process, the stack's keys) opened the activity's input and recorded it.
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch("SELECT to_status FROM intake.state_changes WHERE application_no = $1", application_no)
    finally:
        await conn.close()
    assert "rejected" in [r["to_status"] for r in rows]
