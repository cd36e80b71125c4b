"""The console's administrator and auditor pages on the real stack (issue 12's last pages): the
查重 flag acknowledged by a reviewer, an open task reassigned by the administrator, the 期限 tab's
calendar version, the award page's rounding rule from the program's configuration, the auditor's
read-only award and tiering pages, and the objections (异议) to a notice list recorded and decided.

Officials act in the browser through the development login; what sets the scene (submissions on
Kafka, the earlier review steps and a colleague's decision) goes through the reviewers' API as
authenticated officials (tests/support). Fresh application numbers, enterprises and phone numbers
in every test; the test that publishes a list in its period (objections need one) ends its batch
at cleanup so later publications of the program start a fresh one.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import expect

from subsidy.contracts import topics
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from subsidy.identity.claims import StaffRole
from subsidy.temporal import connect
from tests.browser.conftest import Watched, login_as
from tests.support.longgang_journey import contract, fresh_uscc, longgang_data, to_award_calculation
from tests.support.review_world import LG, Official, application_no, programs_dir, review_world
from tests.support.waiting import until

pytestmark = pytest.mark.integration

LG_ONLINE = Official("lg-online-01", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_ADMIN = Official("lg-admin-01", (StaffRole.PROGRAM_ADMIN,), (LG,))
AUDITOR = Official("auditor-01", (StaffRole.AUDITOR,), (LG,))



async def confirm_box(w: Watched, what: str) -> None:
    """The console's confirm dialog (a button with data-confirm-text): photograph it, press 确定."""
    await expect(w.page.locator("dialog[data-confirm-box]")).to_be_visible()
    await w.snap(f"{what}-confirm")
    async with w.page.expect_navigation():
        await w.page.locator("dialog[data-confirm-box] [data-ok]").click()
    await w.settle(what)


