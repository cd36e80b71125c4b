"""Reference lists an operator imports (`subsidy reference import KIND FILE.csv`) on the real stack
(issue 11): each import a version (the file's SHA-256), the latest in effect; the Longgang pre-checks
read the serious-dishonesty list and the CAC filing registry and each finding names the version it
read; a malformed file is refused whole with the line and column of its first error."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from subsidy.contracts import topics
from tests.support.longgang_journey import LG_ONLINE, contract, fresh_uscc, longgang_data
from tests.support.review_world import ReviewWorld, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]
SAMPLES = Path(__file__).resolve().parents[2] / "services" / "review" / "reference" / "samples"


def subsidy(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120, env=env)


async def findings(w: ReviewWorld, app: str, timeout: float = 90) -> dict[str, dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await w.get(LG_ONLINE, f"/api/applications/{app}")
        if response.status_code == 200 and response.json()["pre_checks"]:
            return {f["rule"]: f for f in response.json()["pre_checks"]}
        assert loop.time() < deadline, f"no pre-check findings for {app}"
        await asyncio.sleep(0.25)


async def test_imported_lists_are_read_by_the_pre_checks_and_a_malformed_file_is_refused_whole(stack, tmp_path: Path) -> None:
    listed = fresh_uscc()
    dishonesty = tmp_path / "serious_dishonesty.csv"
    dishonesty.write_bytes((SAMPLES / "serious_dishonesty.csv").read_bytes().rstrip(b"\n")
                           + f"\n{listed},深圳市测试失信有限公司,深圳市市场监督管理局,2025-01-01,2099-12-31\n".encode())
    imported = subsidy(stack, "reference", "import", "serious_dishonesty", str(dishonesty), "--by", "operator:test")
    registry = subsidy(stack, "reference", "import", "cac_filings", str(SAMPLES / "cac_filings.csv"))
    malformed = tmp_path / "bad.csv"
    malformed.write_text("uscc,name,authority,listed_on,expires_on\n"
                         f"{fresh_uscc()},甲公司,某局,2025-01-01,\n"
                         f"{fresh_uscc()},乙公司,某局,2025-02-30,\n", encoding="utf-8")
    refused = subsidy(stack, "reference", "import", "serious_dishonesty", str(malformed))
    in_effect = json.loads(subsidy(stack, "reference", "list").stdout)

    app, clean = application_no("LG"), application_no("LG")
    async with review_world(stack, tmp_path, shared=True) as w:
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, app, **longgang_data(listed, [contract(f"HT-{app}", 10_000_000)]))
        unfiled = {**contract(f"HT-{clean}", 10_000_000), "cac_filing_no": "Nowhere-0000"}
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, clean, **longgang_data(fresh_uscc(), [unfiled]))
        on_list, not_on_list = await findings(w, app), await findings(w, clean)

    assert imported.returncode == 0, imported.stderr
    version = json.loads(imported.stdout)["version"]
    assert version == hashlib.sha256(dishonesty.read_bytes()).hexdigest() and json.loads(imported.stdout)["by"] == "operator:test"
    cac_version = json.loads(registry.stdout)["version"]
    # Refused whole: line 3, column 4 (listed_on), nothing stored: the version in effect is unchanged.
    assert refused.returncode == 1
    assert {k: json.loads(refused.stdout)[k] for k in ("imported", "line", "column")} == {"imported": False, "line": 3, "column": 4}
    assert "第 3 行第 4 列" in refused.stderr
    assert in_effect["serious_dishonesty"]["version"] == version and in_effect["cac_filings"]["version"] == cac_version

    finding = on_list["not_on_dishonesty_list"]
    assert finding["passed"] is False and finding["clause"] == "三(一)2" and finding["reference_version"] == version
    assert "严重失信主体名单" in finding["detail"] and version in finding["ruleset_version"]
    assert on_list["cac_filing_registered"]["passed"] is True and on_list["cac_filing_registered"]["reference_version"] == cac_version
    assert not_on_list["not_on_dishonesty_list"]["passed"] is True and not_on_list["not_on_dishonesty_list"]["reference_version"] == version
    assert not_on_list["cac_filing_registered"]["passed"] is False
    assert "Nowhere-0000" in not_on_list["cac_filing_registered"]["detail"]
    # The rules that read only the application's facts name the batch's ruleset, not a list.
    assert on_list["industry_code"]["reference_version"] is None
    assert on_list["industry_code"]["ruleset_version"].startswith("LG-AI-MODEL-2025/")
