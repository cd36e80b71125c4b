"""The transactional outbox and the lifecycle activities on the real stack: intake records a state
change once however often Temporal runs the activity, its relay puts exactly one event on Kafka;
relays publish in order per key without duplicates, also two at once; review raises one calendar
alert per application and missing year."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from services.review.deadlines.activities import DeadlineActivities
from subsidy.contracts import topics
from subsidy.contracts.lifecycle import ComputePaperDeadline, LifecyclePolicy, StateChange, Status
from subsidy.contracts.platform_events import ApplicationStateChanged, CalendarAlertRaised
from subsidy.contracts.topics import TopicSpec
from subsidy.deadlines import WorkingCalendar
from subsidy.kafka_admin import ensure_topics
from subsidy.outbox import CONTENT_TYPE, EVENT_ID_HEADER, OutboxRelay, write_event
from subsidy.temporal import connect
from tests.support.lifecycle_workflows import RecordStateChangeTwiceWorkflow
from tests.support.processes import get_health, running_service

pytestmark = pytest.mark.integration

SH = ZoneInfo("Asia/Shanghai")
PARTITIONS = 6


def partitions_of(topic: str) -> int:
    return next(spec.partitions for spec in topics.ALL_TOPICS if spec.name == topic)


@pytest.fixture
async def review_pool(stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        stack.database_url, min_size=1, max_size=6, server_settings={"search_path": "review,public"}
    )
    try:
        yield pool
    finally:
        await pool.close()


async def read_to_end(bootstrap: str, topic: str, partitions: int) -> list[ConsumerRecord]:
    """Every record of `topic` up to its current end offsets (the end is taken first, so the
    read is complete and nothing is waited for), in (partition, offset) order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4()}", enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[ConsumerRecord] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*assigned, timeout_ms=1000)
            records.extend(r for batch in batches.values() for r in batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def headers_of(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


async def wait_for(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


# --- (a) intake's record_state_change through Temporal, twice, one event ------------------------


async def test_a_state_change_recorded_twice_is_stored_and_published_once(stack, tmp_path: Path) -> None:
    application_no = f"LG2025-{uuid.uuid4().hex[:8]}"
    change = StateChange(
        event_id=str(uuid.uuid4()),
        program="LG-AI-MODEL-2025",
        application_no=application_no,
        from_status=Status.BACK_OFFICE_REVIEW,
        to_status=Status.AWAITING_PAPER,
        reason="back-office review approved",
        actor="staff:LG-0042",
        deadline=datetime(2026, 1, 7, 18, 0, tzinfo=SH),
        occurred_at=datetime(2025, 12, 30, 10, 0, tzinfo=SH),
        correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
        version=1,
    )

    with running_service("intake", stack.env, tmp_path / "intake.log") as port:
        status, body = get_health(port)
        assert status == 200 and body["checks"]["outbox_relay"] == "ok"

        client = await connect(stack.temporal, stack.env["TEMPORAL_NAMESPACE"])
        queue = f"test-lifecycle-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[RecordStateChangeTwiceWorkflow]):
            await client.execute_workflow(
                RecordStateChangeTwiceWorkflow.run, change, id=f"test-record-twice-{uuid.uuid4()}", task_queue=queue
            )

        conn = await asyncpg.connect(stack.database_url)
        try:
            async def published() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT published_at IS NOT NULL FROM intake.outbox WHERE event_id = $1", uuid.UUID(change.event_id)
                    )
                )

            await wait_for(published)  # the intake process's relay
            application = await conn.fetchrow(
                "SELECT status, version, deadline FROM intake.applications WHERE application_no = $1", application_no
            )
            rows = await conn.fetch("SELECT * FROM intake.state_changes WHERE application_no = $1", application_no)
            outbox_rows = await conn.fetchval(
                "SELECT count(*) FROM intake.outbox WHERE message_key = $1", application_no
            )
        finally:
            await conn.close()

    log = (tmp_path / "intake.log").read_text()
    assert "state change recorded" in log and "state change already recorded" in log  # the second run: a no-op
    assert application is not None
    assert (application["status"], application["version"]) == ("awaiting_paper", 1)
    assert application["deadline"] == change.deadline
    assert len(rows) == 1 and str(rows[0]["event_id"]) == change.event_id and rows[0]["to_status"] == "awaiting_paper"
    assert outbox_rows == 1

    records = [
        r
        for r in await read_to_end(stack.kafka, topics.APPLICATION_STATE_CHANGED, partitions_of(topics.APPLICATION_STATE_CHANGED))
        if headers_of(r).get(EVENT_ID_HEADER) == change.event_id
    ]
    assert len(records) == 1
    record = records[0]
    assert record.key == application_no.encode()
    assert headers_of(record)["content-type"] == CONTENT_TYPE
    event = ApplicationStateChanged.model_validate_json(record.value)
    assert (event.event_id, event.application_no, event.program) == (change.event_id, application_no, change.program)
    assert (event.from_state, event.to_state, event.version) == ("back_office_review", "awaiting_paper", 1)
    assert event.deadline == change.deadline and event.occurred_at == change.occurred_at
    assert event.correlation_id == change.correlation_id


# --- (b) the relay: order per key, no duplicates with two relays -----------------------------------


async def test_two_relays_publish_every_event_once_in_order_per_key(stack, review_pool: asyncpg.Pool) -> None:
    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(name=topic, partitions=PARTITIONS)]) == 1
    run = uuid.uuid4().hex[:8]
    keys = [f"LG2025-{run}-{k}" for k in range(7)]
    events = [(str(uuid.uuid4()), keys[i % len(keys)], i) for i in range(50)]

    brokers = [KafkaBroker(stack.kafka, acks="all", enable_idempotence=True) for _ in range(2)]
    relays = [
        OutboxRelay(review_pool, broker, schema="review", batch_size=4, poll_interval=0.2) for broker in brokers
    ]
    for broker in brokers:
        await broker.start()
    try:
        for relay in relays:  # both wait for the NOTIFY of the commit below, then compete
            await relay.start()
        async with review_pool.acquire() as conn, conn.transaction():
            for event_id, key, seq in events:
                assert await write_event(
                    conn, topic=topic, key=key, event_id=event_id, payload={"seq": seq, "key": key}
                )
            # Written again in the same transaction (a retried activity): not a second row.
            assert not await write_event(conn, topic=topic, key=keys[0], event_id=events[0][0], payload={"seq": -1})

        async def drained() -> bool:
            return await relays[0].backlog() == 0

        await wait_for(drained)
        assert all(relay.running for relay in relays)
    finally:
        for relay in relays:
            await relay.stop()
        for broker in brokers:
            await broker.stop()
    assert not any(relay.running for relay in relays)

    ours = {event_id for event_id, _, _ in events}
    records = [r for r in await read_to_end(stack.kafka, topic, PARTITIONS) if headers_of(r).get(EVENT_ID_HEADER) in ours]
    assert len(records) == 50
    assert {headers_of(r)[EVENT_ID_HEADER] for r in records} == ours
    by_key: dict[str, list[int]] = {}
    for record in records:  # sorted by (partition, offset): one key lives in one partition
        body = json.loads(record.value)
        assert record.key == body["key"].encode()
        assert headers_of(record)["content-type"] == CONTENT_TYPE
        by_key.setdefault(body["key"], []).append(body["seq"])
    assert by_key == {key: [seq for _, k, seq in events if k == key] for key in keys}


