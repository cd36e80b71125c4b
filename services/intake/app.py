"""The intake service: portal, window and SMS events in; applications stored; workflows started."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.intake.activities import LifecycleActivities
from services.intake.handlers import router
from services.intake.settings import IntakeSettings
from subsidy.contracts import task_queues
from subsidy.runtime import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="intake",
    task_queue=task_queues.INTAKE,
    router=router,
    activities=lambda resources: LifecycleActivities(resources.pool).all(),
)


def create_app(settings: IntakeSettings | None = None) -> AsgiFastStream:
    return build_app(DEFINITION, settings or IntakeSettings())
