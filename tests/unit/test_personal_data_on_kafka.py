"""Raw ID and mobile numbers do not stay on Kafka (issue 14, defect 8): the inbound topics (the
portals' events, which carry them) are short-lived, and a dead letter keeps an inbound message with
its numbers masked."""

from __future__ import annotations

import json
from typing import Any

from aiokafka import ConsumerRecord

from subsidy.contracts import ALL_TOPICS, dlq, topics
from subsidy.contracts.topics import INBOUND_RETENTION_MS
from subsidy.messaging import DLQ_REDACTED, DLQ_REASON, DeadLetters, redact_dead_letter
from tests.fixtures import events as fx

DAY_MS = 24 * 3600 * 1000


def test_inbound_topics_keep_their_messages_a_week_at_most_and_their_dlqs_a_month() -> None:
    by_name = {spec.name: spec for spec in ALL_TOPICS}
    assert INBOUND_RETENTION_MS <= 7 * DAY_MS
    for topic in topics.INBOUND_TOPICS:
        assert by_name[topic].retention_ms == INBOUND_RETENTION_MS, topic
        assert by_name[dlq(topic)].retention_ms == 30 * DAY_MS, topic
    for topic in topics.PLATFORM_TOPICS:  # no raw personal data: the broker's default
        assert by_name[topic].retention_ms is None, topic


def test_an_inbound_dead_letter_keeps_the_message_with_every_number_masked() -> None:
    for event_type in (topics.LONGGANG_APPLICATION_SUBMITTED, topics.SHENZHEN_APPLICATION_SUBMITTED, topics.SMS_DELIVERY_REPORTED):
        topic, event = fx.example_event(event_type)
        raw = fx.encode(event)
        assert any(value.encode() in raw for value in fx.PERSONAL_VALUES)
        kept, redacted = redact_dead_letter(topic, raw)
        assert redacted
        assert not any(value.encode() in kept for value in fx.PERSONAL_VALUES), event_type
        masked = json.loads(kept)  # still the message: JSON, the same fields, the application number
        assert masked["id"] == event["id"] and masked["subject"] == event["subject"]
        assert masked["data"].keys() == event["data"].keys()


def test_a_body_that_is_not_json_is_masked_as_text_and_a_platform_topics_is_kept_as_is() -> None:
    broken = f'{{"specversion": "1.0", "mobile": "{fx.CONTACT_MOBILE}", "id": "{fx.LEGAL_REP_ID}'.encode()
    kept, redacted = redact_dead_letter(topics.PORTAL_LONGGANG_APPLICATIONS, broken)
    assert redacted and fx.CONTACT_MOBILE.encode() not in kept and fx.LEGAL_REP_ID.encode() not in kept
    assert kept.startswith(b'{"specversion": "1.0", "mobile": "138****8000"')
    sealed = b'{"ct": "x13912345678y"}'  # e.g. ciphertext that happens to hold a mobile's shape
    assert redact_dead_letter(topics.CONTACT_RECORDED, sealed) == (sealed, False)


def test_numbers_sent_as_json_numbers_or_malformed_are_masked_in_a_dead_letter() -> None:
    topic, event = fx.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    applicant = event["data"]["applicant"]
    applicant["contact"]["mobile"] = 13800138000
    applicant["legal_representative"]["id_number"] = 440307199003071239
    applicant["contact"]["id_number"] = "ID440307198512154564"  # the invalid IDs and mobiles the DLQ receives
    event["data"]["declarations"]["hotline_mobile"] = 1380013800
    kept, redacted = redact_dead_letter(topic, fx.encode(event))
    for raw in (b"13800138000", b"440307199003071239", b"440307198512154564", b"1380013800"):
        assert raw not in kept, raw
    masked = json.loads(kept)
    assert masked["data"]["applicant"]["contact"]["mobile"] == "138****8000"
    assert masked["data"]["model_contracts"][0]["amount_fen"] == event["data"]["model_contracts"][0]["amount_fen"]
    _, receipt = fx.example_event(topics.SMS_DELIVERY_REPORTED)
    receipt["data"]["mobile"] = 15012345678
    assert b"15012345678" not in redact_dead_letter(topics.SMS_RECEIPTS, fx.encode(receipt))[0]


def test_a_body_that_is_not_json_is_masked_by_field_name_too() -> None:
    broken = b'{"contact": {"mobile": 1380013800, "id_number": "ID440307199003071239"}, "note": "13912345678", "x": "4403'
    kept, redacted = redact_dead_letter(topics.PORTAL_LONGGANG_APPLICATIONS, broken)
    assert redacted and kept == (
        b'{"contact": {"mobile": "**********", "id_number": "ID4*************1239"}, "note": "139****5678", "x": "4403')


def test_a_body_nested_too_deeply_is_masked_as_text_and_never_raises() -> None:
    for levels in (300, 900, 100_000):
        body = (b'{"specversion":"1.0","data":{"mobile":1380013800,"note":"13800138000","x":'
                + b"[" * levels + b"]" * levels + b"}}")
        kept, redacted = redact_dead_letter(topics.PORTAL_LONGGANG_APPLICATIONS, body)
        assert redacted and kept.startswith(b'{"specversion":"1.0","data":{"mobile":"**********","note":"138****8000","x":[[')


class _Pool:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    async def execute(self, _sql: str, *args: Any) -> None:
        self.rows.append(args)


class _Broker:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, dict[str, Any]]] = []

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        self.published.append((body, kwargs))


async def test_dead_letters_publish_the_redacted_body_and_say_so() -> None:
    topic, event = fx.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    raw = fx.encode(event)
    record = ConsumerRecord(topic=topic, partition=2, offset=41, timestamp=0, timestamp_type=0, key=b"LG2025-000123", value=raw,
                            checksum=None, serialized_key_size=13, serialized_value_size=len(raw), headers=())
    pool, broker = _Pool(), _Broker()
    await DeadLetters(broker, pool).send(record, raw, reason="processing_failed", detail="x")  # type: ignore[arg-type]
    [(body, sent)] = broker.published
    assert sent["topic"] == dlq(topic) and sent["key"] == b"LG2025-000123"
    assert sent["headers"][DLQ_REDACTED] == "1" and sent["headers"][DLQ_REASON] == "processing_failed"
    assert not any(value.encode() in body for value in fx.PERSONAL_VALUES)
    assert not any(value in repr(pool.rows) for value in fx.PERSONAL_VALUES)
