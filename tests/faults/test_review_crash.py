"""Review killed between the workflow's accept of a decision and review's own commit (issue 14,
found by the SIGKILL fault test): the official's client sends the request again with the same
Idempotency-Key and must get the decision's answer, recorded and audited once, not a 409 because
the application has moved on. The update id is made from the key (`api:<key>`), so the workflow
still has the answer.
Before the fix the repeat was refused (`wrong_state: the application is rejected`) and the
decision was never recorded in review nor audited."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from subsidy.contracts import topics
from subsidy.failpoints import EXIT_CODE
from tests.support.fault_world import AUDITOR, LG_ONLINE, SERVICES, Driver, Figures, Platform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


async def test_a_decision_whose_answer_was_lost_to_a_review_crash_is_answered_and_recorded_once_when_repeated(stack, tmp_path: Path) -> None:
    platform = Platform(stack.env, tmp_path)
    platform.start()
    try:
        await platform.healthy()
        async with one_longgang_application(platform, stack, "review crash") as (driver, http, app):
            await driver.reach(app, "online_review")
            await restart_review(platform, failpoint="review.after_update")
            key = f"fault-{uuid.uuid4().hex}"
            url = driver.url("review", f"/api/applications/{app.no}/decisions")
            headers = {"authorization": f"Bearer {driver.token(LG_ONLINE)}", "idempotency-key": key}
            body = {"decision": "reject", "reasons": ["合同材料不符合申报条件"]}
            with pytest.raises(httpx.TransportError):  # no answer: review died after the workflow took it
                await http.post(url, json=body, headers=headers)
            assert await platform.exited("review", 60) == EXIT_CODE
            await restart_review(platform)
            await driver.reach(app, "rejected")  # review's read model has caught up: the application moved on
            repeated = await http.post(url, json=body, headers=headers)
            again = await http.post(url, json=body, headers=headers)
            other_key = {**headers, "idempotency-key": f"fault-{uuid.uuid4().hex}"}
            started = time.monotonic()
            new_request = await http.post(url, json=body, headers=other_key)
            print(f"a refusal with a new key took {time.monotonic() - started:.2f} s", flush=True)
            audit = await http.get(driver.url("review", "/api/audit"), params={"application_no": app.no, "page_size": 100},
                                   headers={"authorization": f"Bearer {driver.token(AUDITOR)}"})
    finally:
        codes = await asyncio.to_thread(platform.stop)
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["status"] == "rejected"
    assert again.status_code == 200 and again.json() == repeated.json()  # the stored answer from now on
    assert new_request.status_code == 409, new_request.text  # another request is refused as before
    assert audit.status_code == 200, audit.text
    outcomes = [(item["subject"], item["outcome"]) for item in audit.json()["items"]]
    assert outcomes.count((LG_ONLINE.subject, "accepted")) == 1, outcomes
    assert codes == {name: 0 for name in SERVICES}, codes


async def test_a_pre_check_lost_with_review_runs_again_when_its_heartbeat_stops(stack, tmp_path: Path) -> None:
    """Review dies with a Longgang pre-check in hand (the fault level's SIGKILL once waited two
    minutes for one): the activity heartbeats, so Temporal gives it to the restarted review when the
    heartbeats stop (30 s), not after its two-minute start-to-close. Asserted on the history: the
    second attempt's cause is a heartbeat timeout."""
    from temporalio.api.enums.v1 import TimeoutType

    from subsidy.contracts.workflow_ids import application_workflow_id
    from subsidy.temporal import connect

    platform = Platform(stack.env, tmp_path)
    platform.start()
    try:
        await platform.healthy()
        await restart_review(platform, failpoint="review.in_pre_checks")
        async with one_longgang_application(platform, stack, "pre-check crash") as (driver, _http, app):
            assert await platform.exited("review", 120) == EXIT_CODE  # died in the checks
            await restart_review(platform)
            await driver.reach(app, "online_review")
        client = await connect(stack.temporal, stack.env["TEMPORAL_NAMESPACE"])
        history = await client.get_workflow_handle(application_workflow_id("LG-AI-MODEL-2025", app.no)).fetch_history()
    finally:
        codes = await asyncio.to_thread(platform.stop)
    retried = [e.activity_task_started_event_attributes for e in history.events
               if e.HasField("activity_task_started_event_attributes") and e.activity_task_started_event_attributes.attempt > 1]
    assert len(retried) == 1, retried
    assert retried[0].last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, retried[0]
    assert codes == {name: 0 for name in SERVICES}, codes


@asynccontextmanager
async def one_longgang_application(platform: Platform, stack, name: str) -> AsyncIterator[tuple[Driver, httpx.AsyncClient, Any]]:
    """A Longgang application on its way to rejection, submitted by its portal, with the driver
    watching review's read model; yields the driver, its HTTP client and the application."""
    driver = Driver(platform, stack.env, stack.run_dir, stack.database_url, Figures(name), step_timeout=300)
    (app,) = [a for a in driver.plan(8) if a.path == "lg_reject"]
    async with httpx.AsyncClient(timeout=60) as http:
        driver.http = http
        watching = asyncio.create_task(driver._watch())
        try:
            await driver.portal(topics.LONGGANG_APPLICATION_SUBMITTED, app, **driver._lg_facts(app))
            yield driver, http, app
        finally:
            watching.cancel()


async def restart_review(platform: Platform, *, failpoint: str | None = None) -> None:
    """Review started again (killed first if it runs), with `failpoint` armed if given."""
    platform.kill(("review",))
    platform.start(("review",), env={"SUBSIDY_FAILPOINTS": failpoint} if failpoint else None)
    await platform.healthy(("review",))
