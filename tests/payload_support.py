"""Helpers for tests that look inside Temporal's history at the payloads themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from devstack.stack import TemporalDevServer
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from schema.search_attributes import SEARCH_ATTRIBUTES
from tests.conftest import DEV_KEY


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A worker and the API for these settings, and a client with the dev key."""
    url = settings.database.url
    assert url
    async with (running_worker(settings, url), running_api(settings, url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=60,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        yield http


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every payload anywhere inside a protobuf message (maps and lists included)."""
    if isinstance(message, Payload):
        yield message
        return
    for _, value in message.ListFields():
        if isinstance(value, Message):
            yield from payloads_in(value)
        elif hasattr(value, "values"):  # a map
            for item in value.values():
                if isinstance(item, Message):
                    yield from payloads_in(item)
        elif not isinstance(value, str | bytes | int | float | bool):  # a repeated field
            for item in value:
                if isinstance(item, Message):
                    yield from payloads_in(item)


def history_payloads(history: WorkflowHistory) -> list[Payload]:
    """Every payload of a run's history, as the Temporal server holds it."""
    return [payload for event in history.events for payload in payloads_in(event)]


def files_containing(folder: Path, needle: bytes) -> list[str]:
    """The files under ``folder`` whose bytes contain ``needle`` (a database and its WAL)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and needle in path.read_bytes())


@asynccontextmanager
async def persisted_temporal(folder: Path, *, ui_codec_endpoint: str | None = None
                             ) -> AsyncIterator[TemporalDevServer]:
    """A Temporal dev server of its own that persists to ``folder/temporal.db`` (the session's
    server keeps history in memory), with the UI when a codec endpoint is given."""
    server = TemporalDevServer(folder, db_file=folder / "temporal.db", namespaces=["dev", "prod"],
                               search_attributes=SEARCH_ATTRIBUTES,
                               ui=ui_codec_endpoint is not None,
                               ui_codec_endpoint=ui_codec_endpoint)
    try:
        yield await server.start()
    finally:
        await asyncio.to_thread(server.stop)
