"""One application-number type for the contracts, the workflow ids and the services' paths (issue
14, defect 7): whatever an inbound event's payload accepts makes a workflow id, and whatever the
workflow id refuses is refused at parsing as `invalid_payload`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from subsidy.contracts import InvalidEvent, parse_event, topics
from subsidy.contracts.workflow_ids import APPLICATION_NO_PATTERN, ApplicationNo, application_workflow_id, is_application_no
from subsidy.web import ApiError, checked_application_no
from tests.fixtures import events as fx

ADAPTER: TypeAdapter[str] = TypeAdapter(ApplicationNo)
NOT_NUMBERS = ["LG-3e157e", "lg2025-000123", "LG2025-00012", "LG2025-0001234", "LG2025_000123", "LG2025-000123\n",
               "LG2025-٠٠٠١٢٣", "LGX2025-000123", "", "LG2025-000123 ", "L2025-000123"]
APPLICATION_TOPICS = [topics.LONGGANG_APPLICATION_SUBMITTED, topics.SHENZHEN_APPLICATION_SUBMITTED,
                      topics.LONGGANG_APPLICATION_WITHDRAWN, topics.WINDOW_PAPER_RECEIVED]


def _event(event_type: str, application_no: str) -> tuple[str, dict[str, Any]]:
    topic, event = fx.example_event(event_type)
    event["data"]["application_no"] = application_no
    event["subject"] = application_no
    return topic, event


def accepted_by_payload(application_no: str) -> bool:
    try:
        ADAPTER.validate_python(application_no)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("event_type", APPLICATION_TOPICS)
@pytest.mark.parametrize("bad", NOT_NUMBERS)
def test_what_the_workflow_id_refuses_the_payload_refuses_as_invalid_payload(event_type: str, bad: str) -> None:
    with pytest.raises(ValueError):
        application_workflow_id("LG-AI-MODEL-2025", bad)
    topic, event = _event(event_type, bad)
    with pytest.raises(InvalidEvent) as refused:
        parse_event(topic, fx.encode(event))
    assert refused.value.reason_code in ("invalid_payload", "bad_envelope")
    if bad and bad.isascii() and "\n" not in bad and " " not in bad:  # a well-formed subject: the payload refuses it
        assert refused.value.reason_code == "invalid_payload"


def test_the_issues_number_is_refused_at_parsing_not_at_the_workflow() -> None:
    topic, event = _event(topics.LONGGANG_APPLICATION_SUBMITTED, "LG-3e157e")
    with pytest.raises(InvalidEvent) as refused:
        parse_event(topic, fx.encode(event))
    assert refused.value.reason_code == "invalid_payload"
    assert "application_no" in refused.value.detail


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(APPLICATION_NO_PATTERN, fullmatch=True), st.text(max_size=20),
                 st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)))
def test_everything_the_payload_accepts_makes_a_workflow_id_and_nothing_else(text: str) -> None:
    if accepted_by_payload(text):
        assert is_application_no(text)
        assert application_workflow_id("SZ-GOVAI-SCENARIO-2025", text).endswith(f":{text}")
        assert checked_application_no(text) == text
    else:
        assert not is_application_no(text)
        with pytest.raises(ValueError):
            application_workflow_id("SZ-GOVAI-SCENARIO-2025", text)
        with pytest.raises(ApiError) as refused:
            checked_application_no(text)
        assert (refused.value.status, refused.value.code) == (400, "bad_application_no")


def test_the_contract_examples_are_application_numbers() -> None:
    for event_type in APPLICATION_TOPICS:
        topic, event = fx.example_event(event_type)
        parsed = parse_event(topic, fx.encode(event))
        assert is_application_no(parsed.payload.application_no)
