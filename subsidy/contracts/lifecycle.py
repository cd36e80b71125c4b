"""The lifecycle workflows' interface: start input, updates (human and service decisions),
signals (facts), query result, and the activities the workflows call on the services; the names of
the workflows, updates, signals and queries (`UPDATE_*`, `SIGNAL_*`, `QUERY_*`: every caller uses
these constants) and the human steps (`HUMAN_STEPS`: which update and command each official's step is).

Commands are imperative (`DecideOnlineReview`), facts past tense (`SmsDeliveryReported`).
No model here carries personal data: workflows know applications by program and number, and the
services look up names, ID and mobile numbers in their own schemas when they need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from subsidy.identifiers import FreeText

LONGGANG_MODEL_CALL_2025 = "LG-AI-MODEL-2025"
SHENZHEN_GOVAI_SCENARIO_2025 = "SZ-GOVAI-SCENARIO-2025"


UUID4Str = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(StrEnum):
    """Where an application is. Terminal: rejected, withdrawn, abandoned, published."""

    SUBMITTED = "submitted"
    PRE_CHECK = "pre_check"  # automatic pre-checks (LG)
    ONLINE_REVIEW = "online_review"  # 线上审核 (LG)
    FORMAL_PRE_REVIEW = "formal_pre_review"  # 形式预审 (SZ)
    RETURNED = "returned"  # 退回修改, waiting for the enterprise to resubmit
    APPROVED_ONLINE = "approved_online"  # 已通过线上终审 (LG)
    AWAITING_GD_SUBMISSION = "awaiting_gd_submission"  # form issued, to submit on 广东政务服务网 (LG)
    BACK_OFFICE_REVIEW = "back_office_review"  # 后台审核 (LG)
    AWAITING_SMS_DELIVERY = "awaiting_sms_delivery"  # approval SMS sent, no delivery receipt yet (LG)
    AWAITING_PAPER = "awaiting_paper"  # paper materials at a window
    EXPERT_SCORING = "expert_scoring"  # 专家评审 (SZ)
    TIERING = "tiering"  # 档次 (SZ)
    AWARD_CALCULATION = "award_calculation"  # (LG)
    AWAITING_PUBLICATION = "awaiting_publication"  # on the list for 公示
    PUBLISHED = "published"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    ABANDONED = "abandoned"  # 逾期视作放弃


TERMINAL = frozenset({Status.PUBLISHED, Status.REJECTED, Status.WITHDRAWN, Status.ABANDONED})
# Shenzhen, from the expert panel's work on: a state change out of one of these carries what the
# panel concluded (the reason `product_score:<the product's score>`, `expert_score:<sum of the
# criterion means>` in runs recorded before the score was carried, then the tier and the
# award in the reason and the typed fields), which an expert reading the history does not see.
PANEL_RESULT_FROM = frozenset({Status.EXPERT_SCORING, Status.TIERING, Status.AWAITING_PUBLICATION, Status.PUBLISHED})


def without_panel_result(view: dict[str, Any]) -> dict[str, Any]:
    """Intake's application view (`GET /applications/{no}`) as an expert reads it, in intake itself
    and inside review's application page: its state changes (`"what": "from -> to"`) out of the
    panel's statuses without their reason."""
    history = view.get("history")
    if not isinstance(history, list):
        return view
    return {**view, "history": [
        {k: v for k, v in entry.items() if k != "reason"}
        if entry.get("kind") == "state" and str(entry.get("what", "")).split(" -> ")[0] in PANEL_RESULT_FROM else entry
        for entry in history
    ]}


