"""`subsidy`: the platform's command line.

    subsidy up                          the embedded stack + intake, review, notify, worker (foreground)
    subsidy stack up|down|status        the embedded stack only (Kafka, Temporal, PostgreSQL, local issuer)
    subsidy run intake|review|notify|worker
    subsidy health                      health of the processes `subsidy up` started
    subsidy token --role R --user ID [--name N] [--program CODE]... [--window CODE] [--ttl S]
                                        a bearer token from the stack's local issuer, on stdout
    subsidy demo [--drive]              sample applications of both programs, end to end (cli/demo.py)
    subsidy status APPLICATION_NO       an application's status, deadline, versions and history (JSON)
    subsidy dlq list [--counts]         what went to the dead-letter topics, and why
    subsidy dlq replay --id S:ID | --reason R   dead letters back on their topic (audited)
    subsidy outbox dead list|requeue ID rows set aside as unpublishable
    subsidy sms list [--application N]  the SMS log, numbers masked
    subsidy audit verify                walk the audit log's hash chain
    subsidy reference import KIND FILE.csv | list   reference lists the review checks read (versioned)
    subsidy migrate                     apply every service schema's migrations
    subsidy topics create               create every Kafka topic from its spec
    subsidy deadline --from T --working-days N [--closing HH:MM]
    subsidy retention run [--now T] [--dry-run]  erase personal data after a batch closes ([retention])

`status` and `sms list` ask intake's and notify's APIs (the processes `subsidy up` started, or
`--intake-url` / `--notify-url`) with an operator token they mint from the run directory's local
issuer (cli/operator.py); they read nothing behind the services' backs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

SERVICES = ("intake", "review", "notify", "worker")


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _run_dir(arg: str | None) -> Path:
    from deploy.embedded.stack import default_run_dir

    return Path(arg).resolve() if arg else default_run_dir()


def _stack_env(run_dir: Path | None = None) -> dict[str, str]:
    """The connection settings of the embedded stack, if one was started in the run directory."""
    from cli.operator import stack_env

    return stack_env(run_dir or _run_dir(None))


def apply_stack_env(run_dir: str | Path | None = None) -> None:
    """Explicit environment variables win; the embedded stack fills what is unset."""
    for key, value in _stack_env(Path(run_dir).resolve() if run_dir else None).items():
        os.environ.setdefault(key, value)


_apply_stack_env = apply_stack_env


# --- stack -------------------------------------------------------------------------------------


def cmd_stack(args: argparse.Namespace) -> int:
    from deploy.embedded import stack
    from deploy.embedded.processes import StackError

    run_dir = Path(args.run_dir).resolve() if args.run_dir else None
    if args.action == "up":
        try:
            state = stack.up(run_dir, progress=_progress, timeout=args.timeout)
        except StackError as exc:
            _err(str(exc))
            return 1
        print(json.dumps(_redacted(state.env), indent=2))
        return 0
    if args.action == "down":
        stack.down(run_dir, purge=args.purge, progress=_progress)
        return 0
    status = stack.status(run_dir)
    print(json.dumps({**status, "env": _redacted(status["env"])}, indent=2))
    return 0


def _redacted(env: dict[str, str]) -> dict[str, str]:
    """Secrets (the generated development keys, URL passwords) are not printed; they stay in
    stack.json (mode 0600)."""
    from cli.output import redacted

    return redacted(env)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- run one process -----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    _apply_stack_env()
    from subsidy.runtime import serve

    if args.port is not None:
        os.environ["HTTP_PORT"] = str(args.port)
    if args.service == "worker":
        from workflows.settings import WorkerSettings
        from workflows.worker import create_app

        settings: Any = WorkerSettings()
        serve(create_app(settings), settings, "worker")
        return 0
    module = __import__(f"services.{args.service}.app", fromlist=["create_app"])
    settings_module = __import__(f"services.{args.service}.settings", fromlist=["*"])
    settings = getattr(settings_module, f"{args.service.capitalize()}Settings")()
    serve(module.create_app(settings), settings, args.service)
    return 0


# --- up: everything in the foreground --------------------------------------------------------


def _get_health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}


def cmd_up(args: argparse.Namespace) -> int:
    from deploy.embedded import stack
    from deploy.embedded.processes import StackError, free_port, log_tail

    run_dir = Path(args.run_dir).resolve() if args.run_dir else stack.default_run_dir()
    was_running = all(c["state"] in ("running", "external") for c in stack.status(run_dir)["components"].values())
    try:
        state = stack.up(run_dir, progress=_progress, timeout=args.timeout)
    except StackError as exc:
        _err(str(exc))
        return 1

    env = {**os.environ, **state.env, "SUBSIDY_RUN_DIR": str(run_dir)}
    logs = run_dir / "services"
    logs.mkdir(parents=True, exist_ok=True)
    children: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    stopping = False

    def stop_all(code: int) -> int:
        nonlocal stopping
        stopping = True
        for name, (proc, _) in children.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, (proc, _) in children.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _progress(f"[{name}] stopped")
        if not was_running and not args.keep_stack:
            stack.down(run_dir, progress=_progress)
        else:
            _progress("the stack keeps running (it was up before); `subsidy stack down` stops it")
        return code

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C stops everything, also when `up` was started with SIGINT ignored (a background job of a
    # non-interactive shell, `nohup`): Python then leaves it ignored, and Ctrl-C would do nothing.
    signal.signal(signal.SIGINT, on_signal)
    try:
        ports = {name: free_port() for name in SERVICES}
        # Review's application view reads intake's events and notify's SMS log.
        peers = {"INTAKE_URL": f"http://127.0.0.1:{ports['intake']}", "NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}"}
        for name in SERVICES:
            port = ports[name]
            log_file = logs / f"{name}.log"
            out = open(log_file, "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "run", name],
                env={**env, **(peers if name == "review" else {}), "HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1",
                     "LOG_FORMAT": "json"},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            )
            out.close()
            children[name] = (proc, port)
            _progress(f"[{name}] starting on http://127.0.0.1:{port} (log: {log_file})")
        (logs / "ports.json").write_text(json.dumps({name: port for name, (_, port) in children.items()}))

        deadline = time.monotonic() + args.timeout
        pending = set(SERVICES)
        pause = 0.05  # a quick first look, then less often (up to 0.5 s) while they start
        while pending:
            for name in sorted(pending):
                proc, port = children[name]
                if proc.poll() is not None:
                    _err(f"{name} exited with code {proc.returncode} (log: {logs / f'{name}.log'})\n{log_tail(logs / f'{name}.log')}")
                    return stop_all(1)
                status, body = _get_health(port)
                if status == 200:
                    pending.discard(name)
                    _progress(f"[{name}] healthy: {body.get('checks')}")
            if pending and time.monotonic() > deadline:
                for name in pending:
                    _err(f"{name} not healthy within {args.timeout:.0f}s: {_get_health(children[name][1])} (log: {logs / f'{name}.log'})")
                return stop_all(1)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)

        probe = asyncio.run(_run_probe(state.env))
        _print_summary(state.env, children, probe)
        from cli.output import next_steps

        print("\n".join(next_steps(state.env, {name: port for name, (_, port) in children.items()}, run_dir,
                                    state.ports.get("temporal_ui"))), flush=True)
        if args.exit_when_healthy:
            return stop_all(0)
        while True:
            for name, (proc, _) in children.items():
                if proc.poll() is not None:
                    _err(f"{name} exited with code {proc.returncode} (log: {logs / f'{name}.log'})")
                    return stop_all(1)
            time.sleep(1)
    except KeyboardInterrupt:
        _progress("\nstopping ...")
        return stop_all(0)
    except BaseException:
        if not stopping:
            stop_all(1)
        raise


async def _run_probe(env: dict[str, str]) -> dict[str, Any]:
    from subsidy.contracts import task_queues
    from subsidy.contracts.workflow_ids import platform_probe_workflow_id
    from workflows.platform_probe.workflows import PlatformProbeInput, PlatformProbeResult

    from subsidy.temporal import connect_from_env

    client = await connect_from_env(env)
    run = uuid.uuid4().hex[:12]
    result: PlatformProbeResult = await client.execute_workflow(
        "PlatformProbe",
        PlatformProbeInput(run=run),
        id=platform_probe_workflow_id(run),
        task_queue=task_queues.WORKFLOWS,
        result_type=PlatformProbeResult,
        execution_timeout=__import__("datetime").timedelta(seconds=60),
    )
    return {"workflow_id": platform_probe_workflow_id(run), "services": [vars(s) for s in result.services]}


def _print_summary(env: dict[str, str], children: dict[str, tuple[subprocess.Popen[bytes], int]], probe: dict[str, Any]) -> None:
    from cli.output import redact_url

    lines = ["", "Platform is up and healthy:"]
    for name, (proc, port) in children.items():
        lines.append(f"  {name:<8} pid {proc.pid:<7} http://127.0.0.1:{port}/health")
    lines += [
        f"  kafka    {env['KAFKA_BOOTSTRAP_SERVERS']}",
        f"  temporal {env['TEMPORAL_ADDRESS']}",
        f"  postgres {redact_url(env['DATABASE_URL'])}",
        f"  issuer   {env.get('OIDC_ISSUER', '(none)')}  (a token: subsidy token --role auditor --user me --program <code>)",
        "APIs: each service's /openapi.json; read sides need `Authorization: Bearer <token>`.",
        *([f"Console (officials, zh-CN): http://127.0.0.1:{children['review'][1]}/console/  "
           "(development login: pick a test official; docs/console.md)"] if "review" in children else []),
        f"End-to-end probe {probe['workflow_id']}: "
        + ", ".join(f"{s['service']} ok (db {s['database']}, kafka {'ok' if s['kafka'] else 'DOWN'})" for s in probe["services"]),
        "`subsidy health` asks them again; Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


# --- health, migrate, topics -------------------------------------------------------------------


def cmd_health(args: argparse.Namespace) -> int:
    from deploy.embedded.stack import default_run_dir

    ports_file = (Path(args.run_dir).resolve() if args.run_dir else default_run_dir()) / "services" / "ports.json"
    if args.endpoint:
        ports = dict(arg.split("=", 1) for arg in args.endpoint)
    elif ports_file.exists():
        ports = json.loads(ports_file.read_text())
    else:
        _err(f"no processes recorded in {ports_file}: run `subsidy up`, or name them as NAME=PORT")
        return 2
    worst = 0
    for name, port in ports.items():
        status, body = _get_health(int(port))
        print(json.dumps({"process": name, "http_status": status, **body}, ensure_ascii=False))
        worst = max(worst, 0 if status == 200 else 1)
    return worst


def cmd_migrate(_args: argparse.Namespace) -> int:
    _apply_stack_env()
    from subsidy.db.migrations import migrate_all
    from subsidy.settings import PlatformSettings

    applied = asyncio.run(migrate_all(PlatformSettings().database_url))
    print(f"migrations applied: {applied}")
    return 0


def cmd_topics(_args: argparse.Namespace) -> int:
    _apply_stack_env()
    from subsidy.kafka_admin import ensure_topics
    from subsidy.settings import PlatformSettings

    settings = PlatformSettings()
    created = asyncio.run(
        ensure_topics(settings.kafka_bootstrap_servers, replication_factor=settings.kafka_topic_replication_factor)
    )
    print(f"topics created: {created}")
    return 0


# --- status, dlq -------------------------------------------------------------------------------


async def _connect(schema: str) -> Any:
    import asyncpg

    from subsidy.settings import PlatformSettings

    return await asyncpg.connect(PlatformSettings().database_url, server_settings={"search_path": f"{schema},public"})


def cmd_status(args: argparse.Namespace) -> int:
    """An application as intake's read side shows it (GET /applications/{no}, operator token)."""
    from cli.operator import OperatorError, get_json, operator_token, service_url

    run_dir = _run_dir(args.run_dir)
    try:
        url = service_url(run_dir, "intake", args.intake_url)
        status, body = get_json(f"{url}/applications/{args.application_no}", operator_token(run_dir))
    except OperatorError as exc:
        _err(str(exc))
        return 2
    if status == 404:
        _err(f"no application {args.application_no}")
        return 1
    if status != 200:
        _err(f"intake answered {status}: {json.dumps(body, ensure_ascii=False)}")
        return 1
    print(json.dumps(body, ensure_ascii=False, indent=2, default=str))
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """What went to the dead-letter topics, newest first, from every service's record of it; or
    `replay`: put dead letters back on their topic (subsidy/messaging.py, audited)."""
    _apply_stack_env()
    if args.action == "replay":
        from subsidy import messaging
        from subsidy.settings import PlatformSettings

        settings = PlatformSettings()
        return messaging.run_replay_cli(
            args, database_url=settings.database_url, bootstrap_servers=settings.kafka_bootstrap_servers
        )
    from subsidy.db.migrations import SERVICE_SCHEMAS

    async def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for schema in SERVICE_SCHEMAS:
            conn = await _connect(schema)
            try:
                if args.counts:
                    query = "SELECT topic, reason, count(*) AS count FROM dead_letters GROUP BY topic, reason ORDER BY topic, reason"
                    found += [{"service": schema, **dict(r)} for r in await conn.fetch(query)]
                else:
                    found += [{"service": schema, **dict(r)} for r in await conn.fetch(
                        """SELECT topic, kafka_partition, kafka_offset, message_key, reason, detail, dead_lettered_at
                           FROM dead_letters WHERE $1::text IS NULL OR topic = $1 ORDER BY id DESC LIMIT $2""",
                        args.topic, args.limit)]
            finally:
                await conn.close()
        return found

    for row in asyncio.run(rows()):
        print(json.dumps(row, ensure_ascii=False, default=str))
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    """`subsidy outbox dead list|requeue ID` against the stack in .run/ (or DATABASE_URL)."""
    _apply_stack_env()
    from subsidy import outbox

    return outbox.run_cli(args)


