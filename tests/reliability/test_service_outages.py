"""The Temporal server restarted (with its persistence) and Postgres down for 20 s, mid-run.

Each case starts its own server, so the session's services are not disturbed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import EmbeddedPostgres, TemporalDevServer
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from schema.search_attributes import SEARCH_ATTRIBUTES
from store.database import make_engine
from store.keys import ApiKeys
from store.migrate import upgrade
from store.runs import Store
from tests.conftest import DEV_KEY, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok
from tests.reliability.conftest import (
    Record,
    assert_exactly_once,
    llm_chain,
    mirror_counts,
    wait_status,
    wait_until,
)

STEPS = ["s1", "s2", "s3", "s4"]


@asynccontextmanager
async def _stack(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    url = settings.database.url
    assert url
    async with (running_worker(settings, url), running_api(settings, url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=30,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        yield http


def _with_transform(definition: dict[str, Any]) -> dict[str, Any]:
    """s1, s2, then a transform ``t`` (which writes its own mirror row), then s3, s4."""
    steps = definition["steps"]
    transform = {"id": "t", "type": "transform", "inputMapping": {"prev": "outputs.s2"}}
    return {**definition, "steps": [*steps[:2], transform, *steps[2:]]}


async def _start(http: httpx.AsyncClient, *, transform: bool = False) -> str:
    slug = unique_slug("outage")
    definition = llm_chain(slug, 4)
    if transform:
        definition = _with_transform(definition)
    assert (await http.post("/api/workflows", json=definition)).status_code == 201
    started = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                              json={"input": {"topic": "outage"}})
    assert started.status_code == 202, started.text
    return str(started.json()["run"]["id"])


@pytest.mark.timeout(180)
async def test_temporal_server_restart_mid_run(settings: Settings, tmp_path: Path,
                                               llm: FakeLlmServer, store: Store,
                                               record: Record) -> None:
    temporal = TemporalDevServer(tmp_path / "temporal", db_file=tmp_path / "temporal.db",
                                 namespaces=["dev"], ui=False,
                                 search_attributes=SEARCH_ATTRIBUTES)
    try:
        await temporal.start()
        own = settings.model_copy(deep=True)
        own.temporal.address = temporal.address
        llm.enqueue(ok(), hang(3), ok(), ok())
        async with _stack(own) as http:
            run_id = await _start(http)
            await wait_until(lambda: llm.count(OPENAI_PATH) >= 2, 30)  # s2 in flight
            await asyncio.to_thread(temporal.stop)
            await asyncio.sleep(5)  # s2's answer arrives while the server is down
            await temporal.start()
            back_at = time.monotonic()
            run = await wait_status(http, run_id, 90)
            recovery = time.monotonic() - back_at
            client = await connect(own, "dev")
            result = await client.get_workflow_handle(run_id).result()
        assert run["status"] == "completed", run
        assert result is not None
        await assert_exactly_once(store.engine, run_id, STEPS)
        record(recovery, fault="Temporal dev server stopped 5 s and restarted (db_file)",
               llmCalls=llm.count(OPENAI_PATH))
    finally:
        await asyncio.to_thread(temporal.stop)


@pytest.mark.timeout(180)
async def test_postgres_down_for_20_seconds_mid_run(settings: Settings, tmp_path: Path,
                                                    llm: FakeLlmServer,
                                                    record: Record) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    engine = None
    try:
        await postgres.start()
        engine = make_engine(postgres.url, pool_size=2)
        await upgrade(engine)
        await ApiKeys(engine).create("dev", "outage key", DEV_KEY)
        own = settings.model_copy(deep=True)
        own.database.url = postgres.url
        llm.enqueue(ok(), hang(3), ok(), ok())
        async with _stack(own) as http:
            run_id = await _start(http, transform=True)
            await wait_until(lambda: llm.count(OPENAI_PATH) >= 2, 30)  # s2 in flight
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(20)
            # The transform after s2 cannot write its own row, so the interpreter takes it
            # over; it waits on its mirror write (retried without limit), so the run pauses
            # at the next step boundary instead of failing or skipping a row.
            assert llm.count(OPENAI_PATH) == 2
            await postgres.start()
            back_at = time.monotonic()
            deadline = back_at + 60
            while (await mirror_counts(engine, run_id)).get("s4", (0, ""))[1] != "completed":
                assert time.monotonic() < deadline, await mirror_counts(engine, run_id)
                await asyncio.sleep(0.1)
            run = await wait_status(http, run_id, 30)
            recovery = time.monotonic() - back_at
        assert run["status"] == "completed", run
        await assert_exactly_once(engine, run_id, [*STEPS[:2], "t", *STEPS[2:]])
        record(recovery, fault="Postgres stopped for 20 s", llmCalls=llm.count(OPENAI_PATH))
    finally:
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(postgres.stop)
