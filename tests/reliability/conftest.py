"""Fault-injection helpers: mirror checks, run polling and the recovery-time record.

Every case records how long the system took to recover from its fault; the session writes
them all to ``test-artifacts/reliability.json`` and prints them (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability.json"
_RECORDS: list[dict[str, Any]] = []

Record = Callable[..., None]


@pytest.fixture(scope="session", autouse=True)
def _reliability_report() -> Iterator[None]:
    yield
    if not _RECORDS:
        return
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps({"cases": _RECORDS}, indent=2) + "\n")
    lines = [f"  {r['case']:<44} recovery {r['recoverySeconds']:>7.2f} s"
             + (f", runs left non-final: {r['runsLeftNonFinal']}" if "runsLeftNonFinal" in r
                else "") for r in _RECORDS]
    print("\nreliability: recovery times\n" + "\n".join(lines))


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """``record(seconds, **facts)``: keep this case's recovery time for the report."""

    def keep(seconds: float, **facts: Any) -> None:
        _RECORDS.append({"case": request.node.name, "recoverySeconds": round(seconds, 3),
                         **facts})

    return keep


async def mirror_counts(engine: AsyncEngine, run_id: str) -> dict[str, tuple[int, str]]:
    """Per step id of a run: how many mirror rows it has and the status of the last one."""
    async with engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, count(*), max(status) from workflow_run_steps where run_id = :id "
            "group by step_id"), {"id": uuid.UUID(run_id)})).all()
    return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}


async def assert_exactly_once(engine: AsyncEngine, run_id: str, step_ids: list[str]) -> None:
    """Zero lost steps and zero duplicate rows: every step once, and completed."""
    counts = await mirror_counts(engine, run_id)
    missing = [s for s in step_ids if s not in counts]
    duplicated = {s: c for s, (c, _) in counts.items() if c != 1}
    unfinished = {s: st for s, (_, st) in counts.items() if st != "completed"}
    assert not missing, f"lost steps: {missing}"
    assert not duplicated, f"duplicate step rows: {duplicated}"
    assert not unfinished, f"steps not completed: {unfinished}"
    assert len(counts) == len(step_ids)


async def wait_status(http: httpx.AsyncClient, run_id: str, within: float,
                      statuses: tuple[str, ...] = ("completed", "failed")) -> dict[str, Any]:
    """Poll the API until the run reaches one of ``statuses``; return the run."""
    deadline = time.monotonic() + within
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/api/workflows/runs/{run_id}")
        if response.status_code == 200:
            run = response.json()["run"]
            if run["status"] in statuses:
                return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {statuses} in {within}s: {run}")


async def wait_row_status(engine: AsyncEngine, run_id: str, within: float,
                          statuses: tuple[str, ...] = ("completed", "failed")) -> str:
    """Poll the mirror's run row (cheap, unlike the API's run with every step)."""
    deadline = time.monotonic() + within
    status = ""
    while time.monotonic() < deadline:
        async with engine.connect() as db:
            status = str((await db.execute(text(
                "select status from workflow_runs where id = :id"),
                {"id": uuid.UUID(run_id)})).scalar_one_or_none())
        if status in statuses:
            return status
        await asyncio.sleep(0.5)
    raise AssertionError(f"run {run_id} did not reach {statuses} in {within}s: {status}")


async def wait_until(predicate: Callable[[], bool], within: float) -> None:
    """Poll a cheap predicate."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def transform_chain(slug: str, steps: int) -> dict[str, Any]:
    """``steps`` transforms, each passing the previous output on (no LLM: fast steps)."""
    body = [{"id": f"t{i}", "type": "transform",
             "inputMapping": {"v": "input.topic" if i == 1 else f"outputs.t{i - 1}.v"}}
            for i in range(1, steps + 1)]
    return {"id": slug, "name": f"{steps} transforms",
            "variables": [{"name": "topic", "type": "string", "required": True}],
            "steps": body}


def llm_chain(slug: str, steps: int, **llm: Any) -> dict[str, Any]:
    """``steps`` llm steps on the fake OpenAI server, each fed the previous answer."""
    body = []
    for i in range(1, steps + 1):
        mapping = {"topic": "input.topic"} if i == 1 else {"prev": f"outputs.s{i - 1}"}
        prompt = "Start on {{topic}}" if i == 1 else f"Step {i}: {{{{prev}}}}"
        body.append({"id": f"s{i}", "type": "llm", "provider": "openai", "model": "gpt-4o-mini",
                     "promptUser": prompt, "inputMapping": mapping, **llm})
    return {"id": slug, "name": f"{steps} llm steps",
            "variables": [{"name": "topic", "type": "string", "required": True}],
            "steps": body}
