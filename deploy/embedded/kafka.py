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
import tempfile
import threading
import zlib
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploy.embedded.processes import StackError, free_port, log_tail, port_accepts, wait_until

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


def ensure_jars(progress: Any = print, *, timeout: float = 900, report_every: float = 3.0) -> Path:
    """Fetch the broker's jars with Maven into the machine's cache, once; later calls are free.

    `make install` runs this (`python -m deploy.embedded.kafka fetch`), so the first stack start
    finds them cached. While Maven downloads, `progress` gets a line every `report_every` seconds
    with the files and megabytes downloaded so far; Maven's whole output goes to maven-fetch.log.
    """
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
    progress(f"[kafka] fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once per machine, ~45 MB) ...")
    started = time.monotonic()
    returncode, downloads = _run_maven(
        [mvn, "-B", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
        log_file, progress=progress, timeout=timeout, report_every=report_every,
    )
    if returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        cause = "timed out" if returncode is None else f"exit {returncode}"
        raise StackError(COMPONENT, f"Maven could not fetch the Kafka jars (Maven Central unreachable? {cause})", log_file)
    (staging / ".complete").write_text(KAFKA_VERSION)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    jars = list(libs.glob("*.jar"))
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    progress(
        f"[kafka] {len(jars)} jars ({size_mb:.0f} MB) cached in {libs} in {time.monotonic() - started:.0f}s"
        f" ({downloads.files} files, {downloads.megabytes:.1f} MB downloaded)"
    )
    return libs


# Maven's batch-mode transfer lines:
#   "[INFO] Downloaded from central: https://.../x.jar (1.2 MB at 3.4 MB/s)"
_DOWNLOADED = re.compile(r"Downloaded from [^:]+: \S+ \(([\d.,]+) (B|kB|KB|MB|GB)\b")
_UNIT_BYTES = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}


@dataclass
class Downloads:
    files: int = 0
    bytes: float = 0.0

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6

    def count(self, line: str) -> bool:
        match = _DOWNLOADED.search(line)
        if match is None:
            return False
        self.files += 1
        self.bytes += float(match.group(1).replace(",", "")) * _UNIT_BYTES[match.group(2)]
        return True


def _run_maven(
    argv: list[str], log_file: Path, *, progress: Any, timeout: float, report_every: float
) -> tuple[int | None, Downloads]:
    """Run Maven with its output into `log_file`, counting its downloads and reporting them
    every `report_every` seconds. Returns (exit code, or None when killed at `timeout`; downloads)."""
    downloads = Downloads()
    timed_out = threading.Event()
    with open(log_file, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, encoding="utf-8", errors="replace",
        )

        def kill() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            last_report = time.monotonic()
            for line in proc.stdout:
                log.write(line)
                if downloads.count(line) and time.monotonic() - last_report >= report_every:
                    progress(f"[kafka]   {downloads.files} files, {downloads.megabytes:.1f} MB downloaded ...")
                    last_report = time.monotonic()
            returncode = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return (None if timed_out.is_set() else returncode), downloads


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
                # Kafka's minimum is 6 s; tests that SIGKILL a consumer give it a shorter session, so
                # the next process gets its partitions sooner (subsidy.messaging.SESSION_TIMEOUT_ENV).
                "group.min.session.timeout.ms=1000",
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
            [java, *class_archive_options(java), "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format", "--standalone",
             "-t", str(uuid.uuid4().hex[:22]), "-c", str(properties)],
            stdout=log, stderr=subprocess.STDOUT, timeout=120,
        )
    if result.returncode != 0:
        raise StackError(COMPONENT, f"storage format failed (exit {result.returncode})", log_file)


