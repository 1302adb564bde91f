"""Condition steps, `when` guards and parallel branches through the API, mirror rows checked."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from tests.conftest import Service, unique_slug


def _t(step_id: str, expression: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "transform", **({"expression": expression}
                                                   if expression else {}), **extra}


def routing(slug: str) -> dict[str, Any]:
    """classify -> condition -> urgent | normal -> report (reads both sides)."""
    return {"id": slug, "name": "routing",
            "variables": [{"name": "score", "type": "number", "required": True}],
            "steps": [
                {"id": "route", "type": "condition", "expression": "input.score > `5`",
                 "then": "urgent", "else": "normal"},
                _t("urgent", "{lane: 'urgent'}", inputMapping={"s": "input.score"}),
                # The end of the `then` branch: jump over the `else` branch.
                {"id": "done", "type": "condition", "expression": "`true`", "then": "report"},
                _t("normal", "{lane: 'normal'}", inputMapping={"s": "input.score"}),
                _t("report", "{urgent: u, normal: n}",
                   inputMapping={"u": "outputs.urgent.lane", "n": "outputs.normal.lane"}),
                _t("audit", when="input.score == `3`"),
            ]}


async def _rows(service: Service, run_id: str) -> dict[str, tuple[str, str | None]]:
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, status, parent_step_id from workflow_run_steps where run_id = :id"),
            {"id": uuid.UUID(run_id)})).all()
    return {r.step_id: (r.status, r.parent_step_id) for r in rows}


async def test_condition_routes_each_way_and_when_guard_skips(service: Service) -> None:
    slug = unique_slug("cond")
    await service.create_workflow(routing(slug))

    high = (await service.run(slug, {"score": 9})).json()["run"]
    low = (await service.run(slug, {"score": 3})).json()["run"]

    assert (high["status"], low["status"]) == ("completed", "completed")
    assert high["outputJson"] == {"urgent": "urgent", "normal": None}
    rows = await _rows(service, high["id"])
    assert {k: v[0] for k, v in rows.items()} == {
        "route": "completed", "urgent": "completed", "done": "completed",
        "normal": "skipped", "report": "completed", "audit": "skipped"}
    steps = {s["stepId"]: s for s in high["steps"]}
    assert steps["route"]["outputJson"] == {"result": True, "value": True, "next": "urgent"}
    assert steps["normal"]["rendered"] == {"skipReason": "jumped over by done"}
    assert steps["audit"]["rendered"]["skipReason"].startswith("when guard")

    # 3 routes to `else`; the `when` guard lets `audit` run this time.
    rows = await _rows(service, low["id"])
    assert {k: v[0] for k, v in rows.items()} == {
        "route": "completed", "urgent": "skipped", "done": "skipped",
        "normal": "completed", "report": "completed", "audit": "completed"}
    assert low["outputJson"] == {}  # the last step that ran: audit passes its input through
    report = next(s for s in low["steps"] if s["stepId"] == "report")
    assert report["outputJson"] == {"urgent": None, "normal": "normal"}


async def test_rerun_after_a_condition_keeps_its_decision(service: Service) -> None:
    slug = unique_slug("cond")
    await service.create_workflow(routing(slug))
    source = (await service.run(slug, {"score": 9})).json()["run"]

    response = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun",
                                       json={"fromStepId": "normal"})

    run = response.json()["run"]
    assert run["status"] == "completed", run
    statuses = {s["stepId"]: s["status"] for s in run["steps"]}
    # route, urgent and done are reused; done's jump still skips `normal`.
    assert statuses == {"route": "reused", "urgent": "reused", "done": "reused",
                        "normal": "skipped", "report": "completed", "audit": "skipped"}
    assert run["outputJson"] == source["outputJson"]


def fan_out(slug: str, *, fail_fast: bool) -> dict[str, Any]:
    """Three branches; `bad` fails (a JMESPath type error), `slow` waits on a timer."""
    return {"id": slug, "name": "fan out", "steps": [
        {"id": "par", "type": "parallel", "failFast": fail_fast, "branches": {
            "good": [_t("g1", "`1`"), _t("g2", "{value: v}", inputMapping={"v": "outputs.g1"})],
            "bad": [_t("b1", "abs('x')")],
            "slow": [{"id": "wait1", "type": "approval", "timeoutSeconds": 2,
                      "onTimeout": "approve"}, _t("s2", "`2`")],
        }},
        _t("after", inputMapping={"g": "outputs.g2"}),
    ]}


async def test_parallel_collects_branch_outputs(service: Service) -> None:
    slug = unique_slug("par")
    definition = fan_out(slug, fail_fast=False)
    del definition["steps"][0]["branches"]["bad"]
    await service.create_workflow(definition)

    run = (await service.run(slug, {})).json()["run"]

    assert run["status"] == "completed", run
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["par"]["outputJson"] == {"good": {"value": 1}, "slow": 2}
    assert steps["after"]["outputJson"] == {"g": {"value": 1}}
    rows = await _rows(service, run["id"])
    assert rows["g1"] == ("completed", "par")
    assert rows["wait1"] == ("completed", "par")


async def test_parallel_without_fail_fast_finishes_every_branch(service: Service) -> None:
    slug = unique_slug("par")
    await service.create_workflow(fan_out(slug, fail_fast=False))

    run = (await service.run(slug, {})).json()["run"]

    assert run["status"] == "failed"
    rows = await _rows(service, run["id"])
    assert rows["b1"][0] == "failed"
    assert (rows["g2"][0], rows["s2"][0], rows["par"][0]) == ("completed", "completed", "failed")
    assert "after" not in rows
    par = next(s for s in run["steps"] if s["stepId"] == "par")
    assert [f["branch"] for f in par["error"]["details"]["failures"]] == ["bad"]
    assert par["outputJson"] == {"good": {"value": 1}, "bad": None, "slow": 2}


async def test_parallel_fail_fast_cancels_siblings(service: Service) -> None:
    slug = unique_slug("par")
    await service.create_workflow(fan_out(slug, fail_fast=True))

    run = (await service.run(slug, {})).json()["run"]

    assert run["status"] == "failed"
    rows = await _rows(service, run["id"])
    assert rows["b1"][0] == "failed"
    # The slow branch was waiting for approval when `bad` failed: cancelled, never finished.
    assert rows["wait1"][0] == "cancelled"
    assert "s2" not in rows
    par = next(s for s in run["steps"] if s["stepId"] == "par")
    # `good` may or may not have finished first; `slow` cannot have.
    assert "slow" in par["error"]["details"]["cancelledBranches"]
