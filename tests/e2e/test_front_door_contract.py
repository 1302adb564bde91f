"""The front door's contract: `slug` in definitions, round trips, UUID URLs and `execute`."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from devstack.examples import example_definitions
from tests.conftest import PROD_KEY, Service, unique_slug
from tests.triggers_support import echo


def rich(slug: str) -> dict[str, Any]:
    """A definition with variables, optional fields left out, and a nested parallel step."""
    return {
        "slug": slug, "name": "round trip",
        "variables": [{"name": "topic", "type": "string", "required": True},
                      {"name": "tone", "type": "string", "default": "plain"}],
        "steps": [
            {"id": "shape", "type": "transform", "inputMapping": {"topic": "input.topic"}},
            {"id": "both", "type": "parallel", "branches": {
                "a": [{"id": "a1", "type": "transform", "inputMapping": {"t": "input.tone"}}],
                "b": [{"id": "b1", "type": "tool", "toolName": "web_search",
                       "args": {"query": "durable", "site": None}}]}},
            {"id": "ask", "type": "llm", "model": "gpt-4o-mini", "provider": "openai",
             "promptUser": "About {{topic}}", "inputMapping": {"topic": "input.topic"},
             "outputSchema": {"type": "object", "default": None}},
        ],
    }


def nulls(value: Any, path: str = "") -> list[str]:
    """Where a definition holds `null` as a field of one of its own objects."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("args", "outputSchema"):
                continue  # free-form JSON, where a null is the user's own value
            found += [f"{path}/{key}"] if item is None else nulls(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += nulls(item, f"{path}/{index}")
    return found


async def test_a_definition_may_name_itself_by_slug(service: Service) -> None:
    slug = unique_slug("slug")
    created = await service.http.post("/api/workflows", json=rich(slug))
    assert created.status_code == 201, created.text
    workflow = created.json()["workflow"]
    assert workflow["slug"] == slug
    assert workflow["definition"]["id"] == slug
    assert workflow["definition"]["slug"] == slug
    both = await service.http.post("/api/workflows", json={**rich(slug), "id": "other-one"})
    assert both.status_code == 422, both.text
    problem = both.json()["error"]["problems"][0]
    assert problem["pointer"] == "/slug"
    for named in (f"'{slug}'", "'other-one'", "/slug", "/id"):
        assert named in problem["message"]
    document = (await service.http.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["WorkflowDefinition"]
    assert schema["anyOf"] == [{"required": ["id"]}, {"required": ["slug"]}]
    assert "id" not in schema["required"]


async def test_a_fetched_definition_posts_back_unchanged_into_another_environment(
    service: Service
) -> None:
    slug = unique_slug("trip")
    await service.create_workflow(rich(slug))
    fetched = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]["definition"]
    assert nulls(fetched) == []
    assert fetched["steps"][1]["branches"]["b"][0]["args"] == {"query": "durable", "site": None}
    version = (await service.http.get(f"/api/workflows/{slug}/versions/1")).json()
    assert version["version"]["definition"] == fetched

    async with httpx.AsyncClient(base_url=service.url, timeout=30,
                                 headers={"Authorization": f"Bearer {PROD_KEY}"}) as prod:
        copied = await prod.post("/api/workflows", json=fetched)
        assert copied.status_code == 201, copied.text
        again = (await prod.get(f"/api/workflows/{slug}")).json()["workflow"]["definition"]
    assert again == fetched
    # Saved back where it came from: a new version that differs in nothing.
    saved = await service.http.put(f"/api/workflows/{slug}", json=fetched)
    assert saved.status_code == 200, saved.text
    assert saved.json()["workflow"]["definition"] == fetched
    diff = (await service.http.get(f"/api/workflows/{slug}/versions/diff",
                                   params={"from": 1, "to": 2})).json()
    assert diff["changes"] == []


async def test_every_workflow_route_takes_the_workflow_uuid(service: Service) -> None:
    slug = unique_slug("uuid")
    workflow = await service.create_workflow(echo(slug))
    ident = workflow["id"]
    http = service.http
    assert (await http.get(f"/api/workflows/{ident}")).json()["workflow"]["slug"] == slug
    ran = await http.post(f"/api/workflows/{ident}/run", json={"input": {"topic": "u"}})
    assert ran.status_code == 200, ran.text
    assert ran.json()["run"]["workflowSlug"] == slug
    runs = (await http.get(f"/api/workflows/{ident}/runs")).json()["runs"]
    assert [r["workflowSlug"] for r in runs] == [slug]
    assert len((await http.get(f"/api/workflows/{ident}/versions")).json()["versions"]) == 1
    updated = await http.put(f"/api/workflows/{ident}", json={**echo(slug), "name": "renamed"})
    assert updated.status_code == 200, updated.text
    assert (await http.get(f"/api/workflows/{ident}/versions/2")).status_code == 200
    preview = await http.post(f"/api/workflows/{ident}/preview", json={"input": {"topic": "p"}})
    assert preview.status_code == 200, preview.text
    trigger = await http.post("/api/triggers", json={
        "workflowSlug": ident, "name": "by uuid", "type": "manual", "input": {"topic": "t"}})
    assert trigger.status_code == 201, trigger.text
    assert trigger.json()["trigger"]["workflowSlug"] == slug
    listed = (await http.get("/api/workflows/runs", params={"workflow": ident})).json()["runs"]
    assert [r["workflowSlug"] for r in listed] == [slug]
    event = await http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "after itself", "type": "event",
        "config": {"sourceWorkflowSlug": ident, "onStatus": ["failed"]}})
    assert event.status_code == 201, event.text
    assert event.json()["trigger"]["config"]["sourceWorkflowSlug"] == slug
    # A UUID-shaped slug would be ambiguous, so none is taken.
    refused = await http.post("/api/workflows", json=echo(ident))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["problems"][0]["pointer"] == "/id"
    unknown = await http.get("/api/workflows/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404


async def test_execute_records_the_run_and_answers_at_once(service: Service) -> None:
    slug = unique_slug("exec")
    definition = {**echo(slug), "variables": [
        {"name": "topic", "type": "string", "required": True},
        {"name": "depth", "type": "integer", "default": 2}]}
    workflow = await service.create_workflow(definition)
    http = service.http
    missing = await http.post(f"/api/workflows/{slug}/execute", json={"input": {"depth": "x"}})
    assert missing.status_code == 422, missing.text
    assert {p["pointer"] for p in missing.json()["error"]["problems"]} == {
        "/input/topic", "/input/depth"}
    assert (await http.get(f"/api/workflows/{slug}/runs")).json()["runs"] == []

    started = await http.post(f"/api/workflows/{workflow['id']}/execute",
                              json={"input": {"topic": "now"}})
    assert started.status_code == 202, started.text
    run = started.json()["run"]
    assert run["status"] in ("pending", "running")
    assert run["trigger"] == "api"
    assert run["inputJson"] == {"topic": "now", "depth": 2}
    assert started.headers["location"] == f"/api/workflows/runs/{run['id']}"
    for _ in range(200):
        shown = (await http.get(started.headers["location"])).json()["run"]
        if shown["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert shown["status"] == "completed", shown
    assert shown["outputJson"] == {"topic": "now"}
    unknown = await http.post("/api/workflows/no-such-flow/execute", json={})
    assert unknown.status_code == 404


async def test_docs_and_redoc_load_only_assets_the_app_serves(service: Service) -> None:
    for page in ("/docs", "/redoc"):
        html = (await service.http.get(page, headers={"Authorization": ""})).text
        urls = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?'([^']+)'""", html)
        found = [a or b for a, b in urls]
        assert len(found) >= 3, (page, found)
        assert "://" not in html.replace("window.location", ""), page
        for url in found:
            assert url.startswith("/"), (page, url)
            assert not url.startswith("//"), (page, url)
            asset = await service.http.get(url, headers={"Authorization": ""})
            assert asset.status_code == 200, (page, url, asset.status_code)
            assert asset.content, url


