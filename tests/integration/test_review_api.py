"""Review's API on the real stack: the role x action matrix, token attacks, two officials deciding
at once, the same Idempotency-Key twice. Every call goes through HTTP with local-issuer tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.review.api.access import PERMISSIONS, Action
from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import LocalIssuer
from tests.support.review_world import LG, SZ, Official, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]


@pytest.fixture(scope="module")
async def world(stack, tmp_path_factory: pytest.TempPathFactory):
    """One platform for this module's tests (each works on its own applications): its processes
    start once, and their logs are checked for personal data when the module ends."""
    async with review_world(stack, tmp_path_factory.mktemp("review-api"), shared=True) as w:
        yield w


def official(role: StaffRole, program: str) -> Official:
    window = ("LG-W03" if program == LG else "SZ-CIVIC-CENTER-WEST") if role is StaffRole.WINDOW_CLERK else None
    return Official(f"m-{role.value}-{program[:2].lower()}", (role,), (program,), window)


# Each action endpoint on an application, with a body that passes no validation: an official whose
# role takes the action gets past the access wall and is refused for the input (422) or the step
# (409); nothing changes. Everyone else: 403 in the program, 404 outside it.
ENDPOINTS: list[tuple[Action, str, dict]] = [
    (Action.DECIDE_ONLINE_REVIEW, "decisions", {"decision": "return"}),  # a return needs reasons and a date
    (Action.CONFIRM_NOTICE_BY_PHONE, "phone-confirmation", {"reached_at": "not a time"}),
    (Action.RECORD_PAPER_RECEIPT, "paper", {}),
    (Action.RECORD_AWARD, "award/confirm", {"adjusted_award_fen": -1}),  # computed by the platform; confirmed or adjusted
    (Action.ASSIGN_EXPERT, "experts", {}),
    (Action.SUBMIT_SCORE, "scores", {}),
    (Action.DECLINE_ASSIGNMENT, "expert-assignment/decline", {}),
    (Action.RECORD_PANEL_RESULT, "scores/aggregate", {}),
]


async def test_role_by_action_matrix_and_token_attacks(stack, world) -> None:
    app = application_no("LG")
    results: dict[tuple[StaffRole, str, str], int] = {}
    w = world
    await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    task = await w.task_of(official(StaffRole.LG_ONLINE_REVIEWER, LG), app, "online_review")
    for program in (LG, SZ):
        for role in StaffRole:
            who = official(role, program)
            for action, path, body in ENDPOINTS:
                results[(role, program, action.value)] = (await w.post(who, f"/api/applications/{app}/{path}", body)).status_code
            results[(role, program, "reassign_task")] = (await w.post(who, f"/api/tasks/{task['task_id']}/assignee", {})).status_code
            results[(role, program, "publish")] = (await w.post(who, f"/api/programs/{LG}/publication", {"notice_id": ""})).status_code
            results[(role, program, "confirm_tiering")] = (await w.post(who, f"/api/programs/{LG}/tiering/confirm", {})).status_code
            results[(role, program, "view_application")] = (await w.get(who, f"/api/applications/{app}")).status_code
            results[(role, program, "view_tasks")] = (await w.get(who, "/api/tasks")).status_code
            results[(role, program, "read_audit")] = (await w.get(who, "/api/audit")).status_code
    refused_rows = await w.database.fetchval(
        "SELECT count(*) FROM review.audit_chain WHERE application_no = $1 AND outcome = 'refused'", app)
    still = (await w.view(official(StaffRole.AUDITOR, LG), app))["status"]

    # Token attacks: every one is a 401, before anything else is looked at.
    url = f"/api/applications/{app}"
    reviewer = official(StaffRole.LG_ONLINE_REVIEWER, LG)
    good = w.token(reviewer)
    header, payload, _sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other_key = LocalIssuer(ec.generate_private_key(ec.SECP256R1()), stack.env["OIDC_ISSUER"])
    jwk = w.issuer.jwks()["keys"][0]  # what anyone can fetch: the public key, made PEM for the attack
    public_pem = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk)).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    attacks = {
        "none": None,
        "garbage": "not.a.token",
        "expired": w.issuer.mint(subject="x", roles=[StaffRole.LG_ONLINE_REVIEWER], programs=[LG], now=time.time() - 7200),
        "other_key": other_key.mint(subject="x", roles=[StaffRole.LG_ONLINE_REVIEWER], programs=[LG]),
        "alg_none": jwt.encode(claims, None, algorithm="none", headers={"kid": w.issuer.kid}),
        "hs256_public_key": _hs256(claims, public_pem, w.issuer.kid),
        "tampered": ".".join([header, base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["auditor"]}).encode()).decode().rstrip("="), _sig]),
    }
    statuses = {}
    for name, token in attacks.items():
        headers = {"authorization": f"Bearer {token}"} if token else {}
        statuses[name] = (await w.http.get(w.review + url, headers=headers)).status_code
    statuses["good"] = (await w.http.get(w.review + url, headers={"authorization": f"Bearer {good}"})).status_code

    passes = {}
    for (role, program, action), status in results.items():
        granted = Action(action) in PERMISSIONS[role]
        if program == SZ:
            expected = {200} if action == "view_tasks" else ({403} if action == "read_audit" and role is not StaffRole.AUDITOR else {404})
            if action == "read_audit" and role is StaffRole.AUDITOR:
                expected = {200}  # an auditor of SZ reads SZ's log (nothing of this application)
        elif action in ("view_tasks",):
            expected = {200}
        elif action == "view_application":
            expected = {404} if role is StaffRole.EXPERT else {200}  # an expert sees only assigned applications
        elif action == "read_audit":
            expected = {200} if granted else {403}
        elif role is StaffRole.EXPERT and action not in ("publish", "reassign_task", "confirm_tiering"):
            expected = {404}  # not assigned: the application does not exist for them
        else:
            expected = {409, 422} if granted else {403}
        passes[(role.value, program, action)] = (status, status in expected)
    failures = {k: v[0] for k, v in passes.items() if not v[1]}
    assert not failures, failures
    assert refused_rows >= sum(1 for (_r, _p, a), s in results.items() if s in (403, 404, 409, 422) and a not in
                               ("view_application", "view_tasks", "read_audit", "publish", "reassign_task", "confirm_tiering"))
    assert still == "online_review"  # nothing above changed the application
    assert statuses == {**{name: 401 for name in attacks}, "good": 200}, statuses


def _hs256(claims: dict, key: bytes, kid: str) -> str:
    """HS256 'signed' with the issuer's public key: the classic algorithm-confusion token (built by
    hand: PyJWT itself refuses to use a PEM public key as an HMAC secret)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


