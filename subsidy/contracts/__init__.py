"""Contracts shared by every service: inbound event models, topic names and layout."""

from subsidy.contracts.events import (
    KNOWN_PROGRAMS,
    PAYLOAD_MODELS,
    CloudEvent,
    InvalidEvent,
    ParsedEvent,
    ReasonCode,
    parse_event,
)
from subsidy.contracts.topics import ALL_TOPICS, EVENT_TYPES_BY_TOPIC, TopicSpec, dlq

__all__ = [
    "ALL_TOPICS",
    "EVENT_TYPES_BY_TOPIC",
    "KNOWN_PROGRAMS",
    "PAYLOAD_MODELS",
    "CloudEvent",
    "InvalidEvent",
    "ParsedEvent",
    "ReasonCode",
    "TopicSpec",
    "dlq",
    "parse_event",
]
