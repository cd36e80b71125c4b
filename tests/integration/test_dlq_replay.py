"""`subsidy dlq replay` on the real stack (issue 14, defect 9): dead letters recorded by
`DeadLetters` (the table, then `<topic>.dlq`) are put back on their source topic one by one or by
reason, those that would be dead-lettered again are refused, and every replay and refusal is
stamped and audited."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker

from subsidy.contracts import topics
from subsidy.contracts.topics import TopicSpec, dlq
from subsidy.kafka_admin import ensure_topics
from subsidy.messaging import DLQ_REPLAY_OF, DeadLetters, read_dlq_topic, replay_dead_letters, run_replay_cli
from subsidy.operator_arguments import add_replay_arguments

pytestmark = pytest.mark.integration


def source_record(topic: str, offset: int, key: str) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=key.encode(), value=b"",
        checksum=None, serialized_key_size=len(key), serialized_value_size=0, headers=(),
    )


def still_not_json(_topic: str, body: bytes) -> str | None:
    """The check of this test's topic: its subscriber would refuse anything but a JSON object."""
    return None if body.startswith(b"{") else "not_json: still not JSON"


async def test_dead_letters_are_replayed_one_or_by_reason_refused_when_they_would_fail_again_and_audited(stack) -> None:
    topic = f"test.dlq-replay.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(topic, 1), TopicSpec(dlq(topic), 1)]) == 2
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2, server_settings={"search_path": "review,public"})
    broker = KafkaBroker(stack.kafka, acks="all", enable_idempotence=True)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, acks="all", enable_idempotence=True)
    await broker.start()
    await producer.start()

    async def publish(to: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> int:
        meta = await producer.send_and_wait(to, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
        return int(meta.offset)

    def replay(conn: asyncpg.Connection, **kwargs: Any) -> Any:
        return replay_dead_letters(conn, schema="review", actor="operator:test", check=still_not_json,
                                   read_dlq=lambda t: read_dlq_topic(stack.kafka, t), publish=publish, **kwargs)

    bodies = {"A": b'{"seq": "A"}', "B": b"not json", "C": b'{"seq": "C"}'}
    try:
        dead_letters = DeadLetters(broker, pool)
        await dead_letters.send(source_record(topic, 10, "LG2025-A"), bodies["A"], reason="processing_failed", detail="ContactNotYetKnown")
        await dead_letters.send(source_record(topic, 11, "LG2025-B"), bodies["B"], reason="not_json", detail="not valid JSON")
        await dead_letters.send(source_record(topic, 12, "LG2025-C"), bodies["C"], reason="not_json", detail="not valid JSON")
        ids = {r["message_key"][-1]: r["id"] for r in await pool.fetch("SELECT id, message_key FROM dead_letters WHERE topic = $1", topic)}

        async with pool.acquire() as conn:
            dry = await replay(conn, reason="not_json", topic=topic, dry_run=True)
            one = await replay(conn, ids=[ids["A"]])
            by_reason = await replay(conn, reason="not_json", topic=topic)
            again = await replay(conn, ids=[ids["A"], 10**12])
            stamped = {r["message_key"][-1]: (r["replayed_by"], r["replay_offset"]) for r in await conn.fetch(
                "SELECT message_key, replayed_by, replay_offset FROM dead_letters WHERE topic = $1", topic)}
            audit = sorted((r["action"], r["application_no"]) for r in await conn.fetch(
                "SELECT action, application_no FROM audit_log WHERE detail->>'topic' = $1", topic))
        replayed = await read_dlq_topic(stack.kafka, topic)  # reads any one-partition topic to its end
    finally:
        await producer.stop()
        await broker.stop()
        await pool.close()

    assert [(r.dead_letter, r.outcome) for r in dry] == [(f"review:{ids['B']}", "refused"), (f"review:{ids['C']}", "would_replay")]
    assert [(r.outcome, r.offset) for r in one] == [("replayed", 0)]
    assert [(r.dead_letter, r.outcome, (r.why or "")[:16]) for r in by_reason] == [
        (f"review:{ids['B']}", "refused", "would_fail_again"), (f"review:{ids['C']}", "replayed", "")]
    assert sorted((r.outcome, (r.why or "").split(":")[0]) for r in again) == [("refused", "already_replayed"), ("refused", "not_found")]
    assert [(r.key, r.value) for r in replayed] == [(b"LG2025-A", bodies["A"]), (b"LG2025-C", bodies["C"])]  # unchanged
    assert [r.headers[DLQ_REPLAY_OF] for r in replayed] == [f"review:{ids['A']}", f"review:{ids['C']}"]
    assert stamped == {"A": ("operator:test", 0), "B": (None, None), "C": ("operator:test", 1)}
    assert audit == [("dlq.replay", "LG2025-A"), ("dlq.replay", "LG2025-C"),
                     ("dlq.replay_refused", "LG2025-A"), ("dlq.replay_refused", "LG2025-B")]


async def test_the_replay_command_refuses_a_portal_event_its_contract_still_refuses(stack, capsys: pytest.CaptureFixture[str]) -> None:
    """The command with the real check (the subscribers' contracts), on a real inbound topic: a
    dead-lettered submission that is still not JSON is refused, nothing is published."""
    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    key = f"LG2025-{uuid.uuid4().hex[:6]}"
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2, server_settings={"search_path": "intake,public"})
    broker = KafkaBroker(stack.kafka, acks="all", enable_idempotence=True)
    await broker.start()
    try:
        offset = 10**9 + uuid.uuid4().int % 10**6  # a source offset no real dead letter has
        await DeadLetters(broker, pool).send(source_record(topic, offset, key), b'{"specversion": "1.0", ', reason="not_json", detail="x")
        dead_id = await pool.fetchval("SELECT id FROM dead_letters WHERE message_key = $1", key)
        end_before = await topic_end(stack.kafka, topic)
        parser = argparse.ArgumentParser()
        parser.add_argument("action")
        add_replay_arguments(parser)
        args = parser.parse_args(["replay", "--id", f"intake:{dead_id}", "--actor", "operator:test"])
        capsys.readouterr()
        code = await asyncio.to_thread(run_replay_cli, args, database_url=stack.database_url, bootstrap_servers=stack.kafka)
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        end_after = await topic_end(stack.kafka, topic)
        refused = await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'dlq.replay_refused' AND application_no = $1", key)
    finally:
        await broker.stop()
        await pool.close()
    assert code == 1
    assert [(p["dead_letter"], p["outcome"]) for p in printed] == [(f"intake:{dead_id}", "refused")]
    assert printed[0]["why"].startswith("would_fail_again: not_json")
    assert end_after == end_before and refused == 1


async def topic_end(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4()}", enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(6)]  # the inbound topics' partitions
        consumer.assign(parts)
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()
