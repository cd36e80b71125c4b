"""The review service: the officials' side of the platform (README, "The reviewers' API").

Rooms, named by what officials do:

    rules/        the Longgang guide's automatic pre-checks (and the facts they read)
    forms/        the watermarked application form (PDF) and its download
    deadlines/    the paper deadline in working days
    tasks/        the task read model: which step waits for whom (待办 / 已办)
    decisions/    every action an official takes: checked, sent to the workflow, recorded
    audit/        the hash-chained audit log and its verification
    publication/  the public-notice list (公示) of a program batch
    api/          the officials' HTTP API under /api, and who may do what (api/access.py)
    repository.py all of review's SQL
"""

from __future__ import annotations

from fastapi import FastAPI

from services.review import api
from services.review.deadlines.activities import DeadlineActivities
from services.review.forms import api as forms_api
from services.review.forms.documents import FormActivities
from services.review.console import routes as console_routes
from services.review.handlers import router
from services.review.notice import api as notice_api
from services.review.publication.activities import PublicationActivities
from services.review.rules.activities import PreCheckActivities
from services.review.scoring import api as scoring_api
from services.review.scoring.panel_results import PanelResultRetry
from services.review.settings import ReviewSettings
from subsidy.contracts import task_queues
from subsidy.deadlines import WorkingCalendar
from subsidy.runtime import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="review",
    task_queue=task_queues.REVIEW,
    router=router,
    # The calendar is read once at start (package data and operator schedules; file I/O).
    activities=lambda resources: [
        *DeadlineActivities(resources.pool, WorkingCalendar.default()).all(),
        *PublicationActivities(resources.pool, resources.temporal).all(),
        *PreCheckActivities(resources.pool).all(),
        *FormActivities(resources.pool).all(),
    ],
    # Shenzhen panel results that did not reach their lifecycle (busy, unreachable), asked again.
    loops=lambda resources: {"panel_results": PanelResultRetry(
        resources.pool, scoring_api.service(resources), every_s=resources.settings.panel_result_retry_seconds)},
    # The officials' console (/console) is a client of /api, served by the same process.
    routers=lambda: [forms_api.router(), *api.routers(), notice_api.router(), console_routes.router()],
    title="subsidy review: the officials' API",
)


def create_app(settings: ReviewSettings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or ReviewSettings())
