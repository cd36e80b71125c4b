"""Both lifecycles from the first submission to publication on the real stack, every human step
taken through review's API with tokens of the stack's local issuer (no Temporal update is called
here): the portals' events go in on Kafka, the officials act over HTTP, review's read model shows
each task to the right person and closes it with the name of whoever took it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.review.audit.chain import verify_chain
from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from tests.fixtures import events
from tests.support import experts
from tests.support.review_world import LG, SZ, Official, application_no, programs_dir, review_world

pytestmark = pytest.mark.integration
SHANGHAI = ZoneInfo("Asia/Shanghai")

LG_ONLINE = Official("lg-online-01", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_BACK = Official("lg-back-01", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG,))
LG_CLERK = Official("lg-clerk-w03", (StaffRole.WINDOW_CLERK,), (LG,), window="LG-W03")
LG_ADMIN = Official("lg-admin-01", (StaffRole.PROGRAM_ADMIN,), (LG,))
LG_AUDITOR = Official("lg-auditor-01", (StaffRole.AUDITOR,), (LG,))
SZ_PRE = Official("sz-pre-01", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
SZ_PRE_2 = Official("sz-pre-02", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
SZ_CLERK = Official("sz-clerk-ccw", (StaffRole.WINDOW_CLERK,), (SZ,), window="SZ-CIVIC-CENTER-WEST")
SZ_ADMIN = Official("sz-admin-01", (StaffRole.PROGRAM_ADMIN,), (SZ,))
SZ_EXPERT = Official("exp-01", (StaffRole.EXPERT,), (SZ,))
SZ_AUDITOR = Official("sz-auditor-01", (StaffRole.AUDITOR,), (SZ,))


def in_a_week() -> str:
    return (datetime.now(SHANGHAI) + timedelta(days=7)).date().isoformat()


def weeks_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=30)).isoformat()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@pytest.mark.shared_processes
async def test_longgang_from_submission_to_publication_through_the_api(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    # A short wait for the approval SMS's receipt (no notify runs here): the phone step comes at once.
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs_dir(tmp_path, sms_receipt_wait='"PT2S"'))}
    async with review_world(stack, tmp_path, extra_env=env, shared=True) as w:
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        task = await w.task_of(LG_ONLINE, app, "online_review")
        view = await w.view(LG_ONLINE, app)

        # Online review: a return with reasons and the notice's date, then, after the resubmission, approval.
        returned = await w.post(LG_ONLINE, f"/api/applications/{app}/decisions",
                                {"decision": "return", "reasons": ["请补充近两年财务审计报告"], "resubmit_by": in_a_week()})
        await w.send(topics.LONGGANG_APPLICATION_RESUBMITTED, app, submitted_at=now_iso())
        await w.task_of(LG_ONLINE, app, "online_review")
        approved = await w.post(LG_ONLINE, f"/api/applications/{app}/decisions", {"decision": "approve"})

        # The enterprise submits the watermarked form on the Guangdong portal.
        await w.reach(LG_ONLINE, app, "awaiting_gd_submission")
        form = await w.database.fetchrow(
            "SELECT form_id, sha256 FROM review.forms WHERE application_no = $1 ORDER BY version DESC LIMIT 1", app)
        forged = await w.send(topics.GUANGDONG_SUBMISSION_RECEIVED, app, form_id="WF-forged", form_sha256="0" * 64,
                              received_at=now_iso())  # refused by the workflow: not the form the platform issued
        await w.send(topics.GUANGDONG_SUBMISSION_RECEIVED, app, form_id=form["form_id"], form_sha256=form["sha256"],
                     received_at=now_iso())
        await w.task_of(LG_BACK, app, "back_office_review")
        with_refusal = await w.view(LG_BACK, app)
        back_office = await w.post(LG_BACK, f"/api/applications/{app}/decisions", {"decision": "approve"})

        # No delivery receipt: the back office phones the enterprise; the paper clock starts then.
        phone_task = await w.task_of(LG_BACK, app, "confirm_notice_by_phone")
        phoned = await w.post(LG_BACK, f"/api/applications/{app}/phone-confirmation", {})

        paper_task = await w.task_of(LG_CLERK, app, "paper")
        other_window = Official("lg-clerk-w04", (StaffRole.WINDOW_CLERK,), (LG,), window="LG-W04")
        wrong_window = await w.post(other_window, f"/api/applications/{app}/paper",
                                    {"copies": 2, "bound_and_stamped": True, "window_code": "LG-W03"})
        paper = await w.post(LG_CLERK, f"/api/applications/{app}/paper",
                             {"copies": 2, "bound_and_stamped": True, "form_id": form["form_id"]})

        await w.task_of(LG_ADMIN, app, "award")
        # The award is computed by the platform (issue 11); the administrator confirms it.
        award = await w.post(LG_ADMIN, f"/api/applications/{app}/award/confirm", {})
        await w.task_of(LG_ADMIN, app, "publication")
        # The notice went up weeks ago (recorded afterwards): its 5 working days are over, the list is
        # final at once (issue 13; an open period is tests/integration/test_public_notice.py's).
        published = await w.post(LG_ADMIN, f"/api/programs/{LG}/publication", {"starts_at": weeks_ago()})
        final = await w.reach(LG_AUDITOR, app, "published")

        done = (await w.get(LG_ONLINE, "/api/tasks", closed="true", page_size=100)).json()
        open_now = (await w.get(LG_ONLINE, "/api/tasks", page_size=100)).json()
        audit = (await w.get(LG_AUDITOR, "/api/audit", application_no=app, page_size=100)).json()
        chain = await verify_chain(w.database)

    assert task["program"] == LG and task["since"].endswith("+08:00") and task["deadline"] is None
    # What the reviewer reads: each finding with clause, explanation, evidence and ruleset version.
    by_rule = {f["rule"]: f for f in view["pre_checks"]}
    assert by_rule["industry_code"]["clause"] == "三(二)1" and by_rule["industry_code"]["evidence"] == {"industry_code": "6513"}
    assert all(f["explanation"] and f["ruleset_version"] for f in view["pre_checks"])
    assert view["duplicate_flags"]["flagged"] in (True, False) and "other_applications" in view["duplicate_flags"]
    assert view["versions"][0]["materials"][0]["name"] == "营业执照"
    assert view["sms"] == {"unavailable": True, "reason": "unreachable"}  # notify is not running: the page still answers
    assert view["intake"]["application_no"] == app

    assert returned.status_code == 200, returned.text
    assert returned.json() == {"status": "returned", "deadline": f"{in_a_week()}T18:00:00+08:00"}
    assert approved.status_code == 200 and approved.json()["status"] == "approved_online"
    assert back_office.status_code == 200 and back_office.json()["status"] == "awaiting_sms_delivery"
    refused_events = with_refusal["refused"]["events"]
    assert [e["reason"].split(":")[0] for e in refused_events] == ["wrong_form"] and forged["id"]
    assert phone_task["role"] == StaffRole.LG_BACK_OFFICE_REVIEWER
    assert phoned.status_code == 200, phoned.text
    assert phoned.json()["status"] == "awaiting_paper" and phoned.json()["deadline"].endswith("T18:00:00+08:00")
    assert paper_task["deadline"] == phoned.json()["deadline"] and paper_task["deadline_weekday"].startswith("星期")
    assert wrong_window.status_code == 403 and wrong_window.json()["message"] == "只能登记本窗口收取的纸质材料"
    assert paper.status_code == 200 and paper.json()["status"] == "award_calculation", paper.text
    assert award.status_code == 200 and award.json()["status"] == "awaiting_publication", award.text
    assert published.status_code == 200 and published.json()["entries"] >= 1, published.text
    assert final["status"] == "published"

    # 已办: the reviewer's two online-review tasks, closed in their name; nothing of this application open.
    mine = [t for t in done["items"] if t["application_no"] == app]
    assert [(t["step"], t["closed_by"]) for t in mine] == [("online_review", LG_ONLINE.actor_id)] * 2
    assert not [t for t in open_now["items"] if t["application_no"] == app]
    closed_by = {t["step"]: t.get("closed_by") for t in final["tasks"]}
    assert closed_by == {"online_review": LG_ONLINE.actor_id, "back_office_review": LG_BACK.actor_id,
                         "confirm_notice_by_phone": LG_BACK.actor_id, "paper": LG_CLERK.actor_id,
                         "award": LG_ADMIN.actor_id, "publication": LG_ADMIN.actor_id}
    history = [(h["kind"], h.get("to")) for h in final["history"]]
    assert ("decision", "returned") in history and ("state_change", "published") in history
    assert {h["by"] for h in final["history"] if h["kind"] == "decision"} >= {LG_ONLINE.actor_id, LG_BACK.actor_id}

    # The audit log: every action accepted, and the refused paper at the wrong window, in the chain.
    actions = [(e["action"], e["outcome"]) for e in reversed(audit["items"])]
    assert actions == [
        ("decide_online_review", "accepted"), ("decide_online_review", "accepted"), ("decide_back_office_review", "accepted"),
        ("confirm_notice_by_phone", "accepted"), ("record_paper_receipt", "refused"), ("record_paper_receipt", "accepted"),
        ("record_award", "accepted"),
    ]
    assert chain.intact


async def test_shenzhen_from_submission_to_publication_through_the_api(stack, tmp_path: Path) -> None:
    app = application_no("SZ")
    async with review_world(stack, tmp_path, notify=True) as w:
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, app)
        first_task = await w.task_of(SZ_PRE, app, "formal_pre_review")
        # The administrator gives the task to a colleague: it leaves the first reviewer's list.
        reassigned = await w.post(SZ_ADMIN, f"/api/tasks/{first_task['task_id']}/assignee", {"assignee": SZ_PRE_2.subject})
        colleague_sees = await w.task_of(SZ_PRE_2, app, "formal_pre_review")
        first_sees = [t for t in (await w.get(SZ_PRE, "/api/tasks", page_size=100)).json()["items"] if t["application_no"] == app]
        paper_requested = await w.post(SZ_PRE, f"/api/applications/{app}/decisions",
                                       {"decision": "request_paper", "reasons": ["请预约到市民中心西区窗口提交纸质材料"]})
        await w.task_of(SZ_CLERK, app, "paper")
        paper = await w.post(SZ_CLERK, f"/api/applications/{app}/paper", {"copies": 1, "bound_and_stamped": True})
        await w.task_of(SZ_PRE, app, "formal_pre_review")
        returned = await w.post(SZ_PRE, f"/api/applications/{app}/decisions",
                                {"decision": "return", "reasons": ["缺少测试报告"], "resubmit_by": in_a_week()})
        await w.send(topics.SHENZHEN_APPLICATION_RESUBMITTED, app, submitted_at=now_iso())
        await w.task_of(SZ_PRE, app, "formal_pre_review")
        passed = await w.post(SZ_PRE, f"/api/applications/{app}/decisions", {"decision": "approve"})

        await w.reach(SZ_ADMIN, app, "expert_scoring")
        await experts.register(w.database, events.SZ_APPLICANT_USCC)
        expert_before = (await w.get(SZ_EXPERT, f"/api/applications/{app}")).status_code
        assigned = await w.post(SZ_ADMIN, f"/api/applications/{app}/experts", {"experts": list(experts.PANEL)})
        expert_task = await w.task_of(SZ_EXPERT, app, "expert_scoring")
        expert_view = await w.get(SZ_EXPERT, f"/api/applications/{app}")
        # Each expert scores; the platform aggregates (weighted 81.40: tier 2) and moves the lifecycle on.
        scored = [await w.post(experts.expert(subject), f"/api/applications/{app}/scores", experts.scores(85, 80, 78))
                  for subject in experts.PANEL]
        await w.task_of(SZ_ADMIN, app, "tiering")
        tiered = await w.post(SZ_ADMIN, f"/api/programs/{SZ}/tiering/confirm", {})
        # Shenzhen applications are enlisted like Longgang's (issue 13): the administrator's
        # publication task opens, and the list is published (its period over: it went up weeks ago).
        await w.task_of(SZ_ADMIN, app, "publication")
        published = await w.post(SZ_ADMIN, f"/api/programs/{SZ}/publication", {"starts_at": weeks_ago()})
        final = await w.reach(SZ_AUDITOR, app, "published")
        publication_tasks = [t for t in final["tasks"] if t["step"] == "publication"]

    assert reassigned.status_code == 200 and colleague_sees["assignee"] == SZ_PRE_2.subject and first_sees == []
    assert paper_requested.status_code == 200 and paper_requested.json()["status"] == "awaiting_paper", paper_requested.text
    assert paper.status_code == 200 and paper.json()["status"] == "formal_pre_review", paper.text
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    assert passed.status_code == 200 and passed.json()["status"] == "expert_scoring"
    assert expert_before == 404  # not assigned yet: the application does not exist for them
    assert assigned.status_code == 200 and expert_task["step"] == "expert_scoring"
    assert expert_view.status_code == 200 and expert_view.json()["experts"] == []
    assert [r.status_code for r in scored] == [200, 200, 200], [r.text for r in scored]
    mine = [e for e in tiered.json()["confirmed"] if e["application_no"] == app]
    assert tiered.status_code == 200 and mine and mine[0]["status"] == "awaiting_publication", tiered.text
    assert mine[0]["tier"] == 2 and mine[0]["award_fen"] <= 300_000_000  # the fixture applicant's 10M may be used up on a reused stack
    assert len(publication_tasks) == 1
    assert published.status_code == 200 and published.json()["entries"] >= 1, published.text
    assert {f["clause"] for f in final["pre_checks"]} >= {"03(一)", "03(二)", "03(三)", "03(四)", "03(七)"}  # notice 03's findings
    assert isinstance(final["sms"].get("messages"), list)
    assert not [m for m in final["sms"]["messages"] if events.SZ_CONTACT_MOBILE in str(m)]
    assert {h["by"] for h in final["history"] if h["kind"] == "decision"} >= {SZ_PRE.actor_id, SZ_CLERK.actor_id, SZ_ADMIN.actor_id}
