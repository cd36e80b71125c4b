"""Shenzhen's eligibility findings, expert review, scores and tiers on the real stack, through
review's API only (tokens of the stack's local issuer; no Temporal update called here): notice 03's
findings shown to the pre-reviewer with their clauses; a panel of three with conflicted experts
refused at assignment and a decline replaced; each expert scores once, sees only their own scores;
the platform aggregates and moves the lifecycle on; the administrator confirms the batch's tiers
and amounts, three products of one applicant held to CNY 10M together (02(四)); an expert's view
of the product (API and console) names no other expert and shows none of their scores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.review.audit.chain import verify_chain
from services.review.awards.shenzhen import ScoredProduct, shenzhen_amounts
from services.review.console.routes import SESSION_COOKIE
from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from subsidy.programs import programs
from tests.support import experts as ex
from tests.support.review_world import SZ, Official, ReviewWorld, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]

PRE = Official("sz-pre-31", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
ADMIN = Official("sz-admin-31", (StaffRole.PROGRAM_ADMIN,), (SZ,))
AUDITOR = Official("sz-auditor-31", (StaffRole.AUDITOR,), (SZ,))
E1, E2, E3, E5 = (ex.expert(s) for s in (*ex.PANEL, ex.REPLACEMENT))
E2_NOTE = "（林二另注：测试报告样本偏少）"  # exp-02's own words: never shown to another expert
# Personal data an official writes into free text: stored and audited masked, never as typed.
MOBILE, ID_NUMBER = "13800138000", "11010519491231002X"
MOBILE_MASKED, ID_MASKED = "138****8000", "1101**********002X"
E1_NOTE = f"，已电话联系 {MOBILE} 核实，法人身份证 {ID_NUMBER}"
DECLINE_REASON = f"本人曾参与该产品的需求论证，可致电 {MOBILE}，身份证 {ID_NUMBER}"

NOTICE_03 = {
    "shenzhen_entity": "03(一)", "business_line": "03(一)", "scenario_in_catalog": "03(二)", "in_real_use": "03(二)",
    "not_government_funded": "03(三)", "no_multi_source_claim": "03(四)", "consortium_lead": "03(七)",
}


async def submitted_and_approved(w: ReviewWorld, app: str, uscc: str, product: str, *, key: str = "new") -> dict:
    """Submitted by the portal, passed by the formal pre-reviewer (with Idempotency-Key `key`, or a
    new one); returns the pre-reviewer's view before deciding."""
    product_facts = {"name": product, "scenario_id": f"SZGOV-AI-2025-{app[-3:]}", "scenario_published_on": "2025-03-15",
                     "in_use_since": "2025-08-01", "government_funded": False, "test_report_file_ids": ["f-31"],
                     "user_report_file_ids": ["f-32"]}
    await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, app, applicant=ex.applicant(uscc), product=product_facts)
    await w.task_of(PRE, app, "formal_pre_review")
    view = await _with_findings(w, app)
    approved = await w.post(PRE, f"/api/applications/{app}/decisions", {"decision": "approve"}, key=key)
    assert approved.status_code == 200, approved.text
    return view


async def _with_findings(w: ReviewWorld, app: str, timeout: float = 30) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await w.view(PRE, app)
        if view["pre_checks"]:
            return view
        assert loop.time() < deadline, f"no findings for {app}"
        await asyncio.sleep(0.25)


async def scored_by(w: ReviewWorld, app: str, panel: list[tuple[Official, tuple[int, int, int]]]) -> None:
    for who, points in panel:
        response = await w.post(who, f"/api/applications/{app}/scores", ex.scores(*points))
        assert response.status_code == 200, response.text


