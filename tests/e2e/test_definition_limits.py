"""Definition size, step count and run input size: at the limit it is stored and runs; past
it the answer names the limit (413 definition_too_large / input_too_large, 422
too_many_steps) and nothing is written; lists do not carry definitions."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from api.webhook_signatures import sign
from definition.limits import compact_size
from tests.conftest import Service, unique_slug


def passthrough(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "pass it on",
            "steps": [{"id": "t1", "type": "transform", "inputMapping": {"v": "input.v"}}]}


def padded(value: dict[str, Any], field: str, size: int) -> dict[str, Any]:
    """``value`` with ``field`` filled so that it is ``size`` bytes as compact JSON."""
    value = {**value, field: ""}
    value[field] = "x" * (size - compact_size(value))
    assert compact_size(value) == size
    return value


def refused(response: httpx.Response, status: int, code: str, where: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["problems"][0]["pointer"] == where, error


async def test_a_definition_at_the_size_limit_is_stored_and_runs(service: Service) -> None:
    limit = service.settings.limits.max_definition_bytes
    slug = unique_slug("size")
    before = await service.store.count_rows()
    over = padded(passthrough(slug), "description", limit + 1)
    refused(await service.http.post("/api/workflows", json=over), 413, "definition_too_large", "")
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404
    refused(await service.http.post("/api/workflows/preview", json={"definition": over}),
            413, "definition_too_large", "/definition")
    assert await service.store.count_rows() == before

    at_limit = padded(passthrough(slug), "description", limit)
    assert (await service.http.post("/api/workflows", json=at_limit)).status_code == 201
    run = await service.run(slug, {"v": 1})
    assert run.status_code == 200, run.text
    assert run.json()["run"]["status"] == "completed"
    refused(await service.http.put(f"/api/workflows/{slug}", json=over), 413,
            "definition_too_large", "")
    assert (await service.http.put(f"/api/workflows/{slug}", json=at_limit)).status_code == 200
    # Lists name versions and workflows; they do not carry a definition each.
    versions = await service.http.get(f"/api/workflows/{slug}/versions")
    assert [v["version"] for v in versions.json()["versions"]] == [1, 2]
    assert len(versions.content) < 1000


def with_steps(slug: str, count: int) -> dict[str, Any]:
    """``count`` steps, the last three inside a parallel step (which counts as one)."""
    inner = [[{"id": f"p{i}", "type": "transform"}] for i in range(3)]
    top = [{"id": f"t{i}", "type": "transform"} for i in range(count - 4)]
    return {"id": slug, "name": f"{count} steps",
            "steps": [*top, {"id": "fan", "type": "parallel", "branches": inner}]}


async def test_more_steps_than_the_limit_is_422_naming_the_limit(service: Service) -> None:
    limit = service.settings.limits.max_steps
    slug = unique_slug("steps")
    response = await service.http.post("/api/workflows", json=with_steps(slug, limit + 1))
    refused(response, 422, "too_many_steps", "/steps")
    assert str(limit) in response.json()["error"]["message"]
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404
    response = await service.http.post("/api/workflows", json=with_steps(slug, limit))
    assert response.status_code == 201, response.text


async def test_a_run_input_past_the_limit_is_413_on_every_way_in(service: Service) -> None:
    limit = service.settings.limits.max_run_input_bytes
    slug = unique_slug("input")
    await service.create_workflow(passthrough(slug))
    over = padded({}, "v", limit + 1)
    at_limit = padded({}, "v", limit)
    done = await service.run(slug, {"v": "small"})
    assert done.status_code == 200, done.text
    run_id = done.json()["run"]["id"]
    trigger = (await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "m", "type": "manual"})).json()["trigger"]
    hook = (await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "w", "type": "webhook"})).json()["trigger"]
    before = await service.store.count_rows()

    refused(await service.run(slug, over), 413, "input_too_large", "/input")
    refused(await service.http.post(f"/api/workflows/runs/{run_id}/rerun",
                                    json={"fromStepId": "t1", "input": over}),
            413, "input_too_large", "/input")
    refused(await service.http.post(f"/api/workflows/{slug}/preview", json={"input": over}),
            413, "input_too_large", "/input")
    refused(await service.http.post(f"/api/triggers/{trigger['id']}/execute",
                                    json={"input": over}), 413, "input_too_large", "/input")
    refused(await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "big", "type": "manual", "input": over}),
        413, "input_too_large", "/input")
    body = json.dumps(over).encode()
    stamp = int(time.time())
    headers = {"webhook-id": "msg-over", "webhook-timestamp": str(stamp),
               "webhook-signature": sign(hook["webhookSecret"], "msg-over", stamp, body),
               "Content-Type": "application/json"}
    refused(await service.http.post(f"/api/webhooks/{hook['id']}", content=body,
                                    headers=headers), 413, "input_too_large", "")
    assert await service.store.count_rows() == before

    response = await service.run(slug, at_limit)
    assert response.status_code == 200, response.text
    assert response.json()["run"]["status"] == "completed"
