"""The Longgang batch budget (按比例核减, issue 11) in the console, on the real stack: the
administrator finds publication refused over the budget, applies the budget on 资助核定, sees the
amounts revised (summing to the budget to the fen) on the list, on an award and on the dashboard,
and publishes.

A batch of its own with a small budget (tests/support/budget_batch.py, as
tests/integration/test_awards_budget.py sets it up): CNY 30,000.00 + 60,000.01 + 10,000.00
confirmed against CNY 70,000.00, so nothing else on the shared stack is on its list. What sets the
scene goes through the reviewers' API as authenticated officials; the administrator acts in the
browser. No development user belongs to a test-only batch, so the administrator's session is a
token of the stack's own issuer (what the development login would give an administrator of that
batch) in the console's session cookie. The list is published with a past 公示开始时间: its period
is over, nothing of it keeps running on the shared stack.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.async_api import expect

from services.review.awards.money import prorate_to_budget
from services.review.console import format as fmt
from services.review.console.routes import SESSION_COOKIE
from subsidy.identity.claims import StaffRole
from tests.browser.conftest import Watched
from tests.support.budget_batch import budget_batch_config, confirmed_awards
from tests.support.review_world import Official, ReviewWorld, application_no, review_world
from tests.support.waiting import until

pytestmark = pytest.mark.integration

LGB = f"LG-AI-MODEL-C{random.randrange(1_000_000):06d}"  # a batch per run: its list holds only this test's
ONLINE = Official("lgc-online", (StaffRole.LG_ONLINE_REVIEWER,), (LGB,), name="周伟")
BACK = Official("lgc-back", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LGB,), name="吴芳")
CLERK = Official("lgc-clerk", (StaffRole.WINDOW_CLERK,), (LGB,), window="LG-W03", name="郑强")
ADMIN = Official("lgc-admin", (StaffRole.PROGRAM_ADMIN,), (LGB,), name="王磊")
BUDGET = 7_000_000  # CNY 70,000.00



async def signed_in(w: ReviewWorld, watched: Watched, who: Official) -> None:
    """The console's session cookie holding `who`'s token from the stack's issuer."""
    await watched.page.context.add_cookies([{"name": SESSION_COOKIE, "value": w.token(who), "domain": urlparse(w.review).hostname,
                                             "path": "/console", "httpOnly": True, "sameSite": "Lax"}])


def fen(text: str) -> int:
    return fmt.fen_from_yuan(text)


