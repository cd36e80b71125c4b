"""The intake service: portal, window and SMS events in (Kafka and a signed webhook); applications
stored; lifecycle workflows started and told; the lifecycle's state changes recorded and published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faststream.asgi import AsgiFastStream

from services.intake.activities import LifecycleActivities
from services.intake.api import PREFIX as APPLICATIONS, ApplicationsApi
from services.intake.handlers import router
from services.intake.lifecycle_control import LifecycleControl
from services.intake.service import Intake
from services.intake.settings import IntakeSettings
from services.intake.webhook import PREFIX as WEBHOOKS, WebhookApp
from subsidy.contracts import task_queues
from subsidy.crypto import cipher_from_settings
from subsidy.programs import programs
from subsidy.runtime import Resources, ServiceDefinition, build_app


def _setup(resources: Resources) -> dict[str, Any]:
    settings: Any = resources.settings
    return {
        "intake": Intake(
            pool=resources.pool,
            control=LifecycleControl(resources.temporal),
            cipher=cipher_from_settings(settings),
            programs=programs(),
        )
    }


def _http_routes(settings: IntakeSettings, resources: Callable[[], Resources | None]) -> list[tuple[str, Any]]:
    async def publish(topic: str, key: bytes, body: bytes) -> None:
        started = resources()
        if started is None:
            raise RuntimeError("intake is starting")  # the webhook answers 503; the sender retries
        await started.broker.publish(body, topic=topic, key=key, headers={"content-type": "application/cloudevents+json"})

    return [(APPLICATIONS, ApplicationsApi(resources)), (WEBHOOKS, WebhookApp(settings, publish))]


DEFINITION = ServiceDefinition(
    name="intake",
    task_queue=task_queues.INTAKE,
    router=router,
    activities=lambda resources: LifecycleActivities(resources.pool).all(),
    setup=_setup,
    http_routes=_http_routes,
)


def create_app(settings: IntakeSettings | None = None) -> AsgiFastStream:
    return build_app(DEFINITION, settings or IntakeSettings())
