"""Each human step the API takes to a workflow: its update, the workflow role the actor gets, the
task step it closes and the command built from the caller's input.

The caller's input is validated here (Chinese messages come from the refusal table); the actor is
built only from the verified principal, never from the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.review.api.access import Action
from services.review.tasks.steps import Step
from subsidy.contracts import lifecycle as contract
from subsidy.contracts.lifecycle import Actor, Role

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A return notice's date ends at the close of business in Shenzhen, as filing windows and paper
# deadlines do: `resubmit_by: 2026-01-09` means until 2026-01-09 18:00 Asia/Shanghai.
RESUBMIT_CLOSING = time(18, 0)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewDecisionInput(_Input):
    decision: Literal["approve", "return", "reject", "request_paper"]
    reasons: list[str] = Field(default_factory=list, max_length=20)
    resubmit_by: date | None = None


class PaperInput(_Input):
    copies: int = Field(ge=0, le=100)
    bound_and_stamped: bool
    form_id: str | None = Field(default=None, max_length=80)
    received_at: AwareDatetime | None = None  # default: now
    window_code: str | None = Field(default=None, max_length=40)  # if given, must be the clerk's own


class PhoneConfirmationInput(_Input):
    reached_at: AwareDatetime | None = None  # default: now


class AwardInput(_Input):
    eligible_amount_fen: int = Field(ge=0)
    award_fen: int = Field(ge=0)


class AssigneeInput(_Input):
    assignee: str = Field(min_length=1, max_length=128)  # a subject at the issuer


class PublicationInput(_Input):
    notice_id: str | None = Field(default=None, min_length=1, max_length=80)
    published_at: AwareDatetime | None = None  # default: now
    # When the notice went up (on the bureau's website); default: when published here. The notice
    # period (N working days from the program's configuration) is counted from it. Not in the future.
    starts_at: AwareDatetime | None = None


def resubmit_deadline(day: date) -> datetime:
    return datetime.combine(day, RESUBMIT_CLOSING, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Update:
    """One human step as a workflow update."""

    action: Action
    update: str
    role: Role  # the workflow role the actor gets (the validators' table: contract.HUMAN_STEPS)
    step: Step | None  # the task it closes
    statuses: frozenset[str]  # where the application must be (the read model's view; the workflow decides)


UPDATES: dict[Action, Update] = {
    Action.DECIDE_ONLINE_REVIEW: Update(Action.DECIDE_ONLINE_REVIEW, contract.UPDATE_DECIDE_ONLINE_REVIEW, Role.LG_ONLINE_REVIEWER,
                                        Step.ONLINE_REVIEW, frozenset({"online_review"})),
    Action.DECIDE_BACK_OFFICE_REVIEW: Update(Action.DECIDE_BACK_OFFICE_REVIEW, contract.UPDATE_DECIDE_BACK_OFFICE_REVIEW,
                                             Role.LG_BACK_OFFICE_REVIEWER, Step.BACK_OFFICE_REVIEW, frozenset({"back_office_review"})),
    Action.DECIDE_FORMAL_PRE_REVIEW: Update(Action.DECIDE_FORMAL_PRE_REVIEW, contract.UPDATE_DECIDE_FORMAL_PRE_REVIEW, Role.SZ_PRE_REVIEWER,
                                            Step.FORMAL_PRE_REVIEW, frozenset({"formal_pre_review"})),
    Action.CONFIRM_NOTICE_BY_PHONE: Update(Action.CONFIRM_NOTICE_BY_PHONE, contract.UPDATE_CONFIRM_NOTICE_BY_PHONE, Role.LG_BACK_OFFICE_REVIEWER,
                                           Step.CONFIRM_NOTICE_BY_PHONE, frozenset({"awaiting_sms_delivery"})),
    Action.RECORD_PAPER_RECEIPT: Update(Action.RECORD_PAPER_RECEIPT, contract.UPDATE_RECORD_PAPER_RECEIPT, Role.WINDOW_CLERK,
                                        Step.PAPER, frozenset({"awaiting_paper"})),
    Action.RECORD_AWARD: Update(Action.RECORD_AWARD, contract.UPDATE_RECORD_AWARD, Role.PROGRAM_ADMIN, Step.AWARD, frozenset({"award_calculation"})),
    # SZ: the tiers and amounts the platform computed, confirmed by the administrator for the batch
    # (services/review/scoring/service.py builds each RecordTiering). The expert scoring result is the
    # platform's own (actor review_service), not an official's action.
    Action.CONFIRM_TIERING: Update(Action.CONFIRM_TIERING, contract.UPDATE_RECORD_TIERING, Role.PROGRAM_ADMIN, Step.TIERING,
                                   frozenset({"tiering"})),
    Action.PUBLISH: Update(Action.PUBLISH, contract.UPDATE_PUBLISH, Role.PROGRAM_ADMIN, None, frozenset()),
}

# The review step an application is in decides which decision `POST .../decisions` takes.
REVIEW_ACTION_BY_STATUS: dict[str, Action] = {
    "online_review": Action.DECIDE_ONLINE_REVIEW,
    "back_office_review": Action.DECIDE_BACK_OFFICE_REVIEW,
    "formal_pre_review": Action.DECIDE_FORMAL_PRE_REVIEW,
}
REVIEW_ACTIONS_BY_PROGRAM_PREFIX: dict[str, tuple[Action, ...]] = {
    "LG-": (Action.DECIDE_ONLINE_REVIEW, Action.DECIDE_BACK_OFFICE_REVIEW),
    "SZ-": (Action.DECIDE_FORMAL_PRE_REVIEW,),
}


def review_actions(program: str) -> tuple[Action, ...]:
    return next((actions for prefix, actions in REVIEW_ACTIONS_BY_PROGRAM_PREFIX.items() if program.startswith(prefix)), ())


def command(action: Action, actor: Actor, data: BaseModel, *, now: datetime, window: str | None) -> BaseModel:
    """The workflow command of `action` from validated input. Raises ValueError (422) for input
    the contract refuses (a return without reasons or date, a decision the step does not take)."""
    match action:
        case Action.DECIDE_ONLINE_REVIEW | Action.DECIDE_FORMAL_PRE_REVIEW | Action.DECIDE_BACK_OFFICE_REVIEW:
            assert isinstance(data, ReviewDecisionInput)
            fields: dict[str, Any] = {"actor": actor, "decision": data.decision, "reasons": tuple(data.reasons)}
            if action is not Action.DECIDE_BACK_OFFICE_REVIEW:
                fields["resubmit_by"] = resubmit_deadline(data.resubmit_by) if data.resubmit_by else None
            elif data.resubmit_by is not None:
                raise ValueError("invalid: a back-office review neither returns nor takes a resubmission date")
            model = {
                Action.DECIDE_ONLINE_REVIEW: contract.DecideOnlineReview,
                Action.DECIDE_FORMAL_PRE_REVIEW: contract.DecideFormalPreReview,
                Action.DECIDE_BACK_OFFICE_REVIEW: contract.DecideBackOfficeReview,
            }[action]
            return model.model_validate(fields)
        case Action.CONFIRM_NOTICE_BY_PHONE:
            assert isinstance(data, PhoneConfirmationInput)
            return contract.ConfirmNoticeByPhone(actor=actor, reached_at=data.reached_at or now)
        case Action.RECORD_PAPER_RECEIPT:
            assert isinstance(data, PaperInput) and window is not None
            return contract.RecordPaperReceipt(
                actor=actor, window_code=window, received_at=data.received_at or now, copies=data.copies,
                bound_and_stamped=data.bound_and_stamped, form_id=data.form_id,
            )
        case Action.RECORD_AWARD:
            assert isinstance(data, AwardInput)
            return contract.RecordAward(actor=actor, eligible_amount_fen=data.eligible_amount_fen, award_fen=data.award_fen)
        case Action.PUBLISH:
            assert isinstance(data, PublicationInput)
            published_at = data.published_at or now
            # An id the administrator did not name is the program's (notice_id_for): only the caller knows it.
            assert data.notice_id is not None, "the publication path names the notice id (notice_id_for)"
            return contract.PublishNotice(actor=actor, notice_id=data.notice_id, published_at=published_at)
    raise AssertionError(f"{action} is not a workflow update")


def notice_id_for(program: str, published_at: datetime) -> str:
    """A list's notice id when the administrator names none: the program and the second it is
    published (`GS-LG-AI-MODEL-2025-20261127224355`). With the second alone, Longgang's and
    Shenzhen's lists published in the same second had one id: review kept the first program's list
    under it, and the second program's batch, finding it stored, told the first program's
    applications, so its own were never published (a 4-application lifecycle benchmark run)."""
    return f"GS-{program}-{published_at.astimezone(SHANGHAI):%Y%m%d%H%M%S}"
