"""Text no row can hold (NUL, unpaired surrogates; subsidy/text.py) refused at every edge before
anything is executed, and the audit of the refusal stored with such characters replaced.

Before: a review decision with "\\u0000" in a reason was applied by the workflow, then review's
own jsonb writes failed (500): the decision was never recorded nor audited, and a retry with the
same key repeated the 500 forever. The stand-in connection refuses what PostgreSQL and asyncpg
refuse: NUL in any text or jsonb parameter, a string UTF-8 cannot encode."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.review.api.access import Action
from services.review.decisions.service import Attempt, DecisionService
from services.review.notice.service import ObjectionInput, parse
from subsidy.contracts import topics
from subsidy.contracts.lifecycle import DecisionAccepted, Status
from subsidy.identifiers import mask_personal_data_in
from subsidy.identity.claims import Principal, StaffRole
from subsidy.messaging import redact_dead_letter
from subsidy.text import storable, unstorable_at
from subsidy.web import ApiError

MESSAGE = "提交的内容含有无法保存的控制字符（如 \\u0000）或无效的 Unicode 字符，请删除后重新提交"


class Unstorable(Exception):
    """Stands for asyncpg.UntranslatableCharacterError and the UnicodeEncodeError of a surrogate."""


def _check(args: tuple[Any, ...]) -> None:
    for arg in args:
        if isinstance(arg, str) and ("\x00" in arg or "\\u0000" in arg):
            raise Unstorable("unsupported Unicode escape sequence")
        if isinstance(arg, str):
            arg.encode("utf-8")  # raises for a lone surrogate, as asyncpg's encoder does


class Conn:
    """review's tables as the decision service reads and writes them (one application)."""

    def __init__(self, status: str = "online_review"):
        self.status = status
        self.audit: list[dict[str, Any]] = []
        self.decisions = 0

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        _check(args)
        if "FROM review.applications" in sql:
            return {"application_no": args[0], "program": "LG-AI-MODEL-2025", "status": self.status}
        return None  # no stored decision for the key

    async def fetchval(self, sql: str, *args: Any) -> Any:
        _check(args)
        if "INSERT INTO review.decisions" in sql:
            self.decisions += 1
            return True
        return 1 if "nextval" in sql else None

    async def execute(self, sql: str, *args: Any) -> None:
        _check(args)
        if "INSERT INTO review.audit_chain" in sql:
            self.audit.append({"subject": args[2], "input": json.loads(args[7]), "outcome": args[8], "reason": args[9]})

    def is_in_transaction(self) -> bool:
        return True

    @asynccontextmanager
    async def transaction(self) -> Any:
        yield


class Pool:
    def __init__(self, conn: Conn):
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> Any:
        yield self.conn


class Handle:
    def __init__(self) -> None:
        self.updates: list[str] = []

    async def execute_update(self, name: str, _arg: Any, *, id: str, result_type: Any) -> Any:  # noqa: A002
        self.updates.append(name)
        return DecisionAccepted(status=Status.APPROVED_ONLINE)


class Temporal:
    def __init__(self) -> None:
        self.handle = Handle()

    def get_workflow_handle(self, _workflow_id: str) -> Handle:
        return self.handle


REVIEWER = Principal(subject="lg-rev-01", name="x", roles=frozenset({StaffRole.LG_ONLINE_REVIEWER}),
                     programs=frozenset({"LG-AI-MODEL-2025"}))
AUDITOR = Principal(subject="lg-aud-01", name="x", roles=frozenset({StaffRole.AUDITOR}),
                    programs=frozenset({"LG-AI-MODEL-2025"}))


def attempt(principal: Principal, body: dict[str, Any]) -> Attempt:  # as services/review/api/actions.py builds it
    return Attempt(principal=principal, action=Action.DECIDE, idempotency_key="key-nul-0001",
                   input=mask_personal_data_in(body), application_no="LG2025-000123", request_id="r1")


# --- the module ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "where"), [
    ({"decision": "approve", "reasons": ["ok", "a\x00"]}, "reasons.1"),
    ({"x": {"y": "\ud800"}}, "x.y"),
    ({"x": [{"\udfff": 1}]}, "x.0"),
    ("\x00", "(root)"),
    ({"decision": "approve", "reasons": ["材料齐全 \U0001f600"], "n": 1, "b": None}, None),
])
def test_unstorable_at_names_the_first_string_or_key_that_no_row_can_hold(value: Any, where: str | None) -> None:
    assert unstorable_at(value) == where


