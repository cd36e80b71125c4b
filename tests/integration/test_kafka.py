"""FastStream on the real Apache Kafka broker: delivery, and redelivery of what was not committed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from faststream.kafka import KafkaBroker

from subsidy.contracts.topics import TopicSpec
from subsidy.kafka_admin import ensure_topics
from subsidy.messaging import subscriber_options

pytestmark = pytest.mark.integration


async def _topic(stack) -> str:
    name = f"test.kafka.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(name=name, partitions=1)]) == 1
    return name


async def test_subscriber_receives_a_published_message(stack) -> None:
    topic = await _topic(stack)
    received: asyncio.Queue[dict] = asyncio.Queue()
    broker = KafkaBroker(stack.kafka)

    @broker.subscriber(topic, **subscriber_options(f"g-{topic}"))
    async def handle(body: dict) -> None:
        await received.put(body)

    async with broker:
        await broker.start()
        await broker.publish({"application_no": "LG2025-000123"}, topic=topic, key=b"LG2025-000123")
        assert await asyncio.wait_for(received.get(), timeout=30) == {"application_no": "LG2025-000123"}


async def test_a_message_whose_handler_failed_is_delivered_again(stack) -> None:
    topic = await _topic(stack)
    attempts: list[int] = []
    done = asyncio.Event()
    broker = KafkaBroker(stack.kafka)

    @broker.subscriber(topic, **subscriber_options(f"g-{topic}"))
    async def handle(body: dict) -> None:
        attempts.append(body["n"])
        if len(attempts) == 1:
            raise RuntimeError("database unavailable")  # fails before anything is committed
        done.set()

    async with broker:
        await broker.start()
        await broker.publish({"n": 1}, topic=topic)
        await asyncio.wait_for(done.wait(), timeout=30)
    assert attempts == [1, 1]


async def test_an_uncommitted_message_goes_to_the_next_consumer_of_the_group(stack) -> None:
    """A consumer that dies mid-handler never commits: the group's next consumer gets the message."""
    topic = await _topic(stack)
    group = f"g-{topic}"
    started = asyncio.Event()
    first = KafkaBroker(stack.kafka, graceful_timeout=1)

    @first.subscriber(topic, **subscriber_options(group))
    async def stuck(body: dict) -> None:
        started.set()
        await asyncio.Event().wait()  # the process "crashes" here: stopped, never finishing

    await first.start()
    await first.publish({"n": 7}, topic=topic)
    await asyncio.wait_for(started.wait(), timeout=30)
    await first.stop()

    received: asyncio.Queue[dict] = asyncio.Queue()
    second = KafkaBroker(stack.kafka)

    @second.subscriber(topic, **subscriber_options(group))
    async def handle(body: dict) -> None:
        await received.put(body)

    async with second:
        await second.start()
        assert await asyncio.wait_for(received.get(), timeout=60) == {"n": 7}


async def test_an_existing_topic_gets_the_retention_of_its_spec(stack) -> None:
    """Issue 14, defect 8: inbound topics created before they were made short-lived get their
    spec's retention on the next `subsidy topics` / `stack up`."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    name = f"test.retention.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(stack.kafka, [TopicSpec(name=name, partitions=1)]) == 1  # the broker's default
    assert await ensure_topics(stack.kafka, [TopicSpec(name=name, partitions=1, retention_ms=86_400_000)]) == 0
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
    finally:
        await admin.close()
    assert configs["retention.ms"] == "86400000"
