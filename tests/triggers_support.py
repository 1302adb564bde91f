"""Helpers the trigger tests share: a fast transform-only workflow and run polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conftest import Service


def echo(slug: str) -> dict[str, Any]:
    """One transform step that returns its input: no LLM, so runs take milliseconds."""
    return {"id": slug, "name": "echo",
            "variables": [{"name": "topic", "type": "string", "required": True}],
            "steps": [{"id": "s1", "type": "transform", "inputMapping": {"topic": "input.topic"}}]}


async def runs_of(service: Service, slug: str, **params: Any) -> list[dict[str, Any]]:
    """Runs of a workflow through the API (newest first)."""
    response = await service.http.get(f"/api/workflows/{slug}/runs",
                                      params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def wait_runs(service: Service, slug: str, count: int, *, status: str = "completed",
                    within: float = 30, **params: Any) -> list[dict[str, Any]]:
    """Poll until at least `count` runs have `status`; fail with what was seen."""
    deadline = time.monotonic() + within
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [r for r in await runs_of(service, slug, **params) if r["status"] == status]
        if len(runs) >= count:
            return runs
        await asyncio.sleep(0.25)
    raise AssertionError(f"expected {count} {status} runs of {slug}, saw {len(runs)}")
