"""LG-AI-MODEL-2025 lifecycle paths under time skipping, on the 2025/2026 calendar."""

from __future__ import annotations

import hashlib

import pytest
from temporalio.client import WorkflowUpdateFailedError

from subsidy.contracts.lifecycle import (
    SIGNAL_PUBLISHED,
    SIGNAL_SMS_DELIVERY_REPORTED,
    UPDATE_CONFIRM_NOTICE_BY_PHONE,
    UPDATE_DECIDE_BACK_OFFICE_REVIEW,
    UPDATE_DECIDE_ONLINE_REVIEW,
    UPDATE_RECORD_AWARD,
    UPDATE_RECORD_GUANGDONG_SUBMISSION,
    UPDATE_RECORD_PAPER_RECEIPT,
    UPDATE_RESUBMIT,
    UPDATE_WITHDRAW,
    STATE_CHANGE_REVISION,
    Actor,
    ConfirmNoticeByPhone,
    DecideBackOfficeReview,
    DecideOnlineReview,
    LifecycleStatus,
    NoticeKind,
    RecordAward,
    RecordGuangdongSubmission,
    RecordPaperReceipt,
    RecordPublication,
    Resubmit,
    Role,
    SmsDeliveryReported,
    Status,
    Withdraw,
)
from tests.workflows.harness import (
    ADMIN,
    BACK_OFFICE_REVIEWER,
    CLERK,
    ONLINE_REVIEWER,
    PORTAL,
    PUBLISHER,
    REVIEW_SERVICE,
    Harness,
    lifecycle_env,
    sh,
)

LG = "LG-AI-MODEL-2025"
APP = "LG2025-000123"


async def approve_until_sms(h: Harness, handle) -> None:
    """Online review approved, form issued and submitted on the Guangdong portal, back office approved."""
    await h.reach(handle, Status.ONLINE_REVIEW)
    accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
    assert accepted.status is Status.APPROVED_ONLINE
    state = await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
    await h.update(handle,
        UPDATE_RECORD_GUANGDONG_SUBMISSION,
        RecordGuangdongSubmission(
            actor=PORTAL, gd_case_no="GD-2025-77", form_id=state.form_id,
            form_sha256=hashlib.sha256(state.form_id.encode()).hexdigest(), received_at=sh("2025-12-29 11:00"),
        ),
    )
    accepted = await h.update(handle, UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview(actor=BACK_OFFICE_REVIEWER, decision="approve"))
    assert accepted.status is Status.AWAITING_SMS_DELIVERY


def delivered(at: str) -> SmsDeliveryReported:
    return SmsDeliveryReported(message_id="m-1", notice_kind="back_office_approved", status="DELIVERED", reported_at=sh(at))


def paper(at: str, **overrides) -> RecordPaperReceipt:
    fields = dict(actor=CLERK, window_code="LG-W03", received_at=sh(at), copies=2, bound_and_stamped=True)
    return RecordPaperReceipt(**{**fields, **overrides})


async def award_and_publish(h: Harness, handle) -> LifecycleStatus:
    accepted = await h.update(handle,
        UPDATE_RECORD_AWARD, RecordAward(actor=REVIEW_SERVICE, eligible_amount_fen=150_000_000, award_fen=45_000_000)
    )
    assert accepted.status is Status.AWAITING_PUBLICATION
    await h.reach(handle, Status.AWAITING_PUBLICATION)
    while not h.services.enlisted:
        await h.reach(handle, Status.AWAITING_PUBLICATION)
    # The batch passes on its publisher: here the program's administrator.
    await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=ADMIN, notice_id="GS-LG-2025-01", published_at=sh("2026-02-02 09:00")))
    return await handle.result()


