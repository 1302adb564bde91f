"""The API as its own process (``promptpilot api``), the way it is deployed, and its client.

The Temporal worker that executes the runs stays in the bench process. The API runs as
``promptpilot api`` with the bench's settings passed through the environment, and the load
client runs in a third process, so neither the API nor the timing of its answers waits on the
worker's event loop (a real client and a real API never do). The API's CPU is read from its
own process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import httpx

from promptpilot.settings import Settings


def _environment(settings: Settings) -> dict[str, str]:
    """The settings the bench's API needs, as ``promptpilot api`` reads them."""
    assert settings.database.url
    return {
        **os.environ,
        "PROMPTPILOT_ENVIRONMENT": settings.environment,
        "PROMPTPILOT_DATABASE__URL": settings.database.url,
        "PROMPTPILOT_DATABASE__POOL_SIZE": str(settings.database.pool_size),
        "PROMPTPILOT_TEMPORAL__ADDRESS": settings.temporal.address,
        "PROMPTPILOT_TEMPORAL__TASK_QUEUE": settings.temporal.task_queue,
        "PROMPTPILOT_API__HOST": settings.api.host,
        "PROMPTPILOT_API__PORT": str(settings.api.port),
        "PROMPTPILOT_API__RUN_WAIT_SECONDS": str(settings.api.run_wait_seconds),
        "PROMPTPILOT_LOG_LEVEL": "WARNING",
    }


@dataclass
class ApiProcess:
    """A running ``promptpilot api``."""

    url: str
    pid: int


@asynccontextmanager
async def api_process(settings: Settings, *,
                      extra_env: dict[str, str] | None = None) -> AsyncIterator[ApiProcess]:
    """Start ``promptpilot api`` on the settings, wait until /healthz answers, stop it after."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from promptpilot.cli import main; main()", "api",
        env={**_environment(settings), **(extra_env or {})}, stdout=asyncio.subprocess.DEVNULL)
    url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            deadline = time.monotonic() + 60
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"the API process exited with {proc.returncode}")
                with suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the API process did not become healthy in 60 s")
                await asyncio.sleep(0.1)
        yield ApiProcess(url, proc.pid)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def measure_starts(url: str, key: str, count: int, warmup: int) -> list[float]:
    """Run the load client in its own process; the seconds each start took, warm-up dropped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api_process", url, key, str(count), str(warmup),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the API load client failed ({proc.returncode})")
    latencies: list[float] = json.loads(out)
    return latencies


def _client(url: str, key: str, count: int, warmup: int) -> list[float]:
    """``count + warmup`` sequential ``POST /api/workflows/bench-1/run?wait=0``."""
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as http:
        for n in range(count + warmup):
            began = time.perf_counter()
            response = http.post("/api/workflows/bench-1/run", params={"wait": 0},
                                 json={"input": {"topic": "api", "n": n}})
            elapsed = time.perf_counter() - began
            if response.status_code not in (200, 202):
                raise RuntimeError(f"start failed: {response.status_code} {response.text}")
            if n >= warmup:  # the first few warm the pools
                latencies.append(elapsed)
    return latencies


if __name__ == "__main__":
    url_arg, key_arg, count_arg, warmup_arg = sys.argv[1:5]
    sys.stdout.write(json.dumps(_client(url_arg, key_arg, int(count_arg), int(warmup_arg))))
    sys.stdout.flush()