async def test_a_shenzhen_product_from_eligibility_to_its_amount_through_the_api(stack, tmp_path: Path) -> None:
    uscc = ex.applicant_uscc()
    a, b, c = application_no("SZ"), application_no("SZ"), application_no("SZ")
    async with review_world(stack, tmp_path, shared=True) as w:
        await ex.register(w.database, uscc)
        views = {app: await submitted_and_approved(w, app, uscc, name)
                 for app, name in ((a, "政务智能问答平台"), (b, "政务公文辅助写作系统"), (c, "12345热线智能分派系统"))}
        for app in (a, b, c):
            await w.reach(ADMIN, app, "expert_scoring")
        panel_task = await w.task_of(ADMIN, a, "expert_scoring")

        # The panel: conflicted experts refused (the applicant's own employee, a declared link), too
        # small a panel refused, then three independent experts.
        conflicted = await w.post(ADMIN, f"/api/applications/{a}/experts", {"experts": [ex.PANEL[0], ex.OWN_ORGANISATION, ex.AFFILIATED]})
        too_few = await w.post(ADMIN, f"/api/applications/{a}/experts", {"experts": [ex.PANEL[0], ex.PANEL[1]]})
        unknown = await w.post(ADMIN, f"/api/applications/{a}/experts", {"experts": [*ex.PANEL[:2], "exp-99"]})
        not_yet = (await w.get(E1, f"/api/applications/{a}")).status_code
        assigned = await w.post(ADMIN, f"/api/applications/{a}/experts", {"experts": list(ex.PANEL)})
        e1_task = await w.task_of(E1, a, "expert_scoring")
        admin_open_after = [t for t in (await w.get(ADMIN, "/api/tasks", step="expert_scoring", page_size=100)).json()["items"]
                            if t["application_no"] == a]

        # exp-03 declines, declaring a conflict: the administrator's task again, a replacement.
        declined = await w.post(E3, f"/api/applications/{a}/expert-assignment/decline", {"reason": DECLINE_REASON})
        e3_after = (await w.get(E3, f"/api/applications/{a}")).status_code
        await w.task_of(ADMIN, a, "expert_scoring")
        replaced = await w.post(ADMIN, f"/api/applications/{a}/experts", {"experts": [ex.REPLACEMENT]})

        incomplete = await w.post(ADMIN, f"/api/applications/{a}/scores/aggregate")
        # Scores: not assigned -> 404; a justification is required; once only; only one's own to see.
        not_assigned = await w.post(E1, f"/api/applications/{b}/scores", ex.scores(90, 90, 90))
        no_reason = ex.scores(90, 88, 86)
        no_reason["criteria"]["innovation"]["justification"] = "  "
        unjustified = await w.post(E1, f"/api/applications/{a}/scores", no_reason)
        out_of_scale = await w.post(E1, f"/api/applications/{a}/scores", ex.scores(101, 88, 86))
        first = await w.post(E1, f"/api/applications/{a}/scores", ex.scores(90, 88, 86, note=E1_NOTE), key=f"score-e1-{a}")
        same_key = await w.post(E1, f"/api/applications/{a}/scores", ex.scores(90, 88, 86, note=E1_NOTE), key=f"score-e1-{a}")
        again = await w.post(E1, f"/api/applications/{a}/scores", ex.scores(60, 60, 60))
        e2_scored = await w.post(E2, f"/api/applications/{a}/scores", ex.scores(92, 85, 88, note=E2_NOTE))
        await scored_by(w, a, [(E5, (88, 90, 84))])
        e1_sees = (await w.get(E1, f"/api/applications/{a}/scores")).json()
        e1_closed = [t for t in (await w.get(E1, "/api/tasks", closed="true", page_size=100)).json()["items"] if t["application_no"] == a]
        at_tiering = await w.reach(ADMIN, a, "tiering")
        admin_sees = (await w.get(ADMIN, f"/api/applications/{a}/scores")).json()
        recorded_already = await w.post(ADMIN, f"/api/applications/{a}/scores/aggregate")
        auditor_sees = (await w.get(AUDITOR, f"/api/applications/{a}/scores")).status_code

        # The applicant's two other products: tier 1 and tier 2.
        for app, marks in ((b, ((95, 90, 88), (90, 86, 92), (88, 92, 90))), (c, ((80, 75, 76), (78, 76, 74), (82, 74, 78)))):
            assert (await w.post(ADMIN, f"/api/applications/{app}/experts", {"experts": [ex.PANEL[0], ex.PANEL[1], ex.REPLACEMENT]})).status_code == 200
            await scored_by(w, app, list(zip((E1, E2, E5), marks, strict=True)))
        for app in (b, c):
            await w.reach(ADMIN, app, "tiering")
        await w.task_of(ADMIN, a, "tiering")

        # Tiering: the proposal, then the administrator confirms; the lifecycles move on.
        typed_in = await w.post(ADMIN, f"/api/applications/{a}/tier", {"tier": 1, "award_fen": 500_000_000})
        expert_confirms = await w.post(E1, f"/api/programs/{SZ}/tiering/confirm", {})
        proposal = (await w.get(ADMIN, f"/api/programs/{SZ}/tiering")).json()
        everyone = [p["application_no"] for p in proposal["products"]]
        confirmed = await w.post(ADMIN, f"/api/programs/{SZ}/tiering/confirm", {"applications": everyone})
        finals = {app: await w.reach(AUDITOR, app, "awaiting_publication") for app in (a, b, c)}
        nothing_left = await w.post(ADMIN, f"/api/programs/{SZ}/tiering/confirm", {})
        admin_view = await w.view(ADMIN, a)
        admin_text = json.dumps(admin_view, ensure_ascii=False)
        # exp-01 reads the product after the panel, the tiers and the amounts: only their own part.
        e1_view = await w.view(E1, a)
        e1_pages = {tab: await w.http.get(f"{w.review}/console/applications/{a}", params={"tab": tab},
                                          headers={"cookie": f"{SESSION_COOKIE}={w.token(E1)}"}) for tab in ("basic", "history")}
        e1_intake = await w.http.get(f"http://127.0.0.1:{w.ports['intake']}/applications/{a}",
                                     headers={"authorization": f"Bearer {w.token(E1)}"})
        auditor_intake = await w.http.get(f"http://127.0.0.1:{w.ports['intake']}/applications/{a}",
                                          headers={"authorization": f"Bearer {w.token(AUDITOR)}"})
        audit = (await w.get(AUDITOR, "/api/audit", application_no=a, page_size=100)).json()["items"]
        refused_rows = await w.database.fetch(
            "SELECT action, reason FROM review.audit_chain WHERE application_no = $1 AND outcome = 'refused' ORDER BY seq", a)
        stored = await w.database.fetch(
            """SELECT 'decisions' AS place, action, input::text AS text FROM review.decisions WHERE application_no = $1
               UNION ALL SELECT 'audit', action, input::text || coalesce(reason, '') FROM review.audit_chain WHERE application_no = $1
               UNION ALL SELECT 'assignment', 'decline', coalesce(decline_reason, '') FROM review.expert_assignments WHERE application_no = $1
               UNION ALL SELECT 'scores', 'submit_score', scores::text FROM review.expert_scores WHERE application_no = $1""",
            a)
        chain = await verify_chain(w.database)

    # Notice 03's findings, with their clauses, for the pre-reviewer.
    findings = {f["rule"]: f for f in views[a]["pre_checks"]}
    assert {rule: f["clause"] for rule, f in findings.items()} == NOTICE_03
    assert findings["shenzhen_entity"]["passed"] and "深圳市" in findings["shenzhen_entity"]["explanation"]
    assert not findings["scenario_in_catalog"]["passed"]  # no scenario catalog imported: a person checks
    assert findings["scenario_in_catalog"]["detail"] == "needs_person"
    assert findings["in_real_use"]["evidence"]["in_use_since"] == "2025-08-01"
    assert all(f["ruleset_version"].startswith(SZ) for f in findings.values())

    # The panel.
    assert conflicted.status_code == 422 and conflicted.json()["code"] == "conflict_of_interest", conflicted.text
    assert ex.OWN_ORGANISATION in conflicted.json()["message"] and ex.AFFILIATED in conflicted.json()["message"]
    assert "利益冲突" in conflicted.json()["message"]
    assert too_few.status_code == 422 and too_few.json()["code"] == "too_few_experts"
    assert unknown.status_code == 422 and unknown.json()["code"] == "expert_not_registered"
    assert not_yet == 404
    assert panel_task["role"] == "program_admin"
    assert assigned.status_code == 200 and assigned.json()["panel"] == sorted(ex.PANEL), assigned.text
    assert e1_task["assignee"] == ex.PANEL[0]
    assert admin_open_after == []  # the panel is composed: the administrator's task closed
    assert declined.status_code == 200 and e3_after == 404, declined.text
    assert replaced.status_code == 200 and replaced.json()["panel"] == sorted([ex.PANEL[0], ex.PANEL[1], ex.REPLACEMENT])
    assert [r["reason"].split(":")[0] for r in refused_rows[:3]] == ["conflict_of_interest", "too_few_experts", "expert_not_registered"]

    # Scores.
    assert not_assigned.status_code == 404
    assert unjustified.status_code == 422 and out_of_scale.status_code == 422
    assert first.status_code == 200 and same_key.json() == first.json() and first.json()["weighted_score"] == "88.20"
    assert again.status_code == 409 and again.json()["code"] == "already_scored"
    assert e2_scored.status_code == 200, e2_scored.text
    assert [s["expert"] for s in e1_sees["scores"]] == [ex.PANEL[0]] and "panel" not in e1_sees  # never the others'
    assert e1_closed and e1_closed[0]["closed_by"] == E1.actor_id
    assert {s["expert"] for s in admin_sees["scores"]} == {ex.PANEL[0], ex.PANEL[1], ex.REPLACEMENT}
    assert admin_sees["product_score"]["tier"] == 1 and admin_sees["product_score"]["recorded"]
    assert admin_sees["product_score"]["excluded_experts"] == 3  # two refused at assignment, one declined
    assert auditor_sees == 200
    assert incomplete.status_code == 409 and incomplete.json()["code"] == "panel_incomplete"
    assert recorded_already.status_code == 409 and recorded_already.json()["code"] == "wrong_state"
    moved = [h for h in at_tiering["history"] if h["kind"] == "state_change" and h["to"] == "tiering"]
    assert moved and moved[0]["by"] == "system:review"
    assert moved[0]["reason"] == f"product_score:{admin_sees['product_score']['score']}"  # the score that set the tier

    # Tiers and amounts: A and B tier 1 (5M), C tier 2 (3M) = 13M, held to the applicant's 10M (02(四)).
    assert typed_in.status_code in (404, 405)  # the typed-in tier endpoint is gone
    assert expert_confirms.status_code in (403, 404)
    mine = {p["application_no"]: p for p in proposal["products"] if p["application_no"] in (a, b, c)}
    assert {app: mine[app]["tier"] for app in mine} == {a: 1, b: 1, c: 2}
    expected = shenzhen_amounts([ScoredProduct(application_no=app, applicant_uscc=uscc, tier=mine[app]["tier"]) for app in sorted(mine)],
                                programs()[SZ].scoring)  # type: ignore[arg-type]
    assert {app: mine[app]["amount_fen"] for app in mine} == {line.application_no: line.amount_fen for line in expected.lines}
    assert sum(mine[app]["amount_fen"] for app in mine) == 1_000_000_000
    assert all(mine[app]["amount_fen"] <= mine[app]["tier_max_fen"] for app in mine)
    assert proposal["rule"]["amount_rule"] == "tier_maximum_then_prorate"
    assert confirmed.status_code == 200 and confirmed.json()["failed"] == [], confirmed.text
    awarded = {e["application_no"]: e["award_fen"] for e in confirmed.json()["confirmed"]}
    assert {app: awarded[app] for app in (a, b, c)} == {app: mine[app]["amount_fen"] for app in mine}
    for app, final in finals.items():
        change = [h for h in final["history"] if h["kind"] == "state_change" and h["to"] == "awaiting_publication"][0]
        assert change["by"] == ADMIN.actor_id
        assert change["fields"].get("award_fen") == mine[app]["amount_fen"], change
    assert nothing_left.status_code == 409 and nothing_left.json()["code"] == "empty"
    # An expert never reads another expert's id, name, points or justification, nor the panel's
    # result (the API, and the console's pages drawn from it); their own part stays.
    others = (*ex.PANEL[1:], ex.REPLACEMENT, ex.OWN_ORGANISATION, ex.AFFILIATED, "林二", "黄三", "吴五", "郑六")  # 周四 (exp-04) reads as Thursday
    e1_text = json.dumps(e1_view, ensure_ascii=False)
    assert [word for word in (*others, E2_NOTE, "本人曾参与该产品的需求论证", "product_score:", "award_fen") if word in e1_text] == []
    assert e1_view["experts"] == [] and {t["assignee"] for t in e1_view["tasks"]} == {ex.PANEL[0]}
    e1_decisions = [h for h in e1_view["history"] if h["kind"] == "decision"]
    assert [(d["action"], d["subject"]) for d in e1_decisions] == [("submit_score", ex.PANEL[0])]
    assert e1_decisions[0]["input"]["criteria"]["practicality"]["points"] == 90
    assert {r["subject"] for r in e1_view["refused"]["decisions"]} == {ex.PANEL[0]}  # their own refused attempts
    assert [h["to"] for h in e1_view["history"] if h["kind"] == "state_change"][-2:] == ["tiering", "awaiting_publication"]
    for tab, page in e1_pages.items():
        assert page.status_code == 200, (tab, page.text[:500])
        assert [word for word in (*others, E2_NOTE, "本人曾参与该产品的需求论证") if word in page.text] == [], tab
    assert ex.PANEL[0] in e1_pages["history"].text and "提交专家评分" in e1_pages["history"].text
    # Intake's own view, asked directly: the timeline, without the panel's result for an expert.
    assert e1_intake.status_code == 200 and auditor_intake.status_code == 200
    assert "product_score:" not in e1_intake.text and "award_fen" not in e1_intake.text
    assert f"product_score:{admin_sees['product_score']['score']}" in auditor_intake.text and "award_fen" in auditor_intake.text
    assert [h["what"] for h in e1_intake.json()["history"] if h["kind"] == "state"] == \
        [h["what"] for h in auditor_intake.json()["history"] if h["kind"] == "state"]
    assert E2_NOTE in admin_text and ex.PANEL[1] in admin_text  # the administrator reads everything
    declined_seen = [e for e in admin_view["experts"] if e["expert"] == ex.PANEL[2]]
    masked_reason = DECLINE_REASON.replace(MOBILE, MOBILE_MASKED).replace(ID_NUMBER, ID_MASKED)
    assert declined_seen and declined_seen[0]["declined_at"] and declined_seen[0]["decline_reason"] == masked_reason
    # The ID and mobile numbers an expert wrote (a justification, a decline reason) are kept masked
    # in review.decisions, the audit chain, the assignments, the scores and all the administrator reads.
    assert [(r["place"], r["action"]) for r in stored if MOBILE in r["text"] or ID_NUMBER in r["text"]] == []
    assert MOBILE not in admin_text and ID_NUMBER not in admin_text
    for place in ("decisions", "audit"):
        for action in ("decline_assignment", "submit_score"):
            text = " ".join(r["text"] for r in stored if (r["place"], r["action"]) == (place, action))
            assert MOBILE_MASKED in text and ID_MASKED in text, (place, action, text)
    assert {s["expert"]: s["criteria"]["practicality"]["justification"] for s in admin_sees["scores"]}[ex.PANEL[0]].endswith(
        E1_NOTE.replace(MOBILE, MOBILE_MASKED).replace(ID_NUMBER, ID_MASKED))
    accepted = {(e["action"], e["subject"]) for e in audit if e["outcome"] == "accepted"}
    assert {("assign_expert", ADMIN.subject), ("decline_assignment", E3.subject), ("submit_score", E1.subject),
            ("record_expert_scoring", "review_service"), ("confirm_tiering", ADMIN.subject)} <= accepted, accepted
    assert chain.intact


