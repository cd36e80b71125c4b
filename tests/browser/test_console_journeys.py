"""Each role's journey through the console on the real stack: intake, worker and review as real
processes (tests/support/review_world.py), Kafka, Temporal and PostgreSQL; the officials log in
through the local issuer's development login and take every human step in the browser. The
portals' own acts (submission, resubmission, the Guangdong submission) go in on Kafka as the
portals send them. Nothing here calls the API or Temporal for an official's step.

Screenshots of every page: .run/screenshots/ (docs/console.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from services.review.scoring.registry import register_experts
from tests.browser.conftest import Watched, login_as
from tests.support import experts as ex
from tests.support.longgang_journey import contract, fresh_uscc, longgang_data
from tests.support.review_world import LG, SZ, Official, application_no, programs_dir, review_world

pytestmark = pytest.mark.integration
SHANGHAI = ZoneInfo("Asia/Shanghai")

# The development users (deploy/embedded/dev_users.py), as review_world waits for their tasks.
LG_ONLINE = Official("lg-online-01", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_BACK = Official("lg-backoffice-01", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG,))
LG_CLERK = Official("lg-clerk-w03", (StaffRole.WINDOW_CLERK,), (LG,), window="LG-W03")
LG_ADMIN = Official("lg-admin-01", (StaffRole.PROGRAM_ADMIN,), (LG,))
SZ_PRE = Official("sz-pre-01", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
SZ_ADMIN = Official("sz-admin-01", (StaffRole.PROGRAM_ADMIN,), (SZ,))
EXPERTS = [Official(f"expert-0{n}", (StaffRole.EXPERT,), (SZ,)) for n in (1, 2, 3)]
AUDITOR = Official("auditor-01", (StaffRole.AUDITOR,), (LG, SZ))


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


async def open_application(w: Watched, app: str, what: str) -> None:
    """From the task list, as an official does: find the row, click 办理."""
    await w.goto("/console/tasks", f"{what}-tasks")
    row = w.page.locator(f'tr[data-application="{app}"]')
    await expect(row).to_have_count(1)
    await w.click(f'tr[data-application="{app}"] a.btn-text', what)
    await expect(w.page.locator(".detail-head h1")).to_have_text(app)


async def decide(w: Watched, dialog: str, what: str, **fields: str) -> None:
    page = w.page
    await page.click(f'[data-open="{dialog}"]')
    box = page.locator(f"#{dialog}")
    await expect(box).to_be_visible()
    for name, value in fields.items():
        field = box.locator(f'[name="{name}"]')
        if await field.evaluate("el => el.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await w.snap(f"{what}-dialog")
    async with page.expect_navigation():
        await box.locator("[data-confirm]").click()
    await w.settle(what)
    await expect(page.locator("[data-flash]")).to_have_attribute("data-flash", "success")


async def status_is(w: Watched, status_zh: str, what: str) -> None:
    """The read model follows the workflow through Kafka: reload until the page shows it."""
    for attempt in range(120):
        if (await w.page.locator(".detail-head [data-status]").inner_text()).strip() == status_zh:
            if attempt:
                await w.snap(f"{what}-reloaded")
            return
        await w.page.wait_for_timeout(500)
        await w.page.reload()
    await w.snap(f"{what}-not-reached")
    raise AssertionError(f"the page never showed {status_zh}")


async def test_a_longgang_application_from_online_review_to_publication(stack, tmp_path: Path, open_console) -> None:
    app = application_no("LG")
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs_dir(tmp_path, sms_receipt_wait='"PT2S"'))}
    async with review_world(stack, tmp_path, extra_env=env) as world:
        base = world.review
        # An enterprise of its own (the CNY 2M yearly cap is per enterprise on a shared stack) with two
        # contracts: one within the cycle year (eligible), one completed before it (excluded, 二(二)).
        data = longgang_data(fresh_uscc(), [contract("HT-BR-2025-01", 150_000_000, invoiced_fen=140_000_000, paid_fen=120_000_000),
                                            contract("HT-BR-2023-02", 80_000_000, completed_on="2023-06-30")])
        await world.send(topics.LONGGANG_APPLICATION_SUBMITTED, app, **data)
        await world.task_of(LG_ONLINE, app, "online_review")

        # Online review: the task in 待办, the tabs, a return with reasons and a date.
        online = await open_console(base, label="online")
        await login_as(online, "lg-online-01")
        await open_application(online, app, "online-detail")
        for tab in ("materials", "checks", "duplicates", "history", "sms", "deadlines"):
            await online.click(f'[data-tab="{tab}"]', f"online-tab-{tab}")
            if tab == "checks":  # each finding with its clause
                await expect(online.page.locator('table[data-table="checks"] tbody tr').first).to_contain_text("三(")
        await online.click('[data-tab="basic"]', "online-tab-basic")
        resubmit_by = (datetime.now(SHANGHAI) + timedelta(days=7)).date().isoformat()
        await decide(online, "dlg-return", "online-returned", reasons="请补充近两年财务审计报告", resubmit_by=resubmit_by)
        await expect(online.page.locator(".detail-head [data-status]")).to_have_text("退回修改")

        # The enterprise resubmits; the reviewer approves (已通过线上终审).
        await world.send(topics.LONGGANG_APPLICATION_RESUBMITTED, app, submitted_at=now_iso(), **data)
        await world.task_of(LG_ONLINE, app, "online_review")
        await open_application(online, app, "online-again")
        await decide(online, "dlg-approve", "online-approved")
        await status_is(online, "待广东政务服务网提交", "online-approved")
        await online.click('[data-tab="history"]', "online-history")
        await expect(online.page.locator("[data-timeline]")).to_contain_text("请补充近两年财务审计报告")
        await online.goto("/console/tasks?tab=done", "online-done")
        await expect(online.page.locator(f'tr[data-application="{app}"]')).to_have_count(2)

        # The Guangdong portal submission; back-office review, then the notice confirmed by phone.
        form = await world.database.fetchrow(
            "SELECT form_id, sha256 FROM review.forms WHERE application_no = $1 ORDER BY version DESC LIMIT 1", app)
        await world.send(topics.GUANGDONG_SUBMISSION_RECEIVED, app, form_id=form["form_id"], form_sha256=form["sha256"],
                         received_at=now_iso())
        await world.task_of(LG_BACK, app, "back_office_review")
        back = await open_console(base, label="backoffice")
        await login_as(back, "lg-backoffice-01")
        await open_application(back, app, "back-detail")
        await expect(back.page.locator("[data-actions] button")).to_have_text(["审核通过", "不予通过"])
        await decide(back, "dlg-approve", "back-approved")
        await world.task_of(LG_BACK, app, "confirm_notice_by_phone")
        await back.page.reload()
        await status_is(back, "待短信送达", "back-phone")
        await decide(back, "dlg-phone", "back-phoned")
        await status_is(back, "待收纸质材料", "back-phoned")

        # Paper at the clerk's window, found by the form number printed on it.
        await world.task_of(LG_CLERK, app, "paper")
        clerk = await open_console(base, label="clerk")
        await login_as(clerk, "lg-clerk-w03")
        await expect(clerk.page.locator(f'table[data-table="waiting"] >> text={app}')).to_have_count(1)
        await clerk.page.fill('input[name="q"]', form["form_id"])
        await clerk.click('.search-form button[type="submit"]', "clerk-found")
        await expect(clerk.page.locator('.inline-form input[name="form_id"]')).to_have_value(form["form_id"])
        await clerk.page.fill('.inline-form input[name="copies"]', "2")
        await clerk.page.select_option('.inline-form select[name="bound_and_stamped"]', "yes")
        await clerk.page.click('.inline-form button[type="submit"]')
        await clerk.snap("clerk-confirm")
        async with clerk.page.expect_navigation():
            await clerk.page.locator("dialog[data-confirm-box] [data-ok]").click()
        await clerk.settle("clerk-recorded")
        await expect(clerk.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await expect(clerk.page.locator(f'table[data-table="receipts"] >> text={app}')).to_have_count(1)

        # The administrator: dashboard, the award, publication.
        await world.task_of(LG_ADMIN, app, "award")
        admin = await open_console(base, label="admin")
        await login_as(admin, "lg-admin-01")
        await expect(admin.page.locator("svg.chart")).to_have_count(3)
        assert int(await admin.page.locator('[data-stat="open"]').inner_text()) >= 1
        await admin.click('[data-menu="awards"]', "admin-awards")
        await admin.click(f'table[data-table="award"] tr:has-text("{app}") a', "admin-award-breakdown")
        contracts = admin.page.locator('table[data-table="contracts"]')
        await expect(contracts.locator('tr[data-contract="HT-BR-2025-01"]')).to_contain_text("计入")
        await expect(contracts.locator('tr[data-contract="HT-BR-2025-01"]')).to_contain_text("1,200,000.00")  # the smallest of the three
        await expect(contracts.locator('tr[data-contract="HT-BR-2023-02"]')).to_contain_text("不计入")
        await expect(contracts.locator('tr[data-contract="HT-BR-2023-02"]')).to_contain_text("二(二)")
        await expect(admin.page.locator("[data-computed]")).to_have_text("360,000.00")  # 30% of 1,200,000.00
        await admin.page.click("[data-confirm-award]")
        await admin.snap("admin-award-confirm")
        async with admin.page.expect_navigation():
            await admin.page.locator("dialog[data-confirm-box] [data-ok]").click()
        await admin.settle("admin-award-confirmed")
        await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await expect(admin.page.locator("[data-confirmed]")).to_have_text("360,000.00")
        await admin.click("text=返回申报详情", "admin-awarded-detail")
        await status_is(admin, "待公示", "admin-awarded")
        await world.task_of(LG_ADMIN, app, "publication")
        await admin.click('[data-menu="publication"]', "admin-publication")
        card = admin.page.locator(f'[data-program="{LG}"]')
        await expect(card).to_contain_text(app)
        await card.locator("[data-open]").click()
        # The list went up on the bureau's website 30 days ago (recorded afterwards): its 5 working
        # days are over, so the list is final at once and the application published.
        went_up = (datetime.now(SHANGHAI) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
        await card.locator("[data-starts-at]").fill(went_up)
        await admin.snap("admin-publish-dialog")
        async with admin.page.expect_navigation():
            await card.locator('[data-confirm="publish"]').click()
        await admin.settle("admin-published")
        await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await world.reach(AUDITOR, app, "published")
        await admin.goto("/console/admin", "admin-dashboard-after")

        # The auditor reads what happened, and the chain holds.
        auditor = await open_console(base, label="auditor")
        await login_as(auditor, "auditor-01")
        await auditor.page.fill('input[name="application_no"]', app)
        await auditor.click('.search-form button[type="submit"]', "audit-of-app")
        rows = auditor.page.locator('table[data-table="audit"] tbody tr')
        await expect(rows).to_have_count(6)
        await expect(auditor.page.locator('table[data-table="audit"]')).to_contain_text("登记纸质材料收件")
        await auditor.click("[data-verify]", "audit-verified")
        await expect(auditor.page.locator('[data-chain="intact"]')).to_be_visible()
        await auditor.goto(f"/console/applications/{app}?tab=history", "auditor-history")
        await expect(auditor.page.locator(".detail-head [data-status]")).to_have_text("已公示")
        await expect(auditor.page.locator("[data-actions]")).to_have_count(0)


async def register_dev_experts(world, applicant_uscc: str) -> None:
    """The expert registry as an operator imports it (`subsidy reference import experts`), naming the
    development experts: three independent, expert-04 employed by the applicant (a conflict)."""
    rows = [
        "expert_id,name,organisation,organisation_uscc,fields,affiliations",
        "expert-01,刘洋,深圳大学,12440300455000000A,人工智能,",
        "expert-02,陈晨,深圳市示例研究院,12440000MB2C357914,政务信息化,",
        "expert-03,杨帆,北京示例会计师事务所,91110108MA01ABCDEN,财务,",
        f"expert-04,黄磊,深圳市评审示例科技有限公司,{applicant_uscc},数据治理,",
    ]
    await register_experts(world.database, ("\n".join(rows) + "\n").encode())


async def test_a_shenzhen_product_through_pre_review_experts_and_tiering(stack, tmp_path: Path, open_console) -> None:
    app = application_no("SZ")
    uscc = ex.applicant_uscc()
    product = {"name": "政务智能问答平台（浏览器测试）", "scenario_id": f"SZGOV-AI-2025-{app[-3:]}", "scenario_published_on": "2025-03-15",
               "in_use_since": "2025-08-01", "government_funded": False, "test_report_file_ids": ["f-31"], "user_report_file_ids": ["f-32"]}
    async with review_world(stack, tmp_path) as world:
        base = world.review
        await register_dev_experts(world, uscc)
        await world.send(topics.SHENZHEN_APPLICATION_SUBMITTED, app, applicant=ex.applicant(uscc), product=product)
        await world.task_of(SZ_PRE, app, "formal_pre_review")

        pre = await open_console(base, label="pre")
        await login_as(pre, "sz-pre-01")
        await open_application(pre, app, "pre-detail")
        await expect(pre.page.locator("[data-actions] button")).to_have_text(
            ["审核通过", "退回修改", "要求预约提交纸质材料", "不予通过"])
        await decide(pre, "dlg-approve", "pre-approved")
        await status_is(pre, "专家评审", "pre-approved")
        # A Longgang page is not theirs.
        pre.expect_status(403)
        response = await pre.goto("/console/window", "pre-window-403")
        assert response is not None and response.status == 403

        # The administrator assigns a panel: one expert works for the applicant (refused, in
        # Chinese), then three independent experts.
        await world.task_of(SZ_ADMIN, app, "expert_scoring")
        admin = await open_console(base, label="admin")
        await login_as(admin, "sz-admin-01")
        await admin.goto(f"/console/applications/{app}", "admin-detail")
        await assign_panel(admin, ["expert-01", "expert-02", "expert-04"], "admin-panel-conflict")
        await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "error")
        await expect(admin.page.locator("[data-flash]")).to_contain_text("存在利益冲突，不能分配")
        await admin.page.evaluate("sessionStorage.clear()")
        await admin.page.reload()
        await assign_panel(admin, [e.subject for e in EXPERTS], "admin-panel-assigned")
        await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await expect(admin.page.locator('table[data-table="panel"] tbody tr')).to_have_count(3)

        # Each expert scores through their own login: one criterion after another, each justified.
        for expert, points in zip(EXPERTS, (("88", "80", "75"), ("90", "85", "80"), ("84", "78", "82")), strict=True):
            await world.task_of(expert, app, "expert_scoring")
            seen = await open_console(base, label=expert.subject)
            await login_as(seen, expert.subject)
            await expect(seen.page.locator(f'table[data-table="assigned"] >> text={app}')).to_have_count(1)
            await seen.click(f'table[data-table="assigned"] tr:has-text("{app}") a:has-text("评分表")', f"{expert.subject}-sheet")
            sheet = seen.page.locator("form[data-score-sheet]")
            for (key, name), value in zip((("practicality", "实用性"), ("innovation", "创新性"), ("replicability", "可复制推广性")),
                                          points, strict=True):
                await sheet.locator(f'[name="points_{key}"]').fill(value)
                await sheet.locator(f'[name="why_{key}"]').fill(f"{expert.subject} 评{name}：已在区政务服务中心实际使用，用户报告完整")
            await seen.page.click("[data-submit-score]")
            await seen.snap(f"{expert.subject}-confirm")
            async with seen.page.expect_navigation():
                await seen.page.locator("dialog[data-confirm-box] [data-ok]").click()
            await seen.settle(f"{expert.subject}-scored")
            await expect(seen.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
            await expect(seen.page.locator('table[data-table="my-scores"] tbody tr')).to_have_count(3)
            for other in EXPERTS:  # only their own scores, never another's
                if other is not expert:
                    await expect(seen.page.locator("body")).not_to_contain_text(f"{other.subject} 评")

        # The platform aggregates; the administrator reads the proposal and confirms it.
        await world.reach(SZ_ADMIN, app, "tiering")
        await admin.goto(f"/console/applications/{app}", "admin-scored")
        await expect(admin.page.locator("[data-product-score]")).to_contain_text("综合得分")
        await admin.click("[data-tiering-link]", "admin-tiering")
        row = admin.page.locator(f'table[data-table="tiering"] tr[data-application="{app}"]')
        await expect(row).to_contain_text("二档")  # the experts weigh 81.70, 85.50, 81.60 (40/30/30): mean 82.93, 75 <= score < 85
        await admin.page.click("[data-confirm-tiering]")
        await admin.snap("admin-tiering-confirm")
        async with admin.page.expect_navigation():
            await admin.page.locator("dialog[data-confirm-box] [data-ok]").click()
        await admin.settle("admin-tiering-confirmed")
        await expect(admin.page.locator("[data-flash]")).to_contain_text("已确认")
        await world.reach(SZ_ADMIN, app, "awaiting_publication")
        await admin.goto(f"/console/applications/{app}", "admin-tiered")
        await expect(admin.page.locator(".detail-head [data-status]")).to_have_text("待公示")
        await expect(admin.page.locator("[data-product-score]")).to_contain_text("3,000,000.00 元（已确认）")
        await admin.goto(f"/console/admin?program={SZ}", "admin-dashboard")
        await expect(admin.page.locator("svg.chart").first).to_contain_text("待公示")


async def assign_panel(w: Watched, experts: list[str], what: str) -> None:
    await w.page.click('[data-open="dlg-experts"]')
    for subject in experts:
        await w.page.check(f'#dlg-experts input[name="experts"][value="{subject}"]')
    await w.snap(f"{what}-dialog")
    async with w.page.expect_navigation():
        await w.page.click('[data-confirm="experts"]')
    await w.settle(what)
