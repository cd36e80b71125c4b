"""Run a benchmark on the embedded stack: the one in `--run-dir` (started if it is not running,
left running), or a temporary one, purged at the end."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def run_on_stack(run: Callable[[Any, Path], Awaitable[Any]], args: Any, *, prefix: str) -> int:
    if args.run_dir:
        asyncio.run(run(args, Path(args.run_dir).resolve()))
        return 0
    from deploy.embedded import stack

    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        asyncio.run(run(args, run_dir))
    finally:
        stack.down(run_dir, purge=True, progress=lambda m: print(m, file=sys.stderr))
    return 0