async def test_a_duplicate_flag_acknowledged_and_a_task_reassigned(stack, tmp_path: Path, open_console) -> None:
    a, b = application_no("LG"), application_no("LG")
    invoice = f"2544{random.randrange(10**15):016d}"
    colleague = Official(f"lg-online-{random.randrange(10**6):06d}", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
    async with review_world(stack, tmp_path) as world:
        base = world.review
        # Two enterprises claim the same invoice (三(一)4): the platform flags both applications.
        await world.send(topics.LONGGANG_APPLICATION_SUBMITTED, a, **longgang_data(fresh_uscc(), [contract(f"HT-{a}", 10_000_000, invoice_no=invoice)]))
        await world.send(topics.LONGGANG_APPLICATION_SUBMITTED, b, **longgang_data(fresh_uscc(), [contract(f"HT-{b}", 20_000_000, invoice_no=invoice)]))
        await world.task_of(LG_ONLINE, a, "online_review")
        await world.task_of(LG_ONLINE, b, "online_review")
        await until(lambda: _flags(world, a))

        # The reviewer sees the flag in 查重 with a link to the other application, and acknowledges it.
        online = await open_console(base, label="online")
        await login_as(online, "lg-online-01")
        await online.goto(f"/console/applications/{a}?tab=duplicates", "dup-tab")
        flags = online.page.locator('table[data-table="duplicate-flags"] tbody tr[data-flag]')
        await expect(flags).to_have_count(1)
        await expect(flags).to_contain_text("三(一)4")
        await expect(flags.locator(f'a[href="/console/applications/{b}"]')).to_have_count(1)
        await expect(online.page.locator("[data-unacknowledged]")).to_contain_text("1 项待确认")
        await flags.locator('input[name="note"]').fill("已核对两份合同的发票原件，另案处理")
        async with online.page.expect_navigation():
            await flags.locator("[data-acknowledge]").click()
        await online.settle("dup-acknowledged")
        await expect(online.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await expect(flags).to_contain_text("已确认知悉")
        await expect(flags).to_contain_text("lg-online-01")  # who
        await expect(flags).to_contain_text(re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}"))  # when
        await expect(flags).to_contain_text("已核对两份合同的发票原件")
        await expect(online.page.locator("[data-unacknowledged]")).to_have_count(0)
        await online.click(f'table[data-table="duplicate-flags"] a[href="/console/applications/{b}"]', "dup-other")
        await expect(online.page.locator(".detail-head h1")).to_have_text(b)

        # A colleague of the same role has worked in the program (their decision on the other one):
        # the administrator gives them the open online review of the first.
        rejected = await world.post(colleague, f"/api/applications/{b}/decisions",
                                    {"decision": "reject", "reasons": ["与另一申报使用同一发票"]})
        assert rejected.status_code == 200, rejected.text
        admin = await open_console(base, label="admin")
        await login_as(admin, "lg-admin-01")
        await admin.goto(f"/console/applications/{a}", "reassign-detail")
        task = admin.page.locator('table[data-table="tasks"] tr[data-step="online_review"]')
        await expect(task).to_have_count(1)
        await admin.click('table[data-table="tasks"] tr[data-step="online_review"] [data-reassign-link]', "reassign-page")
        await expect(admin.page.locator("[data-assignee]")).to_contain_text("未指定")
        candidate = admin.page.locator(f'tr[data-candidate="{colleague.subject}"]')
        await expect(candidate).to_contain_text("线上审核员")
        await candidate.locator('input[name="assignee"]').check()
        await admin.page.click("[data-reassign]")
        await expect(admin.page.locator("dialog[data-confirm-box]")).to_contain_text(f"转派给 {colleague.subject}？")
        await confirm_box(admin, "reassigned")
        await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
        await expect(admin.page.locator("[data-flash]")).to_contain_text(colleague.subject)
        await expect(task.locator("[data-task-assignee]")).to_have_text(colleague.subject)

        # The task left the reviewer's 待办 and is the colleague's now.
        await online.goto("/console/tasks", "online-tasks-after")
        await expect(online.page.locator(f'tr[data-application="{a}"]')).to_have_count(0)
        theirs = (await world.get(colleague, "/api/tasks", step="online_review", page_size=100)).json()["items"]
        assert [t["assignee"] for t in theirs if t["application_no"] == a] == [colleague.subject]

        # The API audited both: the auditor reads them.
        auditor = await open_console(base, label="auditor")
        await login_as(auditor, "auditor-01")
        await auditor.page.fill('input[name="application_no"]', a)
        await auditor.click('.search-form button[type="submit"]', "audit-of-a")
        log = auditor.page.locator('table[data-table="audit"]')
        await expect(log).to_contain_text("转派待办")
        await expect(log).to_contain_text("确认已知悉重复申报提示")


async def _flags(world, app: str) -> list:
    view = await world.view(LG_ONLINE, app)
    return (view.get("duplicate_flags") or {}).get("flags") or []


async def test_award_deadlines_objections_and_the_auditor_s_read_only_pages(stack, tmp_path: Path, open_console) -> None:
    app = application_no("LG")
    phone = f"139{random.randrange(10**8):08d}"
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs_dir(tmp_path, sms_receipt_wait='"PT2S"'))}
    try:
        async with review_world(stack, tmp_path, extra_env=env) as world:
            base = world.review
            # 30% of CNY 1,000,000.03 is 300,000.009: floored (LG-AI-MODEL-2025.toml [award]) to 300,000.00.
            data = longgang_data(fresh_uscc(), [contract("HT-OBJ-01", 100_000_003)])
            await to_award_calculation(world, app, data)

            # 期限: the paper deadline with the calendar version it was counted with.
            admin = await open_console(base, label="admin")
            await login_as(admin, "lg-admin-01")
            await admin.goto(f"/console/applications/{app}?tab=deadlines", "deadlines-tab")
            stored = await world.database.fetchval(
                "SELECT calendar_version FROM review.computed_deadlines WHERE application_no = $1 AND kind = 'paper'", app)
            assert stored
            rows = admin.page.locator('table[data-table="computed-deadlines"] tbody tr')
            await expect(rows).to_have_count(1)
            await expect(rows.locator("[data-row-calendar]")).to_have_text(stored)
            await expect(rows).to_contain_text("电话通知确认")

            # The award page: the rounding rule as configured, the amount floored; confirmed.
            await admin.goto(f"/console/applications/{app}/award", "award")
            await expect(admin.page.locator("[data-rounding]")).to_have_text("按比例计算后向下取整到分")
            await expect(admin.page.locator("[data-computed]")).to_have_text("300,000.00")
            await admin.page.click("[data-confirm-award]")
            await confirm_box(admin, "award-confirmed")
            await expect(admin.page.locator("[data-confirmed]")).to_have_text("300,000.00")

            # The auditor: menu entries for the awards and the tiering, both pages without buttons.
            auditor = await open_console(base, label="auditor")
            await login_as(auditor, "auditor-01")
            await expect(auditor.page.locator('[data-menu="awards"]')).to_have_count(1)
            await expect(auditor.page.locator('[data-menu="tiering"]')).to_have_count(1)
            await auditor.click('[data-menu="awards"]', "auditor-awards")
            await auditor.page.fill('.search-form input[name="no"]', app)  # a shared stack holds many awards
            await auditor.click("[data-search]", "auditor-awards-found")
            row = auditor.page.locator(f'table[data-table="awards-read"] tr[data-application="{app}"]')
            await expect(row).to_have_count(1)
            await auditor.click(f'table[data-table="awards-read"] tr[data-application="{app}"] a', "auditor-award")
            await expect(auditor.page.locator("[data-confirmed]")).to_have_text("300,000.00")
            await expect(auditor.page.locator("[data-rounding]")).to_have_text("按比例计算后向下取整到分")
            await expect(auditor.page.locator("[data-actions]")).to_have_count(0)
            await expect(auditor.page.locator("#dlg-adjust")).to_have_count(0)
            await auditor.click('[data-menu="tiering"]', "auditor-tiering")
            await expect(auditor.page.locator("[data-rule]")).to_be_visible()
            await expect(auditor.page.locator("[data-confirm-tiering]")).to_have_count(0)
            await expect(auditor.page.locator('[data-menu="awards"]')).to_have_count(1)

            # Publication now (its period runs), from the publication page to its objections.
            await world.task_of(LG_ADMIN, app, "publication")
            await admin.click('[data-menu="publication"]', "publication")
            # Every menu entry shows its drawn line icon (a glyph could be missing from the CJK font).
            await expect(admin.page.locator("[data-menu]")).not_to_have_count(0)
            await expect(admin.page.locator("[data-menu]:not(:has(svg[data-icon] :is(path, rect, circle)))")).to_have_count(0)
            card = admin.page.locator(f'[data-program="{LG}"]')
            await expect(card).to_contain_text(app)
            await card.locator("[data-open]").click()
            await admin.snap("publish-dialog")
            async with admin.page.expect_navigation():
                await card.locator('[data-confirm="publish"]').click()
            await admin.settle("published")
            await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")
            await until(lambda: _listed(world, app))
            await admin.goto("/console/admin/publication", "publication-running")
            await expect(card.locator(f'tr[data-application="{app}"] [data-on-list]')).to_have_text("公示中")
            await expect(card.locator("[data-running]")).to_contain_text("公示期至")
            await admin.click(f'[data-objections-link="{LG}"]', "objections")
            await expect(admin.page.locator("[data-no-open-notice]")).to_have_count(0)

            # An objection received by phone, recorded by the administrator (the number masked).
            await _record_objection(admin, app, "钱七", phone, "该企业合同 HT-OBJ-01 的付款未全部完成", "objection-recorded")
            objection = admin.page.locator(f'table[data-table="objections"] tr[data-application="{app}"]')
            await expect(objection).to_have_count(1)
            await expect(objection.locator("[data-objection-status]")).to_have_text("待处理")
            await expect(objection).to_contain_text(f"{phone[:3]}****{phone[-4:]}")
            assert phone not in await admin.page.content()

            # Decided: upheld, the amount lowered; the list's version 2.
            await objection.locator("[data-decide]").click()
            oid = await objection.get_attribute("data-objection")
            dialog = admin.page.locator(f"#dlg-decide-{oid}")
            await expect(dialog.locator('[name="award_yuan"]')).to_be_hidden()  # 异议不成立 changes nothing
            await dialog.locator('[name="decision"]').select_option("uphold")
            await dialog.locator('[name="remedy"]').select_option("amount")
            await expect(dialog.locator('[name="award_yuan"]')).to_be_visible()
            await expect(dialog.locator("[data-award-limit]")).to_contain_text("不得高于当前公示金额 300,000.00 元")
            await dialog.locator('[name="award_yuan"]').fill("250,000.00")
            await dialog.locator('[name="reason"]').fill("经核查，付款凭证合计 833,333.33 元，按实际付款核减")
            await admin.snap("objection-decide-dialog")
            async with admin.page.expect_navigation():
                await dialog.locator('[data-confirm="decide"]').click()
            await admin.settle("objection-decided")
            await expect(admin.page.locator("[data-flash]")).to_contain_text("第 2 版")
            await expect(objection.locator("[data-objection-status]")).to_have_text("异议成立")
            await expect(objection).to_contain_text("资助金额调整为 250,000.00 元")
            await expect(objection).to_contain_text("lg-admin-01")
            await expect(objection.locator("[data-decide]")).to_have_count(0)

            # Both audited in the administrator's name.
            await auditor.goto(f"/console/audit?application_no={app}", "auditor-audit")
            log = auditor.page.locator('table[data-table="audit"]')
            await expect(log).to_contain_text("登记公示异议")
            await expect(log).to_contain_text("处理公示异议")

            # A second objection, still open when the enterprise withdraws during the notice period:
            # the list's next version (3) leaves the application out, so the final list never names
            # it, and the open objection closes with it (nothing is left to decide; it would keep the
            # list from becoming final); audited in the portal's name.
            await _record_objection(admin, app, "赵九", "13912345678", "项目验收报告未盖章", "objection-second")
            second = objection.filter(has=admin.page.locator('[data-objection-status="open"]'))
            await expect(second).to_have_count(1)
            await world.send(topics.LONGGANG_APPLICATION_WITHDRAWN, app, reason="企业决定放弃本次申报",
                             withdrawn_at=datetime.now(UTC).isoformat())
            await world.reach(LG_ADMIN, app, "withdrawn")
            await until(lambda: _latest_version_without(world, app))
            await admin.goto("/console/admin/objections", "objections-after-withdrawal")
            await expect(admin.page.locator("[data-no-open-notice]")).to_have_count(0)
            await expect(admin.page.locator("main")).to_contain_text("公示中（第 3 版）")
            closed = admin.page.locator(f'table[data-table="objections"] tr[data-application="{app}"]').filter(
                has=admin.page.locator('[data-objection-status="withdrawn"]'))
            await expect(closed).to_have_count(1)
            await expect(closed.locator("[data-objection-status]")).to_have_text("申报已撤回")
            await expect(closed).to_contain_text("已随撤回移出名单（第 3 版）")
            await expect(closed).to_contain_text("异议无需再处理")
            await expect(admin.page.locator("[data-decide]")).to_have_count(0)
            await admin.goto(f"/public/notices/{LG}", "public-notice-after-withdrawal")  # what the public reads
            await expect(admin.page.locator(".changes")).to_contain_text("企业撤回申报，移出公示名单")
            await expect(admin.page.locator(".changes")).to_contain_text("移出名单：")
            await expect(admin.page.locator(".changes")).to_contain_text(app)
            await expect(admin.page.locator("[data-no-entries]")).to_be_visible()  # no objection form on an empty list
            await auditor.goto(f"/console/audit?application_no={app}", "auditor-audit-withdrawn")
            await expect(log).to_contain_text("企业撤回，移出公示名单")
            await expect(log).to_contain_text("申报单位（申报系统）")
    finally:
        client = await connect(stack.temporal, stack.env["TEMPORAL_NAMESPACE"])
        try:  # the list's period ends days from now: later publications of the program start a fresh batch
            await client.get_workflow_handle(publication_batch_workflow_id(LG)).terminate(reason="test cleanup: open notice period")
        except Exception:  # noqa: BLE001 (already closed)
            pass


