"""`GET /api/applications/{application_no}`: what a reviewer needs to decide.

From review's own schema: status and deadline, each version and its materials, the pre-check
findings (clause, explanation, evidence, ruleset version), duplicate-claim flags, the history of
state changes and decisions with who took them, the tasks, the refused attempts at decisions.
An expert (who may not view the scores) reads only their own decisions, tasks and refused
attempts, no panel, and no panel result in the state changes (`access.sees_panel`).
From intake (its events, and every one it refused with the reason) and notify (the SMS sent,
numbers masked), asked with the caller's own token: a service that does not answer makes its
section `{"unavailable": true}`, never the page fail.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, Request

from services.review import repository
from services.review.api.access import Action, can, sees_panel
from services.review.api.common import checked_application_no, local, weekday
from services.review.api.tasks import task_item
from services.review.duplicates.service import flag_view
from services.review.rules.longgang import MATERIAL_NAMES
from subsidy.contracts.lifecycle import PANEL_RESULT_FROM, without_panel_result
from subsidy.identity.claims import Principal, StaffRole
from subsidy.web import ApiError, Started
from subsidy.identity.http import Authenticated

log = structlog.get_logger(__name__)
NOT_FOUND_ZH = "未找到该申报"


async def visible(conn: Any, principal: Principal, application_no: str) -> Any:
    """The application's read-model row if the caller may see it, else None (answered 404)."""
    row = await repository.application(conn, application_no)
    if row is None or not can(principal, Action.VIEW_APPLICATION, row["program"]):
        return None
    if principal.roles == {StaffRole.EXPERT} and not await repository.is_assigned_expert(conn, application_no, principal.subject):
        return None
    return row


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["applications"])

    @api.get("/applications/{application_no}", summary="An application as a reviewer reads it",
             responses={401: {"description": "no or invalid token"}, 404: {"description": "unknown, or outside the caller's scope"}})
    async def application(application_no: str, request: Request, principal: Authenticated, resources: Started) -> dict[str, Any]:
        checked_application_no(application_no)
        async with resources.pool.acquire() as conn:
            row = await visible(conn, principal, application_no)
            if row is None:
                raise ApiError(404, "unknown_application", NOT_FOUND_ZH, detail={"application_no": application_no})
            versions = await repository.versions_of(conn, application_no)
            findings = await repository.findings_of(conn, application_no)
            changes = await repository.state_changes_of(conn, application_no)
            decisions = await repository.decisions_of(conn, application_no)
            tasks = await repository.tasks_of(conn, application_no)
            refused = await repository.refused_attempts_of(conn, application_no)
            experts = await repository.experts_of(conn, application_no)
            flags = await repository.flags_of(conn, application_no)  # awards-api: duplicate / multi-source claims
            computed = await repository.computed_deadlines_of(conn, application_no)
        panel_hidden = not sees_panel(principal, row["program"])
        if panel_hidden:  # an expert: their own part only (others' scores, declines and tasks name the panel)
            decisions = [d for d in decisions if d["actor_subject"] == principal.subject]
            tasks = [t for t in tasks if _own_task(t, principal)]
            refused = [r for r in refused if r["subject"] == principal.subject]
            experts = []
        intake, sms = await asyncio.gather(
            _upstream(resources, request, "intake_url", f"/applications/{application_no}"),
            _upstream(resources, request, "notify_url", f"/sms/{application_no}", not_found={"messages": []}),
        )
        if panel_hidden:
            intake = without_panel_result(intake)
        now = datetime.now(UTC)
        latest = max((f["version"] for f in findings), default=None)
        current = [f for f in findings if f["version"] == latest]
        duplicate = next((f for f in current if f["rule"] == "no_duplicate_application"), None)
        return {
            "application_no": application_no,
            "program": row["program"],
            "status": row["status"],
            "status_since": local(row["status_since"]),
            "version": row["version"],
            "deadline": local(row["deadline"]),
            "deadline_weekday": weekday(row["deadline"]),
            # The working calendar's data version the current deadline was counted with (None: a
            # deadline not counted in working days, e.g. a resubmission date the reviewer chose).
            "calendar_version": next((d["calendar_version"] for d in reversed(computed) if d["deadline"] == row["deadline"]), None),
            "deadlines": [
                {"kind": d["kind"], "deadline": local(d["deadline"]), "deadline_weekday": weekday(d["deadline"]),
                 "trigger_at": local(d["trigger_at"]), "trigger_kind": d["trigger_kind"], "working_days": d["working_days"],
                 "calendar_version": d["calendar_version"], "computed_at": local(d["computed_at"])}
                for d in computed
            ],
            "versions": [
                {"version": v["version"], "submitted_at": local(v["submitted_at"]),
                 "materials": [{**m, "name": MATERIAL_NAMES.get(m.get("kind", ""), m.get("kind"))} for m in json.loads(v["materials"])]}
                for v in versions
            ],
            "pre_checks": [
                {"version": f["version"], "rule": f["rule"], "clause": f["clause"], "passed": f["passed"], "detail": f["detail"],
                 "explanation": f["explanation"], "evidence": json.loads(f["evidence"]), "ruleset_version": f["ruleset_version"],
                 "reference_version": f["reference_version"], "checked_at": local(f["checked_at"])}
                for f in current
            ],
            # The pre-check's own finding (same enterprise in the program, declarations), and the flags
            # detection found across applications, batches and programs, each to acknowledge.
            "duplicate_flags": {
                **({} if duplicate is None else {
                    "flagged": not duplicate["passed"], "detail": duplicate["detail"], **json.loads(duplicate["evidence"])}),
                "flags": [flag_view(f, local) for f in flags],
                "unacknowledged": sum(1 for f in flags if f["acknowledged_by"] is None),
            },
            "history": sorted(
                [_state_change_item(c, panel_hidden=panel_hidden) for c in changes]
                + [{"at": local(d["decided_at"]), "kind": "decision", "action": d["action"], "by": d["actor_id"],
                    "subject": d["actor_subject"], "role": d["actor_role"], "input": json.loads(d["input"]),
                    "to": d["outcome_status"]}
                   for d in decisions],
                key=lambda entry: entry["at"] or "",
            ),
            "tasks": [task_item(t, now) for t in tasks],
            "experts": [
                {"expert": e["expert_subject"], "assigned_by": e["assigned_by"], "assigned_at": local(e["assigned_at"]),
                 "declined_at": local(e["declined_at"]), "decline_reason": e["decline_reason"]} for e in experts
            ],
            "refused": {
                "decisions": [
                    {"at": local(r["occurred_at"]), "action": r["action"], "subject": r["subject"], "role": r["role"],
                     "reason": r["reason"]}
                    for r in refused
                ],
                "events": _refused_events(intake),
            },
            "intake": intake,
            "sms": sms,
        }

    return api


