"""LG-AI-MODEL-2025: 龙岗区调用模型开发应用扶持, from online application to public notice.

The steps of the guide's 五、办理流程 (DESIGN.md, "Lifecycle: LG-AI-MODEL-2025"), in `run()`:

1. pre-checks (automatic, each citing its clause), then online review by the district AI bureau:
   approve (已通过线上终审), return for modification (any number of rounds), or reject;
2. the watermarked application form is issued; the enterprise submits it on the Guangdong portal,
   which must be the very form issued (id and hash);
3. back-office review; on approval the enterprise is sent an SMS;
4. paper within 5 working days of the SMS's delivery, or the application is deemed abandoned;
5. award calculation, public notice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.contracts.lifecycle import (
        ACTIVITY_ENLIST_FOR_PUBLICATION,
        ACTIVITY_ISSUE_WATERMARKED_FORM,
        ACTIVITY_RUN_PRE_CHECKS,
        LONGGANG_LIFECYCLE,
        SIGNAL_FORM_DOWNLOADED,
        SIGNAL_SMS_DELIVERY_REPORTED,
        STEP_LG_AWARD,
        STEP_LG_BACK_OFFICE_REVIEW,
        STEP_LG_CONFIRM_NOTICE_BY_PHONE,
        STEP_LG_ONLINE_REVIEW,
        STEP_LG_PAPER_RECEIPT,
        STEP_PUBLISH,
        UPDATE_CONFIRM_NOTICE_BY_PHONE,
        UPDATE_DECIDE_BACK_OFFICE_REVIEW,
        UPDATE_DECIDE_ONLINE_REVIEW,
        UPDATE_RECORD_AWARD,
        UPDATE_RECORD_GUANGDONG_SUBMISSION,
        UPDATE_RECORD_PAPER_RECEIPT,
        UPDATE_REVISE_AWARD,
        ConfirmNoticeByPhone,
        DecideBackOfficeReview,
        DecideOnlineReview,
        DecisionAccepted,
        EnlistForPublication,
        FormDownloaded,
        IssueWatermarkedForm,
        LifecycleStatus,
        NoticeKind,
        PreCheckReport,
        RecordAward,
        RecordGuangdongSubmission,
        RecordPaperReceipt,
        ReviseAward,
        Role,
        RunPreChecks,
        SmsDeliveryReported,
        StartLifecycle,
        Status,
        WatermarkedForm,
    )
    from subsidy.deadlines import SHANGHAI

    from workflows.lifecycle.base import PORTAL, RECORD_RETRY, SYSTEM, Ended, LifecycleBase

# Patches (workflow.patched): recorded histories of older runs replay without them.
REVISE_AWARD = "lg-revise-award"  # the batch budget (按比例核减) lowers the award before publication
APPROVAL_NOTICE = NoticeKind.BACK_OFFICE_APPROVED  # the SMS whose delivery starts the paper clock
PAPER_COPIES = 2  # two bound, stamped copies of the form (五(四))


@workflow.defn(name=LONGGANG_LIFECYCLE)
class LonggangModelCallLifecycle(LifecycleBase):
    AWAITING = {
        Status.ONLINE_REVIEW: STEP_LG_ONLINE_REVIEW.key,
        Status.BACK_OFFICE_REVIEW: STEP_LG_BACK_OFFICE_REVIEW.key,
        Status.AWAITING_PAPER: STEP_LG_PAPER_RECEIPT.key,
        Status.AWARD_CALCULATION: STEP_LG_AWARD.key,
        Status.AWAITING_PUBLICATION: STEP_PUBLISH.key,
    }  # AWAITING_SMS_DELIVERY waits for the SMS receipt; a reviewer's phone call only once it is missing
    PUBLISHED_NOTICE = NoticeKind.AWARD_PUBLISHED

    def __init__(self) -> None:
        super().__init__()
        self.pre_checks: PreCheckReport | None = None
        self.sms_delivered_at: datetime | None = None
        self.approved_at: datetime | None = None  # the back-office approval the SMS (or the call) tells of
        self.sms_failures = 0
        self.confirmed_award_fen: int | None = None  # the award as record_award set it, once revised

    @workflow.run
    async def run(self, start: StartLifecycle) -> LifecycleStatus:
        self.start, self.version = start, start.version
        try:
            await self.online_review_rounds()
            await self.issue_watermarked_form()
            await self.guangdong_submission()
            await self.back_office_review()
            trigger, trigger_kind, started_by = await self.approval_sms_delivery()
            paper = await self.paper_within_deadline(
                trigger=trigger, trigger_kind=trigger_kind, reason=trigger_kind, started_by=started_by
            )
            await self.transition(
                Status.AWARD_CALCULATION, reason=f"paper_received:{paper.window_code}", actor=paper.actor, window_code=paper.window_code
            )
            self.applied()
            await self.award()
            await self.public_notice()
        except Ended:
            pass
        return await self.finish()

    # --- steps ---------------------------------------------------------------------------------

    async def online_review_rounds(self) -> None:
        """Pre-checks and online review, again after each resubmission, until approved or rejected."""
        reason = "submitted"
        while True:
            await self.transition(Status.PRE_CHECK, reason=reason, actor=PORTAL)
            if self.round:
                self.applied()  # releases the resubmission's update
            self.pre_checks = await workflow.execute_activity(
                ACTIVITY_RUN_PRE_CHECKS,
                RunPreChecks(program=self._start.program, application_no=self._start.application_no, version=self.version,
                             correlation_id=self._start.correlation_id),
                task_queue=task_queues.REVIEW,
                result_type=PreCheckReport,
                start_to_close_timeout=timedelta(minutes=2),
                # It heartbeats while it waits for the submission: a review process that died with it
                # in hand is noticed in 30 s (the fault level's SIGKILL waited out the 2 minutes).
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
            failed = [f.rule for f in self.pre_checks.findings if not f.passed]
            await self.transition(
                Status.ONLINE_REVIEW, reason="pre_checks_failed:" + ",".join(failed) if failed else "pre_checks_passed", actor=SYSTEM
            )
            decision = await self.next_decision(DecideOnlineReview)
            assert decision is not None
            if decision.decision == "approve":
                await self.transition(Status.APPROVED_ONLINE, reason="已通过线上终审", actor=decision.actor, notice=NoticeKind.ONLINE_APPROVED)
                self.applied()
                return
            if decision.decision == "reject":
                await self._reject(decision.reasons, decision)
            assert decision.resubmit_by is not None
            await self.returned_for_modification(reasons=decision.reasons, resubmit_by=decision.resubmit_by, actor=decision.actor)
            reason = f"resubmitted:v{self.version}"

    async def issue_watermarked_form(self) -> None:
        form = await workflow.execute_activity(
            ACTIVITY_ISSUE_WATERMARKED_FORM,
            IssueWatermarkedForm(program=self._start.program, application_no=self._start.application_no, version=self.version,
                                 correlation_id=self._start.correlation_id),
            task_queue=task_queues.REVIEW,
            result_type=WatermarkedForm,
            # One transaction that renders a page (~0.3 s; seconds under load): a process that died
            # with it in hand is noticed after 30 s, not 2 minutes. A retry issues the same form.
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )
        self.form_id, self.form_sha256 = form.form_id, form.sha256
        await self.transition(Status.AWAITING_GD_SUBMISSION, reason=f"form_issued:{form.form_id}", actor=SYSTEM)

    async def guangdong_submission(self) -> None:
        submission = await self.next_decision(RecordGuangdongSubmission)
        assert submission is not None
        self.gd_case_no = submission.gd_case_no
        await self.transition(Status.BACK_OFFICE_REVIEW, reason=f"gd_case:{submission.gd_case_no}", actor=submission.actor)
        self.applied()

    async def back_office_review(self) -> None:
        decision = await self.next_decision(DecideBackOfficeReview)
        assert decision is not None
        if decision.decision == "reject":
            await self._reject(decision.reasons, decision)
        # The state change makes notify send the approval SMS (paper, windows, 5 working days).
        self.approved_at = workflow.now()
        await self.transition(Status.AWAITING_SMS_DELIVERY, reason=APPROVAL_NOTICE.value, actor=decision.actor, notice=APPROVAL_NOTICE)
        self.applied()

    async def approval_sms_delivery(self) -> tuple[datetime, str, ConfirmNoticeByPhone | None]:
        """The paper clock starts when the approval SMS is delivered (the provider's receipt).

        No receipt within `sms_receipt_wait`: the platform does not guess a delivery time. It
        records `sms_receipt_missing` (a reviewer task: phone the enterprise) and keeps waiting;
        the clock then starts at whichever comes first, a late receipt or the time a reviewer
        records having reached the enterprise (`confirm_notice_by_phone`). The deadline records
        which of the two started it.
        """
        assert self.start is not None
        wait = self.start.policy.sms_receipt_wait
        phone = await self.next_decision(ConfirmNoticeByPhone, until=workflow.now() + wait, also=lambda: self.sms_delivered_at is not None)
        if phone is None and self.sms_delivered_at is None:
            await self.transition(
                Status.AWAITING_SMS_DELIVERY, reason="sms_receipt_missing", actor=SYSTEM, awaiting=STEP_LG_CONFIRM_NOTICE_BY_PHONE.key
            )
            phone = await self.next_decision(ConfirmNoticeByPhone, also=lambda: self.sms_delivered_at is not None)
        if phone is not None:  # released once the paper deadline is computed
            return phone.reached_at, "confirmed_by_phone", phone
        assert self.sms_delivered_at is not None
        return self.sms_delivered_at, "sms_delivered", None

    async def award(self) -> None:
        award = await self.next_decision(RecordAward)
        assert award is not None
        self.award_fen = award.award_fen
        await self.transition(Status.AWAITING_PUBLICATION, reason=f"award_fen:{award.award_fen}", actor=award.actor)
        self.applied()

    async def public_notice(self) -> None:
        await self.enlist_for_publication()
        await self.wait_for_publication()

    async def while_listed(self, command: object) -> None:
        """The batch's budget applied (按比例核减): the award lowered before publication. The state
        change carries the new amount (award_fen; the reason names the old one) and the entry on the
        unpublished list is replaced (the batch's `enlist` keeps an application's latest award)."""
        if not isinstance(command, ReviseAward) or not workflow.patched(REVISE_AWARD):
            await super().while_listed(command)
            return
        before = self.award_fen
        if self.confirmed_award_fen is None:
            self.confirmed_award_fen = self.award_fen
        self.award_fen = command.award_fen
        await self.transition(
            Status.AWAITING_PUBLICATION, reason=f"award_revised:{before}->{command.award_fen}", actor=command.actor,
            reasons=(command.reason,),
        )
        await self.enlist_for_publication()
        self.applied()

    async def _reject(self, reasons: tuple[str, ...], decision: DecideOnlineReview | DecideBackOfficeReview) -> None:
        try:
            await self.end(Status.REJECTED, reason="; ".join(reasons), actor=decision.actor, notice=NoticeKind.REJECTED, reasons=reasons)
        finally:
            self.applied()

    @property
    def _start(self) -> StartLifecycle:
        assert self.start is not None
        return self.start

    # --- updates: decisions, validated before they reach history --------------------------------

    @workflow.update(name=UPDATE_DECIDE_ONLINE_REVIEW)
    async def decide_online_review(self, decision: DecideOnlineReview) -> DecisionAccepted:
        return await self.deliver(decision)

    @decide_online_review.validator
    def _validate_online_review(self, decision: DecideOnlineReview) -> None:
        self.require(decision.actor, STEP_LG_ONLINE_REVIEW.roles, STEP_LG_ONLINE_REVIEW.statuses)

    @workflow.update(name=UPDATE_RECORD_GUANGDONG_SUBMISSION)
    async def record_guangdong_submission(self, submission: RecordGuangdongSubmission) -> DecisionAccepted:
        return await self.deliver(submission)

    @record_guangdong_submission.validator
    def _validate_guangdong_submission(self, submission: RecordGuangdongSubmission) -> None:
        self.require(submission.actor, {Role.PORTAL}, {Status.AWAITING_GD_SUBMISSION})
        if submission.form_id != self.form_id or submission.form_sha256 != self.form_sha256:
            raise ValueError("wrong_form: the submitted form is not the watermarked form the platform issued")

    @workflow.update(name=UPDATE_DECIDE_BACK_OFFICE_REVIEW)
    async def decide_back_office_review(self, decision: DecideBackOfficeReview) -> DecisionAccepted:
        return await self.deliver(decision)

    @decide_back_office_review.validator
    def _validate_back_office_review(self, decision: DecideBackOfficeReview) -> None:
        self.require(decision.actor, STEP_LG_BACK_OFFICE_REVIEW.roles, STEP_LG_BACK_OFFICE_REVIEW.statuses)

    @workflow.update(name=UPDATE_CONFIRM_NOTICE_BY_PHONE)
    async def confirm_notice_by_phone(self, confirmation: ConfirmNoticeByPhone) -> DecisionAccepted:
        return await self.deliver(confirmation)

    @confirm_notice_by_phone.validator
    def _validate_confirm_notice(self, confirmation: ConfirmNoticeByPhone) -> None:
        self.require(confirmation.actor, STEP_LG_CONFIRM_NOTICE_BY_PHONE.roles, STEP_LG_CONFIRM_NOTICE_BY_PHONE.statuses)
        if confirmation.reached_at > workflow.now():
            raise ValueError("invalid: reached_at is in the future")
        approved_on = self.approved_at.astimezone(SHANGHAI).date() if self.approved_at is not None else None
        if approved_on is not None and confirmation.reached_at.astimezone(SHANGHAI).date() < approved_on:
            # A day before the approval it tells of: a mistyped date would start, and end, the 5
            # working days long ago (the application abandoned). Within the day the hour does not
            # count (the day of the event is not counted).
            raise ValueError("invalid: reached_at is before the approval the call told of")
        if self.sms_delivered_at is not None:  # (the status moves on once its deadline is computed)
            raise ValueError("wrong_state: the approval SMS was delivered; its receipt started the paper clock")

    @workflow.update(name=UPDATE_RECORD_PAPER_RECEIPT)
    async def record_paper_receipt(self, receipt: RecordPaperReceipt) -> DecisionAccepted:
        return await self.deliver(receipt)

    @record_paper_receipt.validator
    def _validate_paper_receipt(self, receipt: RecordPaperReceipt) -> None:
        self.validate_paper_receipt(receipt, step=STEP_LG_PAPER_RECEIPT, copies_required=PAPER_COPIES)
        if not receipt.window_code.startswith("LG-W"):
            raise ValueError("wrong_window: Longgang paper is received at windows LG-W01..LG-W13")

    @workflow.update(name=UPDATE_RECORD_AWARD)
    async def record_award(self, award: RecordAward) -> DecisionAccepted:
        return await self.deliver(award)

    @record_award.validator
    def _validate_award(self, award: RecordAward) -> None:
        self.require(award.actor, STEP_LG_AWARD.roles, STEP_LG_AWARD.statuses)
        policy = self._start.policy
        ceiling = award.eligible_amount_fen * (policy.award_rate_percent or 0) // 100
        if policy.award_cap_fen is not None:
            ceiling = min(ceiling, policy.award_cap_fen)
        if award.award_fen > ceiling:
            raise ValueError(f"over_cap: at most {policy.award_rate_percent}% of the eligible amount, capped ({ceiling} fen)")

    @workflow.update(name=UPDATE_REVISE_AWARD)
    async def revise_award(self, revision: ReviseAward) -> DecisionAccepted:
        return await self.deliver(revision)

    @revise_award.validator
    def _validate_revise_award(self, revision: ReviseAward) -> None:
        self.require(revision.actor, {Role.PROGRAM_ADMIN, Role.REVIEW_SERVICE}, {Status.AWAITING_PUBLICATION})
        if self.publication is not None:
            raise ValueError("wrong_state: the list was published; its amounts change only by an objection")
        confirmed = self.confirmed_award_fen if self.confirmed_award_fen is not None else self.award_fen
        if revision.confirmed_award_fen != confirmed:
            raise ValueError(f"stale: the confirmed award is {confirmed} fen, not {revision.confirmed_award_fen}")
        if revision.award_fen > (confirmed or 0):
            raise ValueError(f"over_cap: a revised award is never above the confirmed {confirmed} fen")

    # --- signals: facts ---------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_SMS_DELIVERY_REPORTED)
    def sms_delivery_reported(self, report: SmsDeliveryReported) -> None:
        if self.status is not Status.AWAITING_SMS_DELIVERY or report.notice_kind != APPROVAL_NOTICE:
            return  # a receipt for another notice: recorded by notify, not a lifecycle fact
        if report.status == "DELIVERED" and self.sms_delivered_at is None:
            self.sms_delivered_at = report.reported_at
        elif report.status == "FAILED":
            self.sms_failures += 1  # notify retries and fails over; the phone task covers the rest

    @workflow.signal(name=SIGNAL_FORM_DOWNLOADED)
    def form_downloaded(self, download: FormDownloaded) -> None:
        workflow.logger.info("form downloaded", extra={"form_id": download.form_id})

