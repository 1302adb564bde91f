"""The hand-written pipeline's worker as its own process, for the scale pass (its memory is
read from its own process, as ``promptpilot worker``'s is).

``python -m bench.hand_worker ADDRESS TASK_QUEUE SLOTS CACHE LANE=URL...`` prints ``ready`` once
polling, and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench import pipeline
from promptpilot.worker_build import workflow_runner


async def serve(address: str, task_queue: str, slots: int, cache: int,
                lanes: dict[str, str]) -> None:
    """Poll until SIGTERM."""
    pipeline.configure(lanes)
    client = await Client.connect(address, namespace="dev")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[pipeline.HandWrittenPipeline],
                      activities=[pipeline.llm_call, pipeline.search],
                      workflow_runner=workflow_runner(sandboxed=False),
                      max_concurrent_activities=slots, max_cached_workflows=cache):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    address_arg, queue_arg, slots_arg, cache_arg, *lane_args = sys.argv[1:]
    asyncio.run(serve(address_arg, queue_arg, int(slots_arg), int(cache_arg),
                      dict(arg.split("=", 1) for arg in lane_args)))
