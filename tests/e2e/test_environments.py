"""dev and prod are isolated end to end: namespaces, rows and keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from temporalio.service import RPCError

from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from store.runs import Store
from tests.conftest import DEV_KEY, PROD_KEY, unique_slug
from tests.triggers_support import echo


@pytest.fixture
async def two_envs(settings: Settings) -> AsyncIterator[str]:
    """A worker per environment (dev and prod namespaces) and the API; yields the API URL."""
    both = settings.model_copy(deep=True)
    both.temporal.worker_environments = ["dev", "prod"]
    url = both.database.url
    assert url
    async with running_worker(both, url), running_api(both, url) as api:
        yield api.url


async def test_prod_runs_are_invisible_and_unstartable_with_a_dev_key(
    two_envs: str, store: Store, settings: Settings
) -> None:
    dev = httpx.AsyncClient(base_url=two_envs, headers={"Authorization": f"Bearer {DEV_KEY}"},
                            timeout=30)
    prod = httpx.AsyncClient(base_url=two_envs, headers={"Authorization": f"Bearer {PROD_KEY}"},
                             timeout=30)
    async with dev, prod:
        slug = unique_slug("env")
        assert (await prod.post("/api/workflows", json=echo(slug))).status_code == 201
        started = await prod.post(f"/api/workflows/{slug}/run", json={"input": {"topic": "p"}})
        assert started.status_code == 200, started.text
        run = started.json()["run"]
        assert run["status"] == "completed"

        assert (await dev.get(f"/api/workflows/runs/{run['id']}")).status_code == 404
        assert (await dev.get(f"/api/workflows/{slug}/runs")).status_code == 404
        assert slug not in [w["slug"] for w in (await dev.get("/api/workflows")).json()
                            ["workflows"]]
        refused = await dev.post(f"/api/workflows/{slug}/run", json={"input": {"topic": "d"}})
        assert refused.status_code == 404
        assert len((await prod.get(f"/api/workflows/{slug}/runs")).json()["runs"]) == 1

        # A prod trigger is invisible to the dev key, too.
        trigger = (await prod.post("/api/triggers", json={
            "workflowSlug": slug, "name": "m", "type": "manual", "input": {"topic": "t"}}))
        trigger_id = trigger.json()["trigger"]["id"]
        assert (await dev.get(f"/api/triggers/{trigger_id}")).status_code == 404
        assert (await dev.post(f"/api/triggers/{trigger_id}/execute")).status_code == 404

        # The same slug in dev is a different workflow, with its own rows.
        assert (await dev.post("/api/workflows", json=echo(slug))).status_code == 201
        dev_run = (await dev.post(f"/api/workflows/{slug}/run",
                                  json={"input": {"topic": "d"}})).json()["run"]
        assert dev_run["status"] == "completed"
        assert dev_run["workflowId"] != run["workflowId"]

    # The rows say so, and each ran in its own Temporal namespace.
    async with store.engine.connect() as db:
        rows = (await db.execute(text(
            "select environment from workflow_run_steps where run_id = any(:ids)"),
            {"ids": [uuid.UUID(run["id"]), uuid.UUID(dev_run["id"])]})).all()
    assert sorted(r.environment for r in rows) == ["dev", "prod"]
    in_prod = await connect(settings, "prod")
    in_dev = await connect(settings, "dev")
    assert (await in_prod.get_workflow_handle(run["id"]).describe()).status is not None
    with pytest.raises(RPCError):
        await in_dev.get_workflow_handle(run["id"]).describe()
