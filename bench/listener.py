"""A NOTIFY listener in its own process, for the mirror-lag figure.

``python -m bench.listener DSN CHANNEL FILE`` prints ``ready``, then writes one line per
completed step event it receives to FILE: ``<epoch seconds> <run id> <step id>``, stamped as
it arrives. It runs
apart from the bench's worker, as the API's event stream does when deployed, so the figure
is when the row became visible to a reader, not when a busy worker loop got round to it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

import asyncpg  # type: ignore[import-untyped]


async def listen(dsn: str, channel: str) -> list[str]:
    """Collect arrivals until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    lines: list[str] = []

    def on_event(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        arrived = time.time()
        event = json.loads(payload)
        if event.get("kind") == "step" and event.get("status") == "completed":
            lines.append(f"{arrived:.6f} {event['runId']} {event['stepId']}\n")

    connection = await asyncpg.connect(dsn)
    try:
        await connection.add_listener(channel, on_event)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await connection.close()
    return lines


if __name__ == "__main__":
    with open(sys.argv[3], "w") as out:
        out.writelines(asyncio.run(listen(sys.argv[1], sys.argv[2])))
