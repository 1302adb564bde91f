"""The start dispatchers through a Postgres restart: runs accepted after it still start.

The dispatchers keep connections of their own (their queue statements and LISTEN); this
case stops its own Postgres under a running stack and checks both come back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from devstack.stack import EmbeddedPostgres
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from store.database import make_engine
from store.keys import ApiKeys
from store.migrate import upgrade
from tests.conftest import DEV_KEY, unique_slug
from tests.reliability.conftest import Record, wait_status
from tests.triggers_support import echo


@asynccontextmanager
async def _stack(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    url = settings.database.url
    assert url
    async with (running_worker(settings, url), running_api(settings, url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=30,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        yield http


async def _accepted(http: httpx.AsyncClient, slug: str, within: float) -> str:
    """Start a run with ?wait=0 until the API answers (it needs Postgres itself)."""
    deadline = time.monotonic() + within
    while True:
        response = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                   json={"input": {"topic": "after"}})
        if response.status_code == 202:
            return str(response.json()["run"]["id"])
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_runs_accepted_after_a_postgres_restart_start(
    settings: Settings, tmp_path: Path, record: Record,
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    try:
        await postgres.start()
        engine = make_engine(postgres.url, pool_size=2)
        try:
            await upgrade(engine)
            await ApiKeys(engine).create("dev", "outage key", DEV_KEY)
        finally:
            await engine.dispose()
        own = settings.model_copy(deep=True)
        own.database.url = postgres.url
        async with _stack(own) as http:
            slug = unique_slug("pgback")
            assert (await http.post("/api/workflows", json=echo(slug))).status_code == 201
            before = await _accepted(http, slug, 5)
            assert (await wait_status(http, before, 30))["status"] == "completed"

            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(3)  # the dispatchers' connections and LISTEN are gone
            await postgres.start()
            back_at = time.monotonic()
            after = await _accepted(http, slug, 30)
            run = await wait_status(http, after, 30)
            recovery = time.monotonic() - back_at

        assert run["status"] == "completed", run
        record(recovery, fault="Postgres stopped 3 s and restarted; a run accepted after it")
    finally:
        await asyncio.to_thread(postgres.stop)