class Role(StrEnum):
    """Who may take which decision; checked by the update validators (the second wall: the
    reviewers' API checks the caller's verified roles first). The officials' roles have the values
    of `subsidy.identity.StaffRole`, so a verified role becomes an actor's role as it is."""

    LG_ONLINE_REVIEWER = "lg_online_reviewer"  # Longgang district AI bureau: online review
    LG_BACK_OFFICE_REVIEWER = "lg_back_office_reviewer"  # Longgang back office: review after the GD portal, phone confirmation
    SZ_PRE_REVIEWER = "sz_pre_reviewer"  # Shenzhen formal pre-review
    WINDOW_CLERK = "window_clerk"  # receives paper at a service window
    PROGRAM_ADMIN = "program_admin"  # the program's administrator: awards, scoring and tiering results, publication
    REVIEW_SERVICE = "review_service"  # automated results: scoring, tiering, award calculation
    PUBLICATION = "publication"  # the batch publication workflow / an operator publishing for the administrator
    PORTAL = "portal"  # an event relayed by intake from a portal (the enterprise's own act)
    # Recorded in old histories (tests/workflows/histories/, running workflows): kept so they still
    # decode; accepted by no validator any more.
    DISTRICT_REVIEWER = "district_reviewer"
    MUNICIPAL_PRE_REVIEWER = "municipal_pre_reviewer"


class Actor(_Model):
    """Staff or system id (e.g. `staff:LG-0042`, `portal:longgang-qyfw`), never a person's name or ID number."""

    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9:._-]+$")
    role: Role


# --- policy: what programs configure (loaded from program configuration by intake) ---------------


class LifecyclePolicy(_Model):
    """Per program batch; defaults are the 2025 texts' and DESIGN.md's."""

    paper_working_days: int = Field(default=5, ge=1)
    paper_closing: time = time(18, 0)  # close of business of the windows (民法典 art. 203)
    reminder_working_days_before: tuple[Annotated[int, Field(ge=0)], ...] = (2,)  # 0 = the last day
    reminder_time: time = time(9, 0)  # reminders at this time on their day, incl. the last day
    remind_on_last_day: bool = True
    sms_receipt_wait: timedelta = timedelta(hours=24)
    late_event_grace: timedelta = timedelta(minutes=30)  # receipts timestamped in time but relayed late
    filing_cutoff: AwareDatetime | None = None  # SZ: first filing until 2025-11-30 18:00
    award_rate_percent: int | None = Field(default=None, ge=0, le=100)  # LG: 30% of eligible contracts
    award_cap_fen: int | None = Field(default=None, ge=0)  # per application (LG: CNY 2,000,000)
    tier_caps_fen: dict[int, int] | None = None  # SZ: tier -> cap, e.g. {1: 500_000_000, ...}

    @model_validator(mode="after")
    def _reminders_before_closing(self) -> LifecyclePolicy:
        if self.reminder_time >= self.paper_closing:
            raise ValueError("reminder_time must be before paper_closing")
        return self


class StartLifecycle(_Model):
    """Start input of a lifecycle workflow; `policy` comes from the program's configuration."""

    program: str
    application_no: str
    version: int = Field(ge=1)
    submitted_at: AwareDatetime
    correlation_id: str
    policy: LifecyclePolicy


# --- updates: decisions, each validated against state and role ----------------------------------


class DecideOnlineReview(_Model):
    """Longgang 线上审核 (and its 线上终审 approval)."""

    actor: Actor
    decision: Literal["approve", "return", "reject"]
    reasons: tuple[FreeText, ...] = ()
    resubmit_by: AwareDatetime | None = None  # required for "return": the date in the return notice

    @model_validator(mode="after")
    def _return_needs_a_date(self) -> DecideOnlineReview:
        _check_return(self.decision, self.resubmit_by, self.reasons)
        return self


class DecideFormalPreReview(_Model):
    """Shenzhen 形式预审: approve, return, reject, or ask for paper at the window by appointment."""

    actor: Actor
    decision: Literal["approve", "return", "reject", "request_paper"]
    reasons: tuple[FreeText, ...] = ()
    resubmit_by: AwareDatetime | None = None

    @model_validator(mode="after")
    def _return_needs_a_date(self) -> DecideFormalPreReview:
        _check_return(self.decision, self.resubmit_by, self.reasons)
        return self


