"""Waiting for what another process does: ask again until it holds, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T]], timeout: float = 120, interval: float = 0.5) -> T:
    """`check()` again every `interval` seconds until it returns something truthy (returned);
    fails the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(interval)