def test_unstorable_at_walks_any_depth_without_recursion() -> None:
    deep: Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    assert unstorable_at(deep) is not None


def test_storable_replaces_nul_and_lone_surrogates_in_strings_and_keys() -> None:
    assert storable({"a\x00": ["x\ud800y", 3, "😀"]}) == {"a\ufffd": ["x\ufffdy", 3, "😀"]}


def test_personal_data_masking_takes_such_strings() -> None:
    assert mask_personal_data_in({"mobile\x00": "\ud800", "note": "\x00 440301199001011234"}) == {
        "mobile\x00": "\ud800", "note": "\x00 4403**********1234"}


# --- the decision service: refused, audited, nothing executed ---------------------------------


@pytest.mark.parametrize("body", [
    {"decision": "approve", "reasons": ["\x00"]},
    {"decision": "approve", "reasons": ["x\ud800"]},
    {"decision": "approve", "\x00": "x"},
])
async def test_a_decision_with_unstorable_text_is_refused_and_audited_before_the_workflow_is_asked(body: dict[str, Any]) -> None:
    conn, temporal = Conn(), Temporal()
    svc = DecisionService(Pool(conn), temporal, busy_window=1)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as caught:
        await svc.decide_review(attempt(REVIEWER, body))
    assert (caught.value.status, caught.value.code, caught.value.message) == (422, "invalid_input", MESSAGE)
    assert temporal.handle.updates == []  # the lifecycle never saw it
    assert conn.decisions == 0
    [row] = conn.audit
    assert (row["subject"], row["outcome"]) == ("lg-rev-01", "refused")
    assert row["reason"].startswith("invalid_input: ")
    assert row["input"] == storable(body)


async def test_an_auditors_decision_with_nul_is_a_422_and_audited_not_a_500() -> None:
    conn, temporal = Conn(), Temporal()
    svc = DecisionService(Pool(conn), temporal, busy_window=1)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as caught:
        await svc.decide_review(attempt(AUDITOR, {"decision": "approve", "x": "\x00"}))
    assert (caught.value.status, caught.value.code) == (422, "invalid_input")
    assert [(r["subject"], r["outcome"], r["input"]) for r in conn.audit] == [
        ("lg-aud-01", "refused", {"decision": "approve", "x": "\ufffd"})]


async def test_the_same_decision_without_it_is_applied_recorded_and_audited() -> None:
    conn, temporal = Conn(), Temporal()
    svc = DecisionService(Pool(conn), temporal, busy_window=1)  # type: ignore[arg-type]
    answer = await svc.decide_review(attempt(REVIEWER, {"decision": "approve", "reasons": ["材料齐全"]}))
    assert answer["status"] == "approved_online"
    assert (temporal.handle.updates, conn.decisions, [r["outcome"] for r in conn.audit]) == (
        ["decide_online_review"], 1, ["accepted"])


async def test_the_audit_writer_stores_such_text_replaced_rather_than_failing() -> None:
    from datetime import UTC, datetime

    from services.review import repository
    from services.review.audit.chain import AuditEntry

    conn = Conn()
    entry = AuditEntry(occurred_at=datetime(2026, 1, 5, tzinfo=UTC), subject="s", role="r", action="decide",
                       program=None, application_no=None, input={"k\x00": "\ud800"}, outcome="refused",
                       reason="invalid_input: \x00")
    await repository.append_audit(conn, entry)  # type: ignore[arg-type]
    assert conn.audit == [{"subject": "s", "input": {"k\ufffd": "\ufffd"}, "outcome": "refused",
                           "reason": "invalid_input: \ufffd"}]


# --- the notice's objections (the public page's form and JSON alike) --------------------------


def test_an_objection_with_nul_is_refused_with_422_in_chinese() -> None:
    with pytest.raises(ApiError) as caught:
        parse(ObjectionInput, {"name": "张三", "phone": "13800000000", "application_no": "LG2025-000123",
                               "grounds": "金额有误\x00"})
    assert (caught.value.status, caught.value.code, caught.value.message) == (422, "invalid_input", MESSAGE)


# --- a dead letter with such text is kept, never a crash -------------------------------------


def test_a_dead_letter_with_a_lone_surrogate_escape_is_kept_as_text() -> None:
    body = b'{"specversion":"1.0","data":{"name":"x\\ud800","mobile":"13800138000"}}'
    kept, redacted = redact_dead_letter(topics.PORTAL_LONGGANG_APPLICATIONS, body)
    assert redacted and b"13800138000" not in kept
    kept.decode("utf-8")
