"""Kafka topic administration: every topic is created from its spec (auto-creation is off)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from subsidy.contracts.topics import ALL_TOPICS, TopicSpec


async def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec] = ALL_TOPICS, *, replication_factor: int = 1
) -> int:
    """Create the topics that do not exist yet; returns how many were created.

    Existing topics keep their partitions (they can only grow, and that re-keys: an operator
    decision), but get their spec's retention: a topic created before the inbound topics were made
    short-lived stops keeping raw personal data longer than its spec says.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = list(specs)
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs={"retention.ms": str(spec.retention_ms)} if spec.retention_ms else {},
            )
            for spec in wanted
            if spec.name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        retained = [
            ConfigResource(ConfigResourceType.TOPIC, spec.name, configs={"retention.ms": str(spec.retention_ms)})
            for spec in wanted
            if spec.name in existing and spec.retention_ms
        ]
        if retained:
            await admin.alter_configs(retained)
        return len(missing)
    finally:
        await admin.close()
