"""The programs in scope, as data: which lifecycle each runs and its policy (deadlines, caps).

A new batch or a third program of the same shape is one more entry here (and, with the intake
issue, its filing windows), not new workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from subsidy.contracts.lifecycle import LONGGANG_MODEL_CALL_2025, SHENZHEN_GOVAI_SCENARIO_2025, LifecyclePolicy

SHANGHAI = ZoneInfo("Asia/Shanghai")
YUAN = 100  # fen


@dataclass(frozen=True)
class Program:
    code: str
    lifecycle: str  # workflow type
    policy: LifecyclePolicy


PROGRAMS: dict[str, Program] = {
    LONGGANG_MODEL_CALL_2025: Program(
        code=LONGGANG_MODEL_CALL_2025,
        lifecycle="LonggangModelCallLifecycle",
        policy=LifecyclePolicy(
            paper_working_days=5,  # 五(四): within 5 working days of the SMS
            paper_closing=time(18, 0),
            award_rate_percent=30,  # 二(二)
            award_cap_fen=2_000_000 * YUAN,
        ),
    ),
    SHENZHEN_GOVAI_SCENARIO_2025: Program(
        code=SHENZHEN_GOVAI_SCENARIO_2025,
        lifecycle="ShenzhenGovAiScenarioLifecycle",
        policy=LifecyclePolicy(
            filing_cutoff=datetime(2025, 11, 30, 18, 0, tzinfo=SHANGHAI),
            tier_caps_fen={1: 5_000_000 * YUAN, 2: 3_000_000 * YUAN, 3: 1_000_000 * YUAN},
        ),
    ),
}
