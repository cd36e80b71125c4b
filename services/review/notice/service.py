"""The notice's rules on review's database: version 1 when the batch publishes, objections during
the period, their decisions (a new version when upheld), the final list when the period ends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import structlog
from pydantic import BaseModel, Field, ValidationError, model_validator
from temporalio.client import Client
from temporalio.service import RPCError

from services.review import repository
from services.review.audit.chain import AuditEntry
from services.review.notice.entries import diff, enterprise_of, list_view, mask_phone, project_of, yuan
from subsidy.contracts.lifecycle import (
    QUERY_ENTRIES,
    QUERY_SUMMARY,
    SIGNAL_OBJECTIONS_CHANGED,
    NoticeClosed,
    PublicationEntry,
    PublicationSummary,
    PublishNotice,
)
from subsidy.contracts.platform_events import ApplicationStateChanged
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from subsidy.identifiers import FreeText
from subsidy.identity.claims import Principal, StaffRole
from subsidy.programs import programs
from subsidy.text import UNSTORABLE_MESSAGE, unstorable_reason
from subsidy.web import ApiError

log = structlog.get_logger(__name__)
PHONE = re.compile(r"^\+?[0-9][0-9 -]{6,19}$")


# --- inputs ------------------------------------------------------------------------------------


class ObjectionInput(BaseModel):
    """An objection as filed (public page or API). Name and phone are required: anonymous
    objections are not accepted (checked by `check_objection`, with a Chinese message). The free
    text the public wrote (name, organisation, grounds) is kept with any ID or mobile number in it
    masked (`FreeText`), in the table and the audit; the phone is checked and kept as `mask_phone`
    shows it (the administrator sees 138****5678 beside the name)."""

    model_config = {"extra": "forbid", "str_strip_whitespace": True}
    name: Annotated[FreeText, Field(max_length=50)] | None = None
    phone: str | None = Field(default=None, max_length=20)
    organisation: Annotated[FreeText, Field(max_length=100)] = ""
    application_no: str = Field(min_length=1, max_length=64)
    grounds: Annotated[FreeText, Field(min_length=1, max_length=2000)]


class ObjectionDecisionInput(BaseModel):
    """uphold (with a new amount, or removal) or dismiss, always with a reason."""

    model_config = {"extra": "forbid", "str_strip_whitespace": True}
    decision: Literal["uphold", "dismiss"]
    reason: Annotated[FreeText, Field(min_length=1, max_length=1000)]
    award_fen: int | None = Field(default=None, ge=0)
    tier: Literal[1, 2, 3] | None = None
    remove: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ObjectionDecisionInput:
        if self.decision == "uphold" and self.remove == (self.award_fen is not None):
            raise ValueError("an upheld objection either removes the entry or sets its new award_fen")
        if self.decision == "dismiss" and (self.remove or self.award_fen is not None or self.tier is not None):
            raise ValueError("a dismissed objection changes nothing")
        return self


def parse(model: type[BaseModel], data: Any) -> Any:
    """`data` as `model`, or 422 `invalid_input`: also for a string or key with NUL or a lone
    surrogate (subsidy/text.py), which no row can hold (the public objection form and JSON alike)."""
    if (reason := unstorable_reason(data)) is not None:
        raise ApiError(422, "invalid_input", UNSTORABLE_MESSAGE, detail={"reason": reason})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise ApiError(422, "invalid_input", "提交的内容不完整或格式不正确：" + "、".join(fields or ["请求体"]),
                       detail={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}) from None


# --- reading ------------------------------------------------------------------------------------


def _row_dicts(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def version_view(conn: asyncpg.Connection, notice: asyncpg.Record, version: int) -> dict[str, Any] | None:
    """A version of a list as the exports and the public page show it (with what changed since the previous)."""
    meta = await repository.notice_version(conn, notice["notice_id"], version)
    if meta is None:
        return None
    rows = _row_dicts(await repository.notice_entries(conn, notice["notice_id"], version))
    view = list_view(notice["program"], rows)
    view.update(
        notice_id=notice["notice_id"], version=version, latest_version=notice["latest_version"],
        period_starts_at=notice["period_starts_at"], period_ends_at=notice["period_ends_at"],
        working_days=notice["working_days"], published_at=notice["published_at"],
        final=notice["final_version"] == version, finalized_at=notice["finalized_at"],
        version_reason=meta["reason"], version_created_at=meta["created_at"],
    )
    if version > 1:
        before = _row_dicts(await repository.notice_entries(conn, notice["notice_id"], version - 1))
        view["changes"] = diff(before, rows)
    return view


# The reason a list's new version gives when an application left it because it was withdrawn.
WITHDRAWN_FROM_LIST = "企业撤回申报，移出公示名单"
# What an open objection to that application says once closed by the withdrawal.
OBJECTION_WITHDRAWN = "企业已撤回该申报并移出公示名单，异议无需再处理"
# The same, when an upheld objection had already taken the application off the list.
OBJECTION_WITHDRAWN_AFTER_REMOVAL = "企业已撤回该申报（此前已移出公示名单），异议无需再处理"


async def withdrawn_during_notice(conn: asyncpg.Connection, event: ApplicationStateChanged) -> bool:
    """An application withdrawn while its list is in its notice period (or waits for objections)
    leaves the list: a new version without it, as an upheld objection's removal makes one, so the
    final list never names a withdrawn application (its lifecycle, closed, cannot be told); open
    objections to it close with it, so they no longer keep the list from becoming final (also when
    an upheld objection had already removed it). In the state change's transaction. Whether the
    list or its objections changed (then the batch is told, after the commit). (A withdrawal that
    review learns of before the list itself is recorded is handled when it is: `store_first_version`.)"""
    if event.to_state != "withdrawn":
        return False
    for listed in await repository.notice_lists_of(conn, event.program):
        if await _leave_list(conn, listed["notice_id"], event.application_no, actor=event.actor, at=event.occurred_at):
            return True
    return False


async def _leave_list(conn: asyncpg.Connection, notice_id: str, application_no: str, *, actor: str, at: datetime) -> bool:
    """`application_no` off the latest version of a list not yet final: a new version, and its open
    objections closed as withdrawn, audited in `actor`'s name (the portal that sent the withdrawal).
    An application an upheld objection already removed gets no new version; its open objections
    close all the same. False when neither the list nor its objections changed."""
    notice = await repository.notice_list(conn, notice_id, for_update=True)
    if notice is None or notice["final_version"] is not None:
        return False
    rows = _row_dicts(await repository.notice_entries(conn, notice_id, notice["latest_version"]))
    kept = [r for r in rows if r["application_no"] != application_no]
    version: int | None = None
    if len(kept) < len(rows):
        version = notice["latest_version"] + 1
        await repository.insert_notice_version(conn, notice_id=notice_id, version=version, created_at=at, created_by=actor,
                                               reason=WITHDRAWN_FROM_LIST, objection_id=None, entries=kept)
    objections = await repository.close_objections_of_withdrawn(
        conn, notice_id, application_no, at=at, by=actor, version=version,
        reason=OBJECTION_WITHDRAWN if version is not None else OBJECTION_WITHDRAWN_AFTER_REMOVAL)
    if version is None and not objections:  # never on this list, or gone with nothing left open
        return False
    await repository.append_audit(conn, AuditEntry(
        occurred_at=at, subject=actor, role="portal", action="withdrawn_from_notice", program=notice["program"],
        application_no=application_no, outcome="accepted",
        input={"notice_id": notice_id, "version": version, "objections_closed": objections},
    ))
    log.info("withdrawn application taken off its list", notice_id=notice_id, version=version, objections_closed=len(objections))
    return True


@dataclass
class NoticeService:
    pool: asyncpg.Pool
    temporal: Client

    async def preview(self, program: str) -> dict[str, Any]:
        """The list the administrator would publish now: the batch's confirmed awards, with names;
        and who waits for the next list (enlisted after the current one was published)."""
        handle = self.temporal.get_workflow_handle(publication_batch_workflow_id(program))
        try:
            summary: PublicationSummary | None = await handle.query(QUERY_SUMMARY, result_type=PublicationSummary)
            entries: tuple[PublicationEntry, ...] = await handle.query(QUERY_ENTRIES, result_type=tuple[PublicationEntry, ...])
        except RPCError as exc:
            log.info("no publication batch to preview", program=program, status=exc.status.name)
            summary, entries = None, ()
        except Exception as exc:  # a batch started before the entries query existed: no preview of its list
            log.warning("publication batch preview unavailable", program=program, error=type(exc).__name__)
            summary, entries = None, ()
        async with self.pool.acquire() as conn:
            facts = await repository.enterprise_names(conn, [e.application_no for e in entries])
            current = await repository.current_notice(conn, program)
        rows = [{"application_no": e.application_no, "enterprise_name": enterprise_of(facts.get(e.application_no, {})),
                 "project": project_of(facts.get(e.application_no, {})), "tier": e.tier, "award_fen": e.award_fen}
                for e in entries]
        view = list_view(program, rows)
        published = summary is not None and summary.notice_id is not None
        view.update(
            published=published,
            notice_id=summary.notice_id if summary else None,
            waiting_for_next=summary.waiting_for_next if summary else 0,
            period_ends_at=summary.period_ends_at if summary else None,
            final=bool(summary and summary.final),
            working_days=programs()[program].publication.notice_working_days,
            current_notice_id=current["notice_id"] if current else None,
        )
        return view

    # --- the batch's activities ----------------------------------------------------------------

    async def store_first_version(self, conn: asyncpg.Connection, program: str, notice: PublishNotice,
                                  entries: tuple[PublicationEntry, ...]) -> bool:
        assert notice.period_starts_at is not None and notice.period_ends_at is not None
        facts = await repository.enterprise_names(conn, [e.application_no for e in entries])
        rows = [{"application_no": e.application_no, "workflow_id": e.workflow_id,
                 "enterprise_name": enterprise_of(facts.get(e.application_no, {})),
                 "project": project_of(facts.get(e.application_no, {})), "tier": e.tier, "award_fen": e.award_fen}
                for e in entries]
        stored = await repository.store_notice_list(
            conn, notice_id=notice.notice_id, program=program, published_at=notice.published_at,
            published_by=notice.actor.id, period_starts_at=notice.period_starts_at, period_ends_at=notice.period_ends_at,
            working_days=programs()[program].publication.notice_working_days, entries=rows,
        )
        if stored:  # withdrawn between the publication and this record: off the list at once
            for withdrawal in await repository.withdrawals_of(conn, [e.application_no for e in entries]):
                await _leave_list(conn, notice.notice_id, withdrawal["application_no"], actor=withdrawal["actor"],
                                  at=withdrawal["occurred_at"])
        return stored

    async def close(self, notice_id: str) -> NoticeClosed:
        """The period has ended: open objections keep the list open; otherwise its latest version is final."""
        async with self.pool.acquire() as conn, conn.transaction():
            notice = await repository.notice_list(conn, notice_id, for_update=True)
            if notice is None:
                raise LookupError(f"notice {notice_id} was never recorded")
            still_open = await repository.open_objections(conn, notice_id)
            if still_open:
                return NoticeClosed(open_objections=still_open)
            final = await repository.finalize_notice(conn, notice_id, datetime.now(UTC))
            rows = await repository.notice_entries(conn, notice_id, final)
            first = await repository.notice_entries(conn, notice_id, 1)
        kept = {r["application_no"] for r in rows}
        log.info("public notice final", notice_id=notice_id, version=final, entries=len(rows))
        return NoticeClosed(
            open_objections=0, final_version=final,
            entries=tuple(PublicationEntry(application_no=r["application_no"], workflow_id=r["workflow_id"],
                                           award_fen=r["award_fen"], tier=r["tier"]) for r in rows),
            removed=tuple(sorted(r["application_no"] for r in first if r["application_no"] not in kept)),
        )

    # --- objections -------------------------------------------------------------------------------

    async def file_objection(self, program: str, data: Any, *, now: datetime | None = None,
                             recorded_by: Principal | None = None, request_id: str | None = None) -> dict[str, Any]:
        """An objection to an entry of the program's current list, during its period; not anonymous.
        `recorded_by`: the administrator who records one received by letter, phone or in person
        (audited in their name; otherwise the public filed it on the page)."""
        if recorded_by is not None and not _may_decide(recorded_by, program):
            raise ApiError(404, "program_not_found", "未找到该项目") if not recorded_by.in_program(program) else \
                ApiError(403, "forbidden", "只有项目管理员可以登记异议")
        objection = parse(ObjectionInput, data)
        if not objection.name or not objection.phone:
            raise ApiError(422, "anonymous_objection", "不受理匿名异议：请填写真实姓名和联系电话")
        if not PHONE.match(objection.phone):
            raise ApiError(422, "bad_phone", "联系电话格式不正确")
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            current = await repository.current_notice(conn, program)
            if current is None:
                raise ApiError(404, "no_notice", "该项目暂无公示名单")
            notice = await repository.notice_list(conn, current["notice_id"], for_update=True)
            assert notice is not None
            if now < notice["period_starts_at"]:
                raise ApiError(409, "not_yet", "公示尚未开始，暂不受理异议")
            if now > notice["period_ends_at"] or notice["final_version"] is not None:
                raise ApiError(409, "late_objection", "公示期已结束，异议不予受理")
            entries = {r["application_no"] for r in await repository.notice_entries(conn, notice["notice_id"], notice["latest_version"])}
            if objection.application_no not in entries:
                raise ApiError(422, "not_on_list", "异议所指的申报不在本期公示名单中")
            objection_id = await repository.insert_objection(
                conn, program=program, notice_id=notice["notice_id"], application_no=objection.application_no,
                name=objection.name, phone_masked=mask_phone(objection.phone), organisation=objection.organisation,
                grounds=objection.grounds, filed_at=now,
            )
            await repository.append_audit(conn, AuditEntry(
                occurred_at=now, subject=recorded_by.subject if recorded_by else "public",
                role="program_admin" if recorded_by else "public",
                action="record_objection" if recorded_by else "file_objection", program=program,
                application_no=objection.application_no, outcome="accepted",
                input={"notice_id": notice["notice_id"], "objection_id": objection_id, "organisation": objection.organisation},
                request_id=request_id,
            ))
        log.info("objection filed", program=program, notice_id=notice["notice_id"], objection_id=objection_id)
        return {"objection_id": objection_id, "notice_id": notice["notice_id"], "status": "open",
                "message": "异议已受理，将由项目管理部门核查处理"}

    async def decide(self, objection_id: int, principal: Principal, data: Any, *, request_id: str | None = None,
                     now: datetime | None = None) -> dict[str, Any]:
        """The administrator upholds (a lower amount or removal: a new version of the list) or dismisses.
        An objection to an entry another upheld objection already removed may be upheld with removal
        (no new version: the list already leaves it out); a new amount for it is refused."""
        decision = parse(ObjectionDecisionInput, data)
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repository.objection(conn, objection_id)
            if row is None or not _may_decide(principal, row["program"]):
                raise ApiError(404, "objection_not_found", "未找到该异议")
            notice = await repository.notice_list(conn, row["notice_id"], for_update=True)
            row = await repository.objection(conn, objection_id, for_update=True)
            assert notice is not None and row is not None
            if row["status"] != "open":
                raise ApiError(409, "already_decided", "该异议已处理")
            if notice["final_version"] is not None:
                raise ApiError(409, "notice_final", "公示名单已确定，不能再修改")
            version = None
            if decision.decision == "uphold":
                rows = _row_dicts(await repository.notice_entries(conn, notice["notice_id"], notice["latest_version"]))
                target = next((r for r in rows if r["application_no"] == row["application_no"]), None)
                if target is None and not decision.remove:
                    raise ApiError(409, "entry_gone", "该申报已不在最新公示名单中，不能调整金额；可认定异议成立并移出名单，或认定异议不成立")
                if target is not None:  # (None: another upheld objection removed it; upheld, the list as it is)
                    if decision.remove:
                        rows = [r for r in rows if r is not target]
                    else:
                        cap = _tier_cap(row["program"], decision.tier if decision.tier is not None else target["tier"])
                        if decision.award_fen is not None and decision.award_fen > target["award_fen"]:
                            # The listed amount already met every cap (30% and CNY 2M a year in
                            # Longgang, CNY 10M an applicant in Shenzhen, the budget); a higher one
                            # would bypass them: raising an award is a new review, not an objection.
                            raise ApiError(422, "above_listed", "异议成立时只能核减金额或移出名单：调整后的金额不得高于公示金额 "
                                           f"{yuan(target['award_fen'])} 元")
                        if cap is not None and decision.award_fen is not None and decision.award_fen > cap:
                            raise ApiError(422, "over_cap", "调整后的金额超过该档次上限")
                        target.update(award_fen=decision.award_fen, tier=decision.tier if decision.tier is not None else target["tier"])
                    version = notice["latest_version"] + 1
                    await repository.insert_notice_version(
                        conn, notice_id=notice["notice_id"], version=version, created_at=now, created_by=principal.actor_id,
                        reason=decision.reason, objection_id=objection_id, entries=rows)
            await repository.decide_objection(
                conn, objection_id, status="upheld" if decision.decision == "uphold" else "dismissed", decided_at=now,
                decided_by=principal.actor_id, reason=decision.reason, new_award_fen=decision.award_fen,
                new_tier=decision.tier, removed=decision.remove, resulting_version=version)
            await repository.append_audit(conn, AuditEntry(
                occurred_at=now, subject=principal.subject, role="program_admin", action="decide_objection",
                program=row["program"], application_no=row["application_no"], outcome="accepted",
                input={"objection_id": objection_id, **decision.model_dump()}, request_id=request_id,
            ))
        await tell_batch(self.temporal, row["program"])
        log.info("objection decided", objection_id=objection_id, decision=decision.decision, version=version)
        return {"objection_id": objection_id, "status": "upheld" if decision.decision == "uphold" else "dismissed",
                "notice_id": notice["notice_id"], "new_version": version}


async def tell_batch(temporal: Client, program: str) -> None:
    """The batch asks again whether the list is final: an objection was decided, or closed by a
    withdrawal (it also asks hourly: a lost signal delays, never loses)."""
    try:
        await temporal.get_workflow_handle(publication_batch_workflow_id(program)).signal(SIGNAL_OBJECTIONS_CHANGED)
    except RPCError as exc:
        log.warning("publication batch not told that its objections changed", program=program, status=exc.status.name)


def _may_decide(principal: Principal, program: str) -> bool:
    return principal.in_program(program) and principal.has(StaffRole.PROGRAM_ADMIN)


def _tier_cap(program: str, tier: int | None) -> int | None:
    scoring = programs()[program].scoring
    if scoring is None or tier is None:
        return None
    return scoring.tier_maxima().get(tier)
