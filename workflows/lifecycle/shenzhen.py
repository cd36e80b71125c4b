"""SZ-GOVAI-SCENARIO-2025: 深圳市政务人工智能开放场景应用专项补贴, from filing to publication.

The steps of the notice (DESIGN.md, "Lifecycle: SZ-GOVAI-SCENARIO-2025"), in `run()`:

1. formal pre-review (形式预审): approve, return for modification (resubmission allowed after the
   filing cutoff until the date in the return notice, for applications first filed in time), reject,
   or ask for paper materials at the municipal service center window by appointment;
2. expert scoring (practicality, innovation, replicability), from the review service;
3. tiering: tier 1/2/3 with an amount within the tier's cap, or not funded;
4. publication of the result.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts.lifecycle import (
        SHENZHEN_LIFECYCLE,
        SIGNAL_APPOINTMENT_BOOKED,
        STEP_PUBLISH,
        STEP_SZ_EXPERT_SCORING,
        STEP_SZ_FORMAL_PRE_REVIEW,
        STEP_SZ_PAPER_RECEIPT,
        STEP_SZ_TIERING,
        UPDATE_DECIDE_FORMAL_PRE_REVIEW,
        UPDATE_RECORD_EXPERT_SCORING,
        UPDATE_RECORD_PAPER_RECEIPT,
        UPDATE_RECORD_TIERING,
        AppointmentBooked,
        DecideFormalPreReview,
        DecisionAccepted,
        LifecycleStatus,
        NoticeKind,
        RecordExpertScoring,
        RecordPaperReceipt,
        RecordTiering,
        StartLifecycle,
        Status,
    )

    from workflows.lifecycle.base import PORTAL, SZ_ENLIST, Ended, LifecycleBase

PAPER_WINDOW = "SZ-CIVIC-CENTER-WEST"


def panel_reason(scoring: RecordExpertScoring) -> str:
    """The reason of the move to tiering: the product's score that sets the tier (`product_score:`).
    A command without it (sent before the score was carried, as recorded histories hold) keeps the
    reason those runs recorded, the unweighted sum of the criterion means. Only an activity's input
    changes with it, no command: histories replay either way."""
    if scoring.score is not None:
        return f"product_score:{scoring.score}"
    return f"expert_score:{scoring.practicality + scoring.innovation + scoring.replicability}"


@workflow.defn(name=SHENZHEN_LIFECYCLE)
class ShenzhenGovAiScenarioLifecycle(LifecycleBase):
    AWAITING = {
        Status.FORMAL_PRE_REVIEW: STEP_SZ_FORMAL_PRE_REVIEW.key,
        Status.AWAITING_PAPER: STEP_SZ_PAPER_RECEIPT.key,
        Status.EXPERT_SCORING: STEP_SZ_EXPERT_SCORING.key,
        Status.TIERING: STEP_SZ_TIERING.key,
        Status.AWAITING_PUBLICATION: STEP_PUBLISH.key,
    }
    PUBLISHED_NOTICE = NoticeKind.PUBLISHED

    def __init__(self) -> None:
        super().__init__()
        self.scoring: RecordExpertScoring | None = None
        self.appointment: AppointmentBooked | None = None

    @workflow.run
    async def run(self, start: StartLifecycle) -> LifecycleStatus:
        self.start, self.version = start, start.version
        try:
            await self.formal_pre_review_rounds()
            await self.expert_scoring()
            await self.tiering()
            if workflow.patched(SZ_ENLIST):  # older runs waited for a publication that never came
                await self.enlist_for_publication()
            await self.wait_for_publication()
        except Ended:
            pass
        return await self.finish()

    # --- steps -----------------------------------------------------------------------------

    async def formal_pre_review_rounds(self) -> None:
        await self.transition(Status.FORMAL_PRE_REVIEW, reason="submitted", actor=PORTAL)
        while True:
            decision = await self.next_decision(DecideFormalPreReview)
            assert decision is not None
            if decision.decision == "approve":
                await self.transition(Status.EXPERT_SCORING, reason="formal_pre_review_passed", actor=decision.actor)
                self.applied()
                return
            if decision.decision == "reject":
                try:
                    await self.end(
                        Status.REJECTED, reason="; ".join(decision.reasons), actor=decision.actor,
                        notice=NoticeKind.REJECTED, reasons=decision.reasons,
                    )  # fmt: skip
                finally:
                    self.applied()
            if decision.decision == "request_paper":
                await self.paper_by_appointment(decision)
                continue
            assert decision.resubmit_by is not None
            await self.returned_for_modification(reasons=decision.reasons, resubmit_by=decision.resubmit_by, actor=decision.actor)
            await self.transition(Status.FORMAL_PRE_REVIEW, reason=f"resubmitted:v{self.version}", actor=PORTAL)
            self.applied()  # releases the resubmission's update

    async def paper_by_appointment(self, decision: DecideFormalPreReview) -> None:
        """Paper at the municipal window, by appointment, where pre-review asks for it; no legal
        deadline applies, the application waits (or is withdrawn)."""
        reason = "paper_requested:" + "; ".join(decision.reasons) if decision.reasons else "paper_requested"
        await self.transition(
            Status.AWAITING_PAPER, reason=reason, actor=decision.actor, notice=NoticeKind.PAPER_REQUESTED, reasons=decision.reasons
        )
        self.applied()
        paper = await self.next_decision(RecordPaperReceipt)
        assert paper is not None
        await self.transition(
            Status.FORMAL_PRE_REVIEW, reason=f"paper_received:{paper.window_code}", actor=paper.actor, window_code=paper.window_code
        )
        self.applied()

    async def expert_scoring(self) -> None:
        scoring = await self.next_decision(RecordExpertScoring)
        assert scoring is not None
        self.scoring = scoring
        await self.transition(Status.TIERING, reason=panel_reason(scoring), actor=scoring.actor)
        self.applied()

    async def tiering(self) -> None:
        result = await self.next_decision(RecordTiering)
        assert result is not None
        if result.tier is None:
            try:
                await self.end(Status.REJECTED, reason="not_funded", actor=result.actor, notice=NoticeKind.NOT_FUNDED)
            finally:
                self.applied()
        self.tier, self.award_fen = result.tier, result.award_fen
        await self.transition(Status.AWAITING_PUBLICATION, reason=f"tier:{result.tier}; award_fen:{result.award_fen}", actor=result.actor)
        self.applied()

    # --- updates ------------------------------------------------------------------------------

    @workflow.update(name=UPDATE_DECIDE_FORMAL_PRE_REVIEW)
    async def decide_formal_pre_review(self, decision: DecideFormalPreReview) -> DecisionAccepted:
        return await self.deliver(decision)

    @decide_formal_pre_review.validator
    def _validate_formal_pre_review(self, decision: DecideFormalPreReview) -> None:
        self.require(decision.actor, STEP_SZ_FORMAL_PRE_REVIEW.roles, STEP_SZ_FORMAL_PRE_REVIEW.statuses)

    @workflow.update(name=UPDATE_RECORD_PAPER_RECEIPT)
    async def record_paper_receipt(self, receipt: RecordPaperReceipt) -> DecisionAccepted:
        return await self.deliver(receipt)

    @record_paper_receipt.validator
    def _validate_paper_receipt(self, receipt: RecordPaperReceipt) -> None:
        self.validate_paper_receipt(receipt, step=STEP_SZ_PAPER_RECEIPT, copies_required=1)
        if receipt.window_code != PAPER_WINDOW:
            raise ValueError(f"wrong_window: Shenzhen paper is received at {PAPER_WINDOW}")

    @workflow.update(name=UPDATE_RECORD_EXPERT_SCORING)
    async def record_expert_scoring(self, scoring: RecordExpertScoring) -> DecisionAccepted:
        return await self.deliver(scoring)

    @record_expert_scoring.validator
    def _validate_expert_scoring(self, scoring: RecordExpertScoring) -> None:
        self.require(scoring.actor, STEP_SZ_EXPERT_SCORING.roles, STEP_SZ_EXPERT_SCORING.statuses)

    @workflow.update(name=UPDATE_RECORD_TIERING)
    async def record_tiering(self, result: RecordTiering) -> DecisionAccepted:
        return await self.deliver(result)

    @record_tiering.validator
    def _validate_tiering(self, result: RecordTiering) -> None:
        self.require(result.actor, STEP_SZ_TIERING.roles, STEP_SZ_TIERING.statuses)
        caps = (self.start.policy.tier_caps_fen if self.start else None) or {}
        if result.tier is None and result.award_fen:
            raise ValueError("invalid: an application not funded has no award")
        if result.tier is not None and result.award_fen > caps.get(result.tier, 0):
            raise ValueError(f"over_cap: tier {result.tier} is capped at {caps.get(result.tier, 0)} fen")

    # --- signals ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_APPOINTMENT_BOOKED)
    def appointment_booked(self, appointment: AppointmentBooked) -> None:
        self.appointment = appointment
