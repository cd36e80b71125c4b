"""The embedded stack's development users: one official per role, per program, per window.

The local issuer's development login page (deploy/embedded/issuer_login.py) lists them; picking
one mints a token with exactly these claims. Production has no such list: its issuer knows the
real officials. Names are made up; subjects are what workflows record (`staff:<subject>`).
"""

from __future__ import annotations

from dataclasses import dataclass

from subsidy.identity.claims import StaffRole

LG = "LG-AI-MODEL-2025"
SZ = "SZ-GOVAI-SCENARIO-2025"
LG_WINDOWS = tuple(f"LG-W{n:02d}" for n in range(1, 14))  # the 13 Longgang service windows
SZ_WINDOW = "SZ-CIVIC-CENTER-WEST"  # 市民中心西区 hall


@dataclass(frozen=True)
class DevUser:
    subject: str
    name: str
    roles: tuple[StaffRole, ...]
    programs: tuple[str, ...]
    window: str | None = None
    duty: str = ""  # one line in Chinese: what this official does

    def claims(self) -> dict[str, object]:
        return {"subject": self.subject, "name": self.name, "roles": self.roles, "programs": self.programs,
                "window": self.window}


def _clerks() -> list[DevUser]:
    clerks = [
        DevUser(f"lg-clerk-w{n:02d}", f"龙岗窗口{n:02d}收件员", (StaffRole.WINDOW_CLERK,), (LG,), code,
                f"龙岗区第{n}号服务窗口，登记纸质材料")
        for n, code in enumerate(LG_WINDOWS, start=1)
    ]
    clerks.append(DevUser("sz-clerk-civic-west", "市民中心西区收件员", (StaffRole.WINDOW_CLERK,), (SZ,), SZ_WINDOW,
                          "深圳市民中心西区大厅，登记预约提交的纸质材料"))
    return clerks


DEV_USERS: tuple[DevUser, ...] = (
    DevUser("lg-online-01", "张敏", (StaffRole.LG_ONLINE_REVIEWER,), (LG,), duty="龙岗区人工智能（机器人）署，线上审核"),
    DevUser("lg-backoffice-01", "李强", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG,), duty="龙岗区后台审核，电话通知确认"),
    *_clerks(),
    DevUser("sz-pre-01", "王芳", (StaffRole.SZ_PRE_REVIEWER,), (SZ,), duty="市政务服务和数据管理局，形式预审"),
    DevUser("expert-01", "刘洋", (StaffRole.EXPERT,), (SZ,), duty="评审专家（人工智能）"),
    DevUser("expert-02", "陈晨", (StaffRole.EXPERT,), (SZ,), duty="评审专家（政务信息化）"),
    DevUser("expert-03", "杨帆", (StaffRole.EXPERT,), (SZ,), duty="评审专家（财务）"),
    DevUser("expert-04", "黄磊", (StaffRole.EXPERT,), (SZ,), duty="评审专家（备选）"),
    DevUser("lg-admin-01", "赵静", (StaffRole.PROGRAM_ADMIN,), (LG,), duty="龙岗项目管理员：资助核定、公示、转派"),
    DevUser("sz-admin-01", "周涛", (StaffRole.PROGRAM_ADMIN,), (SZ,), duty="深圳项目管理员：专家分配、档次、公示"),
    DevUser("auditor-01", "吴洁", (StaffRole.AUDITOR,), (LG, SZ), duty="审计／纪检：查阅两个项目与审计日志"),
)


def by_subject(subject: str) -> DevUser | None:
    return next((user for user in DEV_USERS if user.subject == subject), None)
