"""The intake service as a real process on the real stack, with the workflow worker and stand-ins
for the review service's activities (its own logic is not what these tests are about)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from temporalio.client import Client
from temporalio.workflow import ActivityHandle
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import ACTIVITY_RECORD_STATE_CHANGE
from subsidy.temporal import connect_from_env
from tests.fixtures import events
from tests.support.processes import env_key, own_or_shared_services
from tests.workflows.harness import WORKFLOWS, StandInServices


def application_no(prefix: str) -> str:
    """A fresh application number per test (the stack is shared by the whole run)."""
    return f"{prefix}2025-{random.randrange(1_000_000):06d}"


def event(event_type: str, application: str, *, data: dict[str, Any] | None = None, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """(topic, envelope) of the CONTRACTS.md example for `event_type`, for `application`, with a new id."""
    topic, source, build = events.EXAMPLES[event_type]
    payload = {**build(), **(data or {}), "application_no": application}
    envelope = events.envelope(event_type, payload, source=source, subject=application, event_id=f"evt-{uuid.uuid4().hex}")
    envelope.update(overrides)
    return topic, envelope


@dataclass
class IntakeWorld:
    database: asyncpg.Connection
    producer: AIOKafkaProducer
    temporal: Client
    intake_port: int
    stand_in: StandInServices

    async def send(self, topic: str, envelope: dict[str, Any] | bytes, key: str | None = None) -> Any:
        body = envelope if isinstance(envelope, bytes) else events.encode(envelope)
        key = key or (envelope["subject"] if isinstance(envelope, dict) else "LG2025-000000")
        return await self.producer.send_and_wait(topic, body, key=key.encode())

    async def send_applied(self, topic: str, envelope: dict[str, Any]) -> None:
        """Send an event and wait until intake has recorded it as applied."""
        await self.send(topic, envelope)
        assert await self.outcome(envelope["id"], source=envelope["source"]) == ("applied", None)

    async def outcome(self, event_id: str, timeout: float = 30, *, source: str | None = None) -> tuple[str, str | None]:
        """(applied|refused, reason) once intake has recorded the event (`source`: the one with
        this id from that source; a CloudEvents id is unique only per source)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            row = await self.database.fetchrow(
                "SELECT outcome, reason FROM intake.inbound_events WHERE event_id = $1 AND ($2::text IS NULL OR source = $2)",
                event_id, source)
            if row is not None:
                return row["outcome"], row["reason"]
            assert loop.time() < deadline, f"event {event_id} not recorded in time"
            await asyncio.sleep(0.1)


@asynccontextmanager
async def intake_world(stack: Any, log_file: Path, extra_env: dict[str, str] | None = None, *,
                       record_timeout: timedelta | None = None, shared: bool = False) -> AsyncIterator[IntakeWorld]:
    """`shared`: the intake process is left running for the next test that asks for a shared one with
    the same environment (a test marked `shared_processes`: tests/support/processes.py
    `shared_services`); its log is then where the first of them started it. The workflows' worker
    and the stand-ins are this test's own either way."""
    client = await connect_from_env(stack.env)
    stand_in = StandInServices()
    database = await asyncpg.connect(stack.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)
    await producer.start()
    try:
        spec = {"intake": ({**stack.env, **(extra_env or {})}, log_file)}
        key = ("intake", str(stack.run_dir), env_key(extra_env)) if shared else None
        with own_or_shared_services(spec, shared_key=key) as (ports, _):
            async with lifecycle_workers(client, stand_in, record_timeout=record_timeout):
                yield IntakeWorld(database, producer, client, ports["intake"], stand_in)
    finally:
        await producer.stop()
        await database.close()


@asynccontextmanager
async def lifecycle_workers(client: Client, stand_in: StandInServices, *,
                            record_timeout: timedelta | None = None) -> AsyncIterator[None]:
    """The lifecycle workflows' worker, and the review activities' stand-ins, in this process.

    `record_timeout`: the start-to-close timeout this worker's workflows give intake's
    record-state-change activity instead of their own (30 s), for a test whose intake dies holding
    one: Temporal retries a lost attempt only when that timeout has passed (see `ShorterRecordTimeout`)."""
    interceptors = [ShorterRecordTimeout(record_timeout)] if record_timeout is not None else []
    async with (
        Worker(client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS, interceptors=interceptors),
        Worker(client, task_queue=task_queues.REVIEW, activities=[
            stand_in.compute_paper_deadline, stand_in.run_pre_checks, stand_in.issue_watermarked_form, stand_in.enlist]),
    ):
        yield


class ShorterRecordTimeout(Interceptor):
    """Gives the lifecycle's record-state-change activity a shorter start-to-close timeout.

    A test that SIGKILLs intake while intake's activity worker holds an attempt of that activity
    waits for the attempt's timeout before Temporal retries it on the next intake. The workflows
    (and the activity) are unchanged; only how long Temporal waits for a dead worker is. The timeout
    is not part of a command's identity on replay, so the same history replays with or without this."""

    def __init__(self, timeout: timedelta) -> None:
        self.timeout = timeout

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        timeout = self.timeout

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
                if input.activity == ACTIVITY_RECORD_STATE_CHANGE:
                    input = replace(input, start_to_close_timeout=timeout)
                return super().start_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound
