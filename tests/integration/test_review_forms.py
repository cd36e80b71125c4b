"""The watermarked form on the real stack: review issues it once per version from the facts it
keeps (PostgreSQL), and serves the same bytes over HTTP with their SHA-256."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from datetime import datetime
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from services.review.forms.documents import FormActivities
from subsidy.identity.local_issuer import LocalIssuer
from subsidy.contracts.lifecycle import IssueWatermarkedForm
from tests.fixtures import events
from tests.support.intake_world import application_no
from tests.support.processes import running_service

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


def get(port: int, path: str, token: str | None = None) -> tuple[int, bytes, Message]:
    """Status, body and headers (looked up case-insensitively)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


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
        issuer = LocalIssuer.for_run_dir(stack.run_dir, stack.env["OIDC_ISSUER"])
        official = issuer.mint(subject="lg-rev-forms", roles=["lg_online_reviewer"], programs=[LG])
        other_program = issuer.mint(subject="sz-rev-forms", roles=["sz_pre_reviewer"], programs=["SZ-GOVAI-SCENARIO-2025"])
        status, pdf, headers = get(port, f"/forms/{first.form_id}", official)
        unknown = get(port, "/forms/WF-LG2025-999999-V1", official)[0]
        malformed = get(port, "/forms/not-a-form-id", official)[0]
        traversal = get(port, "/forms/..%2F..%2Fetc", official)[0]  # no route matches it
        no_token = get(port, f"/forms/{first.form_id}")[0]
        not_theirs = get(port, f"/forms/{first.form_id}", other_program)[0]

    assert first == again and first.form_id == f"WF-{app}-V1" and stored == 1
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf.startswith(b"%PDF-1.4")
    assert hashlib.sha256(pdf).hexdigest() == first.sha256 == headers["x-content-sha256"]
    assert (unknown, malformed, traversal, no_token, not_theirs) == (404, 400, 404, 401, 404)
