"""Intake's workflow commands: a validator's refusal is an outcome to record, except "busy" (another
decision is being applied this moment), which is retried like any transient failure."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from services.intake.lifecycle_control import LifecycleBusy, LifecycleControl, Outcome
from subsidy.messaging import is_transient


class _Handle:
    def __init__(self, refusal: str | None):
        self.refusal = refusal

    async def execute_update(self, *_args: Any, **_kwargs: Any) -> None:
        if self.refusal is not None:
            raise WorkflowUpdateFailedError(ApplicationError(self.refusal, type="ValueError"))


class _Client:
    def __init__(self, refusal: str | None):
        self.refusal = refusal

    def get_workflow_handle(self, _workflow_id: str) -> _Handle:
        return _Handle(self.refusal)


async def update(refusal: str | None) -> Outcome:
    control = LifecycleControl(_Client(refusal))  # type: ignore[arg-type]
    return await control.update("LG-AI-MODEL-2025", "LG2025-000123", "withdraw", object(), update_id="evt-1")


async def test_a_refusal_is_an_outcome_with_the_validators_reason() -> None:
    assert await update(None) == Outcome(applied=True)
    outcome = await update("wrong_state: the application is closed, this decision needs ['pre_check']")
    assert not outcome.applied and outcome.reason is not None and outcome.reason.startswith("wrong_state")


async def test_busy_is_not_a_refusal_but_a_transient_failure() -> None:
    with pytest.raises(LifecycleBusy) as busy:
        await update("busy: another decision is being applied; retry")
    assert is_transient(busy.value)


async def test_a_decision_the_withdrawal_overtook_is_recorded_refused() -> None:
    """Issue 14, defect 6: the workflow fails such an update (type Withdrawn); intake records the
    event refused with that reason, never applied."""
    from workflows.lifecycle.base import WITHDRAWN_REFUSAL

    outcome = await update(WITHDRAWN_REFUSAL)
    assert outcome == Outcome(applied=False, reason=WITHDRAWN_REFUSAL)