def _own_task(task: Any, principal: Principal) -> bool:
    """The caller's own task: assigned to them, or closed by them."""
    return task["assignee"] == principal.subject or task["closed_by"] == principal.actor_id


def _state_change_item(change: Any, *, panel_hidden: bool) -> dict[str, Any]:
    """A state change of the history; for an expert, one out of the panel's statuses without its
    reason and typed fields (the panel's score, the tier, the award)."""
    hide = panel_hidden and change["from_status"] in PANEL_RESULT_FROM
    fields = None if hide or change["fields"] in (None, "{}") else json.loads(change["fields"])
    return {"at": local(change["occurred_at"]), "kind": "state_change", "from": change["from_status"],
            "to": change["to_status"], "reason": None if hide else change["reason"], "by": change["actor"],
            "deadline": local(change["deadline"]), "version": change["version"],
            **({"fields": fields} if fields is not None else {})}


def _refused_events(intake: dict[str, Any]) -> Any:
    if intake.get("unavailable"):
        return {"unavailable": True}
    return [entry for entry in intake.get("history", []) if entry.get("kind") == "event" and entry.get("outcome") == "refused"]


async def _upstream(resources: Any, request: Request, setting: str, path: str,
                    not_found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Another service's read side, with the caller's own bearer token; `{"unavailable": true}` when it
    does not answer (or answers an error); `not_found` for a 404 that means "nothing yet" (notify
    answers 404 for an application it has not texted)."""
    settings = resources.settings
    base = getattr(settings, setting, None)
    if not base:
        return {"unavailable": True, "reason": "not_configured"}
    try:
        async with httpx.AsyncClient(timeout=getattr(settings, "upstream_timeout_seconds", 3.0)) as client:
            response = await client.get(base.rstrip("/") + path, headers={"authorization": request.headers.get("authorization", "")})
    except httpx.HTTPError as exc:
        log.warning("upstream read side unreachable", upstream=setting, error=type(exc).__name__)
        return {"unavailable": True, "reason": "unreachable"}
    if response.status_code == 404 and not_found is not None:
        return not_found
    if response.status_code != 200:
        return {"unavailable": True, "reason": f"status_{response.status_code}"}
    try:
        return response.json()
    except ValueError:
        return {"unavailable": True, "reason": "not_json"}
