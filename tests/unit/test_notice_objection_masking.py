"""An objection's free text, filed by the public, and an objection decision's reason are kept with
their ID and mobile numbers masked (services/review/notice/service.py), without servers."""

from __future__ import annotations

from services.review.notice.service import ObjectionInput

MOBILE, ID_NUMBER = "13800138000", "11010519491231002X"


def test_an_objections_free_text_is_kept_masked_and_its_phone_field_untouched() -> None:
    kept = ObjectionInput(name=f"赵六 {MOBILE}", phone=MOBILE, organisation=f"某公司（{ID_NUMBER}）", application_no="SZ2025-000001",
                           grounds=f"金额有误，请致电 {MOBILE} 或核对法人身份证 {ID_NUMBER}")
    assert kept.grounds == "金额有误，请致电 138****8000 或核对法人身份证 1101**********002X"
    assert kept.name == "赵六 138****8000" and kept.organisation == "某公司（1101**********002X）"
    assert kept.phone == MOBILE  # checked and stored by mask_phone, as before
    assert kept.application_no == "SZ2025-000001"
