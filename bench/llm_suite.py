"""B4 (the LLM pipeline, ours through the API against hand-written Temporal and DBOS) and the
scale pass (hundreds to thousands of runs in flight, 1 s per model call)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bench.measure import Cell, CpuMeter, drive, median
from bench.variants import Runner

Driver = Callable[[int, int], Awaitable[Cell]]
"""``(runs, concurrency) -> Cell``: one variant's runs of the pipeline."""

LANES = ("fast", "slow")
LATENCY = 1.0
B4_CONCURRENCY = 64
DECOMPOSITION = ("ours-direct", "ours-unmirrored")
"""B4 variants run only when named in ``BENCH_B4_VARIANTS``: ours without the API, and
without the mirror too (what each part of the product costs)."""
SCALE_LEVELS = tuple(int(n) for n in os.environ.get("BENCH_SCALE_LEVELS",
                                                  "100,1000,2000").split(","))


@dataclass
class LlmReport:
    """What B4 and the scale pass measured."""

    fast: list[dict[str, float]] = field(default_factory=list)  # runs/s per round
    slow: list[dict[str, float]] = field(default_factory=list)  # wall seconds per round
    slow_runs: int = 0
    history: dict[str, tuple[int, int]] = field(default_factory=dict)  # events, bytes
    cpu: list[dict[str, dict[str, float]]] = field(default_factory=list)
    """Per latency-0 round: variant -> process -> CPU ms per run."""
    scale: list[dict[str, Any]] = field(default_factory=list)
    scale_settings: str = ""
    scale_seconds: float = 0.0

    def _cpu_rows(self, names: list[str]) -> list[str]:
        rows = []
        for process in [*(self.cpu[0][names[0]] if self.cpu else []), "all"]:
            per_run = {n: median([sum(r[n].values()) if process == "all" else r[n][process]
                                  for r in self.cpu]) for n in names}
            rows.append(f"| CPU ms per run, latency 0: {process} (median of {len(self.cpu)}) | "
                        + " | ".join(f"{per_run[n]:.1f}" for n in names)
                        + f" | {_vs_hand([per_run]):.2f} |")
        return rows if self.cpu else []

    def markdown(self) -> list[str]:
        """The B4 and scale tables."""
        if not self.fast:
            return []
        names = list(self.fast[0])
        out = ["", f"## B4: the LLM pipeline at {B4_CONCURRENCY} concurrent runs", "",
               "llm step with an output schema → web_search (offline backend) → transform → "
               "llm step → transform. Ours started through the API (`POST …/run?wait`, mirror "
               "on); hand-written: the same pipeline as a Temporal workflow, model calls and "
               "search as regular activities on the same openai SDK, transforms inline, its "
               "own worker, started on its worker's client; DBOS: the same shape as DBOS "
               "steps. Model server: bench/model_server.py, OpenAI-compatible, local.", "",
               "| figure | " + " | ".join(names) + " | ours/hand-written |",
               "|---|" + "---:|" * (len(names) + 1)]
        fast = {n: median([r[n] for r in self.fast]) for n in names}
        ratio = _vs_hand(self.fast)
        out.append(f"| runs/s, latency 0 (median of {len(self.fast)} rounds) | "
                   + " | ".join(f"{fast[n]:.1f}" for n in names) + f" | {ratio:.3f} |")
        if self.slow:
            slow = {n: median([r[n] for r in self.slow]) for n in names}
            wall = _vs_hand(self.slow)
            out.append(f"| wall s, {self.slow_runs} runs at once, latency {LATENCY:g} s "
                       f"(median of {len(self.slow)}; floor 2 s) | "
                       + " | ".join(f"{slow[n]:.2f}" for n in names) + f" | {wall:.3f} |")
        out += self._cpu_rows(names)
        for name, (events, size) in self.history.items():
            out.append(f"| history of one run ({name}): events / bytes; per LLM step (÷ 2) | "
                       f"{events} / {size:,} B; {events / 2:.1f} / {size / 2:,.0f} B | | |")
        if self.cpu:
            out += ["", "CPU per run is measured per process while one variant's round runs "
                    "alone (rounds are sequential); the hand-written starter shares the bench "
                    "process with both workers, ours is started by a load client of its own "
                    "(not counted)."]
        out += ["", "Rounds, runs/s: " + "; ".join(
            ", ".join(f"{k} {v:.1f}" for k, v in r.items()) for r in self.fast)]
        if self.slow:
            out += ["", "Rounds at latency 1 s, wall s: " + "; ".join(
                ", ".join(f"{k} {v:.2f}" for k, v in r.items()) for r in self.slow)]
        if self.scale:
            out += ["", f"## Scale pass: runs in flight at once, {LATENCY:g} s per model call "
                    f"({self.scale_seconds:.0f} s)", "", self.scale_settings, "",
                    "| runs in flight | ours wall s | hand-written wall s | ours/hand | "
                    "ours/floor (2 s) | hand/floor | worker RSS per run, ours | "
                    "hand-written |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for row in self.scale:
                out.append(
                    f"| {row['runs']:,} | {row['ours']:.2f} | {row['hand']:.2f} | "
                    f"{row['ours'] / row['hand']:.3f} | {row['ours'] / 2:.2f} | "
                    f"{row['hand'] / 2:.2f} | {row['ours_rss'] / 1024:.1f} KiB | "
                    f"{row['hand_rss'] / 1024:.1f} KiB |")
        return out


def _vs_hand(rows: list[dict[str, float]]) -> float:
    """The median of ours / hand-written over rows; NaN when either was not run."""
    return median([r["ours"] / r["hand-written"] for r in rows
                   if r.get("hand-written") and "ours" in r])


@asynccontextmanager
async def model_server(latency: float = LATENCY
                       ) -> AsyncIterator[tuple[dict[str, str], int]]:
    """bench/model_server.py in its own process; yields the base URL of each lane, and the
    process id."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.model_server", "--latency", str(latency),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        yield {lane: f"http://127.0.0.1:{port}/{lane}/v1" for lane in LANES}, proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def use_model_server(settings: Any, lanes: dict[str, str]) -> None:
    """Point the settings' compatible providers at the lanes; search offline."""
    from pydantic import SecretStr

    from promptpilot.llm_settings import CompatibleProvider

    settings.llm.compatible = {lane: CompatibleProvider(base_url=url,
                                                        api_key=SecretStr("sk-bench"))
                               for lane, url in lanes.items()}
    settings.tools.web_search_backend = "offline"


def pipeline_env(settings: Any) -> dict[str, str]:
    """The same, as environment variables for `promptpilot api` / `worker`."""
    compatible = {name: {"base_url": p.base_url, "api_key": "sk-bench"}
                  for name, p in settings.llm.compatible.items()}
    return {"PROMPTPILOT_LLM__COMPATIBLE": json.dumps(compatible),
            "PROMPTPILOT_TOOLS__WEB_SEARCH_BACKEND": settings.tools.web_search_backend,
            "PROMPTPILOT_TEMPORAL__MAX_CONCURRENT_ACTIVITIES":
                str(settings.temporal.max_concurrent_activities)}


def ours(http: httpx.AsyncClient, slug: str, run_ids: list[str] | None = None) -> Runner:
    """Our pipeline, started through the API and waited for there."""

    async def run(_steps: int, n: int) -> Any:
        response = await http.post(f"/api/workflows/{slug}/run", params={"wait": 300},
                                   json={"input": {"topic": f"durable pipelines {n}"}})
        body = response.json() if response.status_code == 200 else {}
        if body.get("run", {}).get("status") != "completed":
            raise RuntimeError(f"run failed: {response.status_code} {response.text[:500]}")
        if run_ids is not None:
            run_ids.append(body["run"]["id"])
        return body

    return run


def hand(client: Client, task_queue: str, lane: str) -> Runner:
    """The hand-written pipeline, started eagerly on its worker's client."""

    async def run(_steps: int, n: int) -> Any:
        handle = await client.start_workflow(
            "BenchPipeline", args=[lane, f"durable pipelines {n}"], id=str(uuid.uuid4()),
            task_queue=task_queue, request_eager_start=True)
        while True:
            try:
                return await handle.result()
            except RPCError as exc:
                # Over the server's long-poll limit (2,000 waits at once), as the API does.
                if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                    raise
                await asyncio.sleep(0.5 * (0.5 + random.random()))

    return run


def driven(run: Runner) -> Driver:
    """A runner in this process as a driver."""

    async def go(runs: int, concurrency: int) -> Cell:
        return await drive(run, 5, runs, concurrency)

    return go


def remote_ours(url: str, key: str, slug: str, run_ids: list[str] | None = None) -> Driver:
    """Ours through the API, its load client in its own process (bench/api_load.py)."""
    from bench.api_load import remote

    async def go(runs: int, concurrency: int) -> Cell:
        cell, last = await remote(url, key, slug, runs, concurrency)
        if run_ids is not None:
            run_ids.append(last)
        return cell

    return go


def dbos(lane: str) -> Runner:
    """The pipeline on DBOS (launched by the caller)."""
    from bench import peer

    async def run(_steps: int, n: int) -> Any:
        return await peer.run_pipeline(lane, f"durable pipelines {n}")

    return run


def api_client(url: str, key: str) -> httpx.AsyncClient:
    """A client for thousands of waiting requests at once."""
    return httpx.AsyncClient(base_url=url, timeout=600, headers={"Authorization": f"Bearer {key}"},
                             limits=httpx.Limits(max_connections=None,
                                                 max_keepalive_connections=2100))


async def history_of(client: Client, workflow_id: str) -> tuple[int, int]:
    """Events and bytes of one run's history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events), sum(e.ByteSize() for e in history.events)


async def b4(runners: dict[str, dict[str, Driver]], report: LlmReport, *, quick: bool,
             progress: Any, pids: dict[str, int | None] | None = None,
             rounds: int | None = None) -> None:
    """Interleaved rounds at latency 0 (runs/s, and CPU per run of each process in ``pids``)
    and at 1 s (wall time)."""
    chosen = os.environ.get("BENCH_B4_VARIANTS")
    names = [n for n in runners if n in chosen.split(",")] if chosen else \
        [n for n in runners if n not in DECOMPOSITION]
    for name in names:  # warm-up: connections, caches
        await runners[name]["fast"](16, 8)
    default_rounds, runs = (2, 64) if quick else (5, 128)
    rounds = rounds or default_rounds
    for index in range(rounds):
        order = names[index % len(names):] + names[:index % len(names)]
        figures, cpu = {}, {}
        for n in order:
            meter = CpuMeter(pids or {})
            meter.start()
            figures[n] = (await runners[n]["fast"](runs, B4_CONCURRENCY)).per_second
            cpu[n] = {k: v * 1000 / runs for k, v in meter.stop().items()}
        report.fast.append({n: figures[n] for n in names})
        if pids:
            report.cpu.append(cpu)
        progress(f"B4 round {index + 1}/{rounds} (latency 0): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    report.slow_runs = B4_CONCURRENCY
    for index in range(1 if quick else 3):
        order = names[index % len(names):] + names[:index % len(names)]
        walls = {n: (await runners[n]["slow"](B4_CONCURRENCY, B4_CONCURRENCY)).seconds
                 for n in order}
        report.slow.append({n: walls[n] for n in names})
        progress("B4 latency 1 s, wall: " + ", ".join(f"{k} {v:.2f}" for k, v in walls.items()))


class RssPeak:
    """The highest RSS of a process while sampling."""

    def __init__(self, pid: int) -> None:
        self.proc, self.peak = psutil.Process(pid), 0
        self._task: asyncio.Task[None] | None = None

    def now(self) -> int:
        """RSS now."""
        rss: int = self.proc.memory_info().rss
        return rss

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            await asyncio.sleep(0.1)

    def start(self) -> None:
        """Sample until stop."""
        self.peak = self.now()
        self._task = asyncio.create_task(self._sample())

    def stop(self) -> int:
        """The peak since start."""
        assert self._task is not None
        self._task.cancel()
        return max(self.peak, self.now())


async def _process(stack: AsyncExitStack, *argv: str, env: dict[str, str] | None = None,
                   ready: bytes | None = None) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE if ready else asyncio.subprocess.DEVNULL)

    async def stop() -> None:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    stack.push_async_callback(stop)
    if ready:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != ready:
            raise RuntimeError(f"{argv[1:3]} did not start: {line!r}")
    return proc


async def scale(suite: Any, report: LlmReport, progress: Any) -> None:
    """100, 1,000 and 2,000 runs at once, 1 s per model call: ours (`promptpilot worker` and
    `promptpilot api`, each its own process) against the hand-written worker's process."""
    from bench.api_process import _environment, api_process
    from devstack.process import free_port

    began = time.monotonic()
    slots = int(os.environ.get("BENCH_SCALE_SLOTS", "2000"))
    cache = int(os.environ.get("BENCH_SCALE_CACHE", "1000"))
    settings = suite.settings.model_copy(deep=True)
    settings.temporal.task_queue = "bench-scale"
    settings.temporal.max_concurrent_activities = slots
    settings.temporal.max_cached_workflows = cache
    settings.api.port = free_port()
    lanes = {n: p.base_url for n, p in settings.llm.compatible.items()}
    report.scale_settings = (
        f"Both workers: {slots} activity slots (`temporal.max_concurrent_activities`; "
        f"default 200), a workflow cache of {cache:,} runs (`temporal.max_cached_workflows`, "
        "`BENCH_SCALE_CACHE`; default 1,000), workflow tasks at the SDK default; no sandbox. "
        "Ours: `promptpilot worker` and `promptpilot api` as their own processes; RSS per run "
        "is (peak RSS during the pass - RSS after warm-up) / runs, of the worker process.")
    async with AsyncExitStack() as stack:
        env = {**_environment(settings), **pipeline_env(settings)}
        worker = await _process(stack, sys.executable, "-c",
                                "from promptpilot.cli import main; main()", "worker", env=env)
        hand_worker = await _process(
            stack, sys.executable, "-m", "bench.hand_worker", settings.temporal.address,
            "bench-scale-hand", str(slots), str(cache),
            *(f"{k}={v}" for k, v in lanes.items()),
            ready=b"ready")
        api = await stack.enter_async_context(api_process(settings, extra_env=env))
        slug = suite.pipeline_slugs["slow"]
        runners = {"ours": (remote_ours(api.url, "pp_bench_key", slug), worker.pid),
                   "hand": (driven(hand(suite.client, "bench-scale-hand", "slow")),
                            hand_worker.pid)}
        for run, _pid in runners.values():
            await run(20, 20)
        baseline = {name: RssPeak(pid).now() for name, (_run, pid) in runners.items()}
        for index, level in enumerate(SCALE_LEVELS):
            row: dict[str, Any] = {"runs": level}
            order = list(runners) if index % 2 == 0 else list(reversed(runners))
            for name in order:
                run, pid = runners[name]
                meter = RssPeak(pid)
                meter.start()
                row[name] = (await run(level, level)).seconds
                row[f"{name}_rss"] = max(meter.stop() - baseline[name], 0) / level
                progress(f"scale {level} in flight: {name} {row[name]:.2f} s, worker RSS "
                         f"{row[f'{name}_rss'] / 1024:.1f} KiB per run")
            report.scale.append(row)
    report.scale_seconds = time.monotonic() - began
