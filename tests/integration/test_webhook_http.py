"""The signed webhook on the real intake process: a signed event over HTTP lands on its Kafka
topic byte for byte; a bad signature or an old timestamp gets 401; the log keeps no personal data."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from services.intake.webhook import sign
from subsidy.contracts import topics
from tests.fixtures import events
from tests.support.processes import running_service
from tests.support.webhook import post_webhook

pytestmark = pytest.mark.integration


async def _record_with_value(bootstrap: str, topic: str, value: bytes, timeout: float = 30.0):
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"t-{uuid.uuid4()}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if record.value == value:
                        return record
        raise AssertionError(f"no record with the posted body on {topic} within {timeout}s")
    finally:
        await consumer.stop()


async def test_a_signed_event_lands_on_its_topic_and_a_bad_signature_gets_401(stack, tmp_path: Path) -> None:
    log_file = tmp_path / "intake.log"
    key = json.loads(stack.env["WEBHOOK_KEYS"])["longgang-qyfw"]
    topic, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    event["id"] = f"evt-{uuid.uuid4().hex}"
    body = events.encode(event)

    with running_service("intake", stack.env, log_file) as port:
        status, answer = await asyncio.to_thread(post_webhook, port, "longgang-qyfw", body, signature=sign(key, body))
        assert status == 202, answer
        assert answer == {"accepted": event["id"], "topic": topic}

        status, answer = await asyncio.to_thread(
            post_webhook, port, "longgang-qyfw", body, signature=sign("not-the-key-0123456789", body)
        )
        assert (status, answer) == (401, {"reason": "bad_signature"})

        status, answer = await asyncio.to_thread(
            post_webhook, port, "longgang-qyfw", body, signature=sign(key, body), timestamp=int(time.time()) - 600
        )
        assert (status, answer["reason"]) == (401, "stale_timestamp")

        record = await _record_with_value(stack.kafka, topic, body)
        assert record.key == event["subject"].encode()

    log = log_file.read_text()
    assert "webhook event accepted" in log and "webhook request rejected" in log
    for raw in (events.LEGAL_REP_ID, events.CONTACT_ID, events.CONTACT_MOBILE, key):
        assert raw not in log
