"""Runs started while the Temporal server is stopped: accepted at once, started once it is back.

The case runs its own Temporal dev server (with its persistence file), so stopping it leaves
the session's server alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.process import free_port
from devstack.stack import TemporalDevServer
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from schema.search_attributes import SEARCH_ATTRIBUTES
from store.run_starts import RunStarts
from store.runs import Store
from tests.conftest import DEV_KEY, unique_slug
from tests.triggers_support import echo

ACCEPTED_DURING_OUTAGE = 6
# Far below the ~30 s a start used to hang for with the server away; no tighter timing.
ANSWERED_WITHIN = 5.0


@asynccontextmanager
async def _stack(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    url = settings.database.url
    assert url
    async with (running_worker(settings, url), running_api(settings, url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=30,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        yield http


async def _run(http: httpx.AsyncClient, slug: str, topic: str,
               key: str | None = None) -> tuple[float, httpx.Response]:
    began = time.monotonic()
    response = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                               json={"input": {"topic": topic}},
                               headers={"Idempotency-Key": key} if key else {})
    return time.monotonic() - began, response


async def _until_finished(http: httpx.AsyncClient, run_ids: list[str],
                          within: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        runs = {i: (await http.get(f"/api/workflows/runs/{i}")).json()["run"] for i in run_ids}
        if all(r["status"] in ("completed", "failed", "cancelled") for r in runs.values()) \
                or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_runs_started_while_temporal_is_stopped_complete_once_it_is_back(
    settings: Settings, tmp_path: Path, store: Store,
) -> None:
    temporal = TemporalDevServer(tmp_path / "temporal", db_file=tmp_path / "temporal.db",
                                 namespaces=["dev"], ui=False,
                                 search_attributes=SEARCH_ATTRIBUTES)
    try:
        await temporal.start()
        own = settings.model_copy(deep=True)
        own.temporal.address = temporal.address
        # An outage longer than the orphan age, with the reconciler sweeping often: runs
        # whose start is queued must not be failed as orphans meanwhile or once it is back.
        own.reconcile.orphan_after_seconds = 5
        own.reconcile.interval_seconds = 0.5
        own.dispatch.start_timeout_seconds = 1
        own.dispatch.backoff_max_seconds = 2
        async with _stack(own) as http:
            slug = unique_slug("outage")
            assert (await http.post("/api/workflows", json=echo(slug))).status_code == 201
            warm = await http.post(f"/api/workflows/{slug}/run", params={"wait": 10},
                                   json={"input": {"topic": "before"}})
            assert warm.json()["run"]["status"] == "completed", warm.text

            await asyncio.to_thread(temporal.stop)
            answers = [await _run(http, slug, f"t{i}", key=f"k-{slug}-{i}")
                       for i in range(ACCEPTED_DURING_OUTAGE)]
            again = await _run(http, slug, "t0", key=f"k-{slug}-0")  # the same start, retried
            waited = await http.post(f"/api/workflows/{slug}/run", params={"wait": 1},
                                     json={"input": {"topic": "waits"}})
            await asyncio.sleep(own.reconcile.orphan_after_seconds + 2)
            during = [(await http.get(f"/api/workflows/runs/{r.json()['run']['id']}")).json()
                      for _, r in answers]
            await temporal.start()
            back_at = time.monotonic()

            assert all(r.status_code == 202 for _, r in answers), [r.text for _, r in answers]
            assert max(seconds for seconds, _ in answers) < ANSWERED_WITHIN, answers
            assert all(r.json()["run"]["status"] == "pending" for _, r in answers)
            assert again[1].status_code == 202
            assert again[1].json()["run"]["id"] == answers[0][1].json()["run"]["id"]
            assert waited.status_code == 202, waited.text  # ?wait=1: still pending at 1 s
            assert waited.json()["run"]["status"] == "pending"
            assert [run["run"]["status"] for run in during] == ["pending"] * len(during)
            run_ids = [r.json()["run"]["id"] for _, r in answers] + [waited.json()["run"]["id"]]

            runs = await _until_finished(http, run_ids, within=40)
            recovered = time.monotonic() - back_at

            assert {i: r["status"] for i, r in runs.items()} == dict.fromkeys(
                run_ids, "completed")
            assert runs[run_ids[0]]["outputJson"] == {"s1": {"topic": "t0"}} or \
                runs[run_ids[0]]["steps"][0]["outputJson"] == {"topic": "t0"}
            client = await connect(own, "dev")
            executions = Counter([e.id async for e in client.list_workflows(
                f'TaskQueue = "{own.temporal.task_queue}"')])
            assert {i: executions[i] for i in run_ids} == dict.fromkeys(run_ids, 1)
            assert await RunStarts(store.engine).queued(run_ids) == set()
        print(f"\naccepted during the outage: {len(run_ids)}, started after it: "
              f"{sum(executions[i] for i in run_ids)}, duplicates: "
              f"{sum(executions[i] - 1 for i in run_ids)}, answered in at most "
              f"{max(seconds for seconds, _ in answers) * 1000:.0f} ms, all completed "
              f"{recovered:.1f} s after the server was back")
    finally:
        await asyncio.to_thread(temporal.stop)


@pytest.mark.timeout(120)
async def test_an_api_started_before_temporal_accepts_runs_that_start_once_it_is_up(
    settings: Settings, tmp_path: Path, store: Store,  # store: the migrated database
) -> None:
    # Nothing in Temporal yet: the API comes up, accepts, and its dispatcher keeps trying to
    # connect (each try bounded by dispatch.start_timeout_seconds) until the server is there.
    temporal = TemporalDevServer(tmp_path / "temporal", namespaces=["dev"], ui=False,
                                 search_attributes=SEARCH_ATTRIBUTES, port=free_port())
    own = settings.model_copy(deep=True)
    own.temporal.address = temporal.address
    own.dispatch.start_timeout_seconds = 1
    own.dispatch.backoff_max_seconds = 1
    url = own.database.url
    assert url
    try:
        async with (running_api(own, url) as api,
                    httpx.AsyncClient(base_url=api.url, timeout=30,
                                      headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
            slug = unique_slug("cold")
            assert (await http.post("/api/workflows", json=echo(slug))).status_code == 201
            seconds, accepted = await _run(http, slug, "cold")
            assert accepted.status_code == 202, accepted.text
            assert seconds < ANSWERED_WITHIN
            run_id = accepted.json()["run"]["id"]
            await asyncio.sleep(2)  # a few failed connects
            assert (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"][
                "status"] == "pending"

            await temporal.start()
            async with running_worker(own, url):
                runs = await _until_finished(http, [run_id], within=30)

        assert runs[run_id]["status"] == "completed", runs
    finally:
        await asyncio.to_thread(temporal.stop)
