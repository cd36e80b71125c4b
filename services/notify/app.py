"""The notify service: notices chosen from the lifecycle's events and sent by SMS exactly once,
delivery receipts, and the lifecycle told when the approval SMS is delivered."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.notify import api
from services.notify.handlers import router
from services.notify.notices import TEMPLATES_DIR, QuietHours, load_templates
from services.notify.providers.local import LocalSmsProvider
from services.notify.providers.port import SmsRequest
from services.notify.providers.settings import build_providers
from services.notify.sender import SmsSender
from services.notify.service import Notifier
from services.notify.settings import NotifySettings
from subsidy.contracts import task_queues
from subsidy.crypto import cipher_from_settings
from subsidy.identifiers import mask_mobile
from subsidy.runtime import Resources, ServiceDefinition, build_app


def _local_provider(resources: Resources) -> LocalSmsProvider:
    """The embedded stack's provider: records each message in notify's schema and reports its
    delivery on sms.receipts.v1, like a real provider's receipt."""

    async def record(request: SmsRequest) -> None:
        await resources.pool.execute(
            """INSERT INTO local_provider_messages (message_id, mobile_masked, template_code, text)
               VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING""",
            request.message_id, mask_mobile(request.mobile), request.template_code, request.text,
        )

    async def publish(topic: str, key: str, body: bytes) -> None:
        await resources.broker.publish(body, topic=topic, key=key.encode(), headers={"content-type": "application/cloudevents+json"})

    async def lookup(message_id: str) -> datetime | None:
        return await resources.pool.fetchval("SELECT received_at FROM local_provider_messages WHERE message_id = $1", message_id)

    return LocalSmsProvider(record, publish, lookup)


def templates_dir() -> Path:
    """Where the SMS templates are (issue 11: their folder follows the programs folder):
    `SUBSIDY_TEMPLATES_DIR` if set; else, when `SUBSIDY_PROGRAMS_DIR` names a folder with a
    `templates/` folder beside it (`<dir>/../templates/<CODE>.toml`), that one; else the package's
    own (services/notify/templates/). Every program loaded must have its file there, or notify stops
    at start naming it."""
    explicit = os.environ.get("SUBSIDY_TEMPLATES_DIR")
    if explicit:
        return Path(explicit)
    programs_dir = os.environ.get("SUBSIDY_PROGRAMS_DIR")
    if programs_dir and (beside := Path(programs_dir).resolve().parent / "templates").is_dir():
        return beside
    return TEMPLATES_DIR


def _setup(resources: Resources) -> dict[str, Any]:
    settings: Any = resources.settings
    cipher = cipher_from_settings(settings)
    notifier = Notifier(
        pool=resources.pool,
        cipher=cipher,
        templates=load_templates(templates_dir()),  # validated at start: a bad template stops the service here
        quiet_hours=QuietHours(start=settings.sms_quiet_start, end=settings.sms_quiet_end),
        temporal=resources.temporal,
        provider_names=tuple(settings.provider_names),
        retry_after_failed_delivery=timedelta(seconds=settings.sms_retry_after_failed_delivery_seconds),
    )
    providers = build_providers(settings, local=_local_provider(resources))
    return {"notifier": notifier, "sender": SmsSender(resources.pool, providers, cipher, notifier, settings)}


DEFINITION = ServiceDefinition(
    name="notify",
    task_queue=task_queues.NOTIFY,
    router=router,
    setup=_setup,
    loops=lambda resources: {"sms_sender": resources.extras["sender"]},
    routers=lambda: [api.router()],
    title="subsidy notify: SMS log",
)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or NotifySettings())
