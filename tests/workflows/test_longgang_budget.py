"""LG-AI-MODEL-2025: the batch budget applied before publication (按比例核减, issue 11).

The review service lowers a recorded award with the `revise_award` update while the application
awaits publication and its list is unpublished: the state change carries the new amount, the entry
on the list is replaced, and the publication (and its SMS) carries it. Recorded history:
`lg_award_revised_by_budget` (RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_longgang_budget.py).
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

from subsidy.contracts.lifecycle import (
    SIGNAL_PUBLISHED,
    SIGNAL_SMS_DELIVERY_REPORTED,
    UPDATE_RECORD_AWARD,
    UPDATE_RECORD_PAPER_RECEIPT,
    UPDATE_REVISE_AWARD,
    DecisionAccepted,
    NoticeKind,
    RecordAward,
    RecordPublication,
    ReviseAward,
    Status,
)
from tests.workflows.harness import ADMIN, CLERK, REVIEW_SERVICE, lifecycle_env, sh
from tests.workflows.test_longgang_lifecycle import APP, LG, approve_until_sms, delivered, paper

REASON = "本批拟资助金额合计超过预算，按比例核减"


def revision(award_fen: int, confirmed: int = 45_000_000, actor=ADMIN) -> ReviseAward:
    return ReviseAward(actor=actor, award_fen=award_fen, confirmed_award_fen=confirmed, reason=REASON)


async def refused(h, handle, command: ReviseAward, *, id: str | None = None) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await h.update(handle, UPDATE_REVISE_AWARD, command, id=id)
    return str(failure.value.cause)


async def test_the_budget_lowers_the_award_before_publication_and_the_publication_carries_it() -> None:
    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-29 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)
        await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00"))
        await h.reach(handle, Status.AWARD_CALCULATION)
        # Not yet recorded: nothing to revise.
        assert "wrong_state" in await refused(h, handle, revision(30_000_000))
        await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(actor=REVIEW_SERVICE, eligible_amount_fen=150_000_000,
                                                                award_fen=45_000_000))
        await h.reach(handle, Status.AWAITING_PUBLICATION)
        while not h.services.enlisted:
            await h.reach(handle, Status.AWAITING_PUBLICATION)

        # Refused before history: another role, more than confirmed, a stale confirmed amount.
        assert "forbidden" in await refused(h, handle, revision(30_000_000, actor=CLERK))
        assert "over_cap" in await refused(h, handle, revision(45_000_001))
        assert "stale" in await refused(h, handle, revision(30_000_000, confirmed=44_000_000))

        accepted = await h.update(handle, UPDATE_REVISE_AWARD, revision(30_000_000), id="budget-1:LG2025-000123")
        assert accepted.status is Status.AWAITING_PUBLICATION
        again = await h.update(handle, UPDATE_REVISE_AWARD, revision(30_000_000), id="budget-1:LG2025-000123")
        assert again == accepted  # the same update id: applied once
        state = await h.reach(handle, Status.AWAITING_PUBLICATION)
        assert state.award_fen == 30_000_000
        # Applied again with a smaller proportion (another application confirmed meanwhile): still
        # measured against the amount confirmed, never the last revision.
        assert "stale" in await refused(h, handle, revision(20_000_000, confirmed=30_000_000))
        await h.update(handle, UPDATE_REVISE_AWARD, revision(29_999_999), id="budget-2:LG2025-000123")

        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=ADMIN, notice_id="GS-LG-2025-01",
                                                                published_at=sh("2026-02-02 09:00")))
        result = await handle.result()
        await h.keep_history(handle, "lg_award_revised_by_budget")

    assert result.status is Status.PUBLISHED and result.award_fen == 29_999_999
    listed = [c for c in h.services.changes if c.to_status is Status.AWAITING_PUBLICATION]
    assert [(c.from_status, c.award_fen, c.notice_kind, c.awaiting_step) for c in listed] == [
        (Status.AWARD_CALCULATION, 45_000_000, None, "publish"),
        (Status.AWAITING_PUBLICATION, 30_000_000, None, "publish"),
        (Status.AWAITING_PUBLICATION, 29_999_999, None, "publish"),
    ]
    assert listed[1].reason == "award_revised:45000000->30000000" and listed[1].reasons == (REASON,)
    assert listed[1].actor == ADMIN.id
    # The list's entry replaced each time (the batch keeps an application's latest award).
    assert [e.award_fen for e in h.services.enlisted] == [45_000_000, 30_000_000, 29_999_999]
    published = h.services.changes[-1]
    assert (published.to_status, published.award_fen, published.notice_kind) == (
        Status.PUBLISHED, 29_999_999, NoticeKind.AWARD_PUBLISHED)


async def test_a_revision_still_pending_when_the_list_is_published_is_refused_never_applied() -> None:
    """Accepted while the application was being put on the list, overtaken by the publication
    before run() could apply it: the update fails (wrong_state) and the published amount is the
    confirmed one."""
    async with lifecycle_env(sh("2025-12-29 09:00")) as h:
        handle = await h.start(LG, APP, sh("2025-12-09 10:31"))
        await approve_until_sms(h, handle)
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, delivered("2025-12-29 10:00"))
        await h.reach(handle, Status.AWAITING_PAPER)
        await h.update(handle, UPDATE_RECORD_PAPER_RECEIPT, paper("2025-12-30 10:00"))
        h.services.hold_enlisting = True  # run() waits in the enlisting activity
        await h.update(handle, UPDATE_RECORD_AWARD, RecordAward(actor=REVIEW_SERVICE, eligible_amount_fen=150_000_000,
                                                                award_fen=45_000_000))
        # Accepted by the validator (in history), waiting for run() to apply it.
        pending = await handle.start_update(UPDATE_REVISE_AWARD, revision(30_000_000), id="late-budget",
                                            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=DecisionAccepted)
        # In history before the enlisting completes: the workflow sees the publication first.
        await handle.signal(SIGNAL_PUBLISHED, RecordPublication(actor=ADMIN, notice_id="GS-LG-2025-01",
                                                                published_at=sh("2026-02-02 09:00")))
        h.services.release.set()
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await pending.result()
        result = await handle.result()
    assert "the list was published before the decision was applied" in str(failure.value.cause)
    assert result.status is Status.PUBLISHED and result.award_fen == 45_000_000
    assert [c.award_fen for c in h.services.changes if c.to_status is Status.AWAITING_PUBLICATION] == [45_000_000]
