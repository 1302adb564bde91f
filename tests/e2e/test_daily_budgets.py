"""Daily spend limits per workflow and per environment hold across runs started at once: each
call holds its worst case for the day in Postgres before it is made."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug
from tests.e2e.test_budget_fanout import _llm_step, _script, _worst_case
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer


def _one_call(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "one call",
            "variables": [{"name": "topic", "type": "string", "required": True}],
            "steps": [_llm_step("write", {"topic": "input.topic"})]}


async def _runs(service: Service, slug: str, count: int) -> list[dict[str, Any]]:
    responses = await asyncio.gather(*(service.run(slug, {"topic": "x"}) for _ in range(count)))
    return [r.json()["run"] for r in responses]


async def _spent_today(engine: AsyncEngine, scope: str) -> float:
    async with engine.connect() as db:
        value = (await db.execute(text(
            "select spent_usd + held_usd from daily_spend where scope = :s "
            "and day = (clock_timestamp() at time zone 'UTC')::date"), {"s": scope})).scalar()
    return float(value or 0.0)


async def test_a_workflow_daily_limit_holds_across_runs_started_at_once(
        settings: Settings, service: Service, llm: FakeLlmServer) -> None:
    worst, tokens = _worst_case("x")
    actual = _script(llm, 4, tokens)
    slug = unique_slug("daily")
    settings.budgets.workflow_daily_usd = {slug: 2.5 * worst}  # read by the worker per call
    await service.create_workflow(_one_call(slug))

    runs = await _runs(service, slug, 4)

    statuses = sorted(r["status"] for r in runs)
    assert statuses == ["completed", "completed", "failed", "failed"]
    assert llm.count(OPENAI_PATH) == 2  # each run alone fits; together only two do
    refused = next(r for r in runs if r["status"] == "failed")["steps"][0]["error"]
    assert refused["type"] == "budget_exceeded"
    assert f"workflow:dev/{slug}" in refused["message"]
    assert "the call was not made" in refused["message"]
    spent = await _spent_today(service.store.engine, f"workflow:dev/{slug}")
    assert spent == pytest.approx(2 * actual)
    assert spent <= 2.5 * worst


async def test_an_environment_daily_limit_counts_every_workflow(
        settings: Settings, service: Service, llm: FakeLlmServer) -> None:
    worst, tokens = _worst_case("x")
    _script(llm, 2, tokens)
    before = await _spent_today(service.store.engine, "env:dev")
    settings.budgets.environment_daily_usd = before + 1.5 * worst
    first, second = unique_slug("env-a"), unique_slug("env-b")
    await service.create_workflow(_one_call(first))
    await service.create_workflow(_one_call(second))

    ran = (await service.run(first, {"topic": "x"})).json()["run"]
    refused = (await service.run(second, {"topic": "x"})).json()["run"]

    assert ran["status"] == "completed"
    assert refused["status"] == "failed"
    assert "env:dev" in refused["steps"][0]["error"]["message"]
    assert llm.count(OPENAI_PATH) == 1