async def test_approved_all_the_way_with_sms_delivered_before_new_year() -> None:
    """SMS delivered 2025-12-30 10:00: 5 working days skip 1-3 January and count Sunday 2026-01-04."""
    async with lifecycle_env(sh("2025-12-29 14:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await h.sleep_until(sh("2025-12-30 10:00"))
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-30 10:00"))
        state = await h.reach(handle, Status.AWAITING_PAPER)

        assert state.deadline is not None
        assert state.deadline.deadline == sh("2026-01-07 18:00")
        assert [d.isoformat() for d in state.deadline.working_days] == [
            "2025-12-31", "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"]
        assert state.deadline.trigger_kind == "sms_delivered"
        assert state.deadline.calendar_version.startswith("chinese-calendar==")

        await h.sleep_until(sh("2026-01-07 17:59"))  # the reminders fall due meanwhile
        assert [r.due_at for r in h.services.reminders] == [sh("2026-01-05 09:00"), sh("2026-01-07 09:00")]
        accepted = await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2026-01-07 17:59"))
        assert accepted.status is Status.AWARD_CALCULATION

        result = await award_and_publish(h, handle)
        await h.keep_history(handle, "lg_approved_all_the_way")

    assert result.status is Status.PUBLISHED and result.award_fen == 45_000_000
    assert h.services.statuses() == [
        Status.PRE_CHECK, Status.ONLINE_REVIEW, Status.APPROVED_ONLINE, Status.AWAITING_GD_SUBMISSION,
        Status.BACK_OFFICE_REVIEW, Status.AWAITING_SMS_DELIVERY, Status.AWAITING_PAPER, Status.AWARD_CALCULATION,
        Status.AWAITING_PUBLICATION, Status.PUBLISHED]
    paper_change = next(c for c in h.services.changes if c.to_status is Status.AWAITING_PAPER)
    assert paper_change.deadline == sh("2026-01-07 18:00")
    assert len({c.event_id for c in h.services.changes}) == len(h.services.changes)
    # What the services act on travels in typed fields: the SMS each change calls for, the human
    # step it waits for, the award, the notice, where the paper came in.
    assert all(c.contract_revision == STATE_CHANGE_REVISION for c in h.services.changes)
    assert [(c.to_status, c.notice_kind, c.awaiting_step) for c in h.services.changes] == [
        (Status.PRE_CHECK, None, None),
        (Status.ONLINE_REVIEW, None, "lg_online_review"),
        (Status.APPROVED_ONLINE, NoticeKind.ONLINE_APPROVED, None),
        (Status.AWAITING_GD_SUBMISSION, None, None),
        (Status.BACK_OFFICE_REVIEW, None, "lg_back_office_review"),
        (Status.AWAITING_SMS_DELIVERY, NoticeKind.BACK_OFFICE_APPROVED, None),
        (Status.AWAITING_PAPER, None, "lg_paper_receipt"),
        (Status.AWARD_CALCULATION, None, "lg_award"),
        (Status.AWAITING_PUBLICATION, None, "publish"),
        (Status.PUBLISHED, NoticeKind.AWARD_PUBLISHED, None),
    ]
    by_status = {c.to_status: c for c in h.services.changes}
    assert by_status[Status.AWARD_CALCULATION].window_code == "LG-W03"
    assert by_status[Status.AWARD_CALCULATION].award_fen is None
    assert by_status[Status.AWAITING_PUBLICATION].award_fen == 45_000_000
    published = by_status[Status.PUBLISHED]
    assert (published.award_fen, published.notice_id, published.gd_case_no) == (45_000_000, "GS-LG-2025-01", "GD-2025-77")
    assert published.form_id == f"WF-{APP}-v1" and published.actor == ADMIN.id


async def test_paper_one_minute_late_is_refused_and_the_application_abandoned() -> None:
    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-30 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)
        await h.sleep_until(sh("2026-01-07 18:01"))
        before = await h.at_rest(handle)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2026-01-07 18:01"))
        assert "late" in str(refused.value.cause)
        assert await h.recorded_events(handle) == before  # the validator refused it: no trace

        result = await handle.result()
        await h.keep_history(handle, "lg_paper_late_abandoned")
    assert result.status is Status.ABANDONED
    abandoned = h.services.changes[-1]
    assert (abandoned.to_status, abandoned.reason) == (Status.ABANDONED, "paper_deadline_passed")
    assert (abandoned.notice_kind, abandoned.awaiting_step) == (NoticeKind.ABANDONED, None)


async def test_returned_twice_then_approved() -> None:
    async with lifecycle_env(sh("2025-12-09 11:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        for round_, (returned_on, due, resubmitted_on) in enumerate(
            [("2025-12-10 10:00", "2025-12-17 18:00", "2025-12-15 09:30"),
             ("2025-12-16 10:00", "2025-12-23 18:00", "2025-12-22 16:00")], start=1):
            await h.reach(handle, Status.ONLINE_REVIEW)
            await h.sleep_until(sh(returned_on))
            accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
                actor=ONLINE_REVIEWER, decision="return", reasons=("发票金额与合同不符",), resubmit_by=sh(due)))
            assert accepted.status is Status.RETURNED and accepted.deadline == sh(due)
            await h.sleep_until(sh(resubmitted_on))
            accepted = await h.update(handle,
                UPDATE_RESUBMIT, Resubmit(actor=PORTAL, version=round_ + 1, submitted_at=sh(resubmitted_on)))
            assert accepted.status in (Status.PRE_CHECK, Status.ONLINE_REVIEW)
        state = await h.reach(handle, Status.ONLINE_REVIEW)
        assert (state.round, state.version) == (2, 3)
        accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
        assert accepted.status is Status.APPROVED_ONLINE
        await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
        await h.keep_history(handle, "lg_returned_twice_then_approved")
        await handle.terminate("test over")
    assert h.services.pre_check_runs == 3
    assert h.services.statuses().count(Status.RETURNED) == 2
    returns = [c for c in h.services.changes if c.to_status is Status.RETURNED]
    assert [(c.notice_kind, c.reasons, c.deadline, c.version) for c in returns] == [
        (NoticeKind.RETURNED, ("发票金额与合同不符",), sh("2025-12-17 18:00"), 1),
        (NoticeKind.RETURNED, ("发票金额与合同不符",), sh("2025-12-23 18:00"), 2),
    ]


