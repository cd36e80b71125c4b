"""`subsidy stack up|down|status`: the embedded default stack in one run directory.

Layout of the run directory (default `.run/` at the project root, or `SUBSIDY_RUN_DIR`):

    stack.json            ports, pids, the settings the services read (dev keys too: mode 0600)
    stack.lock            held while `up`/`down` run, so two of them never race
    kafka/    data/ log/ server.properties log4j2.properties
    temporal/ temporal.db log/
    postgres/ data/ log/
    identity/ signing-key.pem   the local issuer's key (mode 0600), made on the first `up`
    issuer/   log/          the local OIDC issuer (deploy/embedded/issuer.py): JWKS on loopback

`up` is idempotent: components already running (same pid, same start time) are left alone,
stopped ones are started again on the ports they had, so their data stays valid.
`down` stops only the processes recorded in stack.json, and keeps the data (`--purge` removes it).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.embedded import kafka, postgres, temporal
from deploy.embedded.issuer import issuer_url
from deploy.embedded.processes import (
    ProcessRecord,
    StackError,
    free_port,
    log_tail,
    port_is_free,
    spawn,
    stop,
    wait_until,
)
from subsidy.identity.local_issuer import AUDIENCE, KEY_FILE, load_or_create_key

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("postgres", "kafka", "temporal", "issuer")
Progress = Callable[[str], None]
_SAVING = threading.Lock()  # stack.json is written by one thread at a time


def default_run_dir() -> Path:
    return Path(os.environ.get("SUBSIDY_RUN_DIR") or PROJECT_ROOT / ".run").resolve()


@dataclass
class StackState:
    """What stack.json holds."""

    run_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    external_database: bool = False

    @property
    def path(self) -> Path:
        return self.run_dir / "stack.json"

    @classmethod
    def load(cls, run_dir: Path) -> StackState:
        path = run_dir / "stack.json"
        if not path.exists():
            return cls(run_dir=run_dir)
        raw = json.loads(path.read_text())
        return cls(
            run_dir=run_dir,
            ports={k: int(v) for k, v in raw.get("ports", {}).items()},
            processes={k: ProcessRecord.from_json(v) for k, v in raw.get("processes", {}).items()},
            env=dict(raw.get("env", {})),
            external_database=bool(raw.get("external_database", False)),
        )

    def save(self) -> None:
        """Write stack.json; safe to call from the threads that start the components at once (a
        snapshot of each mapping is taken first, and one writer at a time replaces the file)."""
        with _SAVING:
            snapshot = {
                "ports": dict(self.ports),
                "processes": {k: v.to_json() for k, v in dict(self.processes).items()},
                "env": dict(self.env),
                "external_database": self.external_database,
            }
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.touch(mode=0o600)  # holds the development keys
            tmp.write_text(json.dumps(snapshot, indent=2))
            tmp.replace(self.path)

    def running(self, component: str) -> bool:
        record = self.processes.get(component)
        return record is not None and record.is_alive()

    def log_file(self, component: str) -> Path:
        return {
            "kafka": self.run_dir / "kafka" / "log" / "kafka.out",
            "temporal": self.run_dir / "temporal" / "log" / "temporal.log",
            "postgres": self.run_dir / "postgres" / "log" / "postgres.log",
            "issuer": self.run_dir / "issuer" / "log" / "issuer.log",
        }[component]


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _port(state: StackState, name: str, component: str, *, movable: bool = False) -> int:
    """A port recorded for this run directory, or a new free one. A recorded port now taken by
    something else is an error when clients or the component's data expect it; a `movable` one
    (an auxiliary port nobody is configured with, e.g. Temporal's metrics) is simply chosen anew,
    since a port from the ephemeral range may have been taken by any connection meanwhile."""
    port = state.ports.get(name)
    if port is not None and not port_is_free(port):
        if not movable:
            raise StackError(component, f"port {port} ({name}) is taken by another process; stop it or use another SUBSIDY_RUN_DIR")
        port = None
    if port is None:
        taken = set(state.ports.values())
        port = free_port()
        while port in taken:  # chosen one after another before any is bound: never the same twice
            port = free_port()
        state.ports[name] = port
    return port


def up(run_dir: Path | None = None, *, progress: Progress = print, timeout: float = 120.0) -> StackState:
    """Start whatever is not running, wait for readiness, create topics, apply migrations.

    The four components do not depend on one another, so they start at the same time, each in its
    own thread (PostgreSQL's initdb, Kafka's storage format and JVM start, the Temporal dev server
    and the issuer overlap): a fresh stack is ready when its slowest component is (Kafka), not
    after the sum of them. Their ports are chosen first, so a port taken by another process is
    reported before anything starts."""
    run_dir = (run_dir or default_run_dir()).resolve()
    with _locked(run_dir):
        state = StackState.load(run_dir)
        external_url = os.environ.get("DATABASE_URL")
        _reserve_ports(state, external_url)
        _in_parallel(
            {
                "postgres": lambda: _up_postgres(state, external_url, progress, timeout),
                "kafka": lambda: _up_kafka(state, progress, timeout),
                "temporal": lambda: _up_temporal(state, progress, timeout),
                "issuer": lambda: _up_issuer(state, progress, timeout),
            }
        )
        state.env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{state.ports['kafka']}",
                "TEMPORAL_ADDRESS": f"127.0.0.1:{state.ports['temporal']}",
                "TEMPORAL_NAMESPACE": "default",
            }
        )
        _dev_secrets(state)
        state.save()
        _prepare(state, progress)
        return state


def _reserve_ports(state: StackState, external_url: str | None) -> None:
    """The ports of every component that is not running, recorded or newly chosen, in the order
    the components were started one after another (a taken port names its component)."""
    if not external_url and not state.running("postgres"):
        _port(state, "postgres", postgres.COMPONENT)
    if not state.running("kafka"):
        _port(state, "kafka", kafka.COMPONENT)
        _port(state, "kafka_controller", kafka.COMPONENT)
    if not state.running("temporal"):
        _port(state, "temporal", temporal.COMPONENT)
        for name in ("ui", "http", "metrics"):
            _port(state, f"temporal_{name}", temporal.COMPONENT, movable=True)
    if not state.running("issuer"):
        _port(state, "issuer", "issuer")


def _in_parallel(steps: dict[str, Callable[[], None]]) -> None:
    """Run each step in its own thread and wait for all of them; then raise the first failure (in
    the order given). Daemon threads: Ctrl-C ends `stack up` at once, and whatever was already
    spawned is recorded in stack.json for `stack down`."""
    failures: dict[str, BaseException] = {}

    def run(name: str, step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:  # re-raised in the caller's thread
            failures[name] = exc

    threads = [threading.Thread(target=run, args=item, name=f"stack-up-{item[0]}", daemon=True) for item in steps.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a bounded join keeps the main thread responsive to Ctrl-C
    for name in steps:
        if name in failures:
            raise failures[name]


def _dev_secrets(state: StackState) -> None:
    """Development keys (personal data, Temporal payloads, webhooks), made on the first `up` of this run directory
    and kept in stack.json, so data sealed by one run still opens in the next; and the local SMS
    provider."""
    from deploy.embedded.dev_keys import dev_webhook_keys
    from subsidy.crypto import generate_dev_keys

    if "PERSONAL_DATA_KEYS" not in state.env:
        state.env.update(generate_dev_keys())
    if "TEMPORAL_PAYLOAD_KEYS" not in state.env:  # every process of the run dir encrypts Temporal payloads
        from subsidy.payload_codec import generate_dev_payload_keys

        state.env.update(generate_dev_payload_keys())
    if "WEBHOOK_KEYS" not in state.env:
        state.env["WEBHOOK_KEYS"] = json.dumps(dev_webhook_keys())
    state.env.setdefault("SMS_PROVIDERS", "local")  # no SMS leaves the machine: notify's local provider


def _up_postgres(state: StackState, external_url: str | None, progress: Progress, timeout: float) -> None:
    if external_url:
        state.external_database = True
        state.env["DATABASE_URL"] = external_url
        progress("[postgres] using the external server named by DATABASE_URL")
        return
    state.external_database = False
    home = state.run_dir / "postgres"
    log_file = state.log_file("postgres")
    if state.running("postgres"):
        progress(f"[postgres] already running (pid {state.processes['postgres'].pid})")
    else:
        port = _port(state, "postgres", postgres.COMPONENT)
        progress(f"[postgres] starting PostgreSQL on 127.0.0.1:{port} ...")
        user = postgres.run_as_user()
        data = postgres.init_once(home, user)
        proc, record = spawn(
            postgres.COMPONENT, postgres.server_argv(data, port), log_file=log_file, user=user, stop_signal=postgres.STOP_SIGNAL
        )
        state.processes["postgres"] = record
        state.save()
        started = time.monotonic()
        postgres.wait_ready(port, is_running=record.is_alive, log_file=log_file, timeout=timeout)
        progress(f"[postgres] ready in {time.monotonic() - started:.1f}s (log: {log_file})")
    state.env["DATABASE_URL"] = postgres.ensure_database(state.ports["postgres"], log_file)


def _up_kafka(state: StackState, progress: Progress, timeout: float) -> None:
    log_file = state.log_file("kafka")
    if state.running("kafka"):
        progress(f"[kafka] already running (pid {state.processes['kafka'].pid})")
        return
    java = kafka.require_jdk()
    libs = kafka.ensure_jars(progress)
    port = _port(state, "kafka", kafka.COMPONENT)
    controller_port = _port(state, "kafka_controller", kafka.COMPONENT)
    home = state.run_dir / "kafka"
    properties, log4j = kafka.write_config(home, port=port, controller_port=controller_port)
    kafka.format_storage_once(java, libs, home, properties)
    progress(f"[kafka] starting Apache Kafka {kafka.KAFKA_VERSION} (KRaft) on 127.0.0.1:{port} ...")
    heap = int(os.environ.get("SUBSIDY_KAFKA_HEAP_MB", "512"))
    _, record = spawn(kafka.COMPONENT, kafka.broker_argv(java, libs, properties, log4j, heap), log_file=log_file)
    state.processes["kafka"] = record
    state.save()
    started = time.monotonic()
    kafka.wait_ready(port, is_running=record.is_alive, log_file=home / "log" / "server.log", timeout=timeout)
    progress(f"[kafka] ready in {time.monotonic() - started:.1f}s (log: {home / 'log' / 'server.log'})")


def _up_issuer(state: StackState, progress: Progress, timeout: float) -> None:
    """The local OIDC issuer: its key made once (before the process starts, so the issuer and
    `subsidy token` never race to create it), its JWKS served on loopback, and the settings that
    make every service verify its tokens."""
    load_or_create_key(state.run_dir / KEY_FILE)
    log_file = state.log_file("issuer")
    if state.running("issuer"):
        progress(f"[issuer] already running (pid {state.processes['issuer'].pid})")
    else:
        port = _port(state, "issuer", "issuer")
        progress(f"[issuer] starting the local OIDC issuer on {issuer_url(port)} ...")
        argv = [sys.executable, "-m", "deploy.embedded.issuer", "--run-dir", str(state.run_dir), "--port", str(port)]
        _, record = spawn("issuer", argv, log_file=log_file, cwd=PROJECT_ROOT)
        state.processes["issuer"] = record
        state.save()
        started = time.monotonic()
        if not wait_until(lambda: _serves_jwks(port) or not record.is_alive(), timeout=timeout, interval=0.2) or not _serves_jwks(port):
            raise StackError("issuer", f"no JWKS on {issuer_url(port)}/jwks.json within {timeout:.0f}s\n{log_tail(log_file)}", log_file)
        progress(f"[issuer] ready in {time.monotonic() - started:.1f}s (log: {log_file})")
    url = issuer_url(state.ports["issuer"])
    state.env.update({"OIDC_ISSUER": url, "OIDC_AUDIENCE": AUDIENCE, "OIDC_JWKS_URL": f"{url}/jwks.json"})


def _serves_jwks(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"{issuer_url(port)}/jwks.json", timeout=2) as response:
            return response.status == 200 and bool(json.loads(response.read()).get("keys"))
    except (OSError, ValueError):
        return False


def _up_temporal(state: StackState, progress: Progress, timeout: float) -> None:
    log_file = state.log_file("temporal")
    namespace = "default"
    if state.running("temporal"):
        progress(f"[temporal] already running (pid {state.processes['temporal'].pid})")
        return
    port = _port(state, "temporal", temporal.COMPONENT)
    ports = {name: _port(state, f"temporal_{name}", temporal.COMPONENT, movable=True) for name in ("ui", "http", "metrics")}
    progress(f"[temporal] starting the Temporal dev server on 127.0.0.1:{port} (UI http://127.0.0.1:{ports['ui']}) ...")
    argv = temporal.server_argv(
        state.run_dir / "temporal",
        port=port,
        ui_port=ports["ui"],
        http_port=ports["http"],
        metrics_port=ports["metrics"],
        namespace=namespace,
    )
    _, record = spawn(temporal.COMPONENT, argv, log_file=log_file)
    state.processes["temporal"] = record
    state.save()
    started = time.monotonic()
    temporal.wait_ready(port, namespace=namespace, is_running=record.is_alive, log_file=log_file, timeout=timeout)
    progress(f"[temporal] ready in {time.monotonic() - started:.1f}s (log: {log_file})")


def _prepare(state: StackState, progress: Progress) -> None:
    """Topics from their specs (auto-creation is off) and every service's migrations."""
    from subsidy.db.migrations import migrate_all
    from subsidy.kafka_admin import ensure_topics

    created = kafka.run_async(ensure_topics(state.env["KAFKA_BOOTSTRAP_SERVERS"]))
    progress(f"[kafka] topics ready ({created} created)")
    applied = kafka.run_async(migrate_all(state.env["DATABASE_URL"]))
    progress(f"[postgres] migrations ready ({applied} applied)")


def down(run_dir: Path | None = None, *, purge: bool = False, progress: Progress = print) -> dict[str, str]:
    """Stop the recorded processes of this run directory (newest first) and nothing else."""
    run_dir = (run_dir or default_run_dir()).resolve()
    outcome: dict[str, str] = {}
    if not (run_dir / "stack.json").exists():
        progress(f"no stack recorded in {run_dir}")
        return outcome
    with _locked(run_dir):
        state = StackState.load(run_dir)
        for component in reversed(COMPONENTS):
            record = state.processes.get(component)
            if record is None:
                continue
            outcome[component] = stop(record, timeout=60 if component == "postgres" else 30)
            progress(f"[{component}] {outcome[component]}")
            del state.processes[component]
            state.save()
    if purge:
        for name in ("kafka", "temporal", "postgres", "issuer", "identity", "stack.json"):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
        progress(f"purged {run_dir}")
    return outcome


def stop_component(component: str, run_dir: Path | None = None, *, progress: Progress = print) -> str:
    """Stop one component (its data stays); the next `up` starts it again on the same ports."""
    run_dir = (run_dir or default_run_dir()).resolve()
    with _locked(run_dir):
        state = StackState.load(run_dir)
        record = state.processes.pop(component, None)
        outcome = stop(record) if record else "not running"
        state.save()
    progress(f"[{component}] {outcome}")
    return outcome


def status(run_dir: Path | None = None) -> dict[str, Any]:
    run_dir = (run_dir or default_run_dir()).resolve()
    state = StackState.load(run_dir)
    components: dict[str, Any] = {}
    for component in COMPONENTS:
        if component == "postgres" and state.external_database:
            components[component] = {"state": "external"}
            continue
        record = state.processes.get(component)
        components[component] = {
            "state": "running" if record and record.is_alive() else "stopped",
            "pid": record.pid if record else None,
            "port": state.ports.get(component),
            "log": str(state.log_file(component)),
        }
    return {"run_dir": str(run_dir), "components": components, "env": state.env}