class DecideBackOfficeReview(_Model):
    actor: Actor
    decision: Literal["approve", "reject"]
    reasons: tuple[FreeText, ...] = ()


def _check_return(decision: str, resubmit_by: datetime | None, reasons: tuple[str, ...]) -> None:
    if decision == "return" and resubmit_by is None:
        raise ValueError("a return for modification needs resubmit_by (the date in the return notice)")
    if decision in ("return", "reject") and not reasons:
        raise ValueError(f"a {decision} needs reasons")


class Resubmit(_Model):
    """The enterprise resubmitted after a return (relayed by intake)."""

    actor: Actor
    version: int = Field(ge=2)
    submitted_at: AwareDatetime


class Withdraw(_Model):
    actor: Actor
    withdrawn_at: AwareDatetime
    reason: FreeText | None = None  # masked when the command is built (intake): never raw in a history


class RecordGuangdongSubmission(_Model):
    actor: Actor
    gd_case_no: str
    form_id: str
    form_sha256: str
    received_at: AwareDatetime


class ConfirmNoticeByPhone(_Model):
    """No delivery receipt: a reviewer reached the enterprise by phone; the paper clock starts then."""

    actor: Actor
    reached_at: AwareDatetime


class RecordPaperReceipt(_Model):
    actor: Actor
    window_code: str
    received_at: AwareDatetime
    copies: int = Field(ge=0)
    bound_and_stamped: bool
    form_id: str | None = None


class RecordExpertScoring(_Model):
    """Shenzhen expert scoring result, from the review service."""

    actor: Actor
    practicality: int = Field(ge=0, le=100)
    innovation: int = Field(ge=0, le=100)
    replicability: int = Field(ge=0, le=100)
    excluded_experts: int = Field(default=0, ge=0)  # conflict-of-interest exclusions applied
    # The product's score that sets its tier (02(二): each expert's weighted score, the trimmed mean,
    # rounded once), as review shows it, e.g. "81.00": what the timeline names. The three criterion
    # means above are not weighted and do not add up to it. None: sent before the score was carried.
    score: str | None = Field(default=None, pattern=r"^\d{1,3}(\.\d{1,4})?$")


class RecordTiering(_Model):
    """Shenzhen tier and amount (integer fen), from the review service."""

    actor: Actor
    tier: Literal[1, 2, 3] | None  # None: not funded
    award_fen: int = Field(ge=0)


class RecordAward(_Model):
    """Longgang award (30% of eligible contract amounts, capped), from the review service."""

    actor: Actor
    eligible_amount_fen: int = Field(ge=0)
    award_fen: int = Field(ge=0)


class ReviseAward(_Model):
    """Longgang: the recorded award lowered before publication (按比例核减 to the batch's budget), from
    the review service on the program administrator's action. Accepted only while the application
    awaits publication and before its list is published, never above the amount confirmed at award
    calculation (`confirmed_award_fen`, which must be the one the lifecycle recorded). The state change
    it makes (awaiting_publication -> awaiting_publication) carries the new `award_fen`, and the
    application's entry on the unpublished list is replaced."""

    actor: Actor
    award_fen: int = Field(ge=0)
    confirmed_award_fen: int = Field(ge=0)
    reason: FreeText = Field(min_length=1, max_length=500)


class RecordPublication(_Model):
    actor: Actor
    notice_id: str
    published_at: AwareDatetime
    # The final list (after the notice period) may differ from the award the lifecycle recorded: an
    # upheld objection changes the amount (award_fen, tier) or removes the entry (removed). None /
    # False from a batch that had no notice period (older runs).
    award_fen: int | None = Field(default=None, ge=0)
    tier: int | None = None
    removed: bool = False


class EnlistForPublication(_Model):
    """Input of `publication.enlist` (review): put an application on its batch's public-notice list."""

    program: str
    application_no: str
    workflow_id: str
    award_fen: int = Field(ge=0)
    tier: int | None = None


class PublicationEntry(_Model):
    application_no: str
    workflow_id: str
    award_fen: int = Field(ge=0)
    tier: int | None = None