async def test_resubmission_after_the_notice_date_is_refused_and_the_application_abandoned() -> None:
    async with lifecycle_env(sh("2025-12-10 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
            actor=ONLINE_REVIEWER, decision="return", reasons=("缺少备案证明",), resubmit_by=sh("2025-12-17 18:00")))
        with pytest.raises(WorkflowUpdateFailedError):
            await h.update(handle, UPDATE_RESUBMIT, Resubmit(actor=PORTAL, version=2, submitted_at=sh("2025-12-18 09:00")))
        result = await handle.result()
    assert result.status is Status.ABANDONED
    assert h.services.changes[-1].reason == "resubmission_deadline_passed"
    assert h.services.changes[-1].notice_kind is NoticeKind.RESUBMISSION_LAPSED


async def test_rejected_online() -> None:
    async with lifecycle_env(sh("2025-12-10 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        accepted = await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
            actor=ONLINE_REVIEWER, decision="reject", reasons=("模型供给方为关联方 (三(二)2)",)))
        assert accepted.status is Status.REJECTED
        result = await handle.result()
        await h.keep_history(handle, "lg_rejected")
    assert result.status is Status.REJECTED
    rejected = h.services.changes[-1]
    assert rejected.reason == "模型供给方为关联方 (三(二)2)"
    assert (rejected.notice_kind, rejected.reasons) == (NoticeKind.REJECTED, ("模型供给方为关联方 (三(二)2)",))


