"""The load client for runs started through the API, in its own process (as a user's client
is): the bench's worker process then runs only the worker, as `promptpilot worker` does.

``python -m bench.api_load URL KEY SLUG RUNS CONCURRENCY`` starts RUNS runs of SLUG with
``POST …/run?wait``, at most CONCURRENCY at a time, and prints the seconds they took, each
run's latency and the last run's id as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bench.measure import Cell, drive


async def load(url: str, key: str, slug: str, runs: int, concurrency: int) -> dict[str, object]:
    """Drive the runs; the figures."""
    from bench.llm_suite import api_client, ours

    run_ids: list[str] = []
    async with api_client(url, key) as http:
        cell = await drive(ours(http, slug, run_ids), 5, runs, concurrency)
    return {"seconds": cell.seconds, "latencies": cell.latencies, "last": run_ids[-1]}


async def remote(url: str, key: str, slug: str, runs: int, concurrency: int) -> tuple[Cell, str]:
    """Run the load client as its own process: the cell and the last run's id."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api_load", url, key, slug, str(runs), str(concurrency),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the API load client failed ({proc.returncode})")
    figures = json.loads(out)
    return Cell(runs, figures["seconds"], figures["latencies"]), str(figures["last"])


if __name__ == "__main__":
    url_arg, key_arg, slug_arg, runs_arg, concurrency_arg = sys.argv[1:6]
    result = asyncio.run(load(url_arg, key_arg, slug_arg, int(runs_arg), int(concurrency_arg)))
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