class PublishNotice(_Model):
    """The administrator publishes a batch's list for public notice (公示)."""

    actor: Actor
    notice_id: str = Field(min_length=1, max_length=80)
    published_at: AwareDatetime
    # The notice period (公示期), computed by the review service with the deadline engine from the
    # program's `[publication] notice_working_days`: the batch waits until its end, then asks review
    # whether objections are open (`publication.close_notice`). None: published without a period
    # (older callers): the lifecycles are told at once.
    period_starts_at: AwareDatetime | None = None
    period_ends_at: AwareDatetime | None = None


class PublicationBatchState(_Model):
    """Input of the publication batch workflow, carried across continue-as-new."""

    program: str
    entries: tuple[PublicationEntry, ...] = ()
    notice: PublishNotice | None = None
    notified: int = Field(default=0, ge=0)  # entries whose lifecycle has been told so far
    max_history_events: int = Field(default=10_000, ge=20)  # continue-as-new beyond this
    # Enlisted after this batch's list was published: the next list's entries (carried to the next
    # batch by continue-as-new once this one is final).
    next_entries: tuple[PublicationEntry, ...] = ()
    batch_no: int = Field(default=1, ge=1)
    # After the notice period: the final list as review closed it (None until then).
    final: NoticeClosed | None = None


class RecordNotice(_Model):
    """Input of `publication.record_notice` (review): the published list, stored and announced."""

    program: str
    notice: PublishNotice
    entries: tuple[PublicationEntry, ...]


class NotifyPublished(_Model):
    """Input of `publication.notify_published` (review): tell lifecycles their list is published."""

    notice: PublishNotice
    workflow_ids: tuple[str, ...]
    # With a notice period: each lifecycle's final entry (same order as workflow_ids), or removed.
    final_entries: tuple[PublicationEntry, ...] = ()
    removed: tuple[str, ...] = ()  # workflow ids taken off the list by an upheld objection


class CloseNotice(_Model):
    """Input of `publication.close_notice` (review): the notice period of `notice_id` has ended."""

    program: str
    notice_id: str


class NoticeClosed(_Model):
    """`publication.close_notice`'s answer: objections still open (the list is not final yet), or
    the final list (its latest version) and the applications an upheld objection removed."""

    open_objections: int = Field(ge=0)
    final_version: int | None = None
    entries: tuple[PublicationEntry, ...] = ()
    removed: tuple[str, ...] = ()  # application numbers


PublicationBatchState.model_rebuild()


class PublicationSummary(_Model):
    program: str
    entries: int
    total_award_fen: int
    notice_id: str | None
    notified: int
    waiting_for_next: int = 0  # enlisted after publication: on the next list
    period_ends_at: AwareDatetime | None = None
    final: bool = False


class DecisionAccepted(_Model):
    """What every update returns: the status the application is in after the decision."""

    status: Status
    deadline: AwareDatetime | None = None


# --- signals: facts with nothing to answer --------------------------------------------------------


class SmsDeliveryReported(_Model):
    message_id: str
    notice_kind: str
    status: Literal["DELIVERED", "FAILED"]
    reported_at: AwareDatetime


class FormDownloaded(_Model):
    form_id: str
    downloaded_at: AwareDatetime


class AppointmentBooked(_Model):
    window: str
    slot_start: AwareDatetime
    slot_end: AwareDatetime


# --- query ---------------------------------------------------------------------------------------


class DeadlineRecord(_Model):
    """A computed deadline as the workflow keeps it (see subsidy.deadlines)."""

    kind: Literal["paper", "resubmission"]
    deadline: AwareDatetime
    trigger: AwareDatetime
    trigger_kind: Literal["sms_delivered", "confirmed_by_phone", "return_notice"]
    working_days: tuple[date, ...] = ()
    calendar_version: str | None = None
    reminders: tuple[AwareDatetime, ...] = ()