async def test_withdrawn_mid_way_while_waiting_for_the_guangdong_portal() -> None:
    async with lifecycle_env(sh("2025-12-10 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
        await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
        accepted = await h.update(handle,
            UPDATE_WITHDRAW, Withdraw(actor=PORTAL, withdrawn_at=sh("2025-12-11 10:00"), reason="企业主动撤回"))
        assert accepted.status is Status.WITHDRAWN
        result = await handle.result()
        await h.keep_history(handle, "lg_withdrawn")
        with pytest.raises(Exception):  # nothing after the end: the workflow is closed
            await h.update(handle, UPDATE_WITHDRAW, Withdraw(actor=PORTAL, withdrawn_at=sh("2025-12-11 11:00")))
    assert result.status is Status.WITHDRAWN
    assert h.services.statuses()[-1] is Status.WITHDRAWN
    assert h.services.changes[-1].notice_kind is None  # the enterprise's own act: no SMS


async def test_deadline_across_spring_festival_2026() -> None:
    """Delivered Thursday 2026-02-12: counts Fri 13, Sat 14 (调休), then 24, 25, 26 February."""
    async with lifecycle_env(sh("2026-02-11 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2026-02-12 15:20"))
        state = await h.reach(handle, Status.AWAITING_PAPER)
        assert state.deadline.deadline == sh("2026-02-26 18:00")
        assert [d.isoformat() for d in state.deadline.working_days] == [
            "2026-02-13", "2026-02-14", "2026-02-24", "2026-02-25", "2026-02-26"]
        await h.sleep_until(sh("2026-02-25 10:00"))
        accepted = await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2026-02-25 10:00", window_code="LG-W11"))
        assert accepted.status is Status.AWARD_CALCULATION
        await h.keep_history(handle, "lg_spring_festival")
        await handle.terminate("test over")
    assert [r.due_at for r in h.services.reminders] == [sh("2026-02-24 09:00")]  # paper came before the last day's


async def test_no_delivery_receipt_makes_a_phone_task_and_the_call_starts_the_clock() -> None:
    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await h.sleep_until(sh("2025-12-30 12:00"))  # more than 24 h: no receipt
        missing = [c for c in h.services.changes if c.reason == "sms_receipt_missing"]
        assert len(missing) == 1 and missing[0].to_status is Status.AWAITING_SMS_DELIVERY
        assert (missing[0].notice_kind, missing[0].awaiting_step) == (None, "lg_confirm_notice_by_phone")  # a reviewer phones
        with pytest.raises(WorkflowUpdateFailedError) as before_approval:  # a mistyped date: refused, not 5 days long past
            await h.update(handle, UPDATE_CONFIRM_NOTICE_BY_PHONE,
                           ConfirmNoticeByPhone(actor=BACK_OFFICE_REVIEWER, reached_at=sh("2025-12-28 11:45")))
        assert "invalid: reached_at is before the approval" in str(before_approval.value.cause)
        accepted = await h.update(handle,
            UPDATE_CONFIRM_NOTICE_BY_PHONE, ConfirmNoticeByPhone(actor=BACK_OFFICE_REVIEWER, reached_at=sh("2025-12-30 11:45")))
        assert accepted.deadline == sh("2026-01-07 18:00")
        state = await h.reach(handle, Status.AWAITING_PAPER)
        assert state.deadline.trigger_kind == "confirmed_by_phone"
        assert state.deadline.trigger == sh("2025-12-30 11:45")
        await h.keep_history(handle, "lg_no_delivery_receipt")
        await handle.terminate("test over")


async def test_rejected_updates_leave_no_trace_and_a_repeated_update_id_applies_once() -> None:
    async with lifecycle_env(sh("2025-12-10 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        before = await h.at_rest(handle)
        for command, update in [
            (DecideOnlineReview(actor=CLERK, decision="approve"), UPDATE_DECIDE_ONLINE_REVIEW),  # wrong role
            (DecideBackOfficeReview(actor=BACK_OFFICE_REVIEWER, decision="approve"), UPDATE_DECIDE_BACK_OFFICE_REVIEW),  # wrong state
            (paper("2025-12-10 09:00"), UPDATE_RECORD_PAPER_RECEIPT),  # wrong state
            (RecordAward(actor=REVIEW_SERVICE, eligible_amount_fen=1, award_fen=1), UPDATE_RECORD_AWARD),
        ]:
            with pytest.raises(WorkflowUpdateFailedError):
                await h.update(handle, update, command)
        assert await h.recorded_events(handle) == before

        first = await h.update(handle,
            UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"), id="review-1")
        await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
        length = await h.at_rest(handle)
        again = await h.update(handle,
            UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"), id="review-1")
        assert again == first and await h.recorded_events(handle) == length
        await handle.terminate("test over")
    assert h.services.statuses().count(Status.APPROVED_ONLINE) == 1


async def test_an_award_over_the_cap_is_refused() -> None:
    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-29 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)
        await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00"))
        with pytest.raises(WorkflowUpdateFailedError) as over:
            # 30% of CNY 10,000,000 is 3,000,000, over the CNY 2,000,000 cap
            await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(
                actor=REVIEW_SERVICE, eligible_amount_fen=1_000_000_000, award_fen=300_000_000))
        assert "over_cap" in str(over.value.cause)
        accepted = await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(
            actor=REVIEW_SERVICE, eligible_amount_fen=1_000_000_000, award_fen=200_000_000))
        assert accepted.status is Status.AWAITING_PUBLICATION
        await handle.terminate("test over")


async def test_paper_received_while_the_move_to_awaiting_paper_is_being_recorded_is_not_lost() -> None:
    """The status is set before its recording activity finishes, so a validator may accept the paper
    in that window; the decision that started the clock is released, never the paper."""
    import asyncio

    async with lifecycle_env(sh("2025-12-29 14:00")) as h:
        h.services.hold_transition_to = Status.AWAITING_PAPER
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-30 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)  # set, while its recording is held
        receipt = asyncio.create_task(h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-31 10:00")))
        await asyncio.sleep(0.5)
        h.services.release.set()
        accepted = await receipt
        assert accepted.status is Status.AWARD_CALCULATION
        await h.reach(handle, Status.AWARD_CALCULATION)
        await handle.terminate("test over")


async def test_a_phone_call_recorded_while_the_deadline_of_a_delivered_sms_is_computed_is_refused() -> None:
    """A late receipt started the paper clock (its deadline still being computed, the status still
    awaiting_sms_delivery): a call recorded meanwhile is refused, not handed to the paper wait (where
    it used to fail the whole workflow as an unexpected decision)."""
    import asyncio

    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        h.services.hold_deadline = True
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-29 08:58"))
        await asyncio.wait_for(h.services.holding.wait(), 20)
        await h.reach(handle, Status.AWAITING_SMS_DELIVERY)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await h.update(handle, UPDATE_CONFIRM_NOTICE_BY_PHONE,
                           ConfirmNoticeByPhone(actor=BACK_OFFICE_REVIEWER, reached_at=await h.env.get_current_time()))
        assert "wrong_state" in str(refused.value.cause)
        h.services.release.set()
        state = await h.reach(handle, Status.AWAITING_PAPER)
        assert state.deadline is not None and state.deadline.trigger_kind == "sms_delivered"
        accepted = await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00"))
        assert accepted.status is Status.AWARD_CALCULATION
        await handle.terminate("test over")


async def test_a_withdrawal_accepted_while_the_return_is_recorded_is_applied_though_the_date_has_passed() -> None:
    """Returned with a date already past, the enterprise's withdrawal accepted while the move to
    returned is being recorded: the wait for the resubmission, its time over, used to time out
    without looking at what had arrived (the application abandoned, the withdrawal never answered)."""
    import asyncio

    async with lifecycle_env(sh("2025-12-10 10:00")) as h:
        h.services.hold_transition_to = Status.RETURNED
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        returned = asyncio.create_task(h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
            actor=ONLINE_REVIEWER, decision="return", reasons=("发票金额与合同不符",), resubmit_by=sh("2025-12-10 09:00"))))
        await h.reach(handle, Status.RETURNED)  # set, while its recording is held
        withdrawn = asyncio.create_task(h.update(handle, UPDATE_WITHDRAW, Withdraw(actor=PORTAL, withdrawn_at=sh("2025-12-10 09:50"), reason="企业决定放弃")))
        await asyncio.sleep(0.5)
        h.services.release.set()
        await asyncio.wait_for(returned, 20)
        accepted = await asyncio.wait_for(withdrawn, 20)
        assert accepted.status is Status.WITHDRAWN
        assert Status.ABANDONED not in h.services.statuses()


async def test_paper_received_in_time_is_taken_when_the_deadline_was_already_past_once_computed() -> None:
    """A call recorded days after it was made: the deadline it starts has passed by the time it is
    computed. Paper the window received in time, recorded while the move to awaiting_paper is being
    recorded, is taken (a wait whose time had passed used to ignore it: the application abandoned,
    the paper update never answered); no reminder of the past deadline is sent."""
    import asyncio

    async with lifecycle_env(sh("2026-01-09 10:00")) as h:
        h.services.hold_transition_to = Status.AWAITING_PAPER
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await h.sleep_until(sh("2026-01-20 10:00"))  # the call of 01-12 recorded only now
        call = asyncio.create_task(h.update(handle, UPDATE_CONFIRM_NOTICE_BY_PHONE, ConfirmNoticeByPhone(
            actor=BACK_OFFICE_REVIEWER, reached_at=sh("2026-01-12 09:00"))))  # answered once the move is recorded
        state = await h.reach(handle, Status.AWAITING_PAPER)  # set, while its recording is held
        assert state.deadline is not None and state.deadline.deadline == sh("2026-01-19 18:00")
        receipt = asyncio.create_task(h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2026-01-16 10:00")))
        await asyncio.sleep(0.5)
        h.services.release.set()
        accepted = await asyncio.wait_for(receipt, 20)
        await call
        assert accepted.status is Status.AWARD_CALCULATION
        assert Status.ABANDONED not in h.services.statuses() and h.services.reminders == []
        await handle.terminate("test over")


async def test_a_deadline_known_only_after_it_passed_leaves_the_window_its_grace_and_sends_no_reminder() -> None:
    """The same late call, no paper recorded: the window still has the grace for late relays from
    the moment the deadline is known (not from the deadline itself, long past), then the
    application is abandoned; no reminder of the past deadline goes out."""
    async with lifecycle_env(sh("2026-01-09 10:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await h.sleep_until(sh("2026-01-20 10:00"))  # the call of 01-12 recorded only now
        await h.update(handle, UPDATE_CONFIRM_NOTICE_BY_PHONE,
                       ConfirmNoticeByPhone(actor=BACK_OFFICE_REVIEWER, reached_at=sh("2026-01-12 09:00")))
        await h.reach(handle, Status.AWAITING_PAPER)
        accepted = await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2026-01-19 17:00"))
        assert accepted.status is Status.AWARD_CALCULATION
        assert h.services.reminders == []
        await handle.terminate("test over")


async def test_each_step_takes_only_the_roles_of_its_officials() -> None:
    """Online review: the online reviewer; back office and the phone call: the back-office reviewer;
    the award: the review service or the administrator. The roles of old histories act no more."""
    legacy = Actor(id="staff:LG-0042", role=Role.DISTRICT_REVIEWER)

    async def refused(handle, name: str, command) -> str:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await h.update(handle, name, command)
        return str(info.value.cause)

    async with lifecycle_env(sh("2025-12-29 14:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        for actor in (BACK_OFFICE_REVIEWER, ADMIN, legacy, PUBLISHER):
            assert "forbidden" in await refused(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=actor, decision="approve"))
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
        state = await h.reach(handle, Status.AWAITING_GD_SUBMISSION)
        await h.update(handle, UPDATE_RECORD_GUANGDONG_SUBMISSION, RecordGuangdongSubmission(
            actor=PORTAL, gd_case_no="GD-2025-77", form_id=state.form_id,
            form_sha256=hashlib.sha256(state.form_id.encode()).hexdigest(), received_at=sh("2025-12-29 14:00")))
        for actor in (ONLINE_REVIEWER, ADMIN, legacy):
            assert "forbidden" in await refused(handle, UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview(actor=actor, decision="approve"))
        await h.update(handle, UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview(actor=BACK_OFFICE_REVIEWER, decision="approve"))
        for actor in (ONLINE_REVIEWER, legacy):
            assert "forbidden" in await refused(
                handle, UPDATE_CONFIRM_NOTICE_BY_PHONE, ConfirmNoticeByPhone(actor=actor, reached_at=sh("2025-12-29 14:00")))
        await h.update(handle, UPDATE_CONFIRM_NOTICE_BY_PHONE, ConfirmNoticeByPhone(actor=BACK_OFFICE_REVIEWER, reached_at=sh("2025-12-29 14:00")))
        await h.reach(handle, Status.AWAITING_PAPER)
        assert "forbidden" in await refused(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00", actor=ONLINE_REVIEWER))
        await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00"))
        award = dict(eligible_amount_fen=150_000_000, award_fen=45_000_000)
        for actor in (ONLINE_REVIEWER, BACK_OFFICE_REVIEWER, legacy):
            assert "forbidden" in await refused(handle, UPDATE_RECORD_AWARD, RecordAward(actor=actor, **award))
        accepted = await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(actor=ADMIN, **award))
        assert accepted.status is Status.AWAITING_PUBLICATION
        await handle.terminate("test over")
    assert h.services.changes[-1].actor == ADMIN.id


async def test_a_published_signal_from_someone_who_may_not_publish_is_ignored() -> None:
    async with lifecycle_env(sh("2025-12-29 14:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-30 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)
        await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-31 10:00"))
        await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(actor=REVIEW_SERVICE, eligible_amount_fen=150_000_000, award_fen=45_000_000))
        await h.reach(handle, Status.AWAITING_PUBLICATION)
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=ONLINE_REVIEWER, notice_id="GS-X", published_at=sh("2026-01-05 09:00")))
        await h.at_rest(handle)
        assert (await h.reach(handle, Status.AWAITING_PUBLICATION)).status is Status.AWAITING_PUBLICATION
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=PUBLISHER, notice_id="GS-LG-2025-01", published_at=sh("2026-01-05 09:00")))
        result = await handle.result()
    assert result.status is Status.PUBLISHED
    assert h.services.changes[-1].notice_id == "GS-LG-2025-01"


async def test_a_paper_receipt_pending_when_the_withdrawal_arrives_is_refused_not_reported_applied() -> None:
    """Issue 14, defect 6: the paper was accepted by its validator while the move to awaiting paper
    was being recorded, then the enterprise withdrew. The withdrawal ends the application; the paper
    was never applied, so its update fails (`wrong_state`, type Withdrawn) instead of answering
    accepted: the window clerk's record says refused, the reviewers' API answers 409."""
    import asyncio

    async with lifecycle_env(sh("2025-12-29 14:00")) as h:
        h.services.hold_transition_to = Status.AWAITING_PAPER
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-30 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)  # set, while its recording is held
        receipt = asyncio.create_task(h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-31 10:00")))
        await asyncio.sleep(0.5)
        withdrawal = asyncio.create_task(
            h.update(handle, UPDATE_WITHDRAW, Withdraw(actor=PORTAL, withdrawn_at=sh("2025-12-31 10:05"), reason="企业主动撤回")))
        await asyncio.sleep(0.5)
        h.services.release.set()
        assert (await withdrawal).status is Status.WITHDRAWN
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await receipt
        assert refused.value.cause.message == "wrong_state: the application was withdrawn"
        assert refused.value.cause.type == "Withdrawn"
        final = await handle.result()
        assert final.status is Status.WITHDRAWN
        assert Status.AWARD_CALCULATION not in h.services.statuses()


MOBILE, ID_NUMBER = "13912345678", "11010519491231002X"


async def test_free_text_reasons_reach_the_state_changes_and_the_history_masked() -> None:
    """Issue 14, defect 8: a withdrawal's reason (the portal's words) and an official's reasons hold
    an ID and a mobile number; the commands intake and review build carry them masked, so neither
    the history nor the state change (hence Kafka) ever holds them raw."""
    async with lifecycle_env(sh("2025-12-10 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
            actor=ONLINE_REVIEWER, decision="return", resubmit_by=sh("2025-12-20 17:00"),
            reasons=(f"联系人电话 {MOBILE} 与身份证 {ID_NUMBER} 不一致",)))
        await h.reach(handle, Status.RETURNED)
        accepted = await h.update(handle, UPDATE_WITHDRAW, Withdraw(
            actor=PORTAL, withdrawn_at=sh("2025-12-11 10:00"), reason=f"法人 {ID_NUMBER} 撤回，电话 +86 139-1234-5678"))
        assert accepted.status is Status.WITHDRAWN
        await handle.result()
        # The events' protobuf bytes hold the payloads' JSON as it is stored (to_json() would base64 it).
        history = b"".join(event.SerializeToString() for event in (await handle.fetch_history()).events)
    assert "撤回".encode() in history  # the reason is there, masked
    returned, withdrawn = h.services.changes[-2], h.services.changes[-1]
    assert returned.reasons == ("联系人电话 139****5678 与身份证 1101**********002X 不一致",)
    assert withdrawn.reason == "法人 1101**********002X 撤回，电话 +86 139****5678"
    for raw in (MOBILE, ID_NUMBER, "139-1234-5678", ID_NUMBER[6:14]):
        assert raw.encode() not in history
        assert all(raw not in change.model_dump_json() for change in h.services.changes)
