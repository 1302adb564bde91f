"""One bad row never breaks a list: rows written straight into the tables with values our
writers never produce still list, show and render; a start that fails after its pending row
was written leaves no row behind."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.launcher import StartRequest, start_run
from api.state import AppState
from store.database import CLIPPED
from store.keys import ApiKeys
from store.runs import Store
from tests.conftest import Service, unique_slug
from tests.ui_login import sign_in

RUN_COLUMNS = ("id, environment, workflow_id, workflow_version, status, trigger, input_json, "
               "output_json, error, overrides, tokens_in, tokens_out, created_at")


def passthrough(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "pass it on",
            "steps": [{"id": "t1", "type": "transform", "inputMapping": {"v": "input.v"}}]}


def deep(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


async def insert(engine: AsyncEngine, sql: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(sql), values)


async def test_runs_that_no_writer_makes_still_list_and_show(service: Service,
                                                             engine: AsyncEngine) -> None:
    slug = unique_slug("rows")
    workflow = await service.create_workflow(passthrough(slug))
    ids = [uuid.uuid4() for _ in range(3)]
    # The orphan of issue 12 (an input 300 levels deep, left `pending`), one 5,000 levels
    # deep (only SQL can write that), and one whose JSON columns hold the wrong kinds.
    rows = [(ids[0], deep(300), "null", "null", "null", "pending"),
            (ids[1], deep(5000), "1" + "0" * 5000, "null", "null", "running"),
            (ids[2], '[1, 2]', '"x"', '"a string, not an object"', '[1]', "no-such-status")]
    for run_id, run_input, output, error, overrides, status in rows:
        await insert(engine, f"insert into workflow_runs ({RUN_COLUMNS}) values (:id, 'dev', "
                     ":wf, 1, :status, 'api', cast(:input as jsonb), cast(:output as jsonb), "
                     "cast(:error as jsonb), cast(:overrides as jsonb), 0, 0, now())",
                     id=run_id, wf=uuid.UUID(workflow["id"]), status=status, input=run_input,
                     output=output, error=error, overrides=overrides)
    await insert(engine, "insert into workflow_run_steps (id, environment, run_id, step_id, "
                 "step_index, type, status, rendered, error, tool_trace, warnings, attempt_log, "
                 "map_items, tokens_in, tokens_out, cached_tokens, attempts, retry_count, "
                 "updated_at) values (:id, 'dev', :run, 't1', 0, 'transform', "
                 "'failed', '[]', '3', '{\"not\": \"a list\"}', '[1, {\"a\": 2}]', '\"x\"', "
                 "'[]', 0, 0, 0, 1, 0, now())", id=uuid.uuid4(), run=ids[2])

    for path in ("/api/workflows/runs", f"/api/workflows/{slug}/runs"):
        response = await service.http.get(path, params={"limit": 200})
        assert response.status_code == 200, response.text
        listed = {r["id"]: r for r in response.json()["runs"]}
        assert {str(i) for i in ids} <= set(listed)
    shown = {str(i): (await service.http.get(f"/api/workflows/runs/{i}")) for i in ids}
    assert all(r.status_code == 200 for r in shown.values()), shown
    first = json.dumps(shown[str(ids[0])].json()["run"]["inputJson"])
    assert CLIPPED in first
    assert shown[str(ids[1])].json()["run"]["outputJson"] == "1" + "0" * 5000
    odd = shown[str(ids[2])].json()["run"]
    assert odd["error"] == {"value": "a string, not an object"}
    assert odd["overrides"] == {"value": [1]}
    step = odd["steps"][0]
    assert step["error"] == {"value": 3}
    assert step["toolTrace"] == [{"not": "a list"}]
    assert step["warnings"] == ["1", '{"a": 2}']
    async with httpx.AsyncClient(base_url=service.url) as browser:
        await sign_in(browser)
        for path in ("/ui/runs", f"/ui/runs?workflow={slug}", "/ui/workflows",
                     *(f"/ui/runs/{i}" for i in ids)):
            page = await browser.get(path)
            assert page.status_code == 200, (path, page.text[-2000:])


async def test_triggers_and_versions_that_no_writer_makes_still_list(
    service: Service, engine: AsyncEngine
) -> None:
    slug = unique_slug("rows")
    workflow = await service.create_workflow(passthrough(slug))
    for kind, config in (("bogus-kind", "[]"), ("scheduled", "{}"),
                         ("scheduled", '{"intervals": "every day"}')):
        await insert(engine, "insert into triggers (id, environment, workflow_id, name, type, "
                     "enabled, config, input_json, version_policy, created_at, updated_at) "
                     "values (:id, 'dev', :wf, 'odd', :kind, true, cast(:config as jsonb), "
                     "'\"not an object\"', 'sometimes', now(), now())",
                     id=uuid.uuid4(), wf=uuid.UUID(workflow["id"]), kind=kind, config=config)
    # A second version whose definition is not an object at all.
    await insert(engine, "insert into workflow_versions (id, environment, workflow_id, version, "
                 "definition, created_at) values (:id, 'dev', :wf, 2, '[\"no\", 1]', now())",
                 id=uuid.uuid4(), wf=uuid.UUID(workflow["id"]))
    await insert(engine, "update workflows set current_version = 2 where id = :wf",
                 wf=uuid.UUID(workflow["id"]))

    listed = await service.http.get("/api/triggers", params={"workflowSlug": slug})
    assert listed.status_code == 200, listed.text
    triggers = listed.json()["triggers"]
    assert len(triggers) == 3
    assert {t["type"] for t in triggers} == {"bogus-kind", "scheduled"}
    assert all(t["input"] == {"value": "not an object"} for t in triggers)
    for found in triggers:
        detail = await service.http.get(f"/api/triggers/{found['id']}")
        assert detail.status_code == 200, detail.text
    for path in ("/api/workflows", f"/api/workflows/{slug}", f"/api/workflows/{slug}/versions",
                 f"/api/workflows/{slug}/versions/2", f"/api/workflows/{slug}/versions/diff"
                 "?from=1"):
        response = await service.http.get(path)
        assert response.status_code == 200, (path, response.text)
    async with httpx.AsyncClient(base_url=service.url) as browser:
        await sign_in(browser)
        for path in ("/ui/triggers", "/ui/workflows", f"/ui/workflows/{slug}",
                     f"/ui/workflows/{slug}?version=1", f"/ui/workflows/{slug}/diff?from=1",
                     f"/ui/workflows/{slug}/preview"):
            page = await browser.get(path)
            assert page.status_code == 200, (path, page.text[-2000:])


def nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("run_input", [nested(300), {"v": object()}],
                         ids=["300 levels deep", "not JSON"])
async def test_a_start_that_fails_after_its_row_leaves_no_row(
    service: Service, engine: AsyncEngine, run_input: Any
) -> None:
    # Inputs the door now refuses (or no JSON body can hold), handed to the launcher itself:
    # the payload converter cannot encode them, after the pending row was written.
    slug = unique_slug("orphan")
    await service.create_workflow(passthrough(slug))
    store = Store(engine)
    state = AppState(settings=service.settings, store=store, keys=ApiKeys(engine))
    workflow = await store.get_workflow("dev", slug)
    assert workflow is not None
    version = await store.get_version(workflow.id, 1)
    assert version is not None
    before = await store.count_rows()
    with pytest.raises(Exception, match="serializ"):
        await start_run(state, StartRequest(environment="dev", workflow=workflow,
                                            version=version, input=run_input))
    assert await store.count_rows() == before
    runs = await service.http.get(f"/api/workflows/{slug}/runs")
    assert runs.status_code == 200
    assert runs.json()["runs"] == []
