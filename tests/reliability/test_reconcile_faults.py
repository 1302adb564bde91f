"""Runs ended outside the interpreter, stalled runs, and a reconciler that was down.

Each case counts the runs it made that the mirror still shows unfinished at the end
("runs left non-final", always 0) and how long the mirror took to tell the truth, read from
the mirror's own rows (not through the API, whose reads check Temporal themselves).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from statistics import median

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from devstack.temporal_server import find_temporal_binary
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from store.runs import Store
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.reconcile_support import (
    bad_deploy_worker,
    start_directly,
    start_stalled,
    start_waiting_run,
    waiting,
)
from tests.reliability.conftest import Record

FINAL = ("completed", "failed", "cancelled")


async def _statuses(engine: AsyncEngine, run_ids: list[str]) -> dict[str, str]:
    async with engine.connect() as db:
        rows = (await db.execute(text("select id, status from workflow_runs where id = any(:ids)"),
                                 {"ids": [uuid.UUID(i) for i in run_ids]})).all()
    return {str(r[0]): str(r[1]) for r in rows}


async def _until(engine: AsyncEngine, run_ids: list[str], statuses: tuple[str, ...],
                 within: float) -> dict[str, float]:
    """Poll the mirror until every run is in ``statuses``: when each got there (monotonic)."""
    reached: dict[str, float] = {}
    deadline = time.monotonic() + within
    while len(reached) < len(run_ids):
        if time.monotonic() > deadline:
            left = {i: s for i, s in (await _statuses(engine, run_ids)).items()
                    if i not in reached}
            raise AssertionError(f"not {statuses} within {within} s: {left}")
        now = time.monotonic()
        for run_id, status in (await _statuses(engine, run_ids)).items():
            if status in statuses and run_id not in reached:
                reached[run_id] = now
        await asyncio.sleep(0.05)
    return reached


async def _left_open(engine: AsyncEngine, run_ids: list[str]) -> int:
    return sum(1 for s in (await _statuses(engine, run_ids)).values() if s not in FINAL)


async def _cli(client: Client, *args: str) -> None:
    """The Temporal CLI against the test server, as an operator would use it."""
    process = await asyncio.create_subprocess_exec(
        str(find_temporal_binary()), "workflow", *args, "--address",
        client.service_client.config.target_host, "--namespace", client.namespace,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


@pytest.mark.timeout(240)
async def test_terminated_timed_out_and_reset_runs(service: Service, engine: AsyncEngine,
                                                   record: Record) -> None:
    client = await connect(service.settings, "dev")
    terminated = [await start_waiting_run(service) for _ in range(4)]
    reset = [await start_waiting_run(service) for _ in range(2)]
    timed_out = [(await start_directly(service, client, waiting(unique_slug("late")),
                                       pending_row=True,
                                       execution_timeout=timedelta(seconds=3))).id
                 for _ in range(4)]

    sent: dict[str, float] = {}
    for run_id in terminated:
        await _cli(client, "terminate", "--workflow-id", run_id, "--reason", "ops: bad input")
        sent[run_id] = time.monotonic()
    for run_id in reset:
        await _cli(client, "reset", "--workflow-id", run_id, "--type", "FirstWorkflowTask",
                   "--reason", "ops: replay from the start")
    reached = await _until(engine, terminated, ("failed",), within=30)
    late = await _until(engine, timed_out, ("failed",), within=30)
    now_wall, now_mono = datetime.now(UTC), time.monotonic()
    timeout_lags = []
    for run_id in timed_out:  # from Temporal's close time to the row's change
        closed = (await client.get_workflow_handle(run_id).describe()).close_time
        assert closed is not None
        seen = now_wall - timedelta(seconds=now_mono - late[run_id])
        timeout_lags.append((seen - closed).total_seconds())

    # A reset run goes on (its new execution waits again): the mirror must not end it.
    await asyncio.sleep(service.settings.reconcile.interval_seconds * 2 + 1)
    assert set((await _statuses(engine, reset)).values()) == {"running"}
    for run_id in reset:
        approved = await service.http.post(
            f"/api/workflows/runs/{run_id}/steps/review/approve", json={"comment": "ok"})
        assert approved.status_code == 200, approved.text
    await _until(engine, reset, ("completed",), within=30)

    rows = {r["id"]: r for r in [(await service.http.get(f"/api/workflows/runs/{i}")).json()[
        "run"] for i in terminated + timed_out]}
    assert {rows[i]["error"]["type"] for i in terminated} == {"terminated"}
    assert {rows[i]["error"]["type"] for i in timed_out} == {"run_timed_out"}
    left = await _left_open(engine, terminated + reset + timed_out)
    assert left == 0
    to_mirror = [reached[i] - sent[i] for i in terminated]
    record(max(to_mirror), runsLeftNonFinal=left, runs=len(terminated + reset + timed_out),
           terminateToMirrorP50Seconds=round(median(to_mirror), 3),
           terminateToMirrorMaxSeconds=round(max(to_mirror), 3),
           timedOutToMirrorMaxSeconds=round(max(timeout_lags), 3),
           sweepIntervalSeconds=service.settings.reconcile.interval_seconds)


@pytest.mark.timeout(240)
async def test_stalled_runs_after_a_bad_deploy_are_shown_and_cancelled(
    service: Service, engine: AsyncEngine, record: Record,
) -> None:
    client = await connect(service.settings, "dev")
    async with bad_deploy_worker(client) as worker:
        started = time.monotonic()
        run_ids = [await start_stalled(service, client, worker, service.store,
                                       mirror_status="running") for _ in range(5)]
        reached = await _until(engine, run_ids, ("stalled",), within=60)
        to_stalled = [at - started for at in reached.values()]

        cancel_began = time.monotonic()
        answers = await asyncio.gather(*(
            service.http.post(f"/api/workflows/runs/{i}/cancel") for i in run_ids))
        cancel_seconds = time.monotonic() - cancel_began

        assert [a.status_code for a in answers] == [200] * len(run_ids)
        assert {a.json()["run"]["status"] for a in answers} == {"cancelled"}
    left = await _left_open(engine, run_ids)
    assert left == 0
    record(max(to_stalled), runsLeftNonFinal=left, runs=len(run_ids),
           startToStalledMaxSeconds=round(max(to_stalled), 3),
           cancelAllSeconds=round(cancel_seconds, 3))


@pytest.mark.timeout(240)
async def test_a_reconciler_that_was_down_catches_up_when_its_worker_starts(
    settings: Settings, engine: AsyncEngine, record: Record,
) -> None:
    """Runs terminated while no reconciler ran are corrected by the first sweep of the next
    worker, which reads closes back to the oldest unfinished row."""
    url = settings.database.url
    assert url
    quiet = settings.model_copy(deep=True)
    quiet.reconcile.enabled = False
    async with (running_worker(quiet, url), running_api(quiet, url) as api,
                httpx.AsyncClient(base_url=api.url, timeout=30,
                                  headers={"Authorization": f"Bearer {DEV_KEY}"}) as http):
        stack = Service(settings=quiet, http=http, store=Store(engine), url=api.url)
        run_ids = [await start_waiting_run(stack) for _ in range(6)]
        client = await connect(quiet, "dev")
        for run_id in run_ids:
            await client.get_workflow_handle(run_id).terminate(reason="ops: reconciler down")
        await asyncio.sleep(quiet.reconcile.interval_seconds * 2)
        assert set((await _statuses(engine, run_ids)).values()) == {"running"}

    began = time.monotonic()
    async with running_worker(settings, url):
        reached = await _until(engine, run_ids, ("failed",), within=30)
    left = await _left_open(engine, run_ids)
    assert left == 0
    record(max(reached.values()) - began, runsLeftNonFinal=left, runs=len(run_ids))
