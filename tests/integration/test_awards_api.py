"""Longgang awards on the real stack through the reviewers' API (issue 11): computed by the platform
when the application reaches award calculation, explained contract by contract, confirmed or adjusted
with a reason by the administrator, and the enterprise's CNY 2M yearly cap held by a ledger in
PostgreSQL when two applications of one enterprise are confirmed at the same moment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.review.audit.chain import verify_chain
from tests.support.longgang_journey import (
    LG_ADMIN,
    LG_AUDITOR,
    LG_ONLINE,
    contract,
    fresh_uscc,
    longgang_data,
    to_award_calculation,
)
from tests.support.review_world import application_no, programs_dir, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]
SHORT_RECEIPT_WAIT = {"sms_receipt_wait": '"PT2S"'}


async def test_award_computed_explained_and_confirmed(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    data = longgang_data(fresh_uscc(), [
        # eligible: the smallest of contract 1,000,000, invoices 800,000 and payments 900,000 yuan
        contract("HT-A-1", 100_000_000, invoiced_fen=80_000_000, paid_fen=90_000_000),
        # excluded, 二(二): completed after the cycle year (2024-12-01 .. 2025-11-30)
        contract("HT-A-2", 50_000_000, completed_on="2025-12-05"),
    ])
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs_dir(tmp_path, **SHORT_RECEIPT_WAIT))}
    async with review_world(stack, tmp_path, extra_env=env, shared=True) as w:
        await to_award_calculation(w, app, data)
        task = await w.task_of(LG_ADMIN, app, "award")
        shown = await w.get(LG_ADMIN, f"/api/applications/{app}/award")
        by_auditor = await w.get(LG_AUDITOR, f"/api/applications/{app}/award")
        by_reviewer = await w.get(LG_ONLINE, f"/api/applications/{app}/award")
        typed_in = await w.post(LG_ADMIN, f"/api/applications/{app}/award", {"eligible_amount_fen": 80_000_000, "award_fen": 24_000_000})
        not_admin = await w.post(LG_ONLINE, f"/api/applications/{app}/award/confirm", {})
        no_reason = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm", {"adjusted_award_fen": 20_000_000})
        above = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm",
                             {"adjusted_award_fen": 24_000_001, "reason": "多算一分"})
        adjusted = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm",
                                {"adjusted_award_fen": 20_000_000, "reason": "发票 2544… 与另一申报重复，核减"}, key="confirm-" + app)
        repeated = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm",
                                {"adjusted_award_fen": 20_000_000, "reason": "发票 2544… 与另一申报重复，核减"}, key="confirm-" + app)
        again = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm", {})
        after = (await w.get(LG_ADMIN, f"/api/applications/{app}/award")).json()
        final = await w.reach(LG_AUDITOR, app, "awaiting_publication")
        audit = (await w.get(LG_AUDITOR, "/api/audit", application_no=app, page_size=100)).json()
        chain = await verify_chain(w.database)

    assert task["role"] == "program_admin"
    assert shown.status_code == 200, shown.text
    award = shown.json()
    assert award["status"] == "computed" and award["computed_fen"] == 24_000_000 and award["award_fen"] == 24_000_000
    lines = {line["contract_no"]: line for line in award["breakdown"]["contracts"]}
    assert lines["HT-A-1"]["included"] and lines["HT-A-1"]["eligible_fen"] == 80_000_000
    assert not lines["HT-A-2"]["included"] and lines["HT-A-2"]["reasons"][0]["clause"] == "二(二)"
    assert "不在周期年度" in lines["HT-A-2"]["reasons"][0]["text"]
    assert award["breakdown"]["eligible_total_fen"] == 80_000_000 and award["breakdown"]["rate_percent"] == 30
    assert by_auditor.status_code == 200 and by_reviewer.status_code == 403
    assert typed_in.status_code in (404, 405)  # nobody types the award in
    assert not_admin.status_code == 403
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "invalid_input"
    assert above.status_code == 422 and above.json()["code"] == "over_cap", above.text
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json()["status"] == "awaiting_publication" and adjusted.json()["award_fen"] == 20_000_000
    assert repeated.json() == adjusted.json()
    assert again.status_code == 409, again.text  # confirmed once; a new key does not confirm twice
    assert after["status"] == "adjusted" and after["confirmed_fen"] == 20_000_000 and after["adjustment_reason"].startswith("发票")
    assert after["decided_by"] == LG_ADMIN.actor_id
    changes = [h for h in final["history"] if h["kind"] == "state_change" and h["to"] == "awaiting_publication"]
    assert changes and changes[0]["fields"]["award_fen"] == 20_000_000
    award_audit = [(e["action"], e["outcome"], e["input"]) for e in reversed(audit["items"]) if e["action"] == "record_award"]
    assert [(a, o) for a, o, _ in award_audit] == [("record_award", "refused")] * 3 + [("record_award", "accepted"),
                                                                                       ("record_award", "refused")]
    assert award_audit[3][2]["reason"].startswith("发票")
    assert chain.intact


async def test_two_applications_of_one_enterprise_confirmed_at_once_stay_within_the_yearly_cap(stack, tmp_path: Path) -> None:
    uscc = fresh_uscc()
    apps = [application_no("LG"), application_no("LG")]
    # Each: eligible CNY 5,000,000 -> 30% = CNY 1,500,000; together over the CNY 2,000,000 cap.
    data = {app: longgang_data(uscc, [contract(f"HT-{app}", 500_000_000)]) for app in apps}
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs_dir(tmp_path, **SHORT_RECEIPT_WAIT))}
    async with review_world(stack, tmp_path, extra_env=env, shared=True) as w:
        await asyncio.gather(*(to_award_calculation(w, app, data[app]) for app in apps))
        computed = [(await w.get(LG_ADMIN, f"/api/applications/{app}/award")).json() for app in apps]
        # Both at once, and the first one's request sent twice with one Idempotency-Key (a client retry).
        key = f"confirm-{apps[0]}-retry"
        *confirmed, retry = await asyncio.gather(
            w.post(LG_ADMIN, f"/api/applications/{apps[0]}/award/confirm", {}, key=key),
            w.post(LG_ADMIN, f"/api/applications/{apps[1]}/award/confirm", {}),
            w.post(LG_ADMIN, f"/api/applications/{apps[0]}/award/confirm", {}, key=key),
        )
        after = [(await w.get(LG_ADMIN, f"/api/applications/{app}/award")).json() for app in apps]
        ledger = await w.database.fetch(
            "SELECT application_no, amount_fen FROM review.award_reservations WHERE uscc = $1 AND cap_year = 2025", uscc)

    # Before either is confirmed, each alone would get CNY 1.5M.
    assert [c["award_fen"] for c in computed] == [150_000_000, 150_000_000]
    assert all(r.status_code == 200 for r in confirmed), [r.text for r in confirmed]
    amounts = sorted(r.json()["award_fen"] for r in confirmed)
    # Whichever came first got CNY 1.5M, the other what remained: CNY 0.5M. Never 3M together.
    assert amounts == [50_000_000, 150_000_000]
    assert retry.status_code == 200 and retry.json() == confirmed[0].json()  # the same answer, confirmed once
    assert sum(r["amount_fen"] for r in ledger) == 200_000_000 and len(ledger) == 2
    second = next(a for a in after if a["confirmed_fen"] == 50_000_000)
    assert second["breakdown"]["already_awarded_fen"] == 150_000_000 and second["breakdown"]["capped"]
    assert any("年度" in s["text"] for s in second["breakdown"]["summary"])
