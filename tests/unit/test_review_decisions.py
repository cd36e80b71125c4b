"""The decision service's conversation with a workflow (services/review/decisions/service.py), with
a stand-in for the Temporal client: `busy` asked again within the window and never shown, the
validator's refusals and the workflow's Conflict as answers, a closed lifecycle as 409."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.review.decisions.service import DecisionService, Refused
from subsidy.contracts.lifecycle import DecisionAccepted, Status
from subsidy.web import ApiError

ACCEPTED = DecisionAccepted(status=Status.APPROVED_ONLINE)


def refused(message: str, type_: str = "ValueError") -> WorkflowUpdateFailedError:
    return WorkflowUpdateFailedError(ApplicationError(message, type=type_))


class Handle:
    def __init__(self, answers: list[Any]):
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    async def execute_update(self, name: str, arg: Any, *, id: str, result_type: Any) -> Any:  # noqa: A002
        self.calls.append((name, id))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Client:
    def __init__(self, handle: Handle):
        self.handle = handle
        self.workflow_ids: list[str] = []

    def get_workflow_handle(self, workflow_id: str) -> Handle:
        self.workflow_ids.append(workflow_id)
        return self.handle


def service(answers: list[Any], busy_window: float = 5.0) -> tuple[DecisionService, Handle]:
    handle = Handle(answers)
    return DecisionService(pool=None, temporal=Client(handle), busy_window=busy_window), handle  # type: ignore[arg-type]


async def test_busy_is_asked_again_with_the_same_update_id_until_the_lifecycle_settles() -> None:
    decisions, handle = service([refused("busy: another decision is being applied; retry")] * 3 + [ACCEPTED])
    result = await decisions._execute("Application:LG-AI-MODEL-2025:LG2025-000123", "decide_online_review", None,
                                      "key-1", DecisionAccepted)
    assert result == ACCEPTED
    assert handle.calls == [("decide_online_review", "key-1")] * 4


async def test_busy_beyond_the_window_is_a_503_never_a_refusal() -> None:
    decisions, _ = service([refused("busy: another decision is being applied; retry")], busy_window=0.3)
    with pytest.raises(Refused) as caught:
        await decisions._execute("wf", "decide_online_review", None, "key-2", DecisionAccepted)
    assert (caught.value.refusal.status, caught.value.refusal.code) == (503, "busy")


@pytest.mark.parametrize(("error", "status", "code"), [
    (refused("wrong_state: the application is back_office_review"), 409, "wrong_state"),
    (refused("forbidden: role expert may not take this decision"), 403, "forbidden"),
    (refused("late: paper received after the deadline"), 422, "late"),
    (refused("another decision is being applied; retry", type_="Conflict"), 409, "conflict"),
    (RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b""), 409, "lifecycle_closed"),
])
async def test_refusals_become_answers(error: BaseException, status: int, code: str) -> None:
    decisions, handle = service([error])
    with pytest.raises(Refused) as caught:
        await decisions._execute("wf", "decide_online_review", None, "key-3", DecisionAccepted)
    assert (caught.value.refusal.status, caught.value.refusal.code) == (status, code)
    assert len(handle.calls) == 1  # a refusal is final: not asked again


async def test_a_server_that_is_down_is_not_a_refusal_but_a_503() -> None:
    decisions, _ = service([RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")])
    with pytest.raises(ApiError) as caught:
        await decisions._execute("wf", "decide_online_review", None, "key-4", DecisionAccepted)
    assert (caught.value.status, caught.value.code) == (503, "unavailable")


def test_two_programs_publishing_in_the_same_second_get_two_notice_ids() -> None:
    """The default notice id named the second only: Longgang's and Shenzhen's lists published in
    the same second shared it, and the second program's applications were never published."""
    from datetime import UTC, datetime

    from services.review.decisions.actions import notice_id_for

    moment = datetime(2026, 11, 27, 14, 43, 55, 575503, tzinfo=UTC)
    lg, sz = notice_id_for("LG-AI-MODEL-2025", moment), notice_id_for("SZ-GOVAI-SCENARIO-2025", moment)
    assert lg != sz
    assert (lg, sz) == ("GS-LG-AI-MODEL-2025-20261127224355", "GS-SZ-GOVAI-SCENARIO-2025-20261127224355")
