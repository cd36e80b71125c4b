"""Review's task read model from the events themselves, on the real stack: a state change opens
the step's task once however often it is delivered, leaving the step closes it in the actor's
name, an older change delivered late does not move the application back, and notify's phone
task opens the phone step once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, PHONE_TASK_CREATED
from tests.support.intake_world import application_no
from tests.support.processes import running_service
from tests.support.waiting import until as eventually

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


def change(app: str, from_state: str | None, to_state: str, at: datetime, *, actor: str = "system:lifecycle",
           deadline: datetime | None = None, **typed: object) -> dict:
    # Revision 2 without a notice kind: notify (which reads the same topic) has nothing to send for
    # these made-up applications.
    return {"event_id": str(uuid.uuid4()), "program": LG, "application_no": app, "from_state": from_state,
            "to_state": to_state, "reason": "r", "actor": actor, "occurred_at": at.isoformat(),
            "deadline": deadline.isoformat() if deadline else None, "version": 1, "contract_revision": 2, **typed}


async def until(fetch, expect, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await fetch()) != expect:
        assert loop.time() < deadline, f"got {value!r}, expected {expect!r}"
        await asyncio.sleep(0.2)
    return value


async def test_tasks_open_once_close_in_the_actors_name_and_never_go_back(stack, tmp_path: Path) -> None:
    app, phoned = application_no("LG"), application_no("LG")
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    to_review = change(app, "pre_check", "online_review", t0)
    returned = change(app, "online_review", "returned", t0 + timedelta(minutes=1), actor="staff:lg-rev-01")
    late_older = change(app, "submitted", "pre_check", t0 - timedelta(minutes=1))  # delivered last, happened first
    waiting = change(phoned, "back_office_review", "awaiting_sms_delivery", t0, gd_case_no="GD-2025-1215-000456")
    phone = {"event_id": str(uuid.uuid4()), "program": LG, "application_no": phoned, "notice_kind": "back_office_approved",
             "reason": "undelivered: FAILED", "created_at": (t0 + timedelta(minutes=2)).isoformat()}
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)
    await producer.start()
    database = await asyncpg.connect(stack.database_url)

    async def tasks(of: str) -> list[tuple]:
        rows = await database.fetch(
            "SELECT step, role, closed_by, closed_to_status FROM review.tasks WHERE application_no = $1 ORDER BY id", of)
        return [tuple(r) for r in rows]

    async def send(topic: str, key: str, body: dict) -> None:
        await producer.send_and_wait(topic, json.dumps(body).encode(), key=key.encode())

    try:
        with running_service("review", stack.env, tmp_path / "review.log"):
            for _ in range(3):  # delivered three times
                await send(APPLICATION_STATE_CHANGED, app, to_review)
            await until(lambda: tasks(app), [("online_review", "lg_online_reviewer", None, None)])
            await send(APPLICATION_STATE_CHANGED, app, returned)
            await send(APPLICATION_STATE_CHANGED, app, late_older)
            await until(lambda: tasks(app), [("online_review", "lg_online_reviewer", "staff:lg-rev-01", "returned")])
            await until(lambda: database.fetchval("SELECT count(*) FROM review.state_changes WHERE application_no = $1", app), 3)
            status = await database.fetchval("SELECT status FROM review.applications WHERE application_no = $1", app)

            await send(APPLICATION_STATE_CHANGED, phoned, waiting)  # no phone step yet: the SMS may still arrive
            await send(PHONE_TASK_CREATED, phoned, phone)
            await send(PHONE_TASK_CREATED, phoned, phone)
            await until(lambda: tasks(phoned), [("confirm_notice_by_phone", "lg_back_office_reviewer", None, None)])
            # The state change and the phone task travel on different topics: either may come first.
            fields = await eventually(lambda: database.fetchval(
                "SELECT fields::text FROM review.state_changes WHERE event_id = $1", waiting["event_id"]), timeout=30)
    finally:
        await producer.stop()
        await database.close()

    assert status == "returned"  # the late, older change joined the history only
    assert json.loads(fields) == {"contract_revision": 2, "gd_case_no": "GD-2025-1215-000456"}
