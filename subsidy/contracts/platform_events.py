"""Events the platform itself publishes (outbox -> Kafka). Past tense, one model per event."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError


class ApplicationStateChanged(BaseModel):
    """`subsidy.application.state-changed.v1`: a lifecycle workflow moved an application."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    program: str
    application_no: str
    from_state: str | None
    to_state: str
    reason: str | None = None
    actor: str
    deadline: AwareDatetime | None = None
    occurred_at: AwareDatetime
    correlation_id: str | None = None
    version: int | None = None  # the application's version (resubmissions) at the change


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


def parse_state_changed(raw: bytes) -> ApplicationStateChanged:
    """Validate a state-changed record; InvalidEvent (never the raw values) when it is not one."""
    from subsidy.contracts.events import InvalidEvent

    try:
        return ApplicationStateChanged.model_validate_json(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in error["loc"]) or "body" for error in exc.errors()[:5])
        reason = "not_json" if any(error["type"] == "json_invalid" for error in exc.errors()) else "invalid_payload"
        raise InvalidEvent(reason, f"invalid fields: {fields}") from None


__all__ = ["ApplicationStateChanged", "CalendarAlertRaised", "parse_state_changed"]
