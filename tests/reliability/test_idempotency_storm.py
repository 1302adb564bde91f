"""Fifty concurrent starts carrying one Idempotency-Key make exactly one run."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import Service, unique_slug
from tests.reliability.conftest import Record, assert_exactly_once, transform_chain
from tests.triggers_support import runs_of


async def test_50_concurrent_duplicate_starts_make_one_run(service: Service,
                                                           record: Record) -> None:
    slug = unique_slug("storm")
    await service.create_workflow(transform_chain(slug, 3))
    headers = {"Idempotency-Key": f"storm-{slug}"}
    began = time.monotonic()
    responses = await asyncio.gather(*[
        service.http.post(f"/api/workflows/{slug}/run", json={"input": {"topic": "once"}},
                          headers=headers, params={"wait": 15})
        for _ in range(50)])
    seconds = time.monotonic() - began
    assert {r.status_code for r in responses} <= {200, 202}, [r.text for r in responses]
    ids = {r.json()["run"]["id"] for r in responses}
    assert len(ids) == 1
    runs = await runs_of(service, slug)
    assert [r["id"] for r in runs] == list(ids)
    assert runs[0]["status"] == "completed"
    await assert_exactly_once(service.store.engine, runs[0]["id"], ["t1", "t2", "t3"])
    record(seconds, fault="50 concurrent starts, one Idempotency-Key", responses=50)
