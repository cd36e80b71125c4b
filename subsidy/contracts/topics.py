"""Kafka topic names, their layout, and the CloudEvents types each inbound topic may carry.

Topic auto-creation is off: the embedded stack and deployments create exactly `ALL_TOPICS`.
Names are versioned; a contract change is a new topic, never an edit (see CONTRACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# --- Inbound: systems the platform does not own (CONTRACTS.md) -----------------------------

PORTAL_LONGGANG_APPLICATIONS = "portal.longgang.applications.v1"
PORTAL_GUANGDONG_SUBMISSIONS = "portal.guangdong.submissions.v1"
PORTAL_SHENZHEN_APPLICATIONS = "portal.shenzhen.applications.v1"
WINDOWS_PAPER = "windows.paper.v1"
SMS_RECEIPTS = "sms.receipts.v1"

# --- The platform's own --------------------------------------------------------------------

APPLICATION_STATE_CHANGED = "subsidy.application.state-changed.v1"
INTAKE_REJECTED = "subsidy.intake.rejected.v1"
DEADLINE_REMINDER_DUE = "subsidy.deadline.reminder-due.v1"
PUBLICATION_PUBLISHED = "subsidy.publication.published.v1"  # a batch's public-notice list
# Intake -> notify: who to text for an application; the mobile number sealed (AES-GCM), never plain.
CONTACT_RECORDED = "subsidy.application.contact-recorded.v1"
# Intake -> review: what an application's version says (its facts, personal data removed), for the
# automatic pre-checks.
SUBMISSION_RECORDED = "subsidy.application.submission-recorded.v1"
# Notify -> review: an enterprise the platform could not reach by SMS, to phone.
PHONE_TASK_CREATED = "subsidy.notify.phone-task-created.v1"
CALENDAR_ALERT = "subsidy.calendar.alert.v1"

INBOUND_TOPICS: tuple[str, ...] = (
    PORTAL_LONGGANG_APPLICATIONS,
    PORTAL_GUANGDONG_SUBMISSIONS,
    PORTAL_SHENZHEN_APPLICATIONS,
    WINDOWS_PAPER,
    SMS_RECEIPTS,
)
PLATFORM_TOPICS: tuple[str, ...] = (
    APPLICATION_STATE_CHANGED,
    INTAKE_REJECTED,
    DEADLINE_REMINDER_DUE,
    CALENDAR_ALERT,
    PUBLICATION_PUBLISHED,
    CONTACT_RECORDED,
    SUBMISSION_RECORDED,
    PHONE_TASK_CREATED,
)


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}.dlq"


# --- CloudEvents types of the inbound topics -----------------------------------------------

LONGGANG_APPLICATION_SUBMITTED = "cn.gov.longgang.application.submitted"
LONGGANG_APPLICATION_RESUBMITTED = "cn.gov.longgang.application.resubmitted"
LONGGANG_APPLICATION_WITHDRAWN = "cn.gov.longgang.application.withdrawn"
LONGGANG_FORM_DOWNLOADED = "cn.gov.longgang.form.downloaded"
GUANGDONG_SUBMISSION_RECEIVED = "cn.gov.gdzwfw.submission.received"
SHENZHEN_APPLICATION_SUBMITTED = "cn.gov.sz.application.submitted"
SHENZHEN_APPLICATION_RESUBMITTED = "cn.gov.sz.application.resubmitted"
SHENZHEN_APPLICATION_WITHDRAWN = "cn.gov.sz.application.withdrawn"
SHENZHEN_APPOINTMENT_BOOKED = "cn.gov.sz.appointment.booked"
WINDOW_PAPER_RECEIVED = "cn.gov.window.paper.received"
SMS_DELIVERY_REPORTED = "cn.sms.delivery.reported"

EVENT_TYPES_BY_TOPIC: dict[str, frozenset[str]] = {
    PORTAL_LONGGANG_APPLICATIONS: frozenset(
        {
            LONGGANG_APPLICATION_SUBMITTED,
            LONGGANG_APPLICATION_RESUBMITTED,
            LONGGANG_APPLICATION_WITHDRAWN,
            LONGGANG_FORM_DOWNLOADED,
        }
    ),
    PORTAL_GUANGDONG_SUBMISSIONS: frozenset({GUANGDONG_SUBMISSION_RECEIVED}),
    PORTAL_SHENZHEN_APPLICATIONS: frozenset(
        {
            SHENZHEN_APPLICATION_SUBMITTED,
            SHENZHEN_APPLICATION_RESUBMITTED,
            SHENZHEN_APPLICATION_WITHDRAWN,
            SHENZHEN_APPOINTMENT_BOOKED,
        }
    ),
    WINDOWS_PAPER: frozenset({WINDOW_PAPER_RECEIVED}),
    SMS_RECEIPTS: frozenset({SMS_DELIVERY_REPORTED}),
}

# --- Layout --------------------------------------------------------------------------------

_DAY_MS = 24 * 3600 * 1000
# The inbound topics carry raw ID and mobile numbers (the portals' events): kept a week, long
# enough for every consumer to catch up after an outage, then gone (issue 14, defect 8). The
# platform's own topics carry no raw personal data and keep the broker default.
INBOUND_RETENTION_MS = 7 * _DAY_MS
# Operators get a month to look at rejected input; the inbound DLQs' bodies are redacted
# (subsidy.messaging.redact_dead_letter), so the month holds no raw ID or mobile number.
_DLQ_RETENTION_MS = 30 * _DAY_MS


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic to create. `retention_ms=None` keeps the broker default."""

    name: str
    partitions: int
    retention_ms: int | None = None


ALL_TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(t, 6, INBOUND_RETENTION_MS) for t in INBOUND_TOPICS),
    *(TopicSpec(dlq(t), 1, _DLQ_RETENTION_MS) for t in INBOUND_TOPICS),
    *(TopicSpec(t, 6) for t in PLATFORM_TOPICS),
    # Every subscriber's bounded retry ends in <topic>.dlq (STYLE.md 4), platform topics included.
    *(TopicSpec(dlq(t), 1, _DLQ_RETENTION_MS) for t in PLATFORM_TOPICS),
)
