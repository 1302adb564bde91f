"""A worker killed with SIGKILL during a step: a new worker finishes the run, no duplicate rows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text

from promptpilot.services import running_api
from promptpilot.settings import Settings
from store.runs import Store
from tests.conftest import DEV_KEY, unique_slug
from tests.definitions import feed_discovery
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok


def _worker_env(settings: Settings) -> dict[str, str]:
    openai = settings.llm.openai
    assert settings.database.url
    assert openai.api_key
    assert openai.base_url
    return {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "PROMPTPILOT_TEMPORAL__ADDRESS": settings.temporal.address,
        "PROMPTPILOT_TEMPORAL__TASK_QUEUE": settings.temporal.task_queue,
        "PROMPTPILOT_TOOLS__WEB_SEARCH_BACKEND": "offline",
        "OPENAI_API_KEY": openai.api_key.get_secret_value(),
        "OPENAI_BASE_URL": openai.base_url,
        "PROMPTPILOT_LOG_LEVEL": "WARNING",
        # The same payload key ring as the test's API and workers (a JSON object by key id).
        "PROMPTPILOT_PAYLOADS__ENCRYPTION_KEYS": json.dumps(
            {key_id: key.get_secret_value()
             for key_id, key in settings.payloads.encryption_keys.items()}),
    }


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`promptpilot worker` as its own process, as users run it."""
    return subprocess.Popen(
        [sys.executable, "-c", "from promptpilot.cli import main; main(['worker'])"],
        env=_worker_env(settings), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.fixture
def workers(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if process.stderr:
                process.stderr.close()


@pytest.fixture
async def api_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.database.url
    async with (running_api(settings, settings.database.url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=60,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        yield http


async def _wait(predicate: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_worker_killed_mid_step_resumes_on_a_new_worker(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    llm: FakeLlmServer, store: Store,
) -> None:
    slug = unique_slug("crash")
    created = await api_only.post("/api/workflows", json=feed_discovery(slug))
    assert created.status_code == 201
    # The first call hangs: the worker dies while the LLM step is in flight.
    llm.enqueue(hang(60), ok('{"query": "after the crash"}'))
    workers.append(start_worker(settings))

    started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {"interests": "AI"}})
    run_id = started.json()["run"]["id"]
    await _wait(lambda: llm.count(OPENAI_PATH) >= 1, 30)
    os.killpg(workers[0].pid, signal.SIGKILL)
    workers[0].wait()
    killed_at = time.monotonic()

    workers.append(start_worker(settings))
    run = {}
    for _ in range(600):
        run = (await api_only.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if run["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.1)
    recovery = time.monotonic() - killed_at

    assert run["status"] == "completed", run
    assert run["outputJson"]["query"] == "after the crash"
    assert [s["stepId"] for s in run["steps"]] == ["step1", "step2", "step3"]
    assert run["steps"][0]["attempts"] == 2  # the killed attempt, then the one that finished
    assert llm.count(OPENAI_PATH) == 2
    async with store.engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, count(*) from workflow_run_steps where run_id = :id "
            "group by step_id"), {"id": uuid.UUID(run_id)})).all()
    assert sorted(rows) == [("step1", 1), ("step2", 1), ("step3", 1)]
    # The heartbeat timeout (10 s) bounds how long a lost step waits to be retried.
    assert recovery < 30