async def test_a_panel_result_the_lifecycle_could_not_take_is_asked_again_by_the_platform(stack, tmp_path: Path) -> None:
    """The last expert scores while Temporal is unreachable (as under load, when the lifecycle stays
    busy past review's window): the score is kept and answered, but the lifecycle never heard of the
    panel's result. Found by the lifecycle benchmark: nothing told anyone, and the program's tiering
    waited for that product for good. Review's `panel_results` loop asks again once Temporal is
    back, with the same update id; no administrator acts."""
    from deploy.embedded import stack as embedded_stack

    uscc = ex.applicant_uscc()
    app = application_no("SZ")
    async with review_world(stack, tmp_path, review_env={"PANEL_RESULT_RETRY_SECONDS": "1"}) as w:
        await ex.register(w.database, uscc)
        await submitted_and_approved(w, app, uscc, "政务热线智能质检系统")
        await w.reach(ADMIN, app, "expert_scoring")
        assert (await w.post(ADMIN, f"/api/applications/{app}/experts", {"experts": list(ex.PANEL)})).status_code == 200
        await scored_by(w, app, [(E1, (90, 88, 86)), (E2, (92, 85, 88))])

        embedded_stack.stop_component("temporal", stack.run_dir)
        try:
            last = await w.post(E3, f"/api/applications/{app}/scores", ex.scores(88, 90, 84))
            stuck = await w.database.fetchrow(
                "SELECT recorded_at, score_text FROM review.product_scores WHERE application_no = $1", app)
            still = (await w.view(ADMIN, app))["status"]
        finally:
            embedded_stack.up(stack.run_dir)  # the same port, from its database file

        at_tiering = await w.reach(ADMIN, app, "tiering", timeout=120)
        recorded = await w.database.fetchrow("SELECT recorded_at FROM review.product_scores WHERE application_no = $1", app)
        decisions = await w.database.fetchval(
            "SELECT count(*) FROM review.decisions WHERE idempotency_key = $1", f"platform/sz-expert-scoring:{app}")
        asked_by_admin = await w.database.fetchval(
            "SELECT count(*) FROM review.audit_chain WHERE application_no = $1 AND action = 'record_panel_result'", app)

    assert last.status_code == 200 and last.json()["submitted"], last.text  # the expert's score is kept either way
    assert stuck is not None and stuck["recorded_at"] is None and stuck["score_text"]
    assert still == "expert_scoring"
    moved = [h for h in at_tiering["history"] if h["kind"] == "state_change" and h["to"] == "tiering"]
    assert moved and moved[0]["by"] == "system:review"
    assert recorded["recorded_at"] is not None and decisions == 1 and asked_by_admin == 0


