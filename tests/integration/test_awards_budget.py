"""The Longgang batch budget applied before publication (按比例核减, issue 11), on the real stack,
every step through the reviewers' API.

A batch of its own (a temporary configuration folder: the 2025 file with its own code, an open
filing window and `budget_fen` = CNY 70,000), so nothing else on the shared stack is on its list:
three applications confirmed at CNY 30,000.00 + 60,000.01 + 10,000.00; publication is refused while
the list exceeds the budget; the administrator applies it; the list, each lifecycle's award, the
published state change and the SMS carry the reduced amounts, which sum to the budget to the fen.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notify.notices import format_yuan
from services.review.awards.money import prorate_to_budget
from subsidy.identity.claims import StaffRole
from tests.support.budget_batch import budget_batch_config, confirmed_awards
from tests.support.review_world import Official, application_no, review_world
from tests.support.waiting import until

pytestmark = pytest.mark.integration
LGB = f"LG-AI-MODEL-B{random.randrange(1_000_000):06d}"  # a batch per run: its list holds only this test's
ONLINE = Official("lgb-online", (StaffRole.LG_ONLINE_REVIEWER,), (LGB,))
BACK = Official("lgb-back", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LGB,))
CLERK = Official("lgb-clerk", (StaffRole.WINDOW_CLERK,), (LGB,), window="LG-W02")
ADMIN = Official("lgb-admin", (StaffRole.PROGRAM_ADMIN,), (LGB,))
AUDITOR = Official("lgb-auditor", (StaffRole.AUDITOR,), (LGB,))
BUDGET = 7_000_000  # CNY 70,000.00
WEEKS_AGO = (datetime.now(UTC) - timedelta(days=30)).isoformat()  # the notice went up 30 days ago: its period is over



async def test_three_awards_over_the_budget_are_prorated_to_the_fen_before_publication(stack, tmp_path: Path) -> None:
    programs = budget_batch_config(tmp_path, LGB, BUDGET)

    # 30% floored: CNY 100,000.00 -> 30,000.00; 200,000.04 -> 60,000.01 (60,000.012); 33,333.34 -> 10,000.00 (10,000.002)
    contracts = [10_000_000, 20_000_004, 3_333_334]
    apps = [application_no("LG") for _ in contracts]
    confirmed_fen = dict(zip(apps, (3_000_000, 6_000_001, 1_000_000), strict=True))
    expected = prorate_to_budget(confirmed_fen, BUDGET)
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs), "SMS_DAILY_LIMIT": "100000"}
    async with review_world(stack, tmp_path, notify=True, extra_env=env) as w:
        confirmations = await confirmed_awards(w, LGB, apps, contracts, online=ONLINE, back=BACK, clerk=CLERK, admin=ADMIN)

        async def listed() -> dict | None:
            preview = (await w.get(ADMIN, f"/api/programs/{LGB}/notice/preview")).json()
            return preview if preview.get("count") == len(apps) else None

        before = await until(listed)
        awards_before = (await w.get(ADMIN, f"/api/programs/{LGB}/awards")).json()
        refused_publication = await w.post(ADMIN, f"/api/programs/{LGB}/publication", {"starts_at": WEEKS_AGO})
        by_auditor = await w.post(AUDITOR, f"/api/programs/{LGB}/awards/budget", {})
        changed_list = await w.post(ADMIN, f"/api/programs/{LGB}/awards/budget", {"applications": apps[:2]})
        key = f"budget-{LGB}"
        applied = await w.post(ADMIN, f"/api/programs/{LGB}/awards/budget", {"applications": apps}, key=key)
        repeated = await w.post(ADMIN, f"/api/programs/{LGB}/awards/budget", {"applications": apps}, key=key)
        again = await w.post(ADMIN, f"/api/programs/{LGB}/awards/budget", {})

        async def prorated_list() -> dict | None:
            preview = (await w.get(ADMIN, f"/api/programs/{LGB}/notice/preview")).json()
            return preview if preview["total_award_fen"] == BUDGET else None

        after = await until(prorated_list)
        awards_after = (await w.get(ADMIN, f"/api/programs/{LGB}/awards")).json()
        one_award = (await w.get(AUDITOR, f"/api/applications/{apps[1]}/award")).json()
        published = await w.post(ADMIN, f"/api/programs/{LGB}/publication", {"starts_at": WEEKS_AGO})
        for app in apps:
            await w.reach(AUDITOR, app, "published", timeout=180)

        async def published_sms(app: str) -> list:
            messages = (await w.view(AUDITOR, app))["sms"].get("messages") or []
            return [m for m in messages if "公示" in str(m)]

        sms = {app: await until(lambda app=app: published_sms(app)) for app in apps}
        changes = await w.database.fetch(
            """SELECT application_no, from_status, to_status, reason, actor, fields::text AS fields FROM review.state_changes
               WHERE application_no = ANY($1::text[]) AND to_status IN ('awaiting_publication', 'published')
               ORDER BY application_no, occurred_at""", apps)
        reserved = {r["application_no"]: r["amount_fen"] for r in await w.database.fetch(
            "SELECT application_no, amount_fen FROM review.award_reservations WHERE application_no = ANY($1::text[])", apps)}
        audited = await w.database.fetch(
            """SELECT application_no, outcome FROM review.audit_chain WHERE action = 'apply_budget' AND program = $1
               ORDER BY seq""", LGB)

    # Confirmed as computed; on the list at those amounts; over the budget: no publication.
    assert [c.status_code for c in confirmations] == [200, 200, 200], [c.text for c in confirmations]
    assert {app: c.json()["award_fen"] for app, c in zip(apps, confirmations, strict=True)} == confirmed_fen
    assert {e["application_no"]: e["award_fen"] for e in before["entries"]} == confirmed_fen
    budget = awards_before["budget"]
    assert budget["over_budget"] is True and budget["publishable"] is False and budget["available_fen"] == BUDGET
    assert {a["application_no"]: a["prorated_fen"] for a in budget["applications"]} == expected
    assert refused_publication.status_code == 409 and refused_publication.json()["code"] == "over_budget", refused_publication.text
    assert "按预算比例核减" in refused_publication.json()["message"] and "100,000.01" in refused_publication.json()["message"]
    assert by_auditor.status_code == 403, by_auditor.text
    assert changed_list.status_code == 409 and changed_list.json()["code"] == "list_changed", changed_list.text

    # Applied: to the fen, the missing fen to the largest remainders, each lifecycle told.
    assert expected == {apps[0]: 2_100_000, apps[1]: 4_200_000, apps[2]: 700_000}  # floors 2,099,999 / 4,200,000 / 699,999
    assert applied.status_code == 200, applied.text
    answer = applied.json()
    assert {r["application_no"]: (r["from_fen"], r["award_fen"], r["status"]) for r in answer["revised"]} == {
        app: (confirmed_fen[app], expected[app], "awaiting_publication") for app in apps if expected[app] != confirmed_fen[app]}
    assert answer["failed"] == [] and answer["prorated_total_fen"] == BUDGET and answer["confirmed_total_fen"] == 10_000_001
    assert repeated.status_code == 200 and repeated.json() == answer  # the same key: the same answer, nothing again
    assert again.status_code == 409 and again.json()["code"] == "already_applied", again.text
    assert {e["application_no"]: e["award_fen"] for e in after["entries"]} == expected
    assert awards_after["budget"]["publishable"] is True
    assert one_award["confirmed_fen"] == 6_000_001 and one_award["budget_revision"]["revised_fen"] == 4_200_000
    assert one_award["budget_revision"]["applied_by"] == ADMIN.actor_id
    assert {a["application_no"]: a["revised_fen"] for a in awards_after["applications"]} == {
        app: (expected[app] if expected[app] != confirmed_fen[app] else None) for app in apps}

    # Published: the list, the lifecycle's state changes, the ledger and the SMS carry the reduced amounts.
    assert published.status_code == 200, published.text
    assert published.json()["total_award_fen"] == BUDGET and published.json()["entries"] == 3
    for app in apps:
        mine = [c for c in changes if c["application_no"] == app]
        assert json.loads(mine[-1]["fields"])["award_fen"] == expected[app] and mine[-1]["to_status"] == "published"
        revisions = [c for c in mine if c["from_status"] == "awaiting_publication" and c["to_status"] == "awaiting_publication"]
        if expected[app] != confirmed_fen[app]:
            assert [json.loads(c["fields"])["award_fen"] for c in revisions] == [expected[app]]
            assert revisions[0]["reason"] == f"award_revised:{confirmed_fen[app]}->{expected[app]}"
            assert revisions[0]["actor"] == ADMIN.actor_id
        assert reserved[app] == expected[app]
        assert format_yuan(expected[app]) in str(sms[app]) and format_yuan(confirmed_fen[app]) not in str(sms[app])
    # Audited: one row per application revised and one for the whole; the refused attempts too.
    accepted = [(r["application_no"], r["outcome"]) for r in audited if r["outcome"] == "accepted"]
    assert sorted(accepted, key=str) == sorted(
        [(app, "accepted") for app in apps if expected[app] != confirmed_fen[app]] + [(None, "accepted")], key=str)
    assert sum(1 for r in audited if r["outcome"] == "refused") >= 3  # auditor, changed list, already applied
