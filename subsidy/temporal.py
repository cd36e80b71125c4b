"""One way to reach Temporal: every client (services, worker, CLI, tests) uses the pydantic data
converter, so workflow and activity payloads are the contracts' pydantic models (dates, aware
datetimes, enums and integer fen survive the trip exactly)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER)
