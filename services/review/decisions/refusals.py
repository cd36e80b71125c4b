"""The workflow's refusals as answers an official understands: a status, a code and a Chinese message.

A validator refuses with a reason that starts with a code (`forbidden: ...`, `wrong_state: ...`,
see workflows/lifecycle/base.py); `busy:` is not among them: the decision service asks again.
`Conflict` is the workflow's own error when two decisions were validated in the same activation:
the other official's decision won.
"""

from __future__ import annotations

from dataclasses import dataclass

from subsidy.contracts.lifecycle import RefusalCode, refusal_code


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str  # Chinese, for the official
    reason: str | None = None  # the workflow's own words (English, for operators and the audit)


# Every validator refusal code (subsidy.contracts.lifecycle.RefusalCode) but `busy`, which the
# decision service asks again; plus the workflow's Conflict and a closed lifecycle.
_BY_CODE: dict[str, tuple[int, str]] = {
    RefusalCode.FORBIDDEN: (403, "您的角色无权作出此决定"),
    RefusalCode.WRONG_STATE: (409, "该申报当前不在可作此决定的环节"),
    "conflict": (409, "另一位工作人员刚刚对该申报作出了决定，请刷新后查看"),
    "lifecycle_closed": (409, "该申报已办结，不能再作决定"),
    RefusalCode.STALE: (409, "该版本已不是最新版本"),
    RefusalCode.EMPTY: (409, "暂无待公示的申报"),
    RefusalCode.LATE: (422, "已超过规定期限（逾期视作放弃）"),
    RefusalCode.INVALID: (422, "提交的内容无效"),
    RefusalCode.INCOMPLETE: (422, "纸质材料不齐全：须按要求份数装订成册并加盖公章"),
    RefusalCode.WRONG_FORM: (422, "纸质申报书不是平台出具的带水印申报书"),
    RefusalCode.WRONG_WINDOW: (422, "该申报的纸质材料不在此窗口收取"),
    RefusalCode.OVER_CAP: (422, "金额超过政策规定的上限"),
}
_UNKNOWN = (422, "该决定未被受理")


def refusal_of(reason: str, *, error_type: str | None = None) -> Refusal:
    """The answer for a workflow's refusal `reason` (and the failure's type, when it has one)."""
    known = refusal_code(reason)
    code = "conflict" if error_type == "Conflict" else (known.value if known else "refused")
    status, message = _BY_CODE.get(code, _UNKNOWN)
    if (status, message) == _UNKNOWN:
        code = "refused"
    return Refusal(status=status, code=code, message=message, reason=reason)


def refusal(code: str, reason: str | None = None, message: str | None = None) -> Refusal:
    """A refusal the API gives itself (scope, role, input), before asking the workflow."""
    status, default = _OWN.get(code) or _BY_CODE.get(code) or _UNKNOWN
    return Refusal(status=status, code=code, message=message or default, reason=reason or code)


_OWN: dict[str, tuple[int, str]] = {
    "not_found": (404, "未找到该申报"),
    "task_not_found": (404, "未找到该待办"),
    "program_not_found": (404, "未找到该项目"),
    "invalid_input": (422, "请求内容不完整或格式不正确"),
    "idempotency_key_reused": (422, "该幂等键已用于另一项操作，请使用新的 Idempotency-Key"),
    "task_closed": (409, "该待办已办结，不能转派"),
    "flag_not_found": (404, "未找到该重复申报提示"),  # awards-api
}
