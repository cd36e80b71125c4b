"""Review's automatic pre-checks on the real stack: intake records a Longgang submission, its facts
reach review over Kafka (without the people in them), and the lifecycle workflow, run by the real
workflow code, gets review's findings from the real review service before online review."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from temporalio.worker import Worker

from subsidy.contracts import task_queues, topics
from subsidy.contracts.lifecycle import Status
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.temporal import connect_from_env
from tests.fixtures import events
from tests.support.intake_world import application_no, event
from tests.support.processes import assert_no_personal_data, running_service
from tests.workflows.harness import WORKFLOWS, Harness

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


async def until(fetch, timeout: float = 60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await fetch()) is None:
        assert loop.time() < deadline, "not in time"
        await asyncio.sleep(0.2)
    return value


async def test_a_longgang_submission_is_pre_checked_by_review_before_online_review(stack, tmp_path: Path) -> None:
    first, second = application_no("LG"), application_no("LG")  # the same enterprise applies twice
    client = await connect_from_env(stack.env)
    database = await asyncpg.connect(stack.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)
    await producer.start()
    event_ids: dict[str, str] = {}
    try:
        with (
            running_service("intake", stack.env, tmp_path / "intake.log"),
            running_service("review", stack.env, tmp_path / "review.log"),
        ):
            async with Worker(client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS):
                h = Harness(env=None, services=None)  # type: ignore[arg-type]
                handles = []
                for app in (first, second):  # one after the other: the second's checks see the first
                    topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
                    event_ids[app] = submitted["id"]
                    await producer.send_and_wait(topic, events.encode(submitted), key=app.encode())
                    handles.append(client.get_workflow_handle(application_workflow_id(LG, app)))
                    await h.reach(handles[-1], Status.ONLINE_REVIEW, timeout=60)
                    await h.at_rest(handles[-1])
                reasons = {
                    app: await until(lambda app=app: database.fetchval(
                        """SELECT reason FROM intake.state_changes
                           WHERE application_no = $1 AND to_status = 'online_review'""", app))
                    for app in (first, second)
                }
                facts = json.loads(await database.fetchval(
                    "SELECT facts::text FROM review.submissions WHERE application_no = $1 AND version = 1", first))
                for handle in handles:
                    await handle.terminate("test over")
    finally:
        await producer.stop()
        await database.close()

    # The example uploads one material of the list; the enterprise's earlier application makes the
    # second a duplicate (the first may meet applications of earlier tests: same example enterprise).
    assert reasons[first].startswith("pre_checks_failed:") and reasons[first].endswith("materials_complete")
    assert reasons[second] == "pre_checks_failed:no_duplicate_application,materials_complete"
    assert facts["applicant"]["industry_code"] == "6513" and facts["model_contracts"][0]["contract_no"] == "HT-2025-018"
    assert "legal_representative" not in facts["applicant"] and "contact" not in facts["applicant"]
    rendered = json.dumps(facts, ensure_ascii=False)
    assert all(raw not in rendered for raw in events.PERSONAL_VALUES)
    assert_no_personal_data(tmp_path / "review.log")

    # Every line about an application is bound to it and to the correlation id its portal event
    # started (STYLE.md 6): in intake, in intake's state-change activity, and in review's consumer.
    intake_lines = log_lines(tmp_path / "intake.log", first)
    assert {line["event"] for line in intake_lines} >= {"event applied", "state change recorded"}
    assert {line.get("correlation_id") for line in intake_lines} == {event_ids[first]}
    assert {line.get("correlation_id") for line in log_lines(tmp_path / "review.log", first)} == {event_ids[first]}


def log_lines(log_file: Path, application: str) -> list[dict]:
    lines = []
    for text in log_file.read_text().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if line.get("application_no") == application:
            lines.append(line)
    assert lines, f"no line of {log_file.name} bound to {application}"
    return lines


async def test_the_pre_checks_wait_for_a_submission_still_on_its_way_instead_of_failing(stack) -> None:
    """The workflow can ask for the pre-checks before intake's submission-recorded event has reached
    review: the activity waits for it (a failure was a busy retry through the Temporal server, and a
    wait of 1, 2, 4 s); a submission that never comes still fails retryably once the wait is over."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from services.review.rules.activities import PreCheckActivities
    from subsidy.contracts.lifecycle import RunPreChecks

    late, never = application_no("LG"), application_no("LG")
    facts = events.longgang_submitted()
    facts["applicant"] = {k: v for k, v in facts["applicant"].items() if k not in ("legal_representative", "contact")}
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=3, server_settings={"search_path": "review,public"})
    try:
        async def arrives_later() -> None:
            await asyncio.sleep(1.0)
            await pool.execute(
                """INSERT INTO submissions (application_no, version, program, applicant_uscc, submitted_at, facts)
                   VALUES ($1, 1, $2, $3, $4, $5::jsonb)""",
                late, LG, events.APPLICANT_USCC, datetime(2025, 12, 9, 10, 31, tzinfo=ZoneInfo("Asia/Shanghai")),
                json.dumps(facts, ensure_ascii=False))

        arrival = asyncio.create_task(arrives_later())
        report = await ActivityEnvironment().run(PreCheckActivities(pool).run_pre_checks,
                                                 RunPreChecks(program=LG, application_no=late, version=1))
        await arrival
        stored = await pool.fetchval("SELECT count(*) FROM pre_check_findings WHERE application_no = $1", late)
        with pytest.raises(ApplicationError, match="has not reached review yet") as failed:
            await ActivityEnvironment().run(PreCheckActivities(pool, submission_wait_s=0.5).run_pre_checks,
                                            RunPreChecks(program=LG, application_no=never, version=1))
    finally:
        await pool.close()

    assert {f.rule for f in report.findings} >= {"materials_complete"} and stored == len(report.findings)
    assert not failed.value.non_retryable
