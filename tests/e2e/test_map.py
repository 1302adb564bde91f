"""Map steps: 1,000 items in child-workflow batches, item failures, rerun reusing items."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import text

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug


def mapping(slug: str, *, concurrency: int = 20, expression: str = "{n: n, sq: mul}",
            batch_size: int = 50) -> dict[str, Any]:
    return {"id": slug, "name": "map", "variables": [
                {"name": "numbers", "type": "array", "required": True},
                {"name": "factor", "type": "integer", "default": 2}],
            "steps": [
                {"id": "each", "type": "map", "items": "input.numbers",
                 "concurrency": concurrency, "batchSize": batch_size,
                 "inputMapping": {"factor": "input.factor"},
                 "steps": [{"id": "square", "type": "transform", "expression": expression,
                            "inputMapping": {"n": "input.item", "mul": "input.factor"}}]},
                {"id": "count", "type": "transform", "expression": "length(all)",
                 "inputMapping": {"all": "outputs.each"}},
            ]}


async def _map_row(service: Service, run_id: str) -> Any:
    async with service.store.engine.connect() as db:
        return (await db.execute(text(
            "select status, map_items, jsonb_array_length(output_json) as n, cost "
            "from workflow_run_steps where run_id = :id and step_id = 'each'"),
            {"id": uuid.UUID(run_id)})).one()


async def test_thousand_item_map_completes_in_batched_children(service: Service) -> None:
    slug = unique_slug("map")
    await service.create_workflow(mapping(slug))
    numbers = list(range(1000))

    started = time.monotonic()
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 110},
                                       json={"input": {"numbers": numbers}})
    elapsed = time.monotonic() - started

    run = response.json()["run"]
    assert run["status"] == "completed", run.get("error")
    print(f"[map 1000 items, concurrency 20] {elapsed:.1f}s")
    each = next(s for s in run["steps"] if s["stepId"] == "each")
    assert each["outputJson"][:2] == [{"n": 0, "sq": 2}, {"n": 1, "sq": 2}]
    assert [o["n"] for o in each["outputJson"]] == numbers
    assert run["outputJson"] == 1000
    row = await _map_row(service, run["id"])
    assert (row.status, row.n) == ("completed", 1000)
    assert row.map_items["total"] == row.map_items["completed"] == 1000
    assert (row.map_items["batches"], row.map_items["batchesInFlight"]) == (20, 1)
    # The mirror holds two rows, not 1,000: items are summarised on the map step.
    assert len(run["steps"]) == 2

    # The parent's history holds one child per batch, far under Temporal's limits.
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    assert len(history.events) < 300


async def test_failed_items_fail_the_map_and_a_rerun_reuses_the_rest(
    service: Service
) -> None:
    slug = unique_slug("map")
    # Item value 3 cannot be negated: abs() of a string fails that item only.
    await service.create_workflow(mapping(slug, concurrency=4, batch_size=3,
                                          expression="{n: abs(n)}"))
    numbers: list[Any] = [1, -2, "x", 4, -5, 6, 7]

    run = (await service.run(slug, {"numbers": numbers})).json()["run"]

    assert run["status"] == "failed"
    each = next(s for s in run["steps"] if s["stepId"] == "each")
    assert each["error"]["type"] == "map_item_failed"
    assert "item 2 at step square" in each["error"]["message"]
    assert each["mapItems"]["failedIndexes"] == [2]
    assert each["mapItems"]["batchesInFlight"] == 2
    assert each["outputJson"][1] == {"n": 2}
    assert each["outputJson"][2] is None

    # The rerun from the map step (or a step inside it) re-runs only the item that failed.
    fixed = mapping(slug, concurrency=4, batch_size=3, expression="{n: abs(to_number(n))}")
    assert (await service.http.put(f"/api/workflows/{slug}", json=fixed)).status_code == 200
    rerun = (await service.http.post(f"/api/workflows/runs/{run['id']}/rerun", json={
        "fromStepId": "square", "input": {"numbers": [1, -2, "3", 4, -5, 6, 7]}})).json()["run"]

    assert rerun["status"] == "completed", rerun.get("error")
    assert rerun["fromStepId"] == "each"
    each = next(s for s in rerun["steps"] if s["stepId"] == "each")
    assert each["mapItems"]["reused"] == 6
    assert each["mapItems"]["batches"] == 1
    assert [o["n"] for o in each["outputJson"]] == [1, 2, 3, 4, 5, 6, 7]
