"""Kafka entrypoints of the review service.

The state changes and the submissions come in bursts (a whole batch of applications submitted or
decided at once): their subscribers take fetched batches and handle them `in_key_order`, one
application's events in order, different applications concurrently (subsidy.messaging's
`keyed_batch_options`); offsets are committed once the whole batch is handled.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaRouter

from services.review.rules import activities as rules
from services.review.tasks import service as tasks
from subsidy.contracts.platform_events import PhoneTaskCreated, SubmissionRecorded, parse_model, parse_state_changed
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, PHONE_TASK_CREATED, SUBMISSION_RECORDED
from subsidy.messaging import (
    ConsumedMessage, consume, consume_in_key_order, from_context, keyed_batch_options, raw_body, subscriber_options,
)
from subsidy.runtime import Resources

router = KafkaRouter()
# Duplicate detection and the Shenzhen cross-application findings hold one advisory lock per
# submission (repository.DUPLICATES_LOCK): more lanes would only hold connections waiting for it.
SUBMISSION_LANES = 2


# The task read model and the history: a group of its own, read from the earliest offset, so a new
# deployment builds them from the topic's retained history.
@router.subscriber(APPLICATION_STATE_CHANGED, **keyed_batch_options("review.tasks"))
async def on_state_changed(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume_in_key_order(resources.dead_letters, message.raw_message, parse_state_changed,  # type: ignore[arg-type]
                               lambda event: tasks.on_state_changed(resources.pool, event, resources.temporal))


# Notify could not deliver an SMS: someone phones the enterprise.
@router.subscriber(PHONE_TASK_CREATED, decoder=raw_body, **subscriber_options("review.phone-tasks"))
async def on_phone_task_created(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_model(PhoneTaskCreated, raw),
                  lambda event: tasks.on_phone_task(resources.pool, event))


# Its own group: the facts for the pre-checks never wait behind the state-change read model.
@router.subscriber(SUBMISSION_RECORDED, **keyed_batch_options("review.submissions"))
async def on_submission_recorded(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume_in_key_order(
        resources.dead_letters, message.raw_message, lambda raw: parse_model(SubmissionRecorded, raw),  # type: ignore[arg-type]
        lambda event: rules.record_submission(resources.pool, event), lanes=SUBMISSION_LANES,
    )
