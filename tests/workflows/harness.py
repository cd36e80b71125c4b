"""Driving the lifecycle workflows under time skipping.

The services' activities are replaced by stand-ins registered under the same names on the same
task queues (the services' own activity logic is tested against the real servers elsewhere),
except the paper deadline: its stand-in calls the real pure computation of the review service.
Every run's history is kept under tests/workflows/histories/ when RECORD_HISTORIES=1, for the
replay suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from services.review.deadlines.activities import paper_deadline_record
from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import (
    BUSY_REFUSAL,
    ACTIVITY_COMPUTE_PAPER_DEADLINE,
    ACTIVITY_ENLIST_FOR_PUBLICATION,
    ACTIVITY_ISSUE_WATERMARKED_FORM,
    ACTIVITY_RECORD_REMINDER,
    ACTIVITY_RECORD_STATE_CHANGE,
    ACTIVITY_RUN_PRE_CHECKS,
    QUERY_STATUS,
    Actor,
    ComputePaperDeadline,
    DeadlineRecord,
    DecisionAccepted,
    EnlistForPublication,
    IssueWatermarkedForm,
    LifecycleStatus,
    PreCheckFinding,
    PreCheckReport,
    ReminderDue,
    Role,
    RunPreChecks,
    StartLifecycle,
    StateChange,
    Status,
    WatermarkedForm,
)
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.deadlines import WorkingCalendar
from subsidy.programs import PROGRAMS
from tests.support.time_skipping import time_skipping_at
from workflows.lifecycle.longgang import LonggangModelCallLifecycle
from workflows.lifecycle.shenzhen import ShenzhenGovAiScenarioLifecycle
from workflows.publication.workflows import PublicationBatch

SHANGHAI = ZoneInfo("Asia/Shanghai")
HISTORIES = Path(__file__).parent / "histories"
WORKFLOWS = [LonggangModelCallLifecycle, ShenzhenGovAiScenarioLifecycle, PublicationBatch]

# Officials act in the roles the reviewers' API gives them from their verified token (StaffRole values).
ONLINE_REVIEWER = Actor(id="staff:lg-rev-01", role=Role.LG_ONLINE_REVIEWER)
BACK_OFFICE_REVIEWER = Actor(id="staff:lg-bo-01", role=Role.LG_BACK_OFFICE_REVIEWER)
PRE_REVIEWER = Actor(id="staff:sz-pre-01", role=Role.SZ_PRE_REVIEWER)
ADMIN = Actor(id="staff:lg-admin-01", role=Role.PROGRAM_ADMIN)
CLERK = Actor(id="clerk:LG-W03-01", role=Role.WINDOW_CLERK)
SZ_CLERK = Actor(id="clerk:SZ-CCW-02", role=Role.WINDOW_CLERK)
PORTAL = Actor(id="portal:longgang-qyfw", role=Role.PORTAL)
REVIEW_SERVICE = Actor(id="service:review", role=Role.REVIEW_SERVICE)
PUBLISHER = Actor(id="staff:admin-01", role=Role.PUBLICATION)


def sh(text: str) -> datetime:
    """An Asia/Shanghai moment from 'YYYY-MM-DD HH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With RECORD_HISTORIES=1, keep the run's history for the replay suite."""
    if os.environ.get("RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())


@dataclass
class StandInServices:
    """The activities of intake and review, recording what the workflows asked of them."""

    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.from_package)
    changes: list[StateChange] = field(default_factory=list)
    reminders: list[ReminderDue] = field(default_factory=list)
    enlisted: list[EnlistForPublication] = field(default_factory=list)
    pre_check_runs: int = 0
    hold_transition_to: Status | None = None  # recording this transition waits for `release`
    hold_enlisting: bool = False  # enlisting for publication waits for `release` (budget tests)
    hold_deadline: bool = False  # computing the paper deadline waits for `release`
    holding: asyncio.Event = field(default_factory=asyncio.Event)  # set when a held activity waits
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @activity.defn(name=ACTIVITY_RECORD_STATE_CHANGE)
    async def record_state_change(self, change: StateChange) -> None:
        if change.to_status is self.hold_transition_to:
            await self.release.wait()
        if all(c.event_id != change.event_id for c in self.changes):
            self.changes.append(change)

    @activity.defn(name=ACTIVITY_RECORD_REMINDER)
    async def record_reminder(self, reminder: ReminderDue) -> None:
        self.reminders.append(reminder)

    @activity.defn(name=ACTIVITY_COMPUTE_PAPER_DEADLINE)
    async def compute_paper_deadline(self, request: ComputePaperDeadline) -> DeadlineRecord:
        if self.hold_deadline:
            self.holding.set()
            await self.release.wait()
        return paper_deadline_record(request, self.calendar)

    @activity.defn(name=ACTIVITY_RUN_PRE_CHECKS)
    async def run_pre_checks(self, request: RunPreChecks) -> PreCheckReport:
        self.pre_check_runs += 1
        return PreCheckReport(findings=(PreCheckFinding(rule="industry_code", clause="三(二)1", passed=True, detail="6513"),))

    @activity.defn(name=ACTIVITY_ISSUE_WATERMARKED_FORM)
    async def issue_watermarked_form(self, request: IssueWatermarkedForm) -> WatermarkedForm:
        form_id = f"WF-{request.application_no}-v{request.version}"
        return WatermarkedForm(form_id=form_id, sha256=hashlib.sha256(form_id.encode()).hexdigest())

    @activity.defn(name=ACTIVITY_ENLIST_FOR_PUBLICATION)
    async def enlist(self, request: EnlistForPublication) -> None:
        if self.hold_enlisting:
            await self.release.wait()
        self.enlisted.append(request)

    def statuses(self) -> list[Status]:
        return [c.to_status for c in self.changes]


@dataclass
class Harness:
    env: WorkflowEnvironment
    services: StandInServices

    async def start(self, program: str, application_no: str, submitted_at: datetime) -> WorkflowHandle[Any, LifecycleStatus]:
        spec = PROGRAMS[program]
        return await self.env.client.start_workflow(
            spec.lifecycle,
            StartLifecycle(
                program=program,
                application_no=application_no,
                version=1,
                submitted_at=submitted_at,
                correlation_id=str(uuid.uuid4()),
                policy=spec.policy,
            ),
            id=application_workflow_id(program, application_no),
            task_queue=task_queues.WORKFLOWS,
            result_type=LifecycleStatus,
        )

    async def update(self, handle: WorkflowHandle[Any, Any], name: str, command: Any, *, id: str | None = None) -> DecisionAccepted:
        """A decision, as a console sends it: asked again while the workflow answers "busy" (the
        previous decision's state change is still being recorded); any other refusal raises."""
        for _ in range(200):
            try:
                return await handle.execute_update(name, command, id=id, result_type=DecisionAccepted)
            except WorkflowUpdateFailedError as refused:
                if not str(getattr(refused.cause, "message", "")).startswith(BUSY_REFUSAL):
                    raise
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name}: the workflow stayed busy")

    async def reach(self, handle: WorkflowHandle[Any, Any], status: Status, timeout: float = 20) -> LifecycleStatus:
        """Wait (in real time; the workflow's steps in between are activities) for a status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                current: LifecycleStatus | None = await handle.query(QUERY_STATUS, result_type=LifecycleStatus)
            except RPCError as exc:  # not started yet (intake starts it from a Kafka event)
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                current = None
            if current is not None and current.status is status:
                return current
            if loop.time() > deadline:
                seen = current.status.value if current else "not started"
                raise AssertionError(f"still {seen}, expected {status.value}; path {self.services.statuses()}")
            await asyncio.sleep(0.05)

    async def sleep_until(self, moment: datetime) -> None:
        """Skip workflow time forward to `moment` (timers due meanwhile fire)."""
        now = await self.env.get_current_time()
        if moment > now:
            await self.env.sleep(moment - now)

    async def at_rest(self, handle: WorkflowHandle[Any, Any]) -> int:
        """Wait until the workflow stops recording (its last transition's activity is done)."""
        previous = -1
        while (current := len((await handle.fetch_history()).events)) != previous:
            previous = current
            await asyncio.sleep(0.3)
        return await self.recorded_events(handle)

    async def recorded_events(self, handle: WorkflowHandle[Any, Any]) -> int:
        """Events other than workflow-task bookkeeping. The Java time-skipping server writes a
        workflow task for an update its validator rejects (the real server does not, see
        tests/integration/test_lifecycle_dev_server.py); anything else would be a real trace."""
        history = await handle.fetch_history()
        return sum(1 for event in history.events if not EventType.Name(event.event_type).startswith("EVENT_TYPE_WORKFLOW_TASK_"))

    async def keep_history(self, handle: WorkflowHandle[Any, Any], name: str) -> None:
        await keep_history(handle, name)


@asynccontextmanager
async def lifecycle_env(start_at: datetime) -> AsyncIterator[Harness]:
    """A fresh time-skipping server starting at `start_at`, with the workflow worker and the
    stand-in intake and review activity workers on their real task queues."""
    async with time_skipping_at(start_at) as env:
        services = StandInServices()
        async with (
            Worker(env.client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS),
            Worker(env.client, task_queue=task_queues.INTAKE, activities=[services.record_state_change, services.record_reminder]),
            Worker(env.client, task_queue=task_queues.REVIEW, activities=review_activities(services)),
        ):
            yield Harness(env=env, services=services)


def review_activities(services: StandInServices) -> list[Any]:
    """Review's activities, as the stand-ins play them."""
    return [services.compute_paper_deadline, services.run_pre_checks, services.issue_watermarked_form, services.enlist]


@asynccontextmanager
async def workflows_with_stand_in_review(client: Client, services: StandInServices) -> AsyncIterator[None]:
    """On a real server: the workflow worker and review's stand-in activities (intake's come from
    the real service the test runs)."""
    async with (
        Worker(client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS),
        Worker(client, task_queue=task_queues.REVIEW, activities=review_activities(services)),
    ):
        yield

