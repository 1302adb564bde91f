"""Rerun from a step: reused steps, the current (or pinned) definition, lineage, and the 4xx."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Any

import pytest

from tests.conftest import DEV_KEY, PROD_KEY, Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok, status


async def _completed_run(service: Service, slug: str, steps: int = 4) -> dict[str, Any]:
    await service.create_workflow(chain(slug, steps))
    response = await service.run(slug, {"topic": "rivers"})
    run: dict[str, Any] = response.json()["run"]
    assert run["status"] == "completed", response.text
    return run


def _user_prompt(body: dict[str, Any]) -> str:
    return " ".join(str(m["content"]) for m in body["messages"] if m["role"] == "user")


async def test_rerun_from_edited_step_reuses_earlier_steps(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("rerun")
    source = await _completed_run(service, slug)
    edited = chain(slug, 4)
    edited["steps"][2]["promptUser"] = "EDITED step 3: {{prev}}"
    assert (await service.http.put(f"/api/workflows/{slug}", json=edited)).status_code == 200
    calls = llm.count(OPENAI_PATH)

    response = await service.run(slug, {"topic": "rivers"}, fromStepId="s3")

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "completed"
    # Exactly steps 3 and 4 reached the model, step 3 with the edited prompt.
    assert llm.count(OPENAI_PATH) - calls == 2
    assert _user_prompt(llm.requests[calls].body).startswith("EDITED step 3: ")
    steps = {s["stepId"]: s for s in run["steps"]}
    before = {s["stepId"]: s for s in source["steps"]}
    for step_id in ("s1", "s2"):
        assert steps[step_id]["status"] == "reused"
        assert steps[step_id]["outputJson"] == before[step_id]["outputJson"]
        assert steps[step_id]["reusedFromStepRecordId"] == before[step_id]["id"]
        assert (steps[step_id]["tokensIn"], steps[step_id]["cost"]) == (0, 0)
    assert steps["s3"]["rendered"]["user"].startswith("EDITED step 3: echo: ")
    assert [steps[s]["status"] for s in ("s3", "s4")] == ["completed", "completed"]
    assert run["actualCost"] == pytest.approx(steps["s3"]["cost"] + steps["s4"]["cost"])
    assert run["actualCost"] > 0
    assert (run["sourceRunId"], run["fromStepId"], run["workflowVersion"], run["trigger"]) == (
        source["id"], "s3", 2, "rerun")
    # A rerun of the rerun still points at the records that produced the outputs.
    again = (await service.run(slug, {"topic": "rivers"}, fromStepId="s4")).json()["run"]
    reused = {s["stepId"]: s for s in again["steps"]}
    assert again["sourceRunId"] == run["id"]
    assert reused["s1"]["reusedFromStepRecordId"] == before["s1"]["id"]
    assert reused["s3"]["reusedFromStepRecordId"] == steps["s3"]["id"]


async def test_rerun_route_pins_version_and_applies_overrides(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("pin")
    source = await _completed_run(service, slug)
    edited = chain(slug, 4)
    edited["steps"][2]["promptUser"] = "EDITED {{prev}}"
    await service.http.put(f"/api/workflows/{slug}", json=edited)
    calls = llm.count(OPENAI_PATH)

    pinned = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun",
                                     json={"fromStepId": "s3", "pinVersion": True})
    run = pinned.json()["run"]
    assert run["status"] == "completed", pinned.text
    assert run["workflowVersion"] == 1
    assert _user_prompt(llm.requests[calls].body).startswith("Step 3: continue ")

    overrides = {"s4": {"promptUser": "OVERRIDE {{prev}}", "maxTokens": 50}}
    patched = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun",
                                      json={"fromStepId": "s4", "stepOverrides": overrides})
    run = patched.json()["run"]
    assert run["status"] == "completed", patched.text
    assert run["overrides"] == overrides
    assert run["inputJson"] == {"topic": "rivers"}  # the source run's input by default
    assert _user_prompt(llm.requests[-1].body).startswith("OVERRIDE ")
    assert llm.requests[-1].body["max_completion_tokens"] == 50
    # The stored definition is untouched by a run's overrides.
    stored = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]
    assert stored["currentVersion"] == 2
    assert stored["definition"]["steps"][3]["promptUser"].startswith("Step 4")


async def test_rerun_from_the_failed_step_finishes_the_run(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("refail")
    await service.create_workflow(chain(slug, 4))
    llm.enqueue(ok(), ok(), status(400, "bad prompt"))
    failed = (await service.run(slug, {"topic": "rivers"})).json()["run"]
    assert failed["status"] == "failed"
    assert [s["status"] for s in failed["steps"]] == ["completed", "completed", "failed"]
    calls = llm.count(OPENAI_PATH)

    response = await service.http.post(f"/api/workflows/runs/{failed['id']}/rerun",
                                       json={"fromStepId": "s3"})

    run = response.json()["run"]
    assert run["status"] == "completed", response.text
    assert [s["status"] for s in run["steps"]] == ["reused", "reused", "completed", "completed"]
    assert llm.count(OPENAI_PATH) - calls == 2


async def test_rerun_from_the_first_step_equals_a_fresh_run(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("refirst")
    source = await _completed_run(service, slug)
    calls = llm.count(OPENAI_PATH)

    response = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun",
                                       json={"fromStepId": "s1"})

    run = response.json()["run"]
    assert run["status"] == "completed"
    assert llm.count(OPENAI_PATH) - calls == 4
    assert [s["status"] for s in run["steps"]] == ["completed"] * 4
    assert run["outputJson"] == source["outputJson"]
    assert run["actualCost"] == pytest.approx(source["actualCost"])
    assert [s["outputJson"] for s in run["steps"]] == [s["outputJson"] for s in source["steps"]]


async def _problem(response: Any, status_code: int, code: str, where: str) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert where in [p["pointer"] for p in body["error"]["problems"]], body
    return body


async def test_rerun_errors_name_the_field_and_write_nothing(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("rebad")
    await service.create_workflow(chain(slug, 4))
    # No run yet: nothing to reuse before s2.
    await _problem(await service.run(slug, {"topic": "x"}, fromStepId="s2"), 409,
                   "source_incomplete", "/fromStepId")
    llm.enqueue(ok(), status(400, "bad"))
    failed = (await service.run(slug, {"topic": "x"})).json()["run"]
    other = unique_slug("reother")
    foreign = await _completed_run(service, other)
    rows = await service.store.count_rows()
    rerun = f"/api/workflows/runs/{failed['id']}/rerun"

    await _problem(await service.http.post(rerun, json={"fromStepId": "nope"}), 422,
                   "validation_error", "/fromStepId")
    body = await _problem(await service.http.post(rerun, json={"fromStepId": "s4"}), 409,
                          "source_incomplete", "/fromStepId")
    assert body["error"]["problems"][0]["stepId"] == "s2"
    await _problem(await service.run(slug, {"topic": "x"}, fromStepId="s2",
                                     sourceRunId=foreign["id"]),
                   422, "validation_error", "/sourceRunId")
    await _problem(await service.run(slug, {"topic": "x"}, sourceRunId=failed["id"]), 422,
                   "validation_error", "/fromStepId")
    await _problem(await service.http.post(rerun, json={
        "fromStepId": "s2", "stepOverrides": {"zz": {"promptUser": "x"}}}),
        422, "validation_error", "/stepOverrides/zz")
    await _problem(await service.http.post(rerun, json={
        "fromStepId": "s2", "stepOverrides": {"s1": {"promptUser": "x"}}}),
        422, "validation_error", "/stepOverrides/s1")
    await _problem(await service.http.post(rerun, json={
        "fromStepId": "s2", "stepOverrides": {"s3": {"promptUser": ""}}}),
        422, "validation_error", "/stepOverrides/s3/promptUser")
    await _problem(await service.http.post(rerun, json={"fromStepId": "s2", "input": {}}),
                   422, "validation_error", "/input/topic")
    # Another environment's key cannot see the run at all.
    prod = await service.http.post(rerun, json={"fromStepId": "s2"},
                                   headers={"Authorization": f"Bearer {PROD_KEY}"})
    assert prod.status_code == 404
    assert prod.json()["error"]["code"] == "not_found"
    assert await service.store.count_rows() == rows


async def test_cli_reruns_from_a_step(service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("cli")
    await _completed_run(service, slug, steps=3)
    calls = llm.count(OPENAI_PATH)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from promptpilot.cli import main; main(sys.argv[1:])",
        "run", slug, "--from-step", "s3",
        "--api", service.url, "--key", DEV_KEY,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert re.search(r"s1\s+reused", text), text
    assert re.search(r"s3\s+completed", text), text
    assert "run completed" in text
    assert llm.count(OPENAI_PATH) - calls == 1


@pytest.mark.parametrize("model_seconds", [0.0, 0.5])
async def test_rerun_of_the_last_step_costs_one_call(
    service: Service, llm: FakeLlmServer, model_seconds: float,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The closing note's figures: a rerun of step 5 of 5 against a full run."""
    slug = unique_slug("last")
    await service.create_workflow(chain(slug, 5))
    llm.enqueue(*[hang(model_seconds)] * 5)
    started = time.perf_counter()
    full = (await service.run(slug, {"topic": "rivers"})).json()["run"]
    full_seconds = time.perf_counter() - started
    full_calls = llm.count(OPENAI_PATH)
    llm.enqueue(hang(model_seconds))
    started = time.perf_counter()
    rerun = (await service.http.post(f"/api/workflows/runs/{full['id']}/rerun",
                                     json={"fromStepId": "s5"})).json()["run"]
    rerun_seconds = time.perf_counter() - started
    rerun_calls = llm.count(OPENAI_PATH) - full_calls
    assert (full["status"], rerun["status"]) == ("completed", "completed")
    assert (full_calls, rerun_calls) == (5, 1)
    assert rerun["outputJson"] == full["outputJson"]
    assert rerun["actualCost"] < full["actualCost"]
    with capsys.disabled():
        sys.stdout.write(
            f"\n[rerun-vs-full, model latency {model_seconds}s] full: {full_calls} calls "
            f"{full_seconds:.2f}s ${full['actualCost']:.6f}; rerun of s5: {rerun_calls} call "
            f"{rerun_seconds:.2f}s ${rerun['actualCost']:.6f}\n")