class LifecycleStatus(_Model):
    program: str
    application_no: str
    status: Status
    version: int
    round: int  # return-for-modification rounds so far
    deadline: DeadlineRecord | None = None
    form_id: str | None = None
    award_fen: int | None = None
    tier: int | None = None
    history_length: int


# --- activities the workflows call ---------------------------------------------------------------


class NoticeKind(StrEnum):
    """The SMS notices a state change can call for; the workflow names the one it calls for in
    `StateChange.notice_kind`, notify renders it (services/notify/templates/<program>.toml)."""

    ONLINE_APPROVED = "online_approved"  # LG: 已通过线上终审
    RETURNED = "returned"  # return for modification, with the reasons and the date
    REJECTED = "rejected"  # with the reasons
    BACK_OFFICE_APPROVED = "back_office_approved"  # LG: its delivery starts the paper clock
    ABANDONED = "abandoned"  # LG: no paper within the deadline
    RESUBMISSION_LAPSED = "resubmission_lapsed"  # no resubmission by the date in the return notice
    AWARD_PUBLISHED = "award_published"  # LG: on the public notice, with the amount
    PAPER_REQUESTED = "paper_requested"  # SZ: paper at the window by appointment
    NOT_FUNDED = "not_funded"  # SZ: tiering funded nothing
    PUBLISHED = "published"  # SZ: on the public notice, with tier and amount
    PAPER_REMINDER = "paper_reminder"  # LG: from the reminder-due event, never a state change


# What `StateChange.contract_revision` (and the state-changed event's) says: 2 = the workflow set the
# typed fields below (notice_kind, award_fen, ...); 1 (the default, what an older workflow worker
# sends) = only `reason` tells what happened (legacy, see services/notify/notices.py).
STATE_CHANGE_REVISION = 2


class StateChange(_Model):
    """Input of `lifecycle.record_state_change` (intake): becomes the state-changed event via the outbox.

    What other services act on travels in typed fields, set by the workflow at each transition;
    `reason` is for people reading the history (and may be reworded) and no service parses it."""

    event_id: UUID4Str  # workflow.uuid4(): deterministic, so a retried activity writes one event
    program: str
    application_no: str
    from_status: Status | None
    to_status: Status
    reason: FreeText | None = None
    actor: str
    deadline: AwareDatetime | None = None
    occurred_at: AwareDatetime
    correlation_id: str
    version: int
    contract_revision: int = Field(default=1, ge=1)  # STATE_CHANGE_REVISION when the fields below are set
    notice_kind: NoticeKind | None = None  # the SMS this change calls for; None: none
    reasons: tuple[FreeText, ...] = ()  # the official's reasons (return, rejection, paper requested)
    award_fen: int | None = Field(default=None, ge=0)  # the award as the lifecycle knows it at this change
    tier: int | None = None  # SZ tier as the lifecycle knows it at this change
    notice_id: str | None = None  # the public notice (published)
    awaiting_step: str | None = None  # the HUMAN_STEPS key an official now has to take; None: no official
    window_code: str | None = None  # where the paper was received (paper received)
    gd_case_no: str | None = None  # the Guangdong portal's case number (LG, once submitted there)
    form_id: str | None = None  # the watermarked form issued (LG, once issued)


class ReminderDue(_Model):
    """Input of `lifecycle.record_reminder` (intake): the reminder event for notify."""

    event_id: UUID4Str
    program: str
    application_no: str
    deadline: AwareDatetime
    due_at: AwareDatetime
    working_days_left: int
    correlation_id: str


class ComputePaperDeadline(_Model):
    """Input of `deadlines.compute_paper_deadline` (review)."""

    program: str
    application_no: str
    trigger: AwareDatetime
    trigger_kind: Literal["sms_delivered", "confirmed_by_phone"]
    policy: LifecyclePolicy
    correlation_id: str


class RunPreChecks(_Model):
    program: str
    application_no: str
    version: int
    correlation_id: str | None = None  # for the log context (subsidy/log_context.py)


