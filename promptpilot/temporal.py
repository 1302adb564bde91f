"""The one way to connect to Temporal: every client shares the pydantic data converter.

A process that runs a worker shares that worker's client with its own starters (the API of
``promptpilot dev``, the benchmark): a start made on the worker's client with
``request_eager_start`` hands the run's first workflow task straight back to that worker in
the start response, without a trip through the server's task queue.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

_WORKER_CLIENTS: dict[tuple[str, str], Client] = {}


async def connect(address: str, namespace: str, *, own: bool = False) -> Client:
    """A client for one environment's namespace: a local worker's when there is one, unless
    ``own`` (a worker always has its own)."""
    shared = None if own else _WORKER_CLIENTS.get((address, namespace))
    if shared is not None:
        return shared
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


def share_worker_client(address: str, client: Client) -> None:
    """Offer a running worker's client to this process's starters."""
    _WORKER_CLIENTS[(address, client.namespace)] = client


def withdraw_worker_client(address: str, client: Client) -> None:
    """The worker stops: later starters connect on their own."""
    if _WORKER_CLIENTS.get((address, client.namespace)) is client:
        del _WORKER_CLIENTS[(address, client.namespace)]
