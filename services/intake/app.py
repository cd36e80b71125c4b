"""The intake service: portal, window and SMS events in (Kafka and a signed webhook); applications
stored; lifecycle workflows started and told; the lifecycle's state changes recorded and published."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.intake import api, webhook
from services.intake.activities import LifecycleActivities
from services.intake.handlers import router
from services.intake.lifecycle_control import LifecycleControl
from services.intake.service import Intake
from services.intake.settings import IntakeSettings
from subsidy.contracts import task_queues
from subsidy.crypto import cipher_from_settings
from subsidy.programs import programs
from subsidy.runtime import Resources, ServiceDefinition, build_app


def _setup(resources: Resources) -> dict[str, Any]:
    settings: Any = resources.settings

    async def publish(topic: str, key: bytes, body: bytes) -> None:
        await resources.broker.publish(body, topic=topic, key=key, headers={"content-type": "application/cloudevents+json"})

    configured = programs()  # one set for both ways in: Kafka and the webhook
    return {
        "intake": Intake(
            pool=resources.pool,
            control=LifecycleControl(resources.temporal),
            cipher=cipher_from_settings(settings),
            programs=configured,
        ),
        webhook.EXTRA: webhook.WebhookReceiver(settings, publish, programs=configured),
    }


DEFINITION = ServiceDefinition(
    name="intake",
    task_queue=task_queues.INTAKE,
    router=router,
    activities=lambda resources: LifecycleActivities(resources.pool).all(),
    setup=_setup,
    routers=lambda: [api.router(), webhook.router()],
    title="subsidy intake: applications read side and inbound webhooks",
)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or IntakeSettings())
