"""Runs end to end through the API: real Temporal, real Postgres, real SDKs on a fake server."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok, status


async def test_feed_discovery_completes_and_mirrors_every_step(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("feed")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(ok('{"query": "ai feeds"}', tokens_in=120, tokens_out=8))

    response = await service.run(slug, {"interests": "AI, machine learning"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    run = body["run"]
    assert run["status"] == "completed"
    assert set(run) >= {"id", "workflowId", "status", "inputJson", "outputJson", "actualCost",
                        "startedAt", "finishedAt", "steps"}
    assert run["inputJson"] == {"interests": "AI, machine learning",
                                "criteria": "thought leadership"}
    assert run["outputJson"]["query"] == "ai feeds"
    assert len(run["outputJson"]["feeds"]) == 5
    steps = run["steps"]
    assert [s["stepId"] for s in steps] == ["step1", "step2", "step3"]
    assert all(s["status"] == "completed" for s in steps)
    llm_step = steps[0]
    assert (llm_step["tokensIn"], llm_step["tokensOut"]) == (120, 8)
    assert llm_step["cost"] is not None
    assert llm_step["cost"] > 0
    assert llm_step["rendered"]["user"].startswith("Generate a web search query for feeds about AI")
    assert run["actualCost"] == llm_step["cost"]
    assert steps[1]["toolTrace"][0]["args"]["query"] == "ai feeds"
    assert steps[2]["inputJson"]["query"] == "ai feeds"
    # The fake saw exactly one request: the rendered prompt, through the real OpenAI SDK.
    assert llm.count(OPENAI_PATH) == 1
    assert "AI, machine learning" in str(llm.requests[0].body["messages"])

    # The mirror holds the same, by SQL, as a user inspecting runs would see it.
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, status, tokens_in, cost, environment from workflow_run_steps "
            "where run_id = :id order by step_index"), {"id": uuid.UUID(run["id"])})).all()
    assert [(r.step_id, r.status, r.environment) for r in rows] == [
        ("step1", "completed", "dev"), ("step2", "completed", "dev"),
        ("step3", "completed", "dev")]

    # The seed's read routes agree with the run response.
    fetched = (await service.http.get(f"/api/workflows/runs/{run['id']}")).json()["run"]
    assert fetched["status"] == "completed"
    assert len(fetched["steps"]) == 3
    listed = (await service.http.get(f"/api/workflows/{slug}/runs", params={"limit": 10})).json()
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    workflow = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]
    assert workflow["slug"] == slug
    assert workflow["definition"]["steps"][0]["type"] == "llm"


async def test_failing_step_fails_the_run_and_stops_later_steps(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("fail")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(status(400, "prompt rejected"))

    response = await service.run(slug, {"interests": "AI"})

    run = response.json()["run"]
    assert response.status_code == 200
    assert run["status"] == "failed"
    assert run["error"]["type"] == "provider_bad_request"
    assert [s["stepId"] for s in run["steps"]] == ["step1"]
    step = run["steps"][0]
    assert step["status"] == "failed"
    assert "prompt rejected" in step["error"]["message"]
    assert step["attempts"] == 1
    assert run["finishedAt"] is not None
    assert llm.count(OPENAI_PATH) == 1  # a 400 is not retried


async def test_run_answers_202_when_it_outlasts_the_wait(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("slow")
    await service.create_workflow(feed_discovery(slug))
    from tests.fakes.llm_server import hang

    llm.enqueue(hang(1.5), ok('{"query": "x"}'))
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0.2},
                                       json={"input": {"interests": "AI"}})
    assert response.status_code == 202
    run = response.json()["run"]
    assert run["status"] in ("pending", "running")
    # The run carries on durably; poll until it ends.
    import asyncio

    for _ in range(200):
        fetched = (await service.http.get(f"/api/workflows/runs/{run['id']}")).json()["run"]
        if fetched["status"] == "completed":
            break
        await asyncio.sleep(0.1)
    assert fetched["status"] == "completed"


async def test_definitions_update_into_new_versions(service: Service) -> None:
    slug = unique_slug("ver")
    created = await service.create_workflow(feed_discovery(slug))
    assert created["currentVersion"] == 1
    changed = feed_discovery(slug)
    changed["steps"][0]["promptUser"] = "New prompt about {{interests}}"
    updated = await service.http.put(f"/api/workflows/{slug}", json=changed)
    assert updated.status_code == 200, updated.text
    assert updated.json()["workflow"]["currentVersion"] == 2
    versions = (await service.http.get(f"/api/workflows/{slug}/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    # A list names the versions; each one's definition is read on its own.
    assert all(set(v) == {"version", "createdAt"} for v in versions)
    first = (await service.http.get(f"/api/workflows/{slug}/versions/1")).json()["version"]
    assert first["definition"]["steps"][0]["promptUser"].startswith("Generate")
    listed = (await service.http.get("/api/workflows")).json()["workflows"]
    assert slug in [w["slug"] for w in listed]


async def test_health_reports_both_services(service: Service) -> None:
    response = await service.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "postgres": {"ok": True}, "temporal": {"ok": True}}
