"""Determinism: the histories of the lifecycle scenarios, recorded from real runs, replay against
the current workflow code. A change that breaks determinism fails here (record again, with a
patch/versioning plan, only when the change is meant to be incompatible):

    RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_longgang_lifecycle.py tests/workflows/test_shenzhen_lifecycle.py

(The public-notice histories: RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_publication_notice.py; the paths
issue 14 added: tests/workflows/test_recorded_paths.py. Do not
record the older ones again after a patch: they are what runs started before it look like.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from subsidy.temporal import DATA_CONVERTER
from tests.workflows.harness import HISTORIES, WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_the_scenarios_have_recorded_histories() -> None:
    names = {path.stem for path in RECORDED}
    assert {"lg_approved_all_the_way", "lg_paper_late_abandoned", "lg_returned_twice_then_approved", "lg_rejected",
            "lg_withdrawn", "lg_spring_festival", "lg_no_delivery_receipt",
            "sz_filed_at_cutoff_returned_resubmitted_published", "sz_not_funded", "publication_batch_first_run",
            # issue 13: Shenzhen enlisted, the final list's entry, the notice period and the next list
            "sz_enlisted_published_with_amended_award", "sz_removed_from_notice_by_objection",
            "publication_batch_period_objection_next_list",
            # issue 14: every lifecycle path not recorded before (tests/workflows/test_recorded_paths.py)
            "lg_back_office_rejected", "lg_resubmission_lapsed", "sz_rejected_at_formal_pre_review",
            "sz_withdrawn_while_paper_awaited", "lg_withdrawn_awaiting_publication", "lg_late_receipt_after_receipt_missing",
            "lg_failed_receipt_then_phone", "publication_batch_after_continue_as_new",
            "publication_batch_last_run_after_continue_as_new",
            # issue 11: the batch budget lowers an award before publication (tests/workflows/test_longgang_budget.py)
            "lg_award_revised_by_budget"} <= names


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(history)
    assert result.replay_failure is None
