"""deploy/install/system-packages.sh, run against a stub Debian.

The script finds every tool through PATH (`id`, `dpkg-query`, `apt-cache`, `apt-get`, `java`, ...),
so each test runs it with PATH = a directory of stubs: a fake dpkg database (one file per installed
package), an `apt-get` that records its calls and "installs" by creating the package's command and
its dpkg entry, and an `id` that says root or not. Nothing on the machine is read or changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install" / "system-packages.sh"
BASH = shutil.which("bash") or "/bin/bash"

ALL_PACKAGES = [
    "openjdk-17-jre-headless",
    "maven",
    "make",
    "python3-venv",
    "libfaketime",
    "fonts-wqy-microhei",
    "poppler-utils",
    "chromium",
]
# The command each package provides (checked with `command -v`); the others are checked with dpkg.
COMMANDS = {
    "openjdk-17-jre-headless": "java",
    "maven": "mvn",
    "make": "make",
    "poppler-utils": "pdftoppm",
    "chromium": "chromium",
}


@dataclass
class StubDebian:
    bin: Path
    dpkg: Path
    calls: Path

    def install(self, package: str, *, java_major: int = 17) -> None:
        (self.dpkg / package).touch()
        command = COMMANDS.get(package)
        if command == "java":
            self.stub_command("java", f'echo \'openjdk version "{java_major}.0.15" 2025-04-15\' >&2')
        elif command:
            self.stub_command(command, "exit 0")

    def apt_get_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def run(self, *args: str, root: bool) -> subprocess.CompletedProcess[str]:
        self.stub_command("id", f"echo {0 if root else 1000}")
        env = {"PATH": str(self.bin), "PYTHON": str(self.bin / "python3"), "LC_ALL": "C"}
        return subprocess.run(
            [BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def stub_command(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{BASH}\n{body}\n")
        path.chmod(0o755)


@pytest.fixture
def debian(tmp_path: Path) -> StubDebian:
    stub = StubDebian(bin=tmp_path / "bin", dpkg=tmp_path / "dpkg", calls=tmp_path / "apt-get.calls")
    stub.bin.mkdir()
    stub.dpkg.mkdir()
    for tool in ("sed", "head"):
        real = shutil.which(tool)
        assert real, tool
        (stub.bin / tool).symlink_to(real)
    dpkg = stub.dpkg
    stub.stub_command(
        "dpkg-query",
        # dpkg-query -W -f='${Status}' <package>
        f'if [ -e "{dpkg}/${{@: -1}}" ]; then printf "install ok installed"; else exit 1; fi',
    )
    stub.stub_command(
        "apt-cache",
        'case "$2" in openjdk-17-jre-headless) echo "  Installed: (none)"; echo "  Candidate: 17.0.21";; '
        '*) echo "  Candidate: (none)";; esac',
    )
    # The venv check imports ensurepip: Debian's python3 has it only with python3-venv.
    stub.stub_command("python3", f'[ -e "{dpkg}/python3-venv" ]')
    # apt-get records "<DEBIAN_FRONTEND> <args>" and "installs" every package it is given: its dpkg
    # entry, and its command copied from pool/<package>/.
    pool = tmp_path / "pool"
    for package, command in COMMANDS.items():
        (pool / package).mkdir(parents=True)
        body = 'echo \'openjdk version "17.0.21" 2025-10-21\' >&2' if command == "java" else "exit 0"
        (pool / package / command).write_text(f"#!{BASH}\n{body}\n")
        (pool / package / command).chmod(0o755)
    cp = shutil.which("cp")
    assert cp
    stub.stub_command(
        "apt-get",
        f'echo "${{DEBIAN_FRONTEND:-unset}} $*" >> "{stub.calls}"\n'
        '[ "$1" = install ] || exit 0\n'
        'for p in "$@"; do case "$p" in -*) continue;; esac\n'
        f'  : > "{dpkg}/$p"; if [ -d "{pool}/$p" ]; then "{cp}" "{pool}/$p"/* "{stub.bin}/"; fi\n'
        "done",
    )
    return stub


def test_a_machine_with_everything_does_nothing(debian: StubDebian) -> None:
    for package in ALL_PACKAGES:
        debian.install(package)
    for root in (True, False):
        result = debian.run(root=root)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "system packages: all present"
    assert debian.apt_get_calls() == []


def test_not_root_stops_with_one_line_naming_every_missing_package(debian: StubDebian) -> None:
    result = debian.run(root=False)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith("sudo apt-get install -y " + " ".join(ALL_PACKAGES)), lines[0]
    assert debian.apt_get_calls() == []


def test_not_root_names_only_what_is_missing(debian: StubDebian) -> None:
    for package in ALL_PACKAGES:
        if package not in ("libfaketime", "chromium"):
            debian.install(package)
    result = debian.run(root=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("sudo apt-get install -y libfaketime chromium"), result.stderr


def test_root_updates_once_and_installs_only_what_is_missing(debian: StubDebian) -> None:
    for package in ("maven", "make", "python3-venv", "poppler-utils", "fonts-wqy-microhei"):
        debian.install(package)
    result = debian.run(root=True)
    assert result.returncode == 0, result.stderr
    assert debian.apt_get_calls() == [
        "noninteractive update -qq",
        "noninteractive install -y -qq --no-install-recommends openjdk-17-jre-headless libfaketime chromium",
    ]
    assert "installed openjdk-17-jre-headless libfaketime chromium" in result.stdout

    again = debian.run(root=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "system packages: all present"
    assert len(debian.apt_get_calls()) == 2


def test_a_java_older_than_17_counts_as_missing(debian: StubDebian) -> None:
    for package in ALL_PACKAGES:
        debian.install(package, java_major=11)
    result = debian.run(root=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("sudo apt-get install -y openjdk-17-jre-headless"), result.stderr


def test_dry_run_as_root_changes_nothing(debian: StubDebian) -> None:
    debian.install("make")
    result = debian.run("--dry-run", root=True)
    assert result.returncode == 0, result.stderr
    assert "would run apt-get update" in result.stdout
    assert "openjdk-17-jre-headless maven python3-venv" in result.stdout
    assert debian.apt_get_calls() == []


def test_an_install_that_does_not_provide_the_package_fails(debian: StubDebian) -> None:
    (debian.bin / "apt-get").write_text(f"#!{BASH}\nexit 0\n")  # apt "succeeds" and installs nothing
    result = debian.run(root=True)
    assert result.returncode == 1
    assert "still missing after apt-get install" in result.stderr


def test_the_makefile_and_ci_share_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "deploy/install/system-packages.sh" in makefile
    assert "deploy/install/system-packages.sh" in ci
    assert "apt-get" not in ci, ".ci/run installs through the shared script only"
    assert os.access(SCRIPT, os.X_OK)