class PreCheckFinding(_Model):
    rule: str  # e.g. "industry_code"
    clause: str  # e.g. "三(二)1"
    passed: bool
    detail: str


class PreCheckReport(_Model):
    findings: tuple[PreCheckFinding, ...]


class IssueWatermarkedForm(_Model):
    program: str
    application_no: str
    version: int
    correlation_id: str | None = None  # for the log context (subsidy/log_context.py)


class WatermarkedForm(_Model):
    form_id: str
    sha256: str


# How a validator's refusal starts when another decision is being applied at this moment: not a
# final answer, the caller asks again (intake with backoff, a console after a moment).
BUSY_REFUSAL = "busy:"


class RefusalCode(StrEnum):
    """How every validator refusal starts (`<code>: <detail in English>`), so callers answer by
    code: the reviewers' API turns them into its statuses and Chinese messages."""

    FORBIDDEN = "forbidden"  # the actor's role may not take this step
    WRONG_STATE = "wrong_state"  # the application (or batch) is not where the step applies
    BUSY = "busy"  # another decision is being applied this moment: ask again shortly
    LATE = "late"  # after the deadline (paper, resubmission)
    STALE = "stale"  # a resubmission that is not newer than the current version
    INCOMPLETE = "incomplete"  # paper: not the copies, binding and stamps required
    WRONG_FORM = "wrong_form"  # not the watermarked form the platform issued
    WRONG_WINDOW = "wrong_window"  # paper received at a window of another program
    OVER_CAP = "over_cap"  # an award over its rate or cap
    INVALID = "invalid"  # inconsistent input (a time in the future, an award without a tier)
    EMPTY = "empty"  # publishing a batch with no application on its list


def refusal_code(message: str) -> RefusalCode | None:
    """The code a validator's refusal message starts with; None for anything else."""
    code, colon, _ = message.partition(":")
    return RefusalCode(code) if colon and code in RefusalCode.__members__.values() else None

ACTIVITY_RECORD_STATE_CHANGE = "lifecycle.record_state_change"
ACTIVITY_RECORD_REMINDER = "lifecycle.record_reminder"
ACTIVITY_COMPUTE_PAPER_DEADLINE = "deadlines.compute_paper_deadline"
ACTIVITY_RUN_PRE_CHECKS = "review.run_pre_checks"
ACTIVITY_ISSUE_WATERMARKED_FORM = "review.issue_watermarked_form"
ACTIVITY_ENLIST_FOR_PUBLICATION = "publication.enlist"
ACTIVITY_RECORD_NOTICE = "publication.record_notice"
ACTIVITY_NOTIFY_PUBLISHED = "publication.notify_published"
ACTIVITY_CLOSE_NOTICE = "publication.close_notice"

# --- names: workflow types, updates, signals, queries ----------------------------------------------
# Exactly the names recorded in histories and used by running workflows: never rename one (a new
# name is a new handler, with workflow.patched() where old runs need the old one).

LONGGANG_LIFECYCLE = "LonggangModelCallLifecycle"
SHENZHEN_LIFECYCLE = "ShenzhenGovAiScenarioLifecycle"
PUBLICATION_BATCH = "PublicationBatch"