async def test_two_officials_at_once_one_wins_and_the_same_key_twice_has_one_effect(world) -> None:
    raced, repeated = application_no("LG"), application_no("LG")
    first = Official("lg-online-a", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
    second = Official("lg-online-b", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
    w = world
    for app in (raced, repeated):
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    for app in (raced, repeated):
        await w.task_of(first, app, "online_review")

    # Two officials, two keys, the same moment.
    answers = await asyncio.gather(
        w.post(first, f"/api/applications/{raced}/decisions", {"decision": "approve"}, key=f"race-a-{raced}"),
        w.post(second, f"/api/applications/{raced}/decisions", {"decision": "reject", "reasons": ["材料不符"]},
               key=f"race-b-{raced}"),
    )
    # One official, one key, sent twice at once and once more later.
    body = {"decision": "return", "reasons": ["请补充发票"], "resubmit_by": "2099-01-09"}
    key = f"same-key-{repeated}"
    twice = await asyncio.gather(*(w.post(first, f"/api/applications/{repeated}/decisions", body, key=key) for _ in range(2)))
    await w.reach(first, repeated, "returned")
    again = await w.post(first, f"/api/applications/{repeated}/decisions", body, key=key)
    reused = await w.post(second, f"/api/applications/{raced}/decisions", body, key=key)  # someone else's key

    await asyncio.sleep(2)  # any second state change would have reached the read model by now
    changes = {app: await w.database.fetch(
        "SELECT from_status, to_status FROM intake.state_changes WHERE application_no = $1 AND from_status = 'online_review'", app)
        for app in (raced, repeated)}
    decisions = {app: await w.database.fetchval("SELECT count(*) FROM review.decisions WHERE application_no = $1", app)
                 for app in (raced, repeated)}
    audit = {app: [tuple(r) for r in await w.database.fetch(
        "SELECT outcome, subject FROM review.audit_chain WHERE application_no = $1 AND coalesce(reason, '') NOT LIKE 'idempotency_key_reused%'"
        " ORDER BY seq", app)] for app in (raced, repeated)}
    reuse_audited = await w.database.fetch(
        "SELECT subject, action FROM review.audit_chain WHERE application_no = $1 AND reason LIKE 'idempotency_key_reused%'", raced)

    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409).json()
    # The loser arrives while the winner is applied (conflict), after it (wrong_state), or, when the
    # reject won, after the lifecycle closed (lifecycle_closed): a 409 with a message each time.
    assert loser["code"] in ("conflict", "wrong_state", "lifecycle_closed") and loser["message"]
    assert len(changes[raced]) == 1 and decisions[raced] == 1
    assert sorted(o for o, _s in audit[raced]) == ["accepted", "refused"]

    assert [a.status_code for a in twice] == [200, 200] and twice[0].json() == twice[1].json() == again.json()
    assert again.json() == {"status": "returned", "deadline": "2099-01-09T18:00:00+08:00"}
    assert len(changes[repeated]) == 1 and decisions[repeated] == 1
    assert audit[repeated] == [("accepted", first.subject)]
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert [tuple(r) for r in reuse_audited] == [(second.subject, "decide")]


async def test_an_idempotency_key_answers_only_the_request_it_was_first_sent_with(world) -> None:
    """One key, one request. Sent again with the same request: the stored answer, nothing done
    twice. Sent with anything else (another task, another body, another action; an administrator
    of both programs publishing the second program's list is the same case, unit-tested in
    tests/unit/test_review_decisions.py): 422 idempotency_key_reused, audited, nothing done. It
    used to answer the first request's answer with 200, and the second action was never taken."""
    w = world
    one, two = application_no("LG"), application_no("LG")
    reviewer = Official("lg-online-c", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
    both = Official("lg-admin-online", (StaffRole.PROGRAM_ADMIN, StaffRole.LG_ONLINE_REVIEWER), (LG,))
    for app in (one, two):
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    tasks = {app: (await w.task_of(reviewer, app, "online_review"))["task_id"] for app in (one, two)}

    key = f"reuse-{one}"
    given = await w.post(both, f"/api/tasks/{tasks[one]}/assignee", {"assignee": reviewer.subject}, key=key)
    given_again = await w.post(both, f"/api/tasks/{tasks[one]}/assignee", {"assignee": reviewer.subject}, key=key)
    other_task = await w.post(both, f"/api/tasks/{tasks[two]}/assignee", {"assignee": reviewer.subject}, key=key)
    other_body = await w.post(both, f"/api/tasks/{tasks[one]}/assignee", {"assignee": "lg-online-d"}, key=key)
    other_action = await w.post(both, f"/api/applications/{one}/decisions", {"decision": "approve"}, key=key)

    decided = f"decided-{two}"
    approved = await w.post(both, f"/api/applications/{two}/decisions", {"decision": "approve"}, key=decided)
    approved_again = await w.post(both, f"/api/applications/{two}/decisions", {"decision": "approve"}, key=decided)
    rejected = await w.post(both, f"/api/applications/{two}/decisions", {"decision": "reject", "reasons": ["材料不符"]}, key=decided)

    assignees = dict(await w.database.fetch("SELECT id, assignee FROM review.tasks WHERE id = ANY($1::bigint[])", list(tasks.values())))
    still = (await w.view(both, one))["status"]
    refused = [tuple(r) for r in await w.database.fetch(
        "SELECT action, program, application_no, split_part(reason, ':', 1) FROM review.audit_chain"
        " WHERE subject = $1 AND outcome = 'refused' ORDER BY seq", both.subject)]
    decisions = await w.database.fetchval("SELECT count(*) FROM review.decisions WHERE idempotency_key = ANY($1::text[])", [key, decided])

    assert given.status_code == 200 and given_again.status_code == 200 and given_again.json() == given.json()
    assert given.json() == {"task_id": tasks[one], "assignee": reviewer.subject}
    for answer in (other_task, other_body, other_action, rejected):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "idempotency_key_reused"
        assert answer.json()["message"] == "该幂等键已用于另一项操作，请使用新的 Idempotency-Key"
    assert assignees == {tasks[one]: reviewer.subject, tasks[two]: None}  # task 2 never given, task 1 kept its assignee
    assert still == "online_review"  # the decision sent with the reassignment's key was never taken
    assert approved.status_code == 200 and approved_again.json() == approved.json()
    assert refused == [("reassign_task", LG, None, "idempotency_key_reused")] * 2 + [
        ("decide", LG, one, "idempotency_key_reused"), ("decide", LG, two, "idempotency_key_reused")]
    assert decisions == 2


UNSTORABLE_ZH = "提交的内容含有无法保存的控制字符（如 \\u0000）或无效的 Unicode 字符，请删除后重新提交"


async def test_a_decision_with_nul_or_a_lone_surrogate_is_refused_and_audited_before_the_workflow_applies_it(world) -> None:
    """A reason with "\\u0000" (or "\\ud800") used to be applied by the lifecycle workflow, then
    review's own jsonb writes failed (PostgreSQL: unsupported Unicode escape sequence): a 500, the
    decision never recorded nor audited, and the same key again a 500 forever. Now: 422 before the
    workflow is asked, the refusal audited with the character replaced (U+FFFD), the chain intact."""
    from services.review.audit.chain import verify_chain

    w = world
    app = application_no("LG")
    reviewer = Official("lg-online-nul", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
    await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    await w.task_of(reviewer, app, "online_review")
    path = f"/api/applications/{app}/decisions"
    key = f"nul-{app}"

    nul = await w.post(reviewer, path, {"decision": "approve", "reasons": ["材料齐全\u0000"]}, key=key)
    nul_again = await w.post(reviewer, path, {"decision": "approve", "reasons": ["材料齐全\u0000"]}, key=key)
    surrogate = await w.http.post(  # httpx cannot encode a lone surrogate: the JSON escape, as a client may send it
        w.review + path, content=b'{"decision": "approve", "reasons": ["x\\ud800"]}',
        headers={"authorization": f"Bearer {w.token(reviewer)}", "idempotency-key": f"sur-{app}",
                 "content-type": "application/json"})
    # The console's form (form-encoded: %00 decodes to NUL) posts to the same API: refused, told, audited.
    from urllib.parse import unquote

    from services.review.console.routes import FLASH_COOKIE, SESSION_COOKIE

    console = await w.http.post(
        f"{w.review}/console/applications/{app}/decision", content=b"decision=approve&reasons=%E6%9D%90%00&key=console-nul-key-1",
        headers={"content-type": "application/x-www-form-urlencoded"}, cookies={SESSION_COOKIE: w.token(reviewer)},
        follow_redirects=False)
    await asyncio.sleep(2)  # a state change the workflow had applied would have reached the read model by now
    still = (await w.view(reviewer, app))["status"]
    changes = await w.database.fetchval(
        "SELECT count(*) FROM intake.state_changes WHERE application_no = $1 AND from_status = 'online_review'", app)
    decisions = await w.database.fetchval("SELECT count(*) FROM review.decisions WHERE application_no = $1", app)
    audited = [(r["outcome"], r["subject"], json.loads(r["input"]), r["reason"].split(":")[0]) for r in await w.database.fetch(
        "SELECT outcome, subject, input::text AS input, reason FROM review.audit_chain WHERE application_no = $1 ORDER BY seq", app)]

    for answer in (nul, nul_again, surrogate):
        assert answer.status_code == 422, answer.text
        assert (answer.json()["code"], answer.json()["message"]) == ("invalid_input", UNSTORABLE_ZH)
    assert still == "online_review" and changes == 0 and decisions == 0  # the workflow never applied it
    assert console.status_code == 303
    assert unquote(console.cookies[FLASH_COOKIE].strip('"')) == f"error:未能提交：{UNSTORABLE_ZH}"
    assert audited == [("refused", reviewer.subject, {"decision": "approve", "reasons": ["材料齐全\ufffd"]}, "invalid_input")] * 2 + [
        ("refused", reviewer.subject, {"decision": "approve", "reasons": ["x\ufffd"]}, "invalid_input"),
        ("refused", reviewer.subject, {"decision": "approve", "reasons": ["材\ufffd"]}, "invalid_input")]
    assert (await verify_chain(w.database)).intact

    fixed = await w.post(reviewer, path, {"decision": "approve", "reasons": ["材料齐全"]})  # without it, with a new key
    assert fixed.status_code == 200 and fixed.json()["status"] == "approved_online", fixed.text

    # %00 in a query or a path: refused before any route (a filter with NUL reached SQL: a 500).
    admin = Official("lg-admin-nul", (StaffRole.PROGRAM_ADMIN,), (LG,))
    in_query = await w.get(admin, "/api/applications", status="\x00")
    bearer = {"authorization": f"Bearer {w.token(admin)}"}
    in_path = await w.http.get(w.review + f"/api/programs/{LG}%00/notice", headers=bearer)
    in_intake = await w.http.get(f"http://127.0.0.1:{w.ports['intake']}/applications/{app}%00", headers=bearer)
    for answer in (in_query, in_path, in_intake):
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"code": "bad_url", "message": "请求地址含有无法处理的控制字符（%00），请检查后重试"}
