"""The measurements: the runs/s grid, interleaved ratio rounds, API latency, mirror lag, CPU."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import text

from bench import llm_suite, pipeline, variants
from bench.api_process import api_process, measure_starts
from bench.handwritten import HandWrittenWorkflow
from bench.measure import CpuMeter, drive, percentile
from bench.report import Report
from bench.start_path import dispatch_lags, temporal_starts
from bench.steps import definition
from bench.variants import Runner

STEPS = (1, 5, 20)
CONCURRENCY = (1, 8, 64)
KEY = (5, 64)  # the cell the targets and ratios are about
API_KEY = "pp_bench_key"


def runs_for(steps: int, concurrency: int, quick: bool) -> int:
    """Enough runs for a stable figure, sized so the whole grid fits the time budget."""
    if concurrency == 1:
        base = {1: 30, 5: 20, 20: 8}[steps]
    elif concurrency == 8:
        base = {1: 64, 5: 48, 20: 16}[steps]
    else:
        # 20-step runs at 64 concurrent are the slowest cell: one wave is enough.
        base = {1: 128, 5: 128, 20: 64}[steps]
    # Quick mode halves every cell (so a 64-wide cell may run only 32 at a time).
    return max(4, base // 2) if quick else base


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Suite:
    """Holds the services and the variants for one benchmark run."""

    def __init__(self, args: argparse.Namespace, temporal: Any, postgres: Any,
                 report: Report) -> None:
        self.args, self.temporal, self.postgres, self.report = args, temporal, postgres, report
        self.runners: dict[str, Runner] = {}
        self.b3_runs: list[str] = []

    async def setup(self, stack: AsyncExitStack) -> None:
        """Migrate, start the workers, DBOS and the API, build every variant."""
        from temporalio.worker import Worker

        from activities.providers.registry import known_providers
        from activities.tools import known_tools
        from bench.transform_activity import transform
        from definition.validation import parse_definition
        from devstack.process import free_port
        from promptpilot.services import running_api, running_worker, settle_heap
        from promptpilot.settings import (
            ApiSettings,
            DatabaseSettings,
            Settings,
            TemporalSettings,
        )
        from promptpilot.temporal import connect
        from promptpilot.worker_build import workflow_runner
        from store.database import make_engine
        from store.keys import ApiKeys
        from store.migrate import upgrade
        from store.runs import Store

        url = self.postgres.url
        self.settings = Settings(
            environment="dev", database=DatabaseSettings(url=url, pool_size=8),
            temporal=TemporalSettings(address=self.temporal.address, task_queue="bench"),
            api=ApiSettings(port=free_port(), run_wait_seconds=30))
        lanes, self.model_pid = await stack.enter_async_context(llm_suite.model_server())
        llm_suite.use_model_server(self.settings, lanes)
        pipeline.configure(lanes)
        self.engine = make_engine(url, pool_size=2)
        stack.push_async_callback(self.engine.dispose)
        await upgrade(self.engine)
        await ApiKeys(self.engine).create("dev", "bench", API_KEY)
        store = Store(self.engine)
        definitions = {}
        for steps in STEPS:
            parsed = parse_definition(definition(f"bench-{steps}", steps),
                                      known_providers(self.settings),
                                      tools=known_tools())
            row, _ = await store.create_workflow("dev", parsed)
            definitions[steps] = (str(row.id), parsed)
        self.definitions = definitions
        self.pipeline_slugs: dict[str, str] = {}
        self.pipeline_defs: dict[str, Any] = {}
        for lane in llm_suite.LANES:
            parsed = parse_definition(pipeline.definition(f"bench-pipe-{lane}", lane),
                                      known_providers(self.settings), tools=known_tools())
            row, _ = await store.create_workflow("dev", parsed)
            self.pipeline_slugs[lane] = parsed.id
            self.pipeline_defs[lane] = (str(row.id), parsed)

        pool = await asyncpg.create_pool(self.postgres.dsn, min_size=4, max_size=16)
        stack.push_async_callback(pool.close)
        await pool.execute("create table if not exists bench_steps (run_id uuid, step int, "
                           "output text, primary key (run_id, step))")

        await stack.enter_async_context(running_worker(self.settings, url))
        # The worker's own client (shared in-process, as under `promptpilot dev`): B2 and B3
        # both start eagerly, their first workflow task coming back with the start response.
        self.client = await connect(self.settings, "dev")
        hand = Worker(self.client, task_queue="bench-hand",
                      workflows=[HandWrittenWorkflow, pipeline.HandWrittenPipeline],
                      activities=[transform, pipeline.llm_call, pipeline.search],
                      # The same runner as the product's worker: the comparison is about
                      # interpreting and mirroring, not about the sandbox.
                      workflow_runner=workflow_runner(
                          sandboxed=self.settings.temporal.workflow_sandbox),
                      max_concurrent_activities=200)
        await stack.enter_async_context(hand)
        if self.args.api_in_process:
            # The old arrangement: the API shares this process and event loop with the worker.
            self.api: Any = await stack.enter_async_context(running_api(self.settings, url))
            api_pid = None
        else:
            # As deployed: `promptpilot api` in its own process (bench/api_process.py).
            self.api = await stack.enter_async_context(api_process(
                self.settings, extra_env=llm_suite.pipeline_env(self.settings)))
            api_pid = self.api.pid
        self.b4_runs: list[str] = []
        self.b4: dict[str, dict[str, llm_suite.Driver]] = {
            "ours": {lane: llm_suite.remote_ours(self.api.url, API_KEY,
                                                 self.pipeline_slugs[lane], self.b4_runs)
                     for lane in llm_suite.LANES},
            "hand-written": {lane: llm_suite.driven(llm_suite.hand(self.client, "bench-hand",
                                                                   lane))
                             for lane in llm_suite.LANES},
            # What the product's parts cost (only when named in BENCH_B4_VARIANTS): ours
            # started eagerly on the worker's client (no API, no start queue, no ?wait), and
            # the same with the mirror off.
            "ours-direct": {lane: llm_suite.driven(variants.b3(
                self.client, "bench", {5: self.pipeline_defs[lane]}, mirror=True))
                for lane in llm_suite.LANES},
            "ours-unmirrored": {lane: llm_suite.driven(variants.b3(
                self.client, "bench", {5: self.pipeline_defs[lane]}, mirror=False))
                for lane in llm_suite.LANES}}

        self.runners = {
            "B0": variants.b0(),
            "B1": variants.b1(pool),
            "B2": variants.b2(self.client, "bench-hand"),
            "B3": variants.b3(self.client, "bench", definitions, mirror=True,
                              run_ids=self.b3_runs),
            "B3'": variants.b3(self.client, "bench", definitions, mirror=False),
        }
        if not self.args.no_dbos:
            from bench import peer

            dbos_db = f"pp_bench_dbos_{uuid.uuid4().hex[:6]}"
            peer.launch(self.postgres.dsn_for(dbos_db))
            stack.callback(peer.shutdown)
            self.runners["P1"] = variants.p1()
            self.b4["DBOS"] = {lane: llm_suite.driven(llm_suite.dbos(lane))
                               for lane in llm_suite.LANES}
        # As `promptpilot worker` does once it is up (promptpilot.services.settle_heap).
        settle_heap()
        self.meter_pids = {"bench (worker+API)" if api_pid is None else "bench (worker)":
                           os.getpid(), "api": api_pid, "temporal": self.temporal.pid,
                           "postgres": self.postgres.pid}

    async def run_all(self) -> None:
        """Every figure, in an order that keeps the noisy ones apart."""
        quick = self.args.quick
        if self.args.api_only:
            await self._api_latency()
            return
        if self.args.b4_only:
            await self._b4()
            if self.args.scale:
                await llm_suite.scale(self, self.report.llm, _progress)
            return
        for name, run in self.runners.items():
            await drive(run, 5, 16, 8)  # warm-up: imports, pools, sticky caches
            for steps in STEPS:
                for concurrency in CONCURRENCY:
                    cell = await drive(run, steps, runs_for(steps, concurrency, quick),
                                       concurrency)
                    self.report.grid[(name, steps, concurrency)] = cell
                    _progress(f"{name:<4} {steps:>2} steps x {concurrency:>2}: "
                              f"{cell.per_second:8.1f} runs/s, p50 {cell.p50_ms:7.1f} ms")
        await self._ratio_rounds()
        await self._b4()
        await self._cpu_and_history()
        await self._lag()
        await self._api_latency()
        if self.args.scale:
            await llm_suite.scale(self, self.report.llm, _progress)

    async def _b4(self) -> None:
        await llm_suite.b4(self.b4, self.report.llm, quick=self.args.quick, progress=_progress,
                           pids={**self.meter_pids, "model server": self.model_pid},
                           rounds=self.args.rounds)
        if self.b4_runs:
            self.report.llm.history["ours"] = await llm_suite.history_of(self.client,
                                                                         self.b4_runs[-1])
        hand_id = str(uuid.uuid4())
        await self.client.execute_workflow("BenchPipeline", args=["fast", "history"],
                                           id=hand_id, task_queue="bench-hand")
        self.report.llm.history["hand-written"] = await llm_suite.history_of(self.client,
                                                                             hand_id)

    async def _ratio_rounds(self) -> None:
        rounds = self.args.rounds or (2 if self.args.quick else 5)
        steps, concurrency = KEY
        runs = runs_for(steps, concurrency, self.args.quick)
        order = [n for n in ("B1", "B2", "B3", "P1") if n in self.runners]
        for index in range(rounds):
            # Rotate the order so no variant always runs first (or last) in a round.
            rotated = order[index % len(order):] + order[:index % len(order)]
            figures: dict[str, float] = {}
            for name in rotated:
                figures[name] = (await drive(self.runners[name], steps, runs,
                                             concurrency)).per_second
            self.report.rounds.append(figures)
            _progress(f"round {index + 1}/{rounds}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in figures.items()))

    async def _cpu_and_history(self) -> None:
        steps, concurrency = KEY
        runs = runs_for(steps, concurrency, self.args.quick)
        for name in [n for n in ("B2", "B3", "B3'", "P1", "B1") if n in self.runners]:
            meter = CpuMeter(self.meter_pids)
            meter.start()
            await drive(self.runners[name], steps, runs, concurrency)
            used = meter.stop()
            self.report.cpu[name] = {k: v / (runs * steps) for k, v in used.items()}
        for name, queue in (("B2", "bench-hand"), ("B3", "bench")):
            run_id = str(uuid.uuid4())
            if name == "B2":
                await self.client.execute_workflow("BenchHandWritten",
                                                   args=[20, {"v": "h", "n": 1}], id=run_id,
                                                   task_queue=queue)
            else:
                self.b3_runs.clear()
                await self.runners["B3"](20, 1)
                run_id = self.b3_runs[-1]
            history = await self.client.get_workflow_handle(run_id).fetch_history()
            self.report.history[name] = len(history.events) / 20

    async def _lag(self) -> None:
        """Step finished (by the clock of whatever finished it) → its row's NOTIFY received
        by a listener in its own process (``bench/listener.py``), as the API's event stream
        is deployed: what a user watching the run waits for."""
        from store.runs import RUN_EVENTS_CHANNEL

        self.b3_runs.clear()
        arrivals_file = Path(tempfile.mkdtemp(prefix="pp-lag-")) / "arrivals.txt"
        listener = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.listener", self.postgres.dsn, RUN_EVENTS_CHANNEL,
            str(arrivals_file), stdout=asyncio.subprocess.PIPE)
        assert listener.stdout is not None
        try:
            ready = await asyncio.wait_for(listener.stdout.readline(), 30)
            if ready.strip() != b"ready":
                raise RuntimeError(f"the NOTIFY listener did not start: {ready!r}")
            await drive(self.runners["B3"], *KEY[:1], runs_for(*KEY, self.args.quick), KEY[1])
            await asyncio.sleep(0.5)  # the last notifications in flight
        finally:
            listener.terminate()
        await listener.wait()
        arrivals: dict[tuple[str, str], float] = {}
        for line in arrivals_file.read_text().splitlines():
            stamp, run_id, step_id = line.split()
            arrivals.setdefault((run_id, step_id), float(stamp))
        async with self.engine.connect() as db:
            rows = (await db.execute(text(
                "select run_id, step_id, extract(epoch from finished_at) from workflow_run_steps "
                "where run_id = any(:ids) and status = 'completed'"),
                {"ids": [uuid.UUID(r) for r in self.b3_runs]})).all()
        lags = [arrivals[(str(r[0]), r[1])] - float(r[2]) for r in rows
                if (str(r[0]), r[1]) in arrivals]
        if len(lags) != len(rows):
            raise RuntimeError(f"{len(rows) - len(lags)} step rows were never notified")
        self.report.mirror_lag = (percentile(lags, 50) * 1000, percentile(lags, 99) * 1000,
                                  len(lags))

    async def _api_latency(self) -> None:
        count = self.args.api_requests or (300 if self.args.quick else 1000)
        warmup = 20  # the first few warm the pools
        meter = CpuMeter(self.meter_pids)
        since = datetime.now(UTC)
        meter.start()
        if self.args.api_in_process:
            latencies = await self._api_starts_in_process(count, warmup)
        else:
            latencies = await measure_starts(self.api.url, API_KEY, count, warmup)
        used = meter.stop()
        # CPU per start of a 1-step run (its execution included, for the worker and servers).
        self.report.cpu["API start"] = {k: v / (count + warmup) for k, v in used.items()}
        self.report.api = (percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
                           len(latencies))
        lags = await dispatch_lags(self.settings, self.engine, self.definitions[1][0], since,
                                  count + warmup)
        self.report.dispatch = (percentile(lags, 50) * 1000, percentile(lags, 99) * 1000,
                                len(lags))
        # Temporal's own start, in the same run: the figure the API start is set beside.
        own = await temporal_starts(self.settings, self.definitions[1], count, warmup)
        self.report.temporal_start = (percentile(own, 50) * 1000, percentile(own, 99) * 1000,
                                      len(own))

    async def _api_starts_in_process(self, count: int, warmup: int) -> list[float]:
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=self.api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            for n in range(count + warmup):
                began = time.perf_counter()
                response = await http.post("/api/workflows/bench-1/run", params={"wait": 0},
                                           json={"input": {"topic": "api", "n": n}})
                elapsed = time.perf_counter() - began
                if response.status_code != 202 and response.status_code != 200:
                    raise RuntimeError(f"start failed: {response.status_code} {response.text}")
                if n >= warmup:
                    latencies.append(elapsed)
        return latencies