# Lifecycle updates (decisions; each returns DecisionAccepted).
UPDATE_DECIDE_ONLINE_REVIEW = "decide_online_review"  # LG, DecideOnlineReview
UPDATE_RECORD_GUANGDONG_SUBMISSION = "record_guangdong_submission"  # LG, RecordGuangdongSubmission (intake)
UPDATE_DECIDE_BACK_OFFICE_REVIEW = "decide_back_office_review"  # LG, DecideBackOfficeReview
UPDATE_CONFIRM_NOTICE_BY_PHONE = "confirm_notice_by_phone"  # LG, ConfirmNoticeByPhone
UPDATE_RECORD_AWARD = "record_award"  # LG, RecordAward
UPDATE_REVISE_AWARD = "revise_award"  # LG, ReviseAward: the batch budget applied before publication (not a human step)
UPDATE_DECIDE_FORMAL_PRE_REVIEW = "decide_formal_pre_review"  # SZ, DecideFormalPreReview
UPDATE_RECORD_EXPERT_SCORING = "record_expert_scoring"  # SZ, RecordExpertScoring
UPDATE_RECORD_TIERING = "record_tiering"  # SZ, RecordTiering
UPDATE_RECORD_PAPER_RECEIPT = "record_paper_receipt"  # both, RecordPaperReceipt
UPDATE_RESUBMIT = "resubmit"  # both, Resubmit (intake)
UPDATE_WITHDRAW = "withdraw"  # both, Withdraw (intake)
# Lifecycle signals (facts).
SIGNAL_SMS_DELIVERY_REPORTED = "sms_delivery_reported"  # LG, SmsDeliveryReported (notify)
SIGNAL_FORM_DOWNLOADED = "form_downloaded"  # LG, FormDownloaded (intake)
SIGNAL_APPOINTMENT_BOOKED = "appointment_booked"  # SZ, AppointmentBooked (intake)
SIGNAL_PUBLISHED = "published"  # both, RecordPublication (review's publication.notify_published)
# Lifecycle query.
QUERY_STATUS = "status"  # LifecycleStatus

# PublicationBatch.
UPDATE_PUBLISH = "publish"  # PublishNotice -> PublicationSummary
SIGNAL_ENLIST = "enlist"  # EnlistForPublication (signal-with-start by publication.enlist)
SIGNAL_DELIST = "delist"  # the application number (a withdrawal before publication)
QUERY_SUMMARY = "summary"  # PublicationSummary
QUERY_ENTRIES = "entries"  # tuple[PublicationEntry, ...]: the list being composed (or published)
SIGNAL_OBJECTIONS_CHANGED = "objections_changed"  # review: an objection was decided, check again


# --- the human steps: which update, which command, who, where -------------------------------------


@dataclass(frozen=True)
class HumanStep:
    """A step an official takes, as the reviewers' API sends it to a workflow.

    `update` is the update to execute on `workflow` (an application's lifecycle, or the program's
    PublicationBatch) with a `command` whose `actor` is `Actor(id=principal.actor_id,
    role=step.acting_role(principal.roles))`. `roles` are the roles the workflow's validator
    accepts (the validators read them from this table, so the API and the workflows cannot
    disagree); `statuses` where the application must be (empty for the batch). The key is what
    `StateChange.awaiting_step` names when an application comes to wait for the step."""

    key: str
    workflow: str  # LONGGANG_LIFECYCLE, SHENZHEN_LIFECYCLE or PUBLICATION_BATCH
    update: str
    command: type[BaseModel]
    roles: frozenset[Role]
    statuses: frozenset[Status]

    def acting_role(self, granted: Iterable[str]) -> Role | None:
        """The role an official acts in for this step: of the step's roles they were granted (role
        names as in the token), the first by name; None when they hold none of them."""
        held = set(granted)
        return next((role for role in sorted(self.roles) if role.value in held), None)


