"""The review service. See DESIGN.md for what it owns."""

from __future__ import annotations

from fastapi import FastAPI

from services.review import forms
from services.review.activities import DeadlineActivities
from services.review.forms import FormActivities
from services.review.handlers import router
from services.review.pre_checks import PreCheckActivities
from services.review.publication import PublicationActivities
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
    routers=lambda: [forms.router()],
    title="subsidy review: the officials' API",
)


def create_app(settings: ReviewSettings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or ReviewSettings())
