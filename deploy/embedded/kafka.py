"""Apache Kafka 4.1 (KRaft, one node) from Maven Central jars on the local JDK.

The jars are fetched once per machine into the user cache (`~/.cache/subsidy/kafka-<version>`),
the storage is formatted once per run directory, and the broker keeps its data across restarts
of the stack. See docs/embedded-stack.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from deploy.embedded.processes import StackError, log_tail, port_accepts, wait_until

KAFKA_VERSION = "4.1.2"
COMPONENT = "kafka"
POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
T = TypeVar("T")


def jar_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "subsidy" / f"kafka-{KAFKA_VERSION}" / "libs"


def require_jdk() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(COMPONENT, "no JDK found: Kafka 4.1 needs Java 17+ on PATH (Debian: apt-get install openjdk-17-jre-headless)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not match or int(match.group(1)) < 17:
        raise StackError(COMPONENT, f"Java 17+ is required, found: {(out.stderr or out.stdout).splitlines()[:1]}")
    return java


def ensure_jars(progress: Any = print) -> Path:
    """Fetch the broker's jars with Maven into the machine's cache, once; later calls are free."""
    libs = jar_cache_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(COMPONENT, "Maven (mvn) not found: it fetches the Kafka jars from Maven Central (Debian: apt-get install maven)")
    staging = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    log_file = libs.parent / "maven-fetch.log"
    libs.parent.mkdir(parents=True, exist_ok=True)
    progress(f"[kafka] fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once per machine) ...")
    with open(log_file, "wb") as log:
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            stdout=log, stderr=subprocess.STDOUT, timeout=900,
        )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        raise StackError(COMPONENT, f"Maven could not fetch the Kafka jars (Maven Central unreachable? exit {result.returncode})", log_file)
    (staging / ".complete").write_text(KAFKA_VERSION)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    progress(f"[kafka] {len(list(libs.glob('*.jar')))} jars cached in {libs}")
    return libs


def write_config(home: Path, *, port: int, controller_port: int) -> tuple[Path, Path]:
    data = home / "data"
    log_dir = home / "log"
    data.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Offset commits answered at once (default: 5 ms linger), as consumers commit per message.
                "group.coordinator.append.linger.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )
    log4j = home / "log4j2.properties"
    log4j.write_text(
        "\n".join(
            [
                "status = warn",
                "appender.file.type = File",
                "appender.file.name = FILE",
                f"appender.file.fileName = {log_dir / 'server.log'}",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = FILE",
                "logger.kafka.name = kafka",
                "logger.kafka.level = INFO",
                "logger.org.name = org.apache",
                "logger.org.level = WARN",
                "",
            ]
        )
    )
    return properties, log4j


def format_storage_once(java: str, libs: Path, home: Path, properties: Path) -> None:
    """`kafka-storage.sh format --standalone`, only for a fresh data directory."""
    if (home / "data" / "meta.properties").exists():
        return
    log_file = home / "log" / "format.log"
    with open(log_file, "wb") as log:
        result = subprocess.run(
            [java, "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format", "--standalone",
             "-t", str(uuid.uuid4().hex[:22]), "-c", str(properties)],
            stdout=log, stderr=subprocess.STDOUT, timeout=120,
        )
    if result.returncode != 0:
        raise StackError(COMPONENT, f"storage format failed (exit {result.returncode})", log_file)


def broker_argv(java: str, libs: Path, properties: Path, log4j: Path, heap_mb: int) -> list[str]:
    return [
        java,
        f"-Xms{heap_mb // 2}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile=file:{log4j}",
        f"-Dsubsidy.component={COMPONENT}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(properties),
    ]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="stack-probe")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


async def _metadata_answers(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), timeout=5)
        await asyncio.wait_for(admin.describe_cluster(), timeout=5)
        return True
    except Exception:
        return False
    finally:
        try:
            await asyncio.wait_for(admin.close(), timeout=5)
        except Exception:
            pass


def wait_ready(port: int, *, is_running: Any, log_file: Path, timeout: float) -> None:
    """Ready = the client port is open and a metadata request answers (the broker opens its
    port only once caught up and unfenced). Bounded: a wrong controller address hangs forever."""

    def ready() -> bool:
        if not is_running():
            raise StackError(COMPONENT, "the broker exited during start-up:\n" + log_tail(log_file), log_file)
        return port_accepts(port) and run_async(_metadata_answers(f"127.0.0.1:{port}"))

    if not wait_until(ready, timeout=timeout, interval=0.5):
        raise StackError(COMPONENT, f"not ready within {timeout:.0f}s on 127.0.0.1:{port}", log_file)


def python_executable_dir() -> Path:
    return Path(sys.executable).parent
