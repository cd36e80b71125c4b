"""Duplicate and multi-source claims on the real stack (issue 11; LG 三(一)4, SZ 03(四)): detected
when review records each submission, across applications, batches and programs, shown on every
application concerned with links to the others, acknowledged by a reviewer (audited), never a
rejection."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from services.review.duplicates.normalize import normalize_invoice_no
from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from tests.fixtures import events
from tests.support.longgang_journey import LG_AUDITOR, LG_ONLINE, contract, fresh_uscc, longgang_data
from tests.support.review_world import SZ, Official, ReviewWorld, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]
SZ_PRE = Official("sz-pre-dup", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))


async def flags(w: ReviewWorld, who: Official, app: str, kind: str, timeout: float = 90) -> list[dict[str, Any]]:
    """The application's flags of `kind`, once review shows at least one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await w.get(who, f"/api/applications/{app}")
        if response.status_code == 200:
            found = [f for f in response.json()["duplicate_flags"]["flags"] if f["kind"] == kind]
            if found:
                return found
        assert loop.time() < deadline, f"no {kind} flag on {app}"
        await asyncio.sleep(0.25)


def shenzhen_data(uscc: str, product_name: str, scenario: str = "SZGOV-AI-2025-017") -> dict[str, Any]:
    facts = events.shenzhen_submitted()
    return {"applicant": {**facts["applicant"], "uscc": uscc},
            "product": {**facts["product"], "name": product_name, "scenario_id": scenario},
            "declarations": {"other_municipal_support_for_same_product": True}}


async def test_one_invoice_two_applicants_one_applicant_two_programs_one_product_twice(stack, tmp_path: Path) -> None:
    invoice = f"2544{random.randrange(10**15):016d}"
    first, second = fresh_uscc(), fresh_uscc()
    lg_a, lg_b, sz_c = application_no("LG"), application_no("LG"), application_no("SZ")
    sz_d, sz_e = application_no("SZ"), application_no("SZ")
    product = f"城市治理智能体 {random.randrange(10**6)}"
    async with review_world(stack, tmp_path, shared=True) as w:
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, lg_a, **longgang_data(first, [contract(f"HT-{lg_a}", 10_000_000, invoice_no=invoice)]))
        await w.send(topics.LONGGANG_APPLICATION_SUBMITTED, lg_b, **longgang_data(second, [contract(f"HT-{lg_b}", 20_000_000, invoice_no=invoice)]))
        # The first Longgang applicant also applies in Shenzhen, declaring other support.
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, sz_c, **shenzhen_data(first, f"另一产品 {random.randrange(10**6)}"))
        # Two Shenzhen applicants claim one product (same name up to width/case/spaces, same scenario).
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, sz_d, **shenzhen_data(fresh_uscc(), product))
        await w.send(topics.SHENZHEN_APPLICATION_SUBMITTED, sz_e, **shenzhen_data(fresh_uscc(), product.replace(" ", "　")))

        invoice_a = await flags(w, LG_ONLINE, lg_a, "same_invoice")
        invoice_b = await flags(w, LG_ONLINE, lg_b, "same_invoice")
        cross_a = await flags(w, LG_ONLINE, lg_a, "cross_program_applicant")
        cross_c = await flags(w, SZ_PRE, sz_c, "cross_program_applicant")
        product_d = await flags(w, SZ_PRE, sz_d, "same_product")
        product_e = await flags(w, SZ_PRE, sz_e, "same_product")

        flag_id = invoice_a[0]["flag_id"]
        path = f"/api/applications/{lg_a}/duplicate-flags/{flag_id}/acknowledge"
        other_program = await w.post(SZ_PRE, path, {})
        auditor = await w.post(LG_AUDITOR, path, {})
        acknowledged = await w.post(LG_ONLINE, path, {"note": "两家单位各自的合同，发票号码录入错误待核"}, key=f"ack-{lg_a}-{flag_id}")
        repeated = await w.post(LG_ONLINE, path, {"note": "两家单位各自的合同，发票号码录入错误待核"}, key=f"ack-{lg_a}-{flag_id}")
        again = await w.post(LG_ONLINE, path, {})
        unknown = await w.post(LG_ONLINE, f"/api/applications/{lg_a}/duplicate-flags/999999999/acknowledge", {})
        view = await w.view(LG_ONLINE, lg_a)
        audit = (await w.get(LG_AUDITOR, "/api/audit", application_no=lg_a, page_size=100)).json()

    key = normalize_invoice_no(invoice)
    assert [(f["key"], [o["application_no"] for o in f["others"]], f["clause"]) for f in invoice_a] == [(key, [lg_b], "三(一)4")]
    assert [(f["key"], [o["application_no"] for o in f["others"]]) for f in invoice_b] == [(key, [lg_a])]
    assert invoice_a[0]["others"][0]["program"] == "LG-AI-MODEL-2025" and invoice_a[0]["acknowledged"] is False
    # The applicant in both programs: linked on both, with the other side's declarations.
    assert [o["application_no"] for o in cross_a[0]["others"]] == [sz_c]
    assert cross_a[0]["others"][0]["program"] == SZ
    assert cross_a[0]["others"][0]["declarations"] == {"other_municipal_support_for_same_product": True}
    assert [o["application_no"] for o in cross_c[0]["others"]] == [lg_a] and cross_c[0]["clause"] == "03(四)"
    assert cross_c[0]["others"][0]["declarations"]["other_district_funds_for_same_item"] is False
    assert [o["application_no"] for o in product_d[0]["others"]] == [sz_e]
    assert [o["application_no"] for o in product_e[0]["others"]] == [sz_d]
    assert "其他申报单位申报了同一产品" in product_d[0]["message"]

    assert other_program.status_code == 404 and auditor.status_code == 403
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json() == {"application_no": lg_a, "flag_id": flag_id, "acknowledged_by": LG_ONLINE.actor_id}
    assert repeated.json() == acknowledged.json()
    assert again.status_code == 409 and unknown.status_code == 404
    shown = next(f for f in view["duplicate_flags"]["flags"] if f["flag_id"] == flag_id)
    assert shown["acknowledged"] and shown["acknowledged_by"] == LG_ONLINE.actor_id and shown["note"].startswith("两家")
    assert view["status"] in ("online_review", "pre_checks")  # flagged, never rejected
    acks = [(e["action"], e["outcome"]) for e in reversed(audit["items"]) if e["action"] == "acknowledge_duplicate"]
    assert ("acknowledge_duplicate", "accepted") in acks and acks.count(("acknowledge_duplicate", "refused")) >= 2
