"""The whole platform as real processes (intake, review, worker, and notify when asked) on the real
stack, and officials calling review's API with tokens of the stack's local issuer.

Portal events go in on Kafka as the portals send them (tests/fixtures/events.py); every human
step goes through `POST /api/...`; nothing here calls a Temporal update.
"""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import LocalIssuer
from subsidy.programs import PROGRAMS_DIR
from tests.fixtures import events
from tests.support.intake_world import application_no, event
from deploy.embedded.processes import free_port
from tests.support.processes import env_key, own_or_shared_services

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"
__all__ = ["LG", "SZ", "Official", "ReviewWorld", "application_no", "event", "review_world"]


@dataclass(frozen=True)
class Official:
    subject: str
    roles: tuple[StaffRole, ...]
    programs: tuple[str, ...]
    window: str | None = None
    name: str | None = None  # shown in the console's top bar (default: the subject)

    @property
    def actor_id(self) -> str:
        return f"staff:{self.subject}"


@dataclass
class ReviewWorld:
    stack: Any
    ports: dict[str, int]
    database: asyncpg.Connection
    producer: AIOKafkaProducer
    issuer: LocalIssuer
    http: httpx.AsyncClient
    logs: dict[str, Path]
    tokens: dict[Official, str] = field(default_factory=dict)

    def token(self, who: Official) -> str:
        if who not in self.tokens:
            self.tokens[who] = self.issuer.mint(subject=who.subject, roles=who.roles, programs=who.programs,
                                                window=who.window, name=who.name or who.subject)
        return self.tokens[who]

    @property
    def review(self) -> str:
        return f"http://127.0.0.1:{self.ports['review']}"

    async def get(self, who: Official | None, path: str, **params: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(who)}"} if who else {}
        return await self.http.get(self.review + path, params={k: v for k, v in params.items() if v is not None}, headers=headers)

    async def post(self, who: Official, path: str, body: dict[str, Any] | None = None, *, key: str | None = "new") -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(who)}"}
        if key is not None:
            headers["idempotency-key"] = f"test-{uuid.uuid4().hex}" if key == "new" else key
        return await self.http.post(self.review + path, json=body or {}, headers=headers)

    async def send(self, event_type: str, app: str, **data: Any) -> dict[str, Any]:
        topic, envelope = event(event_type, app, data=data or None)
        await self.producer.send_and_wait(topic, events.encode(envelope), key=app.encode())
        return envelope

    async def view(self, who: Official, app: str) -> dict[str, Any]:
        response = await self.get(who, f"/api/applications/{app}")
        assert response.status_code == 200, response.text
        return response.json()

    async def reach(self, who: Official, app: str, status: str, timeout: float = 90) -> dict[str, Any]:
        """Wait until review's read model shows the application in `status` (seen by `who`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = None
        while True:
            response = await self.get(who, f"/api/applications/{app}")
            if response.status_code == 200:
                seen = response.json()["status"]
                if seen == status:
                    return response.json()
            assert loop.time() < deadline, f"{app} did not reach {status} (last seen {seen})"
            await asyncio.sleep(0.25)

    async def task_of(self, who: Official, app: str, step: str, timeout: float = 90) -> dict[str, Any]:
        """Wait until `app`'s task of `step` is in `who`'s list (待办)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            response = await self.get(who, "/api/tasks", step=step, page_size=100)
            assert response.status_code == 200, response.text
            found = [t for t in response.json()["items"] if t["application_no"] == app]
            if found:
                return found[0]
            assert loop.time() < deadline, f"no {step} task of {app} for {who.subject}"
            await asyncio.sleep(0.25)


def programs_dir(tmp: Path, **policy: str) -> Path:
    """A copy of the programs' configuration with policy values changed (e.g. a short SMS receipt wait)."""
    target = tmp / "programs"
    target.mkdir(exist_ok=True)
    for path in PROGRAMS_DIR.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        for name, value in policy.items():
            if name not in tomllib.loads(text)["policy"]:
                continue  # another program's setting
            text = "\n".join(f"{name} = {value}" if line.split("=")[0].strip() == name else line for line in text.splitlines())
        (target / path.name).write_text(text, encoding="utf-8")
    return target


@asynccontextmanager
async def review_world(stack: Any, tmp: Path, *, notify: bool = False, extra_env: dict[str, str] | None = None,
                       review_env: dict[str, str] | None = None, shared: bool = False) -> AsyncIterator[ReviewWorld]:
    """`shared`: the processes are left running for the next test that asks for a shared world with
    the same options (`shared_services`; only the files of tests/conftest.py SHARED_PLATFORM_FILES
    keep them from one test to the next); the logs are then where the first of them started them
    (`ReviewWorld.logs`)."""
    env = {**stack.env, **(extra_env or {})}
    database = await asyncpg.connect(stack.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)
    await producer.start()
    issuer = LocalIssuer.for_run_dir(stack.run_dir, stack.env["OIDC_ISSUER"])
    try:
        # All four start together (review only needs to know the others' ports, not to wait for them).
        ports = {name: free_port() for name in ("intake", "notify", "worker", "review")}
        urls = {"INTAKE_URL": f"http://127.0.0.1:{ports['intake']}",
                # Nothing listens there when notify is not started: the view says the SMS section is unavailable.
                "NOTIFY_URL": f"http://127.0.0.1:{ports['notify'] if notify else 9}"}
        specs = {"intake": (env, tmp / "intake.log")}
        if notify:
            specs["notify"] = ({**env, "SMS_PROVIDERS": "local"}, tmp / "notify.log")
        specs["worker"] = (env, tmp / "worker.log")
        specs["review"] = ({**env, **urls, **(review_env or {})}, tmp / "review.log")
        fixed = {name: ports[name] for name in specs}
        key = (str(stack.run_dir), notify, env_key(extra_env), env_key(review_env)) if shared else None
        with own_or_shared_services(specs, shared_key=key, ports=fixed) as (started, logs):
            async with httpx.AsyncClient(timeout=60) as http:
                yield ReviewWorld(stack, started, database, producer, issuer, http, logs)
    finally:
        await producer.stop()
        await database.close()
