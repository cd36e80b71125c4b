"""The decision service's conversation with a workflow (services/review/decisions/service.py), with
a stand-in for the Temporal client: `busy` asked again within the window and never shown, the
validator's refusals and the workflow's Conflict as answers, a closed lifecycle as 409."""

from __future__ import annotations

from dataclasses import replace
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


# --- one Idempotency-Key, one request --------------------------------------------------------------

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


class Recorded:
    """review.decisions holding one row (the key's first request); the object's program for the audit."""

    def __init__(self, row: dict[str, Any]):
        self.row = row

    async def fetchrow(self, sql: str, *_args: Any) -> Any:
        return self.row if "FROM review.decisions" in sql else {"program": "LG-AI-MODEL-2025"}


class OnePool:
    def __init__(self, conn: Recorded):
        self.conn = conn

    def acquire(self) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def acquired() -> Any:
            yield self.conn

        return acquired()


def recorded(action: str, input_: dict[str, Any], answer: dict[str, Any], *, program: str = LG,
             application_no: str | None = "LG2025-000123", actor: str = "staff:adm") -> DecisionService:
    import json

    row = {"idempotency_key": "console-k1", "program": program, "application_no": application_no, "action": action,
           "actor_id": actor, "input": json.dumps(input_, ensure_ascii=False), "answer": json.dumps(answer)}
    return DecisionService(OnePool(Recorded(row)), None)  # type: ignore[arg-type]


def attempt(action: Any, input_: dict[str, Any], **where: Any) -> Any:
    from services.review.decisions.service import Attempt
    from subsidy.identity.claims import Principal, StaffRole

    admin = Principal(subject="adm", name="x", roles=frozenset({StaffRole.PROGRAM_ADMIN, StaffRole.LG_ONLINE_REVIEWER}),
                      programs=frozenset({LG, SZ}))
    return Attempt(principal=admin, action=action, idempotency_key="console-k1", input=input_, **where)


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """The refusals the service audits (program, code)."""
    seen: list[tuple[Any, Any]] = []

    async def audit_refusal(_self: Any, _attempt: Any, ctx: Any, refused: Any) -> None:
        seen.append((ctx.program, refused.code))

    monkeypatch.setattr(DecisionService, "audit_refusal", audit_refusal)
    return seen


async def test_a_publication_key_sent_again_for_another_program_is_refused_not_answered_with_the_first_notice(
    audited: list[tuple[Any, Any]],
) -> None:
    """An administrator of both programs published Longgang's list with a key, then Shenzhen's with
    the same key: Shenzhen got Longgang's notice id (200) and was never published."""
    from services.review.api.access import Action

    svc = recorded("publish", {}, {"notice_id": "GS-LG-AI-MODEL-2025-20261127224355"}, application_no=None)
    assert await svc.stored_answer(attempt(Action.PUBLISH, {}, program=LG)) == {"notice_id": "GS-LG-AI-MODEL-2025-20261127224355"}
    with pytest.raises(ApiError) as caught:
        await svc.stored_answer(attempt(Action.PUBLISH, {}, program=SZ))
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert caught.value.message == "该幂等键已用于另一项操作，请使用新的 Idempotency-Key"
    assert audited == [(SZ, "idempotency_key_reused")]


@pytest.mark.parametrize(("action", "input_", "where"), [
    ("decide", {"decision": "reject", "reasons": ["材料不符"]}, {"application_no": "LG2025-000123"}),  # another action
    ("acknowledge_duplicate", {"note": "已核"}, {"application_no": "LG2025-000123", "target": ("flag_id", 4)}),  # another flag
    ("acknowledge_duplicate", {"note": "另一备注"}, {"application_no": "LG2025-000123", "target": ("flag_id", 3)}),  # another body
    ("acknowledge_duplicate", {"note": "已核"}, {"application_no": "LG2025-000999", "target": ("flag_id", 3)}),  # another application
])
async def test_a_key_sent_again_with_another_action_object_or_body_is_refused_and_audited(
    audited: list[tuple[Any, Any]], action: str, input_: dict[str, Any], where: dict[str, Any],
) -> None:
    from services.review.api.access import Action

    svc = recorded("acknowledge_duplicate", {"note": "已核"},
                   {"application_no": "LG2025-000123", "flag_id": 3, "acknowledged_by": "staff:adm"})
    with pytest.raises(ApiError) as caught:
        await svc.stored_answer(attempt(Action(action), input_, **where))
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert audited == [(LG, "idempotency_key_reused")]


