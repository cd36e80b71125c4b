"""The watermarked form on the real stack: review issues it once per version from the facts it
keeps (PostgreSQL), and serves the same bytes over HTTP with their SHA-256 to officials of its
program (bearer token)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from services.review.forms.documents import FormActivities
from subsidy.contracts.lifecycle import IssueWatermarkedForm
from tests.fixtures import events
from tests.support.intake_world import application_no
from tests.support.processes import running_service
from tests.support.tokens import http_get as get, mint

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


async def test_a_form_is_issued_once_per_version_and_served_with_its_hash(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    facts = events.longgang_submitted()
    facts["applicant"] = {k: v for k, v in facts["applicant"].items() if k not in ("legal_representative", "contact")}
    with running_service("review", stack.env, tmp_path / "review.log") as port:  # its migrations are applied
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2,
                                         server_settings={"search_path": "review,public"})
        try:
            await pool.execute(
                """INSERT INTO submissions (application_no, version, program, applicant_uscc, submitted_at, facts)
                   VALUES ($1, 1, $2, $3, $4, $5::jsonb)""",
                app, LG, events.APPLICANT_USCC, datetime(2025, 12, 9, 10, 31, tzinfo=ZoneInfo("Asia/Shanghai")),
                json.dumps(facts, ensure_ascii=False))
            issue = FormActivities(pool).issue_watermarked_form
            first = await ActivityEnvironment().run(issue, IssueWatermarkedForm(program=LG, application_no=app, version=1))
            again = await ActivityEnvironment().run(issue, IssueWatermarkedForm(program=LG, application_no=app, version=1))
            with pytest.raises(ApplicationError, match="has not reached review yet"):
                await ActivityEnvironment().run(issue, IssueWatermarkedForm(program=LG, application_no=app, version=2))
            stored = await pool.fetchval("SELECT count(*) FROM forms WHERE application_no = $1", app)
        finally:
            await pool.close()
        official = mint(stack.run_dir, "lg_back_office_reviewer", [LG], user="lg-bo-01")
        status, pdf, headers = get(port, f"/forms/{first.form_id}", official)
        unknown = get(port, "/forms/WF-LG2025-999999-V1", official)[0]
        malformed = get(port, "/forms/..%2F..%2Fetc", official)[0]
        anonymous = get(port, f"/forms/{first.form_id}")
        other_program = get(port, f"/forms/{first.form_id}", mint(stack.run_dir, "sz_pre_reviewer", ["SZ-GOVAI-SCENARIO-2025"]))
        openapi = json.loads(get(port, "/openapi.json")[1])

    assert first == again and first.form_id == f"WF-{app}-V1" and stored == 1
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf.startswith(b"%PDF-1.4")
    assert hashlib.sha256(pdf).hexdigest() == first.sha256 == headers["x-content-sha256"]
    assert (unknown, malformed) == (404, 400)
    assert anonymous[0] == 401 and b"%PDF" not in anonymous[1]
    assert other_program[0] == 404 and json.loads(other_program[1])["code"] == "unknown_form"
    assert "/forms/{form_id}" in openapi["paths"]
