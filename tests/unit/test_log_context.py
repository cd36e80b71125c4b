"""Every log line bound to the application number and the correlation id (STYLE.md 6): taken from
a Kafka record's key and header, and from a lifecycle activity's workflow ID and input."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from temporalio.testing import ActivityEnvironment

from subsidy.log_context import CORRELATION_ID_HEADER, LogContextInterceptor, current_correlation_id, kafka_record_context


def record(key: bytes | None, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord("t", 0, 0, 0, 0, key, b"", None, 0, 0, headers)


def test_a_records_key_and_correlation_header_are_its_context() -> None:
    assert kafka_record_context(record(b"LG2025-000123", [(CORRELATION_ID_HEADER, b"evt-1"), ("x-event-id", b"e")])) == {
        "application_no": "LG2025-000123", "correlation_id": "evt-1"}
    assert kafka_record_context(record(b"not an application", [])) == {}
    assert kafka_record_context(record(None, [(CORRELATION_ID_HEADER, b"evt-2")])) == {"correlation_id": "evt-2"}


def test_the_bound_correlation_id_is_the_current_one() -> None:
    assert current_correlation_id() is None
    with structlog.contextvars.bound_contextvars(correlation_id="evt-3"):
        assert current_correlation_id() == "evt-3"
    assert current_correlation_id() is None


class _Next:
    async def execute_activity(self, _input: Any) -> dict[str, Any]:
        return dict(structlog.contextvars.get_contextvars())


async def test_an_activity_of_a_lifecycle_runs_bound_to_its_application_and_correlation() -> None:
    interceptor = LogContextInterceptor().intercept_activity(_Next())  # type: ignore[arg-type]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="Application:LG-AI-MODEL-2025:LG2025-000123")

    async def run(args: list[Any]) -> dict[str, Any]:
        return await interceptor.execute_activity(SimpleNamespace(args=args))  # type: ignore[arg-type]

    bound = await env.run(run, [SimpleNamespace(correlation_id="evt-4")])
    assert bound == {"application_no": "LG2025-000123", "correlation_id": "evt-4"}
    assert await env.run(run, [SimpleNamespace()]) == {"application_no": "LG2025-000123"}
    env.info = dataclasses.replace(env.info, workflow_id="PublicationBatch:LG-AI-MODEL-2025")
    assert await env.run(run, []) == {}
    assert structlog.contextvars.get_contextvars() == {}  # unbound afterwards
