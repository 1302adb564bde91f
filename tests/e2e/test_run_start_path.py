"""The run-start path's shortcuts are invisible to users.

`POST /api/workflows/{slug}/run` caches immutable workflow versions, checks the API key with
one raw statement per request (never cached) and reads the run back on one connection.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from store.keys import ApiKeys, digest
from tests.conftest import Service, unique_slug


def _transform(slug: str, expression: str) -> dict[str, Any]:
    return {"id": slug, "name": "one transform",
            "variables": [{"name": "n", "type": "integer", "required": True}],
            "steps": [{"id": "t", "type": "transform", "expression": expression,
                       "inputMapping": {"n": "input.n"}}]}


async def test_a_new_version_is_used_by_the_next_start(service: Service) -> None:
    slug = unique_slug("versions")
    await service.create_workflow(_transform(slug, "{n: n, v: `1`}"))
    first = await service.run(slug, {"n": 3})
    assert first.status_code == 200, first.text
    assert first.json()["run"]["workflowVersion"] == 1
    assert first.json()["run"]["outputJson"] == {"n": 3, "v": 1}

    updated = await service.http.put(f"/api/workflows/{slug}",
                                     json=_transform(slug, "{n: n, v: `2`}"))
    assert updated.status_code == 200, updated.text
    second = await service.run(slug, {"n": 4})
    assert second.status_code == 200, second.text
    assert second.json()["run"]["workflowVersion"] == 2
    assert second.json()["run"]["outputJson"] == {"n": 4, "v": 2}


async def test_wait_zero_answers_202_with_the_pending_run(service: Service) -> None:
    slug = unique_slug("nowait")
    await service.create_workflow(_transform(slug, "{n: n}"))
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                       json={"input": {"n": 1}})
    assert response.status_code == 202, response.text
    run = response.json()["run"]
    assert run["status"] in ("pending", "running")
    assert run["inputJson"] == {"n": 1}
    assert run["workflowSlug"] == slug
    assert isinstance(run["steps"], list)


async def test_a_revoked_key_is_refused_on_the_next_request(service: Service) -> None:
    keys = ApiKeys(service.store.engine)
    key = await keys.create("dev", "revoked soon")
    async with httpx.AsyncClient(base_url=service.url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        assert (await http.get("/api/workflows")).status_code == 200
        async with service.store.engine.connect() as db:
            key_id = (await db.execute(text("select id from api_keys where key_hash = :h"),
                                       {"h": digest(key)})).scalar_one()
        await keys.revoke(str(key_id))
        refused = await http.get("/api/workflows")
        assert refused.status_code == 401, refused.text
        assert "revoked" in refused.text
