"""The services as real processes on the real stack: the intake service consumes, deduplicates,
sends bad input to the DLQ, keeps personal data out of its log, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from subsidy.contracts import topics
from subsidy.messaging import DLQ_REASON, DLQ_SOURCE_TOPIC
from tests.fixtures import events
from tests.support.processes import get_health, running_service

pytestmark = pytest.mark.integration


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_intake_consumes_once_dead_letters_bad_input_and_logs_no_personal_data(stack, tmp_path: Path) -> None:
    log_file = tmp_path / "intake.log"
    event_id = f"evt-{uuid.uuid4().hex}"
    topic, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    event["id"] = event_id
    key = event["subject"].encode()

    with running_service("intake", stack.env, log_file) as port:
        status, body = get_health(port)
        assert status == 200 and set(body["checks"]) == {"kafka", "postgres", "temporal", "activity_worker", "outbox_relay"}

        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)
        await producer.start()
        try:
            for _ in range(3):  # a portal redelivering the same event id
                await producer.send_and_wait(topic, events.encode(event), key=key)
            await producer.send_and_wait(topic, b"{not json", key=key)
        finally:
            await producer.stop()

        conn = await asyncpg.connect(stack.database_url)
        try:
            await _wait_for(lambda: _inbox_has(conn, event_id))
            dlq = AIOKafkaConsumer(
                topics.dlq(topic), bootstrap_servers=stack.kafka, group_id=f"t-{uuid.uuid4()}", auto_offset_reset="earliest"
            )
            await dlq.start()
            try:
                record = None
                while record is None:  # the DLQ topic is shared by the run: find this test's record
                    candidate = await asyncio.wait_for(dlq.getone(), timeout=30)
                    record = candidate if candidate.value == b"{not json" else None
            finally:
                await dlq.stop()
            headers = {k: v.decode() for k, v in record.headers}
            assert record.value == b"{not json"
            assert headers[DLQ_REASON] == "not_json"
            assert headers[DLQ_SOURCE_TOPIC] == topic

            await asyncio.sleep(1)  # give any duplicate effect the time to show
            assert await conn.fetchval("SELECT count(*) FROM intake.inbox WHERE event_id = $1", event_id) == 1
            assert await conn.fetchval("SELECT count(*) FROM intake.inbound_events WHERE event_id = $1", event_id) == 1
        finally:
            await conn.close()

    log = log_file.read_text()
    assert "event applied" in log and "event already processed" in log
    for raw in (events.LEGAL_REP_ID, events.CONTACT_ID, events.CONTACT_MOBILE):
        assert raw not in log
    for line in log.splitlines():
        json.loads(line)  # every line is one JSON object (LOG_FORMAT=json)


async def _inbox_has(conn: asyncpg.Connection, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM intake.inbox WHERE event_id = $1", event_id))
