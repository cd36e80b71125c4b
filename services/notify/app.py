"""The notify service. See DESIGN.md for what it owns."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.notify.handlers import router
from services.notify.settings import NotifySettings
from subsidy.contracts import task_queues
from subsidy.runtime import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(name="notify", task_queue=task_queues.NOTIFY, router=router)


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    return build_app(DEFINITION, settings or NotifySettings())
