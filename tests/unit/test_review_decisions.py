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
    result = await decisions.execute("Application:LG-AI-MODEL-2025:LG2025-000123", "decide_online_review", None,
                                      "key-1", DecisionAccepted)
    assert result == ACCEPTED
    assert handle.calls == [("decide_online_review", "key-1")] * 4


async def test_busy_beyond_the_window_is_a_503_never_a_refusal() -> None:
    decisions, _ = service([refused("busy: another decision is being applied; retry")], busy_window=0.3)
    with pytest.raises(Refused) as caught:
        await decisions.execute("wf", "decide_online_review", None, "key-2", DecisionAccepted)
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
        await decisions.execute("wf", "decide_online_review", None, "key-3", DecisionAccepted)
    assert (caught.value.refusal.status, caught.value.refusal.code) == (status, code)
    assert len(handle.calls) == 1  # a refusal is final: not asked again


async def test_a_server_that_is_down_is_not_a_refusal_but_a_503() -> None:
    decisions, _ = service([RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")])
    with pytest.raises(ApiError) as caught:
        await decisions.execute("wf", "decide_online_review", None, "key-4", DecisionAccepted)
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


async def test_an_award_confirmation_holding_its_connection_never_asks_the_pool_for_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The confirmation holds a connection (the enterprise's ledger row locked) while the lifecycle
    applies the award. Taking a second connection meanwhile (to look up the Idempotency-Key's answer)
    deadlocked review once as many confirmations as its pool has connections ran at once: nine
    administrators' confirmations in the lifecycle benchmark, every other request of review waiting
    behind them for good."""
    from types import SimpleNamespace

    from services.review.awards import service as awards
    from services.review.decisions.service import Attempt, Context
    from subsidy.identity.claims import Principal, StaffRole
    from subsidy.programs import programs

    class NoSecondConnection:
        def acquire(self) -> Any:
            raise AssertionError("a second connection taken while the confirmation holds one")

    held = object()  # the confirmation's connection
    used: list[object] = []

    async def on_held(conn: object, *_: Any, **__: Any) -> Any:
        used.append(conn)
        return None

    async def computation(conn: object, _no: str) -> dict[str, Any]:
        used.append(conn)
        return {"applicant_uscc": "91440300MA5XXXXXXX", "status": "computed", "version": 1}

    async def locked(conn: object, *_: Any) -> int:
        used.append(conn)
        return 0

    async def computed(conn: object, *_: Any, **__: Any) -> Any:
        used.append(conn)
        return SimpleNamespace(computed_fen=100_00, award_fen=100_00, eligible_total_fen=200_00)

    monkeypatch.setattr(awards.repository, "stored_decision", on_held)
    monkeypatch.setattr(awards.repository, "award_computation", computation)
    monkeypatch.setattr(awards.repository, "lock_enterprise_year", locked)
    monkeypatch.setattr(awards.repository, "reserve_award", on_held)
    monkeypatch.setattr(awards.repository, "decide_award", on_held)
    monkeypatch.setattr(awards, "compute", computed)
    decisions = DecisionService(pool=NoSecondConnection(), temporal=Client(Handle([ACCEPTED])), busy_window=1.0)  # type: ignore[arg-type]

    async def recorded(attempt: Any, ctx: Any, *, conn: object, answer: dict[str, Any], **_: Any) -> dict[str, Any]:
        used.append(conn)
        return answer

    monkeypatch.setattr(decisions, "record", recorded)
    program = "LG-AI-MODEL-2025"
    config = programs()[program].award
    admin = Principal(subject="lg-admin", name="管理员", roles=frozenset({StaffRole.PROGRAM_ADMIN}), programs=frozenset({program}))
    attempt = Attempt(principal=admin, action=awards.Action.RECORD_AWARD, idempotency_key="key-award",
                      input={}, application_no="LG2025-000123")
    answer = await awards.AwardService(decisions)._confirm_locked(
        held, attempt, Context(program=program), awards.ConfirmAwardInput(), config)  # type: ignore[arg-type]
    assert answer["award_fen"] == 100_00
    assert used and all(conn is held for conn in used)