async def test_a_row_that_cannot_be_published_stops_the_round_after_the_rows_before_it(stack, review_pool: asyncpg.Pool) -> None:
    """The relay hands a round's rows to the producer together: when one fails (here: larger than
    the producer may send), the rows before it are published and stamped, it and every row after
    it stay unpublished for the next round, and the round fails."""
    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(name=topic, partitions=PARTITIONS)]) == 1
    key = f"LG2025-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(4)]
    payloads = [{"seq": 0}, {"seq": 1}, {"seq": 2, "blob": "x" * 1_100_000}, {"seq": 3}]  # over max_request_size
    async with review_pool.acquire() as conn, conn.transaction():
        for event_id, payload in zip(ids, payloads, strict=True):
            await write_event(conn, topic=topic, key=key, event_id=event_id, payload=payload)
    broker = KafkaBroker(stack.kafka, acks="all", enable_idempotence=True)
    relay = OutboxRelay(review_pool, broker, schema="review", batch_size=50)
    await broker.start()
    try:
        async with review_pool.acquire() as conn:
            with pytest.raises(Exception, match="MessageSizeTooLarge|too large"):
                await relay._relay_batch(conn)
            published = {
                str(r["event_id"]): r["published_at"] is not None
                for r in await conn.fetch("SELECT event_id, published_at FROM review.outbox WHERE message_key = $1", key)
            }
    finally:
        await broker.stop()
        await review_pool.execute("DELETE FROM review.outbox WHERE message_key = $1", key)  # no poison row left behind
    assert published == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False}
    records = await read_to_end(stack.kafka, topic, PARTITIONS)
    assert [json.loads(r.value)["seq"] for r in records] == [0, 1]


# --- (c) review's calendar alert: once per application and year --------------------------------------


async def test_a_deadline_into_an_uncovered_year_raises_one_calendar_alert(review_pool: asyncpg.Pool) -> None:
    application_no = f"LG2025-{uuid.uuid4().hex[:8]}"
    request = ComputePaperDeadline(
        program="LG-AI-MODEL-2025",
        application_no=application_no,
        trigger=datetime(2026, 12, 28, 10, 0, tzinfo=SH),
        trigger_kind="sms_delivered",
        policy=LifecyclePolicy(paper_working_days=10),
        correlation_id="corr-calendar",
    )
    activities = DeadlineActivities(
        review_pool, WorkingCalendar.from_package(), load_calendar=WorkingCalendar.from_package
    )
    workflow_id = f"Application:LG-AI-MODEL-2025:{application_no}"

    async def alerts() -> list[asyncpg.Record]:
        return await review_pool.fetch(
            "SELECT * FROM outbox WHERE topic = $1 AND message_key = $2", topics.CALENDAR_ALERT, application_no
        )

    for attempt in (1, 2):
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=attempt)
        with pytest.raises(ApplicationError) as raised:
            await env.run(activities.compute_paper_deadline, request)
        assert raised.value.type == "CalendarNotCovered" and not raised.value.non_retryable
        assert "2027" in str(raised.value)

        rows = await alerts()
        assert len(rows) == 1, f"attempt {attempt}"
        alert = CalendarAlertRaised.model_validate_json(rows[0]["payload"])
        assert (alert.year, alert.program, alert.application_no) == (2027, request.program, application_no)
        assert alert.event_id == str(rows[0]["event_id"])
