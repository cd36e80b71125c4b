"""Issue 11's DONE WHEN: a 2026 Longgang batch loaded from a temporary configuration folder
(SUBSIDY_PROGRAMS_DIR, its SMS templates in the `templates/` folder beside it) runs from submission
to a confirmed award with no code changed: its filing window, cycle year, cap year, pre-check
parameters, materials, form title and watermark and SMS texts all come from the files.

(The paper copies and the `LG-W` windows are workflow code; a 2026 batch of the same shape keeps them.)"""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notify.notices import TEMPLATES_DIR
from subsidy.identity.claims import StaffRole
from subsidy.programs import PROGRAMS_DIR
from tests.support.longgang_journey import contract, fresh_uscc, longgang_data, to_award_calculation
from tests.support.review_world import Official, programs_dir, review_world

pytestmark = pytest.mark.integration
LG26 = "LG-AI-MODEL-2026"
ONLINE = Official("lg26-online", (StaffRole.LG_ONLINE_REVIEWER,), (LG26,))
BACK = Official("lg26-back", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG26,))
CLERK = Official("lg26-clerk", (StaffRole.WINDOW_CLERK,), (LG26,), window="LG-W11")
ADMIN = Official("lg26-admin", (StaffRole.PROGRAM_ADMIN,), (LG26,))
TITLE_2026 = "2026年龙岗区调用模型开发应用扶持项目申报书（第二批）"


def batch_2026() -> str:
    """The 2025 file with 2026's dates and texts: what an operator writes, nothing else."""
    text = (PROGRAMS_DIR / "LG-AI-MODEL-2025.toml").read_text(encoding="utf-8")
    for old, new in (
        ('code = "LG-AI-MODEL-2025"', f'code = "{LG26}"'),
        ("first_day = 2025-12-08", "first_day = 2026-01-05"), ("last_day = 2025-12-12", "last_day = 2027-12-31"),
        ('sms_receipt_wait = "PT24H"', 'sms_receipt_wait = "PT2S"'),
        ("guide_published_on = 2025-12-01", "guide_published_on = 2026-01-01"),
        ("cycle_first_day = 2024-12-01", "cycle_first_day = 2025-01-01"),
        ("cycle_last_day = 2025-11-30", "cycle_last_day = 2025-12-31"),
        ("cap_year = 2025", "cap_year = 2026"),
        ("# budget_fen = 3000000000 ", "budget_fen = 10000000 "),  # CNY 100,000: below what the batch confirms
        ('industry_code_prefixes = ["64", "65"]', 'industry_code_prefixes = ["64", "65", "6311"]'),
        ("2025年龙岗区调用模型开发应用扶持项目申报书", TITLE_2026),
        ('watermark = "{form_id}"', 'watermark = "2026 龙岗 {form_id}"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def templates_2026() -> str:
    text = (TEMPLATES_DIR / "LG-AI-MODEL-2025.toml").read_text(encoding="utf-8")
    return text.replace('program = "LG-AI-MODEL-2025"', f'program = "{LG26}"').replace("2025年", "2026年")


def ucs2(text: str) -> bytes:
    return ("<" + "".join(f"{ord(ch):04X}" for ch in text) + ">").encode()


async def test_a_2026_longgang_batch_from_a_folder_runs_from_submission_to_award(stack, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    programs = programs_dir(config)  # the 2025 batches stay (other applications on the shared stack)
    (programs / f"{LG26}.toml").write_text(batch_2026(), encoding="utf-8")
    templates = config / "templates"  # beside the programs folder: notify finds it there
    shutil.copytree(TEMPLATES_DIR, templates)
    (templates / f"{LG26}.toml").write_text(templates_2026(), encoding="utf-8")

    app = f"LG2026-{random.randrange(1_000_000):06d}"
    # Completed 2025-12-20: inside 2026's cycle year (2025-01-01 .. 2025-12-31); a 2025 batch would exclude it.
    # Industry code 6311 passes only because the 2026 file lists it.
    data = {**longgang_data(fresh_uscc(), [contract(f"HT-{app}", 200_000_000, completed_on="2025-12-20")], industry_code="6311"),
            "submitted_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
    env = {"SUBSIDY_PROGRAMS_DIR": str(programs)}
    async with review_world(stack, tmp_path, notify=True, extra_env=env) as w:
        await to_award_calculation(w, app, data, program=LG26, online=ONLINE, back=BACK, clerk=CLERK, admin=ADMIN)
        view = await w.view(ONLINE, app)
        award_response = await w.get(ADMIN, f"/api/applications/{app}/award")
        award = award_response.json()
        assert award_response.status_code == 200, award_response.text
        confirmed = await w.post(ADMIN, f"/api/applications/{app}/award/confirm", {})
        batch = (await w.get(ADMIN, f"/api/programs/{LG26}/awards")).json()
        pdf = await w.database.fetchval("SELECT pdf FROM review.forms WHERE application_no = $1 ORDER BY version DESC LIMIT 1", app)
        reserved = await w.database.fetchrow("SELECT cap_year, amount_fen FROM review.award_reservations WHERE application_no = $1", app)

    findings = {f["rule"]: f for f in view["pre_checks"]}
    assert findings["industry_code"]["passed"] is True and "6311" in findings["industry_code"]["detail"]
    assert findings["industry_code"]["ruleset_version"].startswith(f"{LG26}/")
    assert ucs2(TITLE_2026) in pdf and ucs2(f"2026 龙岗 WF-{app}-V1") in pdf
    texts = json.dumps(view["sms"], ensure_ascii=False)
    assert "2026年龙岗区调用模型开发应用扶持项目" in texts and "2025年" not in texts
    assert award["program"] == LG26 and award["breakdown"]["cap_year"] == 2026
    assert award["breakdown"]["contracts"][0]["included"] and award["computed_fen"] == 60_000_000
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "awaiting_publication" and confirmed.json()["award_fen"] == 60_000_000
    assert (reserved["cap_year"], reserved["amount_fen"]) == (2026, 60_000_000)
    # Over the budget: the pro-rata amounts as they would fall, to the fen (a preview, not applied).
    assert batch["budget_fen"] == 10_000_000 and batch["over_budget"] is True
    assert sum(batch["prorated_preview"].values()) == 10_000_000 and 0 < batch["prorated_preview"][app] <= 10_000_000
    assert next(a for a in batch["applications"] if a["application_no"] == app)["confirmed_fen"] == 60_000_000
