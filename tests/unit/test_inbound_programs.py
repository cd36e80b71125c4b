"""An inbound event against the configured programs (subsidy/programs/inbound.py): the program it
names is configured, and is a program of the lifecycle its portal's events belong to. What the
intake consumer and the webhook both parse with."""

from __future__ import annotations

from typing import Any

import pytest

from subsidy.contracts import InvalidEvent, topics
from subsidy.programs import LONGGANG_LIFECYCLE, SHENZHEN_LIFECYCLE, Program, load_programs
from subsidy.programs.inbound import parse_inbound
from tests.fixtures import events as fx

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


def configured(**extra: tuple[str, str]) -> dict[str, Program]:
    """The programs of subsidy/programs/, plus `code=(like, lifecycle)` copies of `like`."""
    programs = load_programs()
    for code, (like, lifecycle) in extra.items():
        programs[code.replace("_", "-")] = programs[like].model_copy(update={"code": code.replace("_", "-"), "lifecycle": lifecycle})
    return programs


def body(event_type: str, **data: Any) -> tuple[str, bytes]:
    topic, event = fx.example_event(event_type)
    event["data"].update(data)
    return topic, fx.encode(event)


@pytest.mark.parametrize(
    ("event_type", "program"),
    [
        (topics.SHENZHEN_APPLICATION_SUBMITTED, LG),
        (topics.SHENZHEN_APPLICATION_RESUBMITTED, LG),
        (topics.SHENZHEN_APPLICATION_WITHDRAWN, LG),
        (topics.LONGGANG_APPLICATION_SUBMITTED, SZ),
        (topics.LONGGANG_APPLICATION_RESUBMITTED, SZ),
        (topics.LONGGANG_APPLICATION_WITHDRAWN, SZ),
    ],
)
def test_a_portal_naming_a_program_of_the_other_lifecycle_is_refused(event_type: str, program: str) -> None:
    topic, raw = body(event_type, program=program)
    with pytest.raises(InvalidEvent) as info:
        parse_inbound(topic, raw, configured())
    assert info.value.reason_code == "program_mismatch"
    assert program in info.value.detail and event_type in info.value.detail


@pytest.mark.parametrize("event_type", sorted(fx.EXAMPLES))
def test_every_contract_example_names_a_program_of_its_lifecycle(event_type: str) -> None:
    topic, raw = body(event_type)
    assert parse_inbound(topic, raw, configured()).type == event_type


def test_the_programs_lifecycle_decides_not_its_name() -> None:
    programs = configured(LG_AI_MODEL_2026=(LG, LONGGANG_LIFECYCLE), XX_SCENARIO_2026=(SZ, SHENZHEN_LIFECYCLE))
    topic, raw = body(topics.LONGGANG_APPLICATION_SUBMITTED, program="LG-AI-MODEL-2026")
    assert parse_inbound(topic, raw, programs).payload.program == "LG-AI-MODEL-2026"  # type: ignore[union-attr]
    topic, raw = body(topics.SHENZHEN_APPLICATION_SUBMITTED, program="XX-SCENARIO-2026")
    assert parse_inbound(topic, raw, programs).payload.program == "XX-SCENARIO-2026"  # type: ignore[union-attr]
    topic, raw = body(topics.LONGGANG_APPLICATION_SUBMITTED, program="XX-SCENARIO-2026")
    with pytest.raises(InvalidEvent) as info:
        parse_inbound(topic, raw, programs)
    assert info.value.reason_code == "program_mismatch"


def test_a_program_not_configured_is_still_unknown() -> None:
    topic, raw = body(topics.LONGGANG_APPLICATION_SUBMITTED, program="LG-AI-MODEL-2026")
    with pytest.raises(InvalidEvent) as info:
        parse_inbound(topic, raw, configured())
    assert info.value.reason_code == "unknown_program"
