"""The install step's fetch of the Kafka jars (`python -m deploy.embedded.kafka fetch`), with a
stub `mvn` on PATH that prints Maven's batch-mode transfer lines and writes the jars."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.embedded import kafka
from deploy.embedded.processes import StackError

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"

MAVEN_OUTPUT = """\
[INFO] Scanning for projects...
[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.1.2/kafka_2.13-4.1.2.pom
[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.1.2/kafka_2.13-4.1.2.pom (3.9 kB at 10 kB/s)
[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.1.2/kafka_2.13-4.1.2.jar (6.5 MB at 9.1 MB/s)
[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/scala-lang/scala-library/2.13.16/scala-library-2.13.16.jar (1,234 kB at 2 MB/s)
[INFO] BUILD SUCCESS
"""


@pytest.fixture
def stub_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `mvn` that records each call, prints MAVEN_OUTPUT and copies two jars into
    -DoutputDirectory; `exit_code`/`sleep` files in tmp_path change what it does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "output.txt").write_text(MAVEN_OUTPUT)
    mvn = bin_dir / "mvn"
    mvn.write_text(
        f"#!{BASH}\n"
        f'echo "$*" >> "{tmp_path}/calls"\n'
        f'[ -e "{tmp_path}/sleep" ] && exec sleep 30\n'
        f'cat "{tmp_path}/output.txt"\n'
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac; done\n'
        'mkdir -p "$out" && echo jar > "$out/kafka_2.13-4.1.2.jar" && echo jar > "$out/kafka-clients-4.1.2.jar"\n'
        f'[ -e "{tmp_path}/exit_code" ] && exit "$(cat "{tmp_path}/exit_code")"\n'
        "exit 0\n"
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def calls(stub: Path) -> list[str]:
    path = stub / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_fetch_reports_downloads_and_caches_once(stub_mvn: Path) -> None:
    lines: list[str] = []
    libs = kafka.ensure_jars(lines.append, report_every=0)

    assert libs == stub_mvn / "cache" / "subsidy" / f"kafka-{kafka.KAFKA_VERSION}" / "libs"
    assert sorted(p.name for p in libs.glob("*.jar")) == ["kafka-clients-4.1.2.jar", "kafka_2.13-4.1.2.jar"]
    assert (libs / ".complete").read_text() == kafka.KAFKA_VERSION
    assert lines[0].startswith("[kafka] fetching Apache Kafka 4.1.2 jars")
    # One progress line per downloaded file (report_every=0), counting files and megabytes.
    assert lines[1:4] == [
        "[kafka]   1 files, 0.0 MB downloaded ...",
        "[kafka]   2 files, 6.5 MB downloaded ...",
        "[kafka]   3 files, 7.7 MB downloaded ...",
    ]
    assert lines[-1].startswith(f"[kafka] 2 jars (0 MB) cached in {libs}")
    assert lines[-1].endswith("(3 files, 7.7 MB downloaded)")
    # Maven's whole output is kept beside the cache.
    assert (libs.parent / "maven-fetch.log").read_text() == MAVEN_OUTPUT
    assert len(calls(stub_mvn)) == 1

    again: list[str] = []
    assert kafka.ensure_jars(again.append) == libs
    assert again == [] and len(calls(stub_mvn)) == 1


def test_a_failed_fetch_names_the_log_and_caches_nothing(stub_mvn: Path) -> None:
    (stub_mvn / "exit_code").write_text("1")
    with pytest.raises(StackError) as raised:
        kafka.ensure_jars(lambda line: None)
    assert "exit 1" in str(raised.value)
    assert raised.value.log_file is not None and raised.value.log_file.name == "maven-fetch.log"
    assert not (kafka.jar_cache_dir() / ".complete").exists()


def test_a_fetch_that_hangs_is_stopped_at_the_timeout(stub_mvn: Path) -> None:
    (stub_mvn / "sleep").touch()
    with pytest.raises(StackError) as raised:
        kafka.ensure_jars(lambda line: None, timeout=1)
    assert "timed out" in str(raised.value)


def test_the_install_step_runs_the_fetch_as_a_module(stub_mvn: Path) -> None:
    """What `make install` runs: progress on stdout, the cache's path last, exit 0; a JDK is
    required first (the stub PATH keeps the machine's /usr/bin java)."""
    result = subprocess.run(
        [sys.executable, "-m", "deploy.embedded.kafka", "fetch"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("[kafka] fetching")
    assert out[-1] == f"[kafka] Apache Kafka 4.1.2 jars: {kafka.jar_cache_dir()}"
    # The class archive is best effort: the stub's jars hold no broker, so recording fails, says so,
    # and the install step still succeeds.
    assert "[kafka] recording the broker's classes for faster starts (once per machine) ..." in out
    assert [line for line in out if line.startswith("[kafka] could not record the broker's classes")]
    assert not list(kafka.jar_cache_dir().parent.glob("*.jsa*"))
    assert ".venv/bin/python -m deploy.embedded.kafka fetch" in (ROOT / "Makefile").read_text()


def test_a_broker_maps_the_recorded_class_archive_once_there_is_one(stub_mvn: Path) -> None:
    java = shutil.which("java")
    assert java is not None
    libs = kafka.ensure_jars(lambda line: None)
    argv = kafka.broker_argv(java, libs, Path("server.properties"), Path("log4j2.properties"), 512)
    assert not [a for a in argv if "SharedArchiveFile" in a]  # nothing recorded yet: plain start

    archive = kafka.class_archive(java)
    assert archive.parent == libs.parent  # beside the jars it was made from, per JDK
    archive.write_bytes(b"archive")
    argv = kafka.broker_argv(java, libs, Path("server.properties"), Path("log4j2.properties"), 512)
    assert argv[1] == f"-XX:SharedArchiveFile={archive}"
    recording = kafka.broker_argv(java, libs, Path("server.properties"), Path("log4j2.properties"), 256,
                                  record_classes_to=archive.with_suffix(".partial"))
    assert recording[1] == f"-XX:ArchiveClassesAtExit={archive.with_suffix('.partial')}"
    assert not [a for a in recording if "SharedArchiveFile" in a]