async def test_the_api_document_and_the_example_speak_of_the_product(service: Service) -> None:
    document = (await service.http.get("/openapi.json")).text
    assert re.findall(r".{40}\bseed\b.{40}", document, re.IGNORECASE) == []
    example = json.dumps(example_definitions())
    assert re.findall(r".{40}\bseed\b.{40}", example, re.IGNORECASE) == []


async def test_the_readme_cancel_example_cancels_a_waiting_run(service: Service) -> None:
    # The README's requests, in order.
    http = service.http
    created = await http.post("/api/workflows", json={
        "id": unique_slug("sign-off"), "name": "Sign-off",
        "steps": [{"id": "approve", "type": "approval", "message": "Ship it?"},
                  {"id": "ship", "type": "transform"}]})
    assert created.status_code == 201, created.text
    slug = created.json()["workflow"]["slug"]
    waiting = await http.post(f"/api/workflows/{slug}/run", params={"wait": 1}, json={})
    assert waiting.status_code == 202, waiting.text
    run_id = waiting.json()["run"]["id"]
    assert [s["status"] for s in waiting.json()["run"]["steps"]] == ["waiting"]
    cancelled = await http.post(f"/api/workflows/runs/{run_id}/cancel")
    assert cancelled.status_code in (200, 202), cancelled.text
    for _ in range(100):
        run = (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if run["status"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert run["status"] == "cancelled", run
    assert [s["status"] for s in run["steps"] if s["stepId"] == "ship"] in ([], ["skipped"])
