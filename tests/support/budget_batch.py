"""A Longgang batch of its own with a small `[award] budget_fen` (按比例核减, issue 11), for tests on
the shared stack: the 2025 file under another code, an open filing window, a short SMS receipt wait,
and the notify templates under the new code, so nothing else on the stack is on its list.

    programs = budget_batch_config(tmp_path, code, budget_fen)
    async with review_world(stack, tmp_path, notify=True, extra_env={"SUBSIDY_PROGRAMS_DIR": str(programs), ...}) as w:
        confirmations = await confirmed_awards(w, code, contracts_fen, online=..., back=..., clerk=..., admin=...)
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.notify.notices import TEMPLATES_DIR
from subsidy.programs import PROGRAMS_DIR
from tests.support.longgang_journey import contract, fresh_uscc, longgang_data, to_award_calculation
from tests.support.review_world import Official, ReviewWorld, programs_dir


def budget_batch(code: str, budget_fen: int) -> str:
    """LG-AI-MODEL-2025's configuration as batch `code`, with `budget_fen` and an open filing window."""
    text = (PROGRAMS_DIR / "LG-AI-MODEL-2025.toml").read_text(encoding="utf-8")
    for old, new in (
        ('code = "LG-AI-MODEL-2025"', f'code = "{code}"'),
        ("first_day = 2025-12-08", "first_day = 2026-01-05"), ("last_day = 2025-12-12", "last_day = 2027-12-31"),
        ('sms_receipt_wait = "PT24H"', 'sms_receipt_wait = "PT2S"'),
        ("# budget_fen = 3000000000 ", f"budget_fen = {budget_fen} "),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def budget_batch_config(tmp: Path, code: str, budget_fen: int) -> Path:
    """A configuration folder (programs and notify templates) holding the batch; returns the programs
    folder, for `SUBSIDY_PROGRAMS_DIR`."""
    config = tmp / "config"
    config.mkdir()
    programs = programs_dir(config)
    (programs / f"{code}.toml").write_text(budget_batch(code, budget_fen), encoding="utf-8")
    templates = config / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    (templates / f"{code}.toml").write_text(
        (TEMPLATES_DIR / "LG-AI-MODEL-2025.toml").read_text(encoding="utf-8").replace(
            'program = "LG-AI-MODEL-2025"', f'program = "{code}"'), encoding="utf-8")
    return programs


async def confirmed_awards(w: ReviewWorld, code: str, apps: list[str], contracts_fen: list[int], *, online: Official,
                           back: Official, clerk: Official, admin: Official) -> list[httpx.Response]:
    """Each application (one contract of that amount, an enterprise of its own) through review to
    资助金额核定, then its computed award confirmed by the administrator: all on the batch's list."""
    for app, amount in zip(apps, contracts_fen, strict=True):  # one by one: the helper reads with w.database
        await to_award_calculation(w, app, {**longgang_data(fresh_uscc(), [contract(f"HT-{app}", amount)]),
                                            "submitted_at": datetime.now(UTC).replace(microsecond=0).isoformat()},
                                   program=code, online=online, back=back, clerk=clerk, admin=admin)
    return [await w.post(admin, f"/api/applications/{app}/award/confirm", {}) for app in apps]
