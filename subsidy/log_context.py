"""What every log line is bound to (STYLE.md 6): the application number and the correlation id.

They live in structlog's context variables (merged into every line by subsidy/logging.py, stdlib
lines from FastStream, aiokafka and temporalio included) and travel between processes:

- over Kafka in the `x-correlation-id` header, which the outbox writes from the bound context
  (`current_correlation_id`) and every subscriber binds again (`kafka_record_context`, used by
  `subsidy.messaging.consume`); the record's key is the application number;
- into Temporal activities through `LogContextInterceptor`: the application number from the
  lifecycle's workflow ID, the correlation id from the activity's input when it carries one (the
  lifecycle's inputs do: the id of the portal event that started the application).

An inbound portal event starts a chain: its CloudEvent id is the correlation id (intake binds it).
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from subsidy.contracts.workflow_ids import application_no_of, is_application_no

CORRELATION_ID_HEADER = "x-correlation-id"


def current_correlation_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else None


def kafka_record_context(record: Any) -> dict[str, str]:
    """The context of a consumed record: its key when it is an application number, and the
    correlation id header when present."""
    context: dict[str, str] = {}
    key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else None
    if key and is_application_no(key):
        context["application_no"] = key
    for name, value in record.headers or ():
        if name == CORRELATION_ID_HEADER and value:
            context["correlation_id"] = value.decode(errors="replace")[:200]
    return context


class LogContextInterceptor(Interceptor):
    """Binds `application_no` and `correlation_id` while an activity runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        context: dict[str, str] = {}
        if application_no := application_no_of(activity.info().workflow_id or ""):
            context["application_no"] = application_no
        correlation = getattr(input.args[0], "correlation_id", None) if input.args else None
        if isinstance(correlation, str) and correlation:
            context["correlation_id"] = correlation
        with structlog.contextvars.bound_contextvars(**context):
            return await super().execute_activity(input)
