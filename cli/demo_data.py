"""Sample applications for `subsidy demo`: the shapes of CONTRACTS.md (as tests/fixtures/events.py
builds them; the CLI does not import tests/), with made-up enterprises and people.

Everything is obviously fake: enterprise names say 示例 (sample), people are 演示 (demo) persons.
The identifiers pass the platform's validators (subsidy/identifiers.py: USCC and resident ID check
characters, mobile shape) because a real portal only sends valid ones; the mobile numbers differ per
demo run, so notify's per-number daily limit never holds back a demo's SMS.

Submission times: both programs' filing windows are in 2025 (subsidy/programs/*.toml), and intake
judges a first submission by the `submitted_at` the portal stamped on the event (not by when it
arrives). The demo's events are therefore stamped inside each window, as a portal replaying that
period would send them; everything after the first submission happens now.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from subsidy.contracts import topics
from subsidy.identifiers import resident_id_check_char, uscc_check_char

LG = "LG-AI-MODEL-2025"
SZ = "SZ-GOVAI-SCENARIO-2025"

# Inside the filing windows: LG 2025-12-08..12 (whole days, Asia/Shanghai); SZ 2025-11-01 00:00 to 11-30 18:00.
LG_SUBMITTED_AT = "2025-12-09T10:31:00+08:00"
SZ_SUBMITTED_AT = "2025-11-28T15:20:00+08:00"

SOURCES = {
    topics.PORTAL_LONGGANG_APPLICATIONS: ("urn:portal:longgang-qyfw", "longgang-qyfw"),
    topics.PORTAL_SHENZHEN_APPLICATIONS: ("urn:portal:sz-finance", "sz-finance"),
    topics.PORTAL_GUANGDONG_SUBMISSIONS: ("urn:portal:gdzwfw", "gdzwfw"),
}

STATUS_ZH = {
    "submitted": "已提交",
    "pre_check": "自动预审",
    "online_review": "线上审核",
    "formal_pre_review": "形式预审",
    "returned": "退回修改",
    "approved_online": "已通过线上终审",
    "awaiting_gd_submission": "待广东政务服务网提交",
    "back_office_review": "后台审核",
    "awaiting_sms_delivery": "待短信送达",
    "awaiting_paper": "待提交纸质材料",
    "expert_scoring": "专家评审",
    "tiering": "定档",
    "award_calculation": "核定补贴金额",
    "awaiting_publication": "待公示",
    "published": "已公示",
    "rejected": "不予通过",
    "withdrawn": "已撤回",
    "abandoned": "逾期视作放弃",
}


def status_zh(status: str | None) -> str:
    return f"{status} ({STATUS_ZH[status]})" if status in STATUS_ZH else str(status)


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    mobile: str


def demo_run_id() -> str:
    """Four digits naming one demo run (in its application numbers, LG2025-9<run><n>)."""
    return f"{secrets.randbelow(10_000):04d}"


def demo_mobile() -> str:
    """A mobile number of the demo (valid shape, 1380000xxxx); new per application."""
    return f"1380000{secrets.randbelow(10_000):04d}"


def _person(name: str, birth: str, serial: str) -> Person:
    return Person(name, resident_id(f"440307{birth}{serial}"), demo_mobile())


def longgang_application(application_no: str, n: int) -> dict[str, Any]:
    """A Longgang 调用模型 application (CONTRACTS.md `longgang.application.submitted`), enterprise n."""
    contact = _person("演示联系人乙", "19851215", f"45{n}")
    legal = _person("演示法人甲", "19900307", f"12{n}")
    amount = 150_000_000 - n * 10_000_000  # fen
    return {
        "program": LG,
        "application_no": application_no,
        "submitted_at": LG_SUBMITTED_AT,
        "applicant": {
            "name": f"深圳市示例智能科技演示{n}号有限公司",
            "uscc": uscc(f"91440300MA5G1234{n}"),
            "industry_code": "6513",
            "registered_district": "龙岗区",
            "operating_address": f"深圳市龙岗区坂田街道示例路{n}号",
            "is_branch": False,
            "head_office_uscc": None,
            "legal_representative": {"name": legal.name, "id_number": legal.id_number},
            "contact": {"name": contact.name, "mobile": contact.mobile, "id_number": contact.id_number},
            "related_party_usccs": [],
        },
        "declarations": {
            "serious_dishonesty_listed": False,
            "other_district_funds_for_same_item": False,
            "ethics_sensitive": False,
        },
        "model_contracts": [
            {
                "contract_no": f"HT-2025-DEMO-{n:03d}",
                "supplier_name": "北京示例大模型科技有限公司",
                "supplier_uscc": uscc("91110108MA01ABCDE"),
                "model_name": "示例大模型",
                "cac_filing_no": "Guangdong-ShiLi-20240101",
                "security_assessment": None,
                "signed_on": "2025-01-15",
                "completed_on": "2025-10-31",
                "amount_fen": amount,
                "invoices": [{"invoice_no": f"2544200000001234{n:04d}", "amount_fen": amount, "issued_on": "2025-11-02"}],
                "payments": [{"bank_ref": f"CMB20251105-DEMO{n}", "amount_fen": amount, "paid_on": "2025-11-05"}],
            }
        ],
        "materials": [
            {"kind": "business_license", "file_id": f"demo-{application_no}-01", "sha256": _sha256(f"{application_no}-01"), "pages": 1}
        ],
    }


def shenzhen_application(application_no: str, n: int) -> dict[str, Any]:
    """A Shenzhen 政务人工智能开放场景 application (CONTRACTS.md `shenzhen.application.submitted`)."""
    contact = _person("演示联系人丙", "19880520", f"67{n}")
    return {
        "program": SZ,
        "application_no": application_no,
        "submitted_at": SZ_SUBMITTED_AT,
        "applicant": {
            "name": f"深圳市示例政务智能演示{n}号有限公司",
            "uscc": uscc(f"91440305MA5K2468{n}"),
            "registered_city": "深圳市",
            "district": "南山区",
            "business_lines": ["corpus_governance", "algorithm_rnd", "application_development"],
            "contact": {"name": contact.name, "mobile": contact.mobile},
        },
        "consortium": {"is_consortium": False, "members": []},
        "product": {
            "name": f"示例政务智能问答平台（演示{n}）",
            "scenario_id": "SZGOV-AI-2025-017",
            "scenario_published_on": "2025-03-15",
            "in_use_since": "2025-08-01",
            "government_funded": False,
            "test_report_file_ids": [f"demo-{application_no}-31"],
            "user_report_file_ids": [f"demo-{application_no}-32"],
        },
        "declarations": {"other_municipal_support_for_same_product": False},
        "materials": [
            {"kind": "application_form", "file_id": f"demo-{application_no}-30", "sha256": _sha256(f"{application_no}-30"), "pages": 12}
        ],
    }


# The expert registry the demo imports (reference kind `experts`, as `subsidy reference import experts
# FILE.csv` does): the local issuer's dev experts (deploy/embedded/dev_users.py), none of them from or
# linked to a demo applicant, so none is in a conflict of interest.
DEMO_EXPERTS = (
    ("expert-01", "刘洋", "深圳示例大学", "12440300MB0000001", "人工智能;自然语言处理"),
    ("expert-02", "陈晨", "深圳市示例政务信息研究院", "12440300MB0000002", "政务信息化"),
    ("expert-03", "杨帆", "示例会计师事务所（演示）", "91440300MA5G0000X", "财务"),
    ("expert-04", "黄磊", "深圳示例大学", "12440300MB0000001", "数据治理"),
)

# Each demo expert's points on the batch's rubric (实用性 40%, 创新性 30%, 可复制推广性 30%).
DEMO_SCORES = {"practicality": 85, "innovation": 80, "replicability": 78}


def experts_csv() -> bytes:
    rows = ["expert_id,name,organisation,organisation_uscc,fields,affiliations"]
    rows += [f"{i},{name},{org},{uscc(org_uscc)},{fields}," for i, name, org, org_uscc, fields in DEMO_EXPERTS]
    return ("\n".join(rows) + "\n").encode()


def expert_scores(note: str) -> dict[str, Any]:
    justification = {"practicality": f"已在区政务服务中心实际使用，用户报告完整（{note}）",
                     "innovation": "采用检索增强与多轮对话，较同类产品有改进",
                     "replicability": "可推广至其他区的政务服务场景"}
    return {"criteria": {k: {"points": v, "justification": justification[k]} for k, v in DEMO_SCORES.items()}}


def with_bad_uscc(payload: dict[str, Any]) -> dict[str, Any]:
    """The same application with a USCC whose check character is wrong (intake: `invalid_identifier`)."""
    good = payload["applicant"]["uscc"]
    wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != good[-1])
    return {**payload, "applicant": {**payload["applicant"], "uscc": good[:-1] + wrong}}


def guangdong_submission(application_no: str, form_id: str, form_sha256: str) -> dict[str, Any]:
    """The Guangdong portal's receipt of the watermarked form (`guangdong.submission.received`)."""
    return {
        "application_no": application_no,
        "gd_case_no": f"GD-DEMO-{application_no}",
        "form_id": form_id,
        "form_sha256": form_sha256,
        "received_at": now_iso(),
    }


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def envelope(event_type: str, topic: str, data: dict[str, Any], *, time: str | None = None) -> dict[str, Any]:
    """A CloudEvents 1.0 structured envelope as the portal of `topic` sends it."""
    return {
        "specversion": "1.0",
        "id": f"demo-{uuid.uuid4().hex}",
        "source": SOURCES[topic][0],
        "type": event_type,
        "time": time or data.get("submitted_at") or now_iso(),
        "subject": data["application_no"],
        "datacontenttype": "application/json",
        "data": data,
    }


def personal_values(payloads: list[dict[str, Any]]) -> list[str]:
    """The ID and mobile numbers in `payloads` (what must never appear unmasked in a log)."""
    found: list[str] = []
    for p in payloads:
        applicant = p.get("applicant", {})
        for who in (applicant.get("legal_representative") or {}, applicant.get("contact") or {}):
            found += [v for k, v in who.items() if k in ("id_number", "mobile") and v]
    return found