def cmd_sms(args: argparse.Namespace) -> int:
    """The SMS log as notify's API shows it: what was sent to whom (numbers masked), when, by which
    provider, and its fate."""
    from cli.operator import OperatorError, get_json, operator_token, service_url

    run_dir = _run_dir(args.run_dir)
    try:
        url = service_url(run_dir, "notify", args.notify_url)
        path = f"/sms/{args.application}" if args.application else "/sms"
        status, body = get_json(f"{url}{path}", operator_token(run_dir), params={"limit": args.limit})
    except OperatorError as exc:
        _err(str(exc))
        return 2
    if status == 404 and args.application:
        return 0  # no SMS about it (that the operator may see)
    if status != 200:
        _err(f"notify answered {status}: {json.dumps(body, ensure_ascii=False)}")
        return 1
    for row in body["messages"]:
        print(json.dumps(row, ensure_ascii=False, default=str))
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subsidy", description="Shenzhen AI subsidy platform")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="the embedded stack and all four processes, in the foreground")
    up.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds each readiness wait may take")
    up.add_argument("--exit-when-healthy", action="store_true", help="stop everything once healthy (smoke checks)")
    up.add_argument("--keep-stack", action="store_true", help="leave the stack running on exit")
    up.set_defaults(func=cmd_up)

    stack = sub.add_parser("stack", help="the embedded Kafka, Temporal, PostgreSQL and local OIDC issuer")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    stack.add_argument("--timeout", type=float, default=180.0, help="seconds each readiness wait may take")
    stack.add_argument("--purge", action="store_true", help="with down: delete the stack's data too")
    stack.set_defaults(func=cmd_stack)

    run = sub.add_parser("run", help="run one process of the platform")
    run.add_argument("service", choices=SERVICES)
    run.add_argument("--port", type=int, help="HTTP port of its /health (default HTTP_PORT)")
    run.set_defaults(func=cmd_run)

    health = sub.add_parser("health", help="ask the processes `subsidy up` started (or NAME=PORT ones) for their /health")
    health.add_argument("endpoint", nargs="*", help="NAME=PORT (default: those of the running `subsidy up`)")
    health.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    health.set_defaults(func=cmd_health)

    status = sub.add_parser("status", help="an application: status, deadline, versions, history (JSON)")
    status.add_argument("application_no")
    status.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    status.add_argument("--intake-url", help="intake's address (default: the one `subsidy up` started)")
    status.set_defaults(func=cmd_status)

    dlq = sub.add_parser("dlq", help="messages sent to the dead-letter topics")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--topic", help="only this source topic")
    dlq.add_argument("--limit", type=int, default=50)
    dlq.add_argument("--counts", action="store_true", help="counts per topic and reason instead")
    dlq.set_defaults(func=cmd_dlq)
    # The arguments only: subsidy.messaging and subsidy.outbox (~1 s of imports) load when these run.
    from subsidy.operator_arguments import add_outbox_parser, add_replay_arguments

    add_replay_arguments(dlq)
    add_outbox_parser(sub).set_defaults(func=cmd_outbox)

    sms = sub.add_parser("sms", help="the SMS log (numbers masked)")
    sms.add_argument("action", choices=["list"])
    sms.add_argument("--application", help="only this application number")
    sms.add_argument("--limit", type=int, default=50)
    sms.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    sms.add_argument("--notify-url", help="notify's address (default: the one `subsidy up` started)")
    sms.set_defaults(func=cmd_sms)

    sub.add_parser("migrate", help="apply every service schema's migrations").set_defaults(func=cmd_migrate)
    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=cmd_topics)

    from cli import audit, deadline, demo, reference, retention, token

    token.add_parser(sub)
    demo.add_parser(sub)
    audit.add_parser(sub)
    deadline.add_parser(sub)
    reference.add_parser(sub)
    retention.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
