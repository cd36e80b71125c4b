"""Free text people type is masked where it enters (issue 14, defect 8a): the commands intake and
review build, the state changes the workflows record, the bodies review stores and audits."""

from __future__ import annotations

from datetime import UTC, datetime

from subsidy.contracts.lifecycle import Actor, DecideBackOfficeReview, Role, Withdraw
from subsidy.contracts.platform_events import ApplicationStateChanged
from subsidy.identifiers import mask_personal_data_in

MOBILE, ID_NUMBER = "13912345678", "11010519491231002X"
TEXT = f"电话 {MOBILE}，身份证 {ID_NUMBER}"
MASKED = "电话 139****5678，身份证 1101**********002X"


def test_the_commands_carry_reasons_masked() -> None:
    withdraw = Withdraw(actor=Actor(id="portal:longgang-qyfw", role=Role.PORTAL), withdrawn_at=datetime.now(UTC), reason=TEXT)
    decision = DecideBackOfficeReview(actor=Actor(id="staff:bo", role=Role.LG_BACK_OFFICE_REVIEWER), decision="reject", reasons=(TEXT,))
    assert withdraw.reason == MASKED and decision.reasons == (MASKED,)
    assert MOBILE not in withdraw.model_dump_json() + decision.model_dump_json()


def test_masking_twice_changes_nothing() -> None:
    withdraw = Withdraw(actor=Actor(id="portal:x", role=Role.PORTAL), withdrawn_at=datetime.now(UTC), reason=TEXT)
    assert Withdraw.model_validate_json(withdraw.model_dump_json()) == withdraw


def test_a_state_change_read_from_kafka_is_masked_even_if_an_older_one_was_not() -> None:
    event = ApplicationStateChanged.model_validate({
        "event_id": "e1", "program": "LG-AI-MODEL-2025", "application_no": "LG2025-000123", "from_state": "online_review",
        "to_state": "rejected", "reason": TEXT, "reasons": [TEXT], "actor": "staff:x", "occurred_at": datetime.now(UTC).isoformat(),
    })
    assert event.reason == MASKED and event.reasons == (MASKED,)


def test_a_request_body_is_masked_before_review_stores_or_audits_it() -> None:
    body = {"decision": "reject", "reasons": [TEXT, "材料不全"], "copies": 2, "nested": {"note": TEXT}}
    assert mask_personal_data_in(body) == {"decision": "reject", "reasons": [MASKED, "材料不全"], "copies": 2, "nested": {"note": MASKED}}
