"""The variants, each ``run(steps, n) -> output`` awaitable, on shared services."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from temporalio.client import Client

from bench.steps import apply
from schema.definition import WorkflowDefinition
from schema.run import RunWorkflowInput
from schema.workflow_names import WORKFLOW_NAME

Runner = Callable[[int, int], Awaitable[Any]]


def b0() -> Runner:
    """B0: a plain asyncio loop calling the step function."""

    async def run(steps: int, n: int) -> Any:
        value: dict[str, Any] = {"v": "bench", "n": n}
        for _ in range(steps):
            value = apply(value)
        return value

    return run


def b1(pool: asyncpg.Pool) -> Runner:
    """B1: B0 plus one committed Postgres write per step (the durable floor)."""

    async def run(steps: int, n: int) -> Any:
        run_id = uuid.uuid4()
        value: dict[str, Any] = {"v": "bench", "n": n}
        async with pool.acquire() as conn:
            for index in range(steps):
                value = apply(value)
                await conn.execute(
                    "insert into bench_steps (run_id, step, output) values ($1, $2, $3)",
                    run_id, index, value["v"])
        return value

    return run


def b2(client: Client, task_queue: str) -> Runner:
    """B2: the hand-written Temporal workflow, one regular activity per step (started
    eagerly on its worker's client, like B3)."""

    async def run(steps: int, n: int) -> Any:
        return await client.execute_workflow(
            "BenchHandWritten", args=[steps, {"v": "bench", "n": n}], id=str(uuid.uuid4()),
            task_queue=task_queue, request_eager_start=True)

    return run


def b3(client: Client, task_queue: str, definitions: dict[int, tuple[str, WorkflowDefinition]],
       *, mirror: bool, run_ids: list[str] | None = None) -> Runner:
    """B3 (mirror on) and B3' (mirror off): our interpreter on the bench definition."""

    async def run(steps: int, n: int) -> Any:
        workflow_id, definition = definitions[steps]
        run_id = str(uuid.uuid4())
        if run_ids is not None:
            run_ids.append(run_id)
        return await client.execute_workflow(
            WORKFLOW_NAME, RunWorkflowInput(
                run_id=run_id, environment="dev", workflow_id=workflow_id,
                workflow_slug=definition.id, workflow_version=1, definition=definition,
                input={"topic": "bench", "n": n}, mirror=mirror),
            id=run_id, task_queue=task_queue, request_eager_start=True)

    return run


def p1() -> Runner:
    """P1: DBOS Transact (launched by the caller)."""
    from bench import peer

    async def run(steps: int, n: int) -> Any:
        return await peer.run(steps, {"v": "bench", "n": n})

    return run
