"""What tracing costs: B3 (our interpreter, mirror on, 5 transform steps, 8 at a time) with
tracing off and on to a local OTLP/HTTP receiver, alternating in one process. Prints runs/s
and the ratio (no timed assertion: the figure is for docs/performance.md and README: Traces)."""

from __future__ import annotations

import asyncio
import time
import uuid

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from activities.providers.registry import known_providers
from activities.tools import known_tools
from bench.steps import definition
from definition.validation import parse_definition
from promptpilot import tracing
from promptpilot.services import running_worker
from promptpilot.settings import Settings
from schema.run import RunWorkflowInput
from schema.workflow_names import WORKFLOW_NAME
from store.runs import Store
from tests.fakes.otlp_receiver import OtlpReceiver

RUNS, STEPS, CONCURRENCY = 120, 5, 8


async def _runs_per_second(settings: Settings, store: Store, traced: TracerProvider | None,
                           queue: str) -> float:
    tracing.configure(traced)
    parsed = parse_definition(definition(f"cost-{uuid.uuid4().hex[:8]}", STEPS),
                              known_providers(settings), tools=known_tools())
    row, _ = await store.create_workflow("dev", parsed)
    url = settings.database.url
    assert url
    async with running_worker(settings, url, task_queue=queue) as worker:
        client = worker.client
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int) -> None:
            async with gate:
                run_id = str(uuid.uuid4())
                await client.execute_workflow(WORKFLOW_NAME, RunWorkflowInput(
                    run_id=run_id, environment="dev", workflow_id=str(row.id),
                    workflow_slug=parsed.id, workflow_version=1, definition=parsed,
                    input={"topic": "bench", "n": n}, mirror=True),
                    id=run_id, task_queue=queue, request_eager_start=True)

        await asyncio.gather(*(one(n) for n in range(16)))  # warm-up
        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(RUNS)))
        return RUNS / (time.perf_counter() - began)


async def test_what_tracing_costs_b3(settings: Settings, store: Store) -> None:
    settings.temporal.workflow_sandbox = False  # as the bench and the product's worker run
    receiver = OtlpReceiver().start()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")))
    figures: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for index in range(4):
            mode = "off" if index % 2 == 0 else "on"
            queue = f"{settings.temporal.task_queue}-{index}"
            figures[mode].append(await _runs_per_second(
                settings, store, provider if mode == "on" else None, queue))
        provider.force_flush()
    finally:
        tracing.configure(None)
        provider.shutdown()
        receiver.stop()
    off, on = max(figures["off"]), max(figures["on"])
    print(f"\nB3 {STEPS} steps x {CONCURRENCY}: tracing off {figures['off']} runs/s, "
          f"on {figures['on']} runs/s; best on/off = {on / off:.2f}; "
          f"{len(receiver.spans)} spans received")
    assert receiver.spans
