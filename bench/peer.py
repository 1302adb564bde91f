"""P1: the same chain on DBOS Transact, its system database on the same Postgres."""

from __future__ import annotations

from typing import Any

import jmespath
from dbos import DBOS, DBOSConfig

from bench import pipeline
from bench.steps import apply


@DBOS.step()
async def dbos_step(value: dict[str, Any]) -> dict[str, Any]:
    """One checkpointed step."""
    return apply(value)


@DBOS.workflow()
async def dbos_chain(steps: int, value: dict[str, Any]) -> dict[str, Any]:
    """``steps`` steps in a row."""
    for _ in range(steps):
        value = await dbos_step(value)
    return value


@DBOS.step()
async def dbos_llm(lane: str, prompt: str, schema: dict[str, Any] | None) -> Any:
    """One checkpointed model call (the hand-written activity's code)."""
    return await pipeline.llm_call(lane, prompt, schema)


@DBOS.step()
async def dbos_search(query: str, limit: int) -> dict[str, Any]:
    """One checkpointed search."""
    return await pipeline.search(query, limit)


@DBOS.workflow()
async def dbos_pipeline(lane: str, topic: str) -> dict[str, Any]:
    """B4's pipeline: model, search, transform, model, transform (transforms inline)."""
    plan = await dbos_llm(lane, pipeline.render(pipeline.PLAN_PROMPT, {"topic": topic}),
                          pipeline.QUERY_SCHEMA)
    found = await dbos_search(plan["query"], 3)
    picked = jmespath.search(pipeline.PICK, {"results": found["results"]})
    text = await dbos_llm(lane, pipeline.render(pipeline.WRITE_PROMPT,
                                                {"topic": topic, "first": picked["first"]}),
                          None)
    shaped: dict[str, Any] = jmespath.search(pipeline.SHAPE, {"text": text,
                                                              "titles": picked["titles"]})
    return shaped


async def run_pipeline(lane: str, topic: str) -> dict[str, Any]:
    """One durable run of the pipeline."""
    handle = await DBOS.start_workflow_async(dbos_pipeline, lane, topic)
    result: dict[str, Any] = await handle.get_result()
    return result


def launch(url: str) -> None:
    """Start DBOS on ``url`` (a ``postgresql://`` URL of its own database)."""
    config: DBOSConfig = {"name": "promptpilot-bench", "system_database_url": url,
                          "log_level": "WARNING", "sys_db_pool_size": 16}
    DBOS(config=config)
    DBOS.launch()


async def run(steps: int, value: dict[str, Any]) -> dict[str, Any]:
    """One durable run."""
    handle = await DBOS.start_workflow_async(dbos_chain, steps, value)
    result: dict[str, Any] = await handle.get_result()
    return result


def shutdown() -> None:
    """Stop DBOS."""
    DBOS.destroy()
