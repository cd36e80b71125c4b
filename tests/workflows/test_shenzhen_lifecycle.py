"""SZ-GOVAI-SCENARIO-2025 lifecycle paths under time skipping."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from subsidy.contracts.lifecycle import (
    SIGNAL_APPOINTMENT_BOOKED,
    SIGNAL_PUBLISHED,
    UPDATE_DECIDE_FORMAL_PRE_REVIEW,
    UPDATE_RECORD_EXPERT_SCORING,
    UPDATE_RECORD_PAPER_RECEIPT,
    UPDATE_RECORD_TIERING,
    UPDATE_RESUBMIT,
    Actor,
    AppointmentBooked,
    DecideFormalPreReview,
    NoticeKind,
    RecordExpertScoring,
    RecordPaperReceipt,
    RecordPublication,
    RecordTiering,
    Resubmit,
    Role,
    Status,
)
from tests.workflows.harness import ADMIN, ONLINE_REVIEWER, PORTAL, PRE_REVIEWER, PUBLISHER, REVIEW_SERVICE, SZ_CLERK, lifecycle_env, sh

SZ = "SZ-GOVAI-SCENARIO-2025"
APP = "SZ2025-004512"


async def test_filed_at_the_cutoff_returned_after_it_and_resubmitted_in_time_then_published() -> None:
    """Filed 2025-11-30 17:59:59, returned on 12-05 with a date after the filing cutoff: the
    resubmission on 12-10 is accepted because the application was first filed in time."""
    async with lifecycle_env(sh("2025-11-30 17:59:59")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-30 17:59:59"))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        await h.sleep_until(sh("2025-12-05 10:00"))
        accepted = await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(
            actor=PRE_REVIEWER, decision="return", reasons=("用户使用报告缺少盖章",), resubmit_by=sh("2025-12-12 18:00")))
        assert accepted.status is Status.RETURNED and accepted.deadline == sh("2025-12-12 18:00")
        await h.sleep_until(sh("2025-12-10 15:00"))
        accepted = await h.update(handle, UPDATE_RESUBMIT, Resubmit(actor=PORTAL, version=2, submitted_at=sh("2025-12-10 15:00")))
        assert accepted.status is Status.FORMAL_PRE_REVIEW

        accepted = await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(
            actor=PRE_REVIEWER, decision="request_paper", reasons=("请携带测试报告原件",)))
        assert accepted.status is Status.AWAITING_PAPER
        await handle.signal(SIGNAL_APPOINTMENT_BOOKED, AppointmentBooked(
            window="SZ-CIVIC-CENTER-WEST", slot_start=sh("2025-12-15 09:00"), slot_end=sh("2025-12-15 09:30")))
        accepted = await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, RecordPaperReceipt(
            actor=SZ_CLERK, window_code="SZ-CIVIC-CENTER-WEST", received_at=sh("2025-12-15 09:10"),
            copies=1, bound_and_stamped=True))
        assert accepted.status is Status.FORMAL_PRE_REVIEW
        accepted = await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
        assert accepted.status is Status.EXPERT_SCORING

        accepted = await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
            actor=REVIEW_SERVICE, practicality=88, innovation=80, replicability=75, excluded_experts=1))
        assert accepted.status is Status.TIERING
        with pytest.raises(WorkflowUpdateFailedError):  # tier 2 is capped at CNY 3,000,000
            await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=REVIEW_SERVICE, tier=2, award_fen=300_000_001))
        accepted = await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=REVIEW_SERVICE, tier=2, award_fen=250_000_000))
        assert accepted.status is Status.AWAITING_PUBLICATION
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=PUBLISHER, notice_id="GS-SZ-2025-01", published_at=sh("2026-01-20 09:00")))
        result = await handle.result()
        await h.keep_history(handle, "sz_filed_at_cutoff_returned_resubmitted_published")
    assert (result.status, result.tier, result.award_fen, result.round, result.version) == (Status.PUBLISHED, 2, 250_000_000, 1, 2)
    assert h.services.statuses() == [
        Status.FORMAL_PRE_REVIEW, Status.RETURNED, Status.FORMAL_PRE_REVIEW, Status.AWAITING_PAPER,
        Status.FORMAL_PRE_REVIEW, Status.EXPERT_SCORING, Status.TIERING, Status.AWAITING_PUBLICATION, Status.PUBLISHED]
    assert [(c.notice_kind, c.awaiting_step) for c in h.services.changes] == [
        (None, "sz_formal_pre_review"), (NoticeKind.RETURNED, None), (None, "sz_formal_pre_review"),
        (NoticeKind.PAPER_REQUESTED, "sz_paper_receipt"), (None, "sz_formal_pre_review"), (None, "sz_expert_scoring"),
        (None, "sz_tiering"), (None, "publish"), (NoticeKind.PUBLISHED, None)]
    by_status = {c.to_status: c for c in h.services.changes}
    assert by_status[Status.RETURNED].reasons == ("用户使用报告缺少盖章",)
    assert by_status[Status.AWAITING_PAPER].reasons == ("请携带测试报告原件",)
    assert by_status[Status.AWAITING_PUBLICATION].tier == 2 and by_status[Status.AWAITING_PUBLICATION].award_fen == 250_000_000
    published = by_status[Status.PUBLISHED]
    assert (published.tier, published.award_fen, published.notice_id) == (2, 250_000_000, "GS-SZ-2025-01")
    assert [c.window_code for c in h.services.changes if c.window_code] == ["SZ-CIVIC-CENTER-WEST"]


async def test_not_funded_ends_as_rejected() -> None:
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
        await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
            actor=REVIEW_SERVICE, practicality=40, innovation=35, replicability=30))
        with pytest.raises(WorkflowUpdateFailedError):
            await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=REVIEW_SERVICE, tier=None, award_fen=1))
        accepted = await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=REVIEW_SERVICE, tier=None, award_fen=0))
        assert accepted.status is Status.REJECTED
        result = await handle.result()
        await h.keep_history(handle, "sz_not_funded")
    assert result.status is Status.REJECTED and h.services.changes[-1].reason == "not_funded"
    assert h.services.changes[-1].notice_kind is NoticeKind.NOT_FUNDED and h.services.changes[-1].tier is None


async def test_the_move_to_tiering_names_the_score_that_sets_the_tier() -> None:
    """Three experts scoring 90/80/70: the criterion means add up to 240, the product's (weighted)
    score is 81.00, tier 2. The timeline named 240 as 专家评审总分; it names the score review sends."""
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
        await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
            actor=REVIEW_SERVICE, practicality=90, innovation=80, replicability=70, score="81.00"))
        await h.reach(handle, Status.TIERING)
        await handle.terminate("test over")
    assert [c.reason for c in h.services.changes if c.to_status is Status.TIERING] == ["product_score:81.00"]


async def test_formal_pre_review_takes_the_pre_reviewer_only_and_results_the_service_or_the_administrator() -> None:
    legacy = Actor(id="staff:SZ-0007", role=Role.MUNICIPAL_PRE_REVIEWER)
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        for actor in (legacy, ADMIN, ONLINE_REVIEWER):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=actor, decision="approve"))
            assert "forbidden" in str(refused.value.cause)
        await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
        with pytest.raises(WorkflowUpdateFailedError):
            await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
                actor=PRE_REVIEWER, practicality=80, innovation=80, replicability=80))
        await h.update(handle, UPDATE_RECORD_EXPERT_SCORING, RecordExpertScoring(
            actor=ADMIN, practicality=80, innovation=80, replicability=80))
        with pytest.raises(WorkflowUpdateFailedError):
            await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=PRE_REVIEWER, tier=1, award_fen=1))
        accepted = await h.update(handle, UPDATE_RECORD_TIERING, RecordTiering(actor=ADMIN, tier=1, award_fen=1))
        assert accepted.status is Status.AWAITING_PUBLICATION
        await handle.terminate("test over")


async def test_publication_from_another_role_or_before_the_list_is_ignored() -> None:
    async with lifecycle_env(sh("2025-11-20 10:00")) as h:
        handle = await h.start(SZ, APP, sh("2025-11-20 10:00"))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=PUBLISHER, notice_id="GS-X", published_at=sh("2025-11-21 09:00")))
        accepted = await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(actor=PRE_REVIEWER, decision="approve"))
        assert accepted.status is Status.EXPERT_SCORING  # not published: it was not on the list yet
        await handle.terminate("test over")
