"""The one way to connect to Temporal: every client shares the pydantic data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(address: str, namespace: str) -> Client:
    """A client for one environment's namespace."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )
