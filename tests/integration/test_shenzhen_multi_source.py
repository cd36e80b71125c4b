"""Shenzhen 03(四) on the real stack (issue 11): the eligibility finding reads the duplicate flags.
The same product claimed by two applicants (each declaring no other support) makes the finding of
both `needs_person`, naming the other application, the first one's rewritten when the second is
recorded; never a rejection (both stay in formal pre-review)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from tests.fixtures import events
from tests.support.longgang_journey import fresh_uscc
from tests.support.review_world import SZ, Official, ReviewWorld, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]
SZ_PRE = Official("sz-pre-multi", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))


def shenzhen_data(uscc: str, product_name: str) -> dict[str, Any]:
    facts = events.shenzhen_submitted()
    return {"applicant": {**facts["applicant"], "uscc": uscc}, "product": {**facts["product"], "name": product_name},
            "declarations": {**facts.get("declarations", {}), "other_municipal_support_for_same_product": False}}


async def multi_source(w: ReviewWorld, app: str, *, needs_person: bool, timeout: float = 90) -> dict[str, Any]:
    """The application's 03(四) finding, once it says what is expected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = None
    while True:
        response = await w.get(SZ_PRE, f"/api/applications/{app}")
        if response.status_code == 200:
            seen = next((f for f in response.json()["pre_checks"] if f["rule"] == "no_multi_source_claim"), None)
            if seen is not None and seen["passed"] is (not needs_person):
                return {**seen, "status": response.json()["status"]}
        assert loop.time() < deadline, f"{app}: 03(四) is {seen}"
        await asyncio.sleep(0.25)


async def test_the_same_product_by_two_applicants_needs_a_person_on_both_naming_the_other(stack, tmp_path: Path) -> None:
    first, second, alone = application_no("SZ"), application_no("SZ"), application_no("SZ")
    product = f"政务智能审批助手 {random.randrange(10**6)}"
    async with review_world(stack, tmp_path, shared=True) as w:
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, first, **shenzhen_data(fresh_uscc(), product))
        before = await multi_source(w, first, needs_person=False)  # nobody else claims it yet
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, second, **shenzhen_data(fresh_uscc(), product.upper()))
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, alone, **shenzhen_data(fresh_uscc(), f"另一产品 {random.randrange(10**6)}"))
        on_second = await multi_source(w, second, needs_person=True)
        on_first = await multi_source(w, first, needs_person=True)  # rewritten when the second was recorded
        on_alone = await multi_source(w, alone, needs_person=False)

    assert before["clause"] == "03(四)" and "未发现" in before["explanation"]
    for mine, other in ((on_first, second), (on_second, first)):
        assert mine["clause"] == "03(四)" and mine["detail"] == "needs_person"
        assert "其他申报单位申报了同一产品" in mine["explanation"] and other in mine["explanation"]
        assert [f["others"] for f in mine["evidence"]["flags"] if f["kind"] == "same_product"] == [[other]]
        assert mine["status"] in ("formal_pre_review", "pre_check", "submitted")  # for a person, not rejected
    assert on_alone["passed"] is True
