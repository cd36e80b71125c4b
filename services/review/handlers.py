"""Kafka entrypoints of the review service."""

from __future__ import annotations

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.review import pre_checks, service
from subsidy.contracts.platform_events import SubmissionRecorded, parse_model, parse_state_changed
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, SUBMISSION_RECORDED
from subsidy.messaging import consume, raw_body, subscriber_options
from subsidy.runtime import Resources

GROUP_ID = "review"
router = KafkaRouter()


@router.subscriber(APPLICATION_STATE_CHANGED, decoder=raw_body, **subscriber_options(GROUP_ID))
async def on_state_changed(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    await consume(resources.dead_letters, message.raw_message, body, parse_state_changed, lambda event: service.on_state_changed(resources.pool, event))


# Its own group: the facts for the pre-checks never wait behind the state-change read model.
@router.subscriber(SUBMISSION_RECORDED, decoder=raw_body, **subscriber_options("review.submissions"))
async def on_submission_recorded(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    await consume(
        resources.dead_letters, message.raw_message, body, lambda raw: parse_model(SubmissionRecorded, raw),
        lambda event: pre_checks.record_submission(resources.pool, event),
    )