async def test_publication_refused_over_the_budget_then_the_budget_applied_and_published(stack, tmp_path: Path, open_console) -> None:
    programs = budget_batch_config(tmp_path, LGB, BUDGET)
    contracts = [10_000_000, 20_000_004, 3_333_334]  # 30% floored: 30,000.00 / 60,000.01 / 10,000.00
    apps = [application_no("LG") for _ in contracts]
    confirmed_fen = dict(zip(apps, (3_000_000, 6_000_001, 1_000_000), strict=True))
    expected = prorate_to_budget(confirmed_fen, BUDGET)
    assert expected == {apps[0]: 2_100_000, apps[1]: 4_200_000, apps[2]: 700_000}
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs), "SMS_DAILY_LIMIT": "100000"}
    async with review_world(stack, tmp_path, notify=True, extra_env=env) as w:
        confirmations = await confirmed_awards(w, LGB, apps, contracts, online=ONLINE, back=BACK, clerk=CLERK, admin=ADMIN)
        assert [c.status_code for c in confirmations] == [200, 200, 200], [c.text for c in confirmations]

        async def on_list(total: int):
            preview = (await w.get(ADMIN, f"/api/programs/{LGB}/notice/preview")).json()
            return preview.get("count") == len(apps) and preview.get("total_award_fen") == total

        await until(lambda: on_list(sum(confirmed_fen.values())))
        for app in apps:
            await w.task_of(ADMIN, app, "publication")

        admin = await open_console(w.review, label="admin")
        await signed_in(w, admin, ADMIN)

        # Over the budget: the publication page says so before, and the API's refusal after, in Chinese.
        await admin.goto("/console/admin/publication", "publication-over-budget")
        card = admin.page.locator(f'[data-program="{LGB}"]')
        hint = card.locator('[data-budget-hint="over"]')
        await expect(hint).to_contain_text("100,000.01 元")
        await expect(hint).to_contain_text("超过预算可用额度 70,000.00 元")
        await card.locator("[data-open]").click()
        await card.locator("[data-starts-at]").fill(_weeks_ago())
        await admin.snap("publish-dialog-refused")
        async with admin.page.expect_navigation():
            await card.locator('[data-confirm="publish"]').click()
        await admin.settle("publication-refused")
        flash = admin.page.locator("[data-flash]")
        await expect(flash).to_have_attribute("data-flash", "error")
        await expect(flash).to_contain_text("未能发布：本批公示名单拟资助金额合计 100,000.01")
        await expect(flash).to_contain_text("请先按预算比例核减资助金额")
        assert (await w.get(ADMIN, f"/api/programs/{LGB}/notice")).json().get("lists") in ([], None)

        # The hint's link: 资助核定, the budget's position and the amounts as they would fall.
        await admin.click(f'[data-program="{LGB}"] [data-budget-link]', "awards-over-budget")
        section = admin.page.locator(f'[data-budget="{LGB}"]')
        await expect(section.locator("[data-budget-total]")).to_have_text("70,000.00 元")
        await expect(section.locator("[data-published-before]")).to_have_text("0.00 元")
        await expect(section.locator("[data-available]")).to_have_text("70,000.00")
        await expect(section.locator("[data-listed-total]")).to_have_text("100,000.01")
        await expect(section.locator("[data-over-budget]")).to_contain_text("超过可用额度 30,000.01 元")
        await expect(section.locator("[data-budget-rule]")).to_contain_text("余数从大到小分配")
        await expect(section.locator("[data-share]")).to_have_text("70.00%")  # 70,000.00 / 100,000.01
        for app in apps:
            row = section.locator(f'tr[data-application="{app}"]')
            await expect(row.locator("[data-confirmed]")).to_have_text(fmt.yuan(confirmed_fen[app]))
            await expect(row.locator("[data-prorated]")).to_have_text(fmt.yuan(expected[app]))
            await expect(row.locator("[data-to-revise]")).to_have_text("待核减")
        await expect(section.locator("[data-prorated-sum]")).to_have_text("70,000.00")

        # The same page open in a second tab (drawn now, before the budget is applied).
        stale = await open_console(w.review, label="stale")
        await signed_in(w, stale, ADMIN)
        await stale.goto("/console/admin/awards", "stale-awards")

        # 按比例核减, confirmed in the dialog: every amount revised, the list now sums to the budget.
        await section.locator("[data-apply-budget]").click()
        box = admin.page.locator("dialog[data-confirm-box]")
        await expect(box).to_contain_text("由 100,000.01 元调整为 70,000.00 元")
        await admin.snap("apply-budget-confirm")
        async with admin.page.expect_navigation():
            await box.locator("[data-ok]").click()
        await admin.settle("budget-applied")
        await expect(flash).to_have_attribute("data-flash", "success")
        await expect(flash).to_contain_text("已按预算比例核减 3 项资助金额：名单合计 70,000.00 元")
        listed = [fen(t) for t in await section.locator("[data-listed]").all_inner_texts()]
        assert sum(listed) == BUDGET, listed
        for app in apps:
            row = section.locator(f'tr[data-application="{app}"]')
            await expect(row.locator("[data-listed]")).to_have_text(fmt.yuan(expected[app]))
            await expect(row.locator("[data-revised]")).to_have_text("已核减")
        await expect(section.locator("[data-listed-sum]")).to_have_text("70,000.00")
        await expect(section.locator("[data-publishable]")).to_be_visible()
        await expect(section.locator("[data-apply-budget]")).to_have_count(0)
        await expect(section.locator("[data-budget-applied]")).to_contain_text("合计等于可用额度")

        # The second tab's button, pressed after: refused in Chinese (its own key; the list holds the prorated amounts).
        await stale.page.locator(f'[data-budget="{LGB}"] [data-apply-budget]').click()
        async with stale.page.expect_navigation():
            await stale.page.locator("dialog[data-confirm-box] [data-ok]").click()
        await stale.settle("stale-refused")
        await expect(stale.page.locator("[data-flash]")).to_have_attribute("data-flash", "error")
        await expect(stale.page.locator("[data-flash]")).to_contain_text("未能按比例核减：公示名单上的金额已按预算比例核减，无需重复操作")
        await expect(stale.page.locator(f'[data-budget="{LGB}"] [data-listed-sum]')).to_have_text("70,000.00")

        # The award page says who lowered it, from what to what, and when.
        await admin.click(f'[data-budget="{LGB}"] tr[data-application="{apps[1]}"] a', "award-revised")
        revision = admin.page.locator("[data-budget-revision]")
        await expect(revision).to_contain_text("60,000.01 元 → 42,000.00 元（核减 18,000.01 元）")
        await expect(revision).to_contain_text(ADMIN.subject)
        await expect(revision).to_contain_text(re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}"))
        await expect(admin.page.locator("[data-confirmed]")).to_have_text("60,000.01")

        # The dashboard's awards against the budget: the revised amounts (once review's read model has them).
        async def dashboard_total():
            board = (await w.get(ADMIN, f"/api/programs/{LGB}/dashboard")).json()
            return board["awards"] if board["awards"]["total_fen"] == BUDGET else None

        awards = await until(dashboard_total)
        assert awards["budget_fen"] == BUDGET and awards["count"] == 3
        await admin.goto(f"/console/admin?program={LGB}", "dashboard")
        await expect(admin.page.locator(".card", has_text="资助金额与预算")).to_contain_text("已核定 7.00 万元")
        await expect(admin.page.locator(".card", has_text="资助金额与预算")).to_contain_text("预算 7.00 万元")

        # Publishable now: published with a past start (its period is over).
        await admin.goto("/console/admin/publication", "publication-within-budget")
        await expect(card.locator('[data-budget-hint="ok"]')).to_contain_text("70,000.00 元")
        await card.locator("[data-open]").click()
        await card.locator("[data-starts-at]").fill(_weeks_ago())
        await admin.snap("publish-dialog")
        async with admin.page.expect_navigation():
            await card.locator('[data-confirm="publish"]').click()
        await admin.settle("published")
        await expect(flash).to_have_attribute("data-flash", "success")
        await expect(flash).to_contain_text("3 项，资助总额 7.00 万元")
        await expect(card.locator("[data-open]")).to_have_count(0)  # on its list now: nothing left to publish
        lists = (await w.get(ADMIN, f"/api/programs/{LGB}/notice")).json()["lists"]
        assert len(lists) == 1, lists
        for app in apps:
            await w.reach(ADMIN, app, "published", timeout=180)


def _weeks_ago() -> str:
    """公示开始时间 30 days ago, as the datetime-local field takes it (Asia/Shanghai)."""
    return (datetime.now(fmt.SHANGHAI) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
