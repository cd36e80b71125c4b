"""The console's pages in a real browser against a stand-in of review's API (fake_api.py): login
through the development login (PKCE), the task list, an application's tabs and decisions, the
clerk's window, the administrator's dashboard and publication, the expert's and the auditor's
pages, 无权限, logout, and a session that expires while a reason is being typed."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import openpyxl
from playwright.async_api import expect

from services.review.console.format import SHANGHAI
from subsidy.identity.claims import Principal, StaffRole
from services.review.console.routes import SESSION_COOKIE
from tests.browser.conftest import FakeConsole, login_as
from tests.browser.fake_api import SZ


async def test_a_reviewers_task_list_pages_filters_and_exports(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    await login_as(w, "lg-online-01")
    page = w.page
    assert page.url.endswith("/console/tasks")
    await expect(page.locator(".user-name")).to_have_text("张敏")
    await expect(page.locator(".topbar")).to_contain_text("线上审核员（龙岗）")
    rows = page.locator('table[data-table="tasks"] tbody tr')
    await expect(rows).to_have_count(20)
    # deadline first: the three overdue ones on top, highlighted, with the weekday
    await expect(page.locator("tr.row-overdue")).to_have_count(3)
    first = await rows.first.inner_text()
    assert "已逾期" in first and re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}（星期.）", first)
    await expect(page.locator(".pager")).to_contain_text("共 30 条")
    await w.click("[data-next-page]", "tasks-page-2")
    await expect(rows).to_have_count(10)
    await page.select_option('select[name="overdue"]', "true")
    await w.click('.search-form button[type="submit"]', "tasks-overdue")
    await expect(rows).to_have_count(3)
    async with page.expect_download() as download_info:
        await page.click("[data-export]")
    download = await download_info.value
    assert download.suggested_filename.startswith("待办_") and download.suggested_filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(open(await download.path(), "rb").read()))
    sheet = book.active
    assert [c.value for c in sheet[1]] == ["申报编号", "项目", "环节", "接收时间", "办理期限", "是否逾期"]
    assert sheet.max_row == 4 and {sheet.cell(r, 6).value for r in range(2, 5)} == {"是"}
    assert sheet.cell(2, 2).value == "龙岗区调用模型开发应用扶持" and sheet.cell(2, 3).value == "线上审核"
    await w.click('[data-tab="done"]', "tasks-done-empty")
    await expect(page.locator("td.empty")).to_have_text("暂无已办事项")


async def test_an_application_s_tabs_and_a_return_that_survives_an_expired_session(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    await login_as(w, "lg-online-01", "/console/applications/LG2025-000101")
    page = w.page
    await expect(page.locator(".detail-head [data-status]")).to_have_text("线上审核")
    for tab, text in (("materials", "模型服务合同"), ("checks", "三(二)3"), ("duplicates", "LG2025-000102"),
                      ("history", "首次提交"), ("sms", "暂无短信记录"), ("deadlines", "Asia/Shanghai"), ("basic", "线上审核")):
        await w.click(f'[data-tab="{tab}"]', f"tab-{tab}")
        await expect(page.locator(".card").nth(1)).to_contain_text(text)
    await expect(page.locator('table[data-table="checks"]')).to_have_count(0)
    # a duplicate claim flag, linked to the other application, acknowledged by the reviewer (never a rejection)
    await w.click('[data-tab="duplicates"]', "tab-duplicates-again")
    flag = page.locator('table[data-table="duplicate-flags"] tr[data-flag="7"]')
    await expect(flag.locator("a")).to_have_attribute("href", "/console/applications/LG2025-000102")
    await expect(page.locator("[data-unacknowledged]")).to_have_text("1 项待确认")
    await flag.locator('input[name="note"]').fill("已核对，另一申报为同一发票的红字冲销")
    await w.click('[data-acknowledge="7"]', "flag-acknowledged")
    await expect(page.locator("[data-flash]")).to_contain_text("已确认知悉")
    await expect(flag).to_contain_text("已确认知悉")
    await expect(page.locator("[data-unacknowledged]")).to_have_count(0)
    assert fake_console.world.apps["LG2025-000101"].flags[0]["note"] == "已核对，另一申报为同一发票的红字冲销"
    await w.click('[data-tab="basic"]', "tab-basic-again")
    # only the online reviewer's three decisions
    await expect(page.locator("[data-actions] button")).to_have_text(["通过线上终审", "退回修改", "不予通过"])

    await page.click('[data-open="dlg-return"]')
    dialog = page.locator("#dlg-return")
    await expect(dialog).to_be_visible()
    date_input = dialog.locator('input[name="resubmit_by"]')
    today = datetime.now(SHANGHAI).date()
    assert await date_input.get_attribute("min") == today.isoformat()
    await date_input.fill((today - timedelta(days=1)).isoformat())
    assert await date_input.evaluate("el => !el.checkValidity()"), "a past date must not be accepted"
    await dialog.locator('textarea[name="reasons"]').fill("缺少项目负责人近三个月社保缴纳凭证\n模型服务合同未加盖公章")
    await w.snap("return-dialog")

    # The session expires while the reviewer types; the decision is sent anyway.
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": fake_console.token("lg-online-01", ttl_s=-3600),
                                     "domain": "127.0.0.1", "path": "/console"}])
    await date_input.fill((today + timedelta(days=7)).isoformat())
    async with page.expect_navigation(url=re.compile(r"/issuer/authorize")):
        await dialog.locator('[data-confirm="return"]').click()
    await w.snap("expired-session-login")
    async with page.expect_navigation(url=re.compile(r"/console/applications/LG2025-000101")):
        await page.click('button[data-subject="lg-online-01"]')
    await page.wait_for_load_state("load")
    # back on the page, the dialog open again with what was typed
    await expect(dialog).to_be_visible()
    await expect(dialog.locator('textarea[name="reasons"]')).to_have_value("缺少项目负责人近三个月社保缴纳凭证\n模型服务合同未加盖公章")
    await expect(date_input).to_have_value((today + timedelta(days=7)).isoformat())
    await w.snap("draft-restored")
    async with page.expect_navigation():
        await dialog.locator('[data-confirm="return"]').click()
    await w.settle("returned")
    await expect(page.locator("[data-flash=success]")).to_contain_text("退回修改")
    await expect(page.locator(".detail-head [data-status]")).to_have_text("退回修改")
    await expect(page.locator("[data-actions]")).to_have_count(0)
    assert fake_console.world.apps["LG2025-000101"].status == "returned"
    # the draft is gone once the decision went through
    await page.reload()
    await w.snap("after-reload")
    assert await page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('console-draft:')).length") == 0
    await w.click('[data-tab="history"]', "history-after-return")
    await expect(page.locator("[data-timeline]")).to_contain_text("模型服务合同未加盖公章")


async def test_the_clerk_finds_by_form_id_and_records_paper(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    await login_as(w, "lg-clerk-w03")
    page = w.page
    assert page.url.endswith("/console/window")
    await expect(page.locator('table[data-table="receipts"] tbody tr')).to_have_count(1)
    await page.fill('input[name="q"]', "WF-LG2025-000301-V1")
    await w.click('.search-form button[type="submit"]', "window-found")
    await expect(page.locator("[data-found]")).to_contain_text("待收纸质材料")
    await page.fill('.inline-form input[name="copies"]', "2")
    await page.select_option('.inline-form select[name="bound_and_stamped"]', "yes")
    await page.click('.inline-form button[type="submit"]')
    box = page.locator("dialog[data-confirm-box]")
    await expect(box).to_contain_text("LG2025-000301")
    await w.snap("window-confirm")
    async with page.expect_navigation():
        await box.locator("[data-ok]").click()
    await w.settle("window-recorded")
    await expect(page.locator("[data-flash=success]")).to_contain_text("已登记纸质材料收件")
    await expect(page.locator('table[data-table="receipts"] tbody tr')).to_have_count(2)
    assert fake_console.world.apps["LG2025-000301"].status == "award_calculation"
    await page.fill('input[name="q"]', "LG2025-999999")
    await w.click('.search-form button[type="submit"]', "window-not-found")
    await expect(page.locator("[data-not-found]")).to_be_visible()


async def test_another_role_s_page_or_another_program_s_application_is_refused(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    w.expect_status(403, 404)
    await login_as(w, "lg-clerk-w03")
    page = w.page
    for menu in ("window", "tasks", "applications"):
        await expect(page.locator(f'[data-menu="{menu}"]')).to_have_count(1)
    for menu in ("audit", "dashboard", "expert"):
        await expect(page.locator(f'[data-menu="{menu}"]')).to_have_count(0)
    response = await w.goto("/console/audit", "clerk-audit-403")
    assert response is not None and response.status == 403
    await expect(page.locator("h1")).to_have_text("无权限")
    response = await w.goto("/console/applications/SZ2025-000101", "clerk-sz-404")
    assert response is not None and response.status == 404
    await expect(page.locator("[data-error]")).to_contain_text("无权查看")


async def test_the_administrator_s_dashboard_award_and_publication(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    await login_as(w, "lg-admin-01")
    page = w.page
    assert page.url.endswith("/console/admin")
    await expect(page.locator('[data-stat="overdue"]')).to_have_text("3")
    await expect(page.locator("svg.chart")).to_have_count(3)
    await expect(page.locator("svg.chart").first).to_contain_text("线上审核")
    await expect(page.locator('[data-stat="awards"]')).to_have_text("180.00")
    await w.click('[data-menu="awards"]', "awards")
    await w.click('table[data-table="award"] a', "award-breakdown")
    contracts = page.locator('table[data-table="contracts"]')
    await expect(contracts.locator("tbody tr")).to_have_count(3)
    await expect(contracts.locator('tr[data-contract="HT-2024-007"]')).to_contain_text("不计入")
    await expect(contracts.locator('tr[data-contract="HT-2024-007"]')).to_contain_text("（指南二(二)）")
    await expect(page.locator("[data-computed]")).to_have_text("540,000.00")
    await expect(page.locator("[data-rounding]")).to_have_text("按比例计算后向下取整到分")  # LG-AI-MODEL-2025.toml [award]
    # an adjustment without a reason never leaves the browser; with one, it is recorded
    await page.click('[data-open="dlg-adjust"]')
    await page.fill('#dlg-adjust input[name="award_yuan"]', "500,000.00")
    await page.fill('#dlg-adjust textarea[name="reason"]', "经复核，合同 HT-2025-021 的供应商与申报单位存在关联关系")
    await w.snap("award-adjust-dialog")
    async with page.expect_navigation():
        await page.click('[data-confirm="adjust"]')
    await w.settle("award-adjusted")
    await expect(page.locator("[data-flash]")).to_contain_text("已按调整后的金额 500,000.00 元核定")
    await expect(page.locator("[data-confirmed]")).to_have_text("500,000.00")
    await expect(page.locator("[data-award-summary]")).to_contain_text("调整理由：经复核")
    await expect(page.locator("[data-actions]")).to_have_count(0)
    assert fake_console.world.apps["LG2025-000401"].award_fen == 50_000_000
    await w.click('[data-menu="publication"]', "publication")
    card = page.locator('[data-program="LG-AI-MODEL-2025"]')
    await expect(card).to_contain_text("待发布 2 项")
    await card.locator("[data-open]").click()
    await w.snap("publication-dialog")
    async with page.expect_navigation():
        await card.locator('[data-confirm="publish"]').click()
    await w.settle("published")
    await expect(page.locator("[data-flash=success]")).to_contain_text("2 项，资助总额 110.00 万元")


async def test_the_expert_scores_once_sees_only_their_own_and_another_declares_a_conflict(fake_console: FakeConsole, open_console) -> None:
    world = fake_console.world
    w = await open_console(fake_console.base_url, label="expert")
    await login_as(w, "expert-01")
    page = w.page
    await expect(page.locator('table[data-table="assigned"] tbody tr')).to_have_count(1)
    await w.click('table[data-table="assigned"] a:has-text("评分表")', "score-sheet")
    sheet = page.locator("form[data-score-sheet]")
    await expect(sheet.locator("[data-criterion] h4")).to_have_text([re.compile("实用性"), re.compile("创新性"), re.compile("可复制推广性")])
    await expect(page.locator("body")).not_to_contain_text("专家二的评分理由")  # never another expert's scores
    for key, points in (("practicality", "88"), ("innovation", "80"), ("replicability", "75")):
        await sheet.locator(f'[name="points_{key}"]').fill(points)
    await expect(sheet.locator("[data-weighted-total]")).to_have_text("81.70")  # 40% x 88 + 30% x 80 + 30% x 75
    await sheet.locator('[name="why_practicality"]').fill("已在区政务服务中心实际使用")
    await sheet.locator('[name="why_innovation"]').fill("检索增强与多轮对话")
    # a justification left empty: the browser refuses to submit (required)
    await page.click("[data-submit-score]")
    await expect(page.locator("dialog[data-confirm-box]")).to_have_count(0)
    assert "expert-01" not in world.apps["SZ2025-000201"].scores
    await sheet.locator('[name="why_replicability"]').fill("可推广至其他区")
    await page.click("[data-submit-score]")
    await w.snap("score-confirm")
    async with page.expect_navigation():
        await page.locator("dialog[data-confirm-box] [data-ok]").click()
    await w.settle("scored")
    await expect(page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
    await expect(page.locator("[data-submitted]")).to_be_visible()
    await expect(page.locator('table[data-table="my-scores"] tbody tr')).to_have_count(3)
    await expect(page.locator("form[data-score-sheet]")).to_have_count(0)  # once
    assert world.apps["SZ2025-000201"].scores["expert-01"]["practicality"] == {"points": 88, "justification": "已在区政务服务中心实际使用"}

    other = await open_console(fake_console.base_url, label="declines")
    await login_as(other, "expert-03")
    await other.click('table[data-table="assigned"] a:has-text("评分表")', "sheet")
    await other.page.click('[data-open="dlg-decline"]')
    await other.page.fill('#dlg-decline textarea[name="reason"]', "本人曾参与该产品的需求论证")
    await other.snap("decline-dialog")
    async with other.page.expect_navigation():
        await other.page.click('[data-confirm="decline"]')
    await other.settle("declined")
    await expect(other.page.locator("[data-flash]")).to_contain_text("已声明回避")
    await expect(other.page.locator('table[data-table="assigned"] tbody tr.row-overdue, table[data-table="assigned"] tbody tr td a')).to_have_count(0)
    assert world.apps["SZ2025-000201"].declined == {"expert-03": "本人曾参与该产品的需求论证"}


async def test_the_administrator_assigns_a_panel_and_confirms_the_tiering(fake_console: FakeConsole, open_console) -> None:
    world = fake_console.world
    w = await open_console(fake_console.base_url)
    await login_as(w, "sz-admin-01")
    page = w.page
    await w.goto("/console/applications/SZ2025-000202", "panel-detail")
    await expect(page.locator("[data-actions] button")).to_have_text(["分配评审专家组"])

    async def assign(*experts: str, what: str) -> None:
        await page.click('[data-open="dlg-experts"]')
        for e in experts:
            await page.check(f'#dlg-experts input[name="experts"][value="{e}"]')
        await w.snap(f"{what}-dialog")
        async with page.expect_navigation():
            await page.click('[data-confirm="experts"]')
        await w.settle(what)

    await assign("expert-01", "expert-02", "expert-04", what="conflict-refused")
    await expect(page.locator("[data-flash]")).to_have_attribute("data-flash", "error")
    await expect(page.locator("[data-flash]")).to_contain_text("存在利益冲突，不能分配：专家 expert-04 与申报单位为同一单位")
    assert world.apps["SZ2025-000202"].experts == []
    await page.evaluate("sessionStorage.clear()")
    await page.reload()
    await assign("expert-01", "expert-02", "expert-03", what="panel-assigned")
    await expect(page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
    await expect(page.locator('table[data-table="panel"] tbody tr')).to_have_count(3)
    assert world.apps["SZ2025-000202"].experts == ["expert-01", "expert-02", "expert-03"]

    await w.click('[data-menu="awards"]', "awards")
    await w.click(f'[data-tiering="{SZ}"]', "tiering")
    table = page.locator('table[data-table="tiering"]')
    await expect(table.locator("tbody tr")).to_have_count(2)
    await expect(table.locator('tr[data-application="SZ2025-000301"]')).to_contain_text("一档")
    await expect(table.locator("[data-total]")).to_have_text("8,000,000.00")
    await expect(page.locator("[data-rule]")).to_contain_text("一档：综合得分 ≥ 85 分，最高 500.00 万元")
    await page.click("[data-confirm-tiering]")
    await w.snap("tiering-confirm")
    async with page.expect_navigation():
        await page.locator("dialog[data-confirm-box] [data-ok]").click()
    await w.settle("tiering-confirmed")
    await expect(page.locator("[data-flash]")).to_contain_text("已确认 2 项")
    assert {world.apps[n].status for n in ("SZ2025-000301", "SZ2025-000302")} == {"awaiting_publication"}
    assert world.apps["SZ2025-000302"].award_fen == 300_000_000


async def test_the_auditor(fake_console: FakeConsole, open_console) -> None:
    reviewer = Principal(subject="lg-online-01", name="张敏", roles=frozenset({StaffRole.LG_ONLINE_REVIEWER}),
                         programs=frozenset({"LG-AI-MODEL-2025"}))
    fake_console.world.record(reviewer, "decide_online_review",
                              fake_console.world.apps["LG2025-000102"], {"decision": "approve"}, "accepted")
    a = await open_console(fake_console.base_url, label="auditor")
    await login_as(a, "auditor-01")
    await expect(a.page.locator('table[data-table="audit"] tbody tr')).to_have_count(1)
    await expect(a.page.locator('table[data-table="audit"]')).to_contain_text("线上审核决定")
    await a.click("[data-verify]", "audit-verified")
    await expect(a.page.locator('[data-chain="intact"]')).to_contain_text("审计链完整")
    # The tiering and award pages in the auditor's menu, read only: no decision buttons.
    await a.click('[data-menu="tiering"]', "auditor-tiering")
    await expect(a.page.locator('table[data-table="tiering"] tbody tr')).to_have_count(2)
    await expect(a.page.locator("[data-read-only]")).to_be_visible()
    await expect(a.page.locator("[data-confirm-tiering]")).to_have_count(0)
    await a.goto("/console/applications/LG2025-000401/award", "auditor-award")
    await expect(a.page.locator("[data-computed]")).to_have_text("540,000.00")
    await expect(a.page.locator("[data-read-only]")).to_be_visible()
    await expect(a.page.locator("[data-actions]")).to_have_count(0)


async def test_logout_clears_the_session(fake_console: FakeConsole, open_console) -> None:
    w = await open_console(fake_console.base_url)
    await login_as(w, "sz-pre-01")
    await w.click('[data-action="logout"]', "logged-out")
    await expect(w.page.locator("[data-logged-out]")).to_be_visible()
    assert not [c for c in await w.page.context.cookies() if c["name"] == SESSION_COOKIE]
    await w.page.goto("/console/tasks")
    await w.page.wait_for_selector('button[data-subject="sz-pre-01"]')
    await w.snap("login-again")
