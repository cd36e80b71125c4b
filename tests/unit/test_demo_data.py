"""The demo's sample events are what a portal may send: they pass intake's validation (envelope,
payload, USCC / resident ID / mobile), are stamped inside their program's filing window (intake
judges a first submission by `submitted_at`), carry application numbers workflow ids accept, and the
bad one is refused for its identifier only."""

from __future__ import annotations

import json

import pytest

from cli import demo_data
from subsidy.contracts import topics
from subsidy.contracts.events import InvalidEvent, parse_event
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.identifiers import is_valid_mobile, is_valid_resident_id, is_valid_uscc
from subsidy.programs import programs

CASES = [
    (demo_data.LG, topics.PORTAL_LONGGANG_APPLICATIONS, topics.LONGGANG_APPLICATION_SUBMITTED, demo_data.longgang_application),
    (demo_data.SZ, topics.PORTAL_SHENZHEN_APPLICATIONS, topics.SHENZHEN_APPLICATION_SUBMITTED, demo_data.shenzhen_application),
]


@pytest.mark.parametrize(("program", "topic", "kind", "build"), CASES)
def test_each_sample_is_a_valid_first_submission_inside_its_window(program, topic, kind, build) -> None:
    run = demo_data.demo_run_id()
    for n in (1, 2):
        no = f"{program[:2]}2025-9{run}{n}"
        event = demo_data.envelope(kind, topic, build(no, n))
        parsed = parse_event(topic, json.dumps(event, ensure_ascii=False).encode())
        assert parsed.envelope.subject == no and event["source"] == f"urn:portal:{demo_data.SOURCES[topic][1]}"
        assert programs()[program].filing.accepts(parsed.payload.submitted_at)
        assert application_workflow_id(program, no)  # the shape workflow ids accept
    applicant = build("LG2025-900001", 1)["applicant"]
    assert is_valid_uscc(applicant["uscc"]) and is_valid_mobile(applicant["contact"]["mobile"])
    assert "示例" in applicant["name"] and "演示" in applicant["name"]  # obviously made up
    for value in demo_data.personal_values([build("LG2025-900001", 1)]):
        assert is_valid_resident_id(value) if len(value) == 18 else is_valid_mobile(value)


def test_the_bad_sample_is_refused_for_its_identifier() -> None:
    bad = demo_data.with_bad_uscc(demo_data.longgang_application("LG2025-900009", 9))
    event = demo_data.envelope(topics.LONGGANG_APPLICATION_SUBMITTED, topics.PORTAL_LONGGANG_APPLICATIONS, bad)
    with pytest.raises(InvalidEvent) as refused:
        parse_event(topics.PORTAL_LONGGANG_APPLICATIONS, json.dumps(event, ensure_ascii=False).encode())
    assert refused.value.reason_code == "invalid_identifier" and "uscc" in str(refused.value.detail)


def test_every_status_has_a_chinese_name() -> None:
    from subsidy.contracts.lifecycle import Status

    assert {s.value for s in Status} <= set(demo_data.STATUS_ZH)
    assert demo_data.status_zh("published") == "published (已公示)"
