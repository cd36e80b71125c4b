"""Failpoints: a process dies at a named point, as if killed, so tests can check what a crash
there leaves behind (e.g. after the database commit, before the Kafka offset commit).

Inert unless the environment variable SUBSIDY_FAILPOINTS names the point; never set in deployments.
"""

from __future__ import annotations

import os

EXIT_CODE = 86


def crash_if_armed(name: str) -> None:
    if name in os.environ.get("SUBSIDY_FAILPOINTS", "").split(","):
        os._exit(EXIT_CODE)  # no cleanup, no offset commit: what SIGKILL would leave
