"""Events the platform itself publishes (outbox -> Kafka). Past tense, one model per event."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from subsidy.identifiers import FreeText


class ApplicationStateChanged(BaseModel):
    """`subsidy.application.state-changed.v1`: a lifecycle workflow moved an application.

    Consumers act on the typed fields, never on `reason` (a phrase for people reading the history,
    which may be reworded). The typed fields from `contract_revision` on were added as optional
    fields: a compatible change, so the topic stays v1. Events already in the topic (and any an
    older workflow worker records) lack them and parse with the defaults, `contract_revision` 1:
    such an event's meaning is only in its reason (services/notify/notices.py reads it the legacy
    way, for those events only). Revision 2 (subsidy.contracts.lifecycle.STATE_CHANGE_REVISION):
    the workflow set the fields below at the transition.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    program: str
    application_no: str
    from_state: str | None
    to_state: str
    reason: FreeText | None = None
    actor: str
    deadline: AwareDatetime | None = None
    occurred_at: AwareDatetime
    correlation_id: str | None = None
    version: int | None = None  # the application's version (resubmissions) at the change
    contract_revision: int = 1  # 2: the typed fields below are set; 1: an event from before them
    notice_kind: str | None = None  # the SMS notice the change calls for (NoticeKind); None: none
    reasons: tuple[FreeText, ...] = ()  # the official's reasons (return, rejection, paper requested)
    award_fen: int | None = None  # the award (integer fen) as the lifecycle knows it at the change
    tier: int | None = None  # Shenzhen's tier as the lifecycle knows it at the change
    notice_id: str | None = None  # the public notice an application was published on
    awaiting_step: str | None = None  # the human step now open (a key of subsidy.contracts.lifecycle.HUMAN_STEPS)
    window_code: str | None = None  # where paper was received (on the change it led to)
    gd_case_no: str | None = None  # Longgang: the Guangdong portal's case number, once submitted there
    form_id: str | None = None  # Longgang: the watermarked form issued


class CalendarAlertRaised(BaseModel):
    """`subsidy.calendar.alert.v1`: a deadline could not be computed because a year has no official
    working-day calendar; an operator has to load that year's State Council schedule."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    year: int
    program: str
    application_no: str
    message: str
    occurred_at: AwareDatetime


class ContactRecorded(BaseModel):
    """`subsidy.application.contact-recorded.v1`: whom to text for an application (per version).
    The mobile number is sealed by intake (subsidy/crypto.py) with the context
    `<application_no>:applicant.contact.mobile`; only holders of the personal-data keys open it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    program: str
    application_no: str
    version: int
    applicant_name: str
    contact_mobile_sealed: dict[str, str]
    recorded_at: AwareDatetime


class SubmissionRecorded(BaseModel):
    """`subsidy.application.submission-recorded.v1`: one stored version of an application, as the
    portal sent it minus the people in it (legal representative, contact: names, ID and mobile
    numbers stay with intake). Review runs its automatic pre-checks on these facts."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    program: str
    application_no: str
    version: int
    applicant_uscc: str
    submitted_at: AwareDatetime
    facts: dict[str, Any]
    recorded_at: AwareDatetime


class PhoneTaskCreated(BaseModel):
    """`subsidy.notify.phone-task-created.v1`: an SMS could not be delivered by any provider."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    program: str
    application_no: str
    notice_kind: str
    reason: str
    created_at: AwareDatetime


def parse_model(model: type[BaseModel], raw: bytes) -> BaseModel:
    """Validate a platform event; InvalidEvent (field names only, never values) when it is not one."""
    from subsidy.contracts.events import InvalidEvent

    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in error["loc"]) or "body" for error in exc.errors()[:5])
        reason = "not_json" if any(error["type"] == "json_invalid" for error in exc.errors()) else "invalid_payload"
        raise InvalidEvent(reason, f"invalid fields: {fields}") from None


def parse_state_changed(raw: bytes) -> ApplicationStateChanged:
    """Validate a state-changed record; InvalidEvent (never the raw values) when it is not one."""
    return parse_model(ApplicationStateChanged, raw)  # type: ignore[return-value]


__all__ = ["ApplicationStateChanged", "CalendarAlertRaised", "parse_state_changed"]
