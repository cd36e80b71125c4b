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
from typing import Any
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
from subsidy.temporal import connect_from_env
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

        client = await connect_from_env(stack.env)
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


async def test_an_unpublishable_row_is_set_aside_with_an_alert_and_the_rest_flows(
    stack, review_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14, defect 4: a row larger than the producer may send, a row whose headers cannot be
    serialised and a row for a topic that does not exist go aside into review.outbox_dead, each
    with an alert line; every other row is published, in order per key, by the running relay.
    An operator lists them and requeues one once its topic exists: it is published then."""
    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    absent = f"test.outbox.absent.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(name=topic, partitions=PARTITIONS)]) == 1
    key, other = f"LG2025-{uuid.uuid4().hex[:8]}", f"LG2025-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(6)]
    rows = [
        (topic, key, {"seq": 0}), (topic, key, {"seq": 1, "blob": "x" * 1_100_000}),  # over max_request_size
        (topic, key, {"seq": 2}), (absent, key, {"seq": 3}), (topic, other, {"seq": 4}), (topic, other, {"seq": 5}),
    ]
    async with review_pool.acquire() as conn, conn.transaction():
        for event_id, (to, k, payload) in zip(ids, rows, strict=True):
            await write_event(conn, topic=to, key=k, event_id=event_id, payload=payload)
        await conn.execute("UPDATE review.outbox SET headers = '{\"x-attempt\": 1}' WHERE event_id = $1", uuid.UUID(ids[4]))
    broker = KafkaBroker(stack.kafka, acks="all", enable_idempotence=True)
    relay = OutboxRelay(review_pool, broker, schema="review", batch_size=50, poll_interval=0.2, unknown_topic_grace=1.0)
    ours = [uuid.UUID(i) for i in ids]

    async def ours_left() -> bool:
        return not await review_pool.fetchval(
            "SELECT count(*) FROM review.outbox WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL", ours)

    await broker.start()
    try:
        await relay.start()
        await wait_for(ours_left)
        assert relay.running  # the relay never stopped
        dead = {str(r["event_id"]): r for r in await review_pool.fetch(
            "SELECT * FROM review.outbox_dead WHERE event_id = ANY($1::uuid[])", ours)}
        records = [r for r in await read_to_end(stack.kafka, topic, PARTITIONS) if headers_of(r).get(EVENT_ID_HEADER) in ids]
        assert sorted(json.loads(r.value)["seq"] for r in records) == [0, 2, 5]
        assert {event_id: row["reason"] for event_id, row in dead.items()} == {
            ids[1]: "message_too_large", ids[3]: "unknown_topic", ids[4]: "unserializable"}
        alerts = [r.msg for r in caplog.records if "outbox.row_set_aside" in str(r.msg)]
        assert len([a for a in alerts if any(i in str(a) for i in ids)]) == 3

        import argparse

        from subsidy.operator_arguments import add_outbox_parser
        from subsidy.outbox import run_cli

        parser = argparse.ArgumentParser()
        add_outbox_parser(parser.add_subparsers(dest="command"))
        capsys.readouterr()
        def cli(*argv: str) -> Any:  # the command runs its own event loop: in a thread of its own
            return asyncio.to_thread(run_cli, parser.parse_args(["outbox", "dead", *argv]), database_url=stack.database_url)

        assert await cli("list", "--schema", "review") == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        by_event = {row["event_id"]: row for row in listed}
        assert {ids[1], ids[3], ids[4]} <= by_event.keys()
        assert all("blob" not in json.dumps(row) for row in listed)  # never the payload

        assert await ensure_topics(stack.kafka, [TopicSpec(name=absent, partitions=1)]) == 1  # the cause, fixed
        assert await cli("requeue", by_event[ids[3]]["id"], "--actor", "operator:test") == 0
        assert await cli("requeue", by_event[ids[3]]["id"], "--actor", "operator:test") == 1  # requeued already
        await wait_for(ours_left)
        assert [json.loads(r.value)["seq"] for r in await read_to_end(stack.kafka, absent, 1)] == [3]
        audit = await review_pool.fetchval(
            "SELECT actor FROM review.audit_log WHERE action = 'outbox.dead.requeue' AND detail->>'event_id' = $1", ids[3])
        assert audit == "operator:test"
    finally:
        await relay.stop()
        await broker.stop()
    by_key: dict[str, list[int]] = {}
    for record in records:  # in order per key
        by_key.setdefault(record.key.decode(), []).append(json.loads(record.value)["seq"])
    assert by_key == {key: [0, 2], other: [5]}


async def test_a_broker_that_does_not_answer_never_sets_a_row_aside(stack, review_pool: asyncpg.Pool) -> None:
    """Transient producer errors (the broker down or unreachable, no leader, a timeout, a topic
    unknown while metadata is stale) fail the round, again and again: nothing goes to outbox_dead."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError, UnknownTopicOrPartitionError

    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    event_id = uuid.uuid4()
    async with review_pool.acquire() as conn, conn.transaction():
        await write_event(conn, topic=topic, key="LG2025-x", event_id=str(event_id), payload={"seq": 0})
    errors = [KafkaConnectionError(), KafkaTimeoutError(), NotLeaderForPartitionError(), UnknownTopicOrPartitionError(), TimeoutError()]

    class Down:
        calls = 0

        async def publish(self, *args: object, **kwargs: object) -> None:
            Down.calls += 1
            raise errors[Down.calls % len(errors)]

    asked = 0

    async def topics_while_down() -> list[str]:
        nonlocal asked
        asked += 1
        if asked == 1:
            raise KafkaConnectionError()  # first the broker cannot even be asked which topics exist
        return [r["topic"] for r in await review_pool.fetch("SELECT DISTINCT topic FROM review.outbox")]

    dead_before = await review_pool.fetchval("SELECT count(*) FROM review.outbox_dead")
    relay = OutboxRelay(review_pool, Down(), schema="review", unknown_topic_grace=0.0, list_topics=topics_while_down)  # type: ignore[arg-type]
    try:
        async with review_pool.acquire() as conn:
            for _ in range(1 + 2 * len(errors)):
                with pytest.raises(Exception):  # noqa: B017 (each of the transient errors)
                    await relay._relay_batch(conn)
            left = await conn.fetchval("SELECT published_at IS NULL FROM review.outbox WHERE event_id = $1", event_id)
            dead_after = await conn.fetchval("SELECT count(*) FROM review.outbox_dead")
    finally:
        await review_pool.execute("DELETE FROM review.outbox WHERE event_id = $1", event_id)
    assert Down.calls == 2 * len(errors)
    assert left is True and dead_after == dead_before


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
