"""A Longgang application driven through the API up to award calculation (awards-api, issue 11):
portal events on Kafka, every official's step over HTTP, nothing calling a Temporal update."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import asyncpg

from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from tests.fixtures import events
from tests.support.review_world import LG, Official, ReviewWorld

LG_ONLINE = Official("lg-online-aw", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_BACK = Official("lg-back-aw", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG,))
LG_CLERK = Official("lg-clerk-aw", (StaffRole.WINDOW_CLERK,), (LG,), window="LG-W05")
LG_ADMIN = Official("lg-admin-aw", (StaffRole.PROGRAM_ADMIN,), (LG,))
LG_AUDITOR = Official("lg-auditor-aw", (StaffRole.AUDITOR,), (LG,))


def fresh_uscc() -> str:
    """A valid USCC of an enterprise no other test uses (the yearly cap is per USCC on a shared stack)."""
    return events.uscc("91440307MA5" + f"{random.randrange(1_000_000):06d}")


def contract(no: str, amount_fen: int, *, invoice_no: str | None = None, completed_on: str = "2025-10-31",
             invoiced_fen: int | None = None, paid_fen: int | None = None) -> dict[str, Any]:
    base = events.longgang_submitted()["model_contracts"][0]
    return {**base, "contract_no": no, "amount_fen": amount_fen, "completed_on": completed_on,
            "invoices": [{"invoice_no": invoice_no or f"2544{random.randrange(10**15):016d}",
                          "amount_fen": amount_fen if invoiced_fen is None else invoiced_fen, "issued_on": "2025-11-02"}],
            "payments": [{"bank_ref": f"CMB-{no}", "amount_fen": amount_fen if paid_fen is None else paid_fen, "paid_on": "2025-11-05"}]}


def longgang_data(uscc: str, contracts: list[dict[str, Any]], **applicant: Any) -> dict[str, Any]:
    """The example with this enterprise and contracts, and a contact mobile of its own: SMS to one
    number are limited per day (SMS_DAILY_LIMIT), and the example's number is the notify tests'."""
    facts = events.longgang_submitted()
    contact = {**facts["applicant"]["contact"], "mobile": f"137{random.randrange(10**8):08d}"}
    return {"applicant": {**facts["applicant"], "uscc": uscc, "contact": contact, **applicant}, "model_contracts": contracts}


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


async def to_award_calculation(w: ReviewWorld, app: str, data: dict[str, Any], *, program: str = LG,
                               online: Official = LG_ONLINE, back: Official = LG_BACK, clerk: Official = LG_CLERK,
                               admin: Official = LG_ADMIN) -> None:
    """Submission -> online review -> Guangdong portal -> back office -> phone -> paper -> award_calculation.
    The world's programs must have a short `sms_receipt_wait` (the phone step comes at once)."""
    await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app, program=program, **data)
    await w.task_of(online, app, "online_review")
    approved = await w.post(online, f"/api/applications/{app}/decisions", {"decision": "approve"})
    assert approved.status_code == 200, approved.text
    await w.reach(online, app, "awaiting_gd_submission")
    form = await _latest_form(w, app)
    await w.send(topics.GUANGDONG_SUBMISSION_RECEIVED, app, program=program, form_id=form["form_id"],
                 form_sha256=form["sha256"], received_at=now_iso())
    await w.task_of(back, app, "back_office_review")
    back_office = await w.post(back, f"/api/applications/{app}/decisions", {"decision": "approve"})
    assert back_office.status_code == 200, back_office.text
    if await _phone_or_paper(w, app, back, clerk) == "phone":  # no SMS receipt: the back office phones
        phoned = await w.post(back, f"/api/applications/{app}/phone-confirmation", {})
        # The receipt may still come after its wait, between the phone task being listed and this call
        # (a busy machine): the lifecycle then goes on to the paper without the phone, and says so.
        if phoned.status_code == 409 and phoned.json()["code"] == "wrong_state":
            await w.reach(back, app, "awaiting_paper", timeout=30)
        else:
            assert phoned.status_code == 200, phoned.text
        await w.task_of(clerk, app, "paper")
    paper = await w.post(clerk, f"/api/applications/{app}/paper",
                         {"copies": 2, "bound_and_stamped": True, "form_id": form["form_id"]})
    assert paper.status_code == 200 and paper.json()["status"] == "award_calculation", paper.text
    await w.task_of(admin, app, "award")  # review has seen the state change (and computed the award)


async def _phone_or_paper(w: ReviewWorld, app: str, back: Official, clerk: Official, timeout: float = 90) -> str:
    """After the approval SMS: the phone step (no receipt in time) or, notify running and the SMS
    delivered, the paper step at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for who, step, answer in ((back, "confirm_notice_by_phone", "phone"), (clerk, "paper", "paper")):
            response = await w.get(who, "/api/tasks", step=step, page_size=100)
            if any(t["application_no"] == app for t in response.json()["items"]):
                return answer
        assert loop.time() < deadline, f"{app}: neither the phone step nor paper"
        await asyncio.sleep(0.25)


async def _latest_form(w: ReviewWorld, app: str) -> asyncpg.Record:
    """The watermarked form the Guangdong portal received, on a connection of its own: journeys of
    this helper run side by side (`asyncio.gather`), and `w.database`, one asyncpg connection, takes
    one query at a time ("another operation is in progress" when two met)."""
    conn = await asyncpg.connect(w.stack.database_url)
    try:
        form = await conn.fetchrow(
            "SELECT form_id, sha256 FROM review.forms WHERE application_no = $1 ORDER BY version DESC LIMIT 1", app)
    finally:
        await conn.close()
    assert form is not None, f"no watermarked form for {app}"
    return form
