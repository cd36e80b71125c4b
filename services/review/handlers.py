"""Kafka entrypoints of the review service."""

from __future__ import annotations

from faststream.kafka import KafkaRouter

from services.review.rules import activities as rules
from services.review.tasks import service as tasks
from subsidy.contracts.platform_events import PhoneTaskCreated, SubmissionRecorded, parse_model, parse_state_changed
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, PHONE_TASK_CREATED, SUBMISSION_RECORDED
from subsidy.messaging import ConsumedMessage, consume, from_context, raw_body, subscriber_options
from subsidy.runtime import Resources

router = KafkaRouter()


# The task read model and the history: a group of its own, read from the earliest offset, so a new
# deployment builds them from the topic's retained history.
@router.subscriber(APPLICATION_STATE_CHANGED, decoder=raw_body, **subscriber_options("review.tasks"))
async def on_state_changed(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume(resources.dead_letters, message.raw_message, body, parse_state_changed,
                  lambda event: tasks.on_state_changed(resources.pool, event))


# Notify could not deliver an SMS: someone phones the enterprise.
@router.subscriber(PHONE_TASK_CREATED, decoder=raw_body, **subscriber_options("review.phone-tasks"))
async def on_phone_task_created(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_model(PhoneTaskCreated, raw),
                  lambda event: tasks.on_phone_task(resources.pool, event))


# Its own group: the facts for the pre-checks never wait behind the state-change read model.
@router.subscriber(SUBMISSION_RECORDED, decoder=raw_body, **subscriber_options("review.submissions"))
async def on_submission_recorded(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    await consume(
        resources.dead_letters, message.raw_message, body, lambda raw: parse_model(SubmissionRecorded, raw),
        lambda event: rules.record_submission(resources.pool, event),
    )
