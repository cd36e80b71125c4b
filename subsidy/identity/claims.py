"""Who is acting: the people of DESIGN.md ("The people, and what each may do") as the platform
knows them from a verified token.

A token's claims (OIDC-style JWT, see `verifier.py`):

    sub        the official's id at the issuer (e.g. `lg-rev-01`)
    name       display name (e.g. 张敏)
    roles      list of role names below
    programs   list of program codes the roles are granted for (e.g. ["LG-AI-MODEL-2025"])
    window     a window clerk's own window code (e.g. "LG-W03"), otherwise absent

Production issuers (Keycloak, MaxKey, an adapter in front of a provincial unified-identity
platform) put these four claims into the access token with their claim mappers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class StaffRole(StrEnum):
    """The seven roles of the platform's people; each is granted per program (clerks per window)."""

    LG_ONLINE_REVIEWER = "lg_online_reviewer"  # 龙岗区人工智能（机器人）署, online review
    LG_BACK_OFFICE_REVIEWER = "lg_back_office_reviewer"  # 后台工作人员 after the Guangdong submission
    WINDOW_CLERK = "window_clerk"  # a clerk at one service window
    SZ_PRE_REVIEWER = "sz_pre_reviewer"  # 市政务服务和数据管理局, 形式预审
    EXPERT = "expert"  # 专家
    PROGRAM_ADMIN = "program_admin"  # the program's administrator
    AUDITOR = "auditor"  # 审计 / 纪检: reads everything of their programs, changes nothing


ROLE_NAMES_ZH: dict[StaffRole, str] = {
    StaffRole.LG_ONLINE_REVIEWER: "线上审核员（龙岗）",
    StaffRole.LG_BACK_OFFICE_REVIEWER: "后台审核员（龙岗）",
    StaffRole.WINDOW_CLERK: "窗口收件员",
    StaffRole.SZ_PRE_REVIEWER: "形式预审员（深圳）",
    StaffRole.EXPERT: "评审专家",
    StaffRole.PROGRAM_ADMIN: "项目管理员",
    StaffRole.AUDITOR: "审计员",
}

_ACTOR_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class InvalidClaims(ValueError):
    """The token verified but its claims do not describe one of the platform's people."""


@dataclass(frozen=True)
class Principal:
    """A verified person (or an operator command acting as an auditor)."""

    subject: str
    name: str
    roles: frozenset[StaffRole]
    programs: frozenset[str]
    window: str | None = None
    token_id: str | None = None

    def has(self, role: StaffRole) -> bool:
        return role in self.roles

    def any_of(self, roles: Iterable[StaffRole]) -> bool:
        return bool(self.roles & set(roles))

    def in_program(self, program: str) -> bool:
        return program in self.programs

    @property
    def actor_id(self) -> str:
        """The id workflows record as the actor (`staff:<sub>`; fits `Actor.id`). A subject with
        characters an actor id cannot carry is recorded by a stable digest instead."""
        if _ACTOR_ID.match(self.subject):
            return f"staff:{self.subject}"
        return "staff:sha256-" + hashlib.sha256(self.subject.encode()).hexdigest()[:32]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidClaims("no subject")
        roles_claim = claims.get("roles") or []
        if not isinstance(roles_claim, list) or not all(isinstance(r, str) for r in roles_claim):
            raise InvalidClaims("roles must be a list of strings")
        known = {role.value for role in StaffRole}
        roles = frozenset(StaffRole(r) for r in roles_claim if r in known)  # others are another app's roles
        programs_claim = claims.get("programs") or []
        if not isinstance(programs_claim, list) or not all(isinstance(p, str) for p in programs_claim):
            raise InvalidClaims("programs must be a list of strings")
        window = claims.get("window")
        if window is not None and not isinstance(window, str):
            raise InvalidClaims("window must be a string")
        name = claims.get("name")
        return cls(
            subject=subject,
            name=name if isinstance(name, str) and name else subject,
            roles=roles,
            programs=frozenset(programs_claim),
            window=window or None,
            token_id=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
        )
