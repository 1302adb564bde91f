"""P1: the same chain on DBOS Transact, its system database on the same Postgres."""

from __future__ import annotations

from typing import Any

from dbos import DBOS, DBOSConfig

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
