"""The review service. See DESIGN.md for what it owns."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.review.handlers import router
from services.review.settings import ReviewSettings
from subsidy.contracts import task_queues
from subsidy.runtime import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(name="review", task_queue=task_queues.REVIEW, router=router)


def create_app(settings: ReviewSettings | None = None) -> AsgiFastStream:
    return build_app(DEFINITION, settings or ReviewSettings())