async def test_an_idempotency_key_equal_to_a_platform_update_id_cannot_take_the_platforms_place(stack, tmp_path: Path) -> None:
    """The pre-reviewer approves with `Idempotency-Key: sz-expert-scoring:<no>`, a key the API's
    pattern takes and the update id the platform records the panel's result under. When the keys
    were the update ids, the panel's result, later, got that approval's answer from the lifecycle,
    nothing was recorded, and the product stayed at 专家评审 for good; the approval's row also took
    the platform's place in review.decisions (no record_expert_scoring, no audit row)."""
    uscc = ex.applicant_uscc()
    app = application_no("SZ")
    async with review_world(stack, tmp_path, shared=True) as w:
        await ex.register(w.database, uscc)
        await submitted_and_approved(w, app, uscc, "政务服务智能导办系统", key=f"sz-expert-scoring:{app}")
        await w.reach(ADMIN, app, "expert_scoring")
        assert (await w.post(ADMIN, f"/api/applications/{app}/experts", {"experts": list(ex.PANEL)})).status_code == 200
        await scored_by(w, app, [(E1, (90, 88, 86)), (E2, (92, 85, 88)), (E3, (88, 90, 84))])
        at_tiering = await w.reach(ADMIN, app, "tiering", timeout=45)
        recorded = await w.database.fetch(
            "SELECT actor_id, action FROM review.decisions WHERE application_no = $1 AND action = 'record_expert_scoring'", app)
        audited = await w.database.fetchval(
            "SELECT count(*) FROM review.audit_chain WHERE application_no = $1 AND action = 'record_expert_scoring'", app)

    moved = [h for h in at_tiering["history"] if h["kind"] == "state_change" and h["to"] == "tiering"]
    assert moved and moved[0]["by"] == "system:review"
    assert [tuple(r) for r in recorded] == [("system:review", "record_expert_scoring")] and audited == 1