async def _record_objection(admin, app: str, name: str, phone: str, grounds: str, shot: str) -> None:
    """The administrator records an objection received by phone (登记异议 dialog)."""
    await admin.page.click('[data-open="dlg-record"]')
    box = admin.page.locator("#dlg-record")
    await box.locator('[name="application_no"]').select_option(app)
    await box.locator('[name="name"]').fill(name)
    await box.locator('[name="phone"]').fill(phone)
    await box.locator('[name="organisation"]').fill("深圳市某科技有限公司")
    await box.locator('[name="grounds"]').fill(grounds)
    await admin.snap(f"{shot}-dialog")
    async with admin.page.expect_navigation():
        await box.locator('[data-confirm="record"]').click()
    await admin.settle(shot)
    await expect(admin.page.locator("[data-flash]")).to_have_attribute("data-flash", "success")


async def _latest_version_without(world, app: str) -> bool:
    """The program's latest list has a newer version than the objection's (2), without `app`."""
    latest = await _latest_list(world)
    return latest is not None and latest[0] >= 3 and app not in latest[1]


async def _listed(world, app: str) -> bool:
    latest = await _latest_list(world)
    return latest is not None and app in latest[1]


async def _latest_list(world) -> tuple[int, list[str]] | None:
    """The latest version of the program's latest list (which objections go to), while not final:
    its number and the applications on it."""
    answer = await world.get(LG_ADMIN, f"/api/programs/{LG}/notice")
    lists = answer.json().get("lists", []) if answer.status_code == 200 else []
    current = lists[0] if lists else None
    if current is None or current["final_version"] is not None:
        return None
    view = await world.get(LG_ADMIN, f"/api/programs/{LG}/notice/versions/{current['latest_version']}", notice_id=current["notice_id"])
    if view.status_code != 200:
        return None
    return current["latest_version"], [e["application_no"] for e in view.json()["entries"]]