def broker_argv(java: str, libs: Path, properties: Path, log4j: Path, heap_mb: int,
                *, record_classes_to: Path | None = None) -> list[str]:
    archive = [f"-XX:ArchiveClassesAtExit={record_classes_to}"] if record_classes_to else class_archive_options(java)
    return [
        java,
        *archive,
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


# The broker's classes, recorded once per machine (AppCDS, a dynamic archive of the JDK): a broker
# that maps them instead of loading and verifying ~6,000 classes from the jars starts with about a
# third less CPU (measured here: 5.9 -> 4.0 s of CPU to ready, 9.5 -> 5.2 s wall on a busy
# 2-core machine), and every `make test` starts three. The install step records them
# (`python -m deploy.embedded.kafka fetch`); a broker started before, or with a JDK the archive does
# not fit (the JVM checks and then loads classes as usual), only starts slower.
def class_archive(java: str) -> Path:
    """Where this JDK's archive of the broker's classes lives (next to the jars it was made from)."""
    jdk = Path(os.path.realpath(java))
    stat = jdk.stat()
    stamp = zlib.crc32(f"{jdk}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return jar_cache_dir().parent / f"broker-classes-{stamp:08x}.jsa"


def class_archive_options(java: str) -> list[str]:
    archive = class_archive(java)
    return [f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []


def ensure_class_archive(java: str, libs: Path, progress: Any = print, *, timeout: float = 180) -> Path | None:
    """Record the broker's classes once: a throwaway broker in a temporary directory starts,
    creates the platform's topics, takes and serves a message, and stops; the JVM writes the archive
    as it exits. Best effort: on failure, brokers start without it (and this says so)."""
    archive = class_archive(java)
    if archive.exists():
        return archive
    progress("[kafka] recording the broker's classes for faster starts (once per machine) ...")
    started = time.monotonic()
    partial = archive.with_name(f"{archive.name}.partial-{os.getpid()}")
    with tempfile.TemporaryDirectory(prefix="subsidy-kafka-classes-") as tmp:
        home = Path(tmp)
        port = free_port()
        properties, log4j = write_config(home, port=port, controller_port=free_port())
        try:
            format_storage_once(java, libs, home, properties)
            with open(home / "log" / "kafka.out", "wb") as log:
                proc = subprocess.Popen(broker_argv(java, libs, properties, log4j, 256, record_classes_to=partial),
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_ready(port, is_running=lambda: proc.poll() is None, log_file=home / "log" / "server.log",
                           timeout=timeout)
                run_async(_exercise(f"127.0.0.1:{port}"))
            finally:
                proc.terminate()
                proc.wait(timeout=120)
        except Exception as exc:  # best effort, whatever failed: the broker starts without the archive
            kept = archive.with_name("broker-classes.log")  # the temporary directory goes; its log stays
            failed_log = getattr(exc, "log_file", None) or home / "log" / "server.log"
            if failed_log.exists():
                shutil.copyfile(failed_log, kept)
            else:
                kept.write_text(f"{exc}\n")
            cause = exc.cause if isinstance(exc, StackError) else str(exc)
            progress(f"[kafka] could not record the broker's classes ({cause.splitlines()[0]}; log: {kept});"
                     " brokers start without them")
            partial.unlink(missing_ok=True)
            return None
    if not partial.exists():
        progress("[kafka] the JVM wrote no class archive; brokers start without it")
        return None
    partial.rename(archive)
    progress(f"[kafka] broker classes recorded in {archive} in {time.monotonic() - started:.0f}s")
    return archive


async def _exercise(bootstrap: str) -> None:
    """What a broker of the stack does early: the platform's topics created, a message taken and served."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    import logging

    from subsidy.contracts.topics import APPLICATION_STATE_CHANGED
    from subsidy.kafka_admin import ensure_topics

    # A new broker elects leaders and makes its offsets topic while this runs: aiokafka's retries
    # would print a warning each; they are expected here and leave nothing to act on.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    await ensure_topics(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(APPLICATION_STATE_CHANGED, b"{}", key=b"warm-up")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(APPLICATION_STATE_CHANGED, bootstrap_servers=bootstrap, group_id="warm-up",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
    finally:
        await consumer.stop()


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


def main(argv: list[str] | None = None) -> int:
    """`python -m deploy.embedded.kafka fetch`: the install step's fetch of the broker's jars
    (`make install`), with progress; a JDK 17+ and Maven must be there (system-packages.sh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m deploy.embedded.kafka")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help=f"fetch the Apache Kafka {KAFKA_VERSION} jars into {jar_cache_dir()}, once")
    fetch.add_argument("--timeout", type=float, default=900, help="seconds Maven may take (default 900)")
    args = parser.parse_args(argv)
    try:
        java = require_jdk()
        libs = ensure_jars(lambda line: print(line, flush=True), timeout=args.timeout)
        ensure_class_archive(java, libs, lambda line: print(line, flush=True))
    except StackError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"[kafka] Apache Kafka {KAFKA_VERSION} jars: {libs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