async def test_each_tiering_round_is_prorated_against_what_earlier_rounds_left_of_the_budget(stack) -> None:
    """02(一): `budget_fen` is the year's budget. The reviewer's case, on PostgreSQL with review's own
    queries: CNY 5M, three tier-1 products at tiering; round 1 records two of them (the third's
    record_tiering failed). Round 2 sees the third and a fourth that reached tiering since (the first
    one's applicant): prorated against the 166,666,666 fen left, not the whole 5M (which gave 8.33M
    recorded in the year); the applicant's 10M cap counts what round 1 recorded for it."""
    from uuid import uuid4

    import asyncpg

    from services.review import repository
    from services.review.scoring.service import _compute

    program = f"SZ-ROUNDS-{uuid4().hex[:8]}"  # a program of its own: nothing else on the shared stack counts against it
    scoring = programs()[SZ].scoring.model_copy(update={"budget_fen": 500_000_000})  # type: ignore[union-attr]
    apps = sorted({application_no("SZ") for _ in range(8)})[:4]
    owners = dict(zip(apps, (f"U1-{program}", f"U2-{program}", f"U3-{program}", f"U1-{program}"), strict=True))

    async def at_tiering(conn: asyncpg.Connection, app: str) -> None:
        await conn.execute("INSERT INTO review.applications (application_no, program, status, status_since) VALUES ($1, $2, 'tiering', now())",
                           app, program)
        await repository.store_product_score(conn, program=program, application_no=app, applicant_uscc=owners[app], score_units=9000,
                                             score_text="90.00", tier=1, criteria={}, excluded=0, breakdown={})

    async def confirmed(conn: asyncpg.Connection, amounts, recorded: list[str]) -> None:  # as confirm_tiering keeps them
        for line in amounts.lines:
            await repository.store_tier_amount(conn, program=program, application_no=line.application_no, applicant_uscc=line.applicant_uscc,
                                               cap_year=scoring.cap_year, tier=line.tier, amount_fen=line.amount_fen, breakdown={},
                                               idempotency_key=f"k-{program}", confirmed_by="admin")
        for app in recorded:
            await repository.mark_tier_amount_recorded(conn, app)

    conn = await asyncpg.connect(stack.database_url)
    try:
        for app in apps[:3]:
            await at_tiering(conn, app)
        rows1, round1, _ = await _compute(conn, program, scoring)
        await confirmed(conn, round1, recorded=apps[:2])
        await at_tiering(conn, apps[3])
        rows2, round2, already2 = await _compute(conn, program, scoring)
        await confirmed(conn, round2, recorded=[apps[2], apps[3]])
        year = await conn.fetchval("SELECT sum(amount_fen) FROM review.tier_amounts WHERE program = $1 AND recorded_at IS NOT NULL", program)
        rows3, _, _ = await _compute(conn, program, scoring)
    finally:
        await conn.close()

    assert [r["application_no"] for r in rows1] == apps[:3]
    assert [line.amount_fen for line in round1.lines] == [166_666_667, 166_666_667, 166_666_666]
    assert [r["application_no"] for r in rows2] == [apps[2], apps[3]]
    assert already2 == {owners[apps[0]]: 166_666_667}  # 02(四): the applicant's round-1 amount counts
    assert year == 500_000_000 and rows3 == []  # the year's recorded amounts: exactly the budget
    assert round2.total_fen == 166_666_666 and [line.amount_fen for line in round2.lines] == [83_333_333, 83_333_333]
    assert round1.budget_used_fen == 0 and round1.total_fen == 500_000_000
    assert round2.budget_used_fen == 333_333_334 and round2.budget_available_fen == 166_666_666
