from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from subsidy.contracts import (
    ALL_TOPICS,
    EVENT_TYPES_BY_TOPIC,
    PAYLOAD_MODELS,
    InvalidEvent,
    ParsedEvent,
    dlq,
    parse_event,
    topics,
)
from subsidy.contracts.events import (
    AppointmentBooked,
    ApplicationWithdrawn,
    FormDownloaded,
    GuangdongSubmissionReceived,
    LonggangApplicationResubmitted,
    LonggangApplicationSubmitted,
    PaperReceived,
    ShenzhenApplicationResubmitted,
    ShenzhenApplicationSubmitted,
    SmsDeliveryReported,
)
from tests.fixtures import events as fx

EXPECTED_MODEL = {
    topics.LONGGANG_APPLICATION_SUBMITTED: LonggangApplicationSubmitted,
    topics.LONGGANG_APPLICATION_RESUBMITTED: LonggangApplicationResubmitted,
    topics.LONGGANG_APPLICATION_WITHDRAWN: ApplicationWithdrawn,
    topics.LONGGANG_FORM_DOWNLOADED: FormDownloaded,
    topics.GUANGDONG_SUBMISSION_RECEIVED: GuangdongSubmissionReceived,
    topics.SHENZHEN_APPLICATION_SUBMITTED: ShenzhenApplicationSubmitted,
    topics.SHENZHEN_APPLICATION_RESUBMITTED: ShenzhenApplicationResubmitted,
    topics.SHENZHEN_APPLICATION_WITHDRAWN: ApplicationWithdrawn,
    topics.SHENZHEN_APPOINTMENT_BOOKED: AppointmentBooked,
    topics.WINDOW_PAPER_RECEIVED: PaperReceived,
    topics.SMS_DELIVERY_REPORTED: SmsDeliveryReported,
}

LG = topics.LONGGANG_APPLICATION_SUBMITTED


def _parse(event_type: str, mutate: Callable[[dict[str, Any]], None] | None = None) -> ParsedEvent:
    topic, event = fx.example_event(event_type)
    if mutate is not None:
        mutate(event)
    return parse_event(topic, fx.encode(event))


def _rejection(event_type: str, mutate: Callable[[dict[str, Any]], None]) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        _parse(event_type, mutate)
    return info.value


# --- Topics --------------------------------------------------------------------------------


def test_topic_layout() -> None:
    by_name = {spec.name: spec for spec in ALL_TOPICS}
    assert len(by_name) == len(ALL_TOPICS)
    for topic in EVENT_TYPES_BY_TOPIC:
        assert by_name[topic].partitions == 6
        assert by_name[dlq(topic)].partitions == 1
    for topic in topics.PLATFORM_TOPICS:
        assert by_name[topic].partitions == 6
    assert dlq("windows.paper.v1") == "windows.paper.v1.dlq"


def test_every_allowed_type_has_a_payload_model() -> None:
    allowed = set().union(*EVENT_TYPES_BY_TOPIC.values())
    assert allowed == set(PAYLOAD_MODELS) == set(EXPECTED_MODEL) == set(fx.EXAMPLES)


# --- The CONTRACTS.md examples -------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EXPECTED_MODEL))
def test_contract_example_parses_into_its_model(event_type: str) -> None:
    parsed = _parse(event_type)
    assert type(parsed.payload) is EXPECTED_MODEL[event_type]
    assert parsed.type == event_type
    assert parsed.event_id == "evt-0001"
    assert parsed.envelope.time.utcoffset() is not None


def test_longgang_example_values() -> None:
    payload = _parse(LG).payload
    assert isinstance(payload, LonggangApplicationSubmitted)
    assert payload.applicant.legal_representative.id_number == fx.LEGAL_REP_ID
    assert payload.applicant.contact.mobile == fx.CONTACT_MOBILE
    assert payload.applicant.head_office_uscc is None
    contract = payload.model_contracts[0]
    assert contract.amount_fen == 150_000_000
    assert contract.invoices[0].invoice_no == "25442000000012345678"
    assert contract.security_assessment is None
    assert payload.materials[0].kind == "business_license"


