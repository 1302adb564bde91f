"""Timing helpers: drive N runs at a concurrency, percentiles, CPU of the processes involved."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]

from bench.variants import Runner


@dataclass
class Cell:
    """One measurement: runs at a concurrency."""

    runs: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        """Completed runs per second."""
        return self.runs / self.seconds

    @property
    def p50_ms(self) -> float:
        """Median run latency."""
        return percentile(self.latencies, 50) * 1000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def drive(run: Runner, steps: int, runs: int, concurrency: int) -> Cell:
    """Run ``runs`` runs of ``steps`` steps, at most ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(n: int) -> None:
        async with gate:
            began = time.perf_counter()
            await run(steps, n)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(runs)))
    return Cell(runs, time.perf_counter() - began, latencies)


def median(values: list[float]) -> float:
    """The median, NaN when empty."""
    return statistics.median(values) if values else float("nan")


class CpuMeter:
    """CPU-seconds (user + system) of named process trees between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)] if pid != os.getpid() else [root]
                total = 0.0
                for proc in procs:
                    try:
                        times = proc.cpu_times()
                        total += times.user + times.system
                    except psutil.Error:
                        continue
                out[name] = total
            except psutil.Error:
                out[name] = 0.0
        return out

    def start(self) -> None:
        """Remember the counters now."""
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        """CPU-seconds per process tree since ``start``."""
        after = self._now()
        return {name: after[name] - self._before.get(name, 0.0) for name in after}
