"""Shenzhen experts for tests: officials with the expert role, and the expert registry (the
reference kind `experts`) loaded through the function the CLI calls (scoring/registry.py)."""

from __future__ import annotations

import random
from typing import Any

from services.review.scoring.registry import register_experts
from subsidy.identity.claims import StaffRole
from tests.fixtures.events import uscc
from tests.support.review_world import SZ, Official

PANEL = ("exp-01", "exp-02", "exp-03")
REPLACEMENT = "exp-05"
OWN_ORGANISATION = "exp-04"  # works for the applicant: a conflict of interest
AFFILIATED = "exp-06"  # declared a link with the applicant: a conflict of interest


def expert(subject: str) -> Official:
    return Official(subject, (StaffRole.EXPERT,), (SZ,))


def applicant_uscc() -> str:
    """A fresh valid USCC: each test's applicant is its own (the yearly cap is per applicant)."""
    return uscc("91440300" + "".join(random.choice("0123456789") for _ in range(9)))


def applicant(uscc_: str, name: str = "深圳市评审示例科技有限公司") -> dict[str, Any]:
    return {"name": name, "uscc": uscc_, "registered_city": "深圳市", "district": "南山区",
            "business_lines": ["algorithm_rnd", "application_development"], "contact": {"name": "王五", "mobile": "13912345678"}}


async def register(database: Any, applicant_uscc_: str) -> None:
    """The registry: three independent experts and a replacement, one from the applicant itself, one
    who declared a link with it."""
    rows = [
        "expert_id,name,organisation,organisation_uscc,fields,affiliations",
        "exp-01,陈一,深圳大学,12440300455000000A,人工智能;自然语言处理,",
        "exp-02,林二,北京示例大模型科技有限公司,91110108MA01ABCDEN,大模型,",
        "exp-03,黄三,深圳市示例研究院,12440000MB2C357914,政务信息化,",
        f"exp-04,周四,深圳市评审示例科技有限公司,{applicant_uscc_},数据治理,",
        "exp-05,吴五,深圳市示例研究院,12440000MB2C357914,数据治理;安全,",
        f"exp-06,郑六,深圳大学,12440300455000000A,安全,{applicant_uscc_}",
    ]
    await register_experts(database, ("\n".join(rows) + "\n").encode())


def scores(practicality: int, innovation: int, replicability: int, note: str = "") -> dict[str, Any]:
    return {"criteria": {
        "practicality": {"points": practicality, "justification": f"已在区政务服务中心实际使用，用户报告完整{note}"},
        "innovation": {"points": innovation, "justification": "采用检索增强与多轮对话，较同类产品有改进"},
        "replicability": {"points": replicability, "justification": "可推广至其他区的政务服务场景"},
    }}
