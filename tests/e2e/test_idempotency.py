"""Idempotent starts: one key, one run, however many concurrent requests carry it."""

from __future__ import annotations

import asyncio

from tests.conftest import Service, unique_slug
from tests.triggers_support import echo, runs_of


async def test_twenty_concurrent_starts_with_one_key_make_one_run(service: Service) -> None:
    slug = unique_slug("idem")
    await service.create_workflow(echo(slug))
    headers = {"Idempotency-Key": f"key-{slug}"}
    responses = await asyncio.gather(*[
        service.http.post(f"/api/workflows/{slug}/run", json={"input": {"topic": "once"}},
                          headers=headers, params={"wait": 10})
        for _ in range(20)])
    assert {r.status_code for r in responses} <= {200, 202}, [r.text for r in responses]
    assert len({r.json()["run"]["id"] for r in responses}) == 1
    runs = await runs_of(service, slug)
    assert len(runs) == 1
    assert runs[0]["status"] == "completed"

    again = await service.http.post(f"/api/workflows/{slug}/run", headers=headers,
                                    json={"input": {"topic": "once"}})
    assert again.json()["run"]["id"] == runs[0]["id"]
    different = await service.http.post(f"/api/workflows/{slug}/run", headers=headers,
                                        json={"input": {"topic": "twice"}})
    assert different.status_code == 422
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await runs_of(service, slug)) == 1


async def test_trigger_execute_honours_the_idempotency_key(service: Service) -> None:
    slug = unique_slug("idemt")
    await service.create_workflow(echo(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "m", "type": "manual", "input": {"topic": "t"}})
    trigger_id = created.json()["trigger"]["id"]
    headers = {"Idempotency-Key": f"exec-{slug}"}
    first, second = await asyncio.gather(*[
        service.http.post(f"/api/triggers/{trigger_id}/execute", headers=headers)
        for _ in range(2)])
    assert first.status_code == second.status_code == 202
    assert first.json()["runId"] == second.json()["runId"]
    other = await service.http.post(f"/api/triggers/{trigger_id}/execute", headers=headers,
                                    json={"input": {"topic": "changed"}})
    assert other.status_code == 422
