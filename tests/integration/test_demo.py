"""`subsidy demo` against the running platform (intake, review, notify with its local SMS provider,
worker as real processes on the real stack): the sample applications arrive, the bad event is
dead-lettered, and `--drive` takes an application of each program through every official's step
(Shenzhen's three experts included), as the officials, the Guangdong portal and the window would, to
a final public notice."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from cli import demo_data
from subsidy.identity.claims import StaffRole
from tests.support.review_world import LG, SZ, Official, review_world

pytestmark = pytest.mark.integration
AUDITOR = Official("demo-test-auditor", (StaffRole.AUDITOR,), (LG, SZ))


async def subsidy_demo(stack, ports: dict[str, int], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "demo", "--run-dir", str(stack.run_dir),
        "--intake-url", f"http://127.0.0.1:{ports['intake']}", "--review-url", f"http://127.0.0.1:{ports['review']}",
        "--timeout", "90", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=280)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_demo_sends_both_programs_and_drives_them_to_the_public_notice(stack, tmp_path: Path) -> None:
    async with review_world(stack, tmp_path, notify=True) as w:
        code, out, err = await subsidy_demo(stack, w.ports)
        assert code == 0, out + err
        sent = re.findall(r"sent ((?:LG|SZ)2025-9\d{5})", out)
        arrived = dict(re.findall(r"^  ((?:LG|SZ)2025-9\d{5})  via \w+ +(\w+) ", out, re.MULTILINE))
        bad = sent[-1]
        views = {no: (await w.get(AUDITOR, f"/api/applications/{no}")) for no in sent}
        dead = await w.database.fetchrow("SELECT reason FROM intake.dead_letters WHERE message_key = $1", bad)

        code_drive, driven, err_drive = await subsidy_demo(stack, w.ports, "--drive")
        assert code_drive == 0, driven + err_drive
        lg_no = re.search(r"^龙岗 \S+: (LG2025-9\d{5})$", driven, re.MULTILINE)[1]
        sz_no = re.search(r"^深圳 \S+: (SZ2025-9\d{5})$", driven, re.MULTILINE)[1]
        lg = await w.view(AUDITOR, lg_no)
        sz = await w.view(AUDITOR, sz_no)

    # Four applications of both programs (two over Kafka, two over the webhook) and the bad one.
    assert len(sent) == 5 and {no[:2] for no in sent} == {"LG", "SZ"}
    assert "over the signed webhook POST /webhooks/longgang-qyfw -> 202" in out and "on Kafka portal.shenzhen" in out
    assert arrived == {sent[0]: "online_review", sent[1]: "online_review", sent[2]: "formal_pre_review",
                       sent[3]: "formal_pre_review"}
    assert all(views[no].status_code == 200 and views[no].json()["status"] == arrived[no] for no in sent[:4])
    assert views[bad].status_code == 404 and dead["reason"] == "invalid_identifier"
    assert f"{bad} went to portal.longgang.applications.v1.dlq" in out

    # --drive: Longgang published through every official's step, the award computed by the platform
    # and confirmed by the administrator.
    assert lg["status"] == "published", driven
    closed_by = {t["step"]: t.get("closed_by") for t in lg["tasks"]}
    assert closed_by == {"online_review": "staff:lg-online-01", "back_office_review": "staff:lg-back-01",
                         "paper": "staff:lg-clerk-w03", "award": "staff:lg-admin-01", "publication": "staff:lg-admin-01"}
    # Shenzhen: a panel of three dev experts, each scoring with their own token; the platform's tiers
    # confirmed by the administrator; the list published as put up 30 days ago, so final at once.
    assert sz["status"] == "published", driven
    sz_closed = {(t["step"], t.get("closed_by")) for t in sz["tasks"]}
    assert {("expert_scoring", f"staff:expert-0{i}") for i in (1, 2, 3)} <= sz_closed, sz["tasks"]
    assert {("tiering", "staff:sz-admin-01"), ("publication", "staff:sz-admin-01")} <= sz_closed, sz["tasks"]
    assert "the platform computed the award" in driven and "确认定档" in driven
    assert "公示期按 30 天前开始计算" in driven
    assert "广东政务服务网 reports the submission" in driven and f"Done: {lg_no} published (已公示), {sz_no} published (已公示)." in driven

    # The demo's people never appear unmasked in the services' logs.
    people = demo_data.personal_values([demo_data.longgang_application(lg_no, 1), demo_data.shenzhen_application(sz_no, 1)])
    logs = "".join((tmp_path / f"{name}.log").read_text(errors="replace") for name in ("intake", "review", "notify", "worker"))
    assert people and not [v for v in people if len(v) == 18 and v in logs]
    assert "1380000" not in logs  # the demo's mobile numbers are 1380000xxxx: masked as 138****xxxx