async def test_a_task_key_sent_again_for_another_task_is_refused() -> None:
    """Reassigning task 2 with task 1's key answered task 1's reassignment; task 2 kept its assignee."""
    from services.review.api.access import Action
    from services.review.decisions.service import Refused

    svc = recorded("reassign_task", {"assignee": "lg-b"}, {"task_id": 1, "assignee": "lg-b"})
    conn = svc.pool.conn  # type: ignore[attr-defined]
    assert await svc.stored_answer(attempt(Action.REASSIGN_TASK, {"assignee": "lg-b"}, target=("task_id", 1)), conn) == {
        "task_id": 1, "assignee": "lg-b"}
    with pytest.raises(Refused) as caught:  # holding a connection: raised for the caller's refusals_answered
        await svc.stored_answer(attempt(Action.REASSIGN_TASK, {"assignee": "lg-b"}, target=("task_id", 2)), conn)
    assert caught.value.refusal.code == "idempotency_key_reused"


async def test_the_same_request_again_gets_the_stored_answer_a_review_decision_recorded_as_its_step() -> None:
    """`POST .../decisions` is attempted as `decide`, recorded as the step's decision: the same
    decision again with its key is the same request (the client's retry), in whatever key order."""
    from services.review.api.access import Action

    body = {"decision": "return", "reasons": ["请补充发票"], "resubmit_by": "2099-01-09"}
    svc = recorded("decide_online_review", body, {"status": "returned", "deadline": "2099-01-09T18:00:00+08:00"})
    again = attempt(Action.DECIDE, dict(reversed(body.items())), application_no="LG2025-000123")
    assert await svc.stored_answer(again) == {"status": "returned", "deadline": "2099-01-09T18:00:00+08:00"}


async def test_another_officials_key_is_refused(audited: list[tuple[Any, Any]]) -> None:
    from services.review.api.access import Action

    svc = recorded("decide_online_review", {"decision": "approve"}, {"status": "back_office_review"}, actor="staff:other")
    with pytest.raises(ApiError) as caught:
        await svc.stored_answer(attempt(Action.DECIDE, {"decision": "approve"}, application_no="LG2025-000123"))
    assert caught.value.code == "idempotency_key_reused" and audited == [(LG, "idempotency_key_reused")]


def test_no_idempotency_key_is_ever_a_platform_update_id() -> None:
    """A pre-reviewer's approval sent with `Idempotency-Key: sz-expert-scoring:<no>` was that update
    id: the panel's result, later, got the approval's answer and the lifecycle stayed in expert
    scoring. The key pattern takes such keys; their update ids are in the API's own namespace."""
    import uuid

    from services.review.api.access import Action
    from services.review.api.common import IDEMPOTENCY_KEY
    from subsidy.contracts.workflow_ids import API_UPDATE_PREFIX, expert_scoring_update_id, tiering_update_id

    app = "SZ2025-004512"
    platform = [expert_scoring_update_id(app), tiering_update_id(app), str(uuid.uuid5(uuid.NAMESPACE_URL, "cloudevent:x y"))]
    for update_id in platform:
        assert IDEMPOTENCY_KEY.match(update_id)  # a client may send it as a key ...
        sent = replace(attempt(Action.DECIDE, {"decision": "approve"}, application_no=app), idempotency_key=update_id)
        assert sent.update_id not in platform  # ... but its update id is never the platform's
        assert sent.update_id == API_UPDATE_PREFIX + update_id and not update_id.startswith(API_UPDATE_PREFIX)


def test_an_attempt_holds_its_body_masked_for_every_route_that_builds_one() -> None:
    """Scoring, awards and flags build their own attempts: the body's ID and mobile numbers are
    masked in the attempt itself, so the parsed input, review.decisions and the audit see no more."""
    from services.review.api.access import Action

    made = attempt(Action.SUBMIT_SCORE, {"criteria": {"practicality": {"points": 28, "justification": "已电话联系 13800138000 核实"}},
                                         "reason": "身份证 11010519491231002X", "award_fen": 13_900_000_000})
    assert made.input == {"criteria": {"practicality": {"points": 28, "justification": "已电话联系 138****8000 核实"}},
                          "reason": "身份证 1101**********002X", "award_fen": 13_900_000_000}
    assert replace(made, idempotency_key="k2").input == made.input
