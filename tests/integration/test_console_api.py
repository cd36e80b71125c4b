"""What the console reads besides tasks and applications, on the real stack: a program's dashboard
(administrators and auditors of the program only) and the audit chain's verification (auditors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from tests.support.review_world import LG, SZ, Official, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]

LG_ONLINE = Official("lg-online-01", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_ADMIN = Official("lg-admin-01", (StaffRole.PROGRAM_ADMIN,), (LG,))
SZ_ADMIN = Official("sz-admin-01", (StaffRole.PROGRAM_ADMIN,), (SZ,))
AUDITOR = Official("auditor-01", (StaffRole.AUDITOR,), (LG, SZ))


async def test_the_dashboard_and_the_chain_check(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    async with review_world(stack, tmp_path, shared=True) as w:
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.task_of(LG_ONLINE, app, "online_review")
        board = await w.get(LG_ADMIN, f"/api/programs/{LG}/dashboard")
        seen_by_auditor = await w.get(AUDITOR, f"/api/programs/{LG}/dashboard")
        reviewer = await w.get(LG_ONLINE, f"/api/programs/{LG}/dashboard")
        other_program = await w.get(SZ_ADMIN, f"/api/programs/{LG}/dashboard")
        no_token = await w.get(None, f"/api/programs/{LG}/dashboard")
        chain = await w.get(AUDITOR, "/api/audit/verify")
        chain_by_admin = await w.get(LG_ADMIN, "/api/audit/verify")

    assert board.status_code == 200, board.text
    body = board.json()
    assert body["program"] == LG and body["as_of"].endswith("+08:00")
    assert body["applications_by_status"].get("online_review", 0) >= 1
    assert body["open_tasks_by_step"]["online_review"]["open"] >= 1
    assert body["open_tasks"] >= body["overdue_tasks"] >= 0
    assert body["deadlines_this_week"] >= body["deadlines_today"] >= 0
    assert set(body["awards"]) == {"count", "total_fen", "budget_fen"}
    assert seen_by_auditor.status_code == 200
    assert reviewer.status_code == 403 and reviewer.json()["message"] == "只有项目管理员和审计人员可以查看工作台"
    assert other_program.status_code == 404  # another program's existence is not revealed
    assert no_token.status_code == 401
    assert chain.status_code == 200 and chain.json()["intact"] is True and chain.json()["count"] >= 0
    assert chain_by_admin.status_code == 403


async def test_the_expert_registry_the_panel_dialog_offers(stack, tmp_path: Path) -> None:
    from services.review.scoring.registry import register_experts

    SZ_PRE = Official("sz-pre-01", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
    rows = ("expert_id,name,organisation,organisation_uscc,fields,affiliations\n"
            "expert-01,刘洋,深圳大学,12440300455000000A,人工智能;自然语言处理,\n"
            "expert-02,陈晨,深圳市示例研究院,12440000MB2C357914,政务信息化,\n")
    async with review_world(stack, tmp_path, shared=True) as w:
        await register_experts(w.database, rows.encode())
        listed = await w.get(SZ_ADMIN, f"/api/programs/{SZ}/experts")
        reviewer = await w.get(SZ_PRE, f"/api/programs/{SZ}/experts")
        other_program = await w.get(LG_ADMIN, f"/api/programs/{SZ}/experts")

    assert listed.status_code == 200, listed.text
    assert listed.json()["experts"] == [
        {"expert": "expert-01", "name": "刘洋", "organisation": "深圳大学", "fields": ["人工智能", "自然语言处理"]},
        {"expert": "expert-02", "name": "陈晨", "organisation": "深圳市示例研究院", "fields": ["政务信息化"]},
    ]
    assert reviewer.status_code == 403 and reviewer.json()["message"] == "只有项目管理员和审计人员可以查看专家库"
    assert other_program.status_code == 404