def test_longgang_with_security_assessment_and_branch() -> None:
    def mutate(event: dict[str, Any]) -> None:
        event["data"]["model_contracts"][0]["security_assessment"] = fx.security_assessment()
        event["data"]["applicant"]["is_branch"] = True
        event["data"]["applicant"]["head_office_uscc"] = fx.HEAD_OFFICE_USCC

    payload = _parse(LG, mutate).payload
    assert isinstance(payload, LonggangApplicationSubmitted)
    assessment = payload.model_contracts[0].security_assessment
    assert assessment is not None and assessment.level == 3
    assert payload.applicant.head_office_uscc == fx.HEAD_OFFICE_USCC


def test_sms_mobile_is_normalised() -> None:
    def mutate(event: dict[str, Any]) -> None:
        event["data"]["mobile"] = "+86 150-1234-5678"

    payload = _parse(topics.SMS_DELIVERY_REPORTED, mutate).payload
    assert isinstance(payload, SmsDeliveryReported)
    assert payload.mobile == fx.SMS_MOBILE


def test_unknown_fields_are_kept_at_every_level() -> None:
    def mutate(event: dict[str, Any]) -> None:
        event["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        data = event["data"]
        data["portal_version"] = "3.2"
        data["applicant"]["employees"] = 42
        data["applicant"]["contact"]["email"] = "lisi@example.com"
        data["model_contracts"][0]["invoices"][0]["tax_fen"] = 8_490_566
        data["materials"][0]["uploaded_by"] = {"role": "contact"}

    parsed = _parse(LG, mutate)
    assert parsed.envelope.model_dump()["traceparent"].startswith("00-")
    dumped = parsed.payload.model_dump(mode="json")
    assert dumped["portal_version"] == "3.2"
    assert dumped["applicant"]["employees"] == 42
    assert dumped["applicant"]["contact"]["email"] == "lisi@example.com"
    assert dumped["model_contracts"][0]["invoices"][0]["tax_fen"] == 8_490_566
    assert dumped["materials"][0]["uploaded_by"] == {"role": "contact"}
    # And the round trip parses again to the same thing.
    again = LonggangApplicationSubmitted.model_validate_json(parsed.payload.model_dump_json())
    assert again == parsed.payload


def test_a_new_program_is_accepted_when_configured() -> None:
    def mutate(event: dict[str, Any]) -> None:
        event["data"]["program"] = "LG-AI-MODEL-2026"

    topic, event = fx.example_event(LG)
    mutate(event)
    parsed = parse_event(topic, fx.encode(event), known_programs={"LG-AI-MODEL-2026"})
    assert isinstance(parsed.payload, LonggangApplicationSubmitted)
    assert parsed.payload.program == "LG-AI-MODEL-2026"


def test_a_sha256_in_upper_case_hex_is_the_same_hash_in_the_platforms_lower_case() -> None:
    """The platform issues hexdigest() (lower case) and compares hashes as strings: a correct form
    hash sent in upper case is that hash, not a wrong form."""
    topic, event = fx.example_event(topics.GUANGDONG_SUBMISSION_RECEIVED)
    event["data"]["form_sha256"] = event["data"]["form_sha256"].upper()
    payload = parse_event(topic, fx.encode(event)).payload
    assert isinstance(payload, GuangdongSubmissionReceived)
    assert payload.form_sha256 == fx.sha256("form-LG2025-000123-v1")
    topic, event = fx.example_event(LG)
    event["data"]["materials"][0]["sha256"] = "AB" * 32
    submitted = parse_event(topic, fx.encode(event)).payload
    assert isinstance(submitted, LonggangApplicationSubmitted)
    assert submitted.materials[0].sha256 == "ab" * 32


# --- Rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe\x00garbage", b'{"specversion": NaN}', b""]
)
def test_not_json(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(topics.PORTAL_LONGGANG_APPLICATIONS, raw)
    assert info.value.reason_code == "not_json"


def _nested(event_type: str, levels: int) -> tuple[str, bytes]:
    """An example event whose data has an extension field nested `levels` deep (objects and
    arrays in turn), written as text: json.dumps itself gives up before the parser does."""
    topic, event = fx.example_event(event_type)
    event["data"]["portal_extra"] = "NESTED"
    opening = "".join('{"k":' if level % 2 else "[" for level in range(levels))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(levels)))
    return topic, fx.encode(event).replace(b'"NESTED"', f'{opening}"x"{closing}'.encode())


