"""kill -9 of worker processes: during an LLM step, between steps, and one of two workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import httpx
import pytest

from promptpilot.settings import Settings
from store.runs import Store
from tests.conftest import unique_slug
from tests.e2e.test_worker_crash import api_only, start_worker, workers
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok
from tests.reliability.conftest import (
    Record,
    assert_exactly_once,
    llm_chain,
    mirror_counts,
    transform_chain,
    wait_status,
    wait_until,
)

__all__ = ["api_only", "workers"]  # fixtures shared with the e2e crash test


def _kill(process: subprocess.Popen[bytes]) -> float:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return time.monotonic()


async def test_kill_during_llm_step(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    llm: FakeLlmServer, store: Store, record: Record,
) -> None:
    slug = unique_slug("kill-llm")
    assert (await api_only.post("/api/workflows", json=llm_chain(slug, 3))).status_code == 201
    # Step s2's first call hangs: the worker dies with that call in flight.
    llm.enqueue(ok(), hang(60), ok())
    workers.append(start_worker(settings))
    started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {"topic": "crash"}})
    run_id = started.json()["run"]["id"]
    await wait_until(lambda: llm.count(OPENAI_PATH) >= 2, 30)
    killed_at = _kill(workers[0])
    workers.append(start_worker(settings))
    run = await wait_status(api_only, run_id, 60)
    recovery = time.monotonic() - killed_at

    assert run["status"] == "completed", run
    await assert_exactly_once(store.engine, run_id, ["s1", "s2", "s3"])
    attempts = {s["stepId"]: s["attempts"] for s in run["steps"]}
    assert attempts == {"s1": 1, "s2": 2, "s3": 1}  # only the killed call was repeated
    assert llm.count(OPENAI_PATH) == 4
    record(recovery, fault="kill -9 worker during llm step", heartbeatTimeoutSeconds=10)
    assert recovery < 40


async def test_kill_between_steps_twice(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    store: Store, record: Record,
) -> None:
    """Killed while the interpreter moves from step to step (mirror writes, scheduling)."""
    slug = unique_slug("kill-between")
    steps = 200
    definition = transform_chain(slug, steps)
    assert (await api_only.post("/api/workflows", json=definition)).status_code == 201
    workers.append(start_worker(settings))
    started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {"topic": "between"}})
    run_id = started.json()["run"]["id"]
    recoveries = []
    for threshold in (10, 60):
        # Kill as soon as the mirror shows the run past `threshold` steps.
        deadline = time.monotonic() + 60
        while len(await mirror_counts(store.engine, run_id)) < threshold:
            assert time.monotonic() < deadline, "the run made no progress"
            await asyncio.sleep(0.01)
        killed_at = _kill(workers[-1])
        before = len(await mirror_counts(store.engine, run_id))
        workers.append(start_worker(settings))
        while len(await mirror_counts(store.engine, run_id)) <= before:
            assert before < steps, "the run finished before the kill: nothing to recover"
            assert time.monotonic() < killed_at + 60, f"no progress after the kill at {before}"
            await asyncio.sleep(0.05)
        recoveries.append(time.monotonic() - killed_at)
    run = await wait_status(api_only, run_id, 120)

    assert run["status"] == "completed", run
    await assert_exactly_once(store.engine, run_id, [f"t{i}" for i in range(1, steps + 1)])
    assert run["outputJson"] == {"v": "between"}
    record(max(recoveries), fault="kill -9 worker between steps (twice)",
           eachRecoverySeconds=[round(r, 3) for r in recoveries])


@pytest.mark.timeout(180)
async def test_one_of_two_workers_killed(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    llm: FakeLlmServer, store: Store, record: Record,
) -> None:
    """Scale-out: both workers take tasks; one dies; every run finishes on the other."""
    slug = unique_slug("kill-one")
    assert (await api_only.post("/api/workflows", json=llm_chain(slug, 3))).status_code == 201
    runs = 12
    # Slow answers keep calls in flight on both workers when one of them dies.
    llm.enqueue(*[hang(0.6) for _ in range(runs * 3)])
    workers.append(start_worker(settings))
    workers.append(start_worker(settings))
    await asyncio.sleep(2)  # both polling before the runs start
    run_ids = []
    for i in range(runs):
        started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                      json={"input": {"topic": f"run {i}"}})
        run_ids.append(started.json()["run"]["id"])
    await wait_until(lambda: llm.count(OPENAI_PATH) >= runs, 60)
    killed_at = _kill(workers[0])
    finished = [await wait_status(api_only, run_id, 90) for run_id in run_ids]
    recovery = time.monotonic() - killed_at

    assert [r["status"] for r in finished] == ["completed"] * runs, finished
    for run_id in run_ids:
        await assert_exactly_once(store.engine, run_id, ["s1", "s2", "s3"])
    retried = sum(1 for r in finished for s in r["steps"] if s["attempts"] > 1)
    record(recovery, fault="kill -9 one of two workers", runs=runs, stepsRetried=retried)


async def test_kill_mid_map_keeps_the_spend_within_the_budget(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    llm: FakeLlmServer, store: Store,
) -> None:
    # Ten llm items at concurrency 10 on a budget for 3.5 worst-case calls: two answer, the
    # third hangs and its worker is killed. The ledger is workflow state: the new worker
    # replays it, the lost call still holds its reservation (it may have been billed), and no
    # call is made that could pass the budget.
    from tests.e2e.test_budget_fanout import _map_of_llm, _worst_case

    worst, tokens = _worst_case("topic-0")
    budget = 3.5 * worst
    llm.enqueue(*(ok("a line", tokens_in=tokens - 2, tokens_out=1000) for _ in range(2)),
                hang(120))
    slug = unique_slug("kill-map")
    created = await api_only.post("/api/workflows", json=_map_of_llm(slug, 10, budget))
    assert created.status_code == 201, created.text
    workers.append(start_worker(settings))
    started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {"topics": [f"topic-{i}" for i in range(10)]}})
    run_id = started.json()["run"]["id"]
    await wait_until(lambda: llm.count(OPENAI_PATH) >= 3, 60)
    _kill(workers[0])
    workers.append(start_worker(settings))
    run = await wait_status(api_only, run_id, 120)

    assert run["status"] == "failed"
    # The three calls before the kill, and none after: a fourth could have passed the budget.
    assert llm.count(OPENAI_PATH) == 3
    assert run["actualCost"] is not None
    assert run["actualCost"] <= budget
    each = next(s for s in run["steps"] if s["stepId"] == "each")
    assert each["mapItems"]["completed"] == 2
