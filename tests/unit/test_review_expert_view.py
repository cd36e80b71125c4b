"""What `GET /api/applications/{no}` shows an assigned expert, without servers (the repository and
intake's answer stood in for): their own decisions, tasks and refused attempts only; no panel; no
panel result in the state changes (nor in intake's own `GET /applications/{no}`). Whoever may view
the scores still reads everything. (Against the real stack: tests/integration/test_review_scoring.py.)"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.intake import api as intake_api
from services.review import repository
from services.review.api import applications
from services.review.api.access import sees_panel
from subsidy.identity.claims import Principal, StaffRole
from subsidy.runtime import install_error_handlers

SZ = "SZ-GOVAI-SCENARIO-2025"
APP = "SZ2025-004512"
T0 = datetime(2025, 12, 1, 2, tzinfo=UTC)
OTHERS = ("exp-02", "exp-03", "exp-04")  # nothing of theirs may reach exp-01
OTHERS_WORDS = ("测试报告不足", "本人曾参与需求论证", "product_score:", "87.40", "award_fen", "500000000")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def person(*roles: StaffRole, subject: str = "exp-01") -> Principal:
    return Principal(subject=subject, name="某人", roles=frozenset(roles), programs=frozenset({SZ}))


def score(points: int, why: str) -> str:
    return json.dumps({"criteria": {c: {"points": points, "justification": why}
                                    for c in ("practicality", "innovation", "replicability")}}, ensure_ascii=False)


def decision(action: str, subject: str, role: str, input_: str, minutes: int, to: str | None = None) -> dict[str, Any]:
    actor = "system:review" if subject == "review_service" else f"staff:{subject}"
    return {"action": action, "actor_subject": subject, "actor_id": actor, "actor_role": role, "input": input_,
            "outcome_status": to, "decided_at": at(minutes)}


DECISIONS = [
    decision("approve", "sz-pre-01", "sz_pre_reviewer", '{"decision": "approve"}', 1, "expert_scoring"),
    decision("assign_expert", "sz-admin-01", "program_admin", '{"experts": ["exp-01", "exp-02", "exp-03"]}', 2),
    decision("decline_assignment", "exp-03", "expert", '{"reason": "本人曾参与需求论证"}', 3),
    decision("submit_score", "exp-01", "expert", score(90, "场景落地充分"), 4),
    decision("submit_score", "exp-02", "expert", score(41, "测试报告不足"), 5),
    decision("record_expert_scoring", "review_service", "review_service",
             '{"criteria": {"practicality": 80}, "score": "80.00", "tier": 1, "experts": ["exp-01", "exp-02", "exp-04"]}',
             6, "tiering"),
]


def task(id_: int, role: str, assignee: str | None, closed_by: str | None, minutes: int) -> dict[str, Any]:
    return {"id": id_, "application_no": APP, "program": SZ, "step": "expert_scoring", "role": role, "assignee": assignee,
            "opened_at": at(minutes), "deadline": None, "closed_at": at(minutes + 1) if closed_by else None,
            "closed_by": closed_by, "closed_to_status": None}


TASKS = [
    task(1, "program_admin", None, "staff:sz-admin-01", 1),
    task(2, "expert", "exp-01", "staff:exp-01", 2),
    task(3, "expert", "exp-02", "staff:exp-02", 2),
    task(4, "expert", "exp-03", "staff:exp-03", 2),
]


def refused(subject: str, role: str, action: str, reason: str) -> dict[str, Any]:
    return {"occurred_at": at(4), "action": action, "subject": subject, "role": role, "reason": reason}


REFUSED = [
    refused("sz-admin-01", "program_admin", "assign_expert", "conflict_of_interest: exp-04"),
    refused("exp-01", "expert", "submit_score", "invalid_input: criteria.innovation.justification"),
    refused("exp-02", "expert", "submit_score", "wrong_state: already scored"),
]


def change(from_: str | None, to: str, reason: str, minutes: int, fields: str = "{}") -> dict[str, Any]:
    return {"from_status": from_, "to_status": to, "reason": reason, "actor": "system:review", "occurred_at": at(minutes),
            "deadline": None, "version": 1, "fields": fields}


CHANGES = [
    change("formal_pre_review", "expert_scoring", "formal_pre_review_passed", 1),
    change("expert_scoring", "tiering", "product_score:87.40", 6),
    change("tiering", "awaiting_publication", "tier:1; award_fen:500000000", 7, '{"tier": 1, "award_fen": 500000000}'),
]

INTAKE = {"application_no": APP, "program": SZ, "status": "awaiting_publication", "history": [
    {"at": at(1).isoformat(), "kind": "state", "what": "formal_pre_review -> expert_scoring", "reason": "formal_pre_review_passed",
     "by": "staff:sz-pre-01"},
    {"at": at(6).isoformat(), "kind": "state", "what": "expert_scoring -> tiering", "reason": "product_score:87.40", "by": "system:review"},
    {"at": at(7).isoformat(), "kind": "state", "what": "tiering -> awaiting_publication", "reason": "tier:1; award_fen:500000000",
     "by": "staff:sz-admin-01"},
]}


class Verifier:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def verify(self, _token: str) -> Principal:
        return self.principal


class Pool:
    @asynccontextmanager
    async def acquire(self) -> Any:
        yield object()


def read_as(principal: Principal, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    async def application(_c: Any, no: str) -> dict[str, Any]:
        return {"application_no": no, "program": SZ, "status": "awaiting_publication", "version": 1, "deadline": None,
                "status_since": at(7)}

    def answer(rows: list[dict[str, Any]]) -> Any:
        async def fetch(*_a: Any, **_k: Any) -> list[dict[str, Any]]:
            return rows
        return fetch

    async def assigned(_c: Any, _no: str, subject: str) -> bool:
        return subject == "exp-01"

    async def upstream(_resources: Any, _request: Any, setting: str, _path: str, not_found: Any = None) -> dict[str, Any]:
        return json.loads(json.dumps(INTAKE)) if setting == "intake_url" else {"messages": []}

    for name in ("versions_of", "findings_of", "flags_of", "computed_deadlines_of"):
        monkeypatch.setattr(repository, name, answer([]))
    monkeypatch.setattr(repository, "application", application)
    monkeypatch.setattr(repository, "is_assigned_expert", assigned)
    monkeypatch.setattr(repository, "state_changes_of", answer(CHANGES))
    monkeypatch.setattr(repository, "decisions_of", answer(DECISIONS))
    monkeypatch.setattr(repository, "tasks_of", answer(TASKS))
    monkeypatch.setattr(repository, "refused_attempts_of", answer(REFUSED))
    monkeypatch.setattr(repository, "experts_of", answer([
        {"expert_subject": e, "assigned_by": "staff:sz-admin-01", "assigned_at": at(2), "declined_at": None, "decline_reason": None}
        for e in ("exp-01", "exp-02", "exp-04")]))
    monkeypatch.setattr(applications, "_upstream", upstream)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(applications.router())
    app.state.verifier = Verifier(principal)
    app.state.resources = SimpleNamespace(pool=Pool(), settings=SimpleNamespace())
    response = TestClient(app).get(f"/api/applications/{APP}", headers={"authorization": "Bearer x"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("expert", [person(StaffRole.EXPERT), person(StaffRole.EXPERT, StaffRole.SZ_PRE_REVIEWER)],
                         ids=["expert", "expert_and_pre_reviewer"])
def test_an_expert_reads_nothing_of_the_other_experts_nor_the_panel_s_result(expert: Principal,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    body = read_as(expert, monkeypatch)
    text = json.dumps(body, ensure_ascii=False)
    leaked = [word for word in (*OTHERS, *OTHERS_WORDS) if word in text]
    assert leaked == []

    decisions = [h for h in body["history"] if h["kind"] == "decision"]
    assert [(d["action"], d["subject"]) for d in decisions] == [("submit_score", "exp-01")]  # their own, in full
    assert decisions[0]["input"]["criteria"]["practicality"] == {"points": 90, "justification": "场景落地充分"}
    assert [t["task_id"] for t in body["tasks"]] == [2]
    assert [r["subject"] for r in body["refused"]["decisions"]] == ["exp-01"]
    assert body["experts"] == []
    # The timeline stays, its reasons until the panel's work; then no reason, no fields.
    changes = [(h["from"], h["to"], h["reason"], h.get("fields")) for h in body["history"] if h["kind"] == "state_change"]
    assert changes == [("formal_pre_review", "expert_scoring", "formal_pre_review_passed", None),
                       ("expert_scoring", "tiering", None, None), ("tiering", "awaiting_publication", None, None)]
    assert [e.get("reason") for e in body["intake"]["history"]] == ["formal_pre_review_passed", None, None]


@pytest.mark.parametrize("reader", [person(StaffRole.PROGRAM_ADMIN, subject="sz-admin-01"),
                                    person(StaffRole.AUDITOR, subject="sz-auditor-01"),
                                    person(StaffRole.EXPERT, StaffRole.PROGRAM_ADMIN)],
                         ids=["admin", "auditor", "expert_and_admin"])
def test_whoever_may_view_the_scores_reads_the_whole_history(reader: Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    body = read_as(reader, monkeypatch)
    assert len([h for h in body["history"] if h["kind"] == "decision"]) == len(DECISIONS)
    assert len(body["tasks"]) == len(TASKS) and len(body["refused"]["decisions"]) == len(REFUSED)
    assert [e["expert"] for e in body["experts"]] == ["exp-01", "exp-02", "exp-04"]
    moved = [h for h in body["history"] if h["kind"] == "state_change" and h["to"] == "awaiting_publication"]
    assert moved[0]["reason"] == "tier:1; award_fen:500000000" and moved[0]["fields"]["award_fen"] == 500_000_000
    assert body["intake"] == INTAKE


@pytest.mark.parametrize(("who", "sees"), [
    (person(StaffRole.EXPERT), False),
    (person(StaffRole.EXPERT, StaffRole.SZ_PRE_REVIEWER), False),
    (person(StaffRole.EXPERT, StaffRole.PROGRAM_ADMIN), True),
    (person(StaffRole.EXPERT, StaffRole.AUDITOR), True),
    (person(StaffRole.PROGRAM_ADMIN), True),
    (person(StaffRole.SZ_PRE_REVIEWER), True),  # on no panel
])
def test_who_sees_a_panel(who: Principal, sees: bool) -> None:
    assert sees_panel(who, SZ) is sees


@pytest.mark.parametrize(("who", "reasons"), [
    (person(StaffRole.EXPERT), ["formal_pre_review_passed", None, None]),
    (person(StaffRole.EXPERT, StaffRole.SZ_PRE_REVIEWER), ["formal_pre_review_passed", None, None]),
    (person(StaffRole.EXPERT, StaffRole.AUDITOR), ["formal_pre_review_passed", "product_score:87.40", "tier:1; award_fen:500000000"]),
    (person(StaffRole.SZ_PRE_REVIEWER), ["formal_pre_review_passed", "product_score:87.40", "tier:1; award_fen:500000000"]),
])
def test_intake_s_own_view_keeps_the_panel_s_result_from_an_expert(who: Principal, reasons: list[str | None],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async def view(_c: Any, _no: str) -> dict[str, Any]:
        return json.loads(json.dumps(INTAKE))

    monkeypatch.setattr(intake_api.repository, "application_view", view)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(intake_api.router())
    app.state.verifier = Verifier(who)
    app.state.resources = SimpleNamespace(pool=Pool())
    response = TestClient(app).get(f"/applications/{APP}", headers={"authorization": "Bearer x"})
    assert response.status_code == 200, response.text
    assert [e.get("reason") for e in response.json()["history"]] == reasons