MAX_JSON_DEPTH = 64  # events.MAX_JSON_DEPTH, the contract's bound
TOO_DEEP = "JSON nested too deeply (more than 64 levels)"


# The envelope is level 1 and data level 2: an extension field of data nested `levels` deep reaches
# level levels + 2. 300: deep enough that pydantic's model_dump failed after the workflow started;
# 900: deep enough that the masking of its dead letter failed.
@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - 1, 300, 900])
def test_json_nested_deeper_than_the_bound_is_not_json(levels: int) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(*_nested(LG, levels))
    assert (info.value.reason_code, info.value.detail) == ("not_json", TOO_DEEP)


def test_json_too_deep_for_the_parser_itself_is_not_json_not_a_crash() -> None:
    raw = b'{"specversion":"1.0","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidEvent) as info:
        parse_event(topics.PORTAL_LONGGANG_APPLICATIONS, raw)
    assert (info.value.reason_code, info.value.detail) == ("not_json", TOO_DEEP)


def test_json_nested_as_deep_as_the_bound_is_kept_and_dumps() -> None:
    parsed = parse_event(*_nested(LG, MAX_JSON_DEPTH - 2))
    extra = parsed.payload.model_dump(mode="json")["portal_extra"]
    for _ in range(MAX_JSON_DEPTH - 2):
        extra = extra["k"] if isinstance(extra, dict) else extra[0]
    assert extra == "x"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or, with value=..., delete) the dotted `path` in an event; integers index lists."""

    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = event
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is ...:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        _set("specversion", ...),
        _set("specversion", "0.3"),
        _set("id", ""),
        _set("source", "urn:portal:evil"),
        _set("source", "https://example.com"),
        _set("time", "2025-12-09T10:31:00"),  # naive
        _set("time", "yesterday"),
        _set("subject", ...),
        _set("data", ...),
        _set("data", "not an object"),
    ],
)
def test_bad_envelope(mutate: Callable[[dict[str, Any]], None]) -> None:
    assert _rejection(LG, mutate).reason_code == "bad_envelope"


def test_envelope_that_is_not_an_object() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(topics.PORTAL_LONGGANG_APPLICATIONS, b"[1, 2]")
    assert info.value.reason_code == "bad_envelope"


@pytest.mark.parametrize(
    "event_type", [topics.SHENZHEN_APPLICATION_SUBMITTED, "cn.gov.longgang.application.approved"]
)
def test_unknown_type_on_topic(event_type: str) -> None:
    assert _rejection(LG, _set("type", event_type)).reason_code == "unknown_type"


def test_unknown_program() -> None:
    rejection = _rejection(LG, _set("data.program", "LG-AI-MODEL-2026"))
    assert rejection.reason_code == "unknown_program"
    withdrawn = topics.SHENZHEN_APPLICATION_WITHDRAWN
    rejection = _rejection(withdrawn, _set("data.program", "SZ-OTHER-2025"))
    assert rejection.reason_code == "unknown_program"


BAD_ID = "440307199003071238"  # wrong check digit
BAD_DATE_ID = "440307199002301235"  # 1990-02-30
BAD_MOBILE = "12800138000"
BAD_USCC = "91440300MA5G12345M"


@pytest.mark.parametrize(
    ("event_type", "path", "value"),
    [
        (LG, "data.applicant.legal_representative.id_number", BAD_ID),
        (LG, "data.applicant.contact.id_number", BAD_DATE_ID),
        (LG, "data.applicant.contact.mobile", BAD_MOBILE),
        (LG, "data.applicant.uscc", BAD_USCC),
        (LG, "data.applicant.head_office_uscc", BAD_USCC),
        (LG, "data.applicant.related_party_usccs.0", BAD_USCC),
        (LG, "data.model_contracts.0.supplier_uscc", BAD_USCC),
        (topics.SHENZHEN_APPLICATION_SUBMITTED, "data.applicant.contact.mobile", BAD_MOBILE),
        (topics.SMS_DELIVERY_REPORTED, "data.mobile", BAD_MOBILE),
    ],
)
def test_invalid_identifier(event_type: str, path: str, value: str) -> None:
    rejection = _rejection(event_type, _set(path, value))
    assert rejection.reason_code == "invalid_identifier"
    assert path in rejection.detail
    assert value not in rejection.detail
    assert value not in str(rejection)


@pytest.mark.parametrize(
    "mutate",
    [
        _set("data.model_contracts.0.amount_fen", 150000000.0),
        _set("data.model_contracts.0.amount_fen", 1.5e8),
        _set("data.model_contracts.0.invoices.0.amount_fen", "150000000"),
        _set("data.model_contracts.0.payments.0.amount_fen", True),
        _set("data.model_contracts.0.amount_fen", -1),
    ],
)
def test_money_must_be_non_negative_integer_fen(mutate: Callable[[dict[str, Any]], None]) -> None:
    rejection = _rejection(LG, mutate)
    assert rejection.reason_code == "invalid_payload"
    assert "amount_fen" in rejection.detail


@pytest.mark.parametrize(
    "mutate",
    [
        _set("data.submitted_at", "2025-12-09T10:31:00"),  # naive
        _set("data.submitted_at", ...),
        _set("data.materials.0.kind", "selfie"),
        _set("data.materials.0.sha256", "…"),
        _set("data.model_contracts.0.signed_on", "15/01/2025"),
        _set("data.applicant", "深圳市示例智能科技有限公司"),
        _set("data.application_no", "LG2025 000123"),
    ],
)
def test_invalid_payload(mutate: Callable[[dict[str, Any]], None]) -> None:
    assert _rejection(LG, mutate).reason_code == "invalid_payload"


def test_naive_datetimes_are_rejected_in_every_event_type() -> None:
    booked = topics.SHENZHEN_APPOINTMENT_BOOKED
    rejection = _rejection(booked, _set("data.slot_start", "2025-12-18T09:30:00"))
    assert rejection.reason_code == "invalid_payload"
    assert "data.slot_start" in rejection.detail
    sms = topics.SMS_DELIVERY_REPORTED
    rejection = _rejection(sms, _set("data.reported_at", "2025-12-09 10:32:05"))
    assert rejection.reason_code == "invalid_payload"


def test_appointment_must_end_after_it_starts() -> None:
    booked = topics.SHENZHEN_APPOINTMENT_BOOKED
    rejection = _rejection(booked, _set("data.slot_end", "2025-12-18T09:00:00+08:00"))
    assert rejection.reason_code == "invalid_payload"


def test_subject_mismatch() -> None:
    rejection = _rejection(LG, _set("subject", "LG2025-000999"))
    assert rejection.reason_code == "subject_mismatch"


def test_detail_never_contains_identifier_values_even_among_other_errors() -> None:
    def mutate(event: dict[str, Any]) -> None:
        applicant = event["data"]["applicant"]
        applicant["legal_representative"]["id_number"] = BAD_ID
        applicant["contact"]["id_number"] = BAD_DATE_ID
        applicant["contact"]["mobile"] = BAD_MOBILE
        applicant["uscc"] = BAD_USCC
        event["data"]["model_contracts"][0]["amount_fen"] = 1.5

    rejection = _rejection(LG, mutate)
    assert rejection.reason_code == "invalid_payload"  # not only identifiers are wrong
    for value in (BAD_ID, BAD_DATE_ID, BAD_MOBILE, BAD_USCC):
        assert value not in rejection.detail
    assert "check digit" in rejection.detail and "birth date" in rejection.detail


def test_identifiers_of_the_wrong_json_type_do_not_leak() -> None:
    rejection = _rejection(LG, _set("data.applicant.contact.mobile", 13800138000))
    assert rejection.reason_code == "invalid_payload"
    assert "13800138000" not in rejection.detail
    contact = {"name": "李四", "mobile": "13800138000x"}
    rejection = _rejection(LG, _set("data.applicant.contact", contact))
    assert "13800138000" not in rejection.detail


def test_unknown_type_detail_is_masked() -> None:
    rejection = _rejection(LG, _set("type", "cn.gov.longgang.360426199101010071"))
    assert rejection.reason_code == "unknown_type"
    assert "360426199101010071" not in rejection.detail


def test_str_input_is_accepted_too() -> None:
    topic, event = fx.example_event(LG)
    parsed = parse_event(topic, json.dumps(event))  # str is accepted too
    assert parsed.application_no == "LG2025-000123"


# --- the lifecycle contracts: roles, names, human steps, the state-changed event -----------------


def test_the_officials_workflow_roles_are_their_token_roles() -> None:
    from subsidy.contracts.lifecycle import Role
    from subsidy.identity.claims import StaffRole

    acting = {StaffRole.LG_ONLINE_REVIEWER, StaffRole.LG_BACK_OFFICE_REVIEWER, StaffRole.SZ_PRE_REVIEWER,
              StaffRole.WINDOW_CLERK, StaffRole.PROGRAM_ADMIN}  # fmt: skip
    assert {Role(role.value) for role in acting} <= set(Role)
    # The roles of recorded histories still decode.
    assert Role("district_reviewer") is Role.DISTRICT_REVIEWER and Role("municipal_pre_reviewer") is Role.MUNICIPAL_PRE_REVIEWER


def test_human_steps_name_their_updates_commands_and_roles() -> None:
    from subsidy.contracts import lifecycle as lc
    from subsidy.contracts.lifecycle import HUMAN_STEPS, Role, Status, review_step, step_for

    assert {key: (s.update, s.command, {r.value for r in s.roles}) for key, s in HUMAN_STEPS.items()} == {
        "lg_online_review": (lc.UPDATE_DECIDE_ONLINE_REVIEW, lc.DecideOnlineReview, {"lg_online_reviewer"}),
        "lg_back_office_review": (lc.UPDATE_DECIDE_BACK_OFFICE_REVIEW, lc.DecideBackOfficeReview, {"lg_back_office_reviewer"}),
        "lg_confirm_notice_by_phone": (lc.UPDATE_CONFIRM_NOTICE_BY_PHONE, lc.ConfirmNoticeByPhone, {"lg_back_office_reviewer"}),
        "lg_paper_receipt": (lc.UPDATE_RECORD_PAPER_RECEIPT, lc.RecordPaperReceipt, {"window_clerk"}),
        "lg_award": (lc.UPDATE_RECORD_AWARD, lc.RecordAward, {"review_service", "program_admin"}),
        "sz_formal_pre_review": (lc.UPDATE_DECIDE_FORMAL_PRE_REVIEW, lc.DecideFormalPreReview, {"sz_pre_reviewer"}),
        "sz_paper_receipt": (lc.UPDATE_RECORD_PAPER_RECEIPT, lc.RecordPaperReceipt, {"window_clerk"}),
        "sz_expert_scoring": (lc.UPDATE_RECORD_EXPERT_SCORING, lc.RecordExpertScoring, {"review_service", "program_admin"}),
        "sz_tiering": (lc.UPDATE_RECORD_TIERING, lc.RecordTiering, {"review_service", "program_admin"}),
        "publish": (lc.UPDATE_PUBLISH, lc.PublishNotice, {"publication", "program_admin"}),
    }
    legacy = {Role.DISTRICT_REVIEWER, Role.MUNICIPAL_PRE_REVIEWER}
    assert all(not (step.roles & legacy) for step in HUMAN_STEPS.values())
    assert HUMAN_STEPS["lg_award"].acting_role(["auditor", "program_admin"]) is Role.PROGRAM_ADMIN
    assert HUMAN_STEPS["lg_online_review"].acting_role(["lg_back_office_reviewer"]) is None
    assert review_step(lc.LONGGANG_LIFECYCLE, Status.BACK_OFFICE_REVIEW) is HUMAN_STEPS["lg_back_office_review"]
    assert review_step(lc.SHENZHEN_LIFECYCLE, "formal_pre_review") is HUMAN_STEPS["sz_formal_pre_review"]
    assert review_step(lc.LONGGANG_LIFECYCLE, Status.AWAITING_PAPER) is None
    assert step_for(lc.SHENZHEN_LIFECYCLE, lc.UPDATE_RECORD_PAPER_RECEIPT) is HUMAN_STEPS["sz_paper_receipt"]
    assert step_for(lc.PUBLICATION_BATCH, lc.UPDATE_PUBLISH) is HUMAN_STEPS["publish"]
    assert step_for(lc.SHENZHEN_LIFECYCLE, lc.UPDATE_RECORD_AWARD) is None


def test_the_workflows_declare_exactly_the_contract_names() -> None:
    from temporalio.workflow import _Definition

    from subsidy.contracts import lifecycle as lc
    from workflows.lifecycle.longgang import LonggangModelCallLifecycle
    from workflows.lifecycle.shenzhen import ShenzhenGovAiScenarioLifecycle
    from workflows.publication.workflows import PublicationBatch

    def names(cls: type) -> tuple[str | None, set[str], set[str], set[str]]:
        definition = _Definition.must_from_class(cls)
        return definition.name, set(definition.updates), set(definition.signals), set(definition.queries)

    shared_updates = {lc.UPDATE_RESUBMIT, lc.UPDATE_WITHDRAW, lc.UPDATE_RECORD_PAPER_RECEIPT}
    assert names(LonggangModelCallLifecycle) == (
        lc.LONGGANG_LIFECYCLE,
        shared_updates | {lc.UPDATE_DECIDE_ONLINE_REVIEW, lc.UPDATE_RECORD_GUANGDONG_SUBMISSION, lc.UPDATE_DECIDE_BACK_OFFICE_REVIEW,
                          lc.UPDATE_CONFIRM_NOTICE_BY_PHONE, lc.UPDATE_RECORD_AWARD, lc.UPDATE_REVISE_AWARD},
        {lc.SIGNAL_PUBLISHED, lc.SIGNAL_SMS_DELIVERY_REPORTED, lc.SIGNAL_FORM_DOWNLOADED},
        {lc.QUERY_STATUS},
    )  # fmt: skip
    assert names(ShenzhenGovAiScenarioLifecycle) == (
        lc.SHENZHEN_LIFECYCLE,
        shared_updates | {lc.UPDATE_DECIDE_FORMAL_PRE_REVIEW, lc.UPDATE_RECORD_EXPERT_SCORING, lc.UPDATE_RECORD_TIERING},
        {lc.SIGNAL_PUBLISHED, lc.SIGNAL_APPOINTMENT_BOOKED},
        {lc.QUERY_STATUS},
    )
    assert names(PublicationBatch) == (lc.PUBLICATION_BATCH, {lc.UPDATE_PUBLISH},
                                       {lc.SIGNAL_ENLIST, lc.SIGNAL_DELIST, lc.SIGNAL_OBJECTIONS_CHANGED}, {lc.QUERY_SUMMARY, lc.QUERY_ENTRIES})
    # The names recorded in histories and used by running workflows, spelled out once more.
    assert (lc.UPDATE_DECIDE_ONLINE_REVIEW, lc.SIGNAL_SMS_DELIVERY_REPORTED, lc.QUERY_STATUS, lc.SIGNAL_PUBLISHED) == (
        "decide_online_review", "sms_delivery_reported", "status", "published")


def test_a_state_changed_event_from_before_the_typed_fields_still_parses() -> None:
    from subsidy.contracts.platform_events import parse_state_changed

    old = {"event_id": "0b4f7c1e-2d7a-4c1b-9a51-3b1f0e3d2c10", "program": "LG-AI-MODEL-2025", "application_no": "LG2025-000123",
           "from_state": "back_office_review", "to_state": "awaiting_sms_delivery", "reason": "back_office_approved",
           "actor": "staff:LG-0042", "deadline": None, "occurred_at": "2025-12-29T11:00:00+08:00",
           "correlation_id": "c-1", "version": 1, "some_later_field": 1}  # fmt: skip
    event = parse_state_changed(json.dumps(old).encode())
    assert (event.contract_revision, event.notice_kind, event.reasons, event.award_fen, event.awaiting_step) == (1, None, (), None, None)


def test_intake_writes_every_typed_field_of_a_state_change_into_its_event() -> None:
    from datetime import datetime, timezone

    from services.intake.activities import state_changed_event
    from subsidy.contracts.lifecycle import STATE_CHANGE_REVISION, NoticeKind, StateChange, Status
    from subsidy.contracts.platform_events import parse_state_changed

    change = StateChange(
        event_id="0b4f7c1e-2d7a-4c1b-9a51-3b1f0e3d2c10", program="SZ-GOVAI-SCENARIO-2025", application_no="SZ2025-004512",
        from_status=Status.AWAITING_PUBLICATION, to_status=Status.PUBLISHED, reason="notice:GS-1", actor="staff:sz-admin",
        occurred_at=datetime(2026, 1, 20, 1, 0, tzinfo=timezone.utc), correlation_id="c-1", version=2,
        contract_revision=STATE_CHANGE_REVISION, notice_kind=NoticeKind.PUBLISHED, reasons=("a", "b"), award_fen=250_000_000,
        tier=2, notice_id="GS-1", awaiting_step=None, window_code="SZ-CIVIC-CENTER-WEST", gd_case_no=None, form_id=None,
    )  # fmt: skip
    event = parse_state_changed(state_changed_event(change).model_dump_json().encode())
    typed = set(StateChange.model_fields) - {"from_status", "to_status"}
    assert {name for name in typed if getattr(change, name) not in (None, ())} <= set(event.model_dump(exclude_defaults=True)) | {"event_id"}
    assert (event.contract_revision, event.notice_kind, event.reasons, event.award_fen, event.tier, event.notice_id, event.window_code) == (
        2, "published", ("a", "b"), 250_000_000, 2, "GS-1", "SZ-CIVIC-CENTER-WEST")
    assert set(StateChange.model_fields) - {"from_status", "to_status"} <= set(type(event).model_fields)


def test_every_refusal_of_the_workflows_starts_with_a_known_code() -> None:
    import re
    from pathlib import Path

    from subsidy.contracts.lifecycle import BUSY_REFUSAL, RefusalCode, refusal_code

    root = Path(__file__).resolve().parents[2] / "workflows"
    raised = [m for path in root.rglob("*.py") for m in re.findall(r'raise ValueError\((f?"[^"]*"|[^)]*)', path.read_text(encoding="utf-8"))]
    assert len(raised) >= 20
    for text in raised:
        if BUSY_REFUSAL in text or "BUSY_REFUSAL" in text:
            continue
        code = re.match(r'f?"([a-z_]+):', text)
        assert code is not None and code.group(1) in {c.value for c in RefusalCode}, text
    assert refusal_code(f"{BUSY_REFUSAL} another decision is being applied; retry") is RefusalCode.BUSY
    assert refusal_code("forbidden: role lg_online_reviewer may not take this decision") is RefusalCode.FORBIDDEN
    assert refusal_code("late: paper received after the deadline") is RefusalCode.LATE
    assert refusal_code("Workflow update failed") is None and refusal_code("unknown_code: x") is None


# JSON may spell NUL and unpaired surrogates as escapes and Python decodes them, but neither fits in
# PostgreSQL text or jsonb nor encodes as UTF-8: refused here, not failing at intake's first write.
@pytest.mark.parametrize("escape", [b"\\u0000", b"\\ud800", b"\\udfff"])
@pytest.mark.parametrize("where", ["data.applicant.name", "id", "key"])
def test_nul_or_a_lone_surrogate_in_any_string_or_key_is_invalid_payload(escape: bytes, where: str) -> None:
    topic, event = fx.example_event(LG)
    if where == "data.applicant.name":
        event["data"]["applicant"]["name"] = "UNSTORABLE"
    elif where == "id":
        event["id"] = "UNSTORABLE"
    else:
        event["data"]["portal_extra"] = {"UNSTORABLE": 1}
    raw = fx.encode(event).replace(b'"UNSTORABLE"', b'"a' + escape + b'b"')
    with pytest.raises(InvalidEvent) as info:
        parse_event(topic, raw)
    assert info.value.reason_code == "invalid_payload"
    assert "NUL" in info.value.detail and "\x00" not in info.value.detail


def test_a_surrogate_pair_escape_is_kept() -> None:
    topic, event = fx.example_event(LG)
    event["data"]["applicant"]["name"] = "PAIR"
    parsed = parse_event(topic, fx.encode(event).replace(b'"PAIR"', b'"\\ud83d\\ude00"'))
    assert parsed.payload.model_dump()["applicant"]["name"] == "\U0001f600"