STEP_LG_ONLINE_REVIEW = HumanStep(
    "lg_online_review", LONGGANG_LIFECYCLE, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview,
    frozenset({Role.LG_ONLINE_REVIEWER}), frozenset({Status.ONLINE_REVIEW}),
)  # fmt: skip
STEP_LG_BACK_OFFICE_REVIEW = HumanStep(
    "lg_back_office_review", LONGGANG_LIFECYCLE, UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview,
    frozenset({Role.LG_BACK_OFFICE_REVIEWER}), frozenset({Status.BACK_OFFICE_REVIEW}),
)  # fmt: skip
STEP_LG_CONFIRM_NOTICE_BY_PHONE = HumanStep(
    "lg_confirm_notice_by_phone", LONGGANG_LIFECYCLE, UPDATE_CONFIRM_NOTICE_BY_PHONE, ConfirmNoticeByPhone,
    frozenset({Role.LG_BACK_OFFICE_REVIEWER}), frozenset({Status.AWAITING_SMS_DELIVERY}),
)  # fmt: skip
STEP_LG_PAPER_RECEIPT = HumanStep(
    "lg_paper_receipt", LONGGANG_LIFECYCLE, UPDATE_RECORD_PAPER_RECEIPT, RecordPaperReceipt,
    frozenset({Role.WINDOW_CLERK}), frozenset({Status.AWAITING_PAPER}),
)  # fmt: skip
STEP_LG_AWARD = HumanStep(
    "lg_award", LONGGANG_LIFECYCLE, UPDATE_RECORD_AWARD, RecordAward,
    frozenset({Role.REVIEW_SERVICE, Role.PROGRAM_ADMIN}), frozenset({Status.AWARD_CALCULATION}),
)  # fmt: skip
STEP_SZ_FORMAL_PRE_REVIEW = HumanStep(
    "sz_formal_pre_review", SHENZHEN_LIFECYCLE, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview,
    frozenset({Role.SZ_PRE_REVIEWER}), frozenset({Status.FORMAL_PRE_REVIEW}),
)  # fmt: skip
STEP_SZ_PAPER_RECEIPT = HumanStep(
    "sz_paper_receipt", SHENZHEN_LIFECYCLE, UPDATE_RECORD_PAPER_RECEIPT, RecordPaperReceipt,
    frozenset({Role.WINDOW_CLERK}), frozenset({Status.AWAITING_PAPER}),
)  # fmt: skip
STEP_SZ_EXPERT_SCORING = HumanStep(
    "sz_expert_scoring", SHENZHEN_LIFECYCLE, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring,
    frozenset({Role.REVIEW_SERVICE, Role.PROGRAM_ADMIN}), frozenset({Status.EXPERT_SCORING}),
)  # fmt: skip
STEP_SZ_TIERING = HumanStep(
    "sz_tiering", SHENZHEN_LIFECYCLE, UPDATE_RECORD_TIERING, RecordTiering,
    frozenset({Role.REVIEW_SERVICE, Role.PROGRAM_ADMIN}), frozenset({Status.TIERING}),
)  # fmt: skip
STEP_PUBLISH = HumanStep(
    "publish", PUBLICATION_BATCH, UPDATE_PUBLISH, PublishNotice,
    frozenset({Role.PUBLICATION, Role.PROGRAM_ADMIN}), frozenset(),
)  # fmt: skip

# Every human step by key. The reviewers' decisions endpoint (approve / return / reject) is the
# review step the application is in: `review_step(workflow type, status)`; SZ "paper by
# appointment" is the formal pre-review step with decision "request_paper".
HUMAN_STEPS: Mapping[str, HumanStep] = {
    step.key: step
    for step in (
        STEP_LG_ONLINE_REVIEW, STEP_LG_BACK_OFFICE_REVIEW, STEP_LG_CONFIRM_NOTICE_BY_PHONE, STEP_LG_PAPER_RECEIPT,
        STEP_LG_AWARD, STEP_SZ_FORMAL_PRE_REVIEW, STEP_SZ_PAPER_RECEIPT, STEP_SZ_EXPERT_SCORING, STEP_SZ_TIERING,
        STEP_PUBLISH,
    )  # fmt: skip
}
REVIEW_STEPS = (STEP_LG_ONLINE_REVIEW, STEP_LG_BACK_OFFICE_REVIEW, STEP_SZ_FORMAL_PRE_REVIEW)


def step_for(workflow_type: str, update: str) -> HumanStep | None:
    """The human step that is `update` on a workflow of `workflow_type` (e.g. a program's paper receipt)."""
    return next((s for s in HUMAN_STEPS.values() if s.workflow == workflow_type and s.update == update), None)


def review_step(workflow_type: str, status: Status | str) -> HumanStep | None:
    """The review decision (approve / return / reject) an application in `status` waits for."""
    return next((s for s in REVIEW_STEPS if s.workflow == workflow_type and status in s.statuses), None)
